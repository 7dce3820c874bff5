"""A web page cannot drive the control API: cross-site forgery and DNS rebinding refused.

A real in-process daemon on 127.0.0.1 without a control token, a real receiver, requests
shaped as a browser sends them (a form POST, a ``text/plain`` fetch, a page whose host
name was re-pointed at 127.0.0.1): refused with 403 or 415, nothing changes, nothing is
sent. Tools (no Origin, the host they connect to), the control API's own origin and what
``control-allowed-hosts``/``control-allowed-origins`` allow still pass.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from ocsd.service.access import AccessPolicy, host_name, refusal

WITHIN = aiohttp.ClientTimeout(total=5)
PATH = "/campaigngroups/101?req=LoadCampaign"


async def _post(base: str, headers: dict[str, str], data: bytes = b"") -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession(skip_auto_headers=("Content-Type",)) as session,
        session.post(base + PATH, data=data, headers=headers, timeout=WITHIN) as response,
    ):
        return response.status, await response.json(content_type=None)


def _cases(port: int) -> list[tuple[str, dict[str, str], bytes, int]]:
    evil = "http://evil.example"
    rebound = f"evil.example:{port}"
    return [
        ("text-plain-fetch", {"Origin": evil, "Content-Type": "text/plain"},
         b'{"req": "LoadCampaign"}', 403),
        ("form-post", {"Origin": evil, "Content-Type": "application/x-www-form-urlencoded"},
         b"req=LoadCampaign", 403),
        ("sandboxed-page", {"Origin": "null", "Content-Type": "text/plain"}, b"", 403),
        ("other-local-port", {"Origin": "http://localhost:3000"}, b"", 403),
        ("no-origin-text-plain", {"Content-Type": "text/plain"}, b'{"req": "LoadCampaign"}',
         415),
        ("no-origin-form", {"Content-Type": "multipart/form-data; boundary=x"}, b"", 415),
        ("dns-rebinding", {"Host": rebound, "Origin": f"http://{rebound}",
                           "Content-Type": "application/json"}, b"{}", 403),
        ("rebinding-no-origin", {"Host": rebound}, b"", 403),
    ]  # fmt: skip


async def test_cross_site_requests_change_nothing(start_daemon, receiver, ini_sections):
    ocsd = await start_daemon(ini_sections(receiver.url))
    port = int(ocsd.base_url.rsplit(":", 1)[1])
    for name, headers, data, expected in _cases(port):
        status, answer = await _post(ocsd.base_url, headers, data)
        assert status == expected, (name, status, answer)
        assert "error" in answer and ("control-allowed" in answer["error"] or status == 415)
        assert await ocsd.control.status_code(101) == 0, f"{name} changed the group"
    status, answer = await ocsd.control.request("POST", "/deadletters/resend")
    assert status == 409  # a tool's request passes the check (and is refused for its reason)
    assert receiver.count() == 0, "a refused request sent a body"


async def test_tools_and_the_own_origin_still_work(start_daemon, receiver, ini_sections):
    ocsd = await start_daemon(ini_sections(receiver.url))
    port = int(ocsd.base_url.rsplit(":", 1)[1])
    assert (await _post(ocsd.base_url, {}))[0] == 200  # curl -X POST: no Origin, no body
    unload = ocsd.base_url + "/campaigngroups/101?req=UnloadCampaign"
    async with aiohttp.ClientSession() as session:
        for headers in (
            {"Origin": f"http://127.0.0.1:{port}"},  # a page served by the API itself
            {"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"},
        ):
            async with session.post(unload, json={}, headers=headers, timeout=WITHIN) as answer:
                assert answer.status == 200, await answer.text()
            async with session.post(ocsd.base_url + PATH, headers=headers) as answer:
                assert answer.status == 200, await answer.text()
        # reads are not state-changing: a scraper may use any name
        async with session.get(
            ocsd.base_url + "/metrics", headers={"Host": "ocsd.monitoring.svc"}
        ) as answer:
            assert answer.status == 200


async def test_the_allow_lists_admit_what_they_name(start_daemon, receiver, ini_sections):
    sections = ini_sections(receiver.url)
    sections["ocsd"]["control-allowed-hosts"] = "ocsd.internal, ops.example"
    sections["ocsd"]["control-allowed-origins"] = "https://admin.example"
    ocsd = await start_daemon(sections)
    port = int(ocsd.base_url.rsplit(":", 1)[1])
    ok = {"Host": f"ocsd.internal:{port}", "Origin": "https://admin.example"}
    assert (await _post(ocsd.base_url, ok))[0] == 200
    refused = {"Host": f"ocsd.internal:{port}", "Origin": "https://other.example"}
    assert (await _post(ocsd.base_url, refused))[0] == 403


@pytest.mark.parametrize(
    ("host", "name"),
    [
        ("127.0.0.1:8090", "127.0.0.1"),
        ("[::1]:8090", "::1"),
        ("::1", "::1"),
        ("Example.COM:80", "example.com"),
        ("localhost", "localhost"),
    ],
)
def test_host_name(host: str, name: str) -> None:
    assert host_name(host) == name


def test_policy_decisions() -> None:
    policy = AccessPolicy("0.0.0.0", ("ocsd",), ())
    assert refusal("GET", "evil.example", "http://evil.example", "text/plain", policy) is None
    assert refusal("POST", "10.1.2.3:8090", None, None, policy) is None  # an address: no DNS
    assert refusal("POST", "ocsd:8090", "http://ocsd:8090", "application/json", policy) is None
    assert refusal("POST", None, None, "application/merge-patch+json", policy) is None
    assert refusal("POST", "0.0.0.0:8090", None, None, policy) is None
    assert refusal("POST", None, None, "application/octet-stream", policy) is None  # no body
    refused = refusal("POST", None, None, "application/octet-stream", policy, has_body=True)
    assert refused is not None and refused.http_status == 415
    refused = refusal("POST", None, None, "text/plain;charset=utf-8", policy)
    assert refused is not None and refused.http_status == 415
    refused = refusal("POST", "ocsd.evil:8090", None, None, policy)
    assert refused is not None and refused.http_status == 403
    named = AccessPolicy("ocsd.internal")
    assert refusal("DELETE", "ocsd.internal", None, None, named) is None
    everyone = AccessPolicy("127.0.0.1", ("*",), ("*",))
    assert refusal("POST", "any.example", "https://any.example", None, everyone) is None
