"""One receiver URI behind one aiohttp session: every POST is one attempt, classified.

Both delivery policies send through a :class:`Transport`: it owns the pool of
connections, signs (Standard Webhooks), writes the 81000/81001 trace line of each
attempt, times it into the latency histogram and turns whatever happened into an
:class:`Outcome`. It never raises for the network, nor for its own bugs: a POST that
could not even be tried is an outcome too, so a worker always goes on.

The status code is the receiver's answer. Of the body, at most :data:`MAX_ANSWER_BYTES`
are read (and thrown away, only so the connection can be used again): a longer body, one
that does not end within the timeout or one that breaks off is *cut* (the connection is
closed instead of reused, the outcome notes it), so memory stays flat whatever the
receiver sends; the status code still decides (a 2xx is an acceptance).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from ocsd import __version__
from ocsd.core.genesys import MSG_PERIODIC, MSG_STATE, PERIODIC_TEXT, STATE_TEXT
from ocsd.delivery.deadlines import Deadlines
from ocsd.delivery.errors import DeliveryError
from ocsd.delivery.latency import LatencyHistogram
from ocsd.delivery.signing import Signer, new_message_id
from ocsd.logs import get_logger, trace_lines
from ocsd.logs.redact import redact_text, redact_uri

Kind = Literal["state", "periodic"]

#: The longest Retry-After honoured, in seconds.
RETRY_AFTER_CAP = 3600.0
#: The most of an answer's body that is read; a longer one is cut (connection closed).
MAX_ANSWER_BYTES = 65536
#: Why an answer's body was cut (``Outcome.answer_cut``, the metric's label).
CUT_TOO_LONG, CUT_UNFINISHED, CUT_BROKEN = "too long", "unfinished", "broken"
#: HTTP statuses worth another attempt (besides every 5xx).
RETRIED_STATUSES = frozenset({408, 429})
#: The reason counted when ocsd itself failed to make or send a POST (a bug, logged with
#: its traceback): the worker goes on with the next notification.
INTERNAL_ERROR = "internal error"

log = get_logger("ocsd.delivery")

#: Sent with every POST, so a receiver's logs tell ocsd's requests from OCS's.
USER_AGENT = f"ocsd/{__version__}"


#: The trace message id and text template of each notification kind (docs/contract.md#log-messages).
MESSAGES: dict[str, tuple[int, str]] = {
    "state": (MSG_STATE, STATE_TEXT),
    "periodic": (MSG_PERIODIC, PERIODIC_TEXT),
}


def message_of(kind: Kind) -> tuple[int, str]:
    """The trace message id and text template of a notification kind."""
    return MESSAGES[kind]


@dataclass(slots=True)
class Outcome:
    """The result of one POST: ``reason`` is None when the receiver accepted it (2xx).
    ``answer_cut``: why the answer's body was not read to its end (None: it was)."""

    reason: str | None
    detail: dict[str, Any]
    status: int | None = None
    retry_after: float | None = None
    elapsed: float = 0.0
    answer_cut: str | None = None

    @property
    def retryable(self) -> bool:
        """Worth another attempt: no answer, or 408, 429, 5xx."""
        if self.status is None:
            return True
        return self.status in RETRIED_STATUSES or self.status >= 500


def ssl_context(ca_file: str | None) -> ssl.SSLContext | None:
    """The system's trusted CAs plus ``ca_file`` (a PEM bundle); None: aiohttp's default."""
    if not ca_file:
        return None
    context = ssl.create_default_context()
    try:
        context.load_verify_locations(cafile=ca_file)
    except (ssl.SSLError, OSError, ValueError) as exc:  # changed since it was validated
        raise DeliveryError(f"ca-file {ca_file}: cannot load it: {exc}") from None
    return context


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return min(float(text), RETRY_AFTER_CAP) if len(text) < 12 else RETRY_AFTER_CAP
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), RETRY_AFTER_CAP)


