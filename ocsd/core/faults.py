"""Faults injected on purpose between a notification's body and its POST (``[faults]``).

Receivers must survive what networks and OCS do: a body posted twice, notifications out
of order, late, lost, with a skewed clock, with a field they do not know, or trickled
slowly. Each fault has a probability per notification. Which faults hit a notification is
decided from ``(seed, group DBID, the group's notification number)`` alone, so the same
seed injects the same faults into the same notifications of every run, whatever order the
sender's workers take groups in. Pure: the decision and the body rewrites; the delivery
layer carries them out. The simulation never sees any of it.
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass, fields

#: Every fault, in the order they are decided and applied.
FAULT_KINDS = (
    "drop",
    "delay",
    "reorder",
    "duplicate",
    "clock_skew",
    "unknown_field",
    "slow_send",
)
#: The field ``unknown_field`` adds: a GSW_* name no OCS version sends.
UNKNOWN_FIELD = "GSW_OCSD_INJECTED_UNKNOWN_FIELD"
UNKNOWN_VALUE = "a field this receiver does not know (ocsd fault injection)"

_DATE_TIME = re.compile(rb'"GSW_DATE_TIME":"([0-9]+(?:\.[0-9]+)?)"')
_UNIT = 2.0**-64


@dataclass(frozen=True, slots=True)
class FaultRates:
    """The probability of each fault per notification (0 to 1), and their parameters."""

    drop: float = 0.0
    delay: float = 0.0
    reorder: float = 0.0
    duplicate: float = 0.0
    clock_skew: float = 0.0
    unknown_field: float = 0.0
    slow_send: float = 0.0
    delay_time: float = 5.0  # seconds a delayed notification is held
    clock_skew_time: float = -30.0  # seconds added to GSW_DATE_TIME
    slow_send_rate: float = 200.0  # bytes per second of a trickled body
    seed: int = 0

    @property
    def active(self) -> bool:
        return any(getattr(self, kind) > 0 for kind in FAULT_KINDS)

    def described(self) -> str:
        """``drop 1%, duplicate 5%`` (the faults that are on)."""
        return ", ".join(
            f"{kind.replace('_', '-')} {getattr(self, kind) * 100:g}%"
            for kind in FAULT_KINDS
            if getattr(self, kind) > 0
        )


assert {f.name for f in fields(FaultRates)} >= set(FAULT_KINDS)


def decide(rates: FaultRates, dbid: int, number: int) -> frozenset[str]:
    """The faults that hit the ``number``-th notification of group ``dbid`` (from 1)."""
    digest = hashlib.blake2b(
        struct.pack("<qqq", rates.seed, dbid, number), digest_size=8 * len(FAULT_KINDS)
    ).digest()
    draws = struct.unpack(f"<{len(FAULT_KINDS)}Q", digest)
    hit = {
        kind
        for kind, draw in zip(FAULT_KINDS, draws, strict=True)
        if draw * _UNIT < getattr(rates, kind)
    }
    if "drop" in hit:  # a lost notification suffers nothing else
        return frozenset({"drop"})
    if "delay" in hit:
        hit.discard("reorder")  # held once, not twice
    return frozenset(hit)


def skew_date_time(body: bytes, seconds: float) -> bytes:
    """The body with ``GSW_DATE_TIME`` moved by ``seconds`` (the same millisecond format)."""

    def moved(match: re.Match[bytes]) -> bytes:
        shifted = max(0.0, float(match[1]) + seconds)
        return b'"GSW_DATE_TIME":"' + f"{shifted:.3f}".encode() + b'"'

    return _DATE_TIME.sub(moved, body, count=1)


def add_unknown_field(body: bytes) -> bytes:
    """The body with one more GSW_* field at its end (forward compatibility)."""
    end = body.rstrip().rfind(b"}")
    if end < 0:
        return body
    extra = f',"{UNKNOWN_FIELD}":"{UNKNOWN_VALUE}"'.encode()
    return body[:end] + extra + body[end:]
