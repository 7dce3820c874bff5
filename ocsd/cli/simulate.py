"""``ocsd simulate``: run one Campaign Group's dialing offline, in virtual time.

The simulation (``ocsd.core.simulation``) runs as fast as the CPU allows; every ``--interval``
simulated seconds one row of the statistics timeline is written (CSV or JSON lines),
and a one-screen summary goes to stderr at the end.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from ocsd.cli.arguments import bounded, file_path, genesys_value
from ocsd.config.definitions import group_model
from ocsd.config.ranges import OPTIMIZE_GOAL, SEED, Bound
from ocsd.config.settings import ConfigError, Settings, launch_settings, load_settings
from ocsd.core.genesys import GVP_MODES, DialMode, OptimizeBy, is_predictive, label, parse_enum
from ocsd.core.lifecycle import Dialing, DialingChange, validate_dialing
from ocsd.core.simulation import GroupModel, GroupSimulation
from ocsd.core.statistics import GroupStatistics

PROG = "ocsd simulate"
DEFAULT_UNTIL = 3600.0
DEFAULT_INTERVAL = 60.0
DEFAULT_SEED = 1
#: --to-completion gives up after this much simulated time (a group that cannot dial).
COMPLETION_LIMIT = 60 * 86400.0
#: --until and --interval: finite and at most COMPLETION_LIMIT, and at most MAX_ROWS rows.
UNTIL = Bound(1, COMPLETION_LIMIT, "simulated seconds")
ROW_INTERVAL = Bound(0.001, COMPLETION_LIMIT, "simulated seconds")
MAX_ROWS = 1_000_000


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``ocsd simulate`` to ``parser``."""
    parser.description = (
        "Simulate one Campaign Group's dialing offline in virtual time and write its "
        "statistics timeline (one row per interval) plus a summary on stderr."
    )
    parser.add_argument(
        "--config",
        "-c",
        type=file_path,
        metavar="FILE",
        help="INI file (default: $OCSD_CONFIG, else the example embedded in the package)",
    )
    parser.add_argument(
        "--group", "-g", help="campaign group name or DBID (default: the first configured)"
    )
    parser.add_argument(
        "--mode",
        "--dialmode",
        dest="mode",
        type=genesys_value(DialMode),
        help="dial mode instead of the configured one, e.g. predictive, progressive, 1 "
        "(default: the group's dial-mode)",
    )
    parser.add_argument(
        "--optimizeby",
        type=genesys_value(OptimizeBy),
        help="optimization method (predictive modes), e.g. busy-factor, 2 "
        "(default: the group's optimize-by)",
    )
    parser.add_argument(
        "--goal",
        "--optimizegoal",
        dest="goal",
        type=bounded(OPTIMIZE_GOAL),
        help="optimization goal: percent (busy factor, overdial rate) or seconds "
        "(default: the group's optimize-goal)",
    )
    _add_output_options(parser)


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    """How long to run, how often to write a row, and where."""
    end = parser.add_mutually_exclusive_group()
    end.add_argument(
        "--until",
        type=float,
        metavar="SECONDS",
        help=f"simulated seconds to run (default: {DEFAULT_UNTIL:g})",
    )
    end.add_argument(
        "--to-completion",
        action="store_true",
        help="run until every record is finished and every call has ended",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=DEFAULT_INTERVAL,
        metavar="SECONDS",
        help=f"simulated seconds between rows (default: {DEFAULT_INTERVAL:g})",
    )
    parser.add_argument(
        "--seed",
        type=bounded(SEED),
        help=f"random seed (default: [ocsd] seed, else {DEFAULT_SEED})",
    )
    parser.add_argument(
        "--format", choices=("csv", "jsonl"), default="csv", help="timeline format (default: csv)"
    )
    parser.add_argument(
        "--output", "-o", type=file_path, metavar="FILE", help="timeline file (default: stdout)"
    )


class _UsageError(Exception):
    """A bad option or configuration: one line on stderr, exit status 2."""


