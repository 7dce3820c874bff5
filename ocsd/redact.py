"""Keep credentials out of every log line and printout."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "***"
_SECRET_KEY = re.compile(r"(pass|pwd|secret|token|key|sig|auth|cred)", re.IGNORECASE)


def redact_uri(uri: str) -> str:
    """The URI without user:password and with secret-looking query values masked.

    ``http://u:p@host/x?token=abc&a=1`` -> ``http://***@host/x?token=***&a=1``.
    """
    try:
        parts = urlsplit(uri)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = REDACTED + "@" + netloc.rsplit("@", 1)[1]
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode(
                [(k, REDACTED if _SECRET_KEY.search(k) else v) for k, v in pairs], safe="*"
            )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "<unparsable URI>"
