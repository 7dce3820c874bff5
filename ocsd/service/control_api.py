"""Control API, modelled on OCS's HTTP interface: ``/campaigngroups/<DBID>?req=<action>``.

Thin shell: it parses and checks parameters, hands a request to the daemon and turns
the outcome into a status code. 404 unknown group, 409 not allowed in the current
status, 400 bad parameter; every error body is ``{"error": ...}`` naming the problem.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any, Protocol

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from ocsd.config.ranges import DBID
from ocsd.core.errors import BadParameter, NotAllowed, NotFound, Unavailable
from ocsd.core.genesys import DialMode, OptimizeBy, Request, parse_enum
from ocsd.core.lifecycle import DialingChange
from ocsd.logs import get_logger
from ocsd.receiver.refusals import answer_malformed_as_json, close_unread, content_encoding
from ocsd.service import API_HEADER, CONTROL_API
from ocsd.service.access import AccessPolicy, refusal

log = get_logger("ocsd.control")

MAX_REQUEST_BYTES = 64 * 1024
#: Seconds a 503 asks the client to wait (Retry-After) before asking again.
RETRY_AFTER_S = 5
#: Paths answered without the control token: the liveness and readiness probes.
OPEN_PATHS = frozenset({"/healthz", "/readyz"})
#: Longest DBID accepted in a path (Genesys DBIDs are 32-bit integers).
MAX_DBID_DIGITS = 10
MAX_DEAD_LETTERS_LISTED = 1000
#: Groups per page of ``GET /campaigngroups``: by default, and at most (``?limit=``).
DEFAULT_PAGE = 100
MAX_PAGE = 1000
PARAMETERS = {
    "req",
    "dialmode",
    "optimizeby",
    "optimizegoal",
    "gsw_auto_completion",
    "autocomplete",
}


class Controller(Protocol):
    """What the control API needs from the daemon."""

    def handle_request(
        self,
        dbid: int,
        request: Request,
        change: DialingChange,
        auto_complete: bool | None,
        *,
        origin: str = ...,
    ) -> dict[str, Any]: ...

    def group_page(self, after: int, limit: int) -> tuple[list[dict[str, Any]], int | None]: ...

    def group_count(self) -> int: ...

    def group_view(self, dbid: int) -> dict[str, Any]: ...

    def health(self) -> dict[str, Any]: ...

    def readiness(self) -> tuple[bool, dict[str, Any]]: ...

    def registry(self) -> CollectorRegistry: ...

    async def dead_letters(self, limit: int) -> dict[str, Any]: ...

    async def resend_dead_letters(self, message_id: str | None) -> dict[str, Any]: ...

    def control_token(self) -> str | None: ...

    def access_policy(self) -> AccessPolicy: ...


CONTROLLER = web.AppKey("controller", Controller)


def _json(data: Any, http_status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=http_status, content_type="application/json"
    )


def _error(http_status: int, message: str, **extra: Any) -> web.Response:
    return _json({"error": message, **extra}, http_status=http_status)


def _whole_number(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` also accepts '²' and other digits int() refuses)."""
    return text.isascii() and text.isdigit()


def _dbid(request: web.Request) -> int:
    return dbid_in_path(request.match_info["dbid"])


def dbid_in_path(text: str) -> int:
    """The DBID written in a path; BadParameter saying whether it is not a whole number
    or out of range (``99999999999999999999`` was "must be a number")."""
    if not _whole_number(text):
        raise BadParameter("dbid", f"must be a whole number, got {text[:40]!r}")
    if len(text) > 40:  # int() of thousands of digits is slow, then refused
        raise BadParameter("dbid", f"{text[:40]}... is out of range; allowed: {DBID.allowed()}")
    if problem := DBID.problem(int(text)):
        raise BadParameter("dbid", problem)
    return int(text)


