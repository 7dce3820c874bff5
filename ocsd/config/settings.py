"""Configuration: an INI file plus ``OCSD_<OPTION>`` environment variables.

pydantic-settings has no INI source, so :class:`IniSettingsSource` reads one; the
environment is ordered before it, so an environment variable beats the file. Every
error is turned into one line naming the file, line, section and option
(:class:`ConfigError`), because a user fixing a config file needs the place, not a
pydantic traceback.
"""

from __future__ import annotations

import functools
import os
import re
import ssl
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ocsd.core.genesys import DialMode, OptimizeBy, parse_enum
from ocsd.core.lifecycle import Dialing, validate_dialing
from ocsd.core.schedule import Entry, parse_schedule
from ocsd.delivery.signing import SecretError, decode_secret
from ocsd.logs.redact import redact_uri

ENV_PREFIX = "OCSD_"
#: Namespace of the UUIDs derived from DBIDs; never change it, receivers key on the UUIDs.
UUID_NAMESPACE = uuid.UUID("6f1d3c2a-6b7e-5d1c-9a0e-0c5d0e0a7c11")

GROUP_PREFIX = "campaign-group:"
LIST_PREFIX = "calling-list:"

#: INI section -> option -> settings field. [campaign-group:*] and [calling-list:*]
#: sections map option names to the fields of their models the same way (dash -> underscore).
SECTION_OPTIONS: dict[str, dict[str, str]] = {
    "OCServer": {
        "send-campaigngroup-states": "send_campaigngroup_states",
        "campaigngroup-states-uri": "campaigngroup_states_uri",
        "campaigngroup-states-interval": "campaigngroup_states_interval",
        "http-response-timeout": "http_response_timeout",
        "http-connection-pool-size": "http_connection_pool_size",
    },
    "tenant": {"name": "tenant_name", "ccid": "tenant_ccid"},
    "ocsd": {
        "control-host": "control_host",
        "control-port": "control_port",
        "log-format": "log_format",
        "stats-window": "stats_window",
        "time-scale": "time_scale",
        "seed": "seed",
        "schedule-timezone": "schedule_timezone",
        "shutdown-grace": "shutdown_grace",
        "delivery-mode": "delivery_mode",
        "retry-schedule": "retry_schedule",
        "max-attempts": "max_attempts",
        "webhook-secret": "webhook_secret",
        "outbox-path": "outbox_path",
        "dead-letter-path": "dead_letter_path",
        "ca-file": "ca_file",
        "control-token": "control_token",
        "shard": "shard",
    },
}
#: Options whose value is a secret: never logged, printed as *** by check-config.
SECRET_FIELDS = frozenset({"webhook_secret", "control_token"})
#: Bounds of retry-schedule delays (seconds) and of its number of entries.
MAX_RETRY_DELAY = 86_400.0
MAX_RETRY_STEPS = 100
#: Shortest control-token accepted.
MIN_TOKEN_LENGTH = 16
#: A shard, K/N; the digits are bounded so int() never meets a huge number.
_SHARD = re.compile(r"\s*([0-9]{1,18})\s*/\s*([0-9]{1,18})\s*")
FIELD_PLACES: dict[str, tuple[str, str]] = {
    field: (section, option)
    for section, options in SECTION_OPTIONS.items()
    for option, field in options.items()
}


class ConfigError(Exception):
    """A configuration mistake, as one line that names where it is."""


def derive_uuid(dbid: int) -> str:
    """The stable UUID of a group that has none configured (spec 2: derived from the DBID)."""
    return str(uuid.uuid5(UUID_NAMESPACE, f"campaign-group/{dbid}"))


def parse_shard(value: str) -> tuple[int, int]:
    """``K/N`` as (K, N); ValueError unless both are integers with 1 <= K <= N."""
    match = _SHARD.fullmatch(value)
    if match:
        k, n = int(match[1]), int(match[2])
        if 1 <= k <= n:
            return k, n
    raise ValueError(f"{value!r} is not K/N with 1 <= K <= N")


@functools.lru_cache(maxsize=8)
def _shard_numbers(shard: str) -> tuple[int, int]:
    """parse_shard, remembered: in_shard is called once per group."""
    return parse_shard(shard)


