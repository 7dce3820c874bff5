"""The 81000/81001 fast path writes exactly the line structlog would write."""

from __future__ import annotations

import contextlib
import io
import re
import sys
from collections.abc import Iterator

import orjson
import structlog

from ocsd.logs import LogFormat, configure_logging, get_logger, trace_lines

TEMPLATE = "Sending periodic HTTP status notification CampaignGroupState for Campaign Group {name} to {uri}"
TEXT = TEMPLATE.format(name="Q4", uri="http://127.0.0.1:9/ocs")


@contextlib.contextmanager
def stdout_bytes() -> Iterator[io.BytesIO]:
    """Swap stdout inside the test itself (pytest's capture re-installs its own at each phase)."""
    raw = io.BytesIO()
    wrapper, previous = io.TextIOWrapper(raw, write_through=True), sys.stdout
    sys.stdout = wrapper
    try:
        yield raw
    finally:
        sys.stdout = previous
        structlog.reset_defaults()
        trace_lines.configure(None, None)
        wrapper.detach()


def _both(log_format: LogFormat, raw: io.BytesIO) -> tuple[str, str]:
    configure_logging(log_format)
    trace_lines.write(81001, TEMPLATE, "Q4 ✓", "http://127.0.0.1:9/ocs")
    trace_lines.flush()
    get_logger("ocsd.delivery.notifier").info(
        TEMPLATE.format(name="Q4 ✓", uri="http://127.0.0.1:9/ocs"),
        level="trace",
        msgid=81001,
        campaign_group="Q4 ✓",
        uri="http://127.0.0.1:9/ocs",
    )
    fast, slow = raw.getvalue().decode().splitlines()
    return fast, slow


def test_json_line_is_structlogs_line() -> None:
    with stdout_bytes() as stdout:
        fast, slow = _both("json", stdout)
    fast_record, slow_record = orjson.loads(fast), orjson.loads(slow)
    assert list(fast_record) == list(slow_record)  # same keys, same order
    assert fast_record.pop("timestamp")[:16] == slow_record.pop("timestamp")[:16]
    assert fast_record == slow_record
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z", orjson.loads(fast)["timestamp"]
    )


def test_genesys_line_is_the_genesys_renderers_line() -> None:
    with stdout_bytes() as stdout:
        fast, slow = _both("genesys", stdout)
    text = TEMPLATE.format(name="Q4 ✓", uri="http://127.0.0.1:9/ocs")
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3} Trc 81001 " + re.escape(text), fast), fast
    assert fast[13:] == slow[13:]


def test_lines_go_through_structlog_when_logs_are_captured() -> None:
    with stdout_bytes() as stdout:
        configure_logging("json")
        with structlog.testing.capture_logs() as captured:
            trace_lines.write(81000, TEMPLATE, "Q4", "http://127.0.0.1:9/ocs")
        written = stdout.getvalue()
    assert captured == [
        {
            "event": TEXT,
            "level": "trace",
            "msgid": 81000,
            "campaign_group": "Q4",
            "uri": "http://127.0.0.1:9/ocs",
            "log_level": "info",
        }
    ]
    assert written == b""
