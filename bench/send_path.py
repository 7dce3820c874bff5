"""What bounds ocsd's maximum delivery rate: its sending path alone, and each
notification's own work, against the bare aiohttp ceiling.

    python bench/send_path.py [--pool 32] [--duration 10] [--groups 18000]

Three measurements, the receiver (bench/receiver.py) pinned to core 0 and the sender
to core 1, as in bench/scale.py:

1. **the ceiling**: bench/ceiling.py, the bare aiohttp loop (median of 2 runs);
2. **ocsd's sending path alone**: ocsd's own ``Notifier`` (its queues, workers, pool,
   counters, latency histogram and the 81001 line written as JSON to a file) fed
   periodic notifications for 20,000 groups every second, each with one pre-built
   body: the rate and CPU per notification, and the ratio to the ceiling;
3. **each notification's own work**, in-process, on one core, for ``--groups``
   running groups after five simulated minutes, each read once a second as the daemon
   reads it: advancing its simulation, statistics and snapshot, the encoded body,
   the 81001 line (CPU microseconds per notification, all groups in turn, so the
   caches are as cold as in the daemon).

The ratio of (2) shows what the HTTP side allows; the microseconds of (3), added to
(2)'s CPU per notification, give the rate the whole daemon can reach.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import scale  # noqa: E402  (bench/scale.py: processes, receiver, ceiling, INI writer)
from ceiling import sample_body  # noqa: E402


def notifier_alone(url: str, pool: int, duration: float, log_path: str) -> dict[str, Any]:
    """Runs in the pinned child: ocsd's Notifier with one pre-built body."""
    import orjson
    import uvloop

    from ocsd import logs
    from ocsd.delivery.notifier import Notifier
    from ocsd.delivery.ocs import OcsPolicy
    from ocsd.delivery.transport import Transport
    from ocsd.service.metrics import Metrics

    sys.stdout = open(log_path, "w")  # noqa: SIM115  (the 81001 lines go to a file)
    logs.configure_logging("json")
    body = orjson.dumps(sample_body(100_123, 600_123, time.time()))
    result: dict[str, Any] = {}

    async def main() -> None:
        transport = Transport(url, 10, pool, latency=Metrics().post_latency)
        notifier = Notifier(transport, OcsPolicy(), source=lambda _dbid: body)
        await notifier.start()
        groups = [(100_000 + i, f"Campaign {i:06d}@Agent Group {i:06d}") for i in range(20_000)]

        async def feed() -> None:
            while True:
                for dbid, name in groups:
                    notifier.due(dbid, name)
                await asyncio.sleep(1)

        feeder = asyncio.create_task(feed())
        await asyncio.sleep(2)  # warm-up
        sent, clock, cpu = notifier.counters.sent["periodic"], time.monotonic(), time.process_time()
        await asyncio.sleep(duration)
        sent = notifier.counters.sent["periodic"] - sent
        seconds, cpu = time.monotonic() - clock, time.process_time() - cpu
        feeder.cancel()
        await notifier.close(1)
        result.update(rps=round(sent / seconds, 1), cpu_us=round(cpu / sent * 1e6, 1))

    uvloop.run(main())
    return result


