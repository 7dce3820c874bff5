"""Does each fast path pay? Each one against its plain twin, on the same data.

    python bench/fast_paths.py [--groups 18000] [--rounds 5]

The daemon keeps a second, faster way of doing three things on every notification;
the plain way is what the fast one must equal (tests hold them byte for byte equal).
This measures both, in CPU microseconds per notification, over ``--groups`` running
groups read in turn (caches as cold as in the daemon), best of ``--rounds``:

1. the body: ``BodyEncoder.encode`` (identity fields encoded once per group, spliced in)
   against ``encode(build_body(snapshot, tenant))``;
2. the 81001 trace line: ``trace_lines.write`` (rendered once per group and URI, the
   timestamp spliced in) against structlog's own JSON chain;
3. the statistics: ``GroupSimulation.statistics`` with the slot-setting constructors of
   ``ocsd.core.statistics`` against the frozen dataclasses' own ``__init__``.

A fast path stays only where it pays; the figures here are the ones its comment cites.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from ocsd.core import statistics as statistics_module
from ocsd.core.body import BodyEncoder, GroupSnapshot, build_body, encode
from ocsd.core.genesys import PERIODIC_TEXT, Action, Actor, DialMode, GroupStatus, OptimizeBy
from ocsd.core.identity import CallingListIdentity, GroupIdentity, Tenant
from ocsd.core.lifecycle import Dialing
from ocsd.core.simulation import GroupModel, GroupSimulation, ListModel
from ocsd.logs import configure_logging, get_logger, trace_lines

DIALING = Dialing(DialMode.PREDICTIVE, OptimizeBy.BUSY_FACTOR, 85)
URI = "http://127.0.0.1:9/ocs/campaign-group-state"


def running_groups(count: int) -> list[tuple[GroupIdentity, GroupSimulation]]:
    """``count`` running 10-agent groups after five simulated minutes."""
    groups = []
    for n in range(count):
        dbid = 100_000 + n
        lists = (ListModel(f"List {n:06d}", 600_000 + n),)
        model = GroupModel(f"Campaign {n:06d}@Agent Group {n:06d}", dbid, lists, agents=10)
        simulation = GroupSimulation(model, random.Random(n), start=0.0, window=300.0)
        simulation.set_dialing(DIALING, 0.0)
        simulation.advance(300.0)
        identity = GroupIdentity(
            model.name,
            dbid,
            f"00000000-0000-5000-8000-{dbid:012d}",
            f"Campaign {n:06d}",
            f"Agent Group {n:06d}",
            "7001",
            "Outbound Template",
            (CallingListIdentity(lists[0].name, lists[0].dbid),),
        )
        groups.append((identity, simulation))
    return groups


def best_us(
    rounds: int, count: int, plain: Callable[[], None], fast: Callable[[], None]
) -> tuple[float, float]:
    """The best CPU µs per item of each, their rounds interleaved (plain, fast, plain, ...)
    so that a noisy neighbour or a collection weighs on both alike."""
    best = [float("inf"), float("inf")]
    for _ in range(rounds):
        for which, work in enumerate((plain, fast)):
            started = time.process_time()
            work()
            best[which] = min(best[which], time.process_time() - started)
    return best[0] / count * 1e6, best[1] / count * 1e6


@contextlib.contextmanager
def stdout_to_memory() -> Iterator[None]:
    previous, sys.stdout = sys.stdout, io.TextIOWrapper(io.BytesIO(), write_through=True)
    try:
        yield
    finally:
        sys.stdout = previous


def measure(groups: list[tuple[GroupIdentity, GroupSimulation]], rounds: int) -> list[Any]:
    tenant = Tenant("Bench", "1")
    snapshots = [
        GroupSnapshot(
            identity, GroupStatus.RUNNING, DIALING, Action.PERIODIC, Actor.UNKNOWN, 1.8e9,
            simulation.statistics(300.0),
        )
        for identity, simulation in groups
    ]  # fmt: skip
    encoder = BodyEncoder()
    for snapshot in snapshots:
        encoder.encode(snapshot, tenant)  # warm: identities encoded once, as in the daemon
    rows: list[Any] = []
    count = len(groups)

    def fast_bodies() -> None:
        for snapshot in snapshots:
            encoder.encode(snapshot, tenant)

    def plain_bodies() -> None:
        for snapshot in snapshots:
            encode(build_body(snapshot, tenant))

    rows.append(("body", *best_us(rounds, count, plain_bodies, fast_bodies)))

    logger = get_logger("ocsd.delivery")
    names = [identity.name for identity, _ in groups]

    def fast_lines() -> None:
        for name in names:
            trace_lines.write(81001, PERIODIC_TEXT, name, URI)

    def plain_lines() -> None:
        for name in names:
            text = PERIODIC_TEXT.format(name=name, uri=URI)
            logger.info(text, level="trace", msgid=81001, campaign_group=name, uri=URI)

    with stdout_to_memory():
        configure_logging("json")
        slow, fast = best_us(rounds, count, plain_lines, fast_lines)
        trace_lines.flush()
    rows.append(("81001 trace line", slow, fast))

    def statistics() -> None:  # as of the last advance: the statistics alone
        for _identity, simulation in groups:
            simulation.statistics(simulation.now)

    def plain_statistics() -> None:
        with plain_statistics_constructors():
            statistics()

    slow, fast = best_us(rounds, count, plain_statistics, statistics)
    rows.append(("statistics (one calling list)", slow, fast))
    return rows


@contextlib.contextmanager
def plain_statistics_constructors() -> Iterator[None]:
    """The simulation's statistics built by the dataclasses' own ``__init__``."""
    targets = [
        module
        for module in list(sys.modules.values())
        if getattr(module, "__name__", "").startswith("ocsd.core")
        and hasattr(module, "list_statistics")
    ]
    saved = [(m, m.list_statistics, m.group_statistics) for m in targets]  # type: ignore[attr-defined]
    try:
        for module in targets:
            module.list_statistics = statistics_module.ListStatistics  # type: ignore[attr-defined]
            module.group_statistics = statistics_module.GroupStatistics  # type: ignore[attr-defined]
        yield
    finally:
        for module, lists, group in saved:
            module.list_statistics = lists  # type: ignore[attr-defined]
            module.group_statistics = group  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=18_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    groups = running_groups(args.groups)
    print(f"{args.groups:,} running groups, best of {args.rounds} rounds, CPU µs per notification")
    print()
    print("| path | plain | fast | saved |")
    print("|---|---:|---:|---:|")
    for name, slow, fast in measure(groups, args.rounds):
        print(f"| {name} | {slow:.2f} | {fast:.2f} | {slow - fast:.2f} ({1 - fast / slow:.0%}) |")


if __name__ == "__main__":
    main()
