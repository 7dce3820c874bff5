"""ocsd at saturation against the bare aiohttp ceiling, measured in alternating windows.

    python bench/saturation.py [--loads 1.25,2] [--rounds 5] [--window 10] [--pool 32]
                               [--variant NAME=PYTHONPATH ...]

Why paired windows: this machine's speed drifts by a factor of two from one minute to
the next (a fixed Python loop took 0.44 to 0.83 s in five runs in a row), so a ceiling
measured a few minutes before ocsd's run says little about the moment ocsd ran. Here
one receiver (bench/receiver.py, core 0) and one ``ocsd run --start-all`` (core 1, N =
load x ceiling groups at interval 1 s, logging and simulations on as in bench/scale.py)
stay up for the whole run, and each round

1. lets ocsd go on (SIGCONT), waits ``--settle`` seconds, and counts what it delivers
   in one ``--window`` (its ``ocsd_notifications_sent_total``, checked against what
   the receiver recorded), with its CPU; then stops it again (SIGSTOP);
2. runs the bare loop (bench/ceiling.py, core 1) for a short ``--ceiling-window``
   against the same receiver.

The ratio of a round is ocsd's rate over the mean of the ceiling windows just before
and after it; the figure is the median over the rounds. With ``--variant NAME=PATH``
(repeated) several copies of ocsd take their windows in turn in each round: an A/B
comparison at the same moment of the machine. While stopped, ocsd's simulated time
goes on (it is wall time), so after each stop its simulations have the stopped
seconds' events to catch up: the short ceiling window keeps that to about a quarter
more simulation work per sent notification than in a continuous run (with one
variant), a bias against ocsd. Nothing leaves 127.0.0.1; every process is stopped by
its own PID.

The default ``--settle`` is one second more than ocsd's ``CATCH_UP_S`` (every loaded
group's simulation is brought up to date within that many seconds, a share at each
step): the window then starts after the stopped seconds' events were simulated, and
measures what a continuous run does. With a 2 s settle the window held up to 3 s of
that catch-up: at 2 x the ceiling, where half the groups fall due while their last
notification still waits and are caught up only by those steps, the same code read
0.65 with a 2 s settle and 0.72 with 6 s, in two runs half an hour apart (2026-12-04).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import scale  # noqa: E402  (processes, receiver, INI writer, /metrics scrape)

from ocsd.service.feed import CATCH_UP_S  # noqa: E402


def ceiling_window(
    procs: scale.Processes, workdir: Path, url: str, pool: int, window: float, tag: str
) -> dict[str, Any]:
    """One run of the bare aiohttp loop on the sender's core (one second of warm-up)."""
    return scale.ceiling_once(procs, workdir, url, pool, window, tag, ["--warmup", "1"])


def ocsd_window(pid: int, port: int, window: float) -> dict[str, float]:
    """What ocsd sent in one window, and the CPU it used for it."""
    first, cpu_first, start = scale.scrape(port), scale.cpu_seconds(pid), time.monotonic()
    time.sleep(window)
    last, cpu_last, end = scale.scrape(port), scale.cpu_seconds(pid), time.monotonic()
    sent = sum(last.sent.values()) - sum(first.sent.values())
    failed = last.attempts - first.attempts - sent
    cpu = cpu_last - cpu_first
    return {
        "start": start,
        "end": end,
        "sent": sent,
        "failed": failed,
        "rps": sent / (end - start),
        "cpu_us": cpu / sent * 1e6 if sent else float("nan"),
        "pending": last.pending,
    }


def start_ocsd(
    procs: scale.Processes,
    workdir: Path,
    args: argparse.Namespace,
    name: str,
    pythonpath: str | None,
    url: str,
    groups: int,
) -> tuple[subprocess.Popen[bytes], int]:
    """``ocsd run --start-all`` on the sender's core, warmed up: the process, its port."""
    config, port = workdir / f"{name}.ini", scale.free_port()
    scale.write_config(config, groups, 1, url, port, args.pool, 10.0)
    argv = [*args.ocsd_cmd.split(), "run", "--config", str(config), "--start-all"]
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    with (workdir / f"{name}.stdout").open("wb") as out:
        spawned = time.monotonic()
        proc = procs.start(scale.pinned(scale.SENDER_CORE, argv), out, subprocess.STDOUT, env)
    scale._wait_ready(proc, port, spawned, timeout=120.0)
    scale._warm_up(proc, port, groups, 1, hang=False)
    return proc, port


