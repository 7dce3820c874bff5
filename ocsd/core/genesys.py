"""Every Genesys name and number of the CampaignGroupState contract, in one place.

The enumerations (docs/contract.md#enumerations), the ``GSW_*`` field names (#fields), the
request names of OCS's HTTP interface (#requests) and the trace messages 81000/81001
(#log-messages). Body, validation, sink, logs and cli take them from here; nothing else
hard-codes them. The rules the vendor documentation leaves to ocsd (which dial-mode switches are
allowed while running) live here too, so there is one obvious place to change them.
"""

from __future__ import annotations

import re
from enum import IntEnum, StrEnum
from typing import TypeVar

# -- the body (docs/contract.md#fields) -----------------------------------------------------

#: ``GSW_USER_EVENT`` of every body.
USER_EVENT = "CampaignGroupState"

GSW_USER_EVENT = "GSW_USER_EVENT"
GSW_DATE_TIME = "GSW_DATE_TIME"
GSW_TENANT_NAME = "GSW_TENANT_NAME"
GSW_TENANT_CCID = "GSW_TENANT_CCID"
GSW_CAMPAIGN_GROUP_NAME = "GSW_CAMPAIGN_GROUP_NAME"
GSW_CAMPAIGN_GROUP_UUID = "GSW_CAMPAIGN_GROUP_UUID"
GSW_CAMPAIGN_GROUP_DBID = "GSW_CAMPAIGN_GROUP_DBID"
GSW_GROUP_NAME = "GSW_GROUP_NAME"
GSW_CAMPAIGN_NAME = "GSW_CAMPAIGN_NAME"
GSW_CAMPAIGN_TEMPLATE_NAME = "GSW_CAMPAIGN_TEMPLATE_NAME"
GSW_QUEUE_NAME = "GSW_QUEUE_NAME"
GSW_DIAL_MODE = "GSW_DIAL_MODE"
GSW_OPTIMIZE_BY = "GSW_OPTIMIZE_BY"
GSW_OPTIMIZE_GOAL = "GSW_OPTIMIZE_GOAL"
GSW_CAMPAIGN_GROUP_STATUS = "GSW_CAMPAIGN_GROUP_STATUS"
GSW_CAMPAIGN_GROUP_ACTION = "GSW_CAMPAIGN_GROUP_ACTION"
GSW_CAMPAIGN_GROUP_ACTOR = "GSW_CAMPAIGN_GROUP_ACTOR"
GSW_STAT_BUSY_FACTOR = "GSW_STAT_BUSY_FACTOR"
GSW_STAT_HIT_RATIO = "GSW_STAT_HIT_RATIO"
GSW_STAT_OVERDIAL_RATE = "GSW_STAT_OVERDIAL_RATE"
GSW_STAT_TIME_TO_COMPLETE = "GSW_STAT_TIME_TO_COMPLETE"
GSW_CALLING_LISTS = "GSW_CALLING_LISTS"
GSW_CALLING_LIST_NAME = "GSW_CALLING_LIST_NAME"
GSW_CALLING_LIST_DBID = "GSW_CALLING_LIST_DBID"
#: The request attribute that asks for auto-completion (docs/contract.md#auto-completion).
GSW_AUTO_COMPLETION = "GSW_AUTO_COMPLETION"

# -- the trace log messages (docs/contract.md#log-messages) ---------------------------------

MSG_STATE = 81000
MSG_PERIODIC = 81001
#: Texts of 81000 and 81001; ``{name}`` is the Campaign Group, ``{uri}`` the redacted URI.
STATE_TEXT = (
    "Sending HTTP status notification CampaignGroupState for Campaign Group {name} to {uri}"
)
PERIODIC_TEXT = (
    "Sending periodic HTTP status notification CampaignGroupState for Campaign Group {name} "
    "to {uri}"
)
TRACE_MESSAGES = frozenset({MSG_STATE, MSG_PERIODIC})


