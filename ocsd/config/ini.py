"""The INI layout of the settings and the one-pass INI reader.

Sections and options map to settings fields (:data:`SECTION_OPTIONS`); the reader
follows configparser's rules and remembers each option's line, so an error can name
``file:line: [section] option``.
"""

from __future__ import annotations

import difflib
import functools
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from ocsd.config.model import CallingListSettings, CampaignGroupSettings, ConfigError
from ocsd.config.templates import MAX_COUNT, TEMPLATE_PREFIX, Expansion, expand

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
        "shard-count": "shard_count",
        "control-allowed-hosts": "control_allowed_hosts",
        "control-allowed-origins": "control_allowed_origins",
        "control-idle-timeout": "control_idle_timeout",
        "control-max-connections": "control_max_connections",
        "duration": "duration",
        "thresholds": "thresholds",
    },
    "faults": {
        "drop": "fault_drop",
        "delay": "fault_delay",
        "delay-time": "fault_delay_time",
        "reorder": "fault_reorder",
        "duplicate": "fault_duplicate",
        "clock-skew": "fault_clock_skew",
        "clock-skew-time": "fault_clock_skew_time",
        "unknown-field": "fault_unknown_field",
        "slow-send": "fault_slow_send",
        "slow-send-rate": "fault_slow_send_rate",
        "seed": "fault_seed",
    },
}
FIELD_PLACES: dict[str, tuple[str, str]] = {
    field: (section, option)
    for section, options in SECTION_OPTIONS.items()
    for option, field in options.items()
}


@dataclass(frozen=True)
class IniFile:
    """A parsed INI file: settings values, plus where each option was written."""

    path: str
    values: dict[str, Any]
    lines: dict[tuple[str, str], int]  # (section, option) -> line; option "" = header
    #: an expanded group's or list's section -> the template section it came from
    aliases: dict[str, str] = field(default_factory=dict)
    expansions: list[Expansion] = field(default_factory=list)

    def place(self, section: str, option: str) -> str:
        section = self.aliases.get(section, section)
        line = self.lines.get((section, option)) or self.lines.get((section, ""))
        return f"{self.path}:{line}" if line else self.path


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
#: An inline comment: "#" after whitespace (\s is str.isspace's whitespace). One search
#: in C: a loop over each "#" took 6.5 s for a 50 MB line of "a#a#...".
_INLINE_COMMENT = re.compile(r"\s#").search


#: Largest configuration file ocsd reads, bytes (64 MiB). bench/scale.py's file of
#: 100,000 groups is 34 MB; reading is linear in the size for every shape of file
#: (bench/ini_parse.py). A larger file is refused before it is read whole, so a runaway
#: generator or ``--config /dev/zero`` cannot fill the memory.
MAX_INI_BYTES = 64 * 1024 * 1024


