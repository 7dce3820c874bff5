"""What a malformed request is said to have wrong quotes none of its bytes.

aiohttp's parser errors (its own exception classes, built the way its C and Python
parsers build them) around a token: the reason kept names the problem, never the token.
"""

from __future__ import annotations

import string

from aiohttp.http_exceptions import (
    BadHttpMessage,
    BadHttpMethod,
    BadStatusLine,
    InvalidHeader,
    InvalidURLError,
    LineTooLong,
)
from hypothesis import given
from hypothesis import strategies as st

from ocsd.receiver.refusals import malformed_reason

TOKENS = st.text(string.ascii_letters + string.digits + "-._~+/=", min_size=16, max_size=64)


def llhttp(description: str, data: bytes) -> str:
    """A message as aiohttp's C parser writes it (``parser_error_from_errno``)."""
    return "{}:\n\n  {!r}\n  {}".format(description, data, "^")


@given(TOKENS)
def test_no_reason_quotes_the_token(token: str) -> None:
    line = f"Authorization: Bearer {token}\x01".encode()
    errors = [
        BadHttpMessage(llhttp("Invalid header value char", line)),
        BadHttpMessage(llhttp("Invalid header token", b"Authorization : Bearer " + token.encode())),
        InvalidURLError(llhttp("Invalid char in url query", f"/?token={token}\x01".encode())),
        BadStatusLine(error=f"Bad status line:\n  {llhttp('Expected HTTP/', token.encode())}"),
        BadHttpMethod(error=llhttp("Invalid method encountered", token.encode())),
        LineTooLong(line + b"A" * 9000, 8190),
        LineTooLong(line.decode(), "8190"),
        InvalidHeader(line),
        BadStatusLine(f"GET /?token={token} HTTP/1.1"),
        BadHttpMethod(f"{token} / HTTP/1.1"),
        BadHttpMessage(f"Invalid header value char {token!r}"),
    ]
    for error in errors:
        reason = malformed_reason(error)
        assert token not in reason and token[:8] not in reason, (error, reason)
        assert reason and len(reason) <= 80


def test_reasons_name_the_problem() -> None:
    assert malformed_reason(BadHttpMessage(llhttp("Invalid header value char", b"x"))) == (
        "Invalid header value char"
    )
    assert "too long" in malformed_reason(LineTooLong(b"x" * 9000, 8190))
    assert malformed_reason(InvalidHeader(b"Authorization ")) == "Invalid HTTP header"
    assert malformed_reason(BadHttpMethod("\x16\x03\x01")) == (
        "Received HTTPS traffic on an HTTP port"
    )
    assert malformed_reason(None) == "malformed request"