class Request(StrEnum):
    """Control requests, named as in OCS's HTTP interface (``?req=<value>``)."""

    LOAD = "LoadCampaign"
    START = "StartDialing"
    SET_DIAL_MODE = "SetDialingMode"
    STOP = "StopDialing"
    UNLOAD = "UnloadCampaign"
    FORCE_UNLOAD = "ForceUnloadCampaign"


# -- the enumerations (docs/contract.md#enumerations) ---------------------------------------


class DialMode(IntEnum):
    """Genesys CfgDialMode (docs/contract.md#dial-mode)."""

    NONE = 0
    PREDICTIVE = 1
    PROGRESSIVE = 2
    PREVIEW = 3
    PROGRESSIVE_WITH_SEIZING = 4
    PREDICTIVE_WITH_SEIZING = 5
    POWER = 6
    POWER_WITH_SEIZING = 7
    PUSH_PREVIEW = 8
    PROGRESSIVE_GVP = 9
    PREDICTIVE_GVP = 10
    POWER_GVP = 11


class OptimizeBy(IntEnum):
    """Genesys CfgOptimizationMethod (docs/contract.md#optimize-by); Maximum Gain is not offered."""

    NONE = 0
    BUSY_FACTOR = 1
    OVERDIAL_RATE = 2
    AVERAGE_WAITING_TIME = 3
    AVERAGE_DISTRIBUTION_TIME = 4


class GroupStatus(IntEnum):
    """GSW_CM_AttrGroupCampStatus (docs/contract.md#status)."""

    UNKNOWN = -1
    NOT_LOADED = 0
    WAITING_UNLOAD = 1
    UNLOAD_IN_PROGRESS = 2
    INACTIVE = 3
    ACTIVE = 4
    RUNNING = 5


class Action(IntEnum):
    """CMMessageType of the request behind a notification (docs/contract.md#action)."""

    PERIODIC = 0  # [ocsd decision] periodic notifications carry action 0
    LOAD = 7
    UNLOAD = 8
    START = 9
    STOP = 10
    SET_DIAL_MODE = 11
    FORCE_UNLOAD = 29


class Actor(IntEnum):
    """Who caused a notification (docs/contract.md#actor)."""

    UNKNOWN = 0  # also used on periodic notifications [ocsd decision]
    CLIENT = 1  # a request through the control API
    SCHEDULE = 2  # [ocsd decision]
    OCS = 3  # [ocsd decision] an internal condition such as auto-completion


PREDICTIVE_MODES = frozenset(
    {DialMode.PREDICTIVE, DialMode.PREDICTIVE_WITH_SEIZING, DialMode.PREDICTIVE_GVP}
)
PREVIEW_MODES = frozenset({DialMode.PREVIEW, DialMode.PUSH_PREVIEW})
GVP_MODES = frozenset({DialMode.PROGRESSIVE_GVP, DialMode.PREDICTIVE_GVP, DialMode.POWER_GVP})
SEIZING_MODES = frozenset(
    {
        DialMode.PROGRESSIVE_WITH_SEIZING,
        DialMode.PREDICTIVE_WITH_SEIZING,
        DialMode.POWER_WITH_SEIZING,
    }
)
#: Statuses in which a group is loaded; periodic notifications go to exactly these
#: [ocsd decision: "active" means loaded].
LOADED_STATUSES = frozenset({GroupStatus.ACTIVE, GroupStatus.RUNNING, GroupStatus.WAITING_UNLOAD})


def is_predictive(mode: DialMode) -> bool:
    """True for the modes that carry GSW_OPTIMIZE_BY and GSW_OPTIMIZE_GOAL."""
    return mode in PREDICTIVE_MODES