def read_ini_file(path: str) -> str:
    """The text of an INI file, as configparser got it from ``open(path)``: UTF-8, a
    byte-order mark at its start skipped (Windows editors write one), universal newlines.

    ConfigError for a file over :data:`MAX_INI_BYTES` and for one that is not UTF-8
    (naming the line); OSError as ``open`` raises it.
    """
    with open(path, "rb") as file:
        data = file.read(MAX_INI_BYTES + 1)
    if len(data) > MAX_INI_BYTES:
        raise ConfigError(
            f"{path}: configuration file larger than {MAX_INI_BYTES // 2**20} MiB "
            f"({MAX_INI_BYTES:,} bytes), the most ocsd reads"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = exc.object[: exc.start].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        line, byte = before.count(b"\n") + 1, exc.object[exc.start]
        raise ConfigError(
            f"{path}:{line}: not UTF-8 text (byte 0x{byte:02x}); save the file as UTF-8"
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


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
    if "#" in stripped and (comment := _INLINE_COMMENT(line)):
        return line[: comment.start()].strip()
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
    # long: one pass, the reader's state (section, option, indent) in locals that every
    # branch shares, the common "option = value" line first; python bench/bench_settings.py:
    # parse_ini of 20,000 groups (320,018 lines) takes 0.67 s CPU on this 2-core machine,
    # where configparser plus the second pass for line numbers took 2.3 s.
    sections: dict[str, dict[str, str]] = {}
    defaults: dict[str, str] = {}
    headers: dict[str, int] = {}
    lines: dict[tuple[str, str], int] = {}
    current: dict[str, str] | None = None
    section = place = ""
    option: str | None = None  # the option a continuation line continues
    # The lines of the value of ``option`` while it goes on over several lines, joined
    # when another line comes: adding each line to the value (a new string each time)
    # was quadratic (16 MB of continuation lines: 96 s).
    continued: list[str] = []
    continued_in: dict[str, str] = {}  # the section and option whose value that is
    continued_option = ""
    indent_level = 0
    bad_line = 0  # the first line that is not an INI line
    plain_option = _PLAIN_OPTION
    for number, line in enumerate(text.split("\n"), start=1):
        plain = plain_option(line)
        if plain is not None and current is not None:
            if continued:
                continued_in[continued_option] = "\n".join(continued)
                continued = []
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
            if not continued:
                continued_in, continued_option, continued = current, option, [current[option]]
            continued.append(value)
            continue
        if continued:
            continued_in[continued_option] = "\n".join(continued)
            continued = []
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
    if continued:
        continued_in[continued_option] = "\n".join(continued)
    if bad_line:
        raise ConfigError(f"{path}:{bad_line}: not an INI line (expected 'option = value')")
    return IniSections(sections, defaults, headers, lines)


@functools.cache
def _field_names(model: type[BaseModel]) -> frozenset[str]:
    """The model's field names, looked up once: model_fields is a property (~1 us)."""
    return frozenset(model.model_fields)


def _canonical_section(name: str) -> str | None:
    return _CANONICAL.get(name.lower())


def _section_key(section: str) -> str:
    """What the headers of one section have in common: case and spacing aside, so
    [tenant] is [TENANT] and [campaign-group: G1@T] is [campaign-group:g1@t] (a group's
    name is looked up without case by the control API, and stripped)."""
    for prefix in (GROUP_PREFIX, LIST_PREFIX):
        if section.startswith(prefix):
            return prefix + " ".join(section[len(prefix) :].split()).casefold()
    return section.casefold()


def _refuse_a_second_header(read: IniSections, path: str) -> None:
    """ConfigError naming both lines if two headers name one section (configparser takes
    [tenant] and [TENANT] for two, and the later one overrode the earlier in silence)."""
    first_of: dict[str, str] = {}
    for section in read.sections:
        first = first_of.setdefault(_section_key(section), section)
        if first != section:
            raise ConfigError(
                f"{path}:{read.headers[section]}: section [{section}] is section [{first}] of "
                f"{path}:{read.headers[first]} again (section names ignore case and spacing)"
            )


def _field_values(options: dict[str, str], section: str, ini: IniFile) -> dict[str, str]:
    """Options by field name (dash -> underscore); ConfigError naming both lines when two
    spellings of one option are written (ring-time and ring_time)."""
    entry = {option.replace("-", "_"): value for option, value in options.items()}
    if len(entry) < len(options):
        place, first_of = _place_section(section), dict[str, str]()
        for option in options:
            first = first_of.setdefault(option.replace("-", "_"), option)
            if first != option:
                raise ConfigError(
                    f"{ini.place(place, option)}: [{section}] {option}: option appears twice "
                    f"(also written {first} at {ini.place(place, first)})"
                )
    return entry


#: Where each option of every section is written, for an option put in the wrong one.
_SECTION_OF: dict[str, str] = {
    **{
        field.replace("_", "-"): f"[{prefix}<name>]"
        for prefix, model in (
            (LIST_PREFIX, CallingListSettings),
            (GROUP_PREFIX, CampaignGroupSettings),
        )
        for field in model.model_fields
    },
    **{
        option: f"[{section}]" for section, options in SECTION_OPTIONS.items() for option in options
    },
}


def _closest(option: str, known: list[str]) -> str:
    """``; did you mean X?`` for a misspelt option, or where it belongs if it is an
    option of another section ("" if neither)."""
    close = difflib.get_close_matches(option, known, n=1, cutoff=0.75)
    if close:
        return f"; did you mean {close[0]}?"
    if option in _SECTION_OF:
        return f"; {option} is an option of {_SECTION_OF[option]}"
    return ""


def _add_template(ini: IniFile, section: str, options: dict[str, str]) -> None:
    """Expand ``[campaign-group-template:<name>]`` into its groups and their lists."""
    name = section[len(TEMPLATE_PREFIX) :].strip()
    if not name:
        raise ConfigError(
            f"{ini.place(section, '')}: [{section}] needs a name after '{TEMPLATE_PREFIX}'"
        )
    ini.expansions.append(expand(name, options, lambda option: ini.place(section, option)))


def _merge_templates(
    ini: IniFile, groups: dict[str, dict[str, str]], lists: dict[str, dict[str, str]]
) -> None:
    """Add what the templates made to the written groups and lists; a name made twice
    (by two templates, or by a template and a written section) is an error naming both."""
    total = sum(len(expansion.groups) for expansion in ini.expansions)
    if total > MAX_COUNT:
        raise ConfigError(
            f"{ini.path}: the templates make {total:,} campaign groups; at most {MAX_COUNT:,} "
            "in all (what a 64 MiB file could hold written out)"
        )
    for expansion in ini.expansions:
        section = f"{TEMPLATE_PREFIX}{expansion.template}"
        for made, into, prefix in ((expansion.groups, groups, GROUP_PREFIX),
                                   (expansion.lists, lists, LIST_PREFIX)):  # fmt: skip
            for item in made:
                if item in into:
                    other = ini.aliases.get(f"{prefix}{item}", f"{prefix}{item}")
                    raise ConfigError(
                        f"{ini.place(section, '')}: [{section}] makes [{prefix}{item}], "
                        f"which [{other}] has too; change a name pattern or a first DBID"
                    )
                ini.aliases[f"{prefix}{item}"] = section
            into.update(made)


def parse_ini(text: str, path: str) -> IniFile:
    """Parse INI text into settings values; unknown sections and options are errors, and
    so are two headers of one section and two spellings of one option."""
    read = read_ini(text, path)
    ini = IniFile(path, {}, read.lines)
    _refuse_a_second_header(read, path)
    values = ini.values
    groups: dict[str, dict[str, str]] = {}
    lists: dict[str, dict[str, str]] = {}
    defaults = read.defaults
    for section, written in read.sections.items():
        options = {**defaults, **written} if defaults else written
        if section.startswith(TEMPLATE_PREFIX):
            _add_template(ini, section, options)
            continue
        is_group = section.startswith(GROUP_PREFIX)
        if is_group or section.startswith(LIST_PREFIX):
            prefix = GROUP_PREFIX if is_group else LIST_PREFIX
            model: type[BaseModel] = CampaignGroupSettings if is_group else CallingListSettings
            name = section[len(prefix) :].strip()
            if not name:
                raise ConfigError(
                    f"{path}:{read.headers[section]}: [{section}] needs a name after '{prefix}'"
                )
            entry = _field_values(written, section, ini)
            if defaults:  # the section's own options beat those of [DEFAULT]
                entry = {**_field_values(defaults, DEFAULT_SECTION, ini), **entry}
            fields = _field_names(model)
            if not fields.issuperset(entry):
                option = next(o for o in options if o.replace("-", "_") not in fields)
                known = [f.replace("_", "-") for f in model.model_fields]
                raise ConfigError(
                    f"{ini.place(_place_section(section), option)}: [{section}] {option}: "
                    f"unknown option{_closest(option, known)} (known: {', '.join(known)})"
                )
            (groups if is_group else lists)[name] = entry
            continue
        canonical = _canonical_section(section)
        if canonical is None:
            raise ConfigError(
                f"{path}:{read.headers[section]}: [{section}] unknown section (known: OCServer, "
                "tenant, ocsd, faults, campaign-group:<name>, calling-list:<name>, "
                "campaign-group-template:<name>)"
            )
        known_options = SECTION_OPTIONS[canonical]
        for option, value in options.items():
            field = known_options.get(option)
            if field is None:
                raise ConfigError(
                    f"{ini.place(canonical, option)}: [{section}] {option}: unknown option"
                    f"{_closest(option, list(known_options))} (known: {', '.join(known_options)})"
                )
            values[field] = value
    _merge_templates(ini, groups, lists)
    if groups:
        values["campaign_groups"] = groups
    if lists:
        values["calling_lists"] = lists
    return ini
