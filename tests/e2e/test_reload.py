"""End to end: live reconfiguration of a running ``ocsd run`` (issue #4).

The configuration file is edited (replaced atomically, as editors save) and the daemon
is told by SIGHUP, or notices the change on disk by itself (it looks every second).
It applies the differences without a restart: loaded groups stay as they are.
"""

from __future__ import annotations

import signal
import time

import pytest
from support.ini import GROUP_D, group_d

pytestmark = pytest.mark.e2e

GROUP_A = "Renewals@Retention Team"  # 101
RELOADED = "configuration reloaded"
REFUSED = "configuration refused; still running on the previous one"


def _event(name):
    return lambda line: isinstance(line, dict) and line.get("event") == name


def _periodic(dbid, since=0.0):
    return lambda r: r.periodic and r.dbid == str(dbid) and r.at > since


async def _reload(proc, trigger, n=1):
    """Trigger a reload (SIGHUP, or nothing: the file watcher) and wait for its log line."""
    if trigger == "SIGHUP":
        proc.send_signal(signal.SIGHUP)
    lines = await proc.wait_for_line(_event(RELOADED), n=n, within=4)
    return lines[n - 1], time.monotonic()


@pytest.mark.parametrize("trigger", ["SIGHUP", "file changed"])
async def test_interval_and_uri_change_without_restart(
    receiver,
    make_receiver,
    ini_sections,
    write_ini,
    rewrite_ini,
    ocsd_process,
    control_for,
    trigger,
):
    second = await make_receiver()
    config = write_ini(ini_sections(receiver.url, interval=2))
    async with ocsd_process(config) as proc:
        control = control_for(proc.control_url)
        await control.ok(101, "LoadCampaign")
        await control.ok(101, "StartDialing")
        await receiver.wait_for(2, receiver.state_of(101))
        await receiver.wait_for(1, _periodic(101), within=3)  # the old cadence: 2 s

        rewrite_ini(config, ini_sections(second.url, interval=1))
        line, seen = await _reload(proc, trigger)

        moved = await second.wait_for(2, _periodic(101), within=4)
        view = await control.group(101)
        status, health = await control.request("GET", "/healthz")
        await receiver.settle(0.3)
        code = await proc.stop()
    assert code == 0, proc.stderr_text

    reloads = proc.json_lines(event=RELOADED)
    if trigger == "SIGHUP":
        # (the file watcher may see the edit in the instant before the signal: then it
        # reloads first and the SIGHUP reload finds nothing left to change)
        assert any(r["trigger"] == "SIGHUP" for r in reloads), reloads
    else:
        assert [r["trigger"] for r in reloads] == ["file changed"], reloads
    changed = [item for r in reloads for item in r["changed"]]
    assert "campaigngroup-states-uri" in changed and "campaigngroup-states-interval" in changed
    assert not any(item.startswith(("group ", "schedule ")) for item in changed), changed
    assert line["level"] == "info"

    # the periodic bodies moved to the new receiver, within one new interval, 1 s apart
    assert moved[0].at - seen <= 1.5, f"first body at the new URI {moved[0].at - seen:.2f} s late"
    gap = moved[1].at - moved[0].at
    assert 0.7 < gap < 1.3, f"not the new 1 s cadence (the old one was 2 s): {gap:.2f} s"
    late = receiver.matching(_periodic(101, since=seen + 0.5))
    assert late == [], f"periodic bodies still sent to the old URI: {late}"
    # no group was reloaded: no new state body anywhere, still running as before
    assert [r.action for r in receiver.matching(receiver.state_of(101))] == [7, 9]
    assert second.matching(lambda r: not r.periodic) == []
    for r in moved:
        assert (r.status, r.json["GSW_DIAL_MODE"]) == (5, 1)
    assert view["status"]["code"] == 5
    assert status == 200 and health["reloads"] == len(reloads)
    new_uri_lines = [
        ln for ln in proc.json_lines(msgid=81001) if ln["uri"] == second.url
    ]  # the 81001 log lines name the new URI
    assert len(new_uri_lines) >= 2


