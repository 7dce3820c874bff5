"""Benchmark of the dialing simulation (ocsd.dialer) and of ``ocsd simulate``.

    python bench/bench_simulation.py [--repeat 3] [--steps 200000]

Prints markdown tables (paste them into bench/RESULTS-simulation.md):

(a) ``ocsd simulate`` of a 100-agent predictive group dialing 100,000 records to
    completion (bench/simulation-100.ini), in-process: wall seconds, simulated hours,
    speed-up over real time; and the simulation core alone (same model and seed).
(b) CPU per simulated second of one running 20-agent predictive group advanced in 1 s
    steps (what the live daemon pays per group), and the cost of one statistics() call.
(c) a 10-agent predictive group's busy factor and overdial rate every 5 simulated
    minutes over one hour (optimize by busy factor 85 % and by overdial rate 3 %).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from ocsd.campaign import Dialing
from ocsd.dialer import GroupModel, GroupSimulation, ListModel
from ocsd.genesys import DialMode, OptimizeBy
from ocsd.settings import load_settings
from ocsd.simulate import configure_parser
from ocsd.simulate import run as simulate_run

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
    model = GroupModel.from_settings(settings, GROUP)
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


def bench_live_group(steps: int) -> tuple[float, float]:
    """CPU microseconds per simulated second (1 s steps), and per statistics() call."""
    model = GroupModel(
        "Live",
        1,
        lists=(ListModel("L", 2, records=10_000_000),),
        agents=20,
        dialing=Dialing(DialMode.PREDICTIVE, OptimizeBy.BUSY_FACTOR, 85),
    )
    sim = GroupSimulation(model, random.Random(1))
    sim.set_dialing(model.dialing, 0.0)
    for second in range(1, 1801):  # past the learning phase
        sim.advance(float(second))
    first = 1801
    start = time.process_time()
    for second in range(first, first + steps):
        sim.advance(float(second))
    per_second = (time.process_time() - start) / steps * 1e6
    now = float(first + steps)
    calls = 20_000
    start = time.process_time()
    for _ in range(calls):
        sim.statistics(now)
    per_stats = (time.process_time() - start) / calls * 1e6
    return per_second, per_stats


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
    per_second, per_stats = bench_live_group(args.steps)
    print("| (b) one running 20-agent predictive group | CPU |")
    print("|---|---:|")
    print(f"| advance by one simulated second ({args.steps:,} steps) | {per_second:.2f} µs |")
    print(f"| one statistics() call | {per_stats:.2f} µs |")
    print()
    print(
        "| (c) 10 agents, minute | busy factor (goal 85 %) | overdial | "
        "busy factor (overdial goal 3 %) | overdial |"
    )
    print("|---:|---:|---:|---:|---:|")
    for minute, bf_a, od_a, bf_b, od_b in small_group_table():
        when = f"{minute}" if minute else "**whole hour**"
        print(f"| {when} | {_f(bf_a)} | {_f(od_a)} | {_f(bf_b)} | {_f(od_b)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
