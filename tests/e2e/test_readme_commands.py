"""The README's commands work as written: its shell blocks run against a real sink and a
real daemon on 127.0.0.1, and what they print is what the README says.

Convention (README.md): every ```` ```sh ```` block is preceded by a marker line,

- ``<!-- readme-test: run -->``: this test runs the block, one line at a time, from a
  directory that looks like the repository's top (``config/`` is there);
- ``<!-- readme-test: skip (why) -->``: it does not (the install commands, ``ocsd demo``
  which runs until Ctrl-C and has its own test, anything that needs Docker).

A block is run exactly as written except for its ports: ``8080`` (the sink) and
``8090`` (the control API) become free ports, in the text and in the two ``OCSD_*``
variables that carry them (``OCSD_CONTROL_PORT``, and ``OCSD_CAMPAIGNGROUP_STATES_URI``
since the example configuration names port 8080). A line ending in ``&`` starts a
background process (``bash -c 'exec ...'``, so its pid is the command's own);
``kill %N ...`` stops those by their pids; every other line is ``bash -c LINE`` with a
time limit, and must exit 0.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.net import LOCALHOST, RECEIVER_PATH, free_ports
from support.processes import clean_env

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
#: The README's test command, which .ci/run runs and names as the README's.
TEST_COMMAND = "pip install -c requirements/constraints.txt -e '.[test]' && pytest"
#: Seconds one foreground line may take (the wait for the daemon included).
LINE_LIMIT = 45.0
#: Seconds a background process gets after SIGTERM before SIGKILL.
STOP_GRACE = 10.0

MARKER = re.compile(r"<!-- readme-test: (run|skip \(.+\)) -->")
BLOCK = re.compile(r"(?m)^(?P<marker>[^\n]*)\n```sh\n(?P<body>.*?)^```$", re.DOTALL)
KILL_JOBS = re.compile(r"^kill( %\d+)+$")


@dataclass
class ShellBlock:
    marker: str  # "run" or "skip (why)"
    lines: list[str]


def shell_blocks(text: str) -> list[ShellBlock]:
    """Every ```sh block of the README with the marker line above it ("" if none)."""
    blocks = []
    for match in BLOCK.finditer(text):
        marker = MARKER.fullmatch(match["marker"].strip())
        lines = [line for line in match["body"].splitlines() if line.strip()]
        blocks.append(ShellBlock(marker[1] if marker else "", lines))
    return blocks


def command_part(line: str) -> str:
    """The line without its trailing ``# comment``."""
    return re.split(r"\s+#\s", line, maxsplit=1)[0].strip()


def exec_form(command: str) -> str:
    """``A=1 cmd args > f`` as ``A=1 exec cmd args > f``: bash replaces itself by the
    command, so the pid started is the command's own."""
    match = re.fullmatch(r"((?:\w+=\S*\s+)*)(.*)", command, re.DOTALL)
    assert match is not None
    return f"{match[1]}exec {match[2]}"


@dataclass
class Shell:
    """Runs a README block line by line in ``cwd`` with ``env``; keeps what it printed."""

    cwd: Path
    env: dict[str, str]
    ports: dict[str, str]
    background: list[subprocess.Popen[bytes]] = field(default_factory=list)
    printed: list[tuple[str, str]] = field(default_factory=list)  # (line, its stdout)

    def run(self, line: str) -> None:
        for written, free in self.ports.items():
            line = line.replace(written, free)
        command = command_part(line)
        if KILL_JOBS.match(command):
            self.kill_jobs([int(job) for job in re.findall(r"%(\d+)", command)])
        elif command.endswith("&"):
            self.background.append(
                subprocess.Popen(
                    ["bash", "-c", exec_form(command.removesuffix("&").strip())],
                    cwd=self.cwd,
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                )
            )
        else:
            try:
                done = subprocess.run(
                    ["bash", "-c", line],
                    cwd=self.cwd,
                    env=self.env,
                    capture_output=True,
                    text=True,
                    timeout=LINE_LIMIT,
                    stdin=subprocess.DEVNULL,
                )
            except subprocess.TimeoutExpired:
                ended = [(p.args[-1], p.poll()) for p in self.background if p.poll() is not None]
                pytest.fail(f"{line!r} took over {LINE_LIMIT} s; background ended: {ended}")
            assert done.returncode == 0, f"{line!r} exited {done.returncode}: {done.stderr}"
            self.printed.append((line, done.stdout))

    def kill_jobs(self, jobs: list[int]) -> None:
        """``kill %1 %2``: SIGTERM to those background processes, by pid; they must end."""
        for job in jobs:
            proc = self.background[job - 1]
            assert proc.poll() is None, f"job %{job} ended before it was killed"
            os.kill(proc.pid, signal.SIGTERM)
        for job in jobs:
            assert self.background[job - 1].wait(STOP_GRACE) is not None

    def stop_all(self) -> None:
        for proc in self.background:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)


@pytest.fixture
def shell(tmp_path: Path) -> Shell:
    """A directory like the repository's top, a clean environment, free ports."""
    (tmp_path / "config").symlink_to(ROOT / "config", target_is_directory=True)
    sink_port, control_port = (str(p) for p in free_ports(2))
    bin_dir = str(Path(sys.executable).parent)
    env = clean_env(
        OCSD_CONTROL_PORT=control_port,
        OCSD_CAMPAIGNGROUP_STATES_URI=f"http://{LOCALHOST}:{sink_port}{RECEIVER_PATH}",
        PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""),
    )
    return Shell(tmp_path, env, {"8080": sink_port, "8090": control_port})


def test_every_shell_block_is_marked_and_the_readme_is_short() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    blocks = shell_blocks(text)
    assert [b for b in blocks if not b.marker] == [], "a ```sh block without a marker"
    assert [b.lines for b in blocks if b.marker.startswith("skip")] == [
        ["pip install . && ocsd demo"],
        [TEST_COMMAND],
    ]
    assert [b for b in blocks if b.marker == "run"], "no block is run"


#: "LoadCampaign (7) → Active" in the README's prose; "LoadCampaign (7) by client ->
#: Active" in the sink's summary of a body.
SAID = re.compile(r"(\w+)\s+\((\d+)\)\s+→\s+(\w+)")
LOGGED = re.compile(r"(\w+) \((\d+)\) by client -> (\w+)")


def test_driving_a_group_by_hand_does_what_the_readme_says(shell: Shell) -> None:
    text = README.read_text(encoding="utf-8")
    (block,) = [b for b in shell_blocks(text) if b.marker == "run"]
    try:
        for line in block.lines:
            shell.run(line)
    finally:
        shell.stop_all()
    ctl = [(line, out) for line, out in shell.printed if line.startswith("ocsd ctl ")]
    assert len(ctl) == 5 and all(out.strip() for _, out in ctl)  # each printed its answer
    received = "".join(out for line, out in shell.printed if "sink.log" in line)
    # one body per request, in order, every one accepted (periodic ones may come between)
    said = SAID.findall(text.split("## Drive a group by hand", 1)[1])
    assert [tuple(m) for m in LOGGED.findall(received)] == said
    assert len(said) == 5
    sink_log = (shell.cwd / "sink.log").read_text(encoding="utf-8")
    assert "notification refused" not in sink_log
    assert "ocsd sink stopped" in sink_log  # kill %1 stopped it gracefully
