"""Configuration: an INI file plus ``OCSD_<OPTION>`` environment variables.

:func:`load_settings` reads the INI file (:mod:`ocsd.config.ini`), reads the
environment with pydantic-settings' own environment source, lets the environment beat
the file, and validates once (:mod:`ocsd.config.model`). Every error is turned into one
line naming the file, line, section and option (:class:`ConfigError`), because a user
fixing a config file needs the place, not a pydantic traceback.
"""

from __future__ import annotations

import os
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
from ocsd.config.ranges import NUMBER_PROBLEMS
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
    "environment_settings",
    "launch_settings",
    "load_settings",
    "parse_shard",
]


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read settings from ``path`` (or the embedded example) and the environment.

    The environment beats the file. Raises ConfigError with one line naming the file,
    line, section and option, or the environment variable.
    """
    text, name = _read(path)
    ini = parse_ini(text, name)
    environment = read_environment()
    try:
        settings = Settings(**{**ini.values, **environment})
    except ValidationError as exc:
        raise ConfigError(_explain(exc, ini, environment)) from None
    if path is not None and (field := settings.writes_over(name)):
        # a dead letter appended to the configuration file broke the next reload
        message = "must not be the configuration file"
        raise ConfigError(_describe((field,), message, ini, environment))
    return settings


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


def environment_settings() -> Settings:
    """The settings of the environment alone, or the defaults if it holds a mistake:
    what ``ocsd ctl`` falls back on when the configuration file cannot be read."""
    try:
        return Settings(**read_environment())
    except (ConfigError, ValidationError):
        return Settings()


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


def _explain(exc: ValidationError, ini: IniFile, environment: dict[str, Any]) -> str:
    """One line for the first validation error, naming the place the value came from."""
    error = exc.errors()[0]
    loc = tuple(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    problem = NUMBER_PROBLEMS.get(error["type"])
    if problem is not None and (bound := bound_of(loc)) is not None:
        message = bound.refusal(error["input"], problem)  # names the value and the range
    ctx_error = error.get("ctx", {}).get("error")
    if isinstance(ctx_error, PlacedError):
        loc = (*loc, *ctx_error.loc)  # the validator's model, then the field it names
    # one line, whatever the message quotes (a value continued over several lines)
    message = message.replace("\r", "\\r").replace("\n", "\\n")
    return _describe(loc, message, ini, environment)


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
    if isinstance(value, Shard):
        return str(value)
    if isinstance(value, tuple | list):
        return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return str(value)
