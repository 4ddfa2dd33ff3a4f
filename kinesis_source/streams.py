"""Which streams a query reads: stream names or ARNs from the options, checked on the driver.

Kinesis names a stream by 1 to 128 of ``a-zA-Z0-9_.-``; an ARN is
``arn:PARTITION:kinesis:REGION:ACCOUNT:stream/NAME``. Checking both here turns a typo into an
error naming the value instead of a ``ValidationException`` from the first API call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kinesis_source.errors import OptionError

# Kinesis' CreateStream rule for StreamName.
STREAM_NAME_RE = re.compile(r"[a-zA-Z0-9_.-]{1,128}")
_ARN_RE = re.compile(r"arn:(aws[a-z-]*):kinesis:([a-z0-9-]+):(\d{12}):stream/(.+)")
# us-east-1, eu-central-2, us-gov-west-1, cn-north-1, us-isob-east-1, ...
REGION_RE = re.compile(r"[a-z]{2,}(-[a-z]+)+-\d+")
# What botocore itself accepts as a region name (its host-label rule): an emulator named by
# endpointUrl may use a made-up region such as "local".
ANY_REGION_RE = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")


@dataclass(frozen=True)
class StreamRef:
    """One stream of the query. ``name`` identifies it in offsets, the checkpoint store and
    the ``streamName`` column; ``arn`` is set when the user named it by ARN, and then every
    Kinesis call addresses it by ARN (reading across accounts through a resource policy)."""

    name: str
    arn: str | None = None

    def api_args(self) -> dict[str, str]:
        """The keyword that names this stream in a Kinesis call."""
        if self.arn is not None:
            return {"StreamARN": self.arn}
        return {"StreamName": self.name}

    def describe(self) -> str:
        """How messages name the stream: as the user did."""
        return repr(self.arn if self.arn is not None else self.name)


def _split(option: str, value: str) -> list[str]:
    parts = [part.strip() for part in value.split(",")]
    if not any(parts):
        raise OptionError(option, "is empty; expected one value or a comma-separated list")
    if not all(parts):
        raise OptionError(option, f"got {value!r}; an entry of the comma-separated list is empty")
    return parts


def _no_duplicates(option: str, refs: list[StreamRef]) -> tuple[StreamRef, ...]:
    seen: set[str] = set()
    for ref in refs:
        if ref.name in seen:
            raise OptionError(
                option,
                f"names the stream {ref.name!r} twice; each stream of a query needs its own "
                "name (the streamName column, offsets and the checkpoint store key on it)",
            )
        seen.add(ref.name)
    return tuple(refs)


def parse_stream_names(value: str, region: str | None = None) -> tuple[StreamRef, ...]:
    """``streamName``: one name or a comma-separated list, whitespace around commas ignored.

    ``region`` only completes the message: the first line a user reads names both.
    """
    refs = []
    for name in _split("streamName", value):
        if not STREAM_NAME_RE.fullmatch(name):
            where = f" (region {region.strip()})" if region and region.strip() else ""
            raise OptionError(
                "streamName",
                f"got the stream name {name!r}{where}; a Kinesis stream name is 1 to 128 "
                "letters, digits or any of _.-",
            )
        refs.append(StreamRef(name))
    return _no_duplicates("streamName", refs)


def parse_stream_arns(value: str) -> tuple[tuple[StreamRef, ...], str]:
    """``streamARN``: the streams and the one region all of them are in."""
    refs, regions = [], set()
    for arn in _split("streamARN", value):
        match = _ARN_RE.fullmatch(arn)
        if match is None or not STREAM_NAME_RE.fullmatch(match.group(4)):
            raise OptionError(
                "streamARN",
                f"got {arn!r}; expected a Kinesis stream ARN: "
                "arn:aws:kinesis:REGION:ACCOUNT_ID:stream/STREAM_NAME (a 12-digit account id)",
            )
        regions.add(match.group(2))
        refs.append(StreamRef(match.group(4), arn))
    if len(regions) > 1:
        raise OptionError(
            "streamARN",
            f"names streams in several regions ({', '.join(sorted(regions))}); one query "
            "reads streams of one region",
        )
    return _no_duplicates("streamARN", refs), regions.pop()


def check_region(region: str, streams: tuple[StreamRef, ...], endpoint_url: str | None) -> str:
    """``region`` if it has the shape of an AWS region; the error names the streams too.

    With ``endpoint_url`` (an emulator, a VPC endpoint) the shape of AWS' regions is not
    required, only a name botocore can sign with.
    """
    if endpoint_url is not None and ANY_REGION_RE.fullmatch(region):
        return region
    if not REGION_RE.fullmatch(region):
        names = ", ".join(ref.describe() for ref in streams)
        raise OptionError(
            "region",
            f"got {region!r} for the stream {names}; expected an AWS region name such as "
            "us-east-1 or eu-west-2 (with endpointUrl, any name of letters, digits and "
            "hyphens)",
        )
    return region
