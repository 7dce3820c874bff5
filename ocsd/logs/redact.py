"""Keep credentials out of every log line and printout."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

REDACTED = "***"
_SECRET_KEY = re.compile(r"(pass|pwd|secret|token|key|sig|auth|cred)", re.IGNORECASE)


def _mask_pair(pair: str) -> str:
    """``token=abc`` -> ``token=***``; any other pair stays byte for byte as written."""
    key, sep, _value = pair.partition("=")
    return f"{key}={REDACTED}" if sep and _SECRET_KEY.search(unquote(key)) else pair


def redact_uri(uri: str) -> str:
    """The URI without user:password and with secret-looking query values masked.

    ``http://u:p@host/x?token=abc&a=1`` -> ``http://***@host/x?token=***&a=1``.
    """
    try:
        parts = urlsplit(uri)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = REDACTED + "@" + netloc.rsplit("@", 1)[1]
        query = "&".join(_mask_pair(pair) for pair in parts.query.split("&")) if parts.query else ""
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "<unparsable URI>"
