"""Benchmark of the dialing simulation (ocsd.core.simulation) and of ``ocsd simulate``.

    python bench/bench_simulation.py [--repeat 3] [--steps 200000] [--groups 2000]

Prints markdown tables (paste them into docs/benchmarks/RESULTS-simulation.md):

(a) ``ocsd simulate`` of a 100-agent predictive group dialing 100,000 records to
    completion (bench/simulation-100.ini), in-process: wall seconds, simulated hours,
    speed-up over real time; and the simulation core alone (same model and seed).
(b) CPU per simulated second of one running 20-agent predictive group advanced in 1 s
    steps and in lazy steps of 1-10 s (the daemon advances a group when it reads it), and
    the cost of one statistics() call on a running group at steady state (one calling
    list, and three), and of one latest_statistics() call (what a sender reads).
(c) a 10-agent predictive group's busy factor and overdial rate every 5 simulated
    minutes over one hour (optimize by busy factor 85 % and by overdial rate 3 %).
(d) memory per running group (tracemalloc, its random generator and model included) and
    GC-tracked objects per group: 2,000 10-agent, 1,000-record predictive groups, each
    read every 10 simulated seconds (advance, calls in progress, statistics), after 30
    simulated minutes (steady state: the window full, the first redials due) and 2 hours.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import io
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import timeit
import tracemalloc
from pathlib import Path

from ocsd.cli.simulate import configure_parser
from ocsd.cli.simulate import run as simulate_run
from ocsd.config.definitions import group_model
from ocsd.config.settings import load_settings
from ocsd.core.genesys import DialMode, OptimizeBy
from ocsd.core.lifecycle import Dialing
from ocsd.core.simulation import GroupModel, GroupSimulation, ListModel

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "simulation-100.ini"
GROUP = "Bench@100 Agents"


def bench_command(repeat: int) -> tuple[list[float], list[float], float, int]:
    """Wall seconds of the whole command, of the core alone; simulated seconds; seed."""
    parser = argparse.ArgumentParser(prog="ocsd simulate")
    configure_parser(parser)
    args = ["--config", str(CONFIG), "--group", GROUP, "--to-completion", "-o", os.devnull]
    command: list[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        with contextlib.redirect_stderr(io.StringIO()):
            code = simulate_run(parser.parse_args(args))
        command.append(time.perf_counter() - start)
        if code != 0:
            raise SystemExit(f"ocsd simulate exited {code}")
    settings = load_settings(CONFIG)
    model = group_model(settings, GROUP)
    seed = settings.seed or 1
    core: list[float] = []
    simulated = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        sim = GroupSimulation(model, random.Random(seed), window=settings.stats_window)
        sim.set_dialing(model.dialing, 0.0)
        t = 0.0
        while not sim.exhausted:  # the same steps as the command: a row every 60 s
            t += 60.0
            sim.advance(t)
            sim.statistics(t)
        core.append(time.perf_counter() - start)
        simulated = t
    return command, core, simulated, seed


def bench_process(repeat: int) -> list[float] | None:
    """Wall seconds of ``python -m ocsd simulate`` as a process (None if not wired)."""
    argv = [sys.executable, "-m", "ocsd", "simulate", "--config", str(CONFIG)]
    argv += ["--group", GROUP, "--to-completion", "--output", os.devnull]
    walls: list[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, check=False)
        walls.append(time.perf_counter() - start)
        if done.returncode != 0:
            return None
    return walls


def _running(
    agents: int, lists: int = 1, seed: int = 1, records: int = 10_000_000
) -> GroupSimulation:
    """A predictive group (busy factor 85 %) dialing since 0, past its learning phase."""
    model = GroupModel(
        "Live",
        1,
        lists=tuple(ListModel(f"L{i}", 2 + i, records=records) for i in range(lists)),
        agents=agents,
        dialing=Dialing(DialMode.PREDICTIVE, OptimizeBy.BUSY_FACTOR, 85),
    )
    sim = GroupSimulation(model, random.Random(seed))
    sim.set_dialing(model.dialing, 0.0)
    for second in range(1, 1801):
        sim.advance(float(second))
    return sim


def bench_live_group(steps: int) -> tuple[float, float, float, float, float]:
    """CPU µs per simulated second in 1 s and in 1-10 s steps; µs per statistics() call
    of a group with one calling list and with three, and per latest_statistics() call
    with one (best of five timeit runs)."""
    sim = _running(20)
    t = sim.now
    start = time.process_time()
    for _ in range(steps):
        t += 1.0
        sim.advance(t)
    per_second = (time.process_time() - start) / steps * 1e6
    sim = _running(20)
    t = begin = sim.now
    gaps = random.Random(2)
    start = time.process_time()
    while t < begin + steps:
        t += gaps.uniform(1.0, 10.0)
        sim.advance(t)
    per_second_lazy = (time.process_time() - start) / (t - begin) * 1e6
    calls = 100_000
    per_stats = []
    for lists in (1, 3):
        read = functools.partial(_running(10, lists).statistics, 1800.0)
        best = min(timeit.repeat(read, number=calls, repeat=5))
        per_stats.append(best / calls * 1e6)
    latest = _running(10).latest_statistics
    best = min(timeit.repeat(latest, number=calls, repeat=5))
    return per_second, per_second_lazy, per_stats[0], per_stats[1], best / calls * 1e6


def bench_memory(groups: int, marks: tuple[float, ...]) -> list[tuple[float, float, float]]:
    """(simulated minutes, KiB per running group, GC-tracked objects per group) at marks."""
    gc.collect()
    objects = len(gc.get_objects())
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    sims = []
    for i in range(groups):
        model = GroupModel(
            f"G{i}", 100 + i, lists=(ListModel(f"L{i}", 100_000 + i, records=1000),), agents=10
        )
        sim = GroupSimulation(model, random.Random(i))
        sim.set_dialing(model.dialing, 0.0)
        sims.append(sim)
    rows = []
    t = 0.0
    for mark in marks:
        while t < mark:
            t = min(mark, t + 10.0)
            for sim in sims:
                sim.advance(t)
                _ = sim.calls_in_progress
                sim.statistics(t)
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - base
        tracked = len(gc.get_objects()) - objects
        rows.append((mark / 60, used / groups / 1024, tracked / groups))
    tracemalloc.stop()
    return rows


def small_group_table(
    seed: int = 1,
) -> list[tuple[int, float | None, float | None, float | None, float | None]]:
    rows = []
    sims = []
    for dialing in (
        Dialing(DialMode.PREDICTIVE, OptimizeBy.BUSY_FACTOR, 85),
        Dialing(DialMode.PREDICTIVE, OptimizeBy.OVERDIAL_RATE, 3),
    ):
        model = GroupModel("Small", 1, lists=(ListModel("L", 2, records=100_000),), agents=10)
        sim = GroupSimulation(model, random.Random(seed))
        sim.set_dialing(dialing, 0.0)
        sims.append(sim)
    for minute in range(5, 61, 5):
        t = minute * 60.0
        a, b = (sim.statistics(t) for sim in sims)
        rows.append((minute, a.busy_factor, a.overdial_rate, b.busy_factor, b.overdial_rate))
    ta, tb = (sim.totals() for sim in sims)  # the whole hour
    rows.append((0, ta.busy_factor, ta.overdial_rate, tb.busy_factor, tb.overdial_rate))
    return rows


def _f(value: float | None) -> str:
    return "null" if value is None else f"{value:.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of (a); the median counts")
    parser.add_argument("--steps", type=int, default=200_000, help="1 s steps measured in (b)")
    parser.add_argument("--groups", type=int, default=2000, help="running groups in (d)")
    args = parser.parse_args()

    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    print()
    command, core, simulated, seed = bench_command(args.repeat)
    hours = simulated / 3600
    median = statistics.median(command)
    print("| (a) 100 agents, 100,000 records, predictive busy factor 85 %, to completion | |")
    print("|---|---:|")
    print(f"| `ocsd simulate` in-process wall time (median of {args.repeat}) | {median:.2f} s |")
    print(f"| runs | {', '.join(f'{w:.2f}' for w in command)} s |")
    print(f"| simulation core alone (median) | {statistics.median(core):.2f} s |")
    process = bench_process(args.repeat)
    if process is not None:
        print(
            f"| `python -m ocsd simulate` process, interpreter start included (median) | "
            f"{statistics.median(process):.2f} s |"
        )
    print(f"| simulated time (seed {seed}) | {hours:.1f} h |")
    print(f"| speed-up over real time | {simulated / median:,.0f}x |")
    print()
    per_second, per_second_lazy, per_stats, per_stats_3, per_latest = bench_live_group(args.steps)
    print("| (b) one running predictive group, steady state | CPU |")
    print("|---|---:|")
    print(
        f"| advance, 20 agents, per simulated second in 1 s steps ({args.steps:,} steps) "
        f"| {per_second:.2f} µs |"
    )
    print(
        f"| advance, 20 agents, per simulated second in 1-10 s steps | {per_second_lazy:.2f} µs |"
    )
    print(f"| one statistics() call, 10 agents, one calling list | {per_stats:.2f} µs |")
    print(f"| one statistics() call, 10 agents, three calling lists | {per_stats_3:.2f} µs |")
    print(f"| one latest_statistics() call, 10 agents, one calling list | {per_latest:.2f} µs |")
    print()
    print(
        "| (c) 10 agents, minute | busy factor (goal 85 %) | overdial | "
        "busy factor (overdial goal 3 %) | overdial |"
    )
    print("|---:|---:|---:|---:|---:|")
    for minute, bf_a, od_a, bf_b, od_b in small_group_table():
        when = f"{minute}" if minute else "**whole hour**"
        print(f"| {when} | {_f(bf_a)} | {_f(od_a)} | {_f(bf_b)} | {_f(od_b)} |")
    print()
    print(
        f"| (d) {args.groups:,} running 10-agent groups, simulated time "
        "| memory per group | GC-tracked objects per group |"
    )
    print("|---|---:|---:|")
    for minutes, kib, tracked in bench_memory(args.groups, (1800.0, 7200.0)):
        print(f"| {minutes:.0f} min | {kib:.1f} KiB | {tracked:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
