"""What each Genesys dial mode means to the simulation [ocsd decisions].

A mode is one of four kinds of dialing (how many calls it places, see
``Dialer.pace``), sends its live answers to the agents or, in the GVP modes, to IVR
ports, and connects a live answer after ``TRANSFER_DELAY`` or, in the "with seizing"
variants and the GVP modes, at once: that is the only difference between a mode and
its seizing variant. Kinds are plain ints (compared on every event).
"""

from __future__ import annotations

from typing import Final

from ocsd.core.genesys import GVP_MODES, SEIZING_MODES, DialMode
from ocsd.core.simulation.model import PREVIEW_TIME, PUSH_PREVIEW_TIME, TRANSFER_DELAY

# kinds of dialing
NONE: Final = 0  # not dialing
PREDICTIVE: Final = 1  # pacing by what it learns (ocsd.core.simulation.pacing)
PROGRESSIVE: Final = 2  # one call in progress per ready agent
POWER: Final = 3  # lines-per-agent calls per ready agent
PREVIEW: Final = 4  # an agent reads a record, then dials it himself

KIND_OF_MODE: Final = {
    DialMode.NONE: NONE,
    DialMode.PREDICTIVE: PREDICTIVE,
    DialMode.PREDICTIVE_WITH_SEIZING: PREDICTIVE,
    DialMode.PREDICTIVE_GVP: PREDICTIVE,
    DialMode.PROGRESSIVE: PROGRESSIVE,
    DialMode.PROGRESSIVE_WITH_SEIZING: PROGRESSIVE,
    DialMode.PROGRESSIVE_GVP: PROGRESSIVE,
    DialMode.POWER: POWER,
    DialMode.POWER_WITH_SEIZING: POWER,
    DialMode.POWER_GVP: POWER,
    DialMode.PREVIEW: PREVIEW,
    DialMode.PUSH_PREVIEW: PREVIEW,
}


def uses_ports(mode: DialMode) -> bool:
    """Live answers go to IVR ports (GVP modes), not to agents."""
    return mode in GVP_MODES


def transfer_delay(mode: DialMode) -> float:
    """Seconds from a live answer to the servers' queue."""
    return 0.0 if (mode in SEIZING_MODES or mode in GVP_MODES) else TRANSFER_DELAY


def preview_time(mode: DialMode) -> float:
    """Seconds an agent reads a record before he dials it (preview modes)."""
    return PUSH_PREVIEW_TIME if mode == DialMode.PUSH_PREVIEW else PREVIEW_TIME
