"""Many Campaign Groups from one section: ``[campaign-group-template:<name>]``.

A load test needs thousands of groups; writing them out is not a configuration anyone
reads. A template section takes every option of a group and of its calling list, plus::

    count = 5000              ; groups to make (1 to 200,000 in all templates)
    first-dbid = 100000       ; the groups' DBIDs: first-dbid, first-dbid + 1, ...
    list-first-dbid = 200000  ; their calling lists' DBIDs (default: first-dbid + count)
    name = Load {n:05d}       ; each group's name (default: "<template> {n}")
    list-name = {name} list   ; each calling list's name (default: "{name} list")

and expands, as the file is read, into ``count`` groups each with its own calling list,
DBID and UUID (derived from the DBID), and so its own seed-derived simulation. In a name,
``{n}`` is the group's number (1 to count, with any format spec), ``{dbid}`` and
``{list_dbid}`` its DBIDs and ``{template}`` the template's name; ``campaign``, ``group``,
``queue`` and ``template`` may use them too. The expanded groups are validated as written
ones; an error names the template's line.
"""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ocsd.config.model import CallingListSettings, CampaignGroupSettings, ConfigError

TEMPLATE_PREFIX = "campaign-group-template:"
#: The options of the template itself (the rest are the group's and its list's).
OWN_OPTIONS = ("count", "first-dbid", "list-first-dbid", "name", "list-name")
#: Group and list options a template cannot take: each expanded group has its own.
NOT_IN_TEMPLATES = frozenset({"dbid", "uuid", "calling-lists"})
#: Group options whose text may use the placeholders.
PATTERNED = ("campaign", "group", "queue", "template")
#: Groups all the templates of a file may make: about what the 64 MiB a file may hold
#: written out (bench/scale.py's sections: ~350 bytes a group), so a one-line count
#: cannot ask for more memory than a file could (100,000 running groups: 2.2 GiB).
MAX_COUNT = 200_000
MAX_DBID = 2**31 - 1
#: The longest value a pattern may give (a name, a campaign...), in characters: a width
#: of 300,000,000 in ``{n:>300000000}`` took gigabytes and a MemoryError traceback, and
#: a long pattern repeated over 200,000 groups would take as much.
MAX_FILLED_LENGTH = 1024

_GROUP_OPTIONS = frozenset(f.replace("_", "-") for f in CampaignGroupSettings.model_fields)
_LIST_OPTIONS = frozenset(f.replace("_", "-") for f in CallingListSettings.model_fields)
_ALLOWED = (_GROUP_OPTIONS | _LIST_OPTIONS | frozenset(OWN_OPTIONS)) - NOT_IN_TEMPLATES

#: Where an option was written: ``place(option) -> "file:line"``.
Place = Callable[[str], str]


@dataclass(frozen=True)
class Expansion:
    """What one template section expands into."""

    template: str  # the section's name
    groups: dict[str, dict[str, str]]  # group name -> its options (field names)
    lists: dict[str, dict[str, str]]  # list name -> its options (field names)
    first_dbid: int
    list_first_dbid: int

    def describe(self) -> str:
        """One line for ``check-config``."""
        names = list(self.groups)
        count = len(names)
        last = self.first_dbid + count - 1
        last_list = self.list_first_dbid + count - 1
        return (
            f"[{TEMPLATE_PREFIX}{self.template}]: {count:,} campaign groups, {names[0]!r} to "
            f"{names[-1]!r} (DBIDs {self.first_dbid} to {last}), each with its own calling "
            f"list (DBIDs {self.list_first_dbid} to {last_list})"
        )