class Transport:
    """POSTs bodies to one URI through a pool of ``pool_size`` connections."""

    def __init__(
        self,
        uri: str,
        timeout: float,
        pool_size: int,
        *,
        signer: Signer | None = None,
        ca_file: str | None = None,
        latency: LatencyHistogram | None = None,
    ) -> None:
        self.uri = uri
        self.safe_uri = redact_uri(uri)
        self.host = urlsplit(uri).hostname or ""
        self.timeout = timeout
        self.pool_size = pool_size
        self._url = URL(uri, encoded=False)
        self._signer = signer
        self._ssl = ssl_context(ca_file)  # raises DeliveryError
        self._session: aiohttp.ClientSession | None = None
        self._deadlines = Deadlines(timeout)
        self._cutting = False  # the last answer was cut (logged once per change)
        self._latency = (
            {kind: latency.labels(kind) for kind in ("state", "periodic")} if latency else {}
        )

    async def open(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self.pool_size,
            limit_per_host=self.pool_size,
            ssl=self._ssl if self._ssl is not None else True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            # no timeout of aiohttp's: self._deadlines keeps http-response-timeout for
            # every POST with one timer (aiohttp's costs 10 % of a request's CPU:
            # python bench/client_timeouts.py)
            timeout=aiohttp.ClientTimeout(total=None),
            # a User-Agent of our own rather than none: skipping aiohttp's default one
            # makes it build and copy a header dict on every request, about 4 % of the
            # CPU per notification at saturation (python bench/saturation.py)
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
            raise_for_status=False,
        )

    async def close(self) -> None:
        self._deadlines.close()
        if self._session is not None:
            await self._session.close()

    def headers(self, message_id: str | None, body: bytes) -> dict[str, str] | None:
        """Standard Webhooks headers: signed when a secret is set; with an id only when
        the message has one (reliable mode), so a receiver recognises a repeat."""
        if self._signer is not None:
            return self._signer.headers(message_id or new_message_id(), body)
        if message_id is None:
            return None
        return {"webhook-id": message_id, "webhook-timestamp": str(int(time.time()))}

    async def post(
        self,
        kind: Kind,
        group_name: str,
        body: bytes,
        message_id: str | None,
        attempt: int,
        trickle: float | None = None,
    ) -> Outcome:
        """One attempt: the trace line, the POST, its latency; never raises but for
        cancellation. ``message_id`` and ``attempt`` go into the trace line when the
        message has an id (reliable mode). ``trickle``: send the body at that many bytes
        per second, in small chunks (the ``slow-send`` fault). One coroutine, not one
        awaiting another: each wake-up of a request resumes every awaiting level, ~2 %
        of the CPU per notification at saturation (bench/FINDINGS-scale.md, phase 3).
        """
        # long: one coroutine on purpose (see above), and the deadline's cancellation
        # must be told from shutdown's in the same frame that awaits the POST
        msgid, text = MESSAGES[kind]
        started = time.perf_counter()
        task = asyncio.current_task()
        assert task is not None and self._session is not None, "Transport.open() first"
        deadlines = self._deadlines
        deadlines.enter(task, task.get_loop().time())
        status: int | None = None
        answer_headers: Mapping[str, str] = {}
        try:
            if message_id is None:
                headers = self._signer.headers(new_message_id(), body) if self._signer else None
                trace_lines.write(msgid, text, group_name, self.safe_uri)
            else:
                headers = self.headers(message_id, body)
                trace_lines.write(
                    msgid, text, group_name, self.safe_uri, attempt=attempt, webhook_id=message_id
                )
            data: bytes | AsyncIterator[bytes] = (
                body if trickle is None else _trickled(body, trickle)
            )
            async with self._session.post(
                self._url, data=data, headers=headers, allow_redirects=False
            ) as response:
                status, answer_headers = response.status, response.headers
                # an empty answer (the usual one) has nothing to read
                cut = None if response.content_length == 0 else await discard_answer(response)
                outcome = self._answer(status, answer_headers)
            if deadlines.leave(task):  # its cancellation was swallowed: still too late
                outcome = self._too_late(status, answer_headers)
            else:
                if cut is not None or self._cutting:
                    self._note_cut(cut, status)
                outcome.answer_cut = cut
        except asyncio.CancelledError:
            if not deadlines.leave(task) or task.cancelling():
                raise  # not the deadline's: shutdown
            outcome = self._too_late(status, answer_headers)
        except (TimeoutError, aiohttp.ClientError) as exc:
            late = deadlines.leave(task)
            outcome = self._too_late(status, answer_headers) if late else self._failure(exc)
        except Exception:
            deadlines.leave(task)
            log.exception(
                "notification could not be sent: internal error",
                kind=kind,
                campaign_group=group_name,
                uri=self.safe_uri,
            )
            outcome = Outcome(INTERNAL_ERROR, {})
        outcome.elapsed = elapsed = time.perf_counter() - started
        if self._latency:
            self._latency[kind].observe(elapsed)
        return outcome

    def _too_late(self, status: int | None, headers: Mapping[str, str]) -> Outcome:
        """What a POST past http-response-timeout came to: a timeout if no status came,
        else the status, its answer cut unfinished (the connection is closed)."""
        if status is None:
            return Outcome("timeout", {"timeout_s": self.timeout})
        outcome = self._answer(status, headers)
        outcome.answer_cut = CUT_UNFINISHED
        self._note_cut(CUT_UNFINISHED, status)
        return outcome

    def _failure(self, exc: TimeoutError | aiohttp.ClientError) -> Outcome:
        """What a POST that got no answer came to: network trouble is an outcome."""
        if isinstance(exc, TimeoutError):
            return Outcome("timeout", {"timeout_s": self.timeout})
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            return Outcome(
                "TLS certificate not trusted",
                {
                    "host": self.host,
                    "error": str(exc.certificate_error),
                    "hint": "set [ocsd] ca-file to the PEM file of the CA that signed it",
                },
            )
        if isinstance(exc, aiohttp.ClientSSLError):
            return Outcome("TLS error", {"host": self.host, "error": self._safe_error(exc)})
        if isinstance(exc, aiohttp.ClientConnectorError):
            reason = (
                "connection refused"
                if isinstance(exc.os_error, ConnectionRefusedError)
                else "connect error"
            )
            return Outcome(reason, {"error": exc.strerror or type(exc.os_error).__name__})
        return Outcome("connection error", {"error": self._safe_error(exc)})

    def _note_cut(self, cut: str | None, status: int | None) -> None:
        """Log when this receiver's answers start being cut and when they are whole
        again: once per change, not once per POST (they are counted per POST)."""
        if cut is not None and not self._cutting:
            log.warning(
                "receiver answer cut: only the status code is used, the connection is "
                "closed; logged again only after an answer is read whole",
                cut=cut,
                status=status,
                max_answer_bytes=MAX_ANSWER_BYTES,
                uri=self.safe_uri,
            )
        elif cut is None:
            log.info("receiver answers are read whole again", uri=self.safe_uri)
        self._cutting = cut is not None

    def _safe_error(self, exc: BaseException) -> str:
        """An exception as text without the URI's credentials, in whatever form the
        client library quotes the URI (as given, or re-encoded)."""
        text = f"{type(exc).__name__}: {exc}".replace(self.uri, self.safe_uri)
        return redact_text(text.replace(str(self._url), self.safe_uri))

    @staticmethod
    def _answer(status: int, headers: Mapping[str, str]) -> Outcome:
        """The receiver's answer as an outcome; Retry-After is read only where it counts."""
        if 200 <= status < 300:
            return Outcome(None, {}, status)
        detail: dict[str, Any] = {}
        if 300 <= status < 400:
            detail["note"] = "redirects are not followed"
        wait = retry_after_seconds(headers.get("Retry-After")) if status in (429, 503) else None
        return Outcome(f"HTTP {status}", detail, status, wait)


