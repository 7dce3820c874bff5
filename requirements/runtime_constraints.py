"""Print the pins of a pip-compile constraints file that the runtime needs.

    python3 requirements/runtime_constraints.py pyproject.toml requirements/constraints.txt
    pip list --format=freeze | python3 requirements/runtime_constraints.py --installed PINS

The second form checks an environment: every distribution in it but pip must be one of
PINS (a file the first form printed) at its pinned version, so that nothing unpinned
slipped in.

The runtime is the project's dependencies and its build requirements, and everything
they pull in: a pin is kept when its name is one of those, or when one of the packages
that its ``# via`` annotations name is kept. The container build (Dockerfile, stage
``requirements``) installs with these pins only, so its dependency layer is rebuilt when
a runtime pin changes, not when a test or lint tool's pin does. Standard library only.
"""

from __future__ import annotations

import re
import sys
import tomllib

NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==")
VIA = re.compile(r"^#\s+(?:via(?:\s+|$))?(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)?")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def roots(pyproject: str) -> set[str]:
    with open(pyproject, "rb") as file:
        data = tomllib.load(file)
    wanted = data["project"]["dependencies"] + data["build-system"]["requires"]
    names = set()
    for requirement in wanted:
        match = NAME.match(requirement)
        assert match, requirement
        names.add(canonical(match[1]))
    return names


def pins(constraints: str) -> dict[str, tuple[str, set[str]]]:
    """name: (its pin line, the packages its ``# via`` annotations name)."""
    found: dict[str, tuple[str, set[str]]] = {}
    current = None
    with open(constraints, encoding="utf-8") as file:
        for raw in file:
            line = raw.rstrip("\n")
            match = PIN.match(line)
            if match:
                current = canonical(match[1])
                found[current] = (line.split("#")[0].strip(), set())
                continue
            via = VIA.match(line.strip())
            if current is not None and line.startswith(" ") and via:
                if via["name"]:
                    found[current][1].add(canonical(via["name"]))
            elif not line.startswith(" "):
                current = None
    return found


def check_installed(pinned: str) -> int:
    """0 when every distribution listed on stdin (name==version) but pip is pinned so."""
    table = {canonical(name): line for name, (line, _) in pins(pinned).items()}
    wrong = []
    for line in sys.stdin:
        match = PIN.match(line.strip())
        if not match or canonical(match[1]) == "pip":
            continue
        name, version = canonical(match[1]), line.strip().split("==", 1)[1]
        if table.get(name, "").split("==", 1)[-1] != version:
            wrong.append(f"{line.strip()} (pinned: {table.get(name, 'nothing')})")
    for line in wrong:
        print(f"installed but not pinned so: {line}", file=sys.stderr)
    return 1 if wrong else 0


def main(pyproject: str, constraints: str) -> int:
    wanted, table = roots(pyproject), pins(constraints)
    missing = sorted(wanted - table.keys())
    if missing:
        print(f"{constraints} pins none of: {', '.join(missing)}", file=sys.stderr)
        return 1
    keep = set(wanted)
    while True:
        more = {name for name, (_, via) in table.items() if name not in keep and via & keep}
        if not more:
            break
        keep |= more
    for name in sorted(keep):
        print(table[name][0])
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--installed"]:
        sys.exit(check_installed(sys.argv[2]))
    sys.exit(main(*sys.argv[1:]))