def run_load(
    procs: scale.Processes, workdir: Path, args: argparse.Namespace, load: float, groups: int
) -> dict[str, Any]:
    """Every variant of ocsd at ``groups`` groups, ``args.rounds`` rounds of windows: the
    ceiling, then each variant in turn (the others stopped)."""
    print(f"\n== {load:g} x the ceiling: {groups:,} groups, interval 1 s", flush=True)
    receiver = scale.Receiver(procs, workdir, f"load-{load:g}")
    daemons: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    rounds: list[dict[str, Any]] = []
    rss: dict[str, list[int]] = {}
    try:
        for name, pythonpath in args.variants:
            proc, port = start_ocsd(
                procs, workdir, args, f"{name}-{load:g}", pythonpath, receiver.url, groups
            )
            os.kill(proc.pid, signal.SIGSTOP)
            daemons[name] = (proc, port)
            rss[name] = [scale.memory(proc.pid).get("VmRSS", 0)]
        after = ceiling_window(procs, workdir, receiver.url, args.pool, args.ceiling_window, "0")
        for index in range(args.rounds):
            before = after
            entry: dict[str, Any] = {}
            variant_windows: dict[str, dict[str, float]] = {}
            for name, (proc, port) in daemons.items():
                os.kill(proc.pid, signal.SIGCONT)
                try:
                    time.sleep(args.settle)
                    ours = ocsd_window(proc.pid, port, args.window)
                finally:
                    os.kill(proc.pid, signal.SIGSTOP)
                variant_windows[name] = ours
            after = ceiling_window(
                procs, workdir, receiver.url, args.pool, args.ceiling_window, f"{index + 1}"
            )
            # the ceiling of the moment: the mean of the windows just before and after
            bare = {
                "rps": (before["rps"] + after["rps"]) / 2,
                "cpu_us_per_request": (before["cpu_us_per_request"] + after["cpu_us_per_request"])
                / 2,
            }
            entry["ceiling"] = bare
            line = (
                f"   round {index + 1}: ceiling {bare['rps']:,.0f}/s "
                f"({bare['cpu_us_per_request']:.1f} us)"
            )
            for name, ours in variant_windows.items():
                ours["ratio"] = ours["rps"] / bare["rps"]
                ours["cpu_ratio"] = bare["cpu_us_per_request"] / ours["cpu_us"]
                entry[name] = ours
                line += (
                    f"; {name} {ours['rps']:,.0f}/s ({ours['cpu_us']:.1f} us, "
                    f"{ours['failed']:.0f} failed) -> {ours['ratio']:.3f} (CPU {ours['cpu_ratio']:.3f})"
                )
            rounds.append(entry)
            print(line, flush=True)
        for name, (proc, _port) in daemons.items():
            rss[name].append(scale.memory(proc.pid).get("VmRSS", 0))
    finally:
        for proc, _port in daemons.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGCONT)
            procs.stop(proc)
        times, dbids, _sizes = receiver.stop()
    result: dict[str, Any] = {
        "load": load,
        "groups": groups,
        "rounds": rounds,
        "median_ceiling_rps": statistics.median(r["ceiling"]["rps"] for r in rounds),
        "median_ceiling_cpu_us": statistics.median(
            r["ceiling"]["cpu_us_per_request"] for r in rounds
        ),
        "variants": {},
    }
    for name in daemons:
        windows = [r[name] for r in rounds]
        result["variants"][name] = {
            "median_ratio": statistics.median(w["ratio"] for w in windows),
            "median_cpu_ratio": statistics.median(w["cpu_ratio"] for w in windows),
            "median_rps": statistics.median(w["rps"] for w in windows),
            "median_cpu_us": statistics.median(w["cpu_us"] for w in windows),
            "receiver_saw_vs_sent": _received_in_windows(times, windows),
            "groups_served_last_window": len(set(_dbids_in(times, dbids, windows[-1]))),
            "rss_mib_first_last": (rss[name][0] >> 20, rss[name][-1] >> 20),
        }
    return result