def run(args: argparse.Namespace) -> int:
    """Run ``ocsd simulate``; returns the exit status."""
    try:
        setup = _setup(args)
    except _UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    model, dialing, seed, window, until = setup
    sim = GroupSimulation(model, random.Random(seed), start=0.0, window=window)
    names = [lm.name for lm in model.lists]
    interval = float(args.interval)
    # --to-completion gives up when nothing has happened for this long (e.g. no agents)
    stall_limit = max((lm.redial_delay for lm in model.lists), default=0.0) + 3600.0
    rows = 0
    wall0 = time.perf_counter()
    try:
        with _open_output(args.output) as out:
            write = _writer(args.format, out, names)
            sim.set_dialing(dialing, 0.0)
            t = 0.0
            step = 0
            progress = (sim.records_remaining, 0.0)  # records left, when they last changed
            while t < until:
                step += 1
                t = min(step * interval, until)
                sim.advance(t)
                write(t, sim, sim.statistics(t))
                rows += 1
                if args.to_completion:
                    if sim.exhausted:
                        break
                    if sim.records_remaining != progress[0] or sim.calls_in_progress:
                        progress = (sim.records_remaining, t)
                    elif t - progress[1] > stall_limit:
                        break  # stalled: this group cannot finish its records
    except BrokenPipeError:  # e.g. `ocsd simulate | head`: the reader has had enough
        _silence_stdout()
        return 0
    except OSError as exc:
        print(f"{PROG}: cannot write {args.output or 'the output'}: {exc}", file=sys.stderr)
        return 2
    wall = time.perf_counter() - wall0
    completed = sim.exhausted
    _summary(args, model, dialing, seed, sim, t, wall, rows, completed)
    return 1 if args.to_completion and not completed else 0


# -- setup -------------------------------------------------------------------------------


def _setup(args: argparse.Namespace) -> tuple[GroupModel, Dialing, int, float, float]:
    path = args.config or launch_settings().config
    try:
        settings = load_settings(path)
    except ConfigError as exc:
        raise _UsageError(f"configuration error: {exc}") from None
    if not settings.campaign_groups:
        raise _UsageError(f"{path or 'the embedded configuration'} configures no campaign group")
    name = args.group if args.group is not None else next(iter(settings.campaign_groups))
    try:
        model = group_model(settings, name)
    except ValueError as exc:
        raise _UsageError(str(exc)) from None
    dialing = _dialing(args, model.dialing)
    until = COMPLETION_LIMIT if args.to_completion else args.until
    if until is None:
        until = DEFAULT_UNTIL
    for option, value, bound in (
        ("--interval", args.interval, ROW_INTERVAL),
        ("--until", until, UNTIL),
    ):
        if problem := bound.problem(value):
            raise _UsageError(f"{option}: {problem}")
    if until / args.interval > MAX_ROWS:  # --interval 1e-300 wrote rows until Ctrl-C
        raise _UsageError(
            f"--interval: {args.interval:g} s would write {until / args.interval:,.0f} rows "
            f"up to {until:g} s; at most {MAX_ROWS:,}"
        )
    return model, dialing, _seed(args, settings), settings.stats_window, float(until)


def _dialing(args: argparse.Namespace, configured: Dialing) -> Dialing:
    try:
        change = DialingChange(
            mode=parse_enum(DialMode, args.mode) if args.mode is not None else None,
            optimize_by=(
                parse_enum(OptimizeBy, args.optimizeby) if args.optimizeby is not None else None
            ),
            optimize_goal=args.goal,
        )
        return validate_dialing(change.resolve(configured, configured))
    except ValueError as exc:
        raise _UsageError(str(exc)) from None


def _seed(args: argparse.Namespace, settings: Settings) -> int:
    if args.seed is not None:
        return int(args.seed)
    return settings.seed if settings.seed is not None else DEFAULT_SEED


@contextmanager
def _open_output(path: str | None) -> Iterator[IO[str]]:
    if path is None or path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    with open(path, "w", encoding="utf-8", newline="") as out:
        yield out


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


# -- the timeline ------------------------------------------------------------------------

COLUMNS = (
    "time",
    "busy_factor",
    "hit_ratio",
    "overdial_rate",
    "time_to_complete",
    "calls_in_progress",
    "records_remaining",
    "records_finished",
)


