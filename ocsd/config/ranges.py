"""What a value of an option may be: the range of every number, and what makes a URI, a
host and a file path usable. One set of rules for ``check-config``, ``run``, a reload and
the ``OCSD_*`` environment, so the first refuses exactly what the others cannot run.

Each range is an [ocsd decision]: finite (no nan, no inf) and with an upper bound, because
a value that parses is not necessarily one the daemon can run. Unbounded, ``http-response-
timeout = inf`` killed every sender on its first POST (aiohttp cannot arm an infinite
timer), a ``campaigngroup-states-interval`` of 1e24 crashed the start-up log (orjson
writes 64-bit integers), ``stats-window = 1e-30`` froze the event loop (the window's
buckets were thinner than the resolution of the simulated clock), and a DBID beyond 64 bits
could not be written in a JSON answer. Every bound below says why it is where it is; the
configuration reference (docs/configuration.md), made from the model, shows each range.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import annotated_types
from pydantic import Field
from yarl import URL

from ocsd.logs.redact import REDACTED, redact_text


@dataclass(frozen=True)
class Bound(annotated_types.GroupedMetadata):
    """The allowed values of a numeric option, ``low`` to ``high`` both included.

    Used as ``Annotated[float, Bound(...)]``: pydantic applies it (``ge``, ``le``, finite
    only) and :func:`ocsd.config.settings.load_settings` words its refusal with
    :meth:`refusal`, which names the value and the range.
    """

    low: float
    high: float
    unit: str = ""  # "seconds", ... ("" for a count)
    whole: bool = False  # a whole number (the field is an int)
    note: str = ""  # what a special value means, e.g. "0 turns them off"
    fraction: bool = False  # a share written as a fraction (0.3, not 30 or 30%)

    def __iter__(self) -> Iterator[Any]:
        yield annotated_types.Ge(self.low)
        yield annotated_types.Le(self.high)
        if not self.whole:
            yield Field(allow_inf_nan=False)

    def allowed(self) -> str:
        """The range in words: ``0.1 to 3600 seconds``, ``a whole number from 1 to 1000``."""
        text = f"{_number(self.low)} to {_number(self.high)}"
        if self.whole:
            text = f"a whole number from {text}"
        if self.unit:
            text = f"{text} {self.unit}"
        return f"{text} ({self.note})" if self.note else text

    def refusal(self, value: object, problem: str = "is out of range") -> str:
        """One line naming the value and the range: ``'inf' is out of range; allowed: ...``."""
        hint = " (a fraction: 0.3 is 30 %)" if self.fraction else ""
        return f"{shown(value)} {problem}; allowed: {self.allowed()}{hint}"

    def problem(self, value: float) -> str | None:
        """The refusal of ``value`` (already a number), or None: for values that do not
        come through the settings model (``ocsd demo``'s options)."""
        if isinstance(value, bool) or not math.isfinite(value):
            return self.refusal(value)
        if self.whole and value != int(value):
            return self.refusal(value, "is not a whole number")
        return None if self.low <= value <= self.high else self.refusal(value)


def _number(value: float) -> str:
    """A bound as a user types it: 86400, 0.1, 2147483647 (never 8.64e+04)."""
    if isinstance(value, int) or value.is_integer():
        return str(int(value))
    return f"{value:g}"


def shown(value: object) -> str:
    """A value in a message: a text quoted as written (shortened if long), a number as is."""
    if isinstance(value, str):
        text = value.strip()
        return repr(text if len(text) <= 40 else text[:40] + "...")
    return repr(value) if isinstance(value, float) and not math.isfinite(value) else str(value)


#: pydantic's error types of a number that cannot be one, and how a refusal says it.
NUMBER_PROBLEMS = {
    "greater_than": "is out of range",
    "greater_than_equal": "is out of range",
    "less_than": "is out of range",
    "less_than_equal": "is out of range",
    "finite_number": "is out of range",
    "float_parsing": "is not a number",
    "float_type": "is not a number",
    "int_parsing": "is not a whole number",
    "int_parsing_size": "is out of range",
    "int_type": "is not a whole number",
    "int_from_float": "is not a whole number",
}

DAY_S = 86_400.0

# -- [OCServer] ---------------------------------------------------------------------------

#: A day at most: a periodic status is worth sending more often than that. (Memory no
#: longer grows with the interval: the ticker's slots are capped, service.ticker.MAX_SLOTS.)
INTERVAL = Bound(0, 86_400, "seconds", whole=True, note="0 turns them off")
#: aiohttp cannot time out after inf seconds (every sender died on its first POST); under
#: 0.1 s no receiver but one on the same machine can answer; an hour is already a hang.
HTTP_RESPONSE_TIMEOUT = Bound(0.1, 3600, "seconds")
#: One socket each; the usual limit of open files is 1,024.
POOL_SIZE = Bound(1, 1000, whole=True)

# -- [ocsd] -------------------------------------------------------------------------------

CONTROL_PORT = Bound(0, 65_535, whole=True, note="0: any free port")
#: Seconds a control connection may stay idle: under 0.1 s a client could not send its
#: request after connecting; an hour is already a leak.
CONTROL_IDLE_TIMEOUT = Bound(0.1, 3600, "seconds")
#: Control connections open at once (lowered at start to fit under the file limit).
CONTROL_MAX_CONNECTIONS = Bound(1, 100_000, whole=True)
#: Simulated seconds. Below 1 s the window's 60 buckets near a simulated clock of ~1.7e9 s
#: come close to its resolution (1e-30 froze the loop, SIGTERM unanswered); a day at most.
STATS_WINDOW = Bound(1, 86_400, "seconds")
#: Simulated seconds per wall second: 1,000x slower than real time to 100,000x faster.
TIME_SCALE = Bound(0.001, 100_000)
#: A 63-bit seed: written in JSON logs and answers as a number.
SEED = Bound(0, 2**63 - 1, whole=True)
#: Instances sharing the groups (shard = auto): no more than the groups a file can make
#: (ocsd.config.templates.MAX_COUNT), or some would run none.
SHARD_COUNT = Bound(1, 200_000, whole=True)
#: Docker waits 10 s before SIGKILL; Kubernetes 30 s by default; 10 minutes at most.
SHUTDOWN_GRACE = Bound(0, 600, "seconds")
#: [faults]: how long a delayed notification is held, how far GSW_DATE_TIME is moved
#: (either way), and how fast a slowed body is sent.
FAULT_DELAY = Bound(0.001, 3600, "seconds")
CLOCK_SKEW = Bound(-DAY_S, DAY_S, "seconds")
SLOW_SEND_RATE = Bound(1, 1_000_000_000, "bytes per second")
#: ``ocsd replay --speed``: 0 is as fast as the pool allows; a million times faster
#: than recorded is as fast in practice.
REPLAY_SPEED = Bound(0, 1_000_000, note="0: as fast as the pool allows")
#: A bounded run (``duration``): up to 30 days, the longest soak anyone runs in CI.
RUN_DURATION = Bound(0.1, 30 * DAY_S, "seconds")
#: Each delay of retry-schedule: under 10 ms a failing receiver is retried in a tight loop.
RETRY_DELAY = Bound(0.01, 86_400, "seconds")
#: Entries of retry-schedule.
MAX_RETRY_STEPS = 100
#: Attempts of one state notification in reliable mode.
DELIVERY_ATTEMPTS = Bound(1, 10_000, whole=True)

# -- [calling-list:*] and [campaign-group:*] ------------------------------------------------

#: Genesys configuration DBIDs are positive 32-bit integers.
DBID = Bound(1, 2**31 - 1, whole=True)
#: Records of a calling list: a billion (counts, not objects: memory does not grow with it).
RECORDS = Bound(0, 1_000_000_000, whole=True)
#: A share of the dial attempts.
RATE = Bound(0, 1, fraction=True)
#: How long a phone rings: up to an hour.
RING_TIME = Bound(0.1, 3600, "seconds")
#: Dial attempts per record.
DIAL_ATTEMPTS = Bound(1, 1000, whole=True)
#: A week at most before a record is dialed again.
REDIAL_DELAY = Bound(0, 604_800, "seconds")
#: Agents of a group: the simulation's work grows with them (100,000 agents simulate at
#: 66x real time on one core, too slow for time-scale 100): 10,000 at most.
AGENTS = Bound(0, 10_000, whole=True)
#: IVR ports of a GVP group, as agents.
PORTS = Bound(1, 10_000, whole=True)
#: Mean talk time of a call: a tenth of a second to a day.
TALK_TIME = Bound(0.1, DAY_S, "seconds")
#: Mean after-call work: none to a day.
WRAP_UP_TIME = Bound(0, DAY_S, "seconds")
#: Lines dialed per ready agent in the power modes.
LINES_PER_AGENT = Bound(0.1, 20)
#: A percent (busy-factor, overdial-rate: 1 to 100) or seconds (the time methods: 1 to
#: 3600), checked against optimize-by by core.lifecycle.validate_dialing.
OPTIMIZE_GOAL = Bound(0, 3600, whole=True)

# -- URIs, hosts and paths ----------------------------------------------------------------

#: Longest campaigngroup-states-uri: receivers refuse request lines over ~8 KiB (aiohttp's
#: own limit is 8,190 bytes), and the URI is written in every 81000/81001 trace line.
MAX_URI_LENGTH = 4096
#: A host name once IDNA-encoded: letters, digits, "-", "_" (docker service names) and dots.
_HOST_NAME = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?")
#: Whitespace and control characters: never in a URI (a continuation line put a newline in).
_BLANK_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")
#: Longest file path and path component, bytes (Linux's PATH_MAX and NAME_MAX).
MAX_PATH_BYTES = 4095
MAX_NAME_BYTES = 255
PORT = Bound(1, 65_535, whole=True)


def host_problem(host: str) -> str | None:
    """Why ``host`` cannot be connected to or listened on, or None: an IP address, or a
    name that IDNA encodes (labels of 1 to 63 characters, 253 in all) to letters, digits,
    "-", "_" and dots. aiohttp's sender failed on such a name with an internal error."""
    if not host:
        return "the host is empty"
    try:
        ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
        return None
    except ValueError:
        pass
    if _BLANK_OR_CONTROL.search(host):
        return f"host {shown(host)} holds a space or a control character"
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return f"host {shown(host)} is not a host name (labels of 1 to 63 characters)"
    if len(ascii_host) > 253 or not _HOST_NAME.fullmatch(ascii_host):
        return f"host {shown(host)} is not a host name or an IP address"
    return None


def uri_problem(uri: str, redacted: str) -> str | None:
    """Why ``uri`` cannot be POSTed to, or None; ``redacted`` is how a message shows it
    (without credentials)."""
    if len(uri) > MAX_URI_LENGTH:
        return f"longer than {MAX_URI_LENGTH} characters"
    if _BLANK_OR_CONTROL.search(uri):
        return f"{redacted!r} holds a space or a control character (percent-encode them)"
    try:
        parts = urlsplit(uri)
    except ValueError as exc:  # a bad [IPv6] literal
        return f"{redacted!r}: {exc}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"must be an http:// or https:// URL, got {redacted!r}"
    if "@" not in parts.netloc and redacted.startswith(f"{parts.scheme}://{REDACTED}@"):
        # user:pass/word@host: the authority ends at the "/", so the host would be the
        # user name and the port part of the password (which a message must not show)
        return (
            f"{redacted!r}: a '/', '?' or '#' comes before the '@' that ends user:password, "
            "so the host would be read from the user name; percent-encode them in the "
            "user name and password (%2F, %3F, %23), or an '@' in the path as %40"
        )
    port = _written_port(parts.netloc)
    if port and not (port.isascii() and port.isdigit()):
        return f"the port {PORT.refusal(port, 'is not a whole number')}"
    if port and (problem := PORT.problem(int(port))):
        return f"the port {problem}"
    if problem := host_problem(parts.hostname):
        return problem
    try:  # what the client will make of it: refused here rather than when it starts
        URL(uri, encoded=False)
    except ValueError as exc:
        return f"{redacted!r} is not a usable URL: {redact_text(str(exc))}"
    return None


def _written_port(netloc: str) -> str:
    """The port as written after the host ("" if none): yarl refused 99999 at the first
    POST, with a traceback."""
    host_and_port = netloc.rpartition("@")[2]
    if host_and_port.startswith("["):  # [IPv6]:port
        after = host_and_port.partition("]")[2]
        return after[1:] if after.startswith(":") else ""
    return host_and_port.partition(":")[2]  # all of it: "80:90" is not a port


def path_problem(path: str) -> str | None:
    """Why ``path`` cannot name a file, or None: empty, a NUL character, longer than the
    system takes (the check itself would raise OSError: a traceback in check-config)."""
    if not path.strip():
        return "must be a file path"
    if "\x00" in path:
        return "must not contain a NUL character"
    encoded = os.fsencode(path)
    if len(encoded) > MAX_PATH_BYTES:
        return f"{shown(path)} is {len(encoded):,} bytes long; allowed: at most {MAX_PATH_BYTES}"
    if any(len(name) > MAX_NAME_BYTES for name in encoded.split(b"/")):
        return f"{shown(path)} holds a name longer than {MAX_NAME_BYTES} bytes, the most allowed"
    return None
