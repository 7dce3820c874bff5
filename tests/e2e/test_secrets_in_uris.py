"""No credential of the receiver's URI reaches a log line, an error, /metrics or an answer.

The real daemon as a subprocess, a real receiver on 127.0.0.1: a scheme-less URI with a
password in a configuration error (check-config, run, the environment), and a URI with
``user:password@``, a ``;token=`` path parameter, a ``?key=`` query value and an
``#access_token=`` fragment through a whole run, the failure paths included.
"""

from __future__ import annotations

import aiohttp

PASSWORD = "S3cretPW"
SECRETS = ("S3cretPW", "PathTok3n", "QueryK3y", "FragTok3n")


async def test_a_scheme_less_uri_with_a_password_is_masked_in_the_error(
    ini_sections, write_ini, run_ocsd, ocsd_env
):
    uri = f"admin:{PASSWORD}@127.0.0.1:27080/ocs"
    config = write_ini(ini_sections(uri))
    for command in ("check-config", "run"):
        result = await run_ocsd(command, "--config", str(config), within=15)
        assert result.returncode == 2, result.stderr
        assert "campaigngroup-states-uri" in result.stderr
        assert "***@127.0.0.1:27080/ocs" in result.stderr
        assert PASSWORD not in result.stdout + result.stderr
    no_uri = write_ini(ini_sections(None), name="no-uri.ini")
    env = ocsd_env(OCSD_CAMPAIGNGROUP_STATES_URI=uri, OCSD_SEND_CAMPAIGNGROUP_STATES="true")
    result = await run_ocsd("check-config", "--config", str(no_uri), env=env)
    assert result.returncode == 2
    assert "OCSD_CAMPAIGNGROUP_STATES_URI" in result.stderr
    assert PASSWORD not in result.stdout + result.stderr


async def test_path_parameter_query_and_fragment_secrets_are_never_shown(
    receiver, ini_sections, write_ini, ocsd_process, control_for, run_ocsd
):
    uri = receiver.url_for(
        "/ocs;token=PathTok3n?key=QueryK3y&site=paris#access_token=FragTok3n",
        userinfo=f"admin:{PASSWORD}",
    )
    config = write_ini(ini_sections(uri, interval=1))
    receiver.queue_behaviours("ok", "status500", "close")  # the failure paths are logged too
    async with ocsd_process(config) as proc:
        control = control_for(proc.control_url)
        await control.ok(101, "LoadCampaign")
        await control.ok(101, "StartDialing")
        await receiver.wait_for(4)
        await proc.wait_for_line(lambda line: isinstance(line, dict) and "reason" in line, n=2)
        answers = []
        async with aiohttp.ClientSession() as session:
            for path in ("/metrics", "/campaigngroups", "/healthz", "/readyz", "/deadletters"):
                async with session.get(proc.control_url + path) as response:
                    answers.append(await response.text())
        code = await proc.stop()
    checked = await run_ocsd("check-config", "--config", str(config))

    assert code == 0
    assert checked.returncode == 0, checked.stderr
    first = receiver.received[0]
    assert first.path == "/ocs;token=PathTok3n"  # the receiver got the URI as configured
    shown = (proc.stdout_text, proc.stderr_text, checked.stdout, checked.stderr, *answers)
    for output in shown:
        for secret in SECRETS:
            assert secret not in output, f"{secret} shown in {output[:300]}"
    assert "/ocs;token=***?key=***&site=paris#access_token=***" in checked.stdout
    assert "***@127.0.0.1" in proc.stdout_text


async def test_ocsd_ctl_masks_the_password_of_its_url(run_ocsd, refusing_uri):
    base = refusing_uri.replace("http://", f"http://admin:{PASSWORD}@").rsplit("/", 1)[0]
    result = await run_ocsd("ctl", "--url", base, "--timeout", "2", "status")
    assert result.returncode == 3
    assert "cannot reach the control API at http://***@127.0.0.1:" in result.stderr
    assert PASSWORD not in result.stdout + result.stderr