async def test_a_broken_edit_is_refused_and_the_old_configuration_keeps_running(
    receiver,
    make_receiver,
    ini_sections,
    write_ini,
    rewrite_ini,
    ocsd_process,
    control_for,
):
    second = await make_receiver()
    config = write_ini(ini_sections(receiver.url, interval=1))
    async with ocsd_process(config) as proc:
        control = control_for(proc.control_url)
        await control.ok(101, "LoadCampaign")
        await receiver.wait_for(1, _periodic(101), within=3)

        broken = ini_sections(second.url, interval=1)
        broken["OCServer"]["send-campaign-states"] = "true"  # a typo: unknown option
        rewrite_ini(config, broken)
        line_no = next(
            n
            for n, text in enumerate(config.read_text().splitlines(), start=1)
            if text.startswith("send-campaign-states")
        )
        (refused,) = await proc.wait_for_line(_event(REFUSED), within=4)
        seen = time.monotonic()

        # the old configuration keeps running: periodic bodies to the old URI
        await receiver.wait_for(1, _periodic(101, since=seen), within=2)
        answers = await control.ok(101, "StartDialing")
        started = await receiver.wait_for(1, lambda r: r.action == 9)
        status, health = await control.request("GET", "/healthz")
        assert second.received == [], "the refused URI was used"

        # a corrected edit is then applied
        rewrite_ini(config, ini_sections(second.url, interval=1))
        fixed, _ = await _reload(proc, "SIGHUP")
        await second.wait_for(1, _periodic(101), within=3)
        code = await proc.stop()
    assert code == 0, proc.stderr_text

    assert refused["level"] == "error"
    assert refused["trigger"] == "file changed"
    assert f"{config}:{line_no}" in refused["error"], refused
    assert "send-campaign-states" in refused["error"]
    assert len(proc.json_lines(event=REFUSED)) == 1
    assert answers["campaigngroup"]["status"]["code"] == 5, "the control API still answers"
    assert started[0].dbid == "101"
    assert status == 200 and health["reloads"] == 0
    assert "campaigngroup-states-uri" in fixed["changed"], fixed


async def test_an_added_group_appears_not_loaded(
    receiver, ini_sections, write_ini, rewrite_ini, ocsd_process, control_for
):
    config = write_ini(ini_sections(receiver.url))
    async with ocsd_process(config) as proc:
        control = control_for(proc.control_url)
        await control.ok(101, "LoadCampaign")
        added = ini_sections(receiver.url, **group_d("progressive"))
        rewrite_ini(config, added)
        line, _ = await _reload(proc, "SIGHUP")
        status, listing = await control.request("GET", "/campaigngroups")
        loaded = await control.ok(104, "LoadCampaign")
        (body,) = await receiver.wait_for(1, receiver.state_of(104))
        view_a = await control.group(101)
        code = await proc.stop()
    assert code == 0, proc.stderr_text

    assert f"group {GROUP_D} added" in line["changed"], line
    assert status == 200
    groups = {g["dbid"]: g for g in listing["campaigngroups"]}
    assert list(groups) == [101, 102, 103, 104]
    assert groups[104]["name"] == GROUP_D
    assert groups[104]["status"] == {"code": 0, "name": "NotLoaded"}
    assert groups[101]["status"]["code"] == 4, "a loaded group stays loaded"
    assert loaded["campaigngroup"]["status"]["code"] == 4
    assert body.json["GSW_CAMPAIGN_GROUP_NAME"] == GROUP_D
    assert [cl["GSW_CALLING_LIST_NAME"] for cl in body.json["GSW_CALLING_LISTS"]] == ["Winback_Dec"]
    assert view_a["status"]["code"] == 4
    assert [r.action for r in receiver.matching(receiver.state_of(101))] == [7]


