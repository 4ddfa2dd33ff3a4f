"""The connector's exception family.

Every error the connector raises on purpose is a ``KinesisSourceError``; subclasses say
what went wrong, and carry the stream, shard and sequence number where they matter.
"""

from __future__ import annotations


class KinesisSourceError(Exception):
    """Base class of every error raised by kinesis_source."""

    def __init__(
        self,
        message: str,
        *,
        stream: str | None = None,
        shard_id: str | None = None,
        sequence_number: str | None = None,
    ) -> None:
        super().__init__(message)
        self.stream = stream
        self.shard_id = shard_id
        self.sequence_number = sequence_number


class OptionError(KinesisSourceError, ValueError):
    """A reader option is missing, unknown or has a bad value."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"option '{option}': {message}")
        self.option = option


class StreamNotFoundError(KinesisSourceError):
    """The stream does not exist in the region (or the credentials cannot see it)."""


class CheckpointStoreError(KinesisSourceError):
    """The checkpoint store cannot be read or written."""


class CheckpointConflictError(CheckpointStoreError):
    """Another task attempt recorded the end of the same (batch, shard) first.

    Raised on purpose so that Spark retries the task, which then replays the winner's range.
    """


class CredentialsError(KinesisSourceError):
    """The configured credentials cannot be obtained (profile, AssumeRole)."""


class DataLossError(KinesisSourceError):
    """Records the query should have read are no longer in the stream."""


class KinesisReadError(KinesisSourceError):
    """A Kinesis call kept failing after the configured retries."""


class RecordDecodeError(KinesisReadError):
    """A registry-framed record could not be decoded and ``failOnDecodeError=true``."""


class KclLeaseError(KinesisSourceError):
    """The KCL lease table (``kclLeaseTable``) cannot be read or holds no KCL leases."""


class SinkInputError(KinesisSourceError, ValueError):
    """The DataFrame written to the sink has a column, or a row, the sink cannot write."""


class KinesisWriteError(KinesisSourceError):
    """Records could not be written to the stream after the configured retries."""


class ConsumerError(KinesisSourceError):
    """The enhanced fan-out consumer cannot be registered, found or used."""


class SchemaRegistryError(KinesisSourceError):
    """The AWS Glue Schema Registry, a registry, a schema or a schema version cannot be used."""


class SchemaMismatchError(SchemaRegistryError, ValueError):
    """An Avro schema has no Spark type, or a column's type does not match the schema.

    ``field`` is the dotted path of the field at fault (``""`` for the whole value).
    """

    def __init__(self, field: str, message: str) -> None:
        where = f"field '{field}'" if field else "the value"
        super().__init__(f"{where}: {message}")
        self.field = field
        self.reason = message