def dial_mode_switch_refusal(current: DialMode, new: DialMode) -> str | None:
    """Why a running group may not switch from ``current`` to ``new``, or None if it may.

    docs/contract.md#dial-mode-changes: predictive and progressive modes (and their seizing variants) switch into
    each other while running; a switch to or from a preview mode is refused.
    [ocsd decision] A switch between an agent-based mode and a GVP mode (which has no
    agents) is refused as well; every other switch between running modes is allowed.
    """
    if current == new:
        return None
    if current in PREVIEW_MODES or new in PREVIEW_MODES:
        return (
            f"switching from {label(current)} to {label(new)} needs a stop and a new start "
            "(a preview mode cannot be entered or left while running)"
        )
    if (current in GVP_MODES) != (new in GVP_MODES):
        return (
            f"switching from {label(current)} to {label(new)} needs a stop and a new start "
            "(GVP modes dial without agents)"
        )
    return None


_E = TypeVar("_E", bound=IntEnum)

_ALIASES: dict[type[IntEnum], dict[str, int]] = {
    DialMode: {
        "predictive-seizing": DialMode.PREDICTIVE_WITH_SEIZING,
        "progressive-seizing": DialMode.PROGRESSIVE_WITH_SEIZING,
        "power-seizing": DialMode.POWER_WITH_SEIZING,
    },
    OptimizeBy: {
        "agent-busy-factor": OptimizeBy.BUSY_FACTOR,
        "busy": OptimizeBy.BUSY_FACTOR,
        "overdial": OptimizeBy.OVERDIAL_RATE,
        "abandon-rate": OptimizeBy.OVERDIAL_RATE,
        "awt": OptimizeBy.AVERAGE_WAITING_TIME,
        "waiting-time": OptimizeBy.AVERAGE_WAITING_TIME,
        "adt": OptimizeBy.AVERAGE_DISTRIBUTION_TIME,
        "distribution-time": OptimizeBy.AVERAGE_DISTRIBUTION_TIME,
    },
}


_STATUS_NAMES = {
    GroupStatus.UNKNOWN: "Unknown",
    GroupStatus.NOT_LOADED: "NotLoaded",
    GroupStatus.WAITING_UNLOAD: "WaitingUnload",
    GroupStatus.UNLOAD_IN_PROGRESS: "UnloadInProgress",
    GroupStatus.INACTIVE: "InActive",
    GroupStatus.ACTIVE: "Active",
    GroupStatus.RUNNING: "Running",
}


def status_name(status: GroupStatus | int) -> str:
    """Genesys spelling of a group status, as in the contract: ``NotLoaded``, ``Running``."""
    return (
        _STATUS_NAMES.get(GroupStatus(status), str(status))
        if status in _STATUS_NAMES
        else str(status)
    )


def label(member: IntEnum) -> str:
    """The user-facing name of a member: ``DialMode.PUSH_PREVIEW`` -> ``push-preview``."""
    return member.name.lower().replace("_", "-")


def _normalise(text: str) -> str:
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", "-", text.strip())  # CamelCase -> Camel-Case
    text = re.sub(r"[\s_]+", "-", text.lower())
    for prefix in ("dialmode", "dial-mode-", "optimizationmethod", "optimize-by-"):
        text = text.removeprefix(prefix).lstrip("-")
    return text


def parse_enum(enum: type[_E], value: str | int) -> _E:
    """Parse a Genesys number or a name (``predictive``, ``busy-factor``, ``PushPreview``).

    Raises ValueError with the accepted values, so callers can show it to the user.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a name or number, got {value!r}")
    if isinstance(value, int) or (isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip())):
        number = int(value)
        try:
            return enum(number)
        except ValueError:
            pass
    else:
        key = _normalise(value)
        for member in enum:
            if label(member) == key:
                return member
        alias = _ALIASES.get(enum, {}).get(key)
        if alias is not None:
            return enum(alias)
    accepted = ", ".join(f"{label(m)} ({int(m)})" for m in enum)
    raise ValueError(f"unknown {enum.__name__} {value!r}; accepted: {accepted}")
