"""20,000 groups from one ``[campaign-group-template:...]`` against the same 20,000 written out.

    python bench/templates.py [--groups 20000] [--repeat 3]

Writes bench/scale.py's configuration of N groups twice: written out (its
``write_config``) and as one template section that expands to the very same groups
(asserted: the two ``Settings`` are equal). For each, in a fresh process each time:

- ``load_settings``: CPU seconds with the collector off, as ``ocsd run`` reads it;
- the process's resident memory once the settings are loaded (VmRSS, MiB), and the file's size;
- ``ocsd run --start-all`` start-up, spawn to ``GET /readyz`` 200 (wall seconds), and
  its peak RSS (VmHWM) at that moment.

Prints a Markdown table of the medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import GROUP_DBID_BASE, LIST_DBID_OFFSET, free_port, write_config

HEADER = """[OCServer]
send-campaigngroup-states = true
campaigngroup-states-uri = http://127.0.0.1:9/state
campaigngroup-states-interval = 10
http-response-timeout = 10
http-connection-pool-size = 32

[tenant]
name = Bench Tenant
ccid = 101

[ocsd]
control-host = 127.0.0.1
control-port = {port}
log-format = json
time-scale = 1
stats-window = 300
seed = 1
"""

TEMPLATE = """
[campaign-group-template:Bench]
count = {count}
first-dbid = {first}
list-first-dbid = {list_first}
name = Campaign {{dbid:06d}}@Agent Group {{dbid:06d}}
list-name = List_{{dbid:06d}}
campaign = Campaign {{dbid:06d}}
group = Agent Group {{dbid:06d}}
template = Bench Outbound Template
queue = Q{{dbid:06d}}
records = 1000
agents = 10
dial-mode = predictive
optimize-by = busy-factor
optimize-goal = 80
"""

LOAD = """
import gc, json, resource, sys, time
gc.disable()
from ocsd.config.settings import load_settings
started = time.process_time()
settings = load_settings(sys.argv[1])
cpu = time.process_time() - started
rss = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS:'))
print(json.dumps({"cpu_s": cpu, "rss_mib": rss / 1024, "groups": len(settings.campaign_groups)}))
"""


def write_template(path: Path, groups: int, port: int) -> None:
    first = GROUP_DBID_BASE + 1
    path.write_text(
        HEADER.format(port=port)
        + TEMPLATE.format(count=groups, first=first, list_first=first + LIST_DBID_OFFSET)
    )


def load(path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", LOAD, str(path)], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out)


def start(path: Path, port: int, timeout: float = 120.0) -> tuple[float, float]:
    """Spawn ``ocsd run --start-all``: seconds to /readyz 200, and VmHWM then (MiB)."""
    spawned = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ocsd", "run", "--config", str(path), "--start-all"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while time.monotonic() - spawned < timeout:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        ready = time.monotonic() - spawned
                        status = Path(f"/proc/{proc.pid}/status").read_text()
                        hwm = next(
                            int(x.split()[1]) for x in status.splitlines() if x.startswith("VmHWM:")
                        )
                        return ready, hwm / 1024
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("ocsd did not become ready")
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        port = free_port()
        written, templated = Path(directory, "written.ini"), Path(directory, "template.ini")
        write_config(written, args.groups, 10, "http://127.0.0.1:9/state", port, 32, 10.0)
        write_template(templated, args.groups, port)
        from ocsd.config.settings import load_settings

        assert load_settings(written) == load_settings(templated), "the same groups"
        rows = []
        for label, path in (("written out", written), ("one template", templated)):
            loads = [load(path) for _ in range(args.repeat)]
            starts = [start(path, port) for _ in range(args.repeat)]
            rows.append(
                f"| {label} | {path.stat().st_size / 1e6:.2f} MB "
                f"| {statistics.median(x['cpu_s'] for x in loads):.2f} s "
                f"| {statistics.median(x['rss_mib'] for x in loads):.0f} MiB "
                f"| {statistics.median(s[0] for s in starts):.2f} s "
                f"| {statistics.median(s[1] for s in starts):.0f} MiB |"
            )
    print(f"{args.groups:,} groups, medians of {args.repeat} fresh processes each")
    print(
        "| configuration | file | load_settings CPU | RSS after load | start-up to /readyz | peak RSS at ready |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
