"""Reading a KCL lease table from DynamoDB (on moto), items in the KCL's own shape."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest

from kinesis_source.errors import KclLeaseError
from kinesis_source.source.driver.kcl_leases import Lease, read_lease_table
from tests.conftest import REGION


def kcl_table(dynamodb: Any, items: list[dict[str, Any]]) -> str:
    """A lease table as the KCL creates it (hash key leaseKey) holding ``items``."""
    name = f"kcl-app-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "leaseKey", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "leaseKey", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for item in items:
        dynamodb.put_item(TableName=name, Item=item)
    return name


def lease_item(key: str, checkpoint: str, sub: int, **extra: Any) -> dict[str, Any]:
    """The attributes KCL 2.x/3.x write for a lease (KCL 1.x writes a subset)."""
    return {
        "leaseKey": {"S": key},
        "checkpoint": {"S": checkpoint},
        "checkpointSubSequenceNumber": {"N": str(sub)},
        "leaseOwner": {"S": "worker-a1b2"},
        "leaseCounter": {"N": "1187"},
        "ownerSwitchesSinceCheckpoint": {"N": "0"},
        **extra,
    }


def test_leases_are_read_whatever_else_an_item_holds_and_nothing_is_written(
    moto_endpoint: str,
) -> None:
    dynamodb = boto3.client("dynamodb", region_name=REGION, endpoint_url=moto_endpoint)
    items = [
        lease_item("shardId-000000000000", "SHARD_END", 0),
        lease_item(
            "shardId-000000000001",
            "49590338271490256608559692538361571095921575989136588898",
            2,
            parentShardId={"SS": ["shardId-000000000000"]},
            pendingCheckpoint={"S": "49590338271490256608559692540000000000000000000000000000"},
        ),
        # KCL 1.x before sub-sequence numbers: no checkpointSubSequenceNumber.
        {"leaseKey": {"S": "shardId-000000000002"}, "checkpoint": {"S": "TRIM_HORIZON"}},
    ]
    table = kcl_table(dynamodb, items)
    before = dynamodb.scan(TableName=table)["Items"]

    leases = read_lease_table(dynamodb, table)

    assert sorted(leases, key=lambda lease: lease.shard_id) == [
        Lease("shardId-000000000000", "SHARD_END", 0),
        Lease(
            "shardId-000000000001", "49590338271490256608559692538361571095921575989136588898", 2
        ),
        Lease("shardId-000000000002", "TRIM_HORIZON", 0),
    ]
    assert dynamodb.scan(TableName=table)["Items"] == before


def test_a_missing_lease_table_is_named_with_the_option(moto_endpoint: str) -> None:
    dynamodb = boto3.client("dynamodb", region_name=REGION, endpoint_url=moto_endpoint)
    with pytest.raises(KclLeaseError, match="'no-such-app' does not exist.*kclLeaseTable"):
        read_lease_table(dynamodb, "no-such-app")
