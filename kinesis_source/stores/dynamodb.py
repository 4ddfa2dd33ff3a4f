"""The DynamoDB checkpoint store: ``dynamodb://TABLE``, for clusters and for operators.

Layout (one item per (batch, shard), like a KCL lease table has one per shard):

- partition key ``streamQuery`` = ``STREAM/QUERY``: one query's entries sit together, so
  one table serves any number of streams and queries;
- sort key ``batchShard`` = ``BATCH/SHARD`` with the batch zero-padded: one ``Query`` with
  ``begins_with`` returns a whole batch, and one with ``<`` finds what a purge deletes.

KCL's own layout (partition key = shard id, one row per shard, overwritten) cannot hold a
batch's end next to the next batch's, which a replay needs. Each item also carries what an
operator reads in a KCL table: ``shardId``, ``checkpoint`` (the position text),
``lastSequenceNumber``, ``millisBehindLatest``, ``records`` and ``writtenAt``; the highest
batch of a partition is the query's progress.

Put-if-absent is ``PutItem`` with ``attribute_not_exists``; reads are strongly
consistent, so a task retry always sees the winner's end. Throttling is retried by
botocore's standard retry mode (``limits.STORE_MAX_ATTEMPTS``).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError

from kinesis_source import limits
from kinesis_source.errors import CheckpointStoreError
from kinesis_source.source.positions import Position, ShardEnd
from kinesis_source.stores.base import (
    CheckpointStore,
    batch_key,
    describe_error,
    entry,
    error_code,
    not_exclusive,
    parse_entry,
    probe_key,
    store_error,
)

log = logging.getLogger(__name__)

PARTITION_KEY = "streamQuery"
SORT_KEY = "batchShard"
KEY_SCHEMA = [
    {"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
    {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
]
_UNPROCESSED_RETRIES = 8
# The item's expiry (epoch seconds), DynamoDB's TTL attribute: entries of an abandoned
# query go by themselves where TTL is enabled on it (createCheckpointTable does).
TTL_ATTRIBUTE = "expiresAt"


def _item(stream: str, query: str, batch: int, shard_id: str, end: ShardEnd) -> dict[str, Any]:
    value = entry(stream, batch, shard_id, end)
    item: dict[str, Any] = {
        PARTITION_KEY: {"S": f"{stream}/{query}"},
        SORT_KEY: {"S": f"{batch_key(batch)}/{shard_id}"},
        "stream": {"S": stream},
        "query": {"S": query},
        "batch": {"N": str(batch)},
        "shardId": {"S": shard_id},
        "checkpoint": {"S": value["end"]},
        "records": {"N": str(value["records"])},
        "caughtUp": {"BOOL": bool(value["caughtUp"])},
        "writtenAt": {
            "S": datetime.fromtimestamp(value["writtenAtMs"] / 1000, timezone.utc).isoformat()
        },
        TTL_ATTRIBUTE: {"N": str(value["writtenAtMs"] // 1000 + limits.STORE_ENTRY_TTL_SECONDS)},
    }
    if end.position.sequence is not None:
        item["lastSequenceNumber"] = {"S": end.position.sequence}
    if end.millis_behind_latest is not None:
        item["millisBehindLatest"] = {"N": str(end.millis_behind_latest)}
    if end.reached_bound_ms is not None:
        item["reachedBoundMs"] = {"N": str(end.reached_bound_ms)}
    if end.efo_fallback:
        item["efoFallback"] = {"BOOL": True}
    if end.first_sequence is not None:
        item["firstSequenceNumber"] = {"S": end.first_sequence}
    if end.end_at_continuation:
        item["endAtContinuation"] = {"BOOL": True}
    if end.quota_wait_ms:
        item["quotaWaitMs"] = {"N": str(end.quota_wait_ms)}
    return item


def _end(item: dict[str, Any]) -> ShardEnd:
    behind = item.get("millisBehindLatest", {}).get("N")
    bound = item.get("reachedBoundMs", {}).get("N")
    return ShardEnd(
        position=Position.parse(item["checkpoint"]["S"]),
        records=int(item.get("records", {}).get("N", "0")),
        millis_behind_latest=None if behind is None else int(behind),
        caught_up=bool(item.get("caughtUp", {}).get("BOOL", False)),
        written_at_ms=_written_at_ms(item),
        reached_bound_ms=None if bound is None else int(bound),
        efo_fallback=bool(item.get("efoFallback", {}).get("BOOL", False)),
        first_sequence=item.get("firstSequenceNumber", {}).get("S"),
        end_at_continuation=bool(item.get("endAtContinuation", {}).get("BOOL", False)),
        quota_wait_ms=int(item.get("quotaWaitMs", {}).get("N", "0")),
    )


def _written_at_ms(item: dict[str, Any]) -> int | None:
    text = item.get("writtenAt", {}).get("S")
    return None if text is None else int(datetime.fromisoformat(text).timestamp() * 1000)


class DynamoDBCheckpointStore(CheckpointStore):
    def __init__(
        self, uri: str, client: Any, check_client: Any, *, create_table: bool = True
    ) -> None:
        self.uri = uri
        self.table = urlparse(uri).netloc
        self.client = client
        # Few retries: the driver's start-up check must fail fast on an unreachable store.
        self.check_client = check_client
        self.create_table = create_table

    def check(self) -> None:
        try:
            try:
                table = self.check_client.describe_table(TableName=self.table)["Table"]
            except ClientError as exc:
                if error_code(exc) != "ResourceNotFoundException":
                    raise
                if not self.create_table:
                    raise CheckpointStoreError(
                        f"checkpoint store {self.uri}: table {self.table!r} does not exist and "
                        "createCheckpointTable=false; create it (partition key streamQuery, "
                        "sort key batchShard, both strings) or set createCheckpointTable=true"
                    ) from exc
                self._create()
                self._check_conditional_put()
                return
            if table.get("TableStatus") == "CREATING":
                # Another driver is creating it: wait, as for a table of our own.
                self._wait_until_active()
            self._check_conditional_put()
        except (BotoCoreError, ClientError) as exc:
            raise CheckpointStoreError(
                f"checkpoint store {self.uri} is not usable: {describe_error(exc)}; check the "
                "table name, that the credentials may use it, and the options "
                "checkpointRegion and checkpointEndpointUrl"
            ) from exc
        keys = sorted((k["AttributeName"], k["KeyType"]) for k in table.get("KeySchema", []))
        if keys != sorted((k["AttributeName"], k["KeyType"]) for k in KEY_SCHEMA):
            raise CheckpointStoreError(
                f"checkpoint store {self.uri}: table {self.table!r} has key schema {keys}; "
                "expected partition key streamQuery and sort key batchShard: use another "
                "table name"
            )

    def _create(self) -> None:
        log.info("checkpoint store %s: creating table %s (on-demand)", self.uri, self.table)
        try:
            self.check_client.create_table(
                TableName=self.table,
                KeySchema=KEY_SCHEMA,
                AttributeDefinitions=[
                    {"AttributeName": PARTITION_KEY, "AttributeType": "S"},
                    {"AttributeName": SORT_KEY, "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
        except ClientError as exc:
            # Another driver created it meanwhile: wait for it like for our own.
            if error_code(exc) != "ResourceInUseException":
                raise
            self._wait_until_active()
            return
        self._wait_until_active()
        self._enable_ttl()

    def _enable_ttl(self) -> None:
        try:
            self.check_client.update_time_to_live(
                TableName=self.table,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
            )
        except (BotoCoreError, ClientError) as exc:
            # The table works without it; only an abandoned query's entries stay.
            log.warning(
                "checkpoint store %s: enabling TTL on %s failed (%s): entries of abandoned "
                "queries will not expire by themselves (docs/deploying.md)",
                self.uri,
                TTL_ATTRIBUTE,
                describe_error(exc),
            )

    def _check_conditional_put(self) -> None:
        """Prove that a second conditional PutItem of one key loses on this endpoint."""
        key = {PARTITION_KEY: {"S": probe_key()}, SORT_KEY: {"S": "check"}}
        request = {
            "TableName": self.table,
            "Item": {**key, TTL_ATTRIBUTE: {"N": str(int(time.time()) + 3600)}},
            "ConditionExpression": "attribute_not_exists(#s)",
            "ExpressionAttributeNames": {"#s": SORT_KEY},
        }
        try:
            self.check_client.put_item(**request)
            try:
                self.check_client.put_item(**request)
            except ClientError as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    return
                raise
            finally:
                self.check_client.delete_item(TableName=self.table, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise store_error(self.uri, "a conditional PutItem", exc) from exc
        raise not_exclusive(
            self.uri,
            "PutItem with attribute_not_exists",
            "The endpoint (checkpointEndpointUrl) ignores condition expressions: use "
            "DynamoDB, or an s3:// store",
        )

    def _wait_until_active(self) -> None:
        self.check_client.get_waiter("table_exists").wait(
            TableName=self.table,
            WaiterConfig={
                "Delay": limits.TABLE_WAIT_DELAY_SECONDS,
                "MaxAttempts": limits.TABLE_WAIT_MAX_ATTEMPTS,
            },
        )

    def get(self, stream: str, query: str, batch: int, shard_id: str) -> ShardEnd | None:
        key = {
            PARTITION_KEY: {"S": f"{stream}/{query}"},
            SORT_KEY: {"S": f"{batch_key(batch)}/{shard_id}"},
        }
        try:
            resp = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True)
        except (BotoCoreError, ClientError) as exc:
            raise store_error(self.uri, f"GetItem batch {batch}", exc, shard_id) from exc
        item = resp.get("Item")
        return None if item is None else self._parse(item)

    def _parse(self, item: dict[str, Any]) -> ShardEnd:
        return self._with_shard(item)[1]

    def _with_shard(self, item: dict[str, Any]) -> tuple[str, ShardEnd]:
        key = f"{item.get(PARTITION_KEY, {}).get('S')} {item.get(SORT_KEY, {}).get('S')}"
        return parse_entry(self.uri, f"item {key}", lambda: (item["shardId"]["S"], _end(item)))

    def _query(self, condition: str, values: dict[str, Any], keys_only: bool) -> list[Any]:
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": {"#p": PARTITION_KEY, "#s": SORT_KEY},
            "ExpressionAttributeValues": values,
            "ConsistentRead": True,
        }
        if keys_only:
            request["ProjectionExpression"] = "#p, #s"
        items: list[Any] = []
        try:
            for page in self.client.get_paginator("query").paginate(**request):
                items.extend(page.get("Items", []))
        except (BotoCoreError, ClientError) as exc:
            raise store_error(self.uri, "Query", exc) from exc
        return items

    def get_batch(self, stream: str, query: str, batch: int) -> dict[str, ShardEnd]:
        items = self._query(
            "#p = :p AND begins_with(#s, :b)",
            {":p": {"S": f"{stream}/{query}"}, ":b": {"S": f"{batch_key(batch)}/"}},
            keys_only=False,
        )
        return dict(self._with_shard(item) for item in items)

    def put_if_absent(
        self, stream: str, query: str, batch: int, shard_id: str, end: ShardEnd
    ) -> bool:
        try:
            self.client.put_item(
                TableName=self.table,
                Item=_item(stream, query, batch, shard_id, end),
                ConditionExpression="attribute_not_exists(#s)",
                ExpressionAttributeNames={"#s": SORT_KEY},
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise store_error(self.uri, f"PutItem batch {batch}", exc, shard_id) from exc
        except BotoCoreError as exc:
            raise store_error(self.uri, f"PutItem batch {batch}", exc, shard_id) from exc
        return True

    def purge_before(self, stream: str, query: str, batch: int) -> None:
        keys = self._query(
            "#p = :p AND #s < :b",
            {":p": {"S": f"{stream}/{query}"}, ":b": {"S": batch_key(batch)}},
            keys_only=True,
        )
        for start in range(0, len(keys), limits.DYNAMODB_BATCH_WRITE_MAX_ITEMS):
            chunk = keys[start : start + limits.DYNAMODB_BATCH_WRITE_MAX_ITEMS]
            try:
                self._delete(chunk)
            except (BotoCoreError, ClientError) as exc:
                raise store_error(self.uri, "BatchWriteItem (purge)", exc) from exc

    def _delete(self, keys: list[Any]) -> None:
        requests: dict[str, Any] = {self.table: [{"DeleteRequest": {"Key": key}} for key in keys]}
        for attempt in range(_UNPROCESSED_RETRIES):
            resp = self.client.batch_write_item(RequestItems=requests)
            requests = resp.get("UnprocessedItems") or {}
            if not requests:
                return
            # Unprocessed items are DynamoDB's way of throttling a batch: back off.
            time.sleep(0.05 * 2**attempt)
        raise CheckpointStoreError(
            f"checkpoint store {self.uri}: purge left {len(requests.get(self.table, []))} "
            "throttled items (UnprocessedItems) for the next commit"
        )
