"""Configuration: an INI file plus ``OCSD_<OPTION>`` environment variables.

:func:`load_settings` reads the INI file (:mod:`ocsd.config.ini`), reads the
environment with pydantic-settings' own environment source, lets the environment beat
the file, and validates once (:mod:`ocsd.config.model`). Every error is turned into one
line naming the file, line, section and option (:class:`ConfigError`), because a user
fixing a config file needs the place, not a pydantic traceback.
"""

from __future__ import annotations

import difflib
import os
import re
import socket
from collections.abc import Mapping
from importlib import resources
from typing import Any

from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from ocsd.config.ini import (
    FIELD_PLACES,
    GROUP_PREFIX,
    LIST_PREFIX,
    SECTION_OPTIONS,
    IniFile,
    parse_ini,
    read_ini_file,
)
from ocsd.config.model import (
    ENV_PREFIX,
    SECRET_FIELDS,
    CallingListSettings,
    CampaignGroupSettings,
    ConfigError,
    PlacedError,
    Settings,
    Shard,
    bound_of,
    derive_uuid,
    parse_shard,
)
from ocsd.config.pod import POD_INDEX_VARIABLE, is_auto, pod_shard
from ocsd.config.ranges import NUMBER_PROBLEMS, shown
from ocsd.core.genesys import DialMode, OptimizeBy
from ocsd.logs.redact import redact_uri

__all__ = [
    "CallingListSettings",
    "CampaignGroupSettings",
    "ConfigError",
    "Settings",
    "Shard",
    "default_config_text",
    "derive_uuid",
    "describe_settings",
    "launch_settings",
    "load_settings",
    "parse_shard",
    "shard_summary",
    "silence_warnings",
]


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read settings from ``path`` (or the embedded example) and the environment.

    The environment beats the file. Raises ConfigError with one line naming the file,
    line, section and option, or the environment variable.
    """
    text, name = _read(path)
    ini = parse_ini(text, name)
    environment = read_environment()
    values = {**ini.values, **environment}
    auto = is_auto(values.get("shard"))
    if auto:
        values["shard"] = None  # resolved below, once shard-count is validated
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, ini, environment)) from None
    if path is not None and (field := settings.writes_over(name)):
        # a dead letter appended to the configuration file broke the next reload
        message = "must not be the configuration file"
        raise ConfigError(_describe((field,), message, ini, environment))
    try:
        return resolve_shard(settings, auto, os.environ, socket.gethostname())
    except PlacedError as exc:
        raise ConfigError(_describe(exc.loc, str(exc), ini, environment)) from None


def resolve_shard(
    settings: Settings, auto: bool, environ: Mapping[str, str], hostname: str
) -> Settings:
    """``settings`` with ``shard = auto`` made this pod's shard of ``shard-count``
    (:func:`ocsd.config.pod.pod_shard`); PlacedError when it cannot be, or when
    shard-count is set with no shard at all (every instance would run every group)."""
    count = settings.shard_count
    if not auto:
        if count is not None and settings.shard is None:
            raise PlacedError(
                ("shard_count",),
                f"{count} is set but shard is not, so every instance would run every group; "
                "set shard = auto (or OCSD_SHARD=auto)",
            )
        return settings
    if count is None:
        raise PlacedError(
            ("shard",),
            "auto needs shard-count (or OCSD_SHARD_COUNT): the number of instances, the "
            "StatefulSet's replicas",
        )
    try:
        shard, origin = pod_shard(count, environ, hostname)
    except ValueError as exc:
        raise PlacedError(("shard",), str(exc)) from None
    return settings.with_pod_shard(shard, origin)


def shard_summary(settings: Settings) -> str | None:
    """``shard 2/3 (from pod index 1 in OCSD_POD_INDEX): 334 of 1000 groups``, said by
    ``check-config`` and at start-up; None when this instance runs every group."""
    shard = settings.shard
    if shard is None:
        return None
    groups = settings.campaign_groups.values()
    mine = sum(1 for group in groups if settings.in_shard(group.dbid))
    origin = f" (from {settings.shard_origin})" if settings.shard_origin else ""
    return f"shard {shard}{origin}: {mine} of {len(groups)} groups"


def silence_warnings(settings: Settings) -> list[str]:
    """Why ``settings`` would run and send nothing, one line each with what turns it on:
    said by ``ocsd run`` and ``ocsd check-config`` (a configuration without [OCServer]
    ran with no word but a ``sending=false`` field)."""
    warnings = []
    if not settings.send_campaigngroup_states:
        warnings.append(
            "nothing will be sent: [OCServer] send-campaigngroup-states is false (its default "
            "when the file has no [OCServer] section); set send-campaigngroup-states = true "
            "and campaigngroup-states-uri in [OCServer], or OCSD_SEND_CAMPAIGNGROUP_STATES=true "
            "and OCSD_CAMPAIGNGROUP_STATES_URI"
        )
    if not settings.campaign_groups:
        warnings.append(
            "nothing will be sent: no campaign group is configured; add a "
            "[campaign-group:<name>] section (ocsd check-config prints the example's)"
        )
    elif settings.shard is not None and not any(
        settings.in_shard(group.dbid) for group in settings.campaign_groups.values()
    ):
        warnings.append(
            f"nothing will be sent: no configured group is in [ocsd] shard {settings.shard} "
            f"(the groups whose dbid mod {settings.shard.of} = {settings.shard.number - 1})"
        )
    return warnings


def template_expansions(path: str | os.PathLike[str] | None) -> list[str]:
    """One line per ``[campaign-group-template:...]`` of the file: what it made (for
    ``check-config``; the file is read again, after ``load_settings`` accepted it)."""
    text, name = _read(path)
    return [expansion.describe() for expansion in parse_ini(text, name).expansions]


class LaunchSettings(BaseSettings):
    """What the ``ocsd`` command reads before any configuration: ``OCSD_CONFIG``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    config: str | None = None  # the INI file (else the example embedded in the package)