async def test_a_removed_loaded_group_is_force_unloaded_and_disappears(
    receiver, ini_sections, write_ini, rewrite_ini, ocsd_process, control_for
):
    config = write_ini(ini_sections(receiver.url, interval=1))
    async with ocsd_process(config) as proc:
        control = control_for(proc.control_url)
        await control.ok(101, "LoadCampaign")
        await control.ok(101, "StartDialing")  # running, with calls in progress
        await control.ok(102, "LoadCampaign")
        await receiver.wait_for(3, lambda r: not r.periodic)
        sections = ini_sections(receiver.url, interval=1)
        del sections[f"campaign-group:{GROUP_A}"]
        rewrite_ini(config, sections)
        line, _ = await _reload(proc, "SIGHUP")
        (removed,) = await receiver.wait_for(1, lambda r: r.dbid == "101" and r.action == 29)
        status_one, data_one = await control.request("GET", "/campaigngroups/101")
        status_act, data_act = await control.act(101, "LoadCampaign")
        status, listing = await control.request("GET", "/campaigngroups")
        await receiver.wait_for(1, _periodic(102, since=removed.at), within=2)
        await receiver.settle(0.3)
        code = await proc.stop()
    assert code == 0, proc.stderr_text

    assert f"group {GROUP_A} removed" in line["changed"], line
    assert (removed.status, removed.actor) == (0, 3), "force unload (29) by OCS itself"
    assert removed.json["GSW_CAMPAIGN_GROUP_NAME"] == GROUP_A
    assert [r.action for r in receiver.matching(receiver.state_of(101))] == [7, 9, 29]
    assert status_one == 404 and "101" in data_one["error"]
    assert status_act == 404 and "101" in data_act["error"]
    assert status == 200
    assert [g["dbid"] for g in listing["campaigngroups"]] == [102, 103]
    late = receiver.matching(_periodic(101, since=removed.at))
    assert late == [], f"periodic bodies of a removed group: {late}"
    assert [r.action for r in receiver.matching(receiver.state_of(102))] == [7]


@pytest.mark.parametrize(
    ("section", "option", "value", "field"),
    [
        pytest.param(
            f"campaign-group:{GROUP_A}",
            "campaign",
            "Renewals 2027",
            "GSW_CAMPAIGN_NAME",
            id="campaign-name",
        ),
        pytest.param("tenant", "name", "Other Tenant", "GSW_TENANT_NAME", id="tenant-name"),
    ],
)
async def test_a_changed_name_shows_in_the_next_periodic_body(
    receiver,
    ini_sections,
    write_ini,
    rewrite_ini,
    ocsd_process,
    control_for,
    section,
    option,
    value,
    field,
):
    config = write_ini(ini_sections(receiver.url, interval=1))
    async with ocsd_process(config) as proc:
        control = control_for(proc.control_url)
        await control.ok(101, "LoadCampaign")
        (before,) = await receiver.wait_for(1, receiver.state_of(101))
        sections = ini_sections(receiver.url, interval=1)
        sections[section][option] = value
        rewrite_ini(config, sections)
        line, seen = await _reload(proc, "SIGHUP")
        (after,) = (await receiver.wait_for(1, _periodic(101, since=seen), within=2))[:1]
        view = await control.group(101)
        code = await proc.stop()
    assert code == 0, proc.stderr_text

    assert before.json[field] != value
    assert after.json[field] == value, f"{field} after the reload: {after.json[field]!r}"
    assert after.status == 4, "the group stayed loaded"
    per_body = {field, "GSW_DATE_TIME", "GSW_CAMPAIGN_GROUP_ACTION", "GSW_CAMPAIGN_GROUP_ACTOR"}
    unchanged = set(before.json) - per_body
    assert {k: after.json[k] for k in unchanged} == {k: before.json[k] for k in unchanged}
    assert [r.action for r in receiver.matching(receiver.state_of(101))] == [7]
    assert line["changed"] != ["nothing"]
    if option == "campaign":
        assert view["campaign"] == value
