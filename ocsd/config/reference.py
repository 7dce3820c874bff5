"""The configuration reference, read from the settings model: one source for every option.

Each option's INI section and name (:data:`ocsd.config.ini.SECTION_OPTIONS`, and the
``[campaign-group:<name>]``/``[calling-list:<name>]`` models field by field), its
``OCSD_*`` environment variable, its type, its default and its allowed range come from
the pydantic models themselves: the range from the field's constraint metadata
(``Field(ge=..., le=...)``, ``Annotated[int, Ge(1)]``, ``min_length``..., read
generically, also inside ``X | None``), so a constraint added to the model shows up here
with no more work. The help text is the field's ``description`` when it has one, else
:data:`OPTION_HELP` below. The docs site renders it (``docs/hooks/config_reference.py``,
run by ``mkdocs build``), so the published reference cannot drift from the code.
"""

from __future__ import annotations

import enum
import re
import types
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from ocsd.config.ini import GROUP_PREFIX, LIST_PREFIX, SECTION_OPTIONS
from ocsd.config.model import (
    ENV_PREFIX,
    CallingListSettings,
    CampaignGroupSettings,
    Settings,
    Shard,
)
from ocsd.config.ranges import MAX_RETRY_STEPS, RETRY_DELAY
from ocsd.config.settings import LaunchSettings
from ocsd.core.genesys import label

#: Keys of the reference's sections, in page order: the three INI sections of
#: SECTION_OPTIONS, the two named sections, and what only the environment sets.
CAMPAIGN_GROUP = "campaign-group"
CALLING_LIST = "calling-list"
ENVIRONMENT = "environment"
#: Settings fields that are whole sections, not options.
SECTION_FIELDS = frozenset({"campaign_groups", "calling_lists"})

#: How a type is spelt for a person, where its class name would not say it.
TYPE_NAMES: dict[type, str] = {
    bool: "true/false",
    int: "whole number",
    float: "number",
    str: "text",
    SecretStr: "secret text",
    Shard: "K/N",
}

