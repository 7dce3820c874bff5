"""Scale benchmark of ``ocsd run``: many running groups, a fast receiver, the ceiling.

    python bench/scale.py [--groups 1000,5000,20000] [--interval 10] [--duration 60]
                          [--pool 32] [--quick] [--phases ceiling,scale,max,half,hang]
                          [--hang-duration 60] [--profile DIR] [--output FILE]

Everything runs on 127.0.0.1. The receiver (bench/receiver.py: a raw asyncio Protocol
on uvloop that answers 200 and records arrival time and group DBID of each request)
is pinned to core 0 with ``taskset -c 0``; the sender under test is pinned to core 1.
This script itself stays on core 0 and mostly sleeps.

Phases, in this order (``--phases`` picks some):

ceiling  bench/ceiling.py, a bare aiohttp ClientSession loop (uvloop, orjson body of
         the same shape and size, ``TCPConnector(limit=pool)``, ``pool`` workers)
         against the same receiver: requests/s, median of ``--ceiling-runs`` runs.
scale    for each N of ``--groups``: a temporary INI with N groups (each with its own
         calling list, predictive, 10 agents, 1,000 records), ``send-campaigngroup-states
         = true``, ``log-format = json`` (stdout to a file; 81000/81001 lines counted),
         ``time-scale`` from ``--time-scale`` (default 1), ``http-connection-pool-size = pool``;
         ``ocsd run --config FILE --start-all``. Start-up is process start -> first
         ``GET /readyz`` 200 (``--start-all`` loads and starts every group before the
         loop answers). The window starts once every state notification of the start
         (2 per group) is delivered plus one interval, and lasts ``--duration`` s.
max      the maximum sustained delivery rate: short runs at interval 1 s with
         N = k x ceiling groups for each k of ``--max-loads`` (offered load above what
         can be sent; periodic bodies are coalesced per group, so the backlog stays
         bounded); delivered/s at the receiver, the best of them, and its ratio to the
         ceiling.
half     offered load = ceiling / 2 (N = ceiling/2 x ``--half-interval``), the ceiling
         measured again just before (the machine's speed drifts): the share of
         produced notifications delivered and the per-group inter-arrival jitter.
hang     the same load as ``half``; after the warm-up the receiver stops answering
         (it still accepts and reads). Tick lateness from /metrics and RSS every
         ``--rss-every`` s over ``--hang-duration`` s.

Per run: offered notifications/s (N / interval), delivered/s (requests the receiver
got in the window / window), per-group inter-arrival jitter at the receiver
(|gap - interval| between consecutive arrivals of one group: p50/p99/max), tick
lateness (``ocsd_tick_lateness_seconds`` histogram, the window's delta, quantiles
interpolated in buckets as Prometheus' histogram_quantile does), CPU seconds per
1,000 notifications (utime + stime from /proc/PID/stat over the window / POSTs
attempted), peak RSS (VmHWM), the control API's /healthz latency sampled every
0.2 s (a stalled event loop shows there), log lines written.

Every process is started in its own session and stopped by its PID (SIGTERM, then
SIGKILL after a bound), in ``finally``, also on Ctrl-C or SIGTERM. ``--quick`` is a
2-3 minute smoke run of every phase. The tables go to stdout and ``--output``
(default docs/benchmarks/RESULTS-scale.md); ``--json`` keeps the raw figures.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

from ceiling import group_names
from receiver import load_records

HERE = Path(__file__).resolve().parent
RECEIVER = HERE / "receiver.py"
CEILING = HERE / "ceiling.py"
RECEIVER_CORE, SENDER_CORE = "0", "1"
PATH = "/ocs/campaign-group-state"
GROUP_DBID_BASE = 100_000  # group DBIDs are 100001.., list DBIDs 600001..
LIST_DBID_OFFSET = 500_000
STOP_TIMEOUT_S = 20.0
PROBE_EVERY_S = 0.2

# The targets the report checks (docs/benchmarks/index.md).
TARGET_RATIO = 0.8
TARGET_DELIVERED = 0.999
TARGET_JITTER_P99_S = 0.050
TARGET_LATENESS_P99_S = 0.050
TARGET_CPU_OVER_PACED = 0.15
TARGET_RSS_20K = 1 << 30
TARGET_STARTUP_S = 3.0
TARGET_RSS_SLOPE_MIB_PER_MIN = 1.0  # "flat": what the benchmark takes the target to mean


class Interrupted(Exception):
    """SIGTERM to this script: unwind through every ``finally``."""


# -- processes -----------------------------------------------------------------------


class Processes:
    """Every child process of the benchmark; each is stopped by its own PID."""

    def __init__(self, cwd: Path) -> None:
        self._live: list[subprocess.Popen[bytes]] = []
        self.cwd = cwd  # not the repository: `python -m ocsd` there would shadow PYTHONPATH

    def start(
        self,
        argv: Sequence[str],
        stdout: IO[bytes] | int,
        stderr: IO[bytes] | int,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            list(argv),
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            cwd=self.cwd,
            env=env,
            start_new_session=True,  # a Ctrl-C reaches this script only; it stops them
        )
        self._live.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, wait up to ``timeout``, then SIGKILL; the exit code."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)
        if proc in self._live:
            self._live.remove(proc)
        return proc.returncode

    def stop_all(self) -> None:
        for proc in reversed(list(self._live)):
            self.stop(proc, timeout=5)


def pinned(core: str, argv: Sequence[str]) -> list[str]:
    return ["taskset", "-c", core, *argv] if shutil.which("taskset") else list(argv)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Receiver:
    """bench/receiver.py as a child process, pinned to the receiver's core."""

    def __init__(self, procs: Processes, workdir: Path, name: str, keep: bool = False) -> None:
        self.procs = procs
        self.keep = keep
        self.record = workdir / f"{name}.records"
        self.log = (workdir / f"{name}.receiver.log").open("wb")
        argv = [sys.executable, str(RECEIVER), "--record", str(self.record)]
        self.proc = procs.start(pinned(RECEIVER_CORE, argv), subprocess.PIPE, self.log)
        assert self.proc.stdout is not None
        line = _readline(self.proc.stdout, 10.0)
        if not line.startswith(b"READY "):
            self.procs.stop(self.proc)
            raise RuntimeError(f"receiver did not start: {line!r}")
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}{PATH}"

    def hang(self) -> None:
        os.kill(self.proc.pid, signal.SIGUSR1)

    def stop(self) -> tuple[list[float], list[int], list[int]]:
        self.procs.stop(self.proc)
        self.log.close()
        if not self.record.exists():  # killed before it could write (e.g. interrupted)
            return [], [], []
        times, dbids, sizes = load_records(self.record)
        if not self.keep:
            self.record.unlink(missing_ok=True)
        return times.tolist(), dbids.tolist(), sizes.tolist()


