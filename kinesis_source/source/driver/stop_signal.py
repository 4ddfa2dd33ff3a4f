"""Make Spark's end of the streaming source runner reach the reader's ``stop()``.

PySpark 4.3's runner (``python_streaming_source_runner.main``) calls ``reader.stop()`` in a
``finally`` around its command loop. But the JVM ends the runner with ``Process.destroy()``,
a SIGTERM, when the query stops, fails, or its SparkSession stops; Python's default action
for SIGTERM ends the process at once, so that ``finally`` never ran (measured here:
``stop()`` was never called in any of the three cases). A handler that raises
``SystemExit`` instead unwinds the runner's stack through that ``finally``: ``stop()`` then
runs in each case. A driver killed outright (SIGKILL, a lost machine) still skips it.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

# The script PySpark runs as the streaming source runner's main module.
RUNNER_SCRIPT = "python_streaming_source_runner.py"


def _unwind(signum: int, frame: FrameType | None) -> None:
    # Spark sends SIGTERM again while stop() runs: a second unwind would cut it short.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(128 + signum)


def stop_on_sigterm() -> bool:
    """Install the handler in the streaming source runner (not in the other Python workers
    that build a reader) unless another one is set; True if installed."""
    main = getattr(sys.modules.get("__main__"), "__file__", None) or ""
    if not main.endswith(RUNNER_SCRIPT):
        return False
    if threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, _unwind):
        return False
    signal.signal(signal.SIGTERM, _unwind)
    return True
