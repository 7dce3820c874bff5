"""End to end: a reload never loses campaign state to a file that is not whole, and a
reload that cannot be applied leaves the daemon as it was (issue #13, items 1 and 6).

Editors that save in place truncate the file, then write it: the daemon must not act
on the empty or half-written file it may see in between. A reload whose notifier cannot
be built is refused like a configuration error, and the next good edit applies.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path

import pytest
from support.ini import GROUP_A, GROUP_D, group_d, render_ini

pytestmark = pytest.mark.e2e

RELOADED = "configuration reloaded"
REFUSED = "configuration refused; still running on the previous one"


def _event(*names):
    return lambda line: isinstance(line, dict) and line.get("event") in names


def _periodic(dbid, since=0.0):
    return lambda r: r.periodic and r.dbid == str(dbid) and r.at > since


def _force_unloads(receiver):
    return [r for r in receiver.received if r.action == 29]


def _write_in_place(path: Path, text: str) -> None:
    """Save as an editor that writes in place does: truncate, then write."""
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)


def _write_slowly(path: Path, text: str, pieces: int = 30, pause: float = 0.05) -> None:
    """Truncate, then write ``text`` a piece at a time (a slow writer, over ~1.5 s: the
    daemon looks at the file every second, so it sees it half-written)."""
    data = text.encode("utf-8")
    step = -(-len(data) // pieces)
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        for start in range(0, len(data), step):
            os.write(fd, data[start : start + step])
            time.sleep(pause)
    finally:
        os.close(fd)


def _sighups(proc, count: int, pause: float) -> None:
    """``count`` SIGHUPs ``pause`` s apart, from a thread: steady whatever the loop does."""
    for _ in range(count):
        proc.send_signal(signal.SIGHUP)
        time.sleep(pause)


def _counted(metrics: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    match = re.search(rf"^{name}(?:_total)?\{{{re.escape(wanted)}\}} (\S+)$", metrics, re.M)
    return float(match[1]) if match else 0.0


async def _statuses(control):
    status, listing = await control.request("GET", "/campaigngroups")
    assert status == 200, listing
    return {g["dbid"]: g["status"]["code"] for g in listing["campaigngroups"]}


async def _stays_ready(control, seconds: float) -> list[int]:
    """/readyz answers over ``seconds`` (every 0.1 s)."""
    answers = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        answers.append((await control.request("GET", "/readyz"))[0])
        await asyncio.sleep(0.1)
    return answers


# -- item 1: an empty or half-written file ------------------------------------------------


@pytest.mark.parametrize("trigger", ["SIGHUP", "file changed"])
async def test_an_emptied_file_is_refused_and_no_group_loses_its_state(
    receiver, ini_sections, write_ini, ocsd_process, control_for, trigger
):
    sections = ini_sections(receiver.url, interval=1)
    config = write_ini(sections)
    async with ocsd_process(config) as proc:
        control = control_for(proc.control_url)
        await control.ok(101, "LoadCampaign")
        await control.ok(101, "StartDialing")
        await control.ok(102, "LoadCampaign")
        await receiver.wait_for(3, lambda r: not r.periodic)
        before = await _statuses(control)

        _write_in_place(config, "")  # the editor truncated the file ...
        if trigger == "SIGHUP":
            proc.send_signal(signal.SIGHUP)
        (refused,) = await proc.wait_for_line(_event(REFUSED), within=6)
        emptied = time.monotonic()
        during = await _statuses(control)
        await receiver.wait_for(1, _periodic(101, since=emptied), within=3)  # still sending

        _write_in_place(config, render_ini(sections))  # ... and writes it back
        if trigger == "SIGHUP":
            proc.send_signal(signal.SIGHUP)
        (line,) = await proc.wait_for_line(_event(RELOADED), within=6)
        after = await _statuses(control)
        _, metrics = await control.request("GET", "/metrics")
        await receiver.settle(0.3)
        code = await proc.stop()
    assert code == 0, proc.stderr_text

    assert before == {101: 5, 102: 4, 103: 0}
    assert during == before, "the empty file was applied"
    assert after == before, "the groups lost their state"
    assert refused["level"] == "error" and refused["trigger"] == trigger
    assert str(config) in refused["error"] and "empty" in refused["error"], refused
    assert line["changed"] == ["nothing"], line
    assert _force_unloads(receiver) == []
    assert len(proc.json_lines(event=REFUSED)) == 1, "refused once, not at every look"
    assert _counted(metrics, "ocsd_config_reloads", result="refused") == 1.0


async def test_a_file_written_slowly_is_read_once_when_it_is_whole(
    receiver, ini_sections, write_ini, ocsd_process, control_for
):
    config = write_ini(ini_sections(receiver.url, interval=1))
    async with ocsd_process(config) as proc:
        control = control_for(proc.control_url)
        await control.ok(101, "LoadCampaign")
        await control.ok(102, "LoadCampaign")
        await receiver.wait_for(2, lambda r: not r.periodic)

        edited = ini_sections(receiver.url, interval=2, **group_d("progressive"))
        await asyncio.to_thread(_write_slowly, config, render_ini(edited))
        (line,) = await proc.wait_for_line(_event(RELOADED), within=6)
        await asyncio.sleep(2.5)  # another look or two at the (now whole) file
        statuses = await _statuses(control)
        code = await proc.stop()
    assert code == 0, proc.stderr_text

    reloads = proc.json_lines(event=RELOADED) + proc.json_lines(event=REFUSED)
    assert reloads == [line], f"acted on the file before it was whole: {reloads}"
    assert f"group {GROUP_D} added" in line["changed"]
    assert "campaigngroup-states-interval" in line["changed"]
    assert statuses == {101: 4, 102: 4, 103: 0, 104: 0}
    assert _force_unloads(receiver) == []


async def test_a_file_without_groups_is_refused_while_groups_are_loaded(
    receiver, ini_sections, write_ini, rewrite_ini, ocsd_process, control_for
):
    sections = ini_sections(receiver.url, interval=1)
    config = write_ini(sections)
    no_groups = {name: options for name, options in sections.items() if ":" not in name}
    async with ocsd_process(config) as proc:
        control = control_for(proc.control_url)
        await control.ok(101, "LoadCampaign")
        await receiver.wait_for(1, receiver.state_of(101))

        rewrite_ini(config, no_groups)
        proc.send_signal(signal.SIGHUP)
        (refused,) = await proc.wait_for_line(_event(REFUSED), within=6)
        kept = await _statuses(control)

        # the documented way: unload them first, then the same file applies
        await control.ok(101, "UnloadCampaign")
        proc.send_signal(signal.SIGHUP)
        (line,) = await proc.wait_for_line(_event(RELOADED), within=6)
        status, listing = await control.request("GET", "/campaigngroups")
        code = await proc.stop()
    assert code == 0, proc.stderr_text

    assert kept == {101: 4, 102: 0, 103: 0}
    assert "no campaign group" in refused["error"] and GROUP_A in refused["error"], refused
    assert f"group {GROUP_A} removed" in line["changed"], line
    assert status == 200 and listing["campaigngroups"] == []
    assert _force_unloads(receiver) == [], "nothing was loaded any more: nothing to unload"


@pytest.mark.parametrize("change", ["sending switched off", "URI and tenant changed"])
async def test_a_removed_group_is_force_unloaded_by_the_configuration_in_force(
    receiver, make_receiver, ini_sections, write_ini, rewrite_ini, ocsd_process, control_for, change
):
    second = await make_receiver()
    config = write_ini(ini_sections(receiver.url, interval=1))
    async with ocsd_process(config) as proc:
        control = control_for(proc.control_url)
        await control.ok(101, "LoadCampaign")
        await control.ok(101, "StartDialing")
        await receiver.wait_for(2, receiver.state_of(101))

        if change == "sending switched off":
            edited = ini_sections(None, interval=1)
        else:
            edited = ini_sections(second.url, interval=1, tenant={"name": "Other Tenant"})
        del edited[f"campaign-group:{GROUP_A}"]
        rewrite_ini(config, edited)
        proc.send_signal(signal.SIGHUP)
        (line,) = await proc.wait_for_line(_event(RELOADED), within=6)
        (removed,) = await receiver.wait_for(1, lambda r: r.action == 29, within=4)
        await receiver.settle(0.5)
        code = await proc.stop()
    assert code == 0, proc.stderr_text

    assert f"group {GROUP_A} removed" in line["changed"], line
    assert (removed.dbid, removed.status, removed.actor) == ("101", 0, 3)
    assert removed.json["GSW_TENANT_NAME"] == "Test Tenant", "the tenant in force then"
    assert [r.action for r in receiver.matching(receiver.state_of(101))] == [7, 9, 29]
    assert _force_unloads(second) == [], "sent with the configuration that came after"


async def test_a_burst_of_sighups_gives_one_or_two_reloads(
    receiver, make_receiver, ini_sections, write_ini, rewrite_ini, ocsd_process, control_for
):
    second = await make_receiver()
    config = write_ini(ini_sections(receiver.url, interval=1))
    async with ocsd_process(config) as proc:
        control = control_for(proc.control_url)
        await control.ok(101, "LoadCampaign")
        rewrite_ini(config, ini_sections(second.url, interval=1))
        edited = time.time() - 10  # saved a while ago: each reload reads it at once
        os.utime(config, (edited, edited))
        await asyncio.to_thread(_sighups, proc, 50, 0.02)  # 50 SIGHUPs within a second
        await proc.wait_for_line(_event(RELOADED), within=6)
        await asyncio.sleep(3)  # time for every reload the burst may still cause
        await second.wait_for(1, _periodic(101), within=3)
        status, ready = await control.request("GET", "/readyz")
        code = await proc.stop()
    assert code == 0, proc.stderr_text

    reloads = proc.json_lines(event=RELOADED)
    assert 1 <= len(reloads) <= 2, f"{len(reloads)} reloads for one burst: {reloads}"
    assert "campaigngroup-states-uri" in reloads[0]["changed"]
    assert proc.json_lines(event=REFUSED) == []
    assert status == 200, ready


# -- item 6: a reload whose delivery cannot be set up --------------------------------------


def _unusable_delivery(failure: str, tmp_path: Path) -> dict[str, dict[str, str]]:
    """Delivery options that load but cannot be set up when the notifier is built."""
    if failure == "bad port":
        return {"OCServer": {"campaigngroup-states-uri": "http://127.0.0.1:99999/ocs"}}
    # an outbox that cannot be created: its lock file's place is taken by a directory
    # (a chmod'ed read-only directory would do the same, but not for root)
    outbox = tmp_path / "outbox.sqlite3"
    Path(f"{outbox}.lock").mkdir(exist_ok=True)
    return {
        "ocsd": {
            "delivery-mode": "reliable",
            "outbox-path": str(outbox),
            "dead-letter-path": str(tmp_path / "dead.jsonl"),
        }
    }


@pytest.mark.parametrize("trigger", ["SIGHUP", "file changed"])
@pytest.mark.parametrize("failure", ["bad port", "outbox cannot be created"])
async def test_a_reload_whose_delivery_cannot_be_built_is_refused_and_the_next_edit_applies(
    receiver,
    make_receiver,
    ini_sections,
    write_ini,
    rewrite_ini,
    ocsd_process,
    control_for,
    tmp_path,
    trigger,
    failure,
):
    second = await make_receiver()
    config = write_ini(ini_sections(receiver.url, interval=1))
    async with ocsd_process(config) as proc:
        control = control_for(proc.control_url)
        await control.ok(101, "LoadCampaign")
        await receiver.wait_for(1, _periodic(101), within=3)

        rewrite_ini(
            config, ini_sections(receiver.url, interval=1, **_unusable_delivery(failure, tmp_path))
        )
        if trigger == "SIGHUP":
            proc.send_signal(signal.SIGHUP)
        (refused,) = await proc.wait_for_line(_event(REFUSED), within=6)
        seen = time.monotonic()
        ready = await _stays_ready(control, 2.0)  # past the watcher's next looks
        await receiver.wait_for(1, _periodic(101, since=seen), within=3)  # still sending
        _, metrics = await control.request("GET", "/metrics")

        rewrite_ini(config, ini_sections(second.url, interval=1))
        if trigger == "SIGHUP":
            proc.send_signal(signal.SIGHUP)
        (applied,) = await proc.wait_for_line(_event(RELOADED), within=6)
        await second.wait_for(1, _periodic(101), within=3)
        after = (await control.request("GET", "/readyz"))[0]
        code = await proc.stop()
    assert code == 0, proc.stderr_text

    assert refused["level"] == "error" and refused["trigger"] == trigger
    reason = refused["error"]
    assert ("99999" in reason) if failure == "bad port" else ("outbox" in reason), reason
    assert set(ready) == {200}, f"/readyz while refused: {ready}"
    assert _counted(metrics, "ocsd_config_reloads", result="refused") == 1.0
    assert "campaigngroup-states-uri" in applied["changed"], applied
    assert after == 200
    assert len(proc.json_lines(event=REFUSED)) == 1, "logged once"
    assert proc.json_lines(event="task died") == []
    assert "Traceback" not in proc.stderr_text + proc.stdout_text
    assert "never retrieved" not in proc.stderr_text


# -- the same class: a file that would fill the memory -------------------------------------


def _peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


async def test_a_runaway_file_is_refused_without_being_read_whole(
    receiver, ini_sections, write_ini, ocsd_process, control_for
):
    """A generator gone wild leaves a 1 GiB configuration: the watcher and the reload
    read at most the 64 MiB ocsd accepts, refuse it naming the limit, and keep running."""
    sections = ini_sections(receiver.url, interval=1)
    config = write_ini(sections)
    async with ocsd_process(config) as proc:
        control = control_for(proc.control_url)
        await control.ok(101, "LoadCampaign")
        await receiver.wait_for(1, lambda r: not r.periodic)
        before_peak = _peak_rss_mib(proc.pid)
        before = await _statuses(control)

        os.truncate(config, 2**30)  # sparse: costs no disk, reads as 1 GiB of zeros
        proc.send_signal(signal.SIGHUP)
        (refused,) = await proc.wait_for_line(_event(REFUSED), within=20)
        await asyncio.sleep(2.5)  # the watcher looks at the file again, twice
        peak = _peak_rss_mib(proc.pid)
        during = await _statuses(control)

        _write_in_place(config, render_ini(sections))
        proc.send_signal(signal.SIGHUP)
        await proc.wait_for_line(_event(RELOADED), within=10)
        code = await proc.stop()
    assert code == 0, proc.stderr_text

    assert "larger than 64 MiB" in refused["error"], refused
    assert during == before
    assert peak - before_peak < 150, f"peak memory grew by {peak - before_peak:.0f} MiB"
