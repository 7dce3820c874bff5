"""End to end: ``[faults]`` does to a real receiver exactly what the run summary says.

One bounded run of 40 groups with every fault kind on; the receiver's requests are
matched, kind by kind, against the faults the summary and ``/metrics`` count, and the
counts are within the probabilities' bounds for the seed. The same seed hits the same
notifications in a second run.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time

import pytest
from support.ini import render_ini

pytestmark = [pytest.mark.e2e, pytest.mark.faults_injected]

GROUPS = 40
RATE = 0.08  # each fault's probability per notification
DELAY_S = 2.5
SKEW_S = -600.0
UNKNOWN = "GSW_OCSD_INJECTED_UNKNOWN_FIELD"


def _sections(uri: str, seed: int, only: str | None = None) -> str:
    sections = {
        "OCServer": {
            "send-campaigngroup-states": "true",
            "campaigngroup-states-uri": uri,
            "campaigngroup-states-interval": 1,
            "http-response-timeout": 5,
            "http-connection-pool-size": 8,
        },
        "ocsd": {"control-host": "127.0.0.1", "control-port": 0, "time-scale": 60},
        "faults": {
            "drop": RATE, "delay": RATE, "delay-time": DELAY_S, "reorder": RATE,
            "duplicate": RATE, "clock-skew": RATE, "clock-skew-time": SKEW_S,
            "unknown-field": RATE, "slow-send": RATE, "slow-send-rate": 20000, "seed": seed,
        },
    }  # fmt: skip
    if only is not None:  # this fault alone, at a rate that gives a few dozen
        faults = sections["faults"]
        for kind in (
            "drop",
            "delay",
            "reorder",
            "duplicate",
            "clock-skew",
            "unknown-field",
            "slow-send",
        ):
            faults[kind] = 0.3 if kind == only else 0
    for n in range(GROUPS):
        sections[f"calling-list:L{n}"] = {"dbid": 5000 + n, "records": 500}
        sections[f"campaign-group:G{n}@Team"] = {
            "dbid": 1000 + n, "campaign": f"C{n}", "group": "Team", "queue": "7001",
            "agents": 5, "calling-lists": f"L{n}",
        }  # fmt: skip
    return render_ini(sections)


async def _faulty_run(receiver, ocsd_process, tmp_path, seed: int, only: str | None = None):
    config = tmp_path / f"faults-{seed}-{only}.ini"
    config.write_text(_sections(receiver.url, seed, only))
    summary_file = tmp_path / f"summary-{seed}-{only}.json"
    args = ["--start-all", "--duration", "6s", "--summary-json", str(summary_file)]
    async with ocsd_process(config, args=args) as proc:
        await asyncio.wait_for(proc.proc.wait(), 60)
        code = await proc.stop()
    assert code == 0, proc.stderr_text
    return json.loads(summary_file.read_text()), proc


async def test_every_fault_reaches_the_receiver_as_the_summary_counts_it(
    receiver, ocsd_process, tmp_path
):
    wall_minus_monotonic = time.time() - time.monotonic()
    summary, proc = await _faulty_run(receiver, ocsd_process, tmp_path, seed=7)
    injected = summary["faults_injected"]
    offered = sum(summary["offered"].values())
    assert offered > 250, summary["offered"]
    for kind in (
        "drop",
        "delay",
        "reorder",
        "duplicate",
        "clock-skew",
        "unknown-field",
        "slow-send",
    ):
        # binomial(offered, RATE), drop excluding the others: generous bounds, fixed seed
        assert 0.3 * RATE * offered <= injected.get(kind, 0) <= 2.0 * RATE * offered, (
            kind,
            injected,
        )
    lines = collections.Counter(line["fault"] for line in proc.json_lines(event="fault injected"))
    assert lines == injected, "one log line per injected fault"

    received = receiver.received
    copies = collections.Counter(r.raw for r in received)
    assert sum(count - 1 for count in copies.values()) == injected["duplicate"]
    first_arrival: dict[bytes, float] = {}
    for r in received:
        first_arrival.setdefault(r.raw, r.at + wall_minus_monotonic)
    unique = [(json.loads(raw), at) for raw, at in first_arrival.items()]
    assert sum(UNKNOWN in body for body, _at in unique) == injected["unknown-field"]
    lags = [at - float(body["GSW_DATE_TIME"]) for body, at in unique]
    skewed = [lag for lag in lags if lag > -SKEW_S / 2]
    assert len(skewed) == injected["clock-skew"]
    unskewed = [lag + SKEW_S if lag > -SKEW_S / 2 else lag for lag in lags]
    assert len([lag for lag in unskewed if lag > DELAY_S - 0.3]) == injected["delay"]
    chunked = [r for r in received if r.headers.get("Transfer-Encoding") == "chunked"]
    assert len(chunked) == injected["slow-send"]
    failed = summary["failed"]
    dropped = sum(reasons.get("fault injected: drop", 0) for reasons in failed.values())
    assert dropped == injected["drop"]
    assert sum(summary["sent"].values()) == len(copies), "every other notification arrived"


async def test_a_reordered_notification_arrives_after_its_groups_next_one(
    receiver, ocsd_process, tmp_path
):
    summary, _proc = await _faulty_run(receiver, ocsd_process, tmp_path, seed=3, only="reorder")
    injected = summary["faults_injected"]["reorder"]
    assert injected >= 20
    newest: dict[str, float] = {}
    late = 0
    for r in receiver.received:
        at = float(r.json["GSW_DATE_TIME"])
        late += at < newest.get(r.dbid, 0.0)
        newest[r.dbid] = max(at, newest.get(r.dbid, 0.0))
    # each one held back arrives after its group's next one; a group's last one may still
    # be held when the run ends, and is posted then, after nothing newer
    assert injected - GROUPS <= late <= injected
    assert sum(summary["sent"].values()) == len(receiver.received), "none lost"


async def test_the_same_seed_hits_the_same_notifications(make_receiver, ocsd_process, tmp_path):
    first, second = await make_receiver(), await make_receiver()
    _one, proc_one = await _faulty_run(first, ocsd_process, tmp_path, seed=11)
    _two, proc_two = await _faulty_run(second, ocsd_process, tmp_path, seed=11)

    def hits(proc):
        return {
            (line["dbid"], line["notification"], line["fault"])
            for line in proc.json_lines(event="fault injected")
        }

    common = min(max(n for _d, n, _f in hits(proc_one)), max(n for _d, n, _f in hits(proc_two)))
    assert {h for h in hits(proc_one) if h[1] <= common - 1} == {
        h for h in hits(proc_two) if h[1] <= common - 1
    }
