"""Command-line tools that go with the examples (see docs/pipelines.md)."""