def launch_settings() -> LaunchSettings:
    return LaunchSettings()


#: Settings fields that are sections of the file, not options: never from a variable.
_FILE_ONLY = ("campaign_groups", "calling_lists")


def read_environment() -> dict[str, Any]:
    """The ``OCSD_<OPTION>`` variables set, as settings values (pydantic-settings' own
    environment source: prefix, case and decoding as it does them).

    ConfigError for two variables that differ only by case (the source keeps one of them,
    in silence) and for groups or lists given as JSON (they replaced the file's)."""
    seen: dict[str, str] = {}
    for name in os.environ:
        if name.upper().startswith(ENV_PREFIX):
            first = seen.setdefault(name.upper(), name)
            if first != name:
                raise ConfigError(
                    f"environment: {first} and {name} are both set (variable names ignore "
                    "case); keep one"
                )
            if problem := unknown_variable(name):
                raise ConfigError(problem)
            if problem := _unreadable(name, os.environ[name]):
                raise ConfigError(problem)
    try:
        values = EnvSettingsSource(Settings)()
    except SettingsError as exc:
        raise ConfigError(f"environment: {exc}") from None
    for field in _FILE_ONLY:
        if field in values:
            raise ConfigError(
                f"environment {ENV_PREFIX}{field.upper()}: campaign groups and calling lists "
                "are configured in the file only ([campaign-group:<name>] and "
                "[calling-list:<name>] sections)"
            )
    return values


