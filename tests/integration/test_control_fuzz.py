"""Bad input to the control API: fuzzed from the shipped OpenAPI description, and by hand.

A real ``ocsd run`` (a subprocess, so that anything it prints is seen, tracebacks
included) on 127.0.0.1, in reliable delivery mode with a control token, sending to a
port where nothing listens. Schemathesis generates requests from ``ocsd/openapi.json``
(valid and invalid ones) and checks every answer against the description; on top:

- no answer is a 5xx;
- a refused request (4xx) changes nothing: the groups, the outbox, the dead letters;
- oversized and malformed requests (a body over 64 KiB, a header over 8 KiB, a
  garbage request line, broken JSON, non-UTF-8 bytes) get a 4xx with a message;
- nothing ever makes the daemon print a traceback.
"""

from __future__ import annotations

import json
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core import NOT_SET
from support.ini import make_sections, render_ini
from support.net import refusing_uri
from support.processes import Background, background_ocsd

from ocsd.core.genesys import Request

TOKEN = "fuzz-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DOCUMENT = json.loads(resources.files("ocsd.service").joinpath("openapi.json").read_text())
schema = schemathesis.openapi.from_dict(DOCUMENT)


@pytest.fixture(scope="module")
def ocsd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Background]:
    directory = tmp_path_factory.mktemp("fuzz")
    sections = make_sections(
        refusing_uri("/events"),
        interval=0,
        timeout=1,
        ocsd={
            "delivery-mode": "reliable",
            "retry-schedule": "60",
            "max-attempts": 10000,
            "outbox-path": directory / "outbox.sqlite3",
            "dead-letter-path": directory / "deadletters.jsonl",
            "control-token": TOKEN,
        },
    )
    config = directory / "ocsd.ini"
    config.write_text(render_ini(sections))
    with background_ocsd(["run", "--config", str(config)], directory, "ocsd started", 10) as proc:
        yield proc


def call(
    url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    headers = dict(AUTH if headers is None else headers)
    if body is not None:  # urllib would say form-urlencoded, which the control API refuses
        headers.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")


def observable_state(url: str) -> Any:
    """What a refused request must not change."""
    status, groups = call(url + "/campaigngroups")
    assert status == 200
    _, metrics = call(url + "/metrics")
    outbox = re.search(r"^ocsd_outbox_pending (\S+)$", metrics, re.M)
    dead = re.search(r"^ocsd_dead_letters (\S+)$", metrics, re.M)
    return (
        [
            (g["dbid"], g["status"], g["dial_mode"], g["optimize_by"], g["optimize_goal"])
            for g in groups["campaigngroups"]
        ],
        outbox and outbox[1],
        dead and dead[1],
    )


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_fuzz_the_control_api(case: Any, ocsd: Background) -> None:
    if case.method == "POST" and case.path == "/campaigngroups/{dbid}":
        # every other case without a body, so that valid query parameters take effect
        if zlib.crc32(repr(case.query).encode()) % 2 == 0:
            case.body = NOT_SET
            case.media_type = None
        dbid = (case.path_parameters or {}).get("dbid")
        if isinstance(dbid, int) and dbid % 4:  # mostly configured groups
            case.path_parameters["dbid"] = 100 + dbid % 4
    before = observable_state(ocsd.url)
    response = case.call(base_url=ocsd.url, headers=AUTH, timeout=5)
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
            ignored_auth,
        ],
        headers=AUTH,
    )
    assert response.status_code < 500
    if 400 <= response.status_code < 500:
        body = response.json()
        assert isinstance(body.get("error"), str) and body["error"], body
        assert observable_state(ocsd.url) == before, f"a refused request changed state: {body}"


# -- random sequences of control requests, most of them plausible ---------------------------

REQUESTS = [r.value for r in Request]
PARAMETER_VALUES = {
    "dialmode": st.sampled_from(
        ["predictive", "progressive", "preview", "power-gvp", "7", "0", "x"]
    ),
    "optimizeby": st.sampled_from(["busy-factor", "overdial-rate", "2", "9", ""]),
    "optimizegoal": st.sampled_from(["85", "3", "600", "0", "-5", "101", "1.5", "²"]),
    "GSW_AUTO_COMPLETION": st.sampled_from(["1", "0", "2", "yes"]),
    "bogus": st.text(max_size=5),
}
one_request = st.tuples(
    st.sampled_from(["101", "102", "103"] * 3 + ["999", "1x", "٣", "²"]),
    st.sampled_from(REQUESTS * 3 + ["loadcampaign", "Nope", ""]),
    st.dictionaries(st.sampled_from(sorted(PARAMETER_VALUES)), st.just(""), max_size=2).flatmap(
        lambda names: st.fixed_dictionaries({n: PARAMETER_VALUES[n] for n in names})
    ),
    st.booleans(),  # parameters as a JSON body instead of the query
)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(st.lists(one_request, min_size=1, max_size=8))
def test_request_sequences(ocsd: Background, steps: list[Any]) -> None:
    """Applied requests notify exactly what they answer; refused ones change nothing."""
    for dbid, req, params, as_body in steps:
        before = observable_state(ocsd.url)
        everything = {"req": req, **params}
        if as_body:
            url = f"{ocsd.url}/campaigngroups/{urllib.parse.quote(dbid)}"
            body = json.dumps(everything).encode()
        else:
            query = urllib.parse.urlencode(everything)
            url = f"{ocsd.url}/campaigngroups/{urllib.parse.quote(dbid)}?{query}"
            body = b""
        status, answer = call(url, "POST", body)
        assert status in (200, 400, 404, 409), (status, answer)
        if status != 200:
            assert isinstance(answer, dict) and answer.get("error"), answer
            assert observable_state(ocsd.url) == before, f"refused {answer} changed state"
            continue
        produced = len(answer["notifications"])
        if "waiting_unload" in answer:  # calls in progress: its notification comes later
            assert req.lower() == "unloadcampaign", answer
            assert answer["campaigngroup"]["status"]["name"] == "WaitingUnload", answer
        else:
            assert produced >= 1
        outbox = float(observable_state(ocsd.url)[1] or 0)
        assert outbox == float(before[1] or 0) + produced, "notifications not as answered"