#: Help text of the options whose field has no ``description`` (model -> field -> text).
#: A field given ``Field(description=...)`` in the model takes that instead; the unit
#: test holds every option to having help, and every entry here to naming a field.
OPTION_HELP: dict[type[BaseModel], dict[str, str]] = {
    Settings: {
        "send_campaigngroup_states": (
            "Turns Campaign Group Status Reporting on. Off (the default, as in OCS, also "
            "when the file has no `[OCServer]` section), nothing is sent and no "
            "81000/81001 line is written; the control API and the life cycle still work, "
            "and `ocsd run` and `ocsd check-config` warn that nothing will be sent."
        ),
        "campaigngroup_states_uri": (
            "Where every CampaignGroupState body is POSTed: an `http://` or `https://` "
            "URL; required when sending is on. Credentials in it are never logged."
        ),
        "campaigngroup_states_interval": (
            "Wall seconds between two periodic notifications of a loaded group; `0` "
            "turns periodic notifications off."
        ),
        "http_response_timeout": (
            "Seconds one POST may take, connection included, before it is abandoned "
            "(and, in `delivery-mode = ocs`, not tried again)."
        ),
        "http_connection_pool_size": (
            "Most connections open at once to the receiver; also the number of senders: "
            "each group is served by one of them, so its notifications stay in order."
        ),
        "tenant_name": "`GSW_TENANT_NAME` of every body; empty means `Unknown`.",
        "tenant_ccid": "`GSW_TENANT_CCID` of every body; empty means `Unknown`.",
        "control_host": (
            "Address the control API listens on. Keep `127.0.0.1` unless it must be "
            "reached from elsewhere, and then set `control-token`."
        ),
        "control_port": "Port of the control API; `0` picks a free port (logged at start).",
        "control_allowed_hosts": (
            "More `Host` names (comma-separated; `*` allows any) for which state-changing "
            "control requests are accepted; localhost, IP addresses and `control-host` "
            "always are (the check stops DNS rebinding)."
        ),
        "control_allowed_origins": (
            "Browser origins (comma-separated; `*` allows any) whose pages may change "
            "state through the control API; other cross-site requests get 403."
        ),
        "control_idle_timeout": (
            "Seconds after which an idle control connection is closed. Applies after a restart."
        ),
        "control_max_connections": (
            "Most control connections open at once (lowered at start to fit the file "
            "limit); past it a new one closes the oldest idle one. Applies after a restart."
        ),
        "duration": (
            "A bounded run: `ocsd run` stops by itself this long after start-up (`90`, `90s`, "
            "`10m`, `1h30m`) and prints the run summary; `--duration` overrides it. "
            "Not set: runs until stopped."
        ),
        "thresholds": (
            "Pass/fail checks of a run, comma-separated, e.g. `post_latency_p99 < 200ms, "
            "delivered_rate >= 0.99`; checked when the run ends, exit code 4 when one "
            "fails; `--threshold` overrides them. Metrics: post_latency_p50/p90/p99/max, "
            "post_failed_rate, delivered_rate, dropped_rate, tick_lateness_p99, "
            "throughput, notifications_sent/failed/dropped."
        ),
        "fault_drop": (
            "Probability per notification that it is not sent at all, as OCS loses one "
            "when a POST fails (counted as failed, `fault injected: drop`)."
        ),
        "fault_delay": "Probability per notification that it is held for `delay-time`.",
        "fault_delay_time": "Seconds a delayed notification is held before its POST.",
        "fault_reorder": (
            "Probability per notification that it is held back and sent after its "
            "group's next one. Needs `delivery-mode = ocs`."
        ),
        "fault_duplicate": (
            "Probability per notification that the same body (same `GSW_DATE_TIME`) is "
            "posted twice."
        ),
        "fault_clock_skew": (
            "Probability per notification that its `GSW_DATE_TIME` is moved by `clock-skew-time`."
        ),
        "fault_clock_skew_time": "Seconds added to `GSW_DATE_TIME` by `clock-skew` (may be negative).",
        "fault_unknown_field": (
            "Probability per notification that it carries one more `GSW_*` field, "
            "`GSW_OCSD_INJECTED_UNKNOWN_FIELD`, that no OCS sends (forward compatibility)."
        ),
        "fault_slow_send": (
            "Probability per notification that its body is sent in 16-byte pieces at "
            "`slow-send-rate` (chunked); the POST still has `http-response-timeout`."
        ),
        "fault_slow_send_rate": "Bytes per second of a `slow-send` body.",
        "fault_seed": (
            "Seed of the fault decisions (not set: `[ocsd] seed`, else 0): the same seed "
            "hits the same notifications of each group in every run."
        ),
        "log_format": (
            "`json`: one JSON object per line; `console`: for a person at a terminal; "
            "`genesys`: Genesys short lines (`HH:MM:SS.mmm Trc 81000 ...`)."
        ),
        "stats_window": (
            "Seconds of simulated time the statistics of every body cover (a sliding window)."
        ),
        "time_scale": (
            "Simulated seconds per wall second: `60` runs a campaign hour in a minute. "
            "The periodic interval stays in wall seconds."
        ),
        "seed": (
            "Seed of the dialing simulation's random generator: set one to make a run "
            "reproducible; not set, every run differs."
        ),
        "schedule_timezone": "Time zone (IANA name) of the `HH:MM` entries of the schedules.",
        "shutdown_grace": (
            "At a stop, in-flight POSTs and queued state notifications get "
            "min(`http-response-timeout`, this) seconds; the rest is dropped and counted."
        ),
        "delivery_mode": (
            "`ocs`: one attempt per body, no retry, nothing on disk (what OCS does). "
            "`reliable`: state notifications delivered at least once, in order per "
            "group, through an outbox on disk, with retries and a dead-letter file."
        ),
        "retry_schedule": (
            "`reliable`: seconds before the 2nd, 3rd, ... attempt, the last one "
            f"repeating, each with ±20 % jitter; each delay {RETRY_DELAY.allowed()}, "
            f"at most {MAX_RETRY_STEPS} of them."
        ),
        "max_attempts": (
            "`reliable`: attempts per state notification in all before it goes to the "
            "dead-letter file; not set: one more than the delays of `retry-schedule` (7)."
        ),
        "webhook_secret": (
            "`whsec_` + base64 (24 to 64 bytes decoded): signs every POST with the "
            "Standard Webhooks headers, in both delivery modes. Never logged; prefer "
            "the environment variable to the file."
        ),
        "outbox_path": (
            "`reliable`: the SQLite outbox of the state notifications not yet "
            "delivered; its directory must exist; one ocsd per file."
        ),
        "dead_letter_path": (
            "`reliable`: the JSON-lines file of the notifications given up; not the outbox's file."
        ),
        "ca_file": (
            "PEM bundle of CA certificates trusted for an https receiver, on top of the "
            "system's; checked when the configuration is loaded."
        ),
        "control_token": (
            "When set, every control request but `/healthz` and `/readyz` needs "
            "`Authorization: Bearer <token>`: at least 16 printable ASCII characters, "
            "no spaces. Never logged; prefer the environment variable to the file."
        ),
        "shard": (
            "`K/N` (1 ≤ K ≤ N): this instance runs only the groups whose dbid mod N is "
            "K - 1, so N instances can share one file. Not set: every group. `auto`: K "
            "is the pod's ordinal + 1 and N is `shard-count`; the ordinal is read from "
            "`OCSD_POD_INDEX` (set from the pod's `apps.kubernetes.io/pod-index` label), "
            "else from a host name ending in `-<ordinal>` (`HOSTNAME`, as a StatefulSet "
            "names its pods); none, or one not below N, is an error naming what was "
            "read ([Kubernetes](kubernetes.md))."
        ),
        "shard_count": (
            "N of `shard = auto`: how many instances share the groups (a StatefulSet's "
            "replicas). With `shard = K/N` it must be N; without `shard` it is refused "
            "(every instance would run every group)."
        ),
    },
    CallingListSettings: {
        "dbid": "Configuration DBID of the list (`GSW_CALLING_LIST_DBID`); unique.",
        "records": "Records in the list, to dial.",
        "live_answer_rate": "Share of dial attempts a person answers.",
        "answering_machine_rate": "Share of dial attempts a machine answers.",
        "busy_rate": (
            "Share of dial attempts that find the line busy. The three rates add up to "
            "at most 1; no answer is the rest."
        ),
        "ring_time": "Mean seconds until a person or a machine answers.",
        "no_answer_timeout": "Seconds an unanswered call rings before it is given up.",
        "max_attempts": "Dial attempts per record at most, redials included.",
        "redial_delay": (
            "Seconds before a busy, unanswered, machine-answered or abandoned record "
            "is dialed again."
        ),
    },
    CampaignGroupSettings: {
        "dbid": (
            "Configuration DBID of the group (`GSW_CAMPAIGN_GROUP_DBID`, and the "
            "`<DBID>` of the control API); unique across groups and lists."
        ),
        "uuid": (
            "`GSW_CAMPAIGN_GROUP_UUID`; not set: a UUID derived from the dbid, the "
            "same after every restart."
        ),
        "campaign": "`GSW_CAMPAIGN_NAME`.",
        "group": "`GSW_GROUP_NAME`: the agent group or place group.",
        "template": "`GSW_CAMPAIGN_TEMPLATE_NAME`; not set: the field is left out of the body.",
        "queue": "`GSW_QUEUE_NAME`: the Voice Transfer Destination DN.",
        "agents": (
            "Logged-in agents of the group; the GVP modes use `ports` instead. `0` only "
            "with a GVP mode: a mode that dials for agents (predictive, progressive, "
            "power, preview and their variants) is refused with no agent, in this file "
            "(`dial-mode`, `schedule`) and in StartDialing/SetDialingMode (400)."
        ),
        "talk_time": "Mean seconds of talk per connected call.",
        "wrap_up_time": "Mean seconds of after-call work per connected call.",
        "lines_per_agent": "Power modes: lines dialed per ready agent.",
        "ports": "GVP modes: IVR ports that take the live answers (these modes have no agents).",
        "dial_mode": (
            "Dial mode of a StartDialing that names none: a name or a Genesys number "
            "(`none` cannot dial)."
        ),
        "optimize_by": (
            "Optimization method of the predictive modes when a request names none: a "
            "name or a Genesys number."
        ),
        "optimize_goal": (
            "Goal of `optimize-by`: a percent 1..100 for busy factor and overdial "
            "rate, seconds 1..3600 for the two time methods."
        ),
        "calling_lists": (
            "Comma-separated names of the group's `[calling-list:<name>]` sections; at least one."
        ),
        "auto_complete": (
            "Auto-completion when a request does not say (`GSW_AUTO_COMPLETION`): the "
            "group stops and unloads itself when no record is left."
        ),
        "schedule": (
            "Outbound Schedule: `<when> <command> [arguments]` entries separated by "
            "`;`, `<when>` being `+30s`/`+5m`/`+1h` after start or `HH:MM[:SS]` daily."
        ),
    },
    LaunchSettings: {
        "config": (
            "The INI file `ocsd` reads when no `--config` is given; not set: the "
            "example configuration embedded in the package. Any other `OCSD_*` variable "
            "must name an option: an unknown one (a typo) is refused at start, naming "
            "the closest option."
        ),
    },
}


