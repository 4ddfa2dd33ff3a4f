"""The ``kinesis`` data source: options, schema, batch and stream readers, batch and streaming
writers."""

from __future__ import annotations

from pyspark.sql.datasource import (
    DataSource,
    DataSourceReader,
    DataSourceStreamReader,
    DataSourceStreamWriter,
    DataSourceWriter,
)
from pyspark.sql.types import StructType

from kinesis_source.schema import SCHEMA_DDL
from kinesis_source.source.options import KinesisOptions, parse_options


class KinesisDataSource(DataSource):
    """``format("kinesis")``: read (``readStream``, or ``read`` over a bounded range) or write
    (``write``, ``writeStream``) an Amazon Kinesis data stream.

    Spark builds the data source before saying which way it goes, so options are parsed by
    the method that does: ``schema`` and ``reader``/``streamReader`` for reads,
    ``writer``/``streamWriter`` for writes. All of them run on the driver, so every bad
    option still fails before any task runs.
    """

    @classmethod
    def name(cls) -> str:
        return "kinesis"

    def _source_options(self, *, stream: bool = True) -> KinesisOptions:
        return parse_options(self.options, stream=stream)

    def schema(self) -> str:
        # Spark asks for the schema at load(): the first place where an error reaches the
        # user as it is (stream_check.py says why the reader's constructor is not). Whether
        # the read is a stream or a batch is not known yet: reader and streamReader check
        # what only one of them takes.
        from kinesis_source.source.driver.stream_check import check_streams

        check_streams(self._source_options(stream=False))
        return SCHEMA_DDL

    def reader(self, schema: StructType) -> DataSourceReader:
        from kinesis_source.source.batch_options import parse_batch_read
        from kinesis_source.source.batch_reader import KinesisBatchReader

        return KinesisBatchReader(parse_batch_read(self.options))

    def streamReader(self, schema: StructType) -> DataSourceStreamReader:
        from kinesis_source.source.stream_reader import KinesisStreamReader

        return KinesisStreamReader(self._source_options())

    def writer(self, schema: StructType, overwrite: bool) -> DataSourceWriter:
        from kinesis_source.sink.writer import KinesisBatchWriter, sink_plan

        return KinesisBatchWriter(sink_plan(self.options, schema, overwrite))

    def streamWriter(self, schema: StructType, overwrite: bool) -> DataSourceStreamWriter:
        from kinesis_source.sink.writer import KinesisStreamWriter, sink_plan

        return KinesisStreamWriter(sink_plan(self.options, schema, overwrite))
