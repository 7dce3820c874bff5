"""INI configuration files for tests: the sections of a small, complete configuration
(three groups, four calling lists), rendered, written, and replaced atomically."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from support.net import LOCALHOST

#: A group with a template, predictive by default (dbid 101), one without a template,
#: progressive by default (dbid 102), and a GVP group without agents (dbid 103).
GROUP_A = "Renewals@Retention Team"
GROUP_B = "Collections@Collections Desk"
GROUP_C = "Survey@IVR"
#: Sections that make group 101 dial nothing (its calling lists have no record), so no
#: call is ever in progress and every transition, unload included, completes at once.
#: (agents = 0 would say so too, but is refused with a mode that dials for agents.)
IDLE_A: dict[str, dict[str, Any]] = {
    "calling-list:Renewals_Q4": {"records": 0},
    "calling-list:Renewals_Lapsed": {"records": 0},
}
#: A fourth group (dbid 104) with its own calling list, for tests that add one.
GROUP_D = "Winback@Sales"


def make_sections(
    uri: str | None,
    *,
    interval: int = 0,
    timeout: float = 2,
    pool_size: int = 10,
    log_format: str = "json",
    control_port: int = 0,
    **extra_sections: Mapping[str, Any],
) -> dict[str, dict[str, Any]]:
    """The sections of a small, complete ocsd configuration sending to ``uri``."""
    sections: dict[str, dict[str, Any]] = {
        "OCServer": {
            "send-campaigngroup-states": "true" if uri else "false",
            "campaigngroup-states-interval": interval,
            "http-response-timeout": timeout,
            "http-connection-pool-size": pool_size,
        },
        "tenant": {"name": "Test Tenant", "ccid": "4242"},
        "ocsd": {"control-host": LOCALHOST, "control-port": control_port, "log-format": log_format},
        "calling-list:Renewals_Q4": {"dbid": 201, "records": 1000},
        "calling-list:Renewals_Lapsed": {"dbid": 202, "records": 500},
        "calling-list:Collections_30d": {"dbid": 211, "records": 800},
        "calling-list:Survey_Nov": {"dbid": 221, "records": 2000},
        f"campaign-group:{GROUP_A}": {
            "dbid": 101,
            "campaign": "Renewals",
            "group": "Retention Team",
            "template": "Retention Outbound Template",
            "queue": "7001",
            "agents": 25,
            "dial-mode": "predictive",
            "optimize-by": "busy-factor",
            "optimize-goal": 85,
            "calling-lists": "Renewals_Q4, Renewals_Lapsed",
        },
        f"campaign-group:{GROUP_B}": {
            "dbid": 102,
            "campaign": "Collections",
            "group": "Collections Desk",
            "queue": "7002",
            "agents": 10,
            "dial-mode": "progressive",
            "calling-lists": "Collections_30d",
        },
        f"campaign-group:{GROUP_C}": {
            "dbid": 103,
            "uuid": "0d6b3a52-9a7e-4c71-8f0e-2f5d1c7b9e44",
            "campaign": "Customer Survey",
            "group": "Survey Ports",
            "queue": "7003",
            "agents": 0,
            "dial-mode": "predictive-gvp",
            "optimize-by": "overdial-rate",
            "optimize-goal": 3,
            "calling-lists": "Survey_Nov",
        },
    }
    if uri:
        sections["OCServer"]["campaigngroup-states-uri"] = uri
    for name, options in extra_sections.items():
        sections.setdefault(name, {}).update(options)
    return sections


def group_d(dial_mode: str, **options: Any) -> dict[str, dict[str, Any]]:
    """The sections of :data:`GROUP_D` (dbid 104, calling list Winback_Dec, dbid 231)."""
    return {
        "calling-list:Winback_Dec": {"dbid": 231, "records": 800},
        f"campaign-group:{GROUP_D}": {
            "dbid": 104,
            "campaign": "Winback",
            "group": "Sales",
            "queue": "7004",
            "dial-mode": dial_mode,
            "calling-lists": "Winback_Dec",
            **options,
        },
    }


def extra_groups(count: int, first_dbid: int) -> dict[str, dict[str, Any]]:
    """``count`` more small progressive groups, DBIDs from ``first_dbid``, each with its
    own calling list (DBID + 4000): sections to pass to :func:`make_sections`."""
    sections: dict[str, dict[str, Any]] = {}
    for dbid in range(first_dbid, first_dbid + count):
        sections[f"calling-list:List {dbid}"] = {"dbid": dbid + 4000, "records": 100}
        sections[f"campaign-group:Campaign {dbid}@Team {dbid}"] = {
            "dbid": dbid,
            "campaign": f"Campaign {dbid}",
            "group": f"Team {dbid}",
            "queue": f"Q{dbid}",
            "agents": 2,
            "dial-mode": "progressive",
            "calling-lists": f"List {dbid}",
        }
    return sections


def render_ini(sections: Mapping[str, Mapping[str, Any]]) -> str:
    out: list[str] = []
    for section, options in sections.items():
        out.append(f"[{section}]")
        out.extend(f"{option} = {value}" for option, value in options.items())
        out.append("")
    return "\n".join(out)


def write_ini_file(
    directory: Path, sections: Mapping[str, Mapping[str, Any]] | str, name: str = "ocsd.ini"
) -> Path:
    """An INI file ``name`` in ``directory`` from sections (or text); its path."""
    path = directory / name
    text = sections if isinstance(sections, str) else render_ini(sections)
    path.write_text(text, encoding="utf-8")
    return path


def replace_ini(path: Path, sections: Mapping[str, Mapping[str, Any]] | str) -> None:
    """Give ``path`` new content atomically (write a sibling, then rename over it), so a
    daemon that watches the file never reads half of it."""
    text = sections if isinstance(sections, str) else render_ini(sections)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def with_line(text: str, section: str, line: str) -> tuple[str, int]:
    """``text`` with ``line`` in ``[section]``: replacing the option if it is there, else
    right after the header; the line number where it is."""
    lines = text.splitlines()
    start = lines.index(f"[{section}]") + 1
    name = line.split("=")[0].strip()
    index = start
    while index < len(lines) and not lines[index].startswith("["):
        if lines[index].split("=")[0].strip() == name and name != "name":
            lines[index] = line
            return "\n".join(lines) + "\n", index + 1
        index += 1
    lines.insert(start, line)
    return "\n".join(lines) + "\n", start + 1


_GROUP_C, _LIST_C = f"campaign-group:{GROUP_C}", "calling-list:Survey_Nov"
#: (id, section, line, a fragment of the refusal): values that parsed but could not run
#: (issue 13), each refused naming the value and the range by check-config, run and a
#: reload alike. The sections are those of :func:`make_sections`.
RANGE_MISTAKES = [
    ("timeout-inf", "OCServer", "http-response-timeout = inf", "'inf' is out of range; allowed: 0.1 to 3600 seconds"),
    ("timeout-tiny", "OCServer", "http-response-timeout = 1e-300", "'1e-300' is out of range"),
    ("interval-huge", "OCServer", f"campaigngroup-states-interval = {10**24}", f"'{10**24}' is out of range; allowed: a whole number from 0 to 86400 seconds (0 turns them off)"),
    ("interval-float", "OCServer", "campaigngroup-states-interval = 1e24", "'1e24' is not a whole number; allowed: a whole number from 0 to 86400"),
    ("uri-port", "OCServer", "campaigngroup-states-uri = http://127.0.0.1:99999/x", "the port 99999 is out of range; allowed: a whole number from 1 to 65535"),
    ("uri-port-zero", "OCServer", "campaigngroup-states-uri = http://127.0.0.1:0/x", "the port 0 is out of range"),
    ("uri-port-text", "OCServer", "campaigngroup-states-uri = http://127.0.0.1:http/x", "the port 'http' is not a whole number"),
    ("uri-host-label", "OCServer", f"campaigngroup-states-uri = http://{'a' * 70}.example/x", "is not a host name"),
    ("uri-space", "OCServer", "campaigngroup-states-uri = http://a b/x", "holds a space"),
    ("uri-long", "OCServer", f"campaigngroup-states-uri = http://127.0.0.1/{'x' * 5000}", "longer than 4096 characters"),
    ("control-host-empty", "ocsd", "control-host = ", "the host is empty"),
    ("control-host-space", "ocsd", "control-host = my host", "holds a space"),
    ("stats-window-tiny", "ocsd", "stats-window = 1e-30", "'1e-30' is out of range; allowed: 1 to 86400 seconds"),
    ("stats-window-inf", "ocsd", "stats-window = inf", "'inf' is out of range"),
    ("time-scale-tiny", "ocsd", "time-scale = 1e-300", "allowed: 0.001 to 100000"),
    ("seed-huge", "ocsd", f"seed = {2**70}", "allowed: a whole number from 0 to 9223372036854775807"),
    ("seed-text", "ocsd", "seed = x", "'x' is not a whole number"),
    ("shutdown-grace-nan", "ocsd", "shutdown-grace = nan", "'nan' is out of range; allowed: 0 to 600 seconds"),
    ("outbox-name-long", "ocsd", f"outbox-path = /tmp/{'a' * 300}", "holds a name longer than 255 bytes"),
    ("ca-file-long", "ocsd", f"ca-file = /tmp/{'a' * 5000}", "bytes long; allowed: at most 4095"),
    ("time-zone-long", "ocsd", f"schedule-timezone = {'a' * 300}", "unknown time zone"),
    ("list-dbid-huge", _LIST_C, f"dbid = {2**70}", "allowed: a whole number from 1 to 2147483647"),
    ("list-records-huge", _LIST_C, f"records = {10**30}", "allowed: a whole number from 0 to 1000000000"),
    ("list-ring-time-inf", _LIST_C, "ring-time = inf", "'inf' is out of range; allowed: 0.1 to 3600 seconds"),
    ("list-no-answer-inf", _LIST_C, "no-answer-timeout = inf", "'inf' is out of range"),
    ("list-max-attempts-huge", _LIST_C, f"max-attempts = {2**70}", "allowed: a whole number from 1 to 1000"),
    ("list-redial-inf", _LIST_C, "redial-delay = inf", "allowed: 0 to 604800 seconds"),
    ("group-dbid-huge", _GROUP_C, f"dbid = {2**70}", "allowed: a whole number from 1 to 2147483647"),
    ("group-ports-huge", _GROUP_C, "ports = 1000000000", "allowed: a whole number from 1 to 10000"),
    ("group-talk-tiny", _GROUP_C, "talk-time = 1e-300", "allowed: 0.1 to 86400 seconds"),
    ("group-wrap-up-inf", _GROUP_C, "wrap-up-time = inf", "allowed: 0 to 86400 seconds"),
    ("group-lines-tiny", _GROUP_C, "lines-per-agent = 1e-300", "allowed: 0.1 to 20"),
    ("group-goal-huge", _GROUP_C, f"optimize-goal = {10**30}", "allowed: a whole number from 0 to 3600"),
    ("schedule-offset-huge", _GROUP_C, f"schedule = +{'9' * 400}s unload", "is more than a year (+8784h) after start"),
    ("group-agents-huge", f"campaign-group:{GROUP_A}", "agents = 1000000000", "allowed: a whole number from 0 to 10000"),
]  # fmt: skip