@dataclass(frozen=True, slots=True)
class OptionDoc:
    """Everything the reference says about one option."""

    section: str  # CAMPAIGN_GROUP, CALLING_LIST, ENVIRONMENT or an INI section name
    name: str  # as written in the INI file: dashes
    field: str  # the model's field name
    model: type[BaseModel]
    env: str | None  # the OCSD_* variable, None for the named sections' options
    type: str
    default: str | None  # as INI text; None when not set by default
    required: bool
    constraints: tuple[str, ...]
    help: str

    @property
    def anchor(self) -> str:
        """The id of its row on the page: ``option-<section>-<name>``."""
        return f"option-{self.section}-{self.name}".lower()


# -- reading the models --------------------------------------------------------------------


def options() -> list[OptionDoc]:
    """Every option, section by section in page order (see :func:`sections`)."""
    return [option for group in sections().values() for option in group]


def sections() -> dict[str, list[OptionDoc]]:
    """The options of each section: ``OCServer``, ``tenant``, ``ocsd``, then
    ``calling-list``, ``campaign-group`` and ``environment``.

    Raises LookupError when a Settings field has no place in SECTION_OPTIONS, so an
    option added to the model but not to the INI layout fails the docs build.
    """
    fields = Settings.model_fields
    placed = {field for names in SECTION_OPTIONS.values() for field in names.values()}
    unplaced = sorted(set(fields) - placed - SECTION_FIELDS)
    if unplaced:
        raise LookupError(f"settings fields without an INI place: {', '.join(unplaced)}")
    result: dict[str, list[OptionDoc]] = {
        section: [
            _option(Settings, field, section, name, ENV_PREFIX + field.upper())
            for name, field in names.items()
        ]
        for section, names in SECTION_OPTIONS.items()
    }
    named: tuple[tuple[str, type[BaseModel]], ...] = (
        (CALLING_LIST, CallingListSettings),
        (CAMPAIGN_GROUP, CampaignGroupSettings),
    )
    for section, model in named:
        result[section] = [
            _option(model, field, section, field.replace("_", "-"), None)
            for field in model.model_fields
        ]
    result[ENVIRONMENT] = [
        _option(LaunchSettings, field, ENVIRONMENT, variable, variable)
        for field in LaunchSettings.model_fields
        for variable in (ENV_PREFIX + field.upper(),)
    ]
    return result


