"""Outbound Schedules: commands that run a Campaign Group at set times or after delays.

A group's ``schedule`` option is a ``;``-separated list of ``<when> <command> [args]``:
``+30s``/``+5m``/``+1h`` after the daemon starts (once), or ``HH:MM[:SS]`` every
day in the configured time zone. Pure: parsing and "what is due when" take the time
as arguments; the daemon's scheduler task only sleeps and applies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from ocsd.core.genesys import DialMode, OptimizeBy, Request, parse_enum
from ocsd.core.lifecycle import DialingChange

#: Commands a schedule may run, and the requests each one makes, in order.
COMMANDS: dict[str, tuple[Request, ...]] = {
    "load": (Request.LOAD,),
    "start": (Request.START,),
    "setmode": (Request.SET_DIAL_MODE,),
    "stop": (Request.STOP,),
    "unload": (Request.UNLOAD,),
    "forceunload": (Request.FORCE_UNLOAD,),
    # Unload of a running group already stops it first (actions 10 then 8), as docs/contract.md#waiting-unload says.
    "complete": (Request.UNLOAD,),
}
_ALIASES = {"force-unload": "forceunload", "set-mode": "setmode", "setdialingmode": "setmode"}

_OFFSET = re.compile(r"^\+(\d+(?:\.\d+)?)([smh]?)$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_UNIT_SECONDS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}
#: Latest +offset after start: a year (366 days). Digits alone made any size, up to inf.
MAX_OFFSET_S = 366 * 86_400.0


class ScheduleError(ValueError):
    """A schedule entry that cannot be understood; the message names it."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One schedule command: either ``offset`` seconds after start, or a daily ``clock`` time."""

    text: str
    command: str
    change: DialingChange
    offset: float | None = None
    clock: tuple[int, int, int] | None = None

    @property
    def requests(self) -> tuple[Request, ...]:
        return COMMANDS[self.command]

    def first_due(self, started: float, tz: ZoneInfo) -> float:
        """Wall time (epoch seconds) this entry is first due, for a daemon started at ``started``."""
        if self.offset is not None:
            return started + self.offset
        return self.next_daily(started, tz)

    def next_daily(self, after: float, tz: ZoneInfo) -> float:
        """The first occurrence of the daily time at or after ``after``."""
        assert self.clock is not None
        hour, minute, second = self.clock
        local = datetime.fromtimestamp(after, tz)
        candidate = local.replace(hour=hour, minute=minute, second=second, microsecond=0)
        if candidate.timestamp() < after:
            candidate = (candidate + timedelta(days=1)).replace(
                hour=hour, minute=minute, second=second
            )
        return candidate.timestamp()


def _dialing_args(command: str, args: list[str], text: str) -> DialingChange:
    if not args:
        return DialingChange()
    if command not in ("start", "setmode"):
        raise ScheduleError(f"{text!r}: {command} takes no arguments")
    if len(args) > 3:
        raise ScheduleError(f"{text!r}: expected '{command} [dialmode [optimizeby goal]]'")
    try:
        mode = parse_enum(DialMode, args[0])
        optimize_by = parse_enum(OptimizeBy, args[1]) if len(args) > 1 else None
    except ValueError as exc:
        raise ScheduleError(f"{text!r}: {exc}") from None
    goal = None
    if len(args) > 2:
        if not args[2].isdigit():
            raise ScheduleError(f"{text!r}: goal must be a whole number, got {args[2]!r}")
        goal = int(args[2])
    return DialingChange(mode, optimize_by, goal)


def parse_entry(text: str) -> Entry:
    words = text.split()
    if len(words) < 2:
        raise ScheduleError(f"{text!r}: expected '<when> <command> [arguments]'")
    when, command, args = words[0], words[1].lower(), words[2:]
    command = _ALIASES.get(command, command)
    if command not in COMMANDS:
        raise ScheduleError(
            f"{text!r}: unknown command {words[1]!r} (known: {', '.join(COMMANDS)})"
        )
    change = _dialing_args(command, args, text)
    if match := _OFFSET.match(when):
        offset = float(match[1]) * _UNIT_SECONDS[match[2]]
        if not offset <= MAX_OFFSET_S:
            raise ScheduleError(f"{text!r}: {when} is more than a year (+8784h) after start")
        return Entry(text, command, change, offset=offset)
    if match := _CLOCK.match(when):
        hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
        if hour > 23 or minute > 59 or second > 59:
            raise ScheduleError(f"{text!r}: {when} is not a time of day")
        return Entry(text, command, change, clock=(hour, minute, second))
    raise ScheduleError(f"{text!r}: when must be +<N>s, +<N>m, +<N>h or HH:MM[:SS], got {when!r}")


def parse_schedule(text: str) -> tuple[Entry, ...]:
    """Parse a ``schedule`` option; raises ScheduleError naming the bad command."""
    return tuple(parse_entry(part.strip()) for part in text.split(";") if part.strip())