def _received_in_windows(times: list[float], windows: list[dict[str, Any]]) -> float:
    """What the receiver recorded in ocsd's windows over what ocsd counted as sent."""
    seen = sent = 0.0
    for window in windows:
        seen += sum(1 for t in times if window["start"] <= t < window["end"])
        sent += window["sent"]
    return seen / sent if sent else float("nan")


def _dbids_in(times: list[float], dbids: list[int], window: dict[str, float]) -> list[int]:
    return [d for t, d in zip(times, dbids, strict=True) if window["start"] <= t < window["end"]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loads", default="1.25,2", help="offered load, x the ceiling")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of windows per load")
    parser.add_argument("--window", type=float, default=10.0, help="seconds per ocsd window")
    parser.add_argument(
        "--ceiling-window", type=float, default=3.0, help="seconds per ceiling window"
    )
    parser.add_argument(
        "--settle", type=float, default=CATCH_UP_S + 1, help="seconds after SIGCONT"
    )
    parser.add_argument("--pool", type=int, default=32)
    parser.add_argument("--ceiling-rps", type=float, help="size the loads from this rate")
    parser.add_argument("--ocsd-cmd", default=f"{sys.executable} -m ocsd")
    parser.add_argument(
        "--variant",
        action="append",
        metavar="NAME=PYTHONPATH",
        help="compare copies of ocsd in the same rounds (e.g. before=/tmp/old): each "
        "runs with that PYTHONPATH; default: one variant, ocsd as installed",
    )
    parser.add_argument("--json", help="write every figure here")
    args = parser.parse_args(argv)
    args.variants = [
        (name, path or None)
        for name, _, path in (v.partition("=") for v in (args.variant or ["ocsd="]))
    ]
    workdir = Path(tempfile.mkdtemp(prefix="ocsd-saturation-"))
    procs = scale.Processes(workdir)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    results: list[dict[str, Any]] = []
    try:
        rate = args.ceiling_rps
        if rate is None:
            receiver = scale.Receiver(procs, workdir, "sizing")
            try:
                rate = ceiling_window(procs, workdir, receiver.url, args.pool, 5.0, "sizing")["rps"]
            finally:
                receiver.stop()
        print(f"sizing: the ceiling now {rate:,.0f}/s", flush=True)
        for load in (float(x) for x in args.loads.split(",")):
            results.append(run_load(procs, workdir, args, load, int(load * rate)))
    finally:
        procs.stop_all()
    _report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


def _report(results: list[dict[str, Any]]) -> None:
    print(
        "\n| offered | groups | variant | ceiling /s | ocsd /s | ratio (median of rounds) "
        "| rounds | CPU us: ceiling / ocsd | CPU ratio | RSS MiB first -> last |"
    )
    print("|---|---:|---|---:|---:|---:|---|---|---:|---|")
    for r in results:
        for name, v in r["variants"].items():
            ratios = ", ".join(f"{e[name]['ratio']:.2f}" for e in r["rounds"])
            rss = v["rss_mib_first_last"]
            print(
                f"| {r['load']:g} x | {r['groups']:,} | {name} | {r['median_ceiling_rps']:,.0f} | "
                f"{v['median_rps']:,.0f} | **{v['median_ratio']:.3f}** | {ratios} | "
                f"{r['median_ceiling_cpu_us']:.0f} / {v['median_cpu_us']:.0f} | "
                f"{v['median_cpu_ratio']:.3f} | {rss[0]} -> {rss[1]} |"
            )
    for r in results:
        for name, v in r["variants"].items():
            print(
                f"{r['load']:g} x, {name}: the receiver recorded {v['receiver_saw_vs_sent']:.4f} "
                f"of what ocsd counted as sent; {v['groups_served_last_window']:,} of "
                f"{r['groups']:,} groups served in its last window"
            )


if __name__ == "__main__":
    sys.exit(main())
