"""The configured identity of a Campaign Group and its tenant: what every body says
about who it is, and what changes only with the configuration."""

from __future__ import annotations

from dataclasses import dataclass

UNKNOWN = "Unknown"  # docs/contract.md#formats: tenant fields default to "Unknown"


@dataclass(frozen=True, slots=True)
class CallingListIdentity:
    """One calling list of a group, as its bodies name it."""

    name: str
    dbid: int


@dataclass(frozen=True, slots=True)
class GroupIdentity:
    """The configured attributes of a Campaign Group that appear in every body."""

    name: str
    dbid: int
    uuid: str
    campaign: str
    group: str
    queue: str
    template: str | None = None
    calling_lists: tuple[CallingListIdentity, ...] = ()


@dataclass(frozen=True, slots=True)
class Tenant:
    name: str = UNKNOWN
    ccid: str = UNKNOWN