def _readline(stream: IO[bytes], timeout: float) -> bytes:
    """One line from a child's stdout, or b"" after ``timeout`` seconds."""
    import select

    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline().strip() if ready else b""


# -- /proc and the control API -------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) in bytes."""
    result = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            result[key] = int(value.split()[0]) * 1024
    return result


def core_times() -> dict[str, tuple[float, float]]:
    """Per /proc/stat ``cpu`` line (``cpu``, ``cpu0``, ...): (busy, steal) seconds."""
    result = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if not line.startswith("cpu"):
            continue
        name, *values = line.split()
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, values[:8])
        busy = (user + nice + system + irq + softirq) / CLOCK_TICKS
        result[name] = (busy, steal / CLOCK_TICKS)
    return result


def wait_quiet(limit: float, threshold: float = 0.25) -> float:
    """Wait (up to ``limit`` s) until other processes use less than ``threshold`` cores;
    the cores they used in the last second looked at."""
    deadline = time.monotonic() + limit
    warned = False
    while True:
        before, begin = core_times()["cpu"][0], time.monotonic()
        own = os.times()
        time.sleep(1.0)
        after, end = core_times()["cpu"][0], time.monotonic()
        mine = os.times()
        self_cpu = (mine.user + mine.system) - (own.user + own.system)
        busy = max(0.0, after - before - self_cpu) / (end - begin)
        if busy < threshold or time.monotonic() >= deadline:
            if busy >= threshold:
                print(f"   machine still busy ({busy:.2f} cores by others); going on", flush=True)
            return busy
        if not warned:
            print(
                f"   other processes use {busy:.2f} cores; waiting up to {limit:.0f} s "
                "for a quiet machine",
                flush=True,
            )
            warned = True


def http_get(port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


_SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)"
)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass
class Scrape:
    """The parts of ocsd's /metrics the benchmark reads."""

    sent: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    failed: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    dropped: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    lateness: dict[float, float] = field(default_factory=dict)  # le -> cumulative count
    lateness_count: float = 0.0
    ticks_skipped: float = 0.0
    pending: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Scrape:
        scrape = cls()
        for line in text.splitlines():
            match = _SAMPLE.match(line)
            if match is None:
                continue
            name, value = match["name"], float(match["value"])
            labels = dict(_LABEL.findall(match["labels"] or ""))
            kind = labels.get("kind", "")
            if name == "ocsd_notifications_sent_total":
                scrape.sent[kind] += value
            elif name == "ocsd_notifications_failed_total":
                scrape.failed[f"{kind}: {labels.get('reason', '')}"] += value
            elif name == "ocsd_notifications_dropped_total":
                scrape.dropped[f"{kind}: {labels.get('reason', '')}"] += value
            elif name == "ocsd_tick_lateness_seconds_bucket":
                scrape.lateness[float(labels["le"])] = value
            elif name == "ocsd_tick_lateness_seconds_count":
                scrape.lateness_count = value
            elif name == "ocsd_ticks_skipped_total":
                scrape.ticks_skipped = value
            elif name == "ocsd_notifications_pending":
                scrape.pending = value
        return scrape

    @property
    def attempts(self) -> float:
        return sum(self.sent.values()) + sum(self.failed.values())

    @property
    def produced(self) -> float:
        return self.attempts + sum(self.dropped.values()) + self.pending


def scrape(port: int) -> Scrape:
    status, body = http_get(port, "/metrics", timeout=30.0)
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    return Scrape.parse(body.decode())


def histogram_quantile(buckets: dict[float, float], q: float) -> float | None:
    """Prometheus' histogram_quantile over cumulative buckets (le -> count)."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    previous_bound, previous_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return previous_bound
            if count == previous_count:
                return bound
            return previous_bound + (bound - previous_bound) * (rank - previous_count) / (
                count - previous_count
            )
        previous_bound, previous_count = bound, count
    return previous_bound


def highest_bucket(buckets: dict[float, float]) -> float | None:
    """Upper bound of the highest non-empty bucket: every observation was at most this."""
    bounds = sorted(buckets)
    previous = 0.0
    highest: float | None = None
    for bound in bounds:
        if buckets[bound] > previous:
            highest = bound
        previous = buckets[bound]
    return highest


def quantile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank quantile of sorted values."""
    if not values:
        return None
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


# -- one ocsd run --------------------------------------------------------------------


def write_config(
    path: Path,
    groups: int,
    interval: int,
    uri: str,
    control_port: int,
    pool: int,
    timeout: float,
    time_scale: float = 1.0,
) -> None:
    """N groups, each with its own calling list; every one predictive by busy factor."""
    out = [
        "[OCServer]",
        "send-campaigngroup-states = true",
        f"campaigngroup-states-uri = {uri}",
        f"campaigngroup-states-interval = {interval}",
        f"http-response-timeout = {timeout:g}",
        f"http-connection-pool-size = {pool}",
        "",
        "[tenant]",
        "name = Bench Tenant",
        "ccid = 101",
        "",
        "[ocsd]",
        "control-host = 127.0.0.1",
        f"control-port = {control_port}",
        "log-format = json",
        f"time-scale = {time_scale:g}",
        "stats-window = 300",
        "seed = 1",
        "",
    ]
    for index in range(1, groups + 1):
        dbid = GROUP_DBID_BASE + index
        names = group_names(dbid)
        out += [
            f"[calling-list:{names['list']}]",
            f"dbid = {dbid + LIST_DBID_OFFSET}",
            "records = 1000",
            "",
            f"[campaign-group:{names['name']}]",
            f"dbid = {dbid}",
            f"campaign = {names['campaign']}",
            f"group = {names['group']}",
            f"template = {names['template']}",
            f"queue = {names['queue']}",
            "agents = 10",
            "dial-mode = predictive",
            "optimize-by = busy-factor",
            "optimize-goal = 80",
            f"calling-lists = {names['list']}",
            "",
        ]
    path.write_text("\n".join(out))