# -- by hand: oversized and malformed requests -----------------------------------------------


def raw_exchange(ocsd: Background, payload: bytes) -> bytes:
    host, port = ocsd.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(payload)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_body_over_64_kib_is_413(ocsd: Background) -> None:
    before = observable_state(ocsd.url)
    body = json.dumps({"req": "LoadCampaign", "pad": "x" * 70_000}).encode()
    status, answer = call(
        ocsd.url + "/campaigngroups/101", "POST", body, AUTH | {"Content-Type": "application/json"}
    )
    assert status == 413 and "larger than" in answer["error"]
    assert observable_state(ocsd.url) == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"req": "LoadCampaign"', "not valid JSON"),
        (b'["LoadCampaign"]', "must be a JSON object"),
        (b'{"req": {"nested": 1}}', "must be a string or a number"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b'{"req": "LoadCampaign", "bogus": 1}', "unknown parameter"),
        (b'{"req": "Explode"}', "unknown request"),
        (b'{"req": "StartDialing", "optimizegoal": "1e9"}', "whole number"),
    ],
)
def test_malformed_bodies_are_400(ocsd: Background, body: bytes, message: str) -> None:
    before = observable_state(ocsd.url)
    status, answer = call(ocsd.url + "/campaigngroups/101", "POST", body, AUTH)
    assert status == 400 and message in answer["error"], answer
    assert observable_state(ocsd.url) == before


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/campaigngroups/%C2%B2", id="superscript-two"),
        pytest.param("/campaigngroups/" + "9" * 5000, id="5000-digits"),
        pytest.param("/campaigngroups/-1", id="negative"),
    ],
)
def test_odd_dbids_are_400(ocsd: Background, path: str) -> None:
    status, answer = call(ocsd.url + path)
    assert status == 400 and "dbid" in answer["error"], answer


def test_header_over_8_kib_is_refused(ocsd: Background) -> None:
    answer = raw_exchange(
        ocsd,
        b"GET /campaigngroups HTTP/1.1\r\nHost: x\r\nX-Big: "
        + b"a" * 20_000
        + b"\r\nConnection: close\r\n\r\n",
    )
    status = int(answer.split(b" ", 2)[1])
    assert 400 <= status < 500, answer[:200]


def test_url_of_100_kib_is_refused(ocsd: Background) -> None:
    answer = raw_exchange(
        ocsd, b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert 400 <= int(answer.split(b" ", 2)[1]) < 500, answer[:200]


def test_garbage_request_line_is_refused(ocsd: Background) -> None:
    answer = raw_exchange(ocsd, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n")
    assert answer == b"" or 400 <= int(answer.split(b" ", 2)[1]) < 500, answer[:200]


def test_no_token_is_401_except_for_the_probes(ocsd: Background) -> None:
    for path in ("/campaigngroups", "/campaigngroups/101", "/metrics", "/deadletters"):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            status, answer = call(ocsd.url + path, headers=headers)
            assert status == 401, (path, headers, answer)
            assert "bearer token" in answer["error"]
    status, _ = call(ocsd.url + "/campaigngroups/101?req=LoadCampaign", "POST", b"", {})
    assert status == 401
    assert call(ocsd.url + "/healthz", headers={})[0] == 200
    assert call(ocsd.url + "/readyz", headers={})[0] == 200


def test_zz_nothing_printed_a_traceback(ocsd: Background) -> None:
    """Runs last in this module: after all of the above, the daemon is alive and clean."""
    assert ocsd.proc.poll() is None, "the daemon died"
    status, health = call(ocsd.url + "/healthz", headers={})
    assert status == 200 and health["status"] == "ok"
    output = ocsd.output().decode(errors="replace")
    assert "Traceback" not in output, output[-3000:]
    assert "control request failed" not in output, "a control request hit a bug (500)"
    assert '"request applied"' in output, "the fuzzer never got a request through"
    assert TOKEN not in output, "the control token was logged"