async def _parameters(
    request: web.Request, accepted: set[str] | frozenset[str] = frozenset(PARAMETERS)
) -> dict[str, str]:
    """Query parameters merged with a JSON object body; names are case-insensitive."""
    params = {key.lower(): value for key, value in request.query.items()}
    raw = await request.read()
    if raw.strip():
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise BadParameter("body", f"not valid JSON ({exc})") from None
        if not isinstance(body, dict):
            raise BadParameter("body", "must be a JSON object")
        for key, value in body.items():
            if isinstance(value, dict | list) or value is None:
                raise BadParameter(str(key), "must be a string or a number")
            params[str(key).lower()] = str(value).lower() if isinstance(value, bool) else str(value)
    for key in params:
        if key not in accepted:
            raise BadParameter(
                key[:40], f"unknown parameter (accepted: {', '.join(sorted(accepted)) or 'none'})"
            )
    return params


def _request_kind(params: dict[str, str]) -> Request:
    value = params.get("req")
    accepted = ", ".join(r.value for r in Request)
    if not value:
        raise BadParameter("req", f"missing; one of {accepted}")
    for kind in Request:
        if kind.value.lower() == value.lower():
            return kind
    shown = f"{value[:40]!r}..." if len(value) > 40 else repr(value)  # not 60 KB echoed
    raise BadParameter("req", f"unknown request {shown}; one of {accepted}")


def _dialing_change(params: dict[str, str]) -> DialingChange:
    def parsed(name: str, enum: type[DialMode] | type[OptimizeBy]) -> Any:
        if name not in params:
            return None
        try:
            return parse_enum(enum, params[name])
        except ValueError as exc:
            raise BadParameter(name, str(exc)) from None

    goal: int | None = None
    if "optimizegoal" in params:
        text = params["optimizegoal"].strip()
        if not _whole_number(text.removeprefix("-")) or len(text) > 12:
            raise BadParameter("optimizegoal", f"must be a whole number, got {text[:40]!r}")
        goal = int(text)
        if not 0 < goal <= 3600:  # out of every method's range, whatever the mode
            raise BadParameter(
                "optimizegoal",
                f"must be 1 to 3600 (a percent 1..100, or seconds for a time goal), got {goal}",
            )
    return DialingChange(parsed("dialmode", DialMode), parsed("optimizeby", OptimizeBy), goal)


def _auto_complete(params: dict[str, str]) -> bool | None:
    for name in ("gsw_auto_completion", "autocomplete"):
        if name in params:
            value = params[name].strip().lower()
            if value in ("1", "true", "yes", "on"):
                return True
            if value in ("0", "false", "no", "off"):
                return False
            raise BadParameter(name, f"must be 1 or 0, got {params[name]!r}")
    return None