def expand(template: str, options: Mapping[str, str], place: Place) -> Expansion:
    """The groups and lists of one template section; ConfigError naming the line."""
    section = f"[{TEMPLATE_PREFIX}{template}]"
    for option in options:
        if option not in _ALLOWED:
            raise ConfigError(f"{place(option)}: {section} {option}: {_unknown(option)}")
    count = _whole(options, "count", None, 1, MAX_COUNT, place, section)
    first = _whole(options, "first-dbid", None, 1, MAX_DBID - count + 1, place, section)
    list_first = _whole(
        options, "list-first-dbid", first + count, 1, MAX_DBID - count + 1, place, section
    )
    name_pattern = options.get("name", "{template} {n}")
    list_pattern = options.get("list-name", "{name} list")
    group_base = {o.replace("-", "_"): v for o, v in options.items() if o in _GROUP_OPTIONS}
    list_base = {
        o.replace("-", "_"): v
        for o, v in options.items()
        if o in _LIST_OPTIONS and o not in _GROUP_OPTIONS
    }
    patterned = [o.replace("-", "_") for o in PATTERNED if "{" in options.get(o, "")]
    groups: dict[str, dict[str, str]] = {}
    lists: dict[str, dict[str, str]] = {}
    for n in range(1, count + 1):
        fields = {"n": n, "dbid": first + n - 1, "list_dbid": list_first + n - 1}
        name = _format(name_pattern, fields, template, place("name"), section, "name")
        list_name = _format(
            list_pattern, {**fields, "name": name}, template, place("list-name"), section,
            "list-name",
        )  # fmt: skip
        if name in groups:
            raise ConfigError(
                f"{place('name')}: {section} name: {name_pattern!r} gives {name!r} twice; "
                "use {n} in it, e.g. name = Load {n:05d}"
            )
        group = {**group_base, "dbid": str(first + n - 1), "calling_lists": list_name}
        for field in patterned:
            group[field] = _format(
                group_base[field], fields, template, place(field), section, field
            )
        groups[name] = group
        lists[list_name] = {**list_base, "dbid": str(list_first + n - 1)}
    return Expansion(template, groups, lists, first, list_first)


def _unknown(option: str) -> str:
    close = difflib.get_close_matches(option, sorted(_ALLOWED), n=1)
    if option in NOT_IN_TEMPLATES:
        return "each expanded group has its own; a template cannot set it"
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"unknown option{hint} (a template takes {', '.join(OWN_OPTIONS)} and every option of a group and of a calling list)"


def _whole(
    options: Mapping[str, str],
    option: str,
    default: int | None,
    low: int,
    high: int,
    place: Place,
    section: str,
) -> int:
    text = options.get(option)
    if text is None:
        if default is None:
            raise ConfigError(f"{place('')}: {section} {option}: is required")
        return default
    try:
        value = int(text.strip())
    except ValueError:
        raise ConfigError(
            f"{place(option)}: {section} {option}: {text.strip()[:40]!r}: expected a whole number"
        ) from None
    if not low <= value <= high:
        raise ConfigError(
            f"{place(option)}: {section} {option}: {value} is out of range; allowed: a whole "
            f"number from {low} to {high}"
        )
    return value


def _format(
    pattern: str, fields: Mapping[str, object], template: str, where: str, section: str, option: str
) -> str:
    if problem := _width_problem(pattern):
        raise ConfigError(f"{where}: {section} {option}: {pattern[:80]!r}: {problem}")
    try:
        filled = pattern.format(**fields, template=template).strip()
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"{where}: {section} {option}: {pattern!r} cannot be filled in ({exc}); it may "
            "use {n} (with a format, e.g. {n:05d}), {dbid}, {list_dbid}, {template}"
            + (", {name}" if option == "list-name" else "")
        ) from None
    if len(filled) > MAX_FILLED_LENGTH:
        raise ConfigError(
            f"{where}: {section} {option}: {pattern[:80]!r} gives {len(filled):,} characters; "
            f"allowed: at most {MAX_FILLED_LENGTH:,}"
        )
    return filled


_NUMBER = re.compile(r"\d+")


def _width_problem(pattern: str) -> str | None:
    """Why a pattern's format specs would make a value too long to fill in, checked
    before it is filled in (the filling itself is what takes the memory)."""
    try:
        specs = [spec for _, _, spec, _ in string.Formatter().parse(pattern) if spec]
    except ValueError:
        return None  # a malformed pattern: the filling in says why
    for spec in specs:
        if "{" in spec:
            return "a format width must be a number, not another field"
        widest = max((int(number) for number in _NUMBER.findall(spec)), default=0)
        if widest > MAX_FILLED_LENGTH:
            return (
                f"the format {{...:{spec[:40]}}} asks for {widest:,} characters; allowed: at "
                f"most {MAX_FILLED_LENGTH:,}"
            )
    return None
