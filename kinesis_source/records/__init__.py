"""Record decoding and encoding, with no Spark. Runs on executors (the source's ``read()``,
the sink's tasks); the Avro type mapping and checks also on the driver.

- ``fast_decode``: a GetRecords body into columns (msgspec or json, base64 in C).
- ``records_page``: one GetRecords page as Arrow, KPL aggregates expanded.
- ``deaggregation``: KPL aggregates into user records (Arrow and Python paths).
- ``hash_range``: an aggregate's user records outside the shard's hash-key range left out.
- ``aggregation``: user records packed into KPL aggregates (the sink).
- ``kpl_format``: the aggregate framing (magic, MD5).
- ``kpl_messages``: aws_kinesis_agg's protobuf classes, importable on their own.
- ``glue_format``: the AWS Glue Schema Registry header (version, compression, schema id).
- ``glue_decode``: a page's registry-framed records into ``value`` and its companions.
- ``glue_encode``: rows encoded with the registry's Avro schema and framed (the sink).
- ``avro_types``: Avro schemas as Arrow and Spark types.
- ``avro_defaults``: a reader schema's defaults as Python values fastavro returns right.
- ``avro_check``: does a column's type fit an Avro schema (the sink's driver check).
"""