def _enum_validator(enum: type[DialMode] | type[OptimizeBy]) -> Any:
    """A before-validator of ``enum`` fields; remembers the names it parsed, because
    parse_enum takes ~10 us and a 20,000-group file repeats the same few names."""
    parsed: dict[str, DialMode | OptimizeBy] = {}

    def parse(value: Any) -> Any:
        if isinstance(value, enum):
            return value
        if isinstance(value, str):
            member = parsed.get(value)
            if member is None:
                member = parsed[value] = parse_enum(enum, value)
            return member
        if isinstance(value, int):
            return parse_enum(enum, value)
        raise ValueError(f"expected a {enum.__name__} name or number")

    return parse


class CallingListSettings(BaseModel):
    """A ``[calling-list:<name>]`` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dbid: Annotated[int, Field(gt=0)]
    records: Annotated[int, Field(ge=0)] = 1000
    # Outcome mix of one dial attempt (fractions; no-answer is the rest).
    live_answer_rate: Annotated[float, Field(ge=0, le=1)] = 0.30
    answering_machine_rate: Annotated[float, Field(ge=0, le=1)] = 0.15
    busy_rate: Annotated[float, Field(ge=0, le=1)] = 0.10
    # Mean seconds a live or machine answer takes to come; how long an unanswered call rings.
    ring_time: Annotated[float, Field(gt=0)] = 12.0
    no_answer_timeout: Annotated[float, Field(gt=0)] = 30.0
    # Redial rule: busy/no-answer/machine records are retried after redial-delay seconds,
    # at most max-attempts dial attempts per record in all.
    max_attempts: Annotated[int, Field(ge=1)] = 3
    redial_delay: Annotated[float, Field(ge=0)] = 900.0

    @model_validator(mode="after")
    def _rates_fit(self) -> CallingListSettings:
        total = self.live_answer_rate + self.answering_machine_rate + self.busy_rate
        if total > 1.0 + 1e-9:
            raise _PlacedError(
                ("busy_rate",),
                f"live-answer-rate + answering-machine-rate + busy-rate = {total:g}, more than 1",
            )
        return self


class CampaignGroupSettings(BaseModel):
    """A ``[campaign-group:<name>]`` section; the section name is the group name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dbid: Annotated[int, Field(gt=0)]
    uuid: str | None = None
    campaign: Annotated[str, Field(min_length=1)]
    group: Annotated[str, Field(min_length=1)]
    template: str | None = None
    queue: Annotated[str, Field(min_length=1)]
    agents: Annotated[int, Field(ge=0)] = 10
    # Mean seconds of talk and of after-call work per connected call.
    talk_time: Annotated[float, Field(gt=0)] = 180.0
    wrap_up_time: Annotated[float, Field(ge=0)] = 30.0
    # Power modes: lines dialed per agent. GVP modes: IVR ports (they have no agents).
    lines_per_agent: Annotated[float, Field(gt=0, le=20)] = 2.0
    ports: Annotated[int, Field(ge=1)] = 30
    dial_mode: DialMode = DialMode.PREDICTIVE
    optimize_by: OptimizeBy = OptimizeBy.BUSY_FACTOR
    optimize_goal: int = 80
    calling_lists: tuple[str, ...]
    auto_complete: bool = False
    # Outbound Schedule: "<when> <command> [args]; ..." (see ocsd/schedule.py); actor 2.
    schedule: str = ""

    @field_validator("schedule")
    @classmethod
    def _schedule_parses(cls, value: str) -> str:
        if value:  # most groups have none
            parse_schedule(value)  # raises ScheduleError (a ValueError) naming the bad command
        return value

    def schedule_entries(self) -> tuple[Entry, ...]:
        return parse_schedule(self.schedule)

    _parse_dial_mode = field_validator("dial_mode", mode="before")(_enum_validator(DialMode))
    _parse_optimize_by = field_validator("optimize_by", mode="before")(_enum_validator(OptimizeBy))

    @field_validator("template")
    @classmethod
    def _empty_template_is_none(cls, value: str | None) -> str | None:
        """Spec 2: the template name is sent only if configured; `template =` is not."""
        return value or None

    @field_validator("uuid")
    @classmethod
    def _uuid_format(cls, value: str | None) -> str | None:
        return None if value is None else str(uuid.UUID(value))

    @field_validator("calling_lists", mode="before")
    @classmethod
    def _split_lists(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [name.strip() for name in value.split(",") if name.strip()]
        if not value:
            raise ValueError("name at least one calling list")
        return value

    @model_validator(mode="after")
    def _dialing_is_valid(self) -> CampaignGroupSettings:
        defaults = self.default_dialing()
        try:
            validate_dialing(defaults)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        for entry in self.schedule_entries() if self.schedule else ():
            if entry.command == "setmode" and entry.change.is_empty():
                raise _PlacedError(("schedule",), f"{entry.text!r}: setmode needs a dial mode")
            if entry.command in ("start", "setmode"):
                try:  # the dialing the entry asks for, filled from the group's defaults
                    validate_dialing(entry.change.resolve(defaults, defaults))
                except ValueError as exc:
                    raise _PlacedError(("schedule",), f"{entry.text!r}: {exc}") from None
        return self

    def default_dialing(self) -> Dialing:
        return Dialing(self.dial_mode, self.optimize_by, self.optimize_goal)


class Settings(BaseSettings):
    """Every option of ocsd. Field names are the INI option names with underscores."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    # [OCServer]: spec section 6
    send_campaigngroup_states: bool = False
    campaigngroup_states_uri: str | None = None
    campaigngroup_states_interval: Annotated[int, Field(ge=0)] = 10
    http_response_timeout: Annotated[float, Field(gt=0)] = 10.0
    http_connection_pool_size: Annotated[int, Field(ge=1, le=1000)] = 10
    # [tenant]
    tenant_name: str = "Unknown"
    tenant_ccid: str = "Unknown"

    @field_validator("tenant_name", "tenant_ccid")
    @classmethod
    def _empty_tenant_is_unknown(cls, value: str) -> str:
        """Spec 2: "Unknown" when not configured, and an empty value configures nothing."""
        return value.strip() or "Unknown"

    # [ocsd]
    control_host: str = "127.0.0.1"
    control_port: Annotated[int, Field(ge=0, le=65535)] = 8090
    log_format: Literal["json", "console", "genesys"] = "json"
    stats_window: Annotated[float, Field(gt=0)] = 300.0
    time_scale: Annotated[float, Field(gt=0, le=100_000)] = 1.0
    seed: int | None = None
    schedule_timezone: str = "UTC"
    # At a stop, in-flight POSTs get min(http-response-timeout, shutdown-grace) seconds, so
    # a container stops within docker's default 10 s even with a receiver that hangs.
    shutdown_grace: Annotated[float, Field(ge=0, le=600)] = 8.0
    # Delivery: "ocs" = one attempt, no retry (spec section 1); "reliable" = at-least-once
    # with retries, an outbox on disk and a dead-letter file (see notifier.ReliableNotifier).
    delivery_mode: Literal["ocs", "reliable"] = "ocs"
    # Seconds before the 2nd, 3rd, ... attempt (the last one repeats); jitter +-20 %.
    retry_schedule: str = "1,2,5,10,30,60"
    # Attempts per state notification in all; default: one more than the schedule's delays.
    max_attempts: Annotated[int, Field(ge=1, le=10_000)] | None = None
    # Standard Webhooks signing secret, "whsec_" + base64; signs in both delivery modes.
    webhook_secret: SecretStr | None = None
    outbox_path: str = "ocsd-outbox.sqlite3"
    dead_letter_path: str = "ocsd-deadletters.jsonl"
    # PEM bundle of CAs trusted for https receivers, on top of the system's.
    ca_file: str | None = None
    # Bearer token required on every control request except /healthz and /readyz.
    control_token: SecretStr | None = None
    # "K/N": this instance is shard K of N and runs the groups with dbid % N == K - 1, so
    # N instances can share one file (each given its own OCSD_SHARD). None: all groups.
    shard: str | None = None

    @field_validator("shard", mode="before")
    @classmethod
    def _k_of_n(cls, value: Any) -> Any:
        """Normalised to "K/N"; empty is no shard, so a file may leave it to the environment."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not K/N with 1 <= K <= N")
        k, n = parse_shard(value)
        return f"{k}/{n}"

    @field_validator("delivery_mode", mode="before")
    @classmethod
    def _mode_lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("retry_schedule", mode="before")
    @classmethod
    def _schedule_delays(cls, value: Any) -> str:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise ValueError("expected comma-separated seconds, e.g. 1,2,5,10,30,60")
        parts = [part.strip() for part in value.split(",")]
        if not value.strip() or any(not part for part in parts):
            raise ValueError("expected comma-separated seconds, e.g. 1,2,5,10,30,60")
        if len(parts) > MAX_RETRY_STEPS:
            raise ValueError(f"at most {MAX_RETRY_STEPS} delays")
        delays = []
        for part in parts:
            try:
                delay = float(part)
            except ValueError:
                raise ValueError(f"{part!r} is not a number of seconds") from None
            if not 0 < delay <= MAX_RETRY_DELAY:  # also refuses nan and inf
                raise ValueError(f"{part!r}: each delay must be > 0 and <= {MAX_RETRY_DELAY:g} s")
            delays.append(delay)
        return ",".join(f"{d:g}" for d in delays)

    @field_validator("webhook_secret", "control_token", mode="before")
    @classmethod
    def _empty_secret_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _usable_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                decode_secret(value.get_secret_value())
            except SecretError as exc:
                raise ValueError(f"{exc} (value not shown)") from None
        return value

    @field_validator("control_token")
    @classmethod
    def _usable_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        token = value.get_secret_value()
        if len(token) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"must be at least {MIN_TOKEN_LENGTH} characters (value not shown); "
                "e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        if not all(33 <= ord(c) < 127 for c in token):
            raise ValueError("must be printable ASCII without spaces (value not shown)")
        return value

    @field_validator("outbox_path", "dead_letter_path")
    @classmethod
    def _a_file_path(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must be a file path")
        if "\x00" in value:
            raise ValueError("must not contain a NUL character")
        if Path(value).is_dir():
            raise ValueError(f"{value!r} is a directory; name a file in it")
        return value

    @field_validator("ca_file", mode="before")
    @classmethod
    def _empty_ca_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("ca_file")
    @classmethod
    def _loadable_ca(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if "\x00" in value:
            raise ValueError("must not contain a NUL character")
        if not Path(value).is_file():
            raise ValueError(f"{value!r}: no such file (a PEM bundle of CA certificates)")
        try:
            ssl.create_default_context().load_verify_locations(cafile=value)
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise ValueError(f"{value!r}: not a PEM bundle of CA certificates ({exc})") from None
        return value

    @field_validator("schedule_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name like Europe/Paris)"
            ) from None
        return value

    # [campaign-group:<name>] and [calling-list:<name>] sections
    campaign_groups: dict[str, CampaignGroupSettings] = Field(default_factory=dict)
    calling_lists: dict[str, CallingListSettings] = Field(default_factory=dict)

    @field_validator("campaigngroup_states_uri")
    @classmethod
    def _http_uri(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an http:// or https:// URL, got {redact_uri(value)!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.delivery_mode == "reliable":
            for field in ("outbox_path", "dead_letter_path"):
                directory = Path(getattr(self, field)).resolve().parent
                if not directory.is_dir():
                    raise _PlacedError(
                        (field,), f"directory {str(directory)!r} does not exist (create it)"
                    )
            if Path(self.outbox_path).resolve() == Path(self.dead_letter_path).resolve():
                raise _PlacedError(("dead_letter_path",), "must not be the outbox-path file")
        if self.send_campaigngroup_states and not self.campaigngroup_states_uri:
            raise _PlacedError(
                ("campaigngroup_states_uri",),
                "is required when send-campaigngroup-states = true",
            )
        seen: dict[int, str] = {}
        for name, group in self.campaign_groups.items():
            for list_name in group.calling_lists:
                if list_name not in self.calling_lists:
                    raise _PlacedError(
                        ("campaign_groups", name, "calling_lists"),
                        f"names calling list {list_name!r}, which has no [calling-list:{list_name}] section",
                    )
            _claim(seen, group.dbid, f"[campaign-group:{name}]", ("campaign_groups", name, "dbid"))
        for name, calling_list in self.calling_lists.items():
            _claim(
                seen, calling_list.dbid, f"[calling-list:{name}]", ("calling_lists", name, "dbid")
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, IniSettingsSource(settings_cls, _CURRENT_INI.get()))

    # -- views used by the daemon ------------------------------------------------

    @property
    def retry_delays(self) -> tuple[float, ...]:
        return tuple(float(part) for part in self.retry_schedule.split(","))

    @property
    def attempts_allowed(self) -> int:
        """max-attempts, or one first attempt plus one per retry-schedule delay."""
        return self.max_attempts or len(self.retry_delays) + 1

    @property
    def delivers(self) -> bool:
        return self.send_campaigngroup_states and self.campaigngroup_states_uri is not None

    def in_shard(self, dbid: int) -> bool:
        """Whether this instance runs the group with this DBID: all without a shard."""
        if self.shard is None:
            return True
        k, n = _shard_numbers(self.shard)
        return dbid % n == k - 1


class _PlacedError(ValueError):
    """A cross-field error that knows which field it belongs to."""

    def __init__(self, loc: tuple[str, ...], message: str) -> None:
        self.loc = loc
        super().__init__(message)


def _claim(seen: dict[int, str], dbid: int, owner: str, loc: tuple[str, ...]) -> None:
    if dbid in seen:
        raise _PlacedError(loc, f"dbid {dbid} is already used by {seen[dbid]}")
    seen[dbid] = owner


# -- the INI source ----------------------------------------------------------------


@dataclass(frozen=True)
class IniFile:
    """A parsed INI file: settings values, plus where each option was written."""

    path: str
    values: dict[str, Any]
    lines: dict[tuple[str, str], int]  # (section, option) -> line; option "" = header

    def place(self, section: str, option: str) -> str:
        line = self.lines.get((section, option)) or self.lines.get((section, ""))
        return f"{self.path}:{line}" if line else self.path


_CURRENT_INI: ContextVar[IniFile | None] = ContextVar("ocsd_ini", default=None)


class IniSettingsSource(PydanticBaseSettingsSource):
    """Hands the values of a parsed INI file to pydantic-settings."""

    def __init__(self, settings_cls: type[BaseSettings], ini: IniFile | None) -> None:
        super().__init__(settings_cls)
        self._values = ini.values if ini else {}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._values)


#: Section names of SECTION_OPTIONS by their lower-case spelling: [ocserver] is [OCServer].
_CANONICAL = {known.lower(): known for known in SECTION_OPTIONS}
#: configparser's section for options before no [section]: inherited by every section.
DEFAULT_SECTION = "DEFAULT"
#: The indent after an empty or comment line: no later line can continue a value.
_VALUE_ENDED = sys.maxsize
#: The common option line, for which the general rules of read_ini give the same result:
#: at column 0 (so never a continuation), not a header or comment line, no "#" at all (so
#: no inline comment). Groups: up to the first "=" or ":", and the rest.
_PLAIN_OPTION = re.compile(r"([^\s\[;#=:][^=:#]*)[=:]([^#]*)").fullmatch


@dataclass(frozen=True)
class IniSections:
    """What :func:`read_ini` found, as configparser would have found it."""

    #: section name as written between the brackets -> option (lower case) -> value
    sections: dict[str, dict[str, str]]
    #: the options of [DEFAULT] sections, which configparser adds to every section
    defaults: dict[str, str]
    #: section name as written -> line of its header
    headers: dict[str, int]
    #: (section, option) -> line, in IniFile.lines' terms (see _place_section)
    lines: dict[tuple[str, str], int]


def _place_section(name: str) -> str:
    """The section an error names: stripped, known sections spelt as in SECTION_OPTIONS."""
    stripped = name.strip()
    return _CANONICAL.get(stripped.lower(), stripped)


def _uncommented(line: str) -> str:
    """The line stripped of comments and whitespace, as configparser reads it ('' if none).

    ``;`` and ``#`` start a comment at the start of a line; ``#`` also after whitespace
    (``inline_comment_prefixes=("#",)``).
    """
    stripped = line.strip()
    if not stripped or stripped[0] in "#;":
        return ""
    at = line.find("#")
    while at > 0:
        if line[at - 1].isspace():
            return line[:at].strip()
        at = line.find("#", at + 1)
    return stripped


def read_ini(text: str, path: str) -> IniSections:
    """Read INI text the way ocsd's configparser did, and each option's line, in one pass.

    configparser (``inline_comment_prefixes=("#",)``, ``strict=True``,
    ``empty_lines_in_values=False``, no interpolation) took 2.3 s for a 20,000-group
    file plus a second pass for the line numbers. Same rules: option names lower-cased,
    ``=`` or ``:``, ``;``/``#`` comment lines, `` #`` inline comments, lines indented
    deeper than their option continue its value until an empty or comment line,
    duplicate sections and options refused at once, a line that is not ``option = value``
    reported (the first one) only at the end, as configparser does. Raises ConfigError.
    """
    sections: dict[str, dict[str, str]] = {}
    defaults: dict[str, str] = {}
    headers: dict[str, int] = {}
    lines: dict[tuple[str, str], int] = {}
    current: dict[str, str] | None = None
    section = place = ""
    option: str | None = None  # the option a continuation line continues
    indent_level = 0
    bad_line = 0  # the first line that is not an INI line
    plain_option = _PLAIN_OPTION
    for number, line in enumerate(text.split("\n"), start=1):
        plain = plain_option(line)
        if plain is not None and current is not None:
            name, rest = plain.groups()
            name = name.rstrip().lower()
            if name in current:
                raise ConfigError(f"{path}:{number}: [{section}] {name}: option appears twice")
            current[name] = rest.strip()
            lines[place, name] = number
            option = name
            indent_level = 0
            continue
        value = _uncommented(line)
        if not value:
            indent_level = _VALUE_ENDED
            continue
        indent = len(line) - len(line.lstrip())
        if current is not None and option and indent > indent_level:
            current[option] += "\n" + value
            continue
        indent_level = indent
        if value[0] == "[" and (end := value.rfind("]")) > 1:
            section = value[1:end]
            if section in sections:
                raise ConfigError(f"{path}:{number}: section [{section}] appears twice")
            if section == DEFAULT_SECTION:
                current = defaults
            else:
                current = sections[section] = {}
            headers[section] = number
            place = _place_section(section)
            lines[place, ""] = number
            option = None
            continue
        if current is None:
            raise ConfigError(f"{path}:{number}: an option before any [section]")
        equals, colon = value.find("="), value.find(":")
        cut = equals if colon < 0 or 0 <= equals < colon else colon
        if cut < 0:
            bad_line = bad_line or number
            continue
        name = value[:cut].rstrip()
        if not name:
            bad_line = bad_line or number
        name = name.lower()
        if name in current:
            raise ConfigError(f"{path}:{number}: [{section}] {name}: option appears twice")
        current[name] = value[cut + 1 :].strip()
        lines[place, name] = number
        option = name
    if bad_line:
        raise ConfigError(f"{path}:{bad_line}: not an INI line (expected 'option = value')")
    return IniSections(sections, defaults, headers, lines)


@functools.cache
def _field_names(model: type[BaseModel]) -> frozenset[str]:
    """The model's field names, looked up once: model_fields is a property (~1 us)."""
    return frozenset(model.model_fields)


def _canonical_section(name: str) -> str | None:
    return _CANONICAL.get(name.lower())


def parse_ini(text: str, path: str) -> IniFile:
    """Parse INI text into settings values; unknown sections and options are errors."""
    read = read_ini(text, path)
    ini = IniFile(path, {}, read.lines)
    values = ini.values
    groups: dict[str, dict[str, str]] = {}
    lists: dict[str, dict[str, str]] = {}
    defaults = read.defaults
    for section, written in read.sections.items():
        options = {**defaults, **written} if defaults else written
        is_group = section.startswith(GROUP_PREFIX)
        if is_group or section.startswith(LIST_PREFIX):
            prefix = GROUP_PREFIX if is_group else LIST_PREFIX
            model: type[BaseModel] = CampaignGroupSettings if is_group else CallingListSettings
            name = section[len(prefix) :].strip()
            if not name:
                raise ConfigError(
                    f"{path}:{read.headers[section]}: [{section}] needs a name after '{prefix}'"
                )
            entry = {option.replace("-", "_"): value for option, value in options.items()}
            fields = _field_names(model)
            if not fields.issuperset(entry):
                option = next(o for o in options if o.replace("-", "_") not in fields)
                known = ", ".join(f.replace("_", "-") for f in model.model_fields)
                raise ConfigError(
                    f"{ini.place(_place_section(section), option)}: [{section}] {option}: "
                    f"unknown option (known: {known})"
                )
            (groups if is_group else lists)[name] = entry
            continue
        canonical = _canonical_section(section)
        if canonical is None:
            raise ConfigError(
                f"{path}:{read.headers[section]}: [{section}] unknown section (known: OCServer, "
                "tenant, ocsd, campaign-group:<name>, calling-list:<name>)"
            )
        known_options = SECTION_OPTIONS[canonical]
        for option, value in options.items():
            field = known_options.get(option)
            if field is None:
                raise ConfigError(
                    f"{ini.place(canonical, option)}: [{section}] {option}: unknown option "
                    f"(known: {', '.join(known_options)})"
                )
            values[field] = value
    if groups:
        values["campaign_groups"] = groups
    if lists:
        values["calling_lists"] = lists
    return ini


def _env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def _explain(exc: ValidationError, ini: IniFile | None) -> str:
    """One line for the first validation error, naming the place the value came from."""
    error = exc.errors()[0]
    loc = tuple(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    ctx_error = error.get("ctx", {}).get("error")
    if isinstance(ctx_error, _PlacedError):
        loc = (*loc, *ctx_error.loc)  # the validator's model, then the field it names
    return _describe(loc, message, ini)


def _describe(loc: tuple[str, ...], message: str, ini: IniFile | None) -> str:
    path = ini.path if ini else "<no file>"
    if len(loc) >= 2 and loc[0] in ("campaign_groups", "calling_lists"):
        prefix = GROUP_PREFIX if loc[0] == "campaign_groups" else LIST_PREFIX
        section = f"{prefix}{loc[1]}"
        option = loc[2].replace("_", "-") if len(loc) > 2 else ""
        where = ini.place(section, option) if ini else path
        return f"{where}: [{section}] {option or '(section)'}: {message}".replace(" : ", ": ")
    field = loc[0] if loc else ""
    if field in FIELD_PLACES:
        section, option = FIELD_PLACES[field]
        if _env_name(field) in {k.upper() for k in os.environ}:
            return f"environment {_env_name(field)} ([{section}] {option}): {message}"
        where = ini.place(section, option) if ini else path
        return f"{where}: [{section}] {option}: {message}"
    return f"{path}: {'.'.join(loc) or 'configuration'}: {message}"


def default_config_text() -> str:
    """The example configuration embedded in the package (used when no file is given)."""
    return resources.files("ocsd.config").joinpath("example.ini").read_text(encoding="utf-8")


@contextmanager
def _ini_in_use(ini: IniFile | None) -> Iterator[None]:
    token = _CURRENT_INI.set(ini)
    try:
        yield
    finally:
        _CURRENT_INI.reset(token)


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read settings from ``path`` (or the embedded example) and the environment.

    Raises ConfigError with one line naming the file, line, section and option.
    """
    if path is None:
        text, name = default_config_text(), "<embedded ocsd.ini>"
    else:
        name = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{name}: configuration file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{name}: cannot read configuration file: {exc}") from None
    ini = parse_ini(text, name)
    with _ini_in_use(ini):
        try:
            return Settings()
        except ValidationError as exc:
            raise ConfigError(_explain(exc, ini)) from None
        except _PlacedError as exc:  # pragma: no cover - pydantic wraps these
            raise ConfigError(_describe(exc.loc, str(exc), ini)) from None


def describe_settings(settings: Settings) -> str:
    """The effective settings as INI text, secrets redacted (for ``check-config``)."""
    out: list[str] = []
    for section, options in SECTION_OPTIONS.items():
        out.append(f"[{section}]")
        for option, field in options.items():
            value = getattr(settings, field)
            if field == "campaigngroup_states_uri" and value:
                value = redact_uri(value)
            if field in SECRET_FIELDS and value is not None:
                value = "***"
            out.append(f"{option} = {_ini_value(value)}")
        out.append("")
    for name, cl in settings.calling_lists.items():
        out.append(f"[{LIST_PREFIX}{name}]")
        out.extend(f"{k.replace('_', '-')} = {_ini_value(v)}" for k, v in cl.model_dump().items())
        out.append("")
    for name in settings.campaign_groups:
        group = settings.campaign_groups[name]
        out.append(f"[{GROUP_PREFIX}{name}]")
        for key, value in group.model_dump().items():
            if key == "uuid" and value is None:
                value = f"{derive_uuid(group.dbid)}  # derived from dbid"
            if value is None or value == "":
                out.append(f"; {key.replace('_', '-')} is not set")
                continue
            out.append(f"{key.replace('_', '-')} = {_ini_value(value)}")
        out.append("")
    return "\n".join(out)


def _ini_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, SecretStr):
        return "***"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, DialMode | OptimizeBy):
        return f"{value.name.lower().replace('_', '-')}"
    if isinstance(value, tuple | list):
        return ", ".join(str(v) for v in value)
    return str(value)