@dataclass
class RunResult:
    label: str
    groups: int
    interval: int
    pool: int
    duration_s: float
    hang: bool = False
    rss_every: float = 10.0
    startup_s: float | None = None
    config_bytes: int = 0
    offered_per_s: float = 0.0
    received: int = 0
    delivered_per_s: float = 0.0
    sent: float = 0.0
    failed: float = 0.0
    dropped: dict[str, float] = field(default_factory=dict)
    produced: float = 0.0
    delivered_share: float | None = None
    jitter_p50_s: float | None = None
    jitter_p99_s: float | None = None
    jitter_max_s: float | None = None
    gaps: int = 0
    groups_seen: int = 0
    lateness_p50_s: float | None = None
    lateness_p99_s: float | None = None
    lateness_max_bucket_s: float | None = None
    ticks: float = 0.0
    ticks_skipped: float = 0.0
    cpu_s: float = 0.0
    cpu_share: float = 0.0
    cpu_s_per_1000: float | None = None
    peak_rss: int = 0
    rss_samples: list[tuple[float, int]] = field(default_factory=list)
    rss_growth_mib_per_min: float | None = None
    probe_p50_ms: float | None = None
    probe_p99_ms: float | None = None
    probe_max_ms: float | None = None
    log_lines: int = 0
    log_81001: int = 0
    log_81000: int = 0
    log_failed: int = 0
    log_bytes: int = 0
    body_bytes: float | None = None
    pending_first: float = 0.0  # ocsd_notifications_pending at the window's start and end
    pending_last: float = 0.0
    others_cores: float | None = None  # CPU other processes took during the window, cores
    sender_core_others: float | None = None  # ... of it on the sender's core
    steal_cores: float | None = None
    exit_code: int | None = None
    stderr_tail: str = ""
    profile: str | None = None


def run_ocsd(
    procs: Processes,
    workdir: Path,
    ocsd_cmd: Sequence[str],
    label: str,
    groups: int,
    interval: int,
    duration: float,
    pool: int,
    hang: bool = False,
    rss_every: float = 10.0,
    profile_dir: Path | None = None,
    profile_s: float = 30.0,
    timeout: float = 10.0,
    keep: bool = False,
    quiet_wait: float = 0.0,
    time_scale: float = 1.0,
) -> RunResult:
    """Start a receiver and ``ocsd run --start-all`` with N groups; measure one window."""
    result = RunResult(label, groups, interval, pool, duration, hang=hang, rss_every=rss_every)
    result.offered_per_s = groups / interval
    print(f"\n== {label}: {groups} groups, interval {interval} s, pool {pool}", flush=True)
    if quiet_wait > 0:
        wait_quiet(quiet_wait)
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", label).strip("-")
    receiver = Receiver(procs, workdir, slug, keep)
    ocsd: subprocess.Popen[bytes] | None = None
    spy: subprocess.Popen[bytes] | None = None
    stdout_path, stderr_path = workdir / f"{slug}.stdout", workdir / f"{slug}.stderr"
    try:
        config = workdir / f"{slug}.ini"
        control_port = free_port()
        write_config(
            config, groups, interval, receiver.url, control_port, pool, timeout, time_scale
        )
        result.config_bytes = config.stat().st_size
        argv = [*ocsd_cmd, "run", "--config", str(config), "--start-all"]
        with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
            spawned = time.monotonic()
            ocsd = procs.start(pinned(SENDER_CORE, argv), out, err)
        result.startup_s = _wait_ready(ocsd, control_port, spawned, timeout=120.0)
        print(f"   ready after {result.startup_s:.2f} s", flush=True)
        _warm_up(ocsd, control_port, groups, interval, hang)
        if hang:
            receiver.hang()
            time.sleep(1.0)
            print("   receiver hangs from now on", flush=True)
        first, cpu_first = scrape(control_port), cpu_seconds(ocsd.pid)
        machine_first, receiver_first = core_times(), cpu_seconds(receiver.proc.pid)
        own_first, children_first = os.times(), _children_cpu()
        window_start = time.monotonic()
        if profile_dir is not None:
            spy = _start_profiler(procs, profile_dir, slug, ocsd.pid, min(profile_s, duration))
            result.profile = str(profile_dir / f"{slug}.pyspy.txt")
        print(f"   measuring {duration:g} s", flush=True)
        probes, rss = _monitor(ocsd, control_port, window_start + duration, rss_every)
        last, cpu_last = scrape(control_port), cpu_seconds(ocsd.pid)
        machine_last, receiver_last = core_times(), cpu_seconds(receiver.proc.pid)
        own_last = os.times()
        window_end = time.monotonic()
        mem = memory(ocsd.pid)
        spy_cpu = 0.0
        if spy is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                spy.wait(60)
            spy_cpu = _children_cpu() - children_first
            procs.stop(spy)
    finally:
        if ocsd is not None:
            result.exit_code = procs.stop(ocsd)
        if spy is not None:
            procs.stop(spy)
        times, dbids, sizes = receiver.stop()
    window = window_end - window_start
    result.duration_s = round(window, 3)
    _figures(result, first, last, cpu_last - cpu_first, window)
    ours = (
        (cpu_last - cpu_first)
        + (receiver_last - receiver_first)
        + (own_last.user + own_last.system - own_first.user - own_first.system)
        + spy_cpu
    )
    busy = machine_last["cpu"][0] - machine_first["cpu"][0]
    result.others_cores = round(max(0.0, busy - ours) / window, 3)
    sender = f"cpu{SENDER_CORE}"
    if sender in machine_last:
        sender_busy = machine_last[sender][0] - machine_first[sender][0]
        result.sender_core_others = round(
            max(0.0, sender_busy - (cpu_last - cpu_first)) / window, 3
        )
    result.steal_cores = round((machine_last["cpu"][1] - machine_first["cpu"][1]) / window, 3)
    result.peak_rss = mem.get("VmHWM", 0)
    result.rss_samples = rss
    result.rss_growth_mib_per_min = _slope_mib_per_min(rss)
    if probes:
        probes.sort()
        result.probe_p50_ms = _ms(quantile(probes, 0.5))
        result.probe_p99_ms = _ms(quantile(probes, 0.99))
        result.probe_max_ms = _ms(probes[-1])
    _arrivals(result, times, dbids, sizes, window_start, window_end)
    _count_log(result, stdout_path)
    result.stderr_tail = stderr_path.read_text(errors="replace")[-2000:]
    _print_run(result)
    return result


def _children_cpu() -> float:
    """CPU of reaped children so far (py-spy, once it has exited and been waited for)."""
    times = os.times()
    return times.children_user + times.children_system


