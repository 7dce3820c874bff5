"""Standard output for log lines that outlives its reader.

A daemon's stdout is often a pipe (``ocsd run | tee``, a supervisor, a container
runtime). When whatever reads it goes away, every write raises ``BrokenPipeError``:
unhandled, that took down the signal handler that logs "stop requested" before it
stops the daemon, so SIGTERM was ignored. Log lines are not worth a daemon: once the
reader is gone, /dev/null takes its place on the same file descriptor (so buffered
bytes, structlog, the trace lines and ``print`` all go on without an error), and one
line on stderr says so. Other write errors (a full disk) lose that line only.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import IO, Any

_reader_gone = False
_write_error_said = False


def stdout_failed(exc: OSError, stream: IO[bytes] | IO[str] | None = None) -> None:
    """What to do when writing a log line to ``stream`` (stdout) raised ``exc``."""
    global _reader_gone, _write_error_said
    if exc.errno in (errno.EPIPE, errno.ECONNRESET):
        if _reader_gone:
            return
        _reader_gone = True
        try:
            fileno = (stream or sys.stdout).fileno()
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fileno)
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass  # not a real file: its writes keep failing and are dropped here
        _say("ocsd: the reader of standard output went away; log lines are discarded")
    elif not _write_error_said:
        _write_error_said = True
        _say(f"ocsd: a log line could not be written to standard output: {exc}")


def _say(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # stderr is gone too: nobody is listening


class SurvivingOutput:
    """A stream's ``write`` and ``flush`` that never raise ``OSError`` (structlog's
    loggers take these two from the file they are given)."""

    def __init__(self, stream: IO[Any]) -> None:
        self._stream: IO[Any] = stream

    def write(self, data: Any) -> int:
        try:
            return int(self._stream.write(data))
        except OSError as exc:
            stdout_failed(exc, self._stream)
            return 0

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            stdout_failed(exc, self._stream)

    def isatty(self) -> bool:
        return bool(self._stream.isatty())
