"""Credentials never survive ocsd.logs.redact, whatever shape the URI has.

Property tests (hypothesis): a password in the userinfo of a URI with a scheme, without
one, with ``//`` only, or malformed (a ``/``, ``?`` or ``#`` in it), and a secret-named
value in the query, a ``;`` path parameter or the fragment, never appear in the output.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ocsd.logs.redact import REDACTED, redact_text, redact_uri

#: Every printable ASCII character but whitespace: what a careless password holds.
PRINTABLE = "".join(c for c in string.printable if not c.isspace())
#: What a well-formed value holds without percent-encoding (RFC 3986 unreserved).
UNRESERVED = string.ascii_letters + string.digits + "-._~"

HOSTS = st.sampled_from(["127.0.0.1", "receiver.example", "[::1]", "localhost"])
PORTS = st.sampled_from(["", ":80", ":27080", ":8443"])
PATHS = st.sampled_from(["", "/", "/ocs", "/ocs/campaign-group-state", "/a/b.c"])
PREFIXES = st.sampled_from(["http://", "https://", "//", "", "HTTP://", "ocs+http://"])
SECRET_NAMES = st.sampled_from(
    [
        "token",
        "access_token",
        "Token",
        "api_key",
        "apikey",
        "KEY",
        "secret",
        "client_secret",
        "password",
        "passwd",
        "pwd",
        "sig",
        "signature",
        "X-Amz-Signature",
        "X-Amz-Credential",
        "auth",
        "authorization",
        "credential",
        "jsessionid",
        "acc%65ss_token",  # percent-encoded name
    ]
)


def secrets(alphabet: str) -> st.SearchStrategy[str]:
    """A secret: a recognisable start and 6..30 characters of ``alphabet``."""
    return st.text(alphabet, min_size=6, max_size=30).map(lambda text: "Zq" + text)


@settings(max_examples=400, deadline=None)
@given(
    prefix=PREFIXES,
    user=st.text(UNRESERVED, max_size=8),
    password=secrets(PRINTABLE),
    host=HOSTS,
    port=PORTS,
    path=PATHS,
)
@example(
    prefix="",
    user="admin",
    password="S3cretPW",
    host="127.0.0.1",
    port=":27080",
    path="/ocs",  # the case: no scheme
)
@example(prefix="http://", user="u", password="Zqpa/ss", host="h", port="", path="/x")
@example(prefix="http://", user="u", password="Zqp?w=d", host="h", port="", path="/")
@example(prefix="http://", user="u", password="Zqp#w@x", host="h", port="", path="/")
def test_a_password_in_the_userinfo_never_survives(
    prefix: str, user: str, password: str, host: str, port: str, path: str
) -> None:
    uri = f"{prefix}{user}:{password}@{host}{port}{path}"
    redacted = redact_uri(uri)
    assert password not in redacted
    assert REDACTED in redacted


@settings(max_examples=300, deadline=None)
@given(prefix=PREFIXES, user=secrets(UNRESERVED), host=HOSTS, port=PORTS, path=PATHS)
def test_a_token_as_user_name_never_survives(
    prefix: str, user: str, host: str, port: str, path: str
) -> None:
    assert user not in redact_uri(f"{prefix}{user}@{host}{port}{path}")


@settings(max_examples=400, deadline=None)
@given(
    prefix=st.sampled_from(["http://", "https://", ""]),
    host=HOSTS,
    path=PATHS,
    name=SECRET_NAMES,
    value=secrets(UNRESERVED + "%/?:@+=,!$'()*"),
    where=st.sampled_from(["query", "later-query", "path-parameter", "fragment", "all"]),
)
def test_a_secret_named_value_never_survives(
    prefix: str, host: str, path: str, name: str, value: str, where: str
) -> None:
    pair = f"{name}={value}"
    tail = {
        "query": f"?{pair}&site=paris",
        "later-query": f"?site=paris&{pair}",
        "path-parameter": f";{pair}/next?site=paris",
        "fragment": f"#{pair}&token_type=bearer",
        "all": f";{pair}?{pair}#{pair}",
    }[where]
    redacted = redact_uri(f"{prefix}{host}{path or '/x'}{tail}")
    assert value not in redacted
    assert REDACTED in redacted


@settings(max_examples=300, deadline=None)
@given(
    host=HOSTS,
    path=PATHS,
    name=SECRET_NAMES,
    value=secrets(UNRESERVED),
    where=st.sampled_from(["?", ";", "#"]),
)
def test_a_well_formed_uri_keeps_its_shape(
    host: str, path: str, name: str, value: str, where: str
) -> None:
    """Only the value goes: everything else is as written."""
    uri = f"https://{host}{path or '/x'}{where}{name}={value}&site=paris"
    expected = f"https://{host}{path or '/x'}{where}{name}={REDACTED}&site=paris"
    assert redact_uri(uri) == expected


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_redacted_without_an_error(text: str) -> None:
    assert isinstance(redact_uri(text), str)
    assert isinstance(redact_text(text), str)


@pytest.mark.parametrize(
    ("uri", "redacted"),
    [
        ("admin:S3cretPW@127.0.0.1:27080/ocs", "***@127.0.0.1:27080/ocs"),
        ("//admin:S3cretPW@127.0.0.1/ocs", "//***@127.0.0.1/ocs"),
        ("http://u:pa/ss@host/x", "http://***@host/x"),
        ("http://[::1", "http://[::1"),
        (
            "http://h/ocs;token=t1/x?key=k1&a=1#access_token=z1&state=2",
            "http://h/ocs;token=***/x?key=***&a=1#access_token=***&state=2",
        ),
        ("http://h/x;jsessionid=abc?q=1", "http://h/x;jsessionid=***?q=1"),
        ("http://h/x?next=/a/b&sig=x/y,z&q=1", "http://h/x?next=/a/b&sig=***&q=1"),
    ],
)
def test_redact_uri_examples(uri: str, redacted: str) -> None:
    assert redact_uri(uri) == redacted


def test_redact_text_masks_every_uri_in_a_message() -> None:
    message = (
        "ClientConnectorError: Cannot connect to host http://u:S3cret@h:80/x?token=T0k "
        "ssl:default [URL('https://a:B1g@h/y#access_token=Z9')]"
    )
    redacted = redact_text(message)
    for secret in ("S3cret", "T0k", "B1g", "Z9"):
        assert secret not in redacted
    assert redacted.startswith("ClientConnectorError: Cannot connect to host http://***@h:80/x")


@pytest.mark.parametrize("log_format", ["console", "json", "genesys"])
def test_a_logged_traceback_shows_no_local_values(log_format: str) -> None:
    """With rich installed, structlog's console tracebacks print every frame's locals by
    default: a local holding a URI with its password would be printed."""
    import io
    import sys

    import structlog

    from ocsd.logs import configure_logging, get_logger, trace_lines

    def failing(uri: str) -> None:
        secret_in_a_local = uri
        raise ValueError(f"failed for {len(secret_in_a_local)} characters")

    password = "".join(reversed("WPterc3S"))  # not in the source, which a traceback quotes
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, write_through=True)
    previous, sys.stdout = sys.stdout, out
    try:
        configure_logging(log_format)  # type: ignore[arg-type]
        try:
            failing(f"http://admin:{password}@127.0.0.1/ocs")
        except ValueError:
            get_logger("test").exception("it failed")
    finally:
        sys.stdout = previous
        structlog.reset_defaults()
        trace_lines.configure(None, None)
    text = raw.getvalue().decode()
    out.detach()
    assert "it failed" in text
    assert "ValueError" in text
    assert password not in text