async def discard_answer(response: aiohttp.ClientResponse) -> str | None:
    """Read and throw away the answer's body, at most :data:`MAX_ANSWER_BYTES` of it:
    None when it was read to its end, else why it was cut. A cut answer is left unread,
    so aiohttp closes its connection rather than reuse it. (One that does not end by
    the POST's deadline is cut by :meth:`Transport.post`.)"""
    length = response.content_length
    if length is not None and length > MAX_ANSWER_BYTES:
        return CUT_TOO_LONG
    read = 0
    try:
        while chunk := await response.content.read(MAX_ANSWER_BYTES):
            read += len(chunk)
            if read > MAX_ANSWER_BYTES:
                return CUT_TOO_LONG
    except aiohttp.ClientError:  # broken off, bad chunked encoding
        return CUT_BROKEN
    return None


#: Bytes per chunk of a trickled body (the ``slow-send`` fault).
TRICKLE_CHUNK = 16


async def _trickled(body: bytes, rate: float) -> AsyncIterator[bytes]:
    """``body`` in chunks of :data:`TRICKLE_CHUNK` bytes, ``rate`` bytes per second (sent
    with chunked transfer encoding, as a slow client or a congested link delivers it)."""
    pause = TRICKLE_CHUNK / rate
    for start in range(0, len(body), TRICKLE_CHUNK):
        if start:
            await asyncio.sleep(pause)
        yield body[start : start + TRICKLE_CHUNK]
