"""Instructions per periodic body, counted with callgrind: the template encoder against
``encode(build_body(...))``.

    python bench/body_instructions.py [--bodies 20000]

Wall time on this shared 2-core machine drifts twofold from one minute to the next;
an instruction count does not. Each way of making the body runs under ``valgrind
--tool=callgrind`` twice, making no body and ``--bodies`` bodies of one running,
predictive, one-list group; the difference over the count is the instructions per
body. Needs valgrind (Debian: ``apt install valgrind``).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys

CHILD = r"""
import sys
from ocsd.core.body import BodyEncoder, GroupSnapshot, build_body, encode
from ocsd.core.genesys import Action, Actor, DialMode, GroupStatus, OptimizeBy
from ocsd.core.identity import CallingListIdentity, GroupIdentity, Tenant
from ocsd.core.lifecycle import Dialing
from ocsd.core.statistics import GroupStatistics, ListStatistics

identity = GroupIdentity(
    dbid=100001, name="Campaign 100001@Agent Group 100001",
    uuid="266c83fc-a72a-5eb3-a801-e4b26189e160", campaign="Campaign 100001",
    group="Agent Group 100001", template="Bench Outbound Template", queue="Q100001",
    calling_lists=(CallingListIdentity("List_100001", 600001),),
)
statistics = GroupStatistics(0.81234567, 0.30123456, 0.0312345, 12345.678912,
    (ListStatistics("List_100001", 600001, 0.30123456, 12345.678912),))
dialing = Dialing(DialMode.PREDICTIVE, OptimizeBy.BUSY_FACTOR, 80)
snapshot = GroupSnapshot(identity, GroupStatus.RUNNING, dialing, Action.PERIODIC,
    Actor.UNKNOWN, 1796352390.1234, statistics)
tenant = Tenant("Bench Tenant", "101")
encoder = BodyEncoder()
make = {"template": lambda: encoder.encode(snapshot, tenant),
        "dict+orjson": lambda: encode(build_body(snapshot, tenant))}[sys.argv[1]]
make()
for _ in range(int(sys.argv[2])):
    make()
"""


def instructions(way: str, bodies: int) -> int:
    """Instructions callgrind counted for the whole child process."""
    argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    argv += [sys.executable, "-c", CHILD, way, str(bodies)]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    match = re.search(r"Collected : (\d+)", done.stderr)
    if match is None:
        raise RuntimeError(f"no count from callgrind: {done.stderr[-500:]}")
    return int(match.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bodies", type=int, default=20_000)
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind not found (apt install valgrind)", file=sys.stderr)
        return 2
    print("| way | instructions per body |\n|---|---:|")
    for way in ("template", "dict+orjson"):
        per_body = (instructions(way, args.bodies) - instructions(way, 0)) / args.bodies
        print(f"| {way} | {per_body:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
