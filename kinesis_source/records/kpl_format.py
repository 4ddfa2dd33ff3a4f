"""KPL's aggregate framing: 4 magic bytes, a protobuf ``AggregatedRecord``, its MD5.

Kept apart from ``deaggregation`` (which loads protobuf, about 0.1 s) so that what only
needs to recognise an aggregate, such as the streaming source's planner, a fresh process at
every query's start, does not pay for parsing one.
"""

from __future__ import annotations

KPL_MAGIC = b"\xf3\x89\x9a\xc2"
DIGEST_BYTES = 16