def _wait_ready(proc: subprocess.Popen[bytes], port: int, spawned: float, timeout: float) -> float:
    deadline = spawned + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ocsd exited with {proc.returncode} before it was ready")
        with contextlib.suppress(OSError, http.client.HTTPException):
            status, _ = http_get(port, "/readyz", timeout=2.0)
            if status == 200:
                return time.monotonic() - spawned
        time.sleep(0.01)
    raise RuntimeError(f"ocsd not ready after {timeout:g} s")


def _warm_up(
    proc: subprocess.Popen[bytes], port: int, groups: int, interval: int, hang: bool
) -> None:
    """Wait until the start's state notifications (load + start per group) are posted,
    then one more interval, so the window holds periodic traffic only."""
    deadline = time.monotonic() + max(60.0, groups / 200)
    while not hang and time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ocsd exited with {proc.returncode} during the warm-up")
        current = scrape(port)
        if current.sent["state"] + sum(current.failed.values()) >= 2 * groups:
            break
        time.sleep(0.5)
    else:
        if not hang:
            print("   warning: state notifications of the start not all posted", flush=True)
    time.sleep(max(float(interval), 2.0) + 0.5)


def _start_profiler(
    procs: Processes, profile_dir: Path, label: str, pid: int, seconds: float
) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy")
    if spy is None:
        print("   py-spy not found: no profile (pip install py-spy)", flush=True)
        return None
    profile_dir.mkdir(parents=True, exist_ok=True)
    out = profile_dir / f"{label}.pyspy.txt"
    argv = [spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200"]
    argv += ["--format", "raw", "--nonblocking", "--output", str(out)]
    log = (profile_dir / f"{label}.pyspy.log").open("wb")
    return procs.start(pinned(RECEIVER_CORE, argv), log, log)


def _monitor(
    proc: subprocess.Popen[bytes], port: int, until: float, rss_every: float
) -> tuple[list[float], list[tuple[float, int]]]:
    """Probe /healthz every PROBE_EVERY_S and sample RSS every ``rss_every`` s."""
    probes: list[float] = []
    rss: list[tuple[float, int]] = []
    started = time.monotonic()
    next_rss = started
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10.0)
    try:
        while (now := time.monotonic()) < until:
            if proc.poll() is not None:
                raise RuntimeError(f"ocsd exited with {proc.returncode} during the run")
            if now >= next_rss:
                rss.append((round(now - started, 1), memory(proc.pid)["VmRSS"]))
                next_rss += rss_every
            begin = time.perf_counter()
            try:
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                probes.append(time.perf_counter() - begin)
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10.0)
            time.sleep(max(0.0, min(PROBE_EVERY_S - (time.perf_counter() - begin), until - now)))
    finally:
        conn.close()
    rss.append((round(time.monotonic() - started, 1), memory(proc.pid)["VmRSS"]))
    return probes, rss


def _figures(result: RunResult, first: Scrape, last: Scrape, cpu: float, window: float) -> None:
    result.sent = sum(last.sent.values()) - sum(first.sent.values())
    result.failed = sum(last.failed.values()) - sum(first.failed.values())
    result.dropped = {
        reason: count - first.dropped.get(reason, 0)
        for reason, count in last.dropped.items()
        if count - first.dropped.get(reason, 0)
    }
    result.produced = last.produced - first.produced
    result.pending_first, result.pending_last = first.pending, last.pending
    # of the notifications whose fate was decided in the window (sent, failed or
    # dropped), the share sent; what waits at either end of the window is left out
    decided = result.sent + result.failed + sum(result.dropped.values())
    if decided > 0:
        result.delivered_share = result.sent / decided
    buckets = {le: last.lateness.get(le, 0) - first.lateness.get(le, 0) for le in last.lateness}
    result.lateness_p50_s = histogram_quantile(buckets, 0.5)
    result.lateness_p99_s = histogram_quantile(buckets, 0.99)
    result.lateness_max_bucket_s = highest_bucket(buckets)
    result.ticks = last.lateness_count - first.lateness_count
    result.ticks_skipped = last.ticks_skipped - first.ticks_skipped
    result.cpu_s = round(cpu, 2)
    result.cpu_share = round(cpu / window, 3)
    attempts = last.attempts - first.attempts
    result.cpu_s_per_1000 = round(cpu / attempts * 1000, 3) if attempts else None


def _arrivals(
    result: RunResult,
    times: list[float],
    dbids: list[int],
    sizes: list[int],
    start: float,
    end: float,
) -> None:
    """Delivered/s in the window and per-group inter-arrival jitter at the receiver."""
    by_group: defaultdict[int, list[float]] = defaultdict(list)
    received = 0
    size_total = 0
    for t, dbid, size in zip(times, dbids, sizes, strict=True):
        if start <= t < end:
            received += 1
            size_total += size
            by_group[dbid].append(t)
    result.received = received
    result.delivered_per_s = round(received / (end - start), 1)
    result.body_bytes = round(size_total / received, 1) if received else None
    jitter: list[float] = []
    for arrivals in by_group.values():
        arrivals.sort()
        jitter.extend(abs(b - a - result.interval) for a, b in itertools.pairwise(arrivals))
    jitter.sort()
    result.gaps = len(jitter)
    result.groups_seen = len(by_group)
    result.jitter_p50_s = quantile(jitter, 0.5)
    result.jitter_p99_s = quantile(jitter, 0.99)
    result.jitter_max_s = jitter[-1] if jitter else None


def _count_log(result: RunResult, stdout: Path) -> None:
    lines = n81000 = n81001 = failed = 0
    with stdout.open("rb") as log:
        for line in log:
            lines += 1
            if b'"msgid":81001' in line:
                n81001 += 1
            elif b'"msgid":81000' in line:
                n81000 += 1
            if b"HTTP notification failed" in line:
                failed += 1
    result.log_lines, result.log_81000, result.log_81001 = lines, n81000, n81001
    result.log_failed = failed
    result.log_bytes = stdout.stat().st_size


def _slope_mib_per_min(samples: list[tuple[float, int]]) -> float | None:
    """Least-squares slope of RSS over time, MiB per minute."""
    if len(samples) < 3:
        return None
    xs = [t for t, _ in samples]
    ys = [r / (1 << 20) for _, r in samples]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mean_x) ** 2 for x in xs)
    if var == 0:
        return None
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var
    return round(slope * 60, 2)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


