"""Judge CampaignGroupState bodies: one message against the schema, a stream against the life cycle.

The rules are those of ocsd's contract, docs/contract.md (#body, #life-cycle).

Pure and I/O free, so every rule is unit-testable and usable from a receiver's own code:

- :func:`schema_problems` holds one body against the JSON Schema shipped in the package
  (``ocsd/schema/campaign-group-state.schema.json``, printed by ``ocsd schema``): the
  contract's fields, types and presence rules (#body) and values (#enumerations). Each jsonschema error
  becomes a :class:`Problem` naming the field and the rule.
- :class:`LifeCycleChecker` follows the messages of each Campaign Group (keyed by DBID)
  and names what the contract's life cycle (#life-cycle) does not allow (rules below).

Life-cycle rules (``Problem.rule``):

``action-status``
    the status a message carries must be the one its action leads to: LoadCampaign (7)
    and StopDialing (10) leave the group Active (4), StartDialing (9) and SetDialingMode
    (11) Running (5), UnloadCampaign (8) and ForceUnloadCampaign (29) NotLoaded (0); a
    periodic notification (0) is sent only for a loaded group: WaitingUnload (1), Active
    (4) or Running (5).
``transition``
    the action must be allowed from the status the group was left in by its previous
    message (contract: Transitions, #transitions; :data:`TRANSITIONS`); a periodic notification may not show a
    change that was never notified (Active to Running, a new dial mode...). The one
    silent change is Active to WaitingUnload: an unload that waits for calls in progress
    is notified only when NotLoaded is reached.
``periodic-not-loaded``
    a periodic notification for a group whose last message left it NotLoaded.

Delivery anomalies (``Problem.rule`` in :data:`DELIVERY_ANOMALIES`): what networks and
retries do to a feed, reported as what they are and not as contract violations:

``duplicate``
    the very body of the group's previous message again (same ``GSW_DATE_TIME``): a
    retry after a lost answer, or a duplicating proxy;
``out-of-order``
    ``GSW_DATE_TIME`` earlier than a message of the same group already received (equal is
    fine: StopDialing and UnloadCampaign of one unload share their instant): delivered
    late, reordered, or stamped by a clock that went back. The group's state stays as
    the newer message left it.

Tolerance [ocsd decision], so a receiver that starts late or misses a message does not
cry wolf forever:

- the first message seen of a group establishes its state: only ``action-status`` is
  checked on it (the messages before it were simply not seen);
- every message that passes the schema, even one with a violation, then becomes the
  group's known state (the producer's latest word wins), so one missed message gives
  one violation, not a cascade; except a duplicate or an out-of-order message: the
  state stays as the newer message left it;
- a daemon restarted while groups were loaded shows up as a ``transition`` violation
  (e.g. LoadCampaign of a group last seen Running): OCS never said they were unloaded.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from ocsd.core.genesys import (
    GSW_CAMPAIGN_GROUP_ACTION,
    GSW_CAMPAIGN_GROUP_DBID,
    GSW_CAMPAIGN_GROUP_STATUS,
    GSW_DATE_TIME,
    GSW_DIAL_MODE,
    GSW_OPTIMIZE_BY,
    GSW_OPTIMIZE_GOAL,
    LOADED_STATUSES,
    Action,
    GroupStatus,
    status_name,
)

SCHEMA_FILE = "campaign-group-state.schema.json"
#: Rules that name what delivery did to a message, not a contract violation.
DELIVERY_ANOMALIES = frozenset({"duplicate", "out-of-order"})
#: ocsd's contract, in the repository and on the docs site: every life-cycle refusal
#: names the section it applies (tests/unit/test_docs_contract.py checks each anchor).
CONTRACT_PAGE = "docs/contract.md"


def contract(section: str, anchor: str) -> str:
    """A citation a reader can follow: ``contract: Transitions (docs/contract.md#transitions)``."""
    return f"contract: {section} ({CONTRACT_PAGE}#{anchor})"


# -- the schema ------------------------------------------------------------------------


def schema_text() -> str:
    """The JSON Schema document as shipped in the package (what ``ocsd schema`` prints)."""
    return read_resource(resources.files("ocsd.receiver"), "schema", SCHEMA_FILE)


def read_resource(package: Traversable, *parts: str) -> str:
    """The text of a file under ``package`` (``resources.files(...)``), one part at a time.

    ``joinpath("schema", name)`` raised TypeError when the package was found as a
    namespace package (a source tree without its ``__init__.py`` on the path): Python
    3.11's MultiplexedPath.joinpath takes one name. ``as_file`` gives a real file even
    from a zip archive."""
    resource = package
    for part in parts:
        resource = resource.joinpath(part)
    with resources.as_file(resource) as path:
        return path.read_text(encoding="utf-8")


@functools.cache
def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(schema_text())
    Draft202012Validator.check_schema(schema)
    return schema


def load_schema() -> dict[str, Any]:
    """A fresh copy of the schema, as a dict (``jsonschema.validate(body, load_schema())``)."""
    loaded: dict[str, Any] = json.loads(schema_text())
    return loaded


@functools.cache
def validator() -> Draft202012Validator:
    """A ready Draft 2020-12 validator of the CampaignGroupState schema."""
    return Draft202012Validator(_schema())


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a message is not what the contract says.

    ``rule`` is ``schema.<keyword>`` (``schema.required``, ``schema.type``...) or
    ``schema.<conditional rule>`` (``schema.dial-mode-only-while-running``) for the
    schema, a life-cycle rule (``transition``, ``periodic-not-loaded``,
    ``action-status``), or a delivery anomaly (``duplicate``, ``out-of-order``). ``field`` is the JSON path of the field at fault
    (``GSW_CALLING_LISTS[0].GSW_CALLING_LIST_DBID``), or None for the body as a whole.
    """

    rule: str
    field: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.field or 'body'}: {self.message} [{self.rule}]"

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "field": self.field, "message": self.message}


def _field_path(parts: Iterable[str | int]) -> str | None:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _conditional_rule(error: ValidationError) -> dict[str, Any] | None:
    """The ``allOf`` entry (a named conditional rule) an error comes from, if any."""
    path = list(error.absolute_schema_path)
    if len(path) >= 2 and path[0] == "allOf" and isinstance(path[1], int):
        rules = _schema().get("allOf", [])
        if path[1] < len(rules):
            rule: dict[str, Any] = rules[path[1]]
            return rule
    return None


def _description(error: ValidationError, field: str | None) -> str | None:
    """The schema's description of the field an error is about (a hint for the reader)."""
    if field is None:
        return None
    schema = _schema()
    parts = [p for p in error.absolute_path if isinstance(p, str)]
    node: Mapping[str, Any] = schema
    for index, part in enumerate(parts):
        props = node.get("properties", {})
        if part not in props:
            return None
        node = props[part]
        if index < len(parts) - 1 and "items" in node:
            node = node["items"]
    description = node.get("description")
    return str(description) if description else None


def _problems(error: ValidationError) -> list[Problem]:
    path = list(error.absolute_path)
    instance = error.instance
    value: Any = error.validator_value
    keyword = str(error.validator) if error.validator is not None else "false"
    conditional = _conditional_rule(error)
    rule = f"schema.{conditional['title']}" if conditional else f"schema.{keyword}"
    field = _field_path(path)
    if keyword == "required" and isinstance(instance, dict):
        message = "mandatory field is missing"
        if conditional:
            message = f"must be present: {conditional['description']}"
        missing = [name for name in value if name not in instance]
        return [Problem(rule, _field_path([*path, name]), message) for name in missing]
    if keyword == "additionalProperties" and isinstance(instance, dict):
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        extra = sorted(name for name in instance if name not in known)
        field = _field_path([*path, extra[0]]) if extra else field
        message = f"unknown field: the contract does not define it ({contract('Fields', 'fields')})"
    elif keyword in ("false", "not") and value in (False, {}):
        reason = conditional["description"] if conditional else "not allowed here"
        message = f"must be left out: {reason}"
    elif keyword == "type":
        wanted = " or ".join(value) if isinstance(value, list) else str(value)
        message = f"must be of type {wanted}, got {_json_type(instance)} {_short(instance)}"
    elif keyword == "const":
        message = f"must be {_short(value)}, got {_short(instance)}"
        if conditional:
            message += f": {conditional['description']}"
    elif keyword == "enum":
        values = ", ".join(_short(v) for v in value)
        message = f"{_short(instance)} is not one of the allowed values ({values})"
    elif keyword == "pattern":
        message = f"{_short(instance)} has the wrong format"
    elif keyword == "minLength":
        message = "must not be empty (leave an optional field out instead)"
    else:
        message = error.message
    hint = _description(error, field) if keyword in ("pattern", "enum", "type") else None
    if hint:
        message += f" (expected: {hint})"
    if field is None and keyword == "type":
        message = f"the body must be a JSON object, got {_json_type(instance)}"
    return [Problem(rule, field, message)]


def schema_problems(body: Any) -> list[Problem]:
    """Every way ``body`` breaks the schema, most relevant first; empty when it is valid."""
    seen: set[tuple[str, str | None]] = set()
    problems = []
    for error in validator().iter_errors(body):
        for problem in _problems(error):
            if (problem.rule, problem.field) not in seen:
                seen.add((problem.rule, problem.field))
                problems.append(problem)
    return sorted(problems, key=_order)


def _order(problem: Problem) -> tuple[bool, int, int, str]:
    """The body as a whole first, then by field in the contract's order; conditional rules
    (which may only follow from another problem, e.g. a missing status) after the rest."""
    conditional = problem.rule.removeprefix("schema.") in {
        rule.get("title") for rule in _schema().get("allOf", [])
    }
    if problem.field is None:
        return (conditional, -1, -1, "")
    order = list(_schema()["properties"])
    top = re.split(r"[.\[]", problem.field, maxsplit=1)[0]
    depth = problem.field.count(".") + problem.field.count("[")
    position = order.index(top) if top in order else len(order)
    return (conditional, position, depth, problem.field)


def is_valid(body: Any) -> bool:
    """True when ``body`` holds to the schema."""
    return bool(validator().is_valid(body))


# -- the life cycle (docs/contract.md#life-cycle) ----------------------------------------

#: Contract, Transitions: for each action, the statuses the group may be in before it, and the status
#: its notification carries (the status after it).
TRANSITIONS: dict[Action, tuple[frozenset[GroupStatus], frozenset[GroupStatus]]] = {
    Action.LOAD: (frozenset({GroupStatus.NOT_LOADED}), frozenset({GroupStatus.ACTIVE})),
    Action.START: (frozenset({GroupStatus.ACTIVE}), frozenset({GroupStatus.RUNNING})),
    Action.SET_DIAL_MODE: (frozenset({GroupStatus.RUNNING}), frozenset({GroupStatus.RUNNING})),
    Action.STOP: (frozenset({GroupStatus.RUNNING}), frozenset({GroupStatus.ACTIVE})),
    # Running -> Unload is notified as StopDialing (status 4) then UnloadCampaign, so an
    # UnloadCampaign notification always follows Active, or WaitingUnload once calls ended.
    Action.UNLOAD: (
        frozenset({GroupStatus.ACTIVE, GroupStatus.WAITING_UNLOAD}),
        frozenset({GroupStatus.NOT_LOADED}),
    ),
    Action.FORCE_UNLOAD: (LOADED_STATUSES, frozenset({GroupStatus.NOT_LOADED})),
    Action.PERIODIC: (LOADED_STATUSES, LOADED_STATUSES),
}

#: A periodic notification may show only these statuses after the known one: the single
#: change that is not notified is an unload starting to wait for calls in progress.
PERIODIC_MAY_SHOW: dict[GroupStatus, frozenset[GroupStatus]] = {
    GroupStatus.ACTIVE: frozenset({GroupStatus.ACTIVE, GroupStatus.WAITING_UNLOAD}),
    GroupStatus.WAITING_UNLOAD: frozenset({GroupStatus.WAITING_UNLOAD}),
    GroupStatus.RUNNING: frozenset({GroupStatus.RUNNING}),
}

ACTION_NAMES = {
    Action.PERIODIC: "periodic",
    Action.LOAD: "LoadCampaign",
    Action.UNLOAD: "UnloadCampaign",
    Action.START: "StartDialing",
    Action.STOP: "StopDialing",
    Action.SET_DIAL_MODE: "SetDialingMode",
    Action.FORCE_UNLOAD: "ForceUnloadCampaign",
}

DIALING = (GSW_DIAL_MODE, GSW_OPTIMIZE_BY, GSW_OPTIMIZE_GOAL)


def action_name(action: int) -> str:
    """``StartDialing (9)``; ``periodic (0)``; the number alone when it is unknown."""
    try:
        return f"{ACTION_NAMES[Action(action)]} ({action})"
    except ValueError:
        return str(action)


def _status(status: int) -> str:
    return f"{status_name(status)} ({status})"


def _statuses(statuses: Iterable[GroupStatus]) -> str:
    return " or ".join(_status(s) for s in sorted(statuses))


@dataclass(frozen=True, slots=True)
class GroupState:
    """What the messages seen so far say about one group."""

    status: GroupStatus
    at: float
    dialing: tuple[Any, ...] | None  # (mode, optimize by, goal) while running
    messages: int = 1
    digest: int = 0  # of the message's body: a duplicate has the same


def action_status_problem(action: int, status: int) -> Problem | None:
    """The ``action-status`` rule alone: does this status fit this action?"""
    try:
        _before, after = TRANSITIONS[Action(action)]
    except (KeyError, ValueError):
        return None  # an unknown action is the schema's business
    if status in after:
        return None
    what = "a periodic notification is sent only for a loaded group" if action == 0 else ""
    return Problem(
        "action-status",
        GSW_CAMPAIGN_GROUP_STATUS,
        f"{action_name(action)} leaves the group {_statuses(after)}, "
        f"the message says {_status(status)}"
        + (f"; {what}" if what else "")
        + f" ({contract('Transitions', 'transitions')})",
    )


class LifeCycleChecker:
    """Follows every Campaign Group's messages (by DBID) and names life-cycle violations.

    Feed it schema-valid bodies in the order they arrived with :meth:`check`; see the
    module documentation for the rules and the tolerance of a late start.
    """

    def __init__(self, max_groups: int = 100_000) -> None:
        self.groups: dict[str, GroupState] = {}
        #: Groups remembered at most; the least recently seen is forgotten first (its next
        #: message is then a first message), so a flood of DBIDs cannot exhaust memory.
        self.max_groups = max_groups

    def known_status(self, dbid: str | int) -> GroupStatus | None:
        state = self.groups.get(str(dbid))
        return state.status if state else None

    def check(self, body: Mapping[str, Any]) -> list[Problem]:
        """Judge one message against what came before it; remember it. [] when it fits."""
        dbid = str(body.get(GSW_CAMPAIGN_GROUP_DBID))
        action = int(body.get(GSW_CAMPAIGN_GROUP_ACTION, -1))
        raw_status = int(body.get(GSW_CAMPAIGN_GROUP_STATUS, GroupStatus.UNKNOWN))
        try:
            status = GroupStatus(raw_status)
        except ValueError:
            status = GroupStatus.UNKNOWN
        at = _epoch(body.get(GSW_DATE_TIME))
        dialing = tuple(body.get(name) for name in DIALING) if DIALING[0] in body else None
        problems: list[Problem] = []
        pair = action_status_problem(action, raw_status)
        if pair is not None:
            problems.append(pair)
        digest = hash(orjson.dumps(body, option=orjson.OPT_SORT_KEYS))
        previous = self.groups.pop(dbid, None)  # re-inserted below: most recently seen last
        if previous is None:  # first message seen of this group: it establishes the state
            self._remember(dbid, GroupState(status, at, dialing, digest=digest))
            return problems
        if digest == previous.digest:
            self.groups[dbid] = previous
            return [
                Problem(
                    "duplicate",
                    None,
                    "the same body as this group's previous message (same GSW_DATE_TIME): "
                    "delivered twice, not a contract violation",
                )
            ]
        if at < previous.at:
            problems.append(
                Problem(
                    "out-of-order",
                    GSW_DATE_TIME,
                    f"{body.get(GSW_DATE_TIME)} is earlier than a message of this group already "
                    f"received ({previous.at:.3f}): delivered late or out of order (or the "
                    "sender's clock went back); the newer message keeps the say",
                )
            )
            self.groups[dbid] = previous  # stale: the newer message keeps the say
            return problems
        problems.extend(self._sequence(action, status, dialing, previous))
        self.groups[dbid] = GroupState(status, at, dialing, previous.messages + 1, digest)
        return problems

    def _remember(self, dbid: str, state: GroupState) -> None:
        while len(self.groups) >= self.max_groups:
            del self.groups[next(iter(self.groups))]
        self.groups[dbid] = state

    @staticmethod
    def _sequence(
        action: int, status: GroupStatus, dialing: tuple[Any, ...] | None, previous: GroupState
    ) -> list[Problem]:
        known = previous.status
        if action == Action.PERIODIC:
            if known not in LOADED_STATUSES:
                return [
                    Problem(
                        "periodic-not-loaded",
                        GSW_CAMPAIGN_GROUP_ACTION,
                        f"periodic notification for a group that is not loaded: its last "
                        f"message left it {_status(known)} "
                        f"({contract('Periodic notifications', 'periodic-notifications')})",
                    )
                ]
            allowed = PERIODIC_MAY_SHOW.get(known, frozenset())
            if status in LOADED_STATUSES and status not in allowed:
                return [
                    Problem(
                        "transition",
                        GSW_CAMPAIGN_GROUP_STATUS,
                        f"periodic notification says {_status(status)}, but the last message "
                        f"left the group {_status(known)}: a change without its notification "
                        f"({contract('State notifications', 'state-notifications')})",
                    )
                ]
            if (
                status == known == GroupStatus.RUNNING
                and previous.dialing is not None
                and dialing != previous.dialing
            ):
                return [
                    Problem(
                        "transition",
                        GSW_DIAL_MODE,
                        f"periodic notification shows dialing {_dialing(dialing)}, the last "
                        f"message said {_dialing(previous.dialing)}: a change without its "
                        "SetDialingMode (11) notification "
                        f"({contract('State notifications', 'state-notifications')})",
                    )
                ]
            return []
        try:
            before, _after = TRANSITIONS[Action(action)]
        except (KeyError, ValueError):
            return []
        if known in before:
            return []
        return [
            Problem(
                "transition",
                GSW_CAMPAIGN_GROUP_ACTION,
                f"{action_name(action)} is not allowed from {_status(known)} (the status the "
                f"group's last message left it in); the contract allows it from {_statuses(before)} "
                f"({contract('Transitions', 'transitions')})",
            )
        ]


def _dialing(dialing: tuple[Any, ...] | None) -> str:
    if dialing is None:
        return "none"
    mode, by, goal = dialing
    return f"mode {mode}" + (f", optimize by {by} goal {goal}" if by is not None else "")


def _epoch(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


#: Deepest nesting judged: a CampaignGroupState is 3 deep (the body, GSW_CALLING_LISTS,
#: a calling list); up to this depth the schema names what is wrong, beyond it the body
#: is refused before it is parsed (orjson writes at most 254 levels back).
MAX_NESTING = 16
#: Every bracket as a parenthesis (a mismatched pair is the parser's to refuse), every
#: other byte deleted.
_AS_PARENS = bytes.maketrans(b"[{]}", b"(())")
_NOT_A_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def nested_deeper_than(raw: bytes, limit: int = MAX_NESTING) -> bool:
    """Whether the JSON text ``raw`` nests arrays and objects more than ``limit`` deep,
    found without parsing it: strings out, brackets only, then one level of empty pairs
    removed per pass (linear time per pass, in C). Unbalanced brackets are not "deep":
    the parser refuses them as not JSON."""
    # escaped backslashes, then escaped quotes, out: what is left between quotes is a string
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside_strings = b"".join(unescaped.split(b'"')[::2])
    brackets = outside_strings.translate(_AS_PARENS, _NOT_A_BRACKET)
    for _ in range(limit):
        if not brackets:
            return False
        inner_removed = brackets.replace(b"()", b"")  # one level of nesting
        if len(inner_removed) == len(brackets):
            return False
        brackets = inner_removed
    return b"()" in brackets
