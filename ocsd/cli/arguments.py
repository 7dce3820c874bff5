"""What every ``ocsd`` command line has in common: one-line usage errors (exit 2) and help
that shows each option's default.

A bad argument is refused while the command line is parsed, before anything starts: one
line on stderr naming the option, the value and what it accepts, exit status 2 (usage),
distinct from 1 (the daemon refused, a check failed). The argument types below check
values against the same ranges as the configuration (:mod:`ocsd.config.ranges`), so an
option and the setting it stands for accept the same values.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from enum import IntEnum
from pathlib import Path
from typing import Any, NoReturn

from ocsd.config.ranges import Bound, host_problem, path_problem, shown, uri_problem
from ocsd.core.genesys import parse_enum
from ocsd.logs.redact import redact_uri

#: Exit status of a command-line mistake (as argparse's own): distinct from 1, a refusal.
USAGE = 2

#: ``--port`` of the sink and the demo: 0 asks the system for any free port.
LISTEN_PORT = Bound(0, 65_535, whole=True, note="0: any free port")


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default, unless the help already says it.

    argparse's own formatter writes ``(default: None)`` for an option whose default is
    decided later (the configuration, the environment): such options say their default
    in words instead, and a flag shows ``(default: off)``.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "default" in text.lower() or default is argparse.SUPPRESS or default is None:
            return text
        if not action.option_strings and action.nargs not in ("?", "*"):
            return text  # a required positional has no default
        if isinstance(default, bool):
            return f"{text} (default: {'on' if default else 'off'})"
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: ``ocsd sink: argument --port: ...``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """One line on stderr, ``ocsd ctl: --timeout: ...`` (argparse printed the whole
        usage first, then ``error: argument --timeout: ...``), exit status 2."""
        text = " ".join(message.split()).removeprefix("argument ")
        self.exit(USAGE, f"{self.prog}: {text}\n")


def usage_error(prog: str, message: str) -> int:
    """Print a usage error found after parsing (one line) and return its exit status."""
    print(f"{prog}: {' '.join(message.split())}", file=sys.stderr)
    return USAGE


def _number(text: str, whole: bool) -> float:
    """``text`` as a number (a whole one if ``whole``), or ArgumentTypeError."""
    written = text.strip()
    try:
        if whole:
            return int(written)
        value = float(written)
    except ValueError:
        kind = "a whole number" if whole else "a number"
        raise argparse.ArgumentTypeError(f"{shown(text)} is not {kind}") from None
    return value  # inf and nan are refused by the bound, naming its range


def bounded(bound: Bound) -> Callable[[str], Any]:
    """An argparse type: a number within ``bound`` (an int when the bound is whole)."""

    def parse(text: str) -> Any:
        value = _number(text, bound.whole)
        if problem := bound.problem(value):
            raise argparse.ArgumentTypeError(problem)
        return int(value) if bound.whole else value

    return parse


def listen_port(text: str) -> int:
    """An argparse type: a port to listen on, 1 to 65535, or 0 for any free one."""
    value: int = bounded(LISTEN_PORT)(text)
    return value


def http_url(text: str) -> str:
    """An argparse type: an http:// or https:// URL with a host (and a port that fits)."""
    if problem := uri_problem(text, redact_uri(text)):
        raise argparse.ArgumentTypeError(problem)
    return text


def base_url(text: str) -> str:
    """An argparse type: an http(s) URL that paths are appended to (``ocsd ctl --url``),
    so without a query or fragment (``http://h/x?y`` asked for ``/x?y/healthz``)."""
    text = http_url(text)
    if "?" in text or "#" in text:
        raise argparse.ArgumentTypeError(
            f"{redact_uri(text)!r}: a base URL takes no '?' query or '#' fragment; give "
            "the scheme, host, port and any path prefix only"
        )
    return text


def host(text: str) -> str:
    """An argparse type: a host name or an IP address to listen on."""
    if problem := host_problem(text):
        raise argparse.ArgumentTypeError(problem)
    return text


def file_path(text: str) -> str:
    """An argparse type: a text that can name a file (not whether the file exists)."""
    if problem := path_problem(text):
        raise argparse.ArgumentTypeError(problem)
    return text


def record_path(text: str) -> Path:
    """An argparse type: a file to write (``--record``, ``--output``), as a Path."""
    return Path(file_path(text))


def output_file(text: str) -> Path:
    """An argparse type: a file to write at the end of a run, in a directory that exists
    (checked now: a report lost after a ten-minute run is found out too late)."""
    path = record_path(text)
    if not path.resolve().parent.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text!r}: directory {str(path.resolve().parent)!r} does not exist"
        )
    return path


def bearer_token(text: str) -> str:
    """An argparse type: a token an HTTP header can carry (printable ASCII, no spaces);
    a newline in it made urllib raise ValueError with a traceback."""
    if not text or not all(33 <= ord(c) < 127 for c in text):
        raise argparse.ArgumentTypeError("must be printable ASCII without spaces (value not shown)")
    return text


def genesys_value(enum: type[IntEnum]) -> Callable[[str], str]:
    """An argparse type: a name or number of ``enum`` (DialMode, OptimizeBy), kept as
    written for the request; refused with the accepted values."""

    def parse(text: str) -> str:
        try:
            parse_enum(enum, text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    return parse
