"""The ``kinesis`` data source: options, schema, stream reader, batch and streaming writers."""

from __future__ import annotations

from pyspark.sql.datasource import (
    DataSource,
    DataSourceStreamReader,
    DataSourceStreamWriter,
    DataSourceWriter,
)
from pyspark.sql.types import StructType

from kinesis_source.logs import configure
from kinesis_source.schema import SCHEMA_DDL
from kinesis_source.source.options import KinesisOptions, parse_options


class KinesisDataSource(DataSource):
    """``format("kinesis")``: read (``readStream``) or write (``write``, ``writeStream``) an
    Amazon Kinesis data stream.

    Spark builds the data source before saying which way it goes, so options are parsed by
    the method that does: ``schema``/``streamReader`` for reads, ``writer``/``streamWriter``
    for writes. All of them run on the driver, so every bad option still fails before any
    task runs.
    """

    @classmethod
    def name(cls) -> str:
        return "kinesis"

    def _source_options(self) -> KinesisOptions:
        # Each method runs in a Python process Spark started, with no logging set up.
        opts = parse_options(self.options)
        configure(opts.log_level)
        return opts

    def schema(self) -> str:
        # Spark asks for the schema at load(): the first place where an error reaches the
        # user as it is (stream_check.py says why the reader's constructor is not).
        from kinesis_source.source.driver.stream_check import check_streams

        check_streams(self._source_options())
        return SCHEMA_DDL

    def streamReader(self, schema: StructType) -> DataSourceStreamReader:
        from kinesis_source.source.stream_reader import KinesisStreamReader

        return KinesisStreamReader(self._source_options())

    def writer(self, schema: StructType, overwrite: bool) -> DataSourceWriter:
        from kinesis_source.sink.writer import KinesisBatchWriter, sink_plan

        return KinesisBatchWriter(sink_plan(self.options, schema, overwrite))

    def streamWriter(self, schema: StructType, overwrite: bool) -> DataSourceStreamWriter:
        from kinesis_source.sink.writer import KinesisStreamWriter, sink_plan

        return KinesisStreamWriter(sink_plan(self.options, schema, overwrite))
