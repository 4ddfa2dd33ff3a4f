"""The GetRecords transport of a shard read: iterators, paging, pacing and retries.

It hands the read one decoded page after the other and knows nothing of when to stop
(``stop_rules``) or what was read (``shard_reader``). An expired iterator is re-acquired
at the position the read has reached; a shard that is gone, or a position no longer in
it, is lost data: an error, or with ``failOnDataLoss=false`` a warning and the shard
treated as ended (``shard_gone``) or read from its oldest record.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from typing import Any, NoReturn, TypeVar

from botocore.exceptions import ClientError

from kinesis_source.aws.clients import kinesis_client
from kinesis_source.aws.retry import call_with_retry, policy_of
from kinesis_source.errors import KinesisReadError, StreamNotFoundError
from kinesis_source.options import Decoder, KinesisOptions
from kinesis_source.records.fast_decode import get_records_page
from kinesis_source.records.records_page import RecordsPage, page_from_response
from kinesis_source.source.positions import Position

log = logging.getLogger(__name__)

T = TypeVar("T")


class GetRecordsTransport:
    """Pages of one shard by GetRecords, at most one call per ``fetchIntervalMs``."""

    def __init__(self, opts: KinesisOptions, stream: str, shard_id: str) -> None:
        self.opts = opts
        self.stream = stream
        self.shard_id = shard_id
        # StreamName, or StreamARN when the user named the stream by ARN.
        self.stream_args = opts.stream_ref(stream).api_args()
        self.client = kinesis_client(opts, raw_get_records=opts.decoder is Decoder.FAST)
        self.policy = policy_of(opts)
        # Set when the shard (or the position) is gone and failOnDataLoss=false says to go
        # on: the read then treats the shard as ended.
        self.shard_gone = False

    def pages(
        self, start: Position, reached: Callable[[], Position]
    ) -> Generator[RecordsPage, None, None]:
        """Pages from ``start`` until the shard ends or the caller stops asking.

        ``reached`` tells where the read stands, to re-acquire an expired iterator there.
        """
        interval = self.opts.fetch_interval_ms / 1000.0
        iterator = self._iterator_at(start, reached)
        last_call = 0.0
        while iterator is not None:
            wait = last_call + interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            last_call = time.monotonic()
            try:
                page = self._get_page(iterator)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ExpiredIteratorException":
                    self._raise_for(exc, "GetRecords", reached())
                log.info(
                    "shard %s: iterator expired; re-acquiring at %s",
                    self.shard_id,
                    reached().text(),
                )
                iterator = self._iterator_at(reached(), reached)
                continue
            yield page
            iterator = page.next_shard_iterator
            # Not held while the next page is fetched.
            del page

    def _retrying(self, what: str, call: Callable[[], T]) -> T:
        return call_with_retry(
            call, self.policy, what=what, stream=self.stream, shard_id=self.shard_id
        )

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
            if not self.opts.fail_on_data_loss:
                if code == "ResourceNotFoundException":
                    log.warning(
                        "shard %s of stream %r is gone; its records after %s are lost "
                        "(failOnDataLoss=false: treating it as ended)",
                        self.shard_id,
                        self.stream,
                        position.text(),
                    )
                    self.shard_gone = True
                    return None
                if code == "InvalidArgumentException" and position.sequence is not None:
                    log.warning(
                        "shard %s: position %s is no longer valid (%s); going on from the "
                        "oldest record (failOnDataLoss=false)",
                        self.shard_id,
                        position.text(),
                        exc,
                    )
                    return self._iterator_at(Position.trim_horizon(), reached)
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

    def _get_page(self, iterator: str) -> RecordsPage:
        """One GetRecords call, decoded by the configured decoder."""
        limit = self.opts.get_records_limit
        if self.opts.decoder is Decoder.FAST:
            return self._retrying(
                "GetRecords",
                lambda: get_records_page(
                    self.client, iterator, limit, deaggregate_kpl=self.opts.deaggregate
                ),
            )
        resp: Any = self._retrying(
            "GetRecords", lambda: self.client.get_records(ShardIterator=iterator, Limit=limit)
        )
        return page_from_response(resp, deaggregate_kpl=self.opts.deaggregate)
