"""Requests refused before a handler reads them, sent by hand on raw sockets.

A real ``ocsd run`` with a control token and a real ``ocsd sink`` (subprocesses on
127.0.0.1, so that everything they print is seen):

- a request aiohttp's HTTP parser refuses (a control character in the Authorization
  header, the token followed by 9000 bytes, a space before a header's colon, a control
  character after ``?token=``) is answered 400 ``{"error": ...}`` and logged in one line,
  and neither the answer nor the log carries the token, nor a traceback;
- a body with a Content-Encoding is refused 415 before it is read, token or not, the
  connection closed: a broken gzip body is no 500, and a 4 MB gzip bomb (4 GiB of
  zeros) sent without the token does not stall the daemon.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from support.ini import make_sections, render_ini
from support.net import LOCALHOST, refusing_uri
from support.processes import Background, background_ocsd

TOKEN = "tok-SECRET-1234567890"
#: What must never be printed or answered: the token, or enough of it to guess the rest.
SECRET = b"SECRET-1234567890"
AUTH = f"Authorization: Bearer {TOKEN}\r\n".encode()


class Server(Background):
    """An ``ocsd run`` or ``ocsd sink`` talked to over raw sockets."""

    def exchange(self, payload: bytes, within: float = 10) -> bytes:
        """Send ``payload``, read until the server closes the connection (it must)."""
        with socket.create_connection((LOCALHOST, self.port), timeout=within) as sock:
            # closed by the server before all was sent: read its answer
            with contextlib.suppress(OSError):
                sock.sendall(payload)
            chunks = []
            with contextlib.suppress(ConnectionResetError):
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        return b"".join(chunks)

    def logged(self, text: bytes, count: int, within: float = 10) -> bytes:
        """The output once ``text`` appears in it ``count`` times."""
        deadline = time.monotonic() + within
        while (output := self.output()).count(text) < count:
            assert time.monotonic() < deadline, f"{text!r} not logged {count} times:\n{output!r}"
            time.sleep(0.05)
        return output


@pytest.fixture(scope="module")
def ocsd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("refusals")
    sections = make_sections(
        refusing_uri("/events"), interval=0, timeout=1, ocsd={"control-token": TOKEN}
    )
    config = directory / "ocsd.ini"
    config.write_text(render_ini(sections))
    command = ["run", "--config", str(config)]
    with background_ocsd(command, directory, "ocsd started", 20, Server) as server:
        yield server


@pytest.fixture(scope="module")
def sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("sink")
    command = ["sink", "--port", "0"]
    with background_ocsd(command, directory, "ocsd sink listening", 20, Server) as server:
        yield server


def parsed(answer: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split(" ", 2)[1]), headers, json.loads(body)


# -- malformed requests: the token is neither logged nor answered ----------------------------

MALFORMED = {
    "control-character-in-authorization": b"GET /campaigngroups HTTP/1.1\r\nHost: x\r\n"
    + AUTH.replace(b"\r\n", b"\x01\r\n")
    + b"\r\n",
    "nul-in-authorization": b"GET /campaigngroups HTTP/1.1\r\nHost: x\r\n"
    + AUTH.replace(b"\r\n", b"\x00\r\n")
    + b"\r\n",
    "authorization-line-too-long": b"GET /campaigngroups HTTP/1.1\r\nHost: x\r\n"
    + AUTH.replace(b"\r\n", b"A" * 9000 + b"\r\n")
    + b"\r\n",
    "space-before-colon": b"GET /campaigngroups HTTP/1.1\r\nHost: x\r\n"
    + AUTH.replace(b"Authorization:", b"Authorization :")
    + b"\r\n",
    "control-character-in-cookie": b"GET /campaigngroups HTTP/1.1\r\nHost: x\r\n"
    + f"Cookie: session={TOKEN}\x01\r\n\r\n".encode(),
    "control-character-in-query-token": f"GET /campaigngroups?token={TOKEN}\x01 HTTP/1.1\r\n"
    "Host: x\r\n\r\n".encode(),
    "query-token-line-too-long": f"GET /campaigngroups?token={TOKEN}{'A' * 9000} HTTP/1.1\r\n"
    "Host: x\r\n\r\n".encode(),
}


@pytest.mark.parametrize("payload", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_request_is_answered_and_logged_without_the_token(
    ocsd: Server, payload: bytes
) -> None:
    """The answer and the log line say what is wrong (the parser's words, or the kind of
    error), not the request's bytes."""
    before = ocsd.output().count(b"malformed HTTP request refused")
    answer = ocsd.exchange(payload)
    status, headers, body = parsed(answer)
    assert status == 400, answer[:300]
    assert body["error"].startswith("malformed HTTP request refused: "), body
    reason = body["error"].removeprefix("malformed HTTP request refused: ")
    assert reason != "malformed request", body
    assert headers["x-ocsd-api"] == "control"
    assert headers["content-type"].startswith("application/json")
    assert SECRET not in answer and b"SECRET" not in answer, answer
    output = ocsd.logged(b"malformed HTTP request refused", before + 1)
    assert f'"reason":"{reason}"'.encode() in output
    assert b"SECRET" not in output, output.decode(errors="replace")
    assert b"Traceback" not in output


