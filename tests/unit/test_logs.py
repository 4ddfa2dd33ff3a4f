"""The connector's log lines in a process nobody configured logging in (as Spark starts
them): WARNING and above on stderr, ``logLevel`` for more, never twice. Each case runs in a
fresh interpreter, since pytest itself puts handlers on the root logger."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _stderr(code: str) -> str:
    script = "import logging\nfrom kinesis_source.logs import configure\n" + textwrap.dedent(code)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stderr


def test_warnings_reach_stderr_once_and_info_stays_quiet_by_default() -> None:
    err = _stderr(
        """
        configure()
        configure()  # every entry point calls it: still one handler
        log = logging.getLogger("kinesis_source.aws.retry")
        log.info("a batch")
        log.warning("GetRecords throttled")
        """
    )
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].endswith(" WARNING kinesis_source.aws.retry: GetRecords throttled")


def test_log_level_turns_on_info() -> None:
    err = _stderr(
        """
        configure("INFO")
        logging.getLogger("kinesis_source.source.stream_reader").info("batch 3 read")
        logging.getLogger("kinesis_source.x").debug("per call")
        """
    )
    assert err.count("INFO kinesis_source.source.stream_reader: batch 3 read") == 1, err
    assert "per call" not in err


def test_an_application_that_configured_logging_gets_each_line_once() -> None:
    err = _stderr(
        """
        logging.basicConfig(format="APP %(name)s %(message)s")
        configure()
        logging.getLogger("kinesis_source.stores.s3").warning("purge failed")
        """
    )
    assert err.splitlines() == ["APP kinesis_source.stores.s3 purge failed"], err