def _unreadable(name: str, value: str) -> str | None:
    """The refusal of a variable whose bytes are not UTF-8 (Python keeps such bytes as
    lone surrogates, which pass every check and then fail wherever the value is written
    out: a log line, a body), or that holds a control character. The value itself is not
    shown: it may be a secret."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        byte = ord(value[exc.start]) - 0xDC00  # surrogateescape: byte 0xNN is U+DCNN
        shown = f"byte 0x{byte:02x}" if 0x80 <= byte <= 0xFF else "a character"
        return (
            f"environment {name}: the value is not valid UTF-8 ({shown} at position "
            f"{exc.start + 1}); give it in UTF-8"
        )
    if control := _CONTROL.search(value):
        return (
            f"environment {name}: the value holds a control character "
            f"(U+{ord(control.group()):04X} at position {control.start() + 1}); remove it"
        )
    return None


#: Characters no option value holds (tab and newline aside, as a file's value may):
#: they went on into log lines and bodies as they were.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


#: ``OCSD_*`` variables that are not options: the configuration file of the ``ocsd``
#: command, the pod's ordinal (each pod its own: no file could hold it), and those of
#: the container build, docker compose, CI and the test suite.
NOT_OPTIONS = frozenset(
    {
        "OCSD_CONFIG",
        POD_INDEX_VARIABLE,  # shard = auto: the pod's ordinal (ocsd.config.pod)
        "OCSD_IMAGE",
        "OCSD_BASE_IMAGE",
        "OCSD_DEBIAN_MIRROR",
        "OCSD_UID",
        "OCSD_GID",
    }
)
#: Prefixes and suffixes of more such variables (OCSD_CI_VENV, OCSD_TEST_OUTAGE_S,
#: OCSD_SMOKE_IMAGE, OCSD_CONTROL_PUBLISH_PORT: compose's host ports).
NOT_OPTION_PREFIXES = ("OCSD_CI_", "OCSD_TEST_", "OCSD_SMOKE_")
NOT_OPTION_SUFFIXES = ("_PUBLISH_PORT",)


def option_variables() -> dict[str, str]:
    """Every ``OCSD_<OPTION>`` variable an option is read from -> ``[section] option``."""
    return {
        f"{ENV_PREFIX}{field.upper()}": f"[{section}] {option}"
        for field, (section, option) in FIELD_PLACES.items()
    }


def unknown_variable(name: str) -> str | None:
    """The refusal of an ``OCSD_*`` variable that sets no option (a typo such as
    OCSD_CAMPAIGNGROUP_STATE_URI, which left the option unset in silence), naming the
    closest known one; None for an option's variable or one of :data:`NOT_OPTIONS`."""
    upper = name.upper()
    known = option_variables()
    if upper in known or upper in NOT_OPTIONS or upper[len(ENV_PREFIX) :].lower() in _FILE_ONLY:
        return None
    if upper.startswith(NOT_OPTION_PREFIXES) or upper.endswith(NOT_OPTION_SUFFIXES):
        return None
    # a variable named after the option alone (OCSD_NAME, OCSD_URI...) is matched too
    spellings = {variable: variable for variable in (*known, "OCSD_CONFIG", POD_INDEX_VARIABLE)}
    for field, (_section, option) in FIELD_PLACES.items():
        spellings.setdefault(
            ENV_PREFIX + option.upper().replace("-", "_"), ENV_PREFIX + field.upper()
        )
    close = difflib.get_close_matches(upper, list(spellings), n=1, cutoff=0.6)
    if close:
        meant = spellings[close[0]]
        hint = f"did you mean {meant}" + (f" ({known[meant]})" if meant in known else "") + "?"
    else:
        hint = "OCSD_<OPTION> names an option of [OCServer], [tenant] or [ocsd]."
    return f"environment {name}: no option has this name; {hint} Correct or unset it"


def _read(path: str | os.PathLike[str] | None) -> tuple[str, str]:
    if path is None:
        return default_config_text(), "<embedded ocsd.ini>"
    name = str(path)
    try:
        return read_ini_file(name), name
    except FileNotFoundError:
        raise ConfigError(f"{name}: configuration file not found") from None
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read configuration file: {exc}") from None


def default_config_text() -> str:
    """The example configuration embedded in the package (used when no file is given)."""
    return resources.files("ocsd.config").joinpath("example.ini").read_text(encoding="utf-8")


#: An inline comment after ";" (``agents = 20 ; twenty agents``): not one in ocsd's INI
#: [ocsd decision], as in configparser's default: ";" separates schedule entries and may
#: be part of a name, so only "#" after a space starts a comment after a value.
_SEMICOLON_COMMENT = re.compile(r"\s;")
SEMICOLON_HINT = (
    " (';' starts a comment only at the start of a line, so the text after it is part of "
    "the value; put the comment on a line of its own, or after ' #')"
)


def _explain(exc: ValidationError, ini: IniFile, environment: dict[str, Any]) -> str:
    """One line for the first validation error, naming the place the value came from,
    the value and the form accepted."""
    error = exc.errors()[0]
    loc = tuple(str(part) for part in error["loc"])
    message = _message(error, loc)
    ctx_error = error.get("ctx", {}).get("error")
    if isinstance(ctx_error, PlacedError):
        loc = (*loc, *ctx_error.loc)  # the validator's model, then the field it names
    value = error.get("input")
    from_file = not loc or loc[0] not in environment
    schedule = bool(loc) and loc[-1] == "schedule"  # where ";" separates the entries
    if from_file and not schedule and isinstance(value, str) and _SEMICOLON_COMMENT.search(value):
        message += SEMICOLON_HINT  # the cause, more often than not
    # one line, whatever the message quotes (a value continued over several lines)
    message = message.replace("\r", "\\r").replace("\n", "\\n")
    return _describe(loc, message, ini, environment)


def _message(error: Any, loc: tuple[str, ...]) -> str:
    """pydantic's message of ``error``, or ours where it does not say the value or the
    form accepted (a boolean, a choice, a missing or empty option)."""
    kind, value = error["type"], error.get("input")
    problem = NUMBER_PROBLEMS.get(kind)
    if problem is not None and (bound := bound_of(loc)) is not None:
        return bound.refusal(value, problem)  # names the value and the range
    if kind in ("bool_parsing", "bool_type"):
        return f"{shown(value)} is not a yes/no value; allowed: true or false (also yes/no, on/off, 1/0)"
    if kind == "literal_error":
        choices = error.get("ctx", {}).get("expected", "").replace("'", "")
        return f"{shown(value)} is not one of the choices; allowed: {choices}"
    if kind == "missing":
        option = loc[-1].replace("_", "-") if loc else "it"
        return f"is required and not set; add a line '{option} = ...' to the section"
    if kind == "string_too_short":
        return "is empty; give it a value"
    return str(error["msg"]).removeprefix("Value error, ")


