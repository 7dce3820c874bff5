"""Campaign Group life cycle (docs/contract.md#life-cycle) as a pure state machine.

A request either returns the transitions it caused (each becomes one 81000
notification) or raises :class:`RequestRefused` and changes nothing. Time is passed
in; nothing here does I/O, so every transition is unit-testable with a fake clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ocsd.core.errors import BadParameter, NotAllowed
from ocsd.core.genesys import (
    LOADED_STATUSES,
    Action,
    Actor,
    DialMode,
    GroupStatus,
    OptimizeBy,
    Request,
    dial_mode_switch_refusal,
    is_predictive,
    label,
    status_name,
)
from ocsd.core.identity import GroupIdentity


@dataclass(frozen=True, slots=True)
class Dialing:
    """How a running group dials. Optimization applies to predictive modes only."""

    mode: DialMode
    optimize_by: OptimizeBy = OptimizeBy.NONE
    optimize_goal: int = 0

    def effective(self) -> Dialing:
        """The same dialing with optimization cleared for non-predictive modes."""
        if is_predictive(self.mode):
            return self
        return Dialing(self.mode)


@dataclass(frozen=True, slots=True)
class DialingChange:
    """The dialing parameters a request names; what it leaves out keeps its value."""

    mode: DialMode | None = None
    optimize_by: OptimizeBy | None = None
    optimize_goal: int | None = None

    def is_empty(self) -> bool:
        return self.mode is None and self.optimize_by is None and self.optimize_goal is None

    def resolve(self, current: Dialing, defaults: Dialing) -> Dialing:
        """Fill what the request left out: from the current dialing, else the group's defaults.

        A goal is kept only with the method it belongs to, so switching the method
        without a goal takes the configured goal of that method (or fails validation).
        """
        mode = self.mode if self.mode is not None else current.mode
        if not is_predictive(mode):
            return Dialing(mode)
        optimize_by = self.optimize_by
        if optimize_by is None:
            optimize_by = current.optimize_by or defaults.optimize_by
        if optimize_by == OptimizeBy.NONE:
            raise InvalidParameter("optimizeby", f"{label(mode)} needs an optimization method")
        goal = self.optimize_goal
        if goal is None:
            for known in (current, defaults):
                if known.optimize_by == optimize_by and known.optimize_goal:
                    goal = known.optimize_goal
                    break
            else:
                raise InvalidParameter("optimizegoal", f"give a goal for {label(optimize_by)}")
        return Dialing(mode, optimize_by, goal)


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change, and so one 81000 notification."""

    action: Action
    actor: Actor
    status: GroupStatus
    dialing: Dialing | None  # set only when status is Running
    at: float


class RequestRefused(NotAllowed):
    """A request the current status does not allow; the group is unchanged."""

    def __init__(self, request: Request, status: GroupStatus, reason: str) -> None:
        self.request = request
        self.status = status
        self.reason = reason
        super().__init__(f"{request.value} refused in status {status_name(status)}: {reason}")

    def detail(self) -> dict[str, Any]:
        return {
            "status": {"code": int(self.status), "name": status_name(self.status)},
            "request": self.request.value,
        }


class InvalidParameter(BadParameter):
    """A request parameter that is wrong whatever the status (names the parameter)."""


def validate_dialing(dialing: Dialing) -> Dialing:
    """Check a dial mode and its optimization; return the effective dialing."""
    if dialing.mode == DialMode.NONE:
        raise InvalidParameter("dialmode", "a group cannot dial in mode none")
    if not is_predictive(dialing.mode):
        return dialing.effective()
    if dialing.optimize_by == OptimizeBy.NONE:
        raise InvalidParameter("optimizeby", f"{label(dialing.mode)} needs an optimization method")
    goal = dialing.optimize_goal
    if dialing.optimize_by in (OptimizeBy.BUSY_FACTOR, OptimizeBy.OVERDIAL_RATE):
        if not 0 < goal <= 100:
            raise InvalidParameter(
                "optimizegoal",
                f"{label(dialing.optimize_by)} goal is a percent in 1..100, got {goal}",
            )
    elif not 0 < goal <= 3600:
        raise InvalidParameter(
            "optimizegoal", f"{label(dialing.optimize_by)} goal is seconds in 1..3600, got {goal}"
        )
    return dialing


