"""``ocsd replay --speed 0`` throughput against the bare aiohttp ceiling, in the same run.

    python bench/replay_rate.py [--bodies 60000] [--groups 2000] [--pool 32]

Writes a JSON-lines feed of ``--bodies`` periodic bodies (bench/ceiling.py's body, spread
over ``--groups`` groups, one second apart per group), starts bench/receiver.py pinned to
core 0, measures the ceiling (bench/ceiling.py, pinned to core 1, median of 2 runs), then
times ``ocsd replay FEED --uri ... --speed 0`` pinned to core 1 (JSON logs to a file) and
counts what the receiver got. Prints a Markdown table: requests/s and the ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
from ceiling import sample_body

RECEIVER_CORE, SENDER_CORE = "0", "1"


def pinned(core: str, argv: list[str]) -> list[str]:
    return ["taskset", "-c", core, *argv]


def write_feed(path: Path, bodies: int, groups: int) -> None:
    with path.open("wb") as feed:
        for n in range(bodies):
            dbid = 100_001 + n % groups
            at = 1_700_000_000 + n // groups
            feed.write(orjson.dumps(sample_body(dbid, dbid + 500_000, at)) + b"\n")


def ceiling(url: str, pool: int) -> float:
    rates = []
    for _ in range(2):
        out = subprocess.run(
            pinned(SENDER_CORE, [sys.executable, str(Path(__file__).parent / "ceiling.py"),
                                 "--url", url, "--pool", str(pool), "--duration", "8"]),
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        rates.append(json.loads(out.strip().splitlines()[-1])["rps"])
    return statistics.median(rates)


def replay(feed: Path, url: str, pool: int, directory: Path) -> tuple[float, int]:
    config = directory / "replay.ini"
    config.write_text(
        f"[OCServer]\nhttp-connection-pool-size = {pool}\nhttp-response-timeout = 10\n"
        "[ocsd]\nlog-format = json\n"
    )
    log = directory / "replay.log"
    with log.open("wb") as out:
        done = subprocess.run(
            pinned(SENDER_CORE, [sys.executable, "-m", "ocsd", "replay", str(feed), "--uri", url,
                                 "--speed", "0", "--config", str(config),
                                 "--summary-json", str(directory / "summary.json")]),
            stdout=out, stderr=subprocess.PIPE, text=True, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    summary = json.loads((directory / "summary.json").read_text())
    return summary["duration_s"], sum(summary["sent"].values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bodies", type=int, default=60_000)
    parser.add_argument("--groups", type=int, default=2_000)
    parser.add_argument("--pool", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        feed = directory / "feed.jsonl"
        write_feed(feed, args.bodies, args.groups)
        receiver = subprocess.Popen(
            pinned(RECEIVER_CORE, [sys.executable, str(Path(__file__).parent / "receiver.py"),
                                   "--record", str(directory / "received.bin")]),
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert receiver.stdout is not None
            port = int(receiver.stdout.readline().split()[1])
            url = f"http://127.0.0.1:{port}/ocs"
            bare = ceiling(url, args.pool)
            seconds, sent = replay(feed, url, args.pool, directory)
        finally:
            receiver.terminate()
            receiver.wait(15)
    rate = sent / seconds
    print(f"{args.bodies:,} bodies of {args.groups:,} groups, pool {args.pool}")
    print("| sender | requests/s | ratio to the ceiling |")
    print("|---|---:|---:|")
    print(f"| bare aiohttp loop (median of 2) | {bare:,.0f} | 1.00 |")
    print(
        f"| ocsd replay --speed 0 ({sent:,} sent in {seconds:.2f} s) | {rate:,.0f} | {rate / bare:.2f} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
