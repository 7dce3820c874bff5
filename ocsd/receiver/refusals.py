"""Requests refused before a handler reads them: malformed ones, and compressed bodies.

**Malformed requests.** aiohttp's HTTP parser refuses a request it cannot parse (a
header line over 8 KiB, a control character in a header value, a space before a
header's colon, a request line that is not HTTP) and answers it itself, with a 400
whose text, like the parser's error message, quotes the raw bytes of the offending line:
an ``Authorization`` header, a cookie or a ``?token=`` included. Here such a request is
logged as one warning line and answered ``{"error": ...}``, both naming only the kind of
problem (``header line too long``, ``Invalid header value char``), never a byte of the
request, and without a traceback.

**Compressed bodies.** A request body with a ``Content-Encoding`` is decompressed by
aiohttp as it arrives, also a body the handler refuses unread (aiohttp drains it to keep
the connection): a gzip bomb would block the event loop. The control API and the sink
take small JSON bodies that nobody needs to compress, so they refuse any
``Content-Encoding`` but ``identity`` before reading the body and close the connection
after the answer, so that no byte of it is decompressed.
"""

from __future__ import annotations

import contextvars
import logging
import re
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import hdrs, web
from aiohttp.http_exceptions import (
    BadHttpMethod,
    BadStatusLine,
    ContentEncodingError,
    HttpProcessingError,
    InvalidHeader,
    InvalidURLError,
    LineTooLong,
)

from ocsd.logs import get_logger

log = get_logger("ocsd.http")

#: The problem with a malformed request when the parser's own words cannot be used.
_KINDS: tuple[tuple[type[HttpProcessingError], str], ...] = (
    (LineTooLong, "request line or header line too long (over 8 KiB)"),
    (BadHttpMethod, "not an HTTP method in the request line"),
    (InvalidURLError, "invalid target in the request line"),
    (BadStatusLine, "invalid request line"),
    (InvalidHeader, "invalid header"),
)
#: A reason the parser gives that is plain words (llhttp's own, such as "Invalid header
#: value char"), no byte of the request: letters, spaces and a few signs only.
_PLAIN = re.compile(r"[A-Za-z][A-Za-z ,-]{2,79}")
#: Where the parser starts quoting the request in its message.
_QUOTING = re.compile(r"[:'\"\\`\n]")

#: The reason for a Content-Encoding the parser cannot decode (``br`` without brotli):
#: the parser refuses it, so it is answered 400 (not 415), before the body too.
_UNSUPPORTED_ENCODING = "Content-Encoding"

#: The reason logged for the malformed request being answered (set by the log handler,
#: read when the answer is prepared: both happen in the task answering that request).
_REASON: contextvars.ContextVar[str | None] = contextvars.ContextVar("refusal", default=None)


def malformed_reason(error: BaseException | None) -> str:
    """What is wrong with a request the parser refused, in words that quote none of it.

    The parser's messages quote the offending bytes (``Invalid header value char:
    b'Bearer <token>\\x01'``): only the words before the quote are kept, and only when
    they are plain words; else the kind of error says it.
    """
    if error is None:
        return "malformed request"
    if isinstance(error, LineTooLong):
        return _KINDS[0][1]
    message = error.message if isinstance(error, HttpProcessingError) else ""
    head = _QUOTING.split(message if isinstance(message, str) else "", maxsplit=1)[0].strip()
    if _PLAIN.fullmatch(head):
        return head
    for kind, reason in _KINDS:
        if isinstance(error, kind):
            return reason
    return "malformed request"


class _MalformedWithoutTraceback(logging.Handler):
    """aiohttp logs a malformed HTTP request on ``aiohttp.server`` with a traceback and the
    parser's message (which quotes the request); ocsd logs one line naming the kind of
    problem instead. Any other error keeps its traceback (a bug must be findable)."""

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        if error is None or isinstance(error, HttpProcessingError):
            reason = malformed_reason(error)
            _REASON.set(
                _UNSUPPORTED_ENCODING if isinstance(error, ContentEncodingError) else reason
            )
            log.warning(
                "malformed HTTP request refused",
                error=type(error).__name__ if error else "none",
                reason=reason,
            )
            return
        log.error("HTTP server error", error=record.getMessage(), exc_info=record.exc_info)


def quiet_aiohttp_server_log() -> None:
    """Route ``aiohttp.server``'s log through :class:`_MalformedWithoutTraceback` (once)."""
    logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(h, _MalformedWithoutTraceback) for h in logger.handlers):
        logger.addHandler(_MalformedWithoutTraceback(logging.WARNING))
        logger.propagate = False


def _request_class(api_header: str, api: str) -> type[web.Request]:
    class _Request(web.Request):
        async def _prepare_hook(self, response: web.StreamResponse) -> None:
            # No route was matched: aiohttp answers a request its parser refused itself,
            # with the parser's message (which quotes the request) as the text.
            if self._match_info is None and isinstance(response, web.Response):
                reason = _REASON.get() or "malformed request"
                answer: dict[str, str] = {
                    "error": f"malformed HTTP request refused: {reason}"
                    if response.status == HTTPStatus.BAD_REQUEST
                    else HTTPStatus(response.status).phrase
                }
                if reason == _UNSUPPORTED_ENCODING:  # too late to make it a 415
                    answer = {
                        "error": "malformed HTTP request refused: Content-Encoding not "
                        "supported: send the body uncompressed",
                        "header": "Content-Encoding",
                    }
                body = orjson.dumps(answer)
                response.body = body
                response.headers[hdrs.CONTENT_TYPE] = "application/json"
                response.headers[hdrs.CONTENT_LENGTH] = str(len(body))
                response.headers[api_header] = api
            await super()._prepare_hook(response)

    return _Request


def answer_malformed_as_json(app: web.Application, api_header: str, api: str) -> None:
    """Answer the requests aiohttp's parser refuses ``{"error": ...}`` without quoting
    them, with ``api_header: api``, and log them without a traceback."""
    quiet_aiohttp_server_log()
    make_request = getattr(app, "_make_request", None)
    if make_request is None:  # an aiohttp without this hook: its own plain-text 400 stays
        return  # (the log line above still quotes nothing)
    request_class = _request_class(api_header, api)

    def factory(*args: Any, **kwargs: Any) -> web.Request:
        kwargs["_cls"] = request_class
        request: web.Request = make_request(*args, **kwargs)
        return request

    # aiohttp has no option for the request class; in its debug mode, setting an
    # attribute on the application warns (object.__setattr__ does not).
    object.__setattr__(app, "_make_request", factory)


def content_encoding(request: web.BaseRequest) -> str | None:
    """The request's ``Content-Encoding`` when it is not ``identity``; None without one."""
    coding = request.headers.get(hdrs.CONTENT_ENCODING)
    if coding is None or coding.strip().lower() in ("", "identity"):
        return None
    return coding


class _ClosingResponse(web.Response):
    async def write_eof(self, data: bytes = b"") -> None:
        request = getattr(self, "_req", None)
        await super().write_eof(data)
        protocol = getattr(request, "protocol", None)
        if protocol is not None:
            # after the answer is written: closing before would lose it
            protocol.force_close()


def close_unread(response: web.Response) -> web.Response:
    """``response``, which closes the connection once it is sent, without reading (so
    without decompressing) the rest of the request body: aiohttp would drain it, even
    with ``Connection: close``, and decompress it as it comes."""
    closing = _ClosingResponse(body=response.body, status=response.status)
    closing.headers.update(response.headers)
    closing.force_close()
    return closing