@dataclass(slots=True)
class CampaignGroup:
    """One Campaign Group: identity, configured defaults and its current status.

    ``calls_in_progress`` is kept up to date by the dialing simulation; it decides
    whether an unload waits (WaitingUnload) or completes at once.
    """

    identity: GroupIdentity
    default_dialing: Dialing
    default_auto_complete: bool = False
    status: GroupStatus = GroupStatus.NOT_LOADED
    dialing: Dialing | None = None
    auto_complete: bool = False
    calls_in_progress: int = 0
    _unload_actor: Actor = field(default=Actor.UNKNOWN, repr=False)

    @property
    def loaded(self) -> bool:
        return self.status in LOADED_STATUSES

    def apply(
        self,
        request: Request,
        actor: Actor,
        now: float,
        change: DialingChange | None = None,
        auto_complete: bool | None = None,
    ) -> list[Transition]:
        """Apply a control request; return its transitions or raise RequestRefused."""
        handler = {
            Request.LOAD: self._load,
            Request.START: self._start,
            Request.SET_DIAL_MODE: self._set_dial_mode,
            Request.STOP: self._stop,
            Request.UNLOAD: self._unload,
            Request.FORCE_UNLOAD: self._force_unload,
        }[request]
        return handler(actor, now, change or DialingChange(), auto_complete)

    def calls_ended(self, now: float) -> list[Transition]:
        """The simulation reports no call left: a waiting unload completes."""
        self.calls_in_progress = 0
        if self.status != GroupStatus.WAITING_UNLOAD:
            return []
        self.status = GroupStatus.NOT_LOADED
        return [self._transition(Action.UNLOAD, self._unload_actor, now)]

    # -- one method per request ------------------------------------------------

    def _load(
        self, actor: Actor, now: float, _change: DialingChange, auto_complete: bool | None
    ) -> list[Transition]:
        self._require(Request.LOAD, {GroupStatus.NOT_LOADED}, "the group is already loaded")
        self.status = GroupStatus.ACTIVE
        self.auto_complete = self._auto_complete(auto_complete)
        return [self._transition(Action.LOAD, actor, now)]

    def _start(
        self, actor: Actor, now: float, change: DialingChange, auto_complete: bool | None
    ) -> list[Transition]:
        if self.status == GroupStatus.RUNNING:
            self._refuse(Request.START, "the group is already running; use SetDialingMode")
        self._require(Request.START, {GroupStatus.ACTIVE}, "load the group first")
        defaults = self.default_dialing
        self.dialing = validate_dialing(change.resolve(defaults, defaults))
        self.status = GroupStatus.RUNNING
        self.auto_complete = self._auto_complete(auto_complete)
        return [self._transition(Action.START, actor, now)]

    def _set_dial_mode(
        self, actor: Actor, now: float, change: DialingChange, auto_complete: bool | None
    ) -> list[Transition]:
        self._require(
            Request.SET_DIAL_MODE, {GroupStatus.RUNNING}, "the dial mode changes only while running"
        )
        assert self.dialing is not None
        if change.is_empty():
            raise InvalidParameter(
                "dialmode", "SetDialingMode needs dialmode, optimizeby or optimizegoal"
            )
        new = validate_dialing(change.resolve(self.dialing, self.default_dialing))
        refusal = dial_mode_switch_refusal(self.dialing.mode, new.mode)
        if refusal:
            self._refuse(Request.SET_DIAL_MODE, refusal)
        self.dialing = new
        self.auto_complete = self._auto_complete(auto_complete)
        return [self._transition(Action.SET_DIAL_MODE, actor, now)]

    def _stop(
        self, actor: Actor, now: float, _change: DialingChange, _auto: bool | None
    ) -> list[Transition]:
        self._require(Request.STOP, {GroupStatus.RUNNING}, "the group is not running")
        self.status = GroupStatus.ACTIVE
        self.dialing = None
        return [self._transition(Action.STOP, actor, now)]

    def _unload(
        self, actor: Actor, now: float, change: DialingChange, auto: bool | None
    ) -> list[Transition]:
        self._require(
            Request.UNLOAD,
            {GroupStatus.ACTIVE, GroupStatus.RUNNING},
            "the group is not loaded" if not self.loaded else "an unload is already waiting",
        )
        transitions = []
        if self.status == GroupStatus.RUNNING:
            transitions = self._stop(actor, now, change, auto)
        if self.calls_in_progress > 0:
            # docs/contract.md#waiting-unload: WaitingUnload while calls finish; notified when NotLoaded is reached.
            self.status = GroupStatus.WAITING_UNLOAD
            self._unload_actor = actor
            return transitions
        self.status = GroupStatus.NOT_LOADED
        return [*transitions, self._transition(Action.UNLOAD, actor, now)]

    def _force_unload(
        self, actor: Actor, now: float, _change: DialingChange, _auto: bool | None
    ) -> list[Transition]:
        self._require(Request.FORCE_UNLOAD, LOADED_STATUSES, "the group is not loaded")
        self.status = GroupStatus.NOT_LOADED
        self.dialing = None
        self.calls_in_progress = 0
        return [self._transition(Action.FORCE_UNLOAD, actor, now)]

    # -- helpers ---------------------------------------------------------------

    def _auto_complete(self, requested: bool | None) -> bool:
        """docs/contract.md#auto-completion: GSW_AUTO_COMPLETION is asked for per request; absent means the default."""
        return self.default_auto_complete if requested is None else requested

    def _require(
        self, request: Request, allowed: frozenset[GroupStatus] | set[GroupStatus], why: str
    ) -> None:
        if self.status not in allowed:
            self._refuse(request, why)

    def _refuse(self, request: Request, why: str) -> None:
        raise RequestRefused(request, self.status, why)

    def _transition(self, action: Action, actor: Actor, now: float) -> Transition:
        dialing = self.dialing if self.status == GroupStatus.RUNNING else None
        return Transition(action, actor, self.status, dialing, now)
