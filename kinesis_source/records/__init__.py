"""Record decoding: GetRecords bodies into Arrow, KPL aggregates into user records. Knows no
Spark session."""