def per_notification_work(groups: int) -> dict[str, float]:
    """CPU microseconds of each part of one notification's own work, cold caches."""
    from ocsd import logs
    from ocsd.config.settings import load_settings
    from ocsd.core.genesys import PERIODIC_TEXT, Actor, Request
    from ocsd.service.daemon import Daemon

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ocsd.ini"
        scale.write_config(path, groups, 1, "http://127.0.0.1:9/ocs", 0, 32, 10)
        settings = load_settings(str(path))
        now = [1_800_000_000.0]
        daemon = Daemon(settings, str(path), clock=lambda: now[0])
        engine = daemon.engine
        dbids = sorted(engine.by_dbid)
        for dbid in dbids:
            for request in (Request.LOAD, Request.START):
                engine.request(dbid, request, Actor.SCHEDULE, now[0])
        for _step in range(30):  # five simulated minutes, every group read every 10 s
            now[0] += 10
            for dbid in dbids:
                engine.bring_up_to_date(dbid, now[0])
                daemon.feed.periodic_body(dbid)
        sys.stdout = open(Path(tmp) / "trace.log", "w")  # noqa: SIM115
        logs.configure_logging("json")

        def per_group(work: Any) -> float:
            best = float("inf")
            for _ in range(3):
                now[0] += 1
                started = time.process_time()
                for dbid in dbids:
                    work(dbid)
                best = min(best, (time.process_time() - started) / len(dbids) * 1e6)
            return round(best, 2)

        def advance(dbid: int) -> None:
            engine.bring_up_to_date(dbid, now[0])

        def snapshot(dbid: int) -> None:
            engine.bring_up_to_date(dbid, now[0])
            engine.periodic_snapshot(dbid, now[0])

        def body(dbid: int) -> None:  # what the tick and then the sender do per group
            engine.bring_up_to_date(dbid, now[0])
            daemon.feed.periodic_body(dbid)

        def trace(dbid: int) -> None:
            group = engine.by_dbid[dbid]
            logs.trace_lines.write(81001, PERIODIC_TEXT, group.identity.name, "http://x/ocs")

        figures = {
            "advance": per_group(advance),
            "advance + statistics + snapshot": per_group(snapshot),
            "advance + statistics + snapshot + encoded body": per_group(body),
            "81001 line": per_group(trace),
        }
        logs.trace_lines.flush()
        sys.stdout = sys.__stdout__
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--groups", type=int, default=18_000)
    parser.add_argument("--child", nargs=2, metavar=("URL", "LOG"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = notifier_alone(args.child[0], args.pool, args.duration, args.child[1])
        sys.__stdout__.write(json.dumps(result) + "\n")
        return 0

    with tempfile.TemporaryDirectory(prefix="ocsd-send-path-") as tmp:
        workdir = Path(tmp)
        procs = scale.Processes(workdir)
        try:
            print("== the ceiling: bare aiohttp loop", flush=True)
            ceiling = scale.run_ceiling(procs, workdir, args.pool, args.duration, 2, 60.0)
            print("== ocsd's sending path alone (Notifier, one pre-built body)", flush=True)
            runs = []
            for index in range(2):
                scale.wait_quiet(60.0)
                receiver = scale.Receiver(procs, workdir, f"notifier-{index}")
                try:
                    log = workdir / f"notifier-{index}.log"
                    argv = [sys.executable, __file__, "--pool", str(args.pool)]
                    argv += ["--duration", str(args.duration), "--child", receiver.url, str(log)]
                    child = procs.start(
                        scale.pinned(scale.SENDER_CORE, argv), subprocess.PIPE, None
                    )
                    out, _ = child.communicate(timeout=args.duration + 60)
                    runs.append(json.loads(out.decode().strip().splitlines()[-1]))
                    print(f"   run {index + 1}: {runs[-1]}", flush=True)
                finally:
                    receiver.stop()
        finally:
            procs.stop_all()
    alone = statistics.median(r["rps"] for r in runs)
    alone_cpu = statistics.median(r["cpu_us"] for r in runs)
    print(f"== each notification's own work, {args.groups:,} running groups", flush=True)
    work = per_notification_work(args.groups)
    total = alone_cpu + work["advance + statistics + snapshot + encoded body"]
    print()
    print("| | requests/s | CPU us per notification | ratio to the ceiling |")
    print("|---|---:|---:|---:|")
    print(
        f"| bare aiohttp loop (the ceiling) | {ceiling['median_rps']:,.0f} | "
        f"{ceiling['median_cpu_us']:.1f} | 1.00 |"
    )
    print(
        f"| ocsd's sending path alone, with its 81001 line | {alone:,.0f} | "
        f"{alone_cpu:.1f} | {alone / ceiling['median_rps']:.2f} |"
    )
    print()
    print("| each notification's own work (in-process, cold caches) | CPU us |")
    print("|---|---:|")
    for name, value in work.items():
        print(f"| {name} | {value:.2f} |")
    print()
    print(
        f"sending path + body work: {total:.1f} us per notification -> at most "
        f"{1e6 / total:,.0f}/s on one core = {1e6 / total / ceiling['median_rps']:.2f} "
        f"of the ceiling (before the ticks, the stepper and the control API)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
