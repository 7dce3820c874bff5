"""The settings model: every option of ocsd, its type, default and allowed range.

Parsed once, here, into typed values (a retry schedule is a tuple of seconds, a shard a
:class:`Shard`), so nothing downstream parses an option again. Cross-field mistakes
raise :class:`PlacedError` naming the field, so the message can name the INI line.
"""

from __future__ import annotations

import re
import ssl
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from ocsd.config import ranges
from ocsd.config.ranges import Bound, host_problem, path_problem, uri_problem
from ocsd.core.errors import BadParameter
from ocsd.core.faults import FaultRates
from ocsd.core.genesys import DialMode, OptimizeBy, agents_refusal, parse_enum
from ocsd.core.lifecycle import Dialing, validate_dialing
from ocsd.core.schedule import Entry, parse_schedule
from ocsd.core.verdict import ThresholdError, parse_duration, parse_thresholds
from ocsd.delivery.signing import SecretError, decode_secret
from ocsd.logs.redact import redact_uri

ENV_PREFIX = "OCSD_"
#: Namespace of the UUIDs derived from DBIDs; never change it, receivers key on the UUIDs.
UUID_NAMESPACE = uuid.UUID("6f1d3c2a-6b7e-5d1c-9a0e-0c5d0e0a7c11")

#: Options whose value is a secret: never logged, printed as *** by check-config.
SECRET_FIELDS = frozenset({"webhook_secret", "control_token"})
#: Shortest control-token accepted.
MIN_TOKEN_LENGTH = 16
#: A shard, K/N; the digits are bounded so int() never meets a huge number.
_SHARD = re.compile(r"\s*([0-9]{1,18})\s*/\s*([0-9]{1,18})\s*")


#: Bounds of the control API's connection options.
_HOST_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_.\-]*[a-z0-9_])?|[0-9a-f:.]+")
_ORIGIN = re.compile(r"https?://(?:[a-z0-9_.\-]+|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?")


def _comma_list(value: Any) -> list[str]:
    """Comma- or space-separated names (the INI and the environment) or a sequence."""
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if not isinstance(value, list | tuple):
        raise ValueError("expected comma-separated names")
    return [str(item).strip() for item in value if str(item).strip()]


class ConfigError(Exception):
    """A configuration mistake, as one line that names where it is."""


def derive_uuid(dbid: int) -> str:
    """The stable UUID of a group that has none configured (docs/contract.md#formats: derived from the DBID)."""
    return str(uuid.uuid5(UUID_NAMESPACE, f"campaign-group/{dbid}"))


class Shard(NamedTuple):
    """``[ocsd] shard = K/N``: this instance is shard K of N; it runs the groups whose
    dbid mod N is K - 1, so N instances can share one file."""

    number: int  # K, from 1
    of: int  # N

    def __str__(self) -> str:
        return f"{self.number}/{self.of}"

    def __contains__(self, dbid: object) -> bool:
        return isinstance(dbid, int) and dbid % self.of == self.number - 1


def parse_shard(value: str) -> Shard:
    """``K/N`` as (K, N); ValueError unless both are integers with 1 <= K <= N."""
    match = _SHARD.fullmatch(value)
    if match:
        k, n = int(match[1]), int(match[2])
        if 1 <= k <= n:
            return Shard(k, n)
    raise ValueError(f"{value!r} is not K/N with 1 <= K <= N, nor auto")


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

    dbid: Annotated[int, ranges.DBID]
    records: Annotated[int, ranges.RECORDS] = 1000
    # Outcome mix of one dial attempt (fractions; no-answer is the rest).
    live_answer_rate: Annotated[float, ranges.RATE] = 0.30
    answering_machine_rate: Annotated[float, ranges.RATE] = 0.15
    busy_rate: Annotated[float, ranges.RATE] = 0.10
    # Mean seconds a live or machine answer takes to come; how long an unanswered call rings.
    ring_time: Annotated[float, ranges.RING_TIME] = 12.0
    no_answer_timeout: Annotated[float, ranges.RING_TIME] = 30.0
    # Redial rule: busy/no-answer/machine records are retried after redial-delay seconds,
    # at most max-attempts dial attempts per record in all.
    max_attempts: Annotated[int, ranges.DIAL_ATTEMPTS] = 3
    redial_delay: Annotated[float, ranges.REDIAL_DELAY] = 900.0

    @model_validator(mode="after")
    def _rates_fit(self) -> CallingListSettings:
        total = self.live_answer_rate + self.answering_machine_rate + self.busy_rate
        if total > 1.0 + 1e-9:
            raise PlacedError(
                ("busy_rate",),
                f"live-answer-rate + answering-machine-rate + busy-rate = {total:g}, more than 1",
            )
        return self


