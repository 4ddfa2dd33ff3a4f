"""The ``kinesis`` data source: options, schema, stream reader."""

from __future__ import annotations

from pyspark.sql.datasource import DataSource, DataSourceStreamReader
from pyspark.sql.types import StructType

from kinesis_source.options import KinesisOptions, parse_options
from kinesis_source.schema import SCHEMA_DDL


class KinesisDataSource(DataSource):
    """``spark.readStream.format("kinesis")``: records of an Amazon Kinesis data stream."""

    def __init__(self, options: dict[str, str]) -> None:
        super().__init__(options)
        # Every bad option fails here, on the driver, before any task runs.
        self.kinesis_options: KinesisOptions = parse_options(options)

    @classmethod
    def name(cls) -> str:
        return "kinesis"

    def schema(self) -> str:
        # Spark asks for the schema at load(): the first place where an error reaches the
        # user as it is (stream_check.py says why the reader's constructor is not).
        from kinesis_source.source.stream_check import check_streams

        check_streams(self.kinesis_options)
        return SCHEMA_DDL

    def streamReader(self, schema: StructType) -> DataSourceStreamReader:
        from kinesis_source.source.stream_reader import KinesisStreamReader

        return KinesisStreamReader(self.kinesis_options)
