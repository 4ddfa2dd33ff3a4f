"""The Spark writers of the ``kinesis`` format: batch (``df.write``) and streaming.

Both take Arrow batches (no per-row Python objects from Spark) and hand each task's rows
to task.py. The commit messages carry each task's counts to the driver, which logs one
line per batch: records and bytes written, calls, retried and throttled entries.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import pyarrow as pa
from pyspark.sql.datasource import (
    DataSourceArrowWriter,
    DataSourceStreamArrowWriter,
    WriterCommitMessage,
)
from pyspark.sql.types import StructType

from kinesis_source.aws.clients import kinesis_client
from kinesis_source.aws.kinesis import describe_stream_summary
from kinesis_source.aws.retry import policy_of
from kinesis_source.errors import KinesisWriteError, SinkInputError
from kinesis_source.logs import configure
from kinesis_source.sink.columns import check_columns
from kinesis_source.sink.options import SinkOptions, parse_sink_options
from kinesis_source.sink.task import SinkPlan, write_partition
from kinesis_source.streams import StreamRef

log = logging.getLogger(__name__)


def sink_plan(raw: Mapping[str, str], schema: StructType, overwrite: bool) -> SinkPlan:
    """Check the options, the save mode and the input columns, on the driver."""
    options = parse_sink_options(raw)
    configure(options.log_level)
    if overwrite:
        raise SinkInputError(
            "the kinesis sink only appends records to a stream: use mode('append') "
            "(batch) or outputMode('append') (streaming)"
        )
    columns = check_columns(
        [(f.name, f.dataType.simpleString()) for f in schema.fields],
        encode_value=options.registry_schema is not None,
    )
    plan = SinkPlan(options, columns)
    if columns.encode_value:
        from kinesis_source.sink.registry import writer_schema

        value_type = schema[columns.data].dataType
        plan = SinkPlan(options, columns, writer_schema(options, columns.data, value_type))
    # Last: what the user wrote (options, columns, the value's schema) is named first.
    check_stream(options)
    return plan


def check_stream(options: SinkOptions) -> None:
    """At save()/start(), on the driver, as the source does at load(): a missing stream,
    another region or endpoint, denied credentials fail here, naming the stream and the
    region, rather than as a task's error."""
    describe_stream_summary(
        kinesis_client(options),
        StreamRef(options.stream_name),
        options.region,
        policy_of(options),
        failure=KinesisWriteError,
    )


@dataclass
class SinkCommitMessage(WriterCommitMessage):
    partition: int
    records: int
    entries: int
    bytes: int
    calls: int
    retried_entries: int
    throttled_entries: int


def _write(plan: SinkPlan, iterator: Iterator[pa.RecordBatch]) -> SinkCommitMessage:
    from pyspark import TaskContext

    configure(plan.options.log_level)  # an executor's Python worker
    context = TaskContext.get()
    partition = context.partitionId() if context is not None else 0
    stats = write_partition(plan, iterator, partition)
    return SinkCommitMessage(
        partition=partition,
        records=stats.records,
        entries=stats.entries,
        bytes=stats.bytes,
        calls=stats.calls,
        retried_entries=stats.retried_entries,
        throttled_entries=stats.throttled_entries,
    )


def _log_batch(plan: SinkPlan, batch: str, messages: Sequence[WriterCommitMessage | None]) -> None:
    configure(plan.options.log_level)  # the driver's Python process that commits
    stream = plan.options.stream_name
    done = [m for m in messages if isinstance(m, SinkCommitMessage)]
    log.info(
        "kinesis sink, stream %r, %s: wrote %d records (%d Kinesis records, %d bytes) in %d "
        "PutRecords calls over %d tasks; %d entries retried, %d of them throttled",
        stream,
        batch,
        sum(m.records for m in done),
        sum(m.entries for m in done),
        sum(m.bytes for m in done),
        sum(m.calls for m in done),
        len(done),
        sum(m.retried_entries for m in done),
        sum(m.throttled_entries for m in done),
    )


class KinesisBatchWriter(DataSourceArrowWriter):
    """``df.write.format("kinesis").mode("append").save()``."""

    def __init__(self, plan: SinkPlan) -> None:
        self.plan = plan

    def write(self, iterator: Iterator[pa.RecordBatch]) -> SinkCommitMessage:
        return _write(self.plan, iterator)

    def commit(self, messages: list[WriterCommitMessage | None]) -> None:
        _log_batch(self.plan, "batch write", messages)

    def abort(self, messages: list[WriterCommitMessage | None]) -> None:
        _log_batch(
            self.plan,
            "failed batch write (records below stay written)",
            messages,
        )


class KinesisStreamWriter(DataSourceStreamArrowWriter):
    """``df.writeStream.format("kinesis")``: each micro-batch's rows, at least once."""

    def __init__(self, plan: SinkPlan) -> None:
        self.plan = plan

    def write(self, iterator: Iterator[pa.RecordBatch]) -> SinkCommitMessage:
        return _write(self.plan, iterator)

    def commit(self, messages: list[WriterCommitMessage | None], batchId: int) -> None:
        _log_batch(self.plan, f"batch {batchId}", messages)

    def abort(self, messages: list[WriterCommitMessage | None], batchId: int) -> None:
        _log_batch(
            self.plan,
            f"failed batch {batchId} (records below stay written; the batch runs again)",
            messages,
        )
