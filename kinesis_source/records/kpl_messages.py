"""aws_kinesis_agg's generated protobuf classes (``messages_pb2``), importable on their own.

Its ``messages_pb2`` does ``import config_pb2`` as a top-level module; its own deaggregator
puts the package folder first on ``sys.path`` for that. We append it instead, so that
nothing else on the path is shadowed. Both the reader's deaggregation and the sink's
aggregation import the classes from here, whichever a process loads first.
"""

from __future__ import annotations

import os
import sys

import aws_kinesis_agg

_AGG_DIR = os.path.dirname(aws_kinesis_agg.__file__)
if _AGG_DIR not in sys.path:
    sys.path.append(_AGG_DIR)
from aws_kinesis_agg import messages_pb2  # noqa: E402

__all__ = ["messages_pb2"]
