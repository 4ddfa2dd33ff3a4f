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

from kinesis_source.aws.glue import SchemaVersion
from kinesis_source.logs import configure
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
        # Each method runs in a Python process Spark started, with no logging set up.
        opts = parse_options(self.options, stream=stream)
        configure(opts.log_level)
        return opts

    def schema(self) -> str | StructType:
        # Spark asks for the schema at load(): the first place where an error reaches the
        # user as it is (stream_check.py says why the reader's constructor is not). Whether
        # the read is a stream or a batch is not known yet: reader and streamReader check
        # what only one of them takes.
        from kinesis_source.source.driver.stream_check import check_streams

        opts = self._source_options(stream=False)
        check_streams(opts)
        reader = self._reader_schema(opts)
        if reader is None:
            return SCHEMA_DDL
        from pyspark.sql.pandas.types import from_arrow_schema

        from kinesis_source.source.driver.schema_registry import output_schema

        # A StructType, not DDL: DDL cannot say that an array's items or a map's values
        # are never null, and the Arrow batches must match the schema exactly.
        return from_arrow_schema(output_schema(reader), prefer_timestamp_ntz=True)

    def _reader_schema(self, opts: KinesisOptions) -> SchemaVersion | None:
        """schemaRegistry=glue: the reader schema, asked of Glue once. Spark pickles this
        object after schema() for streamReader(), so the one found at load() is the one read
        with, even if a newer version is registered in between."""
        if not hasattr(self, "_registry_reader"):
            from kinesis_source.source.driver.schema_registry import reader_schema

            self._registry_reader = reader_schema(opts)
        return self._registry_reader

    def reader(self, schema: StructType) -> DataSourceReader:
        from kinesis_source.source.batch_options import parse_batch_read
        from kinesis_source.source.batch_reader import KinesisBatchReader

        read = parse_batch_read(self.options)
        registry = self._reader_schema(read.opts)
        if registry is None:
            return KinesisBatchReader(read)
        from pyspark.sql.pandas.types import to_arrow_schema

        return KinesisBatchReader(read, registry, to_arrow_schema(schema, timezone="UTC"))

    def streamReader(self, schema: StructType) -> DataSourceStreamReader:
        from kinesis_source.source.stream_reader import KinesisStreamReader

        opts = self._source_options()
        reader = self._reader_schema(opts)
        if reader is None:
            return KinesisStreamReader(opts)
        from pyspark.sql.pandas.types import to_arrow_schema

        # The Arrow schema Spark checks each batch against, made from the schema it has.
        return KinesisStreamReader(opts, reader, to_arrow_schema(schema, timezone="UTC"))

    def writer(self, schema: StructType, overwrite: bool) -> DataSourceWriter:
        from kinesis_source.sink.writer import KinesisBatchWriter, sink_plan

        return KinesisBatchWriter(sink_plan(self.options, schema, overwrite))

    def streamWriter(self, schema: StructType, overwrite: bool) -> DataSourceStreamWriter:
        from kinesis_source.sink.writer import KinesisStreamWriter, sink_plan

        return KinesisStreamWriter(sink_plan(self.options, schema, overwrite))
