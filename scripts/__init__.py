"""Command-line tools that go with the examples: see the README sections "Examples: producer,
orders ETL, compaction" (produce, compact), "Performance" (bench), "Deploying" (package.sh,
smoke_zip.sh) and "Development" (test.sh)."""