def test_malformed_request_to_the_sink_is_answered_without_quoting_it(sink: Server) -> None:
    before = sink.output().count(b"malformed HTTP request refused")
    answer = sink.exchange(MALFORMED["control-character-in-authorization"])
    status, headers, body = parsed(answer)
    assert status == 400 and body["error"].startswith("malformed HTTP request refused: "), answer
    assert headers["x-ocsd-api"] == "sink"
    assert b"SECRET" not in answer
    output = sink.logged(b"malformed HTTP request refused", before + 1)
    assert b"SECRET" not in output and b"Traceback" not in output


# -- compressed bodies: refused unread, the connection closed --------------------------------


def post(path: str, body: bytes, encoding: str, *, token: bool) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Encoding: {encoding}\r\nContent-Length: {len(body)}\r\n".encode()
        + (AUTH if token else b"")
        + b"\r\n"
        + body
    )


@pytest.mark.parametrize("token", [True, False], ids=["with-token", "without-token"])
@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", b"hello"),
        ("deflate", b"hello"),
        ("gzip", zlib.compress(b'{"req": "LoadCampaign"}', wbits=31)),
        ("x-unknown", b"hello"),
    ],
    ids=["broken-gzip", "broken-deflate", "valid-gzip", "unknown"],
)
def test_compressed_body_is_415_and_the_connection_closed(
    ocsd: Server, encoding: str, body: bytes, token: bool
) -> None:
    # exchange() reads until the server closes: a kept-alive connection fails it in 10 s
    answer = ocsd.exchange(
        post("/campaigngroups/101?req=LoadCampaign", body, encoding, token=token)
    )
    status, headers, error = parsed(answer)
    assert status == 415, answer[:300]
    assert "Content-Encoding" in error["error"] and error["header"] == "Content-Encoding"
    assert headers["x-ocsd-api"] == "control"
    assert headers.get("connection", "").lower() == "close"
    output = ocsd.output()
    assert b"Traceback" not in output, output[-2000:]
    assert b"HTTP server error" not in output and b"control request failed" not in output


@pytest.mark.parametrize("encoding", ["br", "zstd"])
def test_encoding_the_parser_cannot_decode_is_400_naming_the_header(
    ocsd: Server, encoding: str
) -> None:
    """Without brotli or zstd installed, aiohttp's parser refuses these itself: too early
    for a 415, still before the body and without a traceback."""
    answer = ocsd.exchange(post("/campaigngroups/101", b"hello", encoding, token=False))
    status, headers, error = parsed(answer)
    assert status in (400, 415), answer[:300]
    assert "Content-Encoding" in error["error"] and error["header"] == "Content-Encoding"
    assert headers["x-ocsd-api"] == "control"
    assert b"Traceback" not in ocsd.output()


def test_identity_content_encoding_is_accepted(ocsd: Server) -> None:
    request = (
        f"GET /campaigngroups/101 HTTP/1.1\r\nHost: x\r\nContent-Encoding: identity\r\n"
        f"Authorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n".encode()
    )
    status, _, view = parsed(ocsd.exchange(request))
    assert status == 200 and view["dbid"] == 101, view


def gzip_bomb(megabytes: int) -> bytes:
    """About ``megabytes`` MB of gzip that inflates to ``megabytes`` GiB of zeros, made in
    milliseconds: after a full flush, every 1 MiB of zeros compresses to the same bytes."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"\0" * (1 << 20)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    return first + block * (megabytes * 1000)


def healthz_seconds(server: Server) -> float:
    started = time.monotonic()
    answer = server.exchange(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert parsed(answer)[0] == 200, answer[:300]
    return time.monotonic() - started


def test_gzip_bomb_without_token_does_not_stall_the_daemon(ocsd: Server) -> None:
    """Decompressing 4 GiB takes seconds of the event loop (13 s measured on this busy
    machine, outside the daemon); refused unread, it takes none."""
    logged = len(ocsd.output())
    payload = post("/campaigngroups/101?req=LoadCampaign", gzip_bomb(4), "gzip", token=False)
    answers: list[bytes] = []
    sender = threading.Thread(target=lambda: answers.append(ocsd.exchange(payload, within=30)))
    sender.start()
    slowest = max(healthz_seconds(ocsd) for _ in range(10))
    sender.join(30)
    assert not sender.is_alive()
    assert parsed(answers[0])[0] == 415, answers[0][:300]
    slowest = max(slowest, *(healthz_seconds(ocsd) for _ in range(5)))
    assert slowest < 1.5, f"/healthz took {slowest:.2f} s while the bomb was refused"
    output = ocsd.output()[logged:]
    assert b"Traceback" not in output and b"Can not decode" not in output


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_sink_refuses_a_compressed_body_415_without_a_traceback(
    sink: Server, encoding: str
) -> None:
    before = sink.output().count(b"notification refused")
    answer = sink.exchange(post("/ocs/campaign-group-state", b"hello", encoding, token=False))
    status, headers, verdict = parsed(answer)
    assert status == 415, answer[:300]
    assert verdict["rule"] == "content-encoding" and "Content-Encoding" in verdict["error"]
    assert headers["x-ocsd-api"] == "sink"
    output = sink.logged(b"notification refused", before + 1)
    assert b"Traceback" not in output and b"Server got itself in trouble" not in answer


def test_zz_both_alive_and_clean(ocsd: Server, sink: Server) -> None:
    for server in (ocsd, sink):
        assert server.proc.poll() is None
        assert healthz_seconds(server) < 10
        assert b"Traceback" not in server.output()
        assert b"SECRET" not in server.output()