def _describe(loc: tuple[str, ...], message: str, ini: IniFile, environment: dict[str, Any]) -> str:
    if len(loc) >= 2 and loc[0] in ("campaign_groups", "calling_lists"):
        prefix = GROUP_PREFIX if loc[0] == "campaign_groups" else LIST_PREFIX
        section = f"{prefix}{loc[1]}"
        option = loc[2].replace("_", "-") if len(loc) > 2 else ""
        where = ini.place(section, option)
        label = f"[{section}]"
        if section in ini.aliases:  # made by a template: the template's line and name
            label = f"[{ini.aliases[section]}] (its group or list [{section}])"
        return f"{where}: {label} {option or '(section)'}: {message}".replace(" : ", ": ")
    field = loc[0] if loc else ""
    if field in FIELD_PLACES:
        section, option = FIELD_PLACES[field]
        if field in environment:
            variable = ENV_PREFIX + field.upper()
            return f"environment {variable} ([{section}] {option}): {message}"
        return f"{ini.place(section, option)}: [{section}] {option}: {message}"
    return f"{ini.path}: {'.'.join(loc) or 'configuration'}: {message}"


def describe_settings(settings: Settings) -> str:
    """The effective settings as INI text that reads back to the same settings (what
    ``check-config`` prints; fed back, it prints the same text).

    Secrets, and a URI with a password, are never printed: their line is a comment
    saying so, and reading the text back needs them again (from the same ``OCSD_*``
    variable, or written in). So are values an INI line cannot hold (a " #" in them).
    """
    out: list[str] = []
    for section, options in SECTION_OPTIONS.items():
        out.append(f"[{section}]")
        for option, field in options.items():
            out.append(_option_line(option, field, getattr(settings, field)))
        out.append("")
    for name, cl in settings.calling_lists.items():
        out.append(f"[{LIST_PREFIX}{name}]")
        out.extend(_ini_line(k.replace("_", "-"), v) for k, v in cl.model_dump().items())
        out.append("")
    for name in settings.campaign_groups:
        group = settings.campaign_groups[name]
        out.append(f"[{GROUP_PREFIX}{name}]")
        for key, value in group.model_dump().items():
            option = key.replace("_", "-")
            if key == "uuid" and value is None:
                out.append(f"; uuid is not set: derived from the dbid, {derive_uuid(group.dbid)}")
            elif value is None or value == "":
                out.append(f"; {option} is not set")
            else:
                out.append(_ini_line(option, value))
        out.append("")
    return "\n".join(out)


def _option_line(option: str, field: str, value: Any) -> str:
    """The line of one option of [OCServer], [tenant] or [ocsd]."""
    variable = ENV_PREFIX + field.upper()
    if field in SECRET_FIELDS and value is not None:
        return f"; {option} is set (not shown: give it again in {variable} or here)"
    if field == "campaigngroup_states_uri" and value and (shown_uri := redact_uri(value)) != value:
        return (
            f"; {option} = {shown_uri} (its password not shown: give the URI again in "
            f"{variable} or here)"
        )
    return _ini_line(option, value, variable)


def _ini_line(option: str, value: Any, variable: str = "") -> str:
    """``option = value`` as the INI reader reads it back: a value over several lines
    continues on indented lines; one holding " #" (an inline comment) cannot be written."""
    text = _ini_value(value)
    if _INLINE_COMMENT_IN_VALUE.search(text) or text.strip() != text:
        where = f" in {variable}" if variable else ""
        return f"; {option} cannot be written in INI (it holds ' #' or spaces at an end): set it{where}"
    return f"{option} = " + text.replace("\n", "\n    ") if text else f"{option} ="


#: What the INI reader takes for an inline comment: "#" after whitespace.
_INLINE_COMMENT_IN_VALUE = re.compile(r"\s#")


def _ini_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, SecretStr):
        return "***"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, DialMode | OptimizeBy):
        return f"{value.name.lower().replace('_', '-')}"
    if isinstance(value, Shard):
        return str(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, tuple | list):
        return ", ".join(_float_text(v) if isinstance(v, float) else str(v) for v in value)
    return str(value)


def _float_text(value: float) -> str:
    """A float that reads back to itself: ``10`` for 10.0, ``0.015``; never 1.23457e+07."""
    return str(int(value)) if value.is_integer() else repr(value)
