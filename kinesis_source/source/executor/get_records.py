"""The GetRecords transport of a shard read: iterators, paging, pacing and retries.

It hands the read one decoded page after the other and knows nothing of when to stop
(``stop_rules``) or what was read (``shard_reader``). An expired iterator is re-acquired
at the position the read has reached; a shard that is gone, or a position no longer in
it, is lost data, decided as for enhanced fan-out (``data_loss.go_on_after``): an error,
or with ``failOnDataLoss=false`` a warning and the shard treated as ended
(``shard_gone``) or read from its oldest record.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Generator
from typing import Any, NoReturn, TypeVar

from botocore.exceptions import ClientError

from kinesis_source import limits
from kinesis_source.aws.clients import kinesis_client
from kinesis_source.aws.retry import call_with_retry, policy_of
from kinesis_source.errors import KinesisReadError, StreamNotFoundError
from kinesis_source.records.fast_decode import (
    get_records_page,
    install_raw_get_records,
    require_records,
)
from kinesis_source.records.records_page import RecordsPage, page_from_response
from kinesis_source.source.data_loss import go_on_after, read_loss
from kinesis_source.source.executor import kept_iterators
from kinesis_source.source.executor.read_ahead import PageAhead
from kinesis_source.source.options import Decoder, KinesisOptions
from kinesis_source.source.positions import Position

log = logging.getLogger(__name__)

T = TypeVar("T")


def call_gap_s(interval_s: float, page_bytes: int) -> float:
    """The least time between a GetRecords call that brought ``page_bytes`` of records and
    the next call on the shard: ``fetchIntervalMs``, or longer after a large page.

    Kinesis allows 2 MiB/s of reads per shard and, after a call that returned B bytes,
    refuses the shard's calls for about B / 2 MiB/s ("if a call returns 10 MiB, subsequent
    calls made within the next 5 seconds throw ProvisionedThroughputExceededException",
    GetRecords API reference). Waiting that out here costs the same time as the refusal
    would, without the retry's backoff, which overshoots and lets the backlog grow: on a
    shard written at its full rate a reader that is refused falls behind for good.
    ``fetchIntervalMs=0`` turns pacing off, by the byte as by the call.
    """
    if interval_s <= 0:
        return 0.0
    return max(interval_s, page_bytes / limits.READ_BYTES_PER_SECOND_PER_SHARD)


class GetRecordsTransport:
    """Pages of one shard by GetRecords, at most one call per ``fetchIntervalMs``.

    ``not_before_ms`` (epoch ms) holds the first call back until then: the driver's last
    call on the shard (a probe, or the last batch's read) counts against the same interval.
    With ``kept_key`` the read starts from an iterator a read before it kept in this worker
    at exactly its start (``kept_iterators``), if there is one, instead of GetShardIterator.
    """

    def __init__(
        self,
        opts: KinesisOptions,
        stream: str,
        shard_id: str,
        not_before_ms: int | None = None,
        kept_key: kept_iterators.Key | None = None,
    ) -> None:
        self.opts = opts
        self.not_before_ms = not_before_ms
        self.kept_key = kept_key
        # The iterator in use came from kept_iterators and has not served a page yet.
        self.from_kept = False
        self.stream = stream
        self.shard_id = shard_id
        # StreamName, or StreamARN when the user named the stream by ARN.
        self.stream_args = opts.stream_ref(stream).api_args()
        self.client = kinesis_client(
            opts, prepare=install_raw_get_records if opts.decoder is Decoder.FAST else None
        )
        self.policy = policy_of(opts)
        # Set when the shard (or the position) is gone and failOnDataLoss=false says to go
        # on: the read then treats the shard as ended.
        self.shard_gone = False
        # The Limit of the call that brought the page handed on last, and the user records
        # per Kinesis record of the last page that had records (KPL aggregates hold
        # hundreds).
        self.last_limit = opts.get_records_limit
        self._units_per_record = 1.0
        self._interval = opts.fetch_interval_ms / 1000.0
        self._last_call = 0.0  # time.monotonic() of the last GetRecords call
        # When the shard's read quota lets the next call go (time.monotonic()).
        self._quota_free = 0.0
        self._ahead: PageAhead | None = None

    def pages(
        self,
        start: Position,
        reached: Callable[[], Position],
        wanted: Callable[[], int | None] = lambda: None,
    ) -> Generator[RecordsPage, None, None]:
        """Pages from ``start`` until the shard ends or the caller stops asking.

        ``reached`` tells where the read stands, to re-acquire an expired iterator there.
        ``wanted`` tells how many more user records the read may take (None: no cap), so
        that the last call of a capped read asks for about that many (see ``_limit``).
        """
        iterator = self._first_iterator(start, reached)
        if self.not_before_ms is not None:
            # At most one interval and the longest wait a page's read quota asks: a driver
            # clock ahead of this one must not stall the read for longer.
            most = self._interval + limits.READ_QUOTA_WAIT_MAX_MS / 1000.0
            hold = min(most, self.not_before_ms / 1000.0 - time.time())
            self._last_call = time.monotonic() + hold - self._interval
        try:
            while iterator is not None:
                ahead, self._ahead = self._ahead, None
                try:
                    if ahead is not None and ahead.iterator == iterator:
                        limit = ahead.limit
                        page = ahead.result()
                    else:
                        if ahead is not None:
                            ahead.wait()  # one call at a time on a shard
                        limit = self._limit(wanted())
                        page = self._paced_page(iterator, limit)
                except ClientError as exc:
                    code = exc.response.get("Error", {}).get("Code")
                    if code != "ExpiredIteratorException" and not self.from_kept:
                        self._raise_for(exc, "GetRecords", reached())
                    # A kept iterator Kinesis refuses for any reason costs a fresh one at
                    # the same position; an error then is the shard's, and raised.
                    log.log(
                        logging.DEBUG if self.from_kept else logging.INFO,
                        "shard %s: %s iterator refused (%s); re-acquiring at %s",
                        self.shard_id,
                        "kept" if self.from_kept else "the",
                        code,
                        reached().text(),
                    )
                    self.from_kept = False
                    iterator = self._iterator_at(reached(), reached)
                    continue
                self.from_kept = False
                if len(page):
                    self._units_per_record = page.unit_count / len(page)
                self.last_limit = limit
                yield page
                iterator = page.next_shard_iterator
                # Let go before the next call; only a read-ahead, after a small page, fetches
                # while a page is still held.
                del page
        finally:
            self._drop_ahead()

    def read_ahead(self, page: RecordsPage, units_left: int | None) -> None:
        """Start the call for the page after ``page`` now, on a thread of its own, when the
        read has decided to go on (``StopRules.reads_on_after``) and ``page`` is small.

        ``pages`` then hands that page on in turn: the same calls, in the same order,
        paced the same, only started while ``page``'s rows are still going to Spark. A
        read that stops anyway (its time ran out meanwhile) waits for the call and drops
        its page; that costs the shard one call of its quota, no records.
        """
        iterator = page.next_shard_iterator
        if (
            iterator is None
            or self._ahead is not None
            or page.data_bytes > limits.READ_AHEAD_MAX_PAGE_BYTES
        ):
            return
        self._ahead = PageAhead(self._paced_page, iterator, self._limit(units_left))

    def _drop_ahead(self) -> None:
        # Waited for, not abandoned: the task's end (and the driver's pacing of the next
        # batch, which counts from it) must come after the shard's last call.
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead.wait()

    def _paced_page(self, iterator: str, limit: int) -> RecordsPage:
        """One GetRecords call, no sooner than ``call_gap_s`` after the last."""
        wait = max(self._last_call + self._interval, self._quota_free) - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._last_call = time.monotonic()
        page = self._get_page(iterator, limit)
        page.received_ms = int(time.time() * 1000)
        # Counted from the answer, not the call: Kinesis spends the quota when it serves
        # the page, which is later than the call left by the way there.
        gap = call_gap_s(self._interval, page.data_bytes + page.key_bytes)
        self._quota_free = time.monotonic() + gap if gap > self._interval else 0.0
        return page

    def quota_wait_ms(self) -> int:
        """How much longer than ``fetchIntervalMs`` from now the shard's next call must wait
        for the read quota its last page spent (0: no longer), for the driver's pacing."""
        left = self._quota_free - time.monotonic()
        return max(0, math.ceil((left - self._interval) * 1000))

    def _limit(self, units: int | None) -> int:
        """GetRecords' Limit for the next call.

        The configured limit, or fewer records when the read may take only ``units`` more
        user records: what a page holds past the cap is decoded for nothing, and the next
        batch fetches and decodes it again. A KPL page of 80,000 user records cut at 20,000
        is most of the cost of its batch. The count comes from the last page's user records
        per record, plus one record: for aggregates of uneven size, and so that a page
        holding fewer records than asked shows the shard's tip (a full page does not, and
        an emulator's MillisBehindLatest alone may not). A guess too small costs one more
        call.
        """
        limit = self.opts.get_records_limit
        if units is not None:
            per = self._units_per_record
            records = (units if per <= 1 else math.ceil(units / per)) + 1
            limit = min(limit, records)
        return limit

    def _retrying(self, what: str, call: Callable[[], T]) -> T:
        return call_with_retry(
            call, self.policy, what=what, stream=self.stream, shard_id=self.shard_id
        )

    def _first_iterator(self, start: Position, reached: Callable[[], Position]) -> str | None:
        """The iterator a read before this one kept at exactly ``start``, or a new one."""
        if self.kept_key is not None:
            kept = kept_iterators.take(self.kept_key, start, int(time.time() * 1000))
            if kept is not None:
                self.from_kept = True
                return kept
        return self._iterator_at(start, reached)

    def _iterator_at(self, position: Position, reached: Callable[[], Position]) -> str | None:
        """An iterator at ``position``; None if the shard is gone and failOnDataLoss=false."""
        request = position.iterator_request()
        try:
            resp = self._retrying(
                "GetShardIterator",
                lambda: self.client.get_shard_iterator(
                    **self.stream_args, ShardId=self.shard_id, **request
                ),
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            loss = read_loss(code, position, str(exc.response.get("Error", {}).get("Message", "")))
            if loss is not None:
                resume = go_on_after(
                    loss,
                    stream=self.stream,
                    shard_id=self.shard_id,
                    position=position,
                    refusal=f"GetShardIterator: {code}",
                    fail_on_data_loss=self.opts.fail_on_data_loss,
                    cause=exc,
                )
                if resume.is_shard_end:
                    self.shard_gone = True
                    return None
                return self._iterator_at(resume, reached)
            self._raise_for(exc, "GetShardIterator", reached())
        return str(resp["ShardIterator"])

    def _raise_for(self, exc: ClientError, call: str, at: Position) -> NoReturn:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise StreamNotFoundError(
                f"{call}: stream {self.stream!r} or its shard {self.shard_id} "
                f"does not exist in region {self.opts.region}",
                stream=self.stream,
                shard_id=self.shard_id,
            ) from exc
        raise KinesisReadError(
            f"{call} failed on stream {self.stream!r} shard {self.shard_id} "
            f"at {at.text()}: {code or exc}",
            stream=self.stream,
            shard_id=self.shard_id,
            sequence_number=at.sequence,
        ) from exc

    def _get_page(self, iterator: str, limit: int) -> RecordsPage:
        """One GetRecords call, decoded by the configured decoder."""
        if self.opts.decoder is Decoder.FAST:
            return self._retrying(
                "GetRecords",
                lambda: get_records_page(
                    self.client, iterator, limit, deaggregate_kpl=self.opts.deaggregate
                ),
            )
        resp: Any = self._retrying(
            "GetRecords",
            lambda: require_records(self.client.get_records(ShardIterator=iterator, Limit=limit)),
        )
        return page_from_response(resp, deaggregate_kpl=self.opts.deaggregate)
