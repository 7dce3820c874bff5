"""End to end: ``ocsd run --duration`` stops by itself and ends with a verdict.

A team puts ocsd in its CI to check a receiver: the run is bounded, prints a summary
table on stderr, writes it as JSON, and its exit code says whether every threshold held
(0) or one failed (4). The summary's counts are what the receiver got.
"""

from __future__ import annotations

import asyncio
import json
import signal

import pytest

pytestmark = pytest.mark.e2e

#: A run stops within this many seconds of its --duration (start-up, then the drain).
SLACK_S = 20.0


async def _exits_by_itself(proc, within: float) -> int:
    await asyncio.wait_for(proc.proc.wait(), within)
    return await proc.stop()


async def test_a_bounded_run_stops_by_itself_and_its_summary_is_what_the_receiver_got(
    receiver, ini_sections, write_ini, ocsd_process, tmp_path
):
    config = write_ini(ini_sections(receiver.url, interval=1))
    summary_file = tmp_path / "summary.json"
    args = [
        "--start-all", "--duration", "3s",
        "--threshold", "delivered_rate >= 0.99",
        "--threshold", "post_latency_p99 < 2s, post_failed_rate < 0.1%",
        "--summary-json", str(summary_file),
    ]  # fmt: skip
    async with ocsd_process(config, args=args) as proc:
        code = await _exits_by_itself(proc, 3 + SLACK_S)
    assert code == 0, proc.stderr_text
    assert proc.json_lines(event="run duration reached: stopping")

    summary = json.loads(summary_file.read_text())
    accepted = [r for r in receiver.received if r.behaviour == "ok"]
    assert accepted, "nothing was sent"
    assert summary["passed"] is True
    assert sum(summary["sent"].values()) == len(accepted)
    assert summary["sent"]["state"] == len([r for r in accepted if not r.periodic])
    assert summary["figures"]["delivered_rate"] == 1.0
    assert 3.0 <= summary["duration_s"] < 3 + SLACK_S
    assert [t["passed"] for t in summary["thresholds"]] == [True, True, True]
    assert summary["latency_s"]["all"]["p50"] <= summary["latency_s"]["all"]["max"]

    table = proc.stderr_text
    assert "ocsd run summary" in table
    assert "state: offered / sent" in table
    assert "threshold delivered_rate >= 0.99" in table and "3 of 3 thresholds held" in table


async def test_a_threshold_that_fails_gives_exit_code_4_and_says_which(
    receiver, ini_sections, write_ini, ocsd_process
):
    receiver.set_behaviour("status500")  # the receiver under test refuses everything
    config = write_ini(ini_sections(receiver.url, interval=1))
    args = ["--start-all", "--duration", "2", "--threshold", "post_failed_rate < 1%"]
    async with ocsd_process(config, args=args) as proc:
        code = await _exits_by_itself(proc, 2 + SLACK_S)
    assert code == 4, proc.stderr_text
    assert "threshold post_failed_rate < 1%" in proc.stderr_text
    assert "100 %  FAIL" in proc.stderr_text
    (line,) = proc.json_lines(event="run summary")
    assert line["passed"] is False and line["thresholds_failed"] == ["post_failed_rate < 1%"]
    assert line["failed"] == len(receiver.received) > 0


async def test_sigterm_before_the_duration_still_ends_with_the_summary(
    receiver, ini_sections, write_ini, ocsd_process
):
    config = write_ini(ini_sections(receiver.url, interval=1))
    async with ocsd_process(config, args=["--start-all", "--duration", "10m"]) as proc:
        await receiver.wait_for(4)
        code = await proc.stop(signal.SIGTERM)
    assert code == 0, proc.stderr_text
    assert "ocsd run summary" in proc.stderr_text
    assert not proc.json_lines(event="run duration reached: stopping")


async def test_the_configuration_bounds_a_run_too(receiver, ini_sections, write_ini, ocsd_process):
    sections = ini_sections(receiver.url, interval=1)
    sections["ocsd"].update(duration="1500ms", thresholds="notifications_sent >= 1")
    async with ocsd_process(write_ini(sections), args=["--start-all"]) as proc:
        code = await _exits_by_itself(proc, 1.5 + SLACK_S)
    assert code == 0, proc.stderr_text
    assert "threshold notifications_sent >= 1" in proc.stderr_text


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--duration", "10x"], {}, "'10x' is not a duration"),
        (["--duration", "0"], {}, "is out of range; allowed: 0.1 to 2592000 seconds"),
        (["--threshold", "post_latncy_p99 < 1s"], {}, "did you mean post_latency_p99?"),
        (["--threshold", "delivered_rate >= 99ms"], {}, "unit 'ms' does not fit"),
        ([], {"OCSD_THRESHOLDS": "throughput > fast"}, "expected METRIC OP VALUE"),
        ([], {"OCSD_DURATION": "soon"}, "'soon' is not a duration"),
    ],
)
async def test_a_bad_bound_is_one_line_and_exit_code_2(
    run_ocsd, ocsd_env, ini_sections, write_ini, args, env, expected
):
    config = write_ini(ini_sections("http://127.0.0.1:9/never"))
    done = await run_ocsd("run", "--config", str(config), *args, env=ocsd_env(**env))
    assert done.returncode == 2, done
    assert expected in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