def section_title(section: str) -> str:
    """``[OCServer]``, ``[campaign-group:<name>]``; the environment has no brackets."""
    if section == ENVIRONMENT:
        return "Environment only"
    if section in (CAMPAIGN_GROUP, CALLING_LIST):
        prefix = GROUP_PREFIX if section == CAMPAIGN_GROUP else LIST_PREFIX
        return f"[{prefix}<name>]"
    return f"[{section}]"


def _option(
    model: type[BaseModel], field: str, section: str, name: str, env: str | None
) -> OptionDoc:
    info = model.model_fields[field]
    required = info.is_required()
    return OptionDoc(
        section=section,
        name=name,
        field=field,
        model=model,
        env=env,
        type=type_name(info.annotation),
        default=None if required else default_text(_default(info)),
        required=required,
        constraints=constraints(info),
        help=help_text(model, field),
    )


def help_text(model: type[BaseModel], field: str) -> str:
    """The field's description, else its entry in OPTION_HELP, else ''."""
    description = model.model_fields[field].description
    if description:
        return description.strip()
    return OPTION_HELP.get(model, {}).get(field, "")


def _default(info: FieldInfo) -> Any:
    if info.default is PydanticUndefined and info.default_factory is not None:
        return info.get_default(call_default_factory=True, validated_data={})
    return info.default


