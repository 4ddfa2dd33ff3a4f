"""Record decoding and encoding, with no Spark. Runs on executors (the source's ``read()``,
the sink's tasks).

- ``fast_decode``: a GetRecords body into columns (msgspec or json, base64 in C).
- ``records_page``: one GetRecords page as Arrow, KPL aggregates expanded.
- ``deaggregation``: KPL aggregates into user records (Arrow and Python paths).
- ``aggregation``: user records packed into KPL aggregates (the sink).
- ``kpl_format``: the aggregate framing (magic, MD5).
- ``kpl_messages``: aws_kinesis_agg's protobuf classes, importable on their own.
"""
