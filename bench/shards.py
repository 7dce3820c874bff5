"""Beyond one core: ocsd as one shard per core, against as many bare aiohttp loops.

    python bench/shards.py [--shards 2] [--load 1.25] [--window 15] [--rounds 3]

One Python process sends on one core. A user who needs more runs several instances
over the same configuration, each with ``shard = K/N`` (here ``OCSD_SHARD``), one per
core. This measures that on this machine: one receiver (bench/receiver.py, not pinned:
it takes its share of every core) and, in turn,

1. ``--shards`` bare aiohttp loops (bench/ceiling.py), loop *k* pinned to core *k*: the
   machine's ceiling for that many senders, requests/s in all;
2. ``--shards`` ``ocsd run --start-all`` processes, shard *k* pinned to core *k*, over
   one configuration of ``--load`` x that ceiling's worth of groups at interval 1 s
   (logging and simulations on, as bench/scale.py): what they delivered in all over
   ``--window`` seconds (their ``ocsd_notifications_sent_total``).

and the same with a single loop and a single ocsd (on core 1, everything else as
above), for the gain of the shards. Rounds alternate the two (this machine's speed
drifts within minutes); figures are medians. Nothing leaves 127.0.0.1; every process
is stopped by its own PID.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import scale  # noqa: E402


def bare_loops(
    procs: scale.Processes, workdir: Path, url: str, cores: list[str], seconds: float
) -> float:
    """Requests/s in all of one bare loop per core, run at the same time."""
    results: list[float] = []

    def one(core: str) -> None:
        result = scale.ceiling_once(
            procs, workdir, url, 32, seconds, f"core{core}", ["--warmup", "1"], core=core
        )
        results.append(float(result["rps"]))

    threads = [threading.Thread(target=one, args=(core,)) for core in cores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if len(results) != len(cores):
        raise RuntimeError("a bare loop failed")
    return sum(results)


def ocsd_shards(
    procs: scale.Processes, workdir: Path, url: str, cores: list[str], groups: int, window: float
) -> dict[str, Any]:
    """``len(cores)`` shards of one configuration of ``groups`` groups, shard k on core
    k: notifications/s in all over ``window`` seconds, and each shard's CPU per one."""
    config = workdir / f"shards-{len(cores)}-{groups}.ini"
    scale.write_config(config, groups, 1, url, scale.free_port(), 32, 10.0)
    started: list[tuple[subprocess.Popen[bytes], int]] = []
    try:
        for index, core in enumerate(cores):
            port = scale.free_port()
            env = dict(os.environ, OCSD_CONTROL_PORT=str(port))
            if len(cores) > 1:
                env["OCSD_SHARD"] = f"{index + 1}/{len(cores)}"
            argv = [sys.executable, "-m", "ocsd", "run", "--config", str(config), "--start-all"]
            out = (workdir / f"shard-{len(cores)}-{index}.stdout").open("wb")
            proc = procs.start(scale.pinned(core, argv), out, subprocess.STDOUT, env)
            out.close()
            scale._wait_ready(proc, port, time.monotonic(), timeout=120.0)
            started.append((proc, port))
        for proc, port in started:
            scale._warm_up(proc, port, groups // len(cores), 1, hang=False)
        first = [(scale.scrape(port), scale.cpu_seconds(proc.pid)) for proc, port in started]
        time.sleep(window)
        last = [(scale.scrape(port), scale.cpu_seconds(proc.pid)) for proc, port in started]
    finally:
        for proc, _ in started:
            procs.stop(proc)
    sent = [
        sum(b.sent.values()) - sum(a.sent.values())
        for (a, _), (b, _) in zip(first, last, strict=True)
    ]
    cpu = [cb - ca for (_, ca), (_, cb) in zip(first, last, strict=True)]
    return {
        "rps": sum(sent) / window,
        "per_shard_rps": [s / window for s in sent],
        "cpu_us": [round(c / max(1, s) * 1e6, 1) for c, s in zip(cpu, sent, strict=True)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", type=int, default=2, help="instances, one per core")
    parser.add_argument("--load", type=float, default=1.25, help="offered, x the ceiling")
    parser.add_argument("--window", type=float, default=15.0, help="seconds measured")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    cores = [str(core) for core in sorted(os.sched_getaffinity(0))][: args.shards]
    if len(cores) < args.shards:
        parser.error(f"--shards {args.shards}: this machine has {len(cores)} cores")
    workdir = Path(tempfile.mkdtemp(prefix="ocsd-shards-"))
    procs = scale.Processes(workdir)
    rows: dict[str, list[dict[str, Any]]] = {"1": [], str(args.shards): []}
    try:
        receiver = scale.Receiver(procs, workdir, "shards")
        receiver_proc = receiver.proc
        # not pinned: the receiver takes its share of every core, as the senders do
        subprocess.run(["taskset", "-pc", ",".join(cores), str(receiver_proc.pid)],
                       capture_output=True, check=False)  # fmt: skip
        for index in range(args.rounds):
            for senders in ([scale.SENDER_CORE], cores):
                ceiling = bare_loops(procs, workdir, receiver.url, senders, 10.0)
                groups = int(args.load * ceiling)
                ours = ocsd_shards(procs, workdir, receiver.url, senders, groups, args.window)
                ours |= {"ceiling": ceiling, "groups": groups, "ratio": ours["rps"] / ceiling}
                rows[str(len(senders))].append(ours)
                print(
                    f"round {index + 1}, {len(senders)} sender(s): bare loops {ceiling:,.0f}/s; "
                    f"ocsd {ours['rps']:,.0f}/s over {groups:,} groups "
                    f"({ours['ratio']:.2f}; CPU µs per notification {ours['cpu_us']})",
                    flush=True,
                )
        receiver.stop()
    finally:
        procs.stop_all()
    print("\n| senders | bare loops /s | ocsd /s | ocsd / bare | rounds |")
    print("|---:|---:|---:|---:|---|")
    for senders, results in rows.items():
        ratios = ", ".join(f"{r['ratio']:.2f}" for r in results)
        print(
            f"| {senders} | {statistics.median(r['ceiling'] for r in results):,.0f} "
            f"| {statistics.median(r['rps'] for r in results):,.0f} "
            f"| {statistics.median(r['ratio'] for r in results):.2f} | {ratios} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
