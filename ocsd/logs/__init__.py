"""Logging for every layer: structlog's configuration, the 81000/81001 trace lines and
the redaction of credentials.

The names are loaded on first use (PEP 562), so a module that needs only
:mod:`ocsd.logs.redact` (the settings model) does not pay for importing structlog:
``python -m ocsd simulate`` and ``check-config`` start ~0.15 s sooner.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ocsd.logs.setup import configure_logging, get_logger
    from ocsd.logs.trace import LogFormat, trace_lines

__all__ = ["LogFormat", "configure_logging", "get_logger", "trace_lines"]

_HOMES = {
    "configure_logging": "ocsd.logs.setup",
    "get_logger": "ocsd.logs.setup",
    "LogFormat": "ocsd.logs.trace",
    "trace_lines": "ocsd.logs.trace",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'ocsd.logs' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