def _print_run(r: RunResult) -> None:
    print(
        f"   offered {r.offered_per_s:,.0f}/s  delivered {r.delivered_per_s:,.0f}/s  "
        f"share {_pct(r.delivered_share)}  jitter p50/p99/max {_msf(r.jitter_p50_s)}/"
        f"{_msf(r.jitter_p99_s)}/{_msf(r.jitter_max_s)}  lateness p99 {_msf(r.lateness_p99_s)}"
        f"  cpu {r.cpu_share:.0%} ({r.cpu_s_per_1000} s/1000)  peak RSS {_mib(r.peak_rss)}",
        flush=True,
    )
    if r.exit_code not in (0, None):
        print(f"   ocsd exited {r.exit_code}: {r.stderr_tail[-500:]}", flush=True)


# -- the ceiling ---------------------------------------------------------------------


def ceiling_once(
    procs: Processes,
    workdir: Path,
    url: str,
    pool: int,
    duration: float,
    tag: str,
    extra: Sequence[str] = (),
    core: str = SENDER_CORE,
) -> dict[str, Any]:
    """One run of bench/ceiling.py on ``core`` (the sender's) against ``url``: its JSON
    result."""
    argv = [sys.executable, str(CEILING), "--url", url, "--pool", str(pool)]
    argv += ["--duration", f"{duration:g}", *extra]
    with (workdir / f"ceiling-{tag}.out").open("w+b") as out:
        proc = procs.start(pinned(core, argv), out, subprocess.STDOUT)
        try:
            proc.wait(duration + 60)
        finally:
            procs.stop(proc)
        out.seek(0)
        text = out.read().decode(errors="replace")
    try:
        result: dict[str, Any] = json.loads(text.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError(f"bench/ceiling.py failed: {text[-1000:]}") from None
    return result


def run_ceiling(
    procs: Processes,
    workdir: Path,
    pool: int,
    duration: float,
    runs: int,
    quiet_wait: float,
    rate: float | None = None,
) -> dict[str, Any]:
    """bench/ceiling.py against a fresh receiver, ``runs`` times; the median requests/s.

    With ``rate``, the bare loop is paced to that load (its CPU per request there)."""
    results: list[dict[str, Any]] = []
    for index in range(runs):
        if quiet_wait > 0:
            wait_quiet(quiet_wait)
        receiver = Receiver(procs, workdir, f"ceiling-{index}")
        try:
            extra = ["--rate", f"{rate:.1f}"] if rate else []
            result = ceiling_once(procs, workdir, receiver.url, pool, duration, str(index), extra)
        finally:
            times, _dbids, sizes = receiver.stop()
        start = float(result["window_start_monotonic"])
        window = [s for t, s in zip(times, sizes, strict=True) if start <= t < start + duration]
        result["receiver_rps"] = round(len(window) / duration, 1)
        result["receiver_body_bytes"] = round(statistics.fmean(window), 1) if window else None
        print(
            f"   ceiling run {index + 1}: {result['rps']:,.0f} requests/s "
            f"({result['cpu_us_per_request']} us CPU each; receiver saw "
            f"{result['receiver_rps']:,.0f}/s; others on the sender core: "
            f"{result.get('core_others')} cores)",
            flush=True,
        )
        results.append(result)
    rps = [float(r["rps"]) for r in results]
    cpu = [float(r["cpu_us_per_request"] or 0) for r in results]
    return {
        "runs": results,
        "rps": rps,
        "median_rps": statistics.median(rps),
        "median_cpu_us": statistics.median(cpu),
        "pool": pool,
    }


# -- report --------------------------------------------------------------------------


def _pct(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value * 100:.{digits}f} %"


def _msf(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 1000:.1f} ms"


def _mib(value: int | float) -> str:
    return f"{value / (1 << 20):,.0f} MiB"


def _num(value: float | None, fmt: str = ",.0f") -> str:
    return "n/a" if value is None else format(value, fmt)


def run_table(runs: list[RunResult]) -> list[str]:
    """One column per run, one row per figure."""
    rows: list[tuple[str, list[str]]] = [
        ("groups (running)", [f"{r.groups:,}" for r in runs]),
        ("interval", [f"{r.interval} s" for r in runs]),
        ("window", [f"{r.duration_s:.0f} s" for r in runs]),
        ("start-up (spawn -> /readyz 200)", [f"{r.startup_s:.2f} s" if r.startup_s else "n/a" for r in runs]),
        ("offered notifications/s", [_num(r.offered_per_s) for r in runs]),
        ("delivered/s (receiver)", [_num(r.delivered_per_s) for r in runs]),
        ("delivered share (sent / (sent + failed + dropped))", [_pct(r.delivered_share) for r in runs]),
        ("dropped in window", [_num(sum(r.dropped.values())) for r in runs]),
        ("pending at window start -> end", [f"{r.pending_first:,.0f} -> {r.pending_last:,.0f}" for r in runs]),
        ("failed in window", [_num(r.failed) for r in runs]),
        ("jitter p50", [_msf(r.jitter_p50_s) for r in runs]),
        ("jitter p99", [_msf(r.jitter_p99_s) for r in runs]),
        ("jitter max", [_msf(r.jitter_max_s) for r in runs]),
        ("groups seen / gaps", [f"{r.groups_seen:,} / {r.gaps:,}" for r in runs]),
        ("tick lateness p50", [_msf(r.lateness_p50_s) for r in runs]),
        ("tick lateness p99", [_msf(r.lateness_p99_s) for r in runs]),
        ("tick lateness max (bucket bound)", [_msf(r.lateness_max_bucket_s) for r in runs]),
        ("ticks / skipped", [f"{r.ticks:.0f} / {r.ticks_skipped:.0f}" for r in runs]),
        ("ocsd CPU (one core = 100 %)", [f"{r.cpu_share:.0%}" for r in runs]),
        ("CPU s per 1,000 notifications", [_num(r.cpu_s_per_1000, ".3f") for r in runs]),
        ("peak RSS (VmHWM)", [_mib(r.peak_rss) for r in runs]),
        ("RSS growth", [f"{r.rss_growth_mib_per_min} MiB/min" if r.rss_growth_mib_per_min is not None else "n/a" for r in runs]),
        ("/healthz latency p50 / p99 / max", [f"{_num(r.probe_p50_ms, '.1f')} / {_num(r.probe_p99_ms, '.1f')} / {_num(r.probe_max_ms, '.0f')} ms" for r in runs]),
        ("log lines (81001 / 81000 / failed)", [f"{r.log_lines:,} ({r.log_81001:,} / {r.log_81000:,} / {r.log_failed:,})" for r in runs]),
        ("body bytes (mean at receiver)", [_num(r.body_bytes) for r in runs]),
        ("other processes' CPU (all cores / sender core / steal)", [f"{_num(r.others_cores, '.2f')} / {_num(r.sender_core_others, '.2f')} / {_num(r.steal_cores, '.2f')}" for r in runs]),
    ]  # fmt: skip
    head = "| | " + " | ".join(r.label for r in runs) + " |"
    lines = [head, "|---|" + "---:|" * len(runs)]
    lines += [f"| {name} | " + " | ".join(values) + " |" for name, values in rows]
    return lines


def _verdict(ok: bool | None) -> str:
    """A target's Met? cell."""
    return "n/a" if ok is None else ("yes" if ok else "**no**")


def _maxrate_rows(maxrate: list[RunResult], ceiling_rps: float, facts: dict[str, Any]) -> list[str]:
    """The rows of the runs above capacity: the rate against the ceiling, groups served."""
    rows: list[str] = []
    best = max(maxrate, key=lambda r: r.delivered_per_s)
    ratio = best.delivered_per_s / ceiling_rps
    facts.update(max_rate=best.delivered_per_s, ceiling=ceiling_rps, ratio=ratio)
    each = "; ".join(
        f"{r.label}: {r.delivered_per_s:,.0f}/s = **{r.delivered_per_s / ceiling_rps:.2f}**"
        for r in maxrate
    )
    rows.append(
        f"| max sustained delivery >= {TARGET_RATIO} x bare aiohttp ceiling "
        f"({ceiling_rps:,.0f}/s) | {each} | {_verdict(ratio >= TARGET_RATIO)} |"
    )
    # jitter is |gap - interval|: above capacity its largest is the longest gap's excess
    served = "; ".join(
        f"{r.label}: {r.groups_seen:,} of {r.groups:,} groups delivered, longest gap "
        f"{_gap_s(r)}, RSS growth {r.rss_growth_mib_per_min} MiB/min"
        for r in maxrate
    )
    rows.append(
        f"| above capacity: every group still served in turn | {served} | "
        f"{_verdict(all(r.groups_seen == r.groups for r in maxrate))} |"
    )
    return rows


def _hang_rows(hang: RunResult, half: RunResult | None) -> list[str]:
    """The rows of the hanging-receiver run: tick lateness, memory."""
    rows: list[str] = []
    ok = hang.lateness_p99_s is not None and hang.lateness_p99_s < TARGET_LATENESS_P99_S
    rss = ", ".join(f"{_mib(r)}" for _, r in hang.rss_samples)
    rows.append(
        f"| receiver hangs ({hang.duration_s:.0f} s): tick lateness p99 < 50 ms | "
        f"p99 {_msf(hang.lateness_p99_s)} (max bucket {_msf(hang.lateness_max_bucket_s)}, "
        f"{hang.ticks:.0f} ticks, {hang.ticks_skipped:.0f} skipped) | {_verdict(ok)} |"
    )
    late = _slope_mib_per_min(hang.rss_samples[len(hang.rss_samples) // 2 :])
    control = half.rss_growth_mib_per_min if half is not None else None
    flat = None if late is None else late < TARGET_RSS_SLOPE_MIB_PER_MIN
    rows.append(
        f"| receiver hangs: memory flat (second half of the run grows < "
        f"{TARGET_RSS_SLOPE_MIB_PER_MIN:g} MiB/min) | RSS every {hang.rss_every:g} s: {rss}; "
        f"slope {hang.rss_growth_mib_per_min} MiB/min overall, {late} MiB/min in the "
        f"second half (same load, receiver answering: {control} MiB/min); notifications "
        f"pending {hang.pending_first:,.0f} -> {hang.pending_last:,.0f} | {_verdict(flat)} |"
    )
    return rows


def summary(figures: Figures) -> tuple[list[str], dict[str, Any]]:
    """The targets table: one row per target the run's phases measured."""
    ceiling, maxrate, half, hang, paced = (
        figures.ceiling,
        figures.maxrate,
        figures.half,
        figures.hang,
        figures.paced,
    )
    scale = figures.scale
    rows: list[str] = ["| Target | Measured | Met? |", "|---|---|---|"]
    facts: dict[str, Any] = {}
    ceiling_rps = ceiling["median_rps"] if ceiling else None

    verdict = _verdict
    if maxrate and ceiling_rps:
        rows += _maxrate_rows(maxrate, ceiling_rps, facts)
    if half is not None:
        ok = (
            half.delivered_share is not None
            and half.jitter_p99_s is not None
            and half.delivered_share >= TARGET_DELIVERED
            and half.jitter_p99_s < TARGET_JITTER_P99_S
        )
        rows.append(
            f"| at ceiling/2 offered ({half.offered_per_s:,.0f}/s): >= 99.9 % delivered, "
            f"p99 jitter < 50 ms | {_pct(half.delivered_share)} delivered, p99 jitter "
            f"{_msf(half.jitter_p99_s)} | {verdict(ok)} |"
        )
        if paced and paced["runs"] and half.cpu_s_per_1000 is not None:
            bare_us = float(paced["runs"][0]["cpu_us_per_request"])
            ocsd_us = half.cpu_s_per_1000 * 1000
            rows.append(
                f"| at ceiling/2: CPU per notification within {TARGET_CPU_OVER_PACED:.0%} of "
                f"the bare loop paced to the same rate | {ocsd_us:.0f} us against {bare_us:.1f} "
                f"us = {ocsd_us / bare_us:.2f} | "
                f"{verdict(ocsd_us <= bare_us * (1 + TARGET_CPU_OVER_PACED))} |"
            )
    big = max(scale, key=lambda r: r.groups) if scale else None
    if big is not None:
        rows.append(
            f"| {big.groups:,} groups in < 1 GiB RSS | peak {_mib(big.peak_rss)} | "
            f"{verdict(big.peak_rss < TARGET_RSS_20K) if big.groups >= 20_000 else 'n/a (fewer groups)'} |"
        )
        if big.startup_s is not None:
            rows.append(
                f"| {big.groups:,} groups: start-up (control API answering) < 3 s | "
                f"{big.startup_s:.2f} s | "
                f"{verdict(big.startup_s < TARGET_STARTUP_S) if big.groups >= 20_000 else 'n/a (fewer groups)'} |"
            )
    if hang is not None:
        rows += _hang_rows(hang, half)
    return rows, facts


def _gap_s(result: RunResult) -> str:
    """The longest time between two deliveries of one group (interval + largest jitter)."""
    if result.jitter_max_s is None:
        return "n/a"
    return f"{result.interval + result.jitter_max_s:.2f} s"


def environment(ocsd_cmd: Sequence[str]) -> list[str]:
    try:
        probe = subprocess.run(
            [*ocsd_cmd[:1], "-c", "import ocsd, sys; print(ocsd.__file__)"],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=tempfile.gettempdir(),
        )
        where = probe.stdout.strip() or probe.stderr.strip()[-200:]
    except (OSError, subprocess.TimeoutExpired) as exc:
        where = f"unknown ({exc})"
    try:
        revision = subprocess.run(
            ["git", "-C", str(HERE.parent), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        revision = "unknown"
    return [
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.platform()}",
        f"- ocsd: `{shlex.join(ocsd_cmd)}`, module `{where}`; repository at `{revision}`",
        f"- pinning: receiver `taskset -c {RECEIVER_CORE}`, sender `taskset -c {SENDER_CORE}`"
        + ("" if shutil.which("taskset") else " (taskset missing: NOT pinned)"),
    ]


# -- main ----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Scale benchmark of ocsd run (see the module docstring)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--groups", default="1000,5000,20000", help="N of the scale runs")
    parser.add_argument("--interval", type=int, default=10, help="interval of the scale runs, s")
    parser.add_argument("--duration", type=float, default=60.0, help="measured window, s")
    parser.add_argument("--pool", type=int, default=32, help="http-connection-pool-size")
    parser.add_argument("--timeout", type=float, default=10.0, help="http-response-timeout")
    parser.add_argument(
        "--phases", default="ceiling,scale,max,half,hang", help="which phases to run"
    )
    parser.add_argument("--ceiling-runs", type=int, default=3, help="ceiling runs (median)")
    parser.add_argument("--ceiling-duration", type=float, default=10.0, help="s per ceiling run")
    parser.add_argument(
        "--ceiling-rps", type=float, help="skip measuring the ceiling, use this requests/s"
    )
    parser.add_argument(
        "--max-loads",
        default="1.25,2.0",
        help="max-rate runs: offered load as multiples of the ceiling (interval 1 s)",
    )
    parser.add_argument("--max-duration", type=float, default=20.0, help="s per max-rate run")
    parser.add_argument("--half-interval", type=int, default=1, help="interval of the half run")
    parser.add_argument("--hang-duration", type=float, default=60.0, help="s of the hang run")
    parser.add_argument("--rss-every", type=float, default=10.0, help="RSS sample period, s")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="simulated s per wall s (e.g. 30: RSS of groups that have dialed for hours)",
    )
    parser.add_argument("--profile", type=Path, help="py-spy the largest scale run into DIR")
    parser.add_argument("--profile-seconds", type=float, default=30.0)
    parser.add_argument(
        "--ocsd-cmd",
        default=f"{shlex.quote(sys.executable)} -m ocsd",
        help="how to start ocsd (PYTHONPATH is passed through)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120.0,
        help="before each run, wait up to this many s for other processes to use < 0.25 cores",
    )
    parser.add_argument("--note", default="", help="a line for the report (what code ran)")
    parser.add_argument(
        "--output", type=Path, default=HERE.parent / "docs" / "benchmarks" / "RESULTS-scale.md"
    )
    parser.add_argument("--json", type=Path, help="also write every figure as JSON here")
    parser.add_argument(
        "--render-from",
        type=Path,
        metavar="JSON",
        help="run nothing: write the report of the figures an earlier --json kept",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--quick", action="store_true", help="a short smoke run of every phase")
    args = parser.parse_args(argv)
    if args.quick:
        args.groups, args.duration, args.ceiling_runs, args.ceiling_duration = "1000", 15.0, 1, 5.0
        args.max_loads, args.max_duration, args.hang_duration = "1.25", 10.0, 20.0
        args.interval = min(args.interval, 5)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render_from:
        write_report(Figures.from_json(json.loads(args.render_from.read_text())), args.output)
        return 0
    phases = {p.strip() for p in args.phases.split(",") if p.strip()}
    if (os.cpu_count() or 1) < 2:
        print("warning: fewer than 2 cores; receiver and sender share one", file=sys.stderr)
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {int(RECEIVER_CORE)})  # keep this script off the sender's core

    def on_sigterm(_sig: int, _frame: FrameType | None) -> None:
        raise Interrupted

    signal.signal(signal.SIGTERM, on_sigterm)
    ocsd_cmd = shlex.split(args.ocsd_cmd)
    workdir = Path(tempfile.mkdtemp(prefix="ocsd-scale-"))
    procs = Processes(workdir)
    started = time.time()
    ceiling: dict[str, Any] | None = None
    scale: list[RunResult] = []
    maxrate: list[RunResult] = []
    paced: dict[str, Any] | None = None
    half: RunResult | None = None
    hang: RunResult | None = None
    common = {
        "pool": args.pool,
        "timeout": args.timeout,
        "rss_every": args.rss_every,
        "keep": args.keep,
        "quiet_wait": args.quiet_wait,
        "time_scale": args.time_scale,
    }
    try:
        if args.ceiling_rps:
            ceiling = {"runs": [], "rps": [args.ceiling_rps], "median_rps": args.ceiling_rps}
        elif phases & {"ceiling", "max", "half", "hang"}:
            print(f"== ceiling: bare aiohttp loop, pool {args.pool}", flush=True)
            ceiling = run_ceiling(
                procs,
                workdir,
                args.pool,
                args.ceiling_duration,
                args.ceiling_runs,
                args.quiet_wait,
            )
            print(f"   median {ceiling['median_rps']:,.0f} requests/s", flush=True)
        if "scale" in phases:
            sizes = [int(n) for n in args.groups.split(",") if n.strip()]
            for n in sizes:
                scale.append(
                    run_ocsd(
                        procs,
                        workdir,
                        ocsd_cmd,
                        f"N={n:,}",
                        n,
                        args.interval,
                        args.duration,
                        profile_dir=args.profile if n == max(sizes) else None,
                        profile_s=args.profile_seconds,
                        **common,
                    )
                )
        ceiling_rps = float(ceiling["median_rps"]) if ceiling else 0.0
        if "max" in phases and ceiling_rps:
            for load in (float(k) for k in args.max_loads.split(",") if k.strip()):
                n = round(load * ceiling_rps)
                maxrate.append(
                    run_ocsd(
                        procs,
                        workdir,
                        ocsd_cmd,
                        f"max {load:g}x",
                        n,
                        1,
                        args.max_duration,
                        **common,
                    )
                )
        half_rps = ceiling_rps / 2
        if "half" in phases and ceiling_rps and not args.ceiling_rps:
            # half of what the machine sends now: its speed drifts within minutes (a
            # ceiling of 7,271/s at the start of a run, 3,635/s paced at 198 us a request
            # 10 minutes later), and half of an earlier ceiling can be all of the present one
            print("\n== ceiling again, to size the half-ceiling run", flush=True)
            now = run_ceiling(procs, workdir, args.pool, args.ceiling_duration, 1, args.quiet_wait)
            half_rps = float(now["median_rps"]) / 2
        half_groups = round(half_rps * args.half_interval)
        if "half" in phases and half_groups:
            print(f"\n== bare aiohttp loop paced to {half_rps:,.0f}/s", flush=True)
            paced = run_ceiling(
                procs,
                workdir,
                args.pool,
                args.ceiling_duration,
                1,
                args.quiet_wait,
                half_rps,
            )
            half = run_ocsd(
                procs,
                workdir,
                ocsd_cmd,
                "half ceiling",
                half_groups,
                args.half_interval,
                args.duration,
                **common,
            )
        if "hang" in phases and half_groups:
            hang = run_ocsd(
                procs,
                workdir,
                ocsd_cmd,
                "hanging receiver",
                half_groups,
                args.half_interval,
                args.hang_duration,
                hang=True,
                **common,
            )
    except (KeyboardInterrupt, Interrupted):
        print("\ninterrupted: stopping every process", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        if args.keep:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    figures = Figures(
        preamble(args, ocsd_cmd, started),
        args.interval,
        args.pool,
        ceiling,
        scale,
        maxrate,
        half,
        hang,
        paced,
    )
    write_report(figures, args.output)
    if args.json:
        args.json.write_text(json.dumps(figures.to_json(), indent=2))
    if args.profile and scale:
        for r in scale:
            if r.profile and Path(r.profile).exists():
                print(f"\nprofile of {r.label}: {r.profile}")
                for line in profile_summary(Path(r.profile)):
                    print(line)
    return 0


@dataclass
class Figures:
    """Everything a report is made of; what ``--json`` keeps and ``--render-from`` reads."""

    preamble: list[str]
    interval: int
    pool: int
    ceiling: dict[str, Any] | None
    scale: list[RunResult]
    maxrate: list[RunResult]
    half: RunResult | None
    hang: RunResult | None
    paced: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["max"] = data.pop("maxrate")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Figures:
        def result(run: dict[str, Any] | None) -> RunResult | None:
            return None if run is None else RunResult(**run)

        return cls(
            preamble=data["preamble"],
            interval=data["interval"],
            pool=data["pool"],
            ceiling=data["ceiling"],
            scale=[RunResult(**r) for r in data["scale"]],
            maxrate=[RunResult(**r) for r in data["max"]],
            half=result(data["half"]),
            hang=result(data["hang"]),
            paced=data["paced"],
        )


def write_report(figures: Figures, output: Path) -> None:
    """Write the report of a run's figures to ``output`` (and print it)."""
    report = render(figures)
    print("\n" + report)
    output.write_text(report)
    print(f"written to {output}")


def preamble(args: argparse.Namespace, ocsd_cmd: Sequence[str], started: float) -> list[str]:
    """The report's first lines: when, the command, the machine, the code, the settings."""
    command = shlex.join(["python", "bench/scale.py", *sys.argv[1:]])
    return [
        "# Scale benchmark results (bench/scale.py)",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}: `{command}`",
        "",
        *environment(ocsd_cmd),
        *([f"- {args.note}"] if args.note else []),
        f"- pool {args.pool}, http-response-timeout {args.timeout:g} s, logging on "
        "(log-format json, 81000/81001 lines to a file), dialing simulation running "
        f"(predictive, 10 agents, 1,000 records per group, time-scale {args.time_scale:g})",
        "",
    ]


def render(figures: Figures) -> str:
    """The report, in Markdown."""
    ceiling, scale, maxrate, half, hang, paced = (
        figures.ceiling,
        figures.scale,
        figures.maxrate,
        figures.half,
        figures.hang,
        figures.paced,
    )
    interval, pool = figures.interval, figures.pool
    out = list(figures.preamble)
    rows, _facts = summary(figures)
    out += ["## Targets", "", *rows, ""]
    if ceiling:
        runs = ", ".join(f"{r:,.0f}" for r in ceiling["rps"])
        detail = ceiling["runs"][0] if ceiling["runs"] else {}
        out += [
            "## Ceiling: bare aiohttp client loop",
            "",
            f"Median **{ceiling['median_rps']:,.0f} requests/s** (runs: {runs}); pool "
            f"{pool}, body {detail.get('body_bytes', '?')} bytes, "
            f"{detail.get('cpu_us_per_request', '?')} us CPU per request (first run).",
            "",
        ]
    if scale:
        out += [f"## Scale runs (interval {interval} s)", "", *run_table(scale), ""]
    if maxrate:
        out += ["## Maximum sustained rate (interval 1 s, offered above capacity)", ""]
        out += [*run_table(maxrate), ""]
    extra = [r for r in (half, hang) if r is not None]
    if extra:
        out += ["## Half the ceiling, and a receiver that hangs", "", *run_table(extra), ""]
        if paced and paced["runs"]:
            run = paced["runs"][0]
            out += [
                f"The bare aiohttp loop paced to the same {run['rate']:,.0f} requests/s needs "
                f"{run['cpu_us_per_request']} us CPU per request ({run['cpu_s'] / run['seconds']:.0%}"
                " of its core): the baseline for ocsd's CPU per notification at this load.",
                "",
            ]
        if hang is not None:
            samples = ", ".join(f"{t:.0f} s: {_mib(r)}" for t, r in hang.rss_samples)
            out += [f"RSS over the hang run: {samples}.", ""]
    return "\n".join(out)


def profile_summary(path: Path, top: int = 25) -> list[str]:
    """Self and inclusive time per function from py-spy's raw (collapsed) output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_short(f) for f in stack.split(";")]
        if frames:
            own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return ["(empty profile)"]
    lines = [f"{total} samples", "self:"]
    lines += [f"  {n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    lines.append("inclusive:")
    lines += [f"  {n / total:6.1%}  {f}" for f, n in inclusive.most_common(top)]
    return lines


def _short(frame: str) -> str:
    """``func (path/to/file.py:123)`` -> ``func (file.py)``; line numbers dropped."""
    match = re.match(r"(?P<func>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$", frame)
    if not match:
        return frame
    return f"{match['func']} ({Path(match['file']).name})"


if __name__ == "__main__":
    sys.exit(main())