def default_text(value: Any) -> str | None:
    """A default as it would be written in the INI file; None when nothing is set."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return label(value) if isinstance(value, enum.IntEnum) else str(value.value)
    if isinstance(value, SecretStr):
        return "***"
    if isinstance(value, tuple | list):
        return ", ".join(_number(item) for item in value)
    return _number(value)


def _number(value: Any) -> str:
    """``10.0`` as ``10``, ``0.3`` as ``0.3``, anything else as ``str`` does."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


# -- types ---------------------------------------------------------------------------------


def _without_none(annotation: Any) -> Any:
    """``X | None`` -> ``X``; ``Annotated[X, ...]`` -> ``X``."""
    if get_origin(annotation) is typing.Annotated:
        return _without_none(get_args(annotation)[0])
    if get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(rest) == 1:
            return _without_none(rest[0])
    return annotation


def type_name(annotation: Any) -> str:
    """How a person would call the type: ``whole number``, ``one of: json, console``."""
    annotation = _without_none(annotation)
    origin = get_origin(annotation)
    if origin is Literal:
        return "choice"
    if origin in (tuple, list):
        items = [arg for arg in get_args(annotation) if arg is not Ellipsis]
        item = type_name(items[0]) if items else "value"
        plural = {"number": "numbers", "text": "names", "whole number": "whole numbers"}
        return f"comma-separated {plural.get(item, item)}"
    if isinstance(annotation, type):
        if issubclass(annotation, enum.IntEnum):
            return "name or Genesys number"
        for known, name in TYPE_NAMES.items():
            if issubclass(annotation, known) and not (known is int and annotation is bool):
                return name
        return annotation.__name__
    return str(annotation)


# -- constraints ---------------------------------------------------------------------------

#: annotated_types (and pydantic's own metadata) name each bound by its attribute.
_LOWER = (("gt", ">"), ("ge", "≥"))
_UPPER = (("lt", "<"), ("le", "≤"))
_FLIPPED = {">": "<", "≥": "≤"}


def _metadata(info: FieldInfo) -> Iterator[Any]:
    """Every constraint object of a field: its metadata, and that of the ``Annotated``
    parts of its annotation (``Annotated[int, Field(ge=1)] | None`` keeps it there)."""
    yield from _flatten(info.metadata)
    yield from _annotated(info.annotation)


def _annotated(annotation: Any) -> Iterator[Any]:
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        base, *extra = get_args(annotation)
        yield from _flatten(extra)
        yield from _annotated(base)
    elif origin in (typing.Union, types.UnionType):
        for arg in get_args(annotation):
            yield from _annotated(arg)


def _flatten(items: Iterable[Any]) -> Iterator[Any]:
    """FieldInfo and grouped metadata (``Interval``, ``Len``) give their parts."""
    for item in items:
        if isinstance(item, FieldInfo):
            yield from _flatten(item.metadata)
        elif isinstance(item, Iterable) and not isinstance(item, str | bytes | type):
            yield from _flatten(item)
        else:
            yield item