def _num(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _row(t: float, sim: GroupSimulation, stats: GroupStatistics) -> dict[str, Any]:
    return {
        "time": round(t, 3),
        "busy_factor": _num(stats.busy_factor),
        "hit_ratio": _num(stats.hit_ratio),
        "overdial_rate": _num(stats.overdial_rate),
        "time_to_complete": _num(stats.time_to_complete, 1),
        "calls_in_progress": sim.calls_in_progress,
        "records_remaining": sim.records_remaining,
        "records_finished": sim.model.records - sim.records_remaining,
        "calling_lists": [
            {
                "name": cl.name,
                "dbid": cl.dbid,
                "hit_ratio": _num(cl.hit_ratio),
                "time_to_complete": _num(cl.time_to_complete, 1),
            }
            for cl in stats.calling_lists
        ],
    }


def _writer(fmt: str, out: IO[str], names: list[str]) -> Any:
    if fmt == "jsonl":

        def write_jsonl(t: float, sim: GroupSimulation, stats: GroupStatistics) -> None:
            out.write(json.dumps(_row(t, sim, stats), separators=(",", ":")) + "\n")

        return write_jsonl
    table = csv.writer(out, lineterminator="\n")
    header = list(COLUMNS)
    for name in names:
        header += [f"{name}:hit_ratio", f"{name}:time_to_complete"]
    table.writerow(header)

    def write_csv(t: float, sim: GroupSimulation, stats: GroupStatistics) -> None:
        row = _row(t, sim, stats)
        cells = [row[c] for c in COLUMNS]
        for cl in row["calling_lists"]:
            cells += [cl["hit_ratio"], cl["time_to_complete"]]
        table.writerow(["" if cell is None else cell for cell in cells])

    return write_csv


# -- the summary -------------------------------------------------------------------------


def _clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _fmt(value: float | None, digits: int = 3) -> str:
    return "null" if value is None else f"{value:.{digits}f}"


def _describe(dialing: Dialing) -> str:
    text = label(dialing.mode)
    if is_predictive(dialing.mode):
        percent = dialing.optimize_by in (OptimizeBy.BUSY_FACTOR, OptimizeBy.OVERDIAL_RATE)
        text += f", optimize by {label(dialing.optimize_by)} {dialing.optimize_goal}"
        text += "%" if percent else " s"
    return text


def _summary(
    args: argparse.Namespace,
    model: GroupModel,
    dialing: Dialing,
    seed: int,
    sim: GroupSimulation,
    t: float,
    wall: float,
    rows: int,
    completed: bool,
) -> None:
    totals = sim.totals()
    stats = sim.statistics(t)
    servers = f"{model.ports} IVR ports" if dialing.mode in GVP_MODES else f"{model.agents} agents"
    if args.to_completion:
        end = (
            f"to completion: every record finished at {_clock(t)} (within {args.interval:g} s)"
            if completed
            else f"NOT complete after {_clock(t)}: {totals.records_remaining:,} records left "
            "and nothing happening"
        )
    else:
        end = f"until {t:g} s"
    speed = f"{t / wall:,.0f}x real time" if wall > 0 else "n/a"
    lists = "; ".join(
        f"{cl.name}: hit ratio {_fmt(cl.hit_ratio)}, time to complete "
        f"{_fmt(cl.time_to_complete, 0)} s"
        for cl in stats.calling_lists
    )
    lines = [
        f"{PROG}: {model.name} (dbid {model.dbid}): {_describe(dialing)}; {servers}; "
        f"{len(model.lists)} calling list(s), {model.records:,} records; seed {seed}",
        f"  simulated   {_clock(t)} ({t:,.0f} s), {end}",
        f"  records     {totals.records_finished:,} finished, {totals.records_remaining:,} left; "
        f"{totals.dial_attempts:,} dial attempts, {totals.live_answers:,} live answers, "
        f"{totals.abandoned:,} abandoned",
        f"  final       busy factor {_fmt(stats.busy_factor)}, hit ratio {_fmt(stats.hit_ratio)}, "
        f"overdial rate {_fmt(stats.overdial_rate)}, time to complete "
        f"{_fmt(stats.time_to_complete, 0)} s (window {sim.window:g} s)",
        f"  whole run   busy factor {_fmt(totals.busy_factor)}, hit ratio "
        f"{_fmt(totals.hit_ratio)}, overdial rate {_fmt(totals.overdial_rate)}",
        f"  lists       {lists}",
        f"  wall time   {wall:.3f} s, {speed}",
        f"  timeline    {rows} rows every {args.interval:g} s ({args.format}) -> "
        f"{args.output or 'stdout'}",
    ]
    print("\n".join(lines), file=sys.stderr)