def _bounded(params: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    """A whole-number parameter within low..high (the default when absent)."""
    if name not in params:
        return default
    text = params[name].strip()
    if not (_whole_number(text) and len(text) <= len(str(high))) or not low <= int(text) <= high:
        raise BadParameter(name, f"must be a whole number {low}..{high}, got {text[:40]!r}")
    return int(text)


async def list_groups(request: web.Request) -> web.Response:
    """One page of groups, ascending by DBID: ``?limit=`` (default 100, at most 1000)
    groups after the DBID ``?after=``; ``next`` is the path of the next page."""
    params = await _parameters(request, {"limit", "after"})
    limit = _bounded(params, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
    after = _bounded(params, "after", 0, 0, 10**MAX_DBID_DIGITS - 1)
    controller = request.app[CONTROLLER]
    async with request.app[TURNS].turn():
        views, cursor = controller.group_page(after, limit)
    next_page = None if cursor is None else f"/campaigngroups?limit={limit}&after={cursor}"
    return _json({"campaigngroups": views, "total": controller.group_count(), "next": next_page})


async def show_group(request: web.Request) -> web.Response:
    return _json(request.app[CONTROLLER].group_view(_dbid(request)))


async def act_on_group(request: web.Request) -> web.Response:
    dbid = _dbid(request)
    params = await _parameters(request)
    kind = _request_kind(params)
    change = _dialing_change(params)
    auto = _auto_complete(params)
    if kind not in (Request.START, Request.SET_DIAL_MODE) and not change.is_empty():
        raise BadParameter(
            "dialmode",
            f"{kind.value} takes no dialing parameters (StartDialing and SetDialingMode do)",
        )
    origin = f"control API caller {request.remote or 'unknown'}"
    return _json(request.app[CONTROLLER].handle_request(dbid, kind, change, auto, origin=origin))


async def list_dead_letters(request: web.Request) -> web.Response:
    params = await _parameters(request, {"limit"})
    limit = 100
    if "limit" in params:
        text = params["limit"].strip()
        if not (_whole_number(text) and len(text) <= 6) or not (
            1 <= int(text) <= MAX_DEAD_LETTERS_LISTED
        ):
            raise BadParameter("limit", f"must be 1..{MAX_DEAD_LETTERS_LISTED}, got {text[:40]!r}")
        limit = int(text)
    return _json(await request.app[CONTROLLER].dead_letters(limit))


async def resend_dead_letters(request: web.Request) -> web.Response:
    """Re-send every dead letter, or the one named by ``id``."""
    params = await _parameters(request, {"id"})
    message_id = params.get("id")
    if message_id is not None and not 1 <= len(message_id) <= 200:
        raise BadParameter("id", "must be a dead letter's id (1 to 200 characters)")
    return _json(await request.app[CONTROLLER].resend_dead_letters(message_id))


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the loop answers. Never depends on the receiver."""
    return _json(request.app[CONTROLLER].health())


async def readyz(request: web.Request) -> web.Response:
    ready, detail = request.app[CONTROLLER].readiness()
    return _json(detail, http_status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    registry = request.app[CONTROLLER].registry()
    async with request.app[TURNS].turn():  # counts every group's status
        body = generate_latest(registry)  # small: fixed label sets, counts read at scrape time
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@web.middleware
async def _trusted_origin(request: web.Request, handler: Any) -> web.StreamResponse:
    """A state-changing request from a foreign web page (cross-site forgery, DNS
    rebinding) or with a body that is not JSON is refused (see ocsd.service.access)."""
    headers = request.headers
    refused = refusal(
        request.method,
        headers.get("Host"),
        headers.get("Origin"),
        headers.get("Content-Type"),
        request.app[CONTROLLER].access_policy(),
        has_body=request.body_exists,
    )
    if refused is not None:
        log.warning(
            "control request refused",
            method=request.method[:20],
            path=request.path[:200],
            remote=request.remote,
            reason=refused.reason,
        )
        return _error(refused.http_status, refused.reason)
    result: web.StreamResponse = await handler(request)
    return result


@web.middleware
async def _identity_only(request: web.Request, handler: Any) -> web.StreamResponse:
    """A compressed body is refused (415) before anything reads it, token or not, and
    the connection closed after the answer: aiohttp decompresses a body as it arrives,
    also one it drains unread, and a gzip bomb would stall the event loop. The bodies
    are JSON of a few KiB; nobody needs to compress them."""
    coding = content_encoding(request)
    if coding is None:
        result: web.StreamResponse = await handler(request)
        return result
    log.warning(
        "control request refused: compressed body",
        method=request.method[:20],
        path=request.path[:200],
        remote=request.remote,
        content_encoding=coding[:40],
    )
    return close_unread(
        _error(
            415,
            f"Content-Encoding {coding[:40]!r} not accepted: send the body uncompressed",
            header="Content-Encoding",
        )
    )


@web.middleware
async def _bearer_token(request: web.Request, handler: Any) -> web.StreamResponse:
    """With ``[ocsd] control-token`` set, every request but the probes needs it."""
    token = request.app[CONTROLLER].control_token()
    if token is not None and request.path not in OPEN_PATHS:
        given = request.headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        expected = token.encode("utf-8")
        presented = value.strip().encode("utf-8", "replace")
        # compare_digest: the time taken does not depend on how much of the token matched
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented, expected):
            log.warning(
                "control request refused: missing or wrong bearer token",
                method=request.method,
                path=request.path[:200],
                remote=request.remote,
            )
            response = _error(
                401,
                "missing or wrong bearer token: send 'Authorization: Bearer <[ocsd] control-token>'",
            )
            response.headers["WWW-Authenticate"] = 'Bearer realm="ocsd"'
            return response
    result: web.StreamResponse = await handler(request)
    return result


@web.middleware
async def _errors_as_json(request: web.Request, handler: Any) -> web.StreamResponse:
    """The one place where failures become answers, every one JSON naming the problem:
    the core's typed errors (400 bad parameter, 404 not found, 409 not allowed, 503 not
    now), aiohttp's
    own (404 route, 405, 413), a client gone part-way through (a line at debug level),
    and anything else: a bug, logged with its traceback, a 500
    without one."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except BadParameter as exc:
        return _error(400, str(exc), parameter=exc.parameter)
    except NotFound as exc:
        return _error(404, str(exc))  # NotFound is no KeyError: its text has no quotes
    except NotAllowed as exc:
        return _error(409, str(exc), **exc.detail())
    except Unavailable as exc:
        response = _error(503, str(exc), **exc.detail())
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response
    except web.HTTPRequestEntityTooLarge:
        return _error(413, f"request body larger than {MAX_REQUEST_BYTES} bytes")
    except web.HTTPMethodNotAllowed as exc:
        return _error(
            405,
            f"{request.method[:20]} not allowed on {request.path[:200]}; use {', '.join(sorted(exc.allowed_methods))}",
        )
    except web.HTTPNotFound:
        return _error(404, f"no such resource {request.path[:200]}; see /openapi.json")
    except web.HTTPException as exc:
        return _error(exc.status, exc.reason)
    except ConnectionError as exc:
        # The client hung up (or was closed as stalled) before its request was read: no
        # bug, no traceback; the answer below goes nowhere and aiohttp drops it quietly.
        log.debug(
            "control client gone", method=request.method, path=request.path[:200], error=str(exc)
        )
        return _error(400, "connection lost")
    except Exception:
        # A bug, not a user mistake: log it with its traceback, answer without one.
        log.exception("control request failed", method=request.method, path=request.path)
        return _error(500, "internal error; see the ocsd log")


OPENAPI = web.AppKey("openapi", bytes)


class Turns:
    """At most one answer that reads many groups is built per turn of the event loop.

    A thousand list requests arriving together would otherwise all be built in one
    turn (each handler is ready at once), and the ticker, waiting for that turn to end,
    would skip its slots. Each holder yields once before it builds, so requests that
    find the lock taken wait for a later turn, and the loop's timers run in between.
    """

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        async with self._lock:
            await asyncio.sleep(0)
            yield


TURNS = web.AppKey("turns", Turns)


def openapi_document() -> bytes:
    """The OpenAPI 3.1 description of the control API shipped in the package."""
    return resources.files("ocsd.service").joinpath("openapi.json").read_bytes()


async def _says_who(_request: web.Request, response: web.StreamResponse) -> None:
    """Every answer, errors included, says it comes from ocsd's control API (for ctl)."""
    response.headers[API_HEADER] = CONTROL_API


def create_app(controller: Controller) -> web.Application:
    app = web.Application(
        client_max_size=MAX_REQUEST_BYTES,
        middlewares=[_errors_as_json, _identity_only, _bearer_token, _trusted_origin],
    )
    answer_malformed_as_json(app, API_HEADER, CONTROL_API)
    app[CONTROLLER] = controller
    app.on_response_prepare.append(_says_who)
    app[OPENAPI] = openapi_document()
    app[TURNS] = Turns()
    app.router.add_get("/campaigngroups", list_groups)
    app.router.add_get("/campaigngroups/{dbid}", show_group)
    app.router.add_post("/campaigngroups/{dbid}", act_on_group)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/deadletters", list_dead_letters)
    app.router.add_post("/deadletters/resend", resend_dead_letters)
    app.router.add_get("/openapi.json", openapi)
    return app