def constraints(info: FieldInfo) -> tuple[str, ...]:
    """The field's allowed range, as short phrases: ``0 ≤ value ≤ 65535``, ``≥ 1 character``."""
    lower: tuple[str, str] | None = None  # (sign, bound): (">", "0")
    upper: tuple[str, str] | None = None
    out: list[str] = []
    for item in _metadata(info):
        for attribute, sign in _LOWER:
            if getattr(item, attribute, None) is not None:
                lower = (sign, _number(getattr(item, attribute)))
        for attribute, sign in _UPPER:
            if getattr(item, attribute, None) is not None:
                upper = (sign, _number(getattr(item, attribute)))
        if getattr(item, "multiple_of", None) is not None:
            out.append(f"a multiple of {_number(item.multiple_of)}")
        if getattr(item, "min_length", None) is not None:
            out.append(f"at least {item.min_length} {_unit(info, item.min_length)}")
        if getattr(item, "max_length", None) is not None:
            out.append(f"at most {item.max_length} {_unit(info, item.max_length)}")
        if getattr(item, "pattern", None) is not None:
            out.append(f"matches `{item.pattern}`")
    if lower and upper:
        out.insert(0, f"{lower[1]} {_FLIPPED[lower[0]]} value {upper[0]} {upper[1]}")
    elif bound := lower or upper:
        out.insert(0, f"value {bound[0]} {bound[1]}")
    return (*choices(info.annotation), *out)


def choices(annotation: Any) -> tuple[str, ...]:
    """The values a choice or an enumeration accepts: ``json``; ``predictive`` (1)."""
    annotation = _without_none(annotation)
    if get_origin(annotation) is Literal:
        return (", ".join(f"`{value}`" for value in get_args(annotation)),)
    if isinstance(annotation, type) and issubclass(annotation, enum.IntEnum):
        return (", ".join(f"`{label(member)}` ({int(member)})" for member in annotation),)
    return ()


def _unit(info: FieldInfo, count: int) -> str:
    text = _without_none(info.annotation) is str
    word = "character" if text else "item"
    return word if count == 1 else word + "s"


# -- Markdown ------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(section_options: Iterable[OptionDoc]) -> str:
    """A Markdown table of options, one row each, the row's anchor in its first cell."""
    rows = [
        "| Option, environment variable | Type | Default | Allowed | Description |",
        "|---|---|---|---|---|",
    ]
    for option in section_options:
        if option.required:
            default = "**required**"
        elif option.default is None:
            default = "*not set*"
        else:
            default = f"`{option.default}`"
        name = f'<a id="{option.anchor}"></a>`{option.name}`'
        if option.env and option.env != option.name:
            name += f"<br>`{option.env}`"
        cells = (
            name,
            option.type,
            default,
            "; ".join(option.constraints) or "—",
            option.help,
        )
        rows.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(rows) + "\n"


#: A line of a Markdown page that the option table of one section replaces.
MARKER = re.compile(r"^<!-- ocsd-options: (?P<section>\S+) -->[ \t]*$", re.MULTILINE)


def render_page(markdown: str) -> str:
    """The page with each ``<!-- ocsd-options: SECTION -->`` line replaced by the table
    of that section's options (SECTION as in :func:`sections`).

    Raises LookupError for a marker of an unknown section, and for a section that has
    no marker, so that no option can be left out of the page.
    """
    tables = {section: markdown_table(group) for section, group in sections().items()}
    placed: set[str] = set()

    def table(match: re.Match[str]) -> str:
        section = match["section"]
        if section not in tables:
            raise LookupError(
                f"ocsd-options: unknown section {section!r} (known: {', '.join(tables)})"
            )
        placed.add(section)
        return tables[section]

    page = MARKER.sub(table, markdown)
    missing = [section for section in tables if section not in placed]
    if missing:
        raise LookupError(f"no <!-- ocsd-options: ... --> line for: {', '.join(missing)}")
    return page
