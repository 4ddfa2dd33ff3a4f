"""The next GetRecords page of a shard read, fetched on a thread of its own.

The read (``get_records.GetRecordsTransport.read_ahead``) starts it once it has decided to
go on after a small page, and takes it in turn; meanwhile that page's rows go to Spark.
The thread makes the very call the read would have made next, so a shard still sees one
call at a time, in order, paced the same.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from kinesis_source.records.records_page import RecordsPage


class PageAhead:
    """One GetRecords page fetched on a thread while the read hands on the one before."""

    def __init__(self, fetch: Callable[[str, int], RecordsPage], iterator: str, limit: int) -> None:
        self.iterator = iterator
        self.limit = limit
        self._page: RecordsPage | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(fetch,), name="kinesis-read-ahead", daemon=True
        )
        self._thread.start()

    def _run(self, fetch: Callable[[str, int], RecordsPage]) -> None:
        try:
            self._page = fetch(self.iterator, self.limit)
        except BaseException as exc:  # handed to the read, which raises it as its own
            self._error = exc

    def wait(self) -> None:
        self._thread.join()

    def result(self) -> RecordsPage:
        """The page, or the call's error raised here (in the read's thread)."""
        self._thread.join()
        page, error = self._page, self._error
        self._page = self._error = None
        if error is not None:
            raise error
        assert page is not None
        return page
