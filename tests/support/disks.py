"""Real filesystems that fail writes: a small tmpfs (full after 1 MB) and a read-only one.

Mounting needs root (CAP_SYS_ADMIN). Without it, :func:`small_filesystem` says why it
cannot mount, so a test can fall back to a file-size limit (``RLIMIT_FSIZE``) on the
daemon subprocess; :func:`read_only_directory` falls back to a directory without write
permission (which binds every user but root).
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

#: Seconds a mount or an unmount may take.
MOUNT_TIMEOUT = 20


def _run(*command: str) -> str:
    """Run a short command; '' when it worked, else why not (one line)."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=MOUNT_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{' '.join(command)}: {exc}"
    if done.returncode != 0:
        return f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()[-200:]}"
    return ""


def _unmount(directory: Path) -> None:
    if _run("umount", str(directory)):
        _run("umount", "-l", str(directory))  # still busy: detach it now, freed when closed


@contextlib.contextmanager
def small_filesystem(directory: Path, size: str = "1m") -> Iterator[str]:
    """Mount a tmpfs of ``size`` on ``directory`` (made if missing) for the block;
    yields '' when mounted, else why it could not be (nothing mounted then)."""
    directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        yield "not root: cannot mount a tmpfs"
        return
    why = _run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(directory))
    if why:
        yield why
        return
    try:
        yield ""
    finally:
        _unmount(directory)


@contextlib.contextmanager
def read_only_directory(directory: Path) -> Iterator[str]:
    """``directory`` read-only for this process for the block: a read-only tmpfs as
    root, else no write permission. Yields how ('read-only mount' or 'chmod 555')."""
    directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        why = _run("mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(directory))
        if not why:
            try:
                yield "read-only mount"
            finally:
                _unmount(directory)
            return
    directory.chmod(0o555)
    try:
        yield "chmod 555"
    finally:
        directory.chmod(0o755)


def file_size_limit(limit: int) -> Callable[[], None]:
    """A ``preexec_fn`` that caps every file the child writes at ``limit`` bytes."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply
