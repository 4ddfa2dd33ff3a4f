"""Record decoding: GetRecords bodies into Arrow, KPL aggregates into user records, and AWS
Glue Schema Registry records into columns (``glue_format`` the header, ``glue_decode`` a
page's records, ``avro_types``/``avro_defaults`` Avro as Arrow and Spark types,
``avro_check``/``glue_encode`` the sink's side). Knows no Spark session."""
