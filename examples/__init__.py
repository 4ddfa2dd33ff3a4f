"""Runnable examples built on kinesis_source (see docs/pipelines.md)."""
