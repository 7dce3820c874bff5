"""The three ways a request can be wrong, whatever asked, and the one way the daemon
cannot take it now: each maps to one answer.

The control API maps them in one place (404, 409, 400, 503); schedules and
``--start-all`` log them and go on. Anything else raised while serving a request is a
bug: a logged 500, never one of these answers.
"""

from __future__ import annotations

from typing import Any


class NotFound(Exception):
    """What the request names does not exist here (a DBID, a dead letter's id)."""


class NotAllowed(Exception):
    """The request is understood but the current state does not allow it."""

    def detail(self) -> dict[str, Any]:
        """Extra fields for the answer, beside the message (e.g. the current status)."""
        return {}


class BadParameter(ValueError):
    """A request parameter that is wrong whatever the state; names the parameter."""

    def __init__(self, parameter: str, message: str) -> None:
        self.parameter = parameter
        super().__init__(f"{parameter}: {message}")


class Unavailable(Exception):
    """The request is fine but cannot be honoured now (e.g. what it would change cannot
    be stored); asking again later may work."""

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self._detail = detail

    def detail(self) -> dict[str, Any]:
        """Extra fields for the answer, beside the message."""
        return self._detail
