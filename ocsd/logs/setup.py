"""structlog configuration: JSON lines (default), console, or Genesys short lines.

Production chain after structlog's own advice: contextvars, level, ISO UTC
timestamp, orjson rendering straight to stdout bytes, cached loggers. OCS's
81000/81001 records are logged with ``level="trace"``, the Genesys Trace level.
"""

from __future__ import annotations

import sys
import time
from collections.abc import MutableMapping
from typing import Any, BinaryIO, TextIO, cast

import orjson
import structlog

from ocsd.core.genesys import TRACE_MESSAGES
from ocsd.logs.output import SurvivingOutput
from ocsd.logs.trace import LogFormat, genesys_stamp, trace_lines

#: Genesys short-format level abbreviations.
GENESYS_LEVELS = {
    "critical": "Std",
    "error": "Std",
    "warning": "Std",
    "info": "Int",
    "trace": "Trc",
    "debug": "Dbg",
}


def _level(_logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Like structlog's add_log_level, but an explicit ``level="trace"`` wins."""
    event.setdefault("level", "warning" if method == "warn" else method)
    return event


class GenesysRenderer:
    """``HH:MM:SS.mmm Trc 81000 <text>``; other records keep their fields as key=value."""

    def __call__(self, _logger: Any, _method: str, event: MutableMapping[str, Any]) -> str:
        stamp = genesys_stamp(time.time())
        level = GENESYS_LEVELS.get(str(event.pop("level", "info")), "Std")
        text = str(event.pop("event", ""))
        msgid = event.pop("msgid", None)
        event.pop("timestamp", None)
        head = f"{stamp} {level} {msgid} {text}" if msgid is not None else f"{stamp} {level} {text}"
        if msgid in TRACE_MESSAGES:
            return head  # the exact Genesys line; its fields are already in the text
        extra = " ".join(f"{key}={value}" for key, value in event.items())
        return f"{head} {extra}" if extra else head


def _traceback_without_locals() -> Any:
    """structlog's console tracebacks, without the values of local variables: with rich
    installed they show them by default, and a local can hold a URI with its password."""
    if getattr(structlog.dev, "rich", None) is not None:
        return structlog.dev.RichTracebackFormatter(show_locals=False)
    return structlog.dev.plain_traceback


def configure_logging(log_format: LogFormat = "json") -> None:
    """Set up structlog for the whole process; safe to call again (e.g. on reload)."""
    shared: list[Any] = [structlog.contextvars.merge_contextvars, _level]
    if log_format == "json":
        processors = [
            *shared,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ]
        factory: Any = structlog.BytesLoggerFactory(
            cast(BinaryIO, SurvivingOutput(sys.stdout.buffer))
        )
    elif log_format == "console":
        processors = [
            *shared,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.dev.ConsoleRenderer(
                colors=sys.stdout.isatty(), exception_formatter=_traceback_without_locals()
            ),
        ]
        factory = structlog.PrintLoggerFactory(cast(TextIO, SurvivingOutput(sys.stdout)))
    else:
        processors = [*shared, structlog.processors.format_exc_info, GenesysRenderer()]
        factory = structlog.PrintLoggerFactory(cast(TextIO, SurvivingOutput(sys.stdout)))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(0),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    configured = structlog.get_config()["processors"]
    trace_lines.configure(log_format, configured if log_format != "console" else None)


def get_logger(name: str = "ocsd") -> Any:
    return structlog.get_logger(name)
