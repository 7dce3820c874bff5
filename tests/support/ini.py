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
