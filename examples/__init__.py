"""Runnable examples built on kinesis_source: see the README's opening lines (word_count)
and its sections "Examples: producer, orders ETL, compaction" (orders_etl) and "Deploying"
(emr/)."""
