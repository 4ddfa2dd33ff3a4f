"""Command-line tools that go with the examples: see docs/examples.md (produce, compact),
docs/performance.md (bench), docs/deploying.md (package.sh, smoke_zip.sh) and
docs/development.md (test.sh)."""
