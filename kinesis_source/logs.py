"""Where the connector's log lines go in the Python processes Spark starts.

Spark configures no Python logging in the processes that run the connector (the driver's
streaming source runner, the data source workers, the executors' Python workers), so a
library's records would reach no one. Every entry point (the data source's methods, the
stream reader, ``read()``, the sink's writers and tasks) calls ``configure``: it attaches
one handler to the ``kinesis_source`` logger that writes to that process's stderr, which
Spark keeps in the driver's and the executors' logs.

The handler prints a record only when nothing else would: when neither the
``kinesis_source`` logger (other than by a ``NullHandler``) nor the root logger has a
handler of its own. An application that configured logging, and PySpark's Python worker
logging (``spark.sql.pyspark.worker.logging.enabled``, which puts a handler on the root
logger of a worker while it runs a task), then get each record once, from their own
handlers. The decision is taken at each record, not when the handler is attached, since
PySpark's handler comes and goes per task in a reused worker.

The ``logLevel`` option sets the ``kinesis_source`` logger's level in each process that
runs the query; unset, the level is inherited (WARNING by default).
"""

from __future__ import annotations

import logging
import sys

PACKAGE_LOGGER = "kinesis_source"
# Close to Spark's log4j lines ("26/01/31 12:00:00 WARN TaskSetManager: ...").
LINE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
DATE_FORMAT = "%y/%m/%d %H:%M:%S"


class StderrUnlessHandled(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the process's stderr the records no other handler takes."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter(LINE_FORMAT, DATE_FORMAT))

    @property
    def stream(self) -> object:
        # The stderr of the moment: a reused worker may have swapped it since.
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass

    def emit(self, record: logging.LogRecord) -> None:
        if not handled_elsewhere(logging.getLogger(PACKAGE_LOGGER), self):
            super().emit(record)


def handled_elsewhere(package: logging.Logger, ours: logging.Handler) -> bool:
    """True when the package's logger (besides ``ours`` and null handlers) or the root
    logger has a handler: the application's or PySpark's own logging takes the record."""
    own = [h for h in package.handlers if h is not ours and not isinstance(h, logging.NullHandler)]
    return bool(own) or bool(logging.getLogger().handlers)


def configure(level: str | None = None) -> None:
    """Attach the stderr handler to the package's logger once per process, and set the
    logger's level when ``level`` (a ``logLevel`` option's value) is given."""
    package = logging.getLogger(PACKAGE_LOGGER)
    if not any(isinstance(h, StderrUnlessHandled) for h in package.handlers):
        package.addHandler(StderrUnlessHandled())
    if level is not None:
        package.setLevel(level)
