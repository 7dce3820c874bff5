"""End to end: ``check-config`` refuses exactly what ``run`` cannot run (issue 13).

Values that parsed but could not run (``http-response-timeout = inf`` silently stopped
delivery, an interval of 1e24 or a URI port of 99999 crashed ``run`` with a traceback,
``stats-window = 1e-30`` froze the event loop so SIGTERM went unanswered, a day-long
interval took 655 MB): ``check-config`` and ``run`` as real subprocesses refuse each with
the same one line, a running daemon refuses each on reload and keeps its configuration,
and the values at the ends of the ranges run and stop on SIGTERM.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from support.ini import RANGE_MISTAKES, make_sections, render_ini, with_line

pytestmark = pytest.mark.e2e

REFUSED = "configuration refused; still running on the previous one"
PREFIX = "ocsd: configuration error: "
#: At most this many ocsd processes at once (a busy 2-core machine).
AT_ONCE = 4
#: The mistakes also given through an OCSD_* variable.
FROM_ENVIRONMENT = {
    "timeout-inf", "interval-huge", "uri-port", "stats-window-tiny", "seed-huge", "control-host-empty"
}  # fmt: skip


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


async def test_check_config_and_run_refuse_each_value_alike(tmp_path, run_ocsd, ocsd_env) -> None:
    """Every mistake through the file, and those of [OCServer] and [ocsd] through the
    environment too: both commands exit 2 with the same single line, no traceback."""
    valid = render_ini(make_sections("http://127.0.0.1:9/events"))
    cases: list[tuple[str, Path, dict[str, str], str]] = []
    for name, section, line, fragment in RANGE_MISTAKES:
        path = tmp_path / f"{name}.ini"
        path.write_text(with_line(valid, section, line)[0], encoding="utf-8")
        cases.append((name, path, ocsd_env(), fragment))
        option, _, value = line.partition("=")
        if name in FROM_ENVIRONMENT:
            variable = "OCSD_" + option.strip().upper().replace("-", "_")
            plain = tmp_path / f"{name}-env.ini"
            plain.write_text(valid, encoding="utf-8")
            cases.append((f"{name}-env", plain, ocsd_env(**{variable: value.strip()}), fragment))
    limit = asyncio.Semaphore(AT_ONCE)

    async def both(path: Path, env: dict[str, str]) -> list[Any]:
        """Each command's outcome, or the AssertionError of one that did not end (it was
        killed by its pid: before the fix, run went on with most of these values)."""
        async with limit:
            return await asyncio.gather(
                run_ocsd("check-config", "--config", str(path), env=env, within=15),
                run_ocsd("run", "--config", str(path), env=env, within=15),
                return_exceptions=True,
            )

    results = await asyncio.gather(*(both(path, env) for _, path, env, _ in cases))
    for (name, path, _env, fragment), (check, run) in zip(cases, results, strict=True):
        for done in (check, run):
            assert not isinstance(done, BaseException), (name, done)
            assert done.returncode == 2, (name, done.stdout[-500:], done.stderr)
            assert "Traceback" not in done.stdout + done.stderr, (name, done.stderr)
        lines = check.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(PREFIX), (name, check.stderr)
        assert run.stderr.strip() == check.stderr.strip(), (name, run.stderr, check.stderr)
        assert fragment in lines[0], (name, lines[0])
        if name.endswith("-env"):
            assert lines[0].startswith(f"{PREFIX}environment OCSD_"), (name, lines[0])
        else:
            assert lines[0].startswith(f"{PREFIX}{path}:"), (name, lines[0])


#: Mistakes a running daemon is given to reload, each after the other.
RELOADED_MISTAKES = ["timeout-inf", "uri-port", "interval-huge", "stats-window-tiny", "seed-huge"]


async def test_a_reload_refuses_each_value_and_keeps_running(
    receiver, write_ini, rewrite_ini, ocsd_process, control_for, run_ocsd
) -> None:
    """The same line as check-config's, logged once per edit (the file watcher notices
    each); the previous configuration goes on sending its periodic notifications."""
    valid = render_ini(make_sections(receiver.url, interval=1))
    config = write_ini(valid)
    mistakes = {m[0]: m for m in RANGE_MISTAKES}
    async with ocsd_process(config) as proc:
        control = control_for(proc.control_url)
        await control.ok(101, "LoadCampaign")
        expected = []
        for count, name in enumerate(RELOADED_MISTAKES, start=1):
            _, section, line, _ = mistakes[name]
            rewrite_ini(config, with_line(valid, section, line)[0])
            refused = await proc.wait_for_line(
                lambda r: isinstance(r, dict) and r.get("event") == REFUSED, n=count, within=15
            )
            check = await run_ocsd("check-config", "--config", str(config))
            expected.append(check.stderr.strip().removeprefix(PREFIX))
            assert refused[-1]["error"] == expected[-1], (refused[-1], check.stderr)
        since = time.monotonic()
        await receiver.wait_for(2, lambda r: r.periodic and r.dbid == "101" and r.at > since)
        status, health = await control.request("GET", "/healthz")
        code = await proc.stop()
    assert code == 0, proc.stderr_text
    assert status == 200 and health["status"] == "ok", health
    assert "Traceback" not in proc.stdout_text + proc.stderr_text
    assert [r["error"] for r in proc.json_lines(event=REFUSED)] == expected


async def test_the_smallest_stats_window_at_the_largest_time_scale_stops_on_sigterm(
    receiver, write_ini, ocsd_process
) -> None:
    """stats-window = 1e-30 froze the loop: SIGTERM was never answered. At the ends of
    the ranges (1 s of statistics, 100,000 simulated seconds a second) every group runs
    and the daemon stops on SIGTERM well within its grace."""
    sections = make_sections(receiver.url, interval=1)
    sections["ocsd"].update({"stats-window": 1, "time-scale": 100_000})
    async with ocsd_process(write_ini(sections), args=["--start-all"]) as proc:
        await receiver.wait_for(3, lambda r: r.periodic, within=10)
        started = time.monotonic()
        code = await proc.stop()
        took = time.monotonic() - started
    assert code == 0, proc.stderr_text
    assert took < 8, f"SIGTERM took {took:.1f} s"
    assert "Traceback" not in proc.stdout_text + proc.stderr_text


async def test_a_day_long_interval_keeps_memory_flat(receiver, write_ini, ocsd_process) -> None:
    """86,400 s cut into 10 ms slots was 8,640,000 lists: 655 MB within a second of the
    start. The slots are capped; memory stays where a 10 s interval has it."""
    sections = make_sections(receiver.url, interval=86_400)
    async with ocsd_process(write_ini(sections), args=["--start-all"]) as proc:
        await receiver.wait_for(6, lambda r: not r.periodic, within=10)  # loaded and started
        peak = 0
        for _ in range(10):  # 2 s
            peak = max(peak, _rss_kib(proc.pid))
            await asyncio.sleep(0.2)
        code = await proc.stop()
    assert code == 0, proc.stderr_text
    assert peak < 200_000, f"{peak:,} KiB"


async def test_ocsd_demo_checks_its_options_with_the_same_ranges(run_ocsd) -> None:
    done = await run_ocsd("demo", "--interval", str(10**24), "--port", "0", "--control-port", "0")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == (
        f"ocsd demo: --interval: {10**24} is out of range; "
        "allowed: a whole number from 0 to 86400 seconds (0 turns them off)"
    )
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize("seconds", ["inf", "nan", "-1"])
async def test_ocsd_ctl_checks_its_timeout(run_ocsd, seconds: str) -> None:
    """urllib raised on each (OverflowError, ValueError): a traceback."""
    done = await run_ocsd("ctl", "--url", "http://127.0.0.1:9", "--timeout", seconds, "health")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() == (
        f"ocsd ctl: --timeout: {float(seconds)!r} is out of range; allowed: 0.1 to 3600 seconds"
    )
