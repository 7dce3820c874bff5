"""Which state-changing control requests are trusted: a pure decision.

Without a check, any web page the operator visits could change a group's state: a
cross-site form or ``text/plain`` POST needs no CORS permission (cross-site request
forgery), and a page whose host name the attacker points at 127.0.0.1 is even "same
origin" (DNS rebinding). So a state-changing request (any method but GET, HEAD and
OPTIONS) is refused when

- its ``Host`` names a host that is not this one: not an IP address, not ``localhost``,
  not ``control-host``, not in ``control-allowed-hosts`` (403);
- it carries an ``Origin`` that is not the control API's own (``http(s)://<Host>``)
  nor in ``control-allowed-origins`` (403; a browser sends Origin with every POST);
- it has a body that is not JSON, or a form or ``text/plain`` Content-Type even
  without a body (415): the API takes query parameters or a JSON object, and only
  those three types can be sent cross-site without a CORS preflight, which ocsd never
  grants.

Tools (curl, ``ocsd ctl``, scripts) send no Origin and the host they connect to, so
they pass unchanged.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The types a web page may POST anywhere without asking (CORS "simple" requests).
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})
LOCAL_NAMES = frozenset({"localhost", "localhost."})
WILDCARD_ADDRESSES = frozenset({"", "0.0.0.0", "::"})


@dataclass(frozen=True)
class AccessPolicy:
    """The trusted names: ``control-host`` and the two allow-lists, lowercased."""

    control_host: str = "127.0.0.1"
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()

    def trusts_host(self, name: str) -> bool:
        """Whether a Host header's name (no port) names this server."""
        if "*" in self.allowed_hosts or name in LOCAL_NAMES or name in self.allowed_hosts:
            return True
        if name == self.control_host.lower() and name not in WILDCARD_ADDRESSES:
            return True
        try:  # an IP address cannot be re-pointed by DNS (rebinding needs a name)
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True


@dataclass(frozen=True)
class Refusal:
    http_status: int
    reason: str


def host_name(host: str) -> str:
    """``Example.com:8090`` -> ``example.com``; ``[::1]:8090`` -> ``::1``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _media_type(content_type: str) -> str:
    return content_type.partition(";")[0].strip().lower()


def _is_json(media: str) -> bool:
    _type, _, subtype = media.partition("/")
    return subtype == "json" or subtype.endswith("+json")


def refusal(
    method: str,
    host: str | None,
    origin: str | None,
    content_type: str | None,
    policy: AccessPolicy,
    has_body: bool = False,
) -> Refusal | None:
    """Why a request must be refused, or None. ``host``, ``origin`` and
    ``content_type`` are the headers as sent (None: not sent)."""
    if method.upper() in SAFE_METHODS:
        return None
    if host is not None and not policy.trusts_host(host_name(host)):
        return Refusal(
            403,
            f"Host {host[:100]!r} does not name this server: state-changing requests must be "
            "sent to localhost, an IP address or control-host "
            "(add the name to [ocsd] control-allowed-hosts to allow it)",
        )
    if origin is not None:
        given = origin.strip().lower().removesuffix("/")
        own = {f"http://{host.strip().lower()}", f"https://{host.strip().lower()}"} if host else ()
        allowed = policy.allowed_origins
        if given not in own and given not in allowed and "*" not in allowed:
            return Refusal(
                403,
                f"cross-origin request from {origin[:100]!r} refused "
                "(add the origin to [ocsd] control-allowed-origins to allow it)",
            )
    media = _media_type(content_type or "")
    if media in FORM_TYPES or (has_body and not _is_json(media)):
        return Refusal(
            415,
            f"Content-Type {(content_type or 'none')[:100]!r} is not accepted: send parameters in the "
            "query string, or a JSON object with Content-Type: application/json",
        )
    return None
