"""Logging for every layer: structlog's configuration, the 81000/81001 trace lines and
the redaction of credentials."""

from ocsd.logs.setup import configure_logging, get_logger
from ocsd.logs.trace import LogFormat, trace_lines

__all__ = ["LogFormat", "configure_logging", "get_logger", "trace_lines"]
