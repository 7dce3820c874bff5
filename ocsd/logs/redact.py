"""Keep credentials out of every log line and printout.

Text-based, not a URI parser: a URI that reaches a log line or an error message is often
one that failed to parse (no scheme, a bad port, a password with a ``/`` in it), and it
must be masked all the same. When in doubt, more is masked rather than less.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

REDACTED = "***"
#: Names of query, path-parameter and fragment values that are masked.
SECRET_NAME = re.compile(
    r"pass|pwd|secret|token|key|sig|auth|cred|session|cookie|jwt|bearer|private",
    re.IGNORECASE,
)
#: ``scheme://`` or ``//`` at the start: the authority (and its userinfo) follows.
_AUTHORITY_START = re.compile(r"\s*(?:[A-Za-z][A-Za-z0-9+.\-]*:)?//")
#: Where a well-formed authority ends.
_AUTHORITY_END = re.compile(r"[/?#\\]")
#: An ``@`` followed by something shaped like ``host[:port]`` and the end of the authority:
#: where a malformed userinfo (a password with ``/``, ``?`` or ``#`` in it) ends.
_USERINFO_AT = re.compile(r"@(?=[A-Za-z0-9.\-_~%\[\]:]+(?:[/?#\\]|$))")
#: What separates ``name=value`` pairs: in a query (``?&``), a path parameter (``;``), a
#: fragment (``#``), a path segment (``/``). A secret value runs to the next pair
#: separator (``&;#`` or a space): a token may hold ``/``, ``?`` or ``,``.
_SEPARATOR = re.compile(r"([?&;#/,\s])")
#: Where a masked value ends: in the path (a ``;token=`` parameter) and after it.
_PATH_VALUE_ENDS = frozenset("&;#?/")
_QUERY_VALUE_ENDS = frozenset("&;#")
#: A URI with a scheme inside free text (an exception message).
_URI_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")


def _userinfo_end(uri: str, start: int) -> int:
    """Index of the ``@`` that ends the userinfo, or -1 without one."""
    end_match = _AUTHORITY_END.search(uri, start)
    authority_end = end_match.start() if end_match else len(uri)
    at = uri.rfind("@", start, authority_end)
    if at >= 0:
        return at  # well formed: user:password@host
    # Malformed (a password with / ? or # in it, or no scheme): the last "@host[:port]"
    # that ends the text or is followed by / ? or #. An e-mail address at the very end of
    # a query is taken for one too: masked more rather than less.
    candidates = [match.start() for match in _USERINFO_AT.finditer(uri, start)]
    return candidates[-1] if candidates else -1


def _mask_values(text: str) -> str:
    """Every ``name=value`` whose name looks like a secret as ``name=***``."""
    parts = _SEPARATOR.split(text)  # tokens at even indices, separators at odd ones
    out: list[str] = []
    masking = False
    ends = _PATH_VALUE_ENDS
    for index, part in enumerate(parts):
        if index % 2:  # a separator
            if masking and (part in ends or part.isspace()):
                masking = False
            if not masking:
                out.append(part)
                if part in "?#":
                    ends = _QUERY_VALUE_ENDS
        elif not masking:
            name, equals, _value = part.partition("=")
            masking = bool(equals and name and SECRET_NAME.search(unquote(name)))
            out.append(f"{name}={REDACTED}" if masking else part)
    return "".join(out)


def redact_uri(uri: str) -> str:
    """The URI without ``user:password@`` and with secret-looking values masked.

    ``http://u:p@host/x;token=t?key=k&a=1#access_token=z`` ->
    ``http://***@host/x;token=***?key=***&a=1#access_token=***``; also without a
    scheme (``u:p@host/x`` -> ``***@host/x``) and when malformed. Never raises.
    """
    scheme = _AUTHORITY_START.match(uri)
    start = scheme.end() if scheme else 0
    at = _userinfo_end(uri, start)
    if at >= 0:
        uri = uri[:start] + REDACTED + uri[at:]
        start += len(REDACTED) + 1
    return uri[:start] + _mask_values(uri[start:])


def redact_text(text: str) -> str:
    """Free text (an exception's message) with every ``scheme://...`` in it redacted."""
    return _URI_IN_TEXT.sub(lambda match: redact_uri(match.group(0)), text)
