"""The kinesis-local fixture survives a port taken between picking it and node binding it (the
race three test workers ran into: one worker's session failed to start its emulator)."""

from __future__ import annotations

import socket
from pathlib import Path

import boto3
import pytest

from tests.emulators import kinesis_local
from tests.helpers import REGION


def test_a_taken_port_is_retried_with_fresh_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not kinesis_local.installed():
        pytest.fail(kinesis_local.INSTALL_HINT)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        picks = iter([busy, kinesis_local.free_port()])
        real_free_port = kinesis_local.free_port
        # The first pick is a port someone else already listens on, as in the race.
        monkeypatch.setattr(
            kinesis_local, "free_port", lambda: next(picks, None) or real_free_port()
        )
        with kinesis_local.running(tmp_path) as endpoint:
            client = boto3.client("kinesis", region_name=REGION, endpoint_url=endpoint)
            assert client.list_streams()["StreamNames"] == []
            assert endpoint != f"http://127.0.0.1:{busy}"
    assert "EADDRINUSE" in (tmp_path / "server-1.log").read_text()