#: The request parameter of a dialing setting -> the option of the group that sets it.
_DIALING_FIELDS = {
    "dialmode": "dial_mode",
    "optimizeby": "optimize_by",
    "optimizegoal": "optimize_goal",
}


class CampaignGroupSettings(BaseModel):
    """A ``[campaign-group:<name>]`` section; the section name is the group name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dbid: Annotated[int, ranges.DBID]
    uuid: str | None = None
    campaign: Annotated[str, Field(min_length=1)]
    group: Annotated[str, Field(min_length=1)]
    template: str | None = None
    queue: Annotated[str, Field(min_length=1)]
    agents: Annotated[int, ranges.AGENTS] = 10
    # Mean seconds of talk and of after-call work per connected call.
    talk_time: Annotated[float, ranges.TALK_TIME] = 180.0
    wrap_up_time: Annotated[float, ranges.WRAP_UP_TIME] = 30.0
    # Power modes: lines dialed per agent. GVP modes: IVR ports (they have no agents).
    lines_per_agent: Annotated[float, ranges.LINES_PER_AGENT] = 2.0
    ports: Annotated[int, ranges.PORTS] = 30
    dial_mode: DialMode = DialMode.PREDICTIVE
    optimize_by: OptimizeBy = OptimizeBy.BUSY_FACTOR
    optimize_goal: Annotated[int, ranges.OPTIMIZE_GOAL] = 80
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
        """docs/contract.md#presence: the template name is sent only if configured; `template =` is not."""
        return value or None

    @field_validator("uuid")
    @classmethod
    def _uuid_format(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise ValueError(
                f"{ranges.shown(value)} is not a UUID; allowed: 32 hex digits such as "
                "266c83fc-a72a-5eb3-a801-e4b26189e160 (leave uuid out: derived from the dbid)"
            ) from None

    @field_validator("calling_lists", mode="before")
    @classmethod
    def _split_lists(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [name.strip() for name in value.split(",") if name.strip()]
        if not value:
            raise ValueError("name at least one calling list")
        if isinstance(value, list | tuple) and len(set(value)) < len(value):
            twice = next(name for index, name in enumerate(value) if name in value[:index])
            raise ValueError(f"names calling list {twice!r} twice")
        return value

    @model_validator(mode="after")
    def _dialing_is_valid(self) -> CampaignGroupSettings:
        defaults = self.default_dialing()
        try:
            validate_dialing(defaults)
        except BadParameter as exc:  # named by its request parameter: say the option
            field = _DIALING_FIELDS.get(exc.parameter, "dial_mode")
            raise PlacedError((field,), str(exc).removeprefix(f"{exc.parameter}: ")) from None
        if refusal := agents_refusal(self.dial_mode, self.agents):
            raise PlacedError(("agents",), refusal)
        for entry in self.schedule_entries() if self.schedule else ():
            if entry.command == "setmode" and entry.change.is_empty():
                raise PlacedError(("schedule",), f"{entry.text!r}: setmode needs a dial mode")
            if entry.command in ("start", "setmode"):
                try:  # the dialing the entry asks for, filled from the group's defaults
                    asked = validate_dialing(entry.change.resolve(defaults, defaults))
                except ValueError as exc:
                    raise PlacedError(("schedule",), f"{entry.text!r}: {exc}") from None
                if refusal := agents_refusal(asked.mode, self.agents):
                    raise PlacedError(("schedule",), f"{entry.text!r}: {refusal}")
        return self

    def default_dialing(self) -> Dialing:
        return Dialing(self.dial_mode, self.optimize_by, self.optimize_goal)


class Settings(BaseSettings):
    """Every option of ocsd. Field names are the INI option names with underscores."""

    # long: one field per option, with its range, is the single list the INI reader, the
    # environment, check-config and the generated reference read; split, it would scatter
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    # [OCServer]: docs/contract.md#options
    send_campaigngroup_states: bool = False
    campaigngroup_states_uri: str | None = None
    campaigngroup_states_interval: Annotated[int, ranges.INTERVAL] = 10
    http_response_timeout: Annotated[float, ranges.HTTP_RESPONSE_TIMEOUT] = 10.0
    http_connection_pool_size: Annotated[int, ranges.POOL_SIZE] = 10
    # [tenant]
    tenant_name: str = "Unknown"
    tenant_ccid: str = "Unknown"

    @field_validator("tenant_name", "tenant_ccid")
    @classmethod
    def _empty_tenant_is_unknown(cls, value: str) -> str:
        """docs/contract.md#formats: "Unknown" when not configured, and an empty value configures nothing."""
        return value.strip() or "Unknown"

    # [ocsd]
    control_host: str = "127.0.0.1"
    control_port: Annotated[int, ranges.CONTROL_PORT] = 8090
    log_format: Literal["json", "console", "genesys"] = "json"
    stats_window: Annotated[float, ranges.STATS_WINDOW] = 300.0
    time_scale: Annotated[float, ranges.TIME_SCALE] = 1.0
    seed: Annotated[int | None, ranges.SEED] = None
    schedule_timezone: str = "UTC"
    # At a stop, in-flight POSTs get min(http-response-timeout, shutdown-grace) seconds, so
    # a container stops within docker's default 10 s even with a receiver that hangs.
    shutdown_grace: Annotated[float, ranges.SHUTDOWN_GRACE] = 8.0
    # Delivery: "ocs" = one attempt, no retry (docs/contract.md#delivery); "reliable" = at-least-once
    # with retries, an outbox on disk and a dead-letter file (see notifier.ReliableNotifier).
    delivery_mode: Literal["ocs", "reliable"] = "ocs"
    # Seconds before the 2nd, 3rd, ... attempt (the last one repeats); jitter +-20 %.
    retry_schedule: Annotated[tuple[float, ...], NoDecode] = (1, 2, 5, 10, 30, 60)
    # Attempts per state notification in all; default: one more than the schedule's delays.
    max_attempts: Annotated[int | None, ranges.DELIVERY_ATTEMPTS] = None
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
    # "auto" is resolved by load_settings from the pod's ordinal (ocsd.config.pod).
    shard: Annotated[Shard | None, NoDecode] = None
    # N of shard = auto: the StatefulSet's replicas. With shard = K/N it must be N.
    shard_count: Annotated[int | None, ranges.SHARD_COUNT] = None
    # Where shard = auto read this pod's ordinal (check-config and the start-up log say it).
    _shard_origin: str = PrivateAttr(default="")

    # -- exposure of the control API: which requests it trusts, how many connections --
    # Host names accepted in the Host header of a state-changing request besides localhost,
    # IP addresses and control-host (a name that points here: DNS rebinding); "*": any.
    control_allowed_hosts: Annotated[tuple[str, ...], NoDecode] = ()
    # Browser origins (scheme://host[:port]) allowed to send state-changing requests besides
    # the control API's own (cross-site request forgery); "*": any.
    control_allowed_origins: Annotated[tuple[str, ...], NoDecode] = ()
    # Seconds a control connection may stay idle (before its first request or between two).
    control_idle_timeout: Annotated[float, ranges.CONTROL_IDLE_TIMEOUT] = 30.0
    # Control connections open at once; a new one past it closes the oldest idle one.
    # Lowered at start to fit under the process's file limit.
    control_max_connections: Annotated[int, ranges.CONTROL_MAX_CONNECTIONS] = 256

    # -- a bounded run: `ocsd run` stops by itself and says whether the receiver passed --
    # Seconds of wall time after start-up at which `ocsd run` stops (None: until stopped).
    duration: Annotated[float | None, ranges.RUN_DURATION] = None
    # k6-style checks of the run's figures, e.g. "post_latency_p99 < 200ms"; comma-separated.
    thresholds: Annotated[tuple[str, ...], NoDecode] = ()

    # -- [faults]: injected on purpose between the body and the POST (off by default) --
    fault_drop: Annotated[float, ranges.RATE] = 0.0
    fault_delay: Annotated[float, ranges.RATE] = 0.0
    fault_delay_time: Annotated[float, ranges.FAULT_DELAY] = 5.0
    fault_reorder: Annotated[float, ranges.RATE] = 0.0
    fault_duplicate: Annotated[float, ranges.RATE] = 0.0
    fault_clock_skew: Annotated[float, ranges.RATE] = 0.0
    fault_clock_skew_time: Annotated[float, ranges.CLOCK_SKEW] = -30.0
    fault_unknown_field: Annotated[float, ranges.RATE] = 0.0
    fault_slow_send: Annotated[float, ranges.RATE] = 0.0
    fault_slow_send_rate: Annotated[float, ranges.SLOW_SEND_RATE] = 200.0
    fault_seed: Annotated[int | None, ranges.SEED] = None

    def fault_rates(self) -> FaultRates:
        """The faults to inject; their seed is [faults] seed, else [ocsd] seed, else 0."""
        seed = self.fault_seed if self.fault_seed is not None else self.seed
        return FaultRates(
            drop=self.fault_drop,
            delay=self.fault_delay,
            reorder=self.fault_reorder,
            duplicate=self.fault_duplicate,
            clock_skew=self.fault_clock_skew,
            unknown_field=self.fault_unknown_field,
            slow_send=self.fault_slow_send,
            delay_time=self.fault_delay_time,
            clock_skew_time=self.fault_clock_skew_time,
            slow_send_rate=self.fault_slow_send_rate,
            seed=seed or 0,
        )

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        """``10m``, ``1h30m``, ``90`` (seconds); empty: no bound."""
        if not isinstance(value, str):
            return value
        if not value.strip():
            return None
        try:
            float(value)
        except ValueError:
            return parse_duration(value)
        return value  # a plain number: the range check names it as written

    @field_validator("thresholds", mode="before")
    @classmethod
    def _thresholds(cls, value: Any) -> tuple[str, ...]:
        """Each threshold checked now, so a typo fails at start, not after the run."""
        texts = value.replace("\n", ",").split(",") if isinstance(value, str) else value
        if not isinstance(texts, list | tuple):
            raise ValueError("expected comma-separated thresholds")
        try:
            return tuple(t.text for t in parse_thresholds([str(text) for text in texts]))
        except ThresholdError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("control_allowed_hosts", mode="before")
    @classmethod
    def _host_names(cls, value: Any) -> tuple[str, ...]:
        """``localhost.example, 10.0.0.5, [fd00::1]`` or ``*``: host names, no ports."""
        names = []
        for name in _comma_list(value):
            name = name.lower().removeprefix("[").removesuffix("]")
            if name != "*" and not _HOST_NAME.fullmatch(name):
                raise ValueError(f"{name[:80]!r} is not a host name or IP address (no port)")
            names.append(name)
        return tuple(names)

    @field_validator("control_allowed_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> tuple[str, ...]:
        """``https://admin.example:8443`` or ``*``: a browser's Origin header, exactly."""
        origins = []
        for origin in _comma_list(value):
            origin = origin.lower().removesuffix("/")
            match = _ORIGIN.fullmatch(origin)
            if origin != "*" and not match:
                raise ValueError(f"{origin[:80]!r} is not an origin like https://host[:port]")
            port = match.group(1) if match else None
            if port is not None and (problem := ranges.PORT.problem(int(port))):
                raise ValueError(f"{origin[:80]!r}: the port {problem}")
            origins.append(origin)
        return tuple(origins)

    @field_validator("shard", mode="before")
    @classmethod
    def _k_of_n(cls, value: Any) -> Any:
        """``K/N`` (spaces and leading zeros allowed); empty is no shard, so a file may
        leave it to the environment."""
        if value is None or isinstance(value, Shard):
            return value
        if isinstance(value, str) and not value.strip():
            return None
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not K/N with 1 <= K <= N, nor auto")
        return parse_shard(value)

    @field_validator("control_host")
    @classmethod
    def _a_host(cls, value: str) -> str:
        """An empty host made aiohttp listen on every interface: not what it says."""
        if problem := host_problem(value.strip()):
            raise ValueError(f"{problem} (127.0.0.1: this machine only, 0.0.0.0: every interface)")
        return value.strip()

    @field_validator("seed", "max_attempts", "fault_seed", "shard_count", mode="before")
    @classmethod
    def _empty_number_is_none(cls, value: Any) -> Any:
        """Empty is not set, so a file may leave it to the environment."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("delivery_mode", mode="before")
    @classmethod
    def _mode_lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("retry_schedule", mode="before")
    @classmethod
    def _schedule_delays(cls, value: Any) -> tuple[float, ...]:
        """``1,2,5`` (the INI and the environment) or a sequence of seconds."""
        expected = "expected comma-separated seconds, e.g. 1,2,5,10,30,60"
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",")]
        elif isinstance(value, list | tuple):
            parts = [str(part).strip() for part in value]
        else:
            raise ValueError(expected)
        if not parts or any(not part for part in parts):
            raise ValueError(expected)
        if len(parts) > ranges.MAX_RETRY_STEPS:
            raise ValueError(f"at most {ranges.MAX_RETRY_STEPS} delays")
        delays = []
        bound = ranges.RETRY_DELAY
        for part in parts:
            try:
                delay = float(part)
            except ValueError:
                raise ValueError(bound.refusal(part, "is not a number")) from None
            if bound.problem(delay):  # also refuses nan and inf
                raise ValueError(bound.refusal(part))
            delays.append(delay)
        return tuple(delays)

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
        if problem := path_problem(value):
            raise ValueError(problem)
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
        if problem := path_problem(value):
            raise ValueError(problem)
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
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long
            raise ValueError(
                f"unknown time zone {ranges.shown(value)} (use an IANA name like Europe/Paris)"
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
        if problem := uri_problem(value, redact_uri(value)):
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.delivery_mode == "reliable":
            self._reliable_paths_usable()
            if self.fault_reorder > 0:
                raise PlacedError(
                    ("fault_reorder",),
                    "needs delivery-mode = ocs: the reliable mode delivers each group's "
                    "notifications in order, so it cannot reorder them",
                )
        if self.send_campaigngroup_states and not self.campaigngroup_states_uri:
            raise PlacedError(
                ("campaigngroup_states_uri",),
                "is required when send-campaigngroup-states = true",
            )
        if self.shard is not None and self.shard_count not in (None, self.shard.of):
            raise PlacedError(
                ("shard_count",),
                f"{self.shard_count} does not match shard = {self.shard} (N = "
                f"{self.shard.of}); set shard = auto to take K from the pod, or remove one",
            )
        seen: dict[int, str] = {}
        for name, group in self.campaign_groups.items():
            for list_name in group.calling_lists:
                if list_name not in self.calling_lists:
                    raise PlacedError(
                        ("campaign_groups", name, "calling_lists"),
                        f"names calling list {list_name!r}, which has no [calling-list:{list_name}] section",
                    )
            _claim(seen, group.dbid, f"[campaign-group:{name}]", ("campaign_groups", name, "dbid"))
        for name, calling_list in self.calling_lists.items():
            _claim(
                seen, calling_list.dbid, f"[calling-list:{name}]", ("calling_lists", name, "dbid")
            )
        _refuse_a_shared_uuid(self.campaign_groups)
        return self

    def _reliable_paths_usable(self) -> None:
        """The outbox and the dead letters go in directories that exist, each in its own
        file, and never over a file ocsd reads (the configuration file: load_settings)."""
        for field in ("outbox_path", "dead_letter_path"):
            directory = Path(getattr(self, field)).resolve().parent
            if not directory.is_dir():
                raise PlacedError(
                    (field,), f"directory {str(directory)!r} does not exist (create it)"
                )
            if (
                self.ca_file
                and Path(getattr(self, field)).resolve() == Path(self.ca_file).resolve()
            ):
                raise PlacedError((field,), "must not be the ca-file")
        if Path(self.outbox_path).resolve() == Path(self.dead_letter_path).resolve():
            raise PlacedError(("dead_letter_path",), "must not be the outbox-path file")

    def writes_over(self, path: str) -> str | None:
        """The option whose file (outbox, dead letters) would be written over ``path``."""
        if self.delivery_mode != "reliable":
            return None
        target = Path(path).resolve()
        for field in ("outbox_path", "dead_letter_path"):
            if Path(getattr(self, field)).resolve() == target:
                return field
        return None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The values given, nothing else: :func:`ocsd.config.settings.load_settings`
        merges the INI file and the environment (environment first) and passes them."""
        return (init_settings,)

    # -- views used by the daemon ------------------------------------------------

    @property
    def attempts_allowed(self) -> int:
        """max-attempts, or one first attempt plus one per retry-schedule delay."""
        return self.max_attempts or len(self.retry_schedule) + 1

    @property
    def delivers(self) -> bool:
        return self.send_campaigngroup_states and self.campaigngroup_states_uri is not None

    def in_shard(self, dbid: int) -> bool:
        """Whether this instance runs the group with this DBID: all without a shard."""
        return self.shard is None or dbid in self.shard

    @property
    def shard_origin(self) -> str:
        """Where ``shard = auto`` read the pod's ordinal; "" for a shard given as K/N."""
        return self._shard_origin

    def with_pod_shard(self, shard: Shard, origin: str) -> Settings:
        """These settings with ``shard = auto`` resolved (by load_settings)."""
        resolved = self.model_copy(update={"shard": shard})
        resolved._shard_origin = origin
        return resolved


def bound_of(loc: tuple[str, ...]) -> Bound | None:
    """The range of the option at ``loc`` (a validation error's), if it is a number."""
    model: type[BaseModel] = Settings
    field = loc[0] if loc else ""
    if len(loc) == 3 and loc[0] in ("campaign_groups", "calling_lists"):
        model = CampaignGroupSettings if loc[0] == "campaign_groups" else CallingListSettings
        field = loc[2]
    info = model.model_fields.get(field)
    if info is None:
        return None
    return next((meta for meta in info.metadata if isinstance(meta, Bound)), None)


class PlacedError(ValueError):
    """A cross-field error that knows which field it belongs to."""

    def __init__(self, loc: tuple[str, ...], message: str) -> None:
        self.loc = loc
        super().__init__(message)


def _refuse_a_shared_uuid(groups: dict[str, CampaignGroupSettings]) -> None:
    """Receivers key on GSW_CAMPAIGN_GROUP_UUID, so two groups must not share one: a
    configured uuid may be another's, or the one derived from another's dbid (a section
    copied from check-config's output keeps it). Derived ones are claimed first, so the
    error names a configured one; none is derived when none is configured (uuid5 takes
    ~6 us: 0.12 s of every start at 20,000 groups)."""
    configured = [(name, group.uuid) for name, group in groups.items() if group.uuid]
    if not configured:
        return
    owners = {
        derive_uuid(group.dbid): f"[campaign-group:{name}] (derived from its dbid)"
        for name, group in groups.items()
        if not group.uuid
    }
    for name, value in configured:
        if value in owners:
            raise PlacedError(
                ("campaign_groups", name, "uuid"),
                f"uuid {value} is already the uuid of {owners[value]}",
            )
        owners[value] = f"[campaign-group:{name}]"


def _claim(seen: dict[int, str], dbid: int, owner: str, loc: tuple[str, ...]) -> None:
    if dbid in seen:
        raise PlacedError(loc, f"dbid {dbid} is already used by {seen[dbid]}")
    seen[dbid] = owner
