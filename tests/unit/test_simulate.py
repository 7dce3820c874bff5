"""``ocsd simulate``: the timeline rows, the summary, and the errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from ocsd.cli.arguments import Parser
from ocsd.cli.simulate import COLUMNS, configure_parser, run

SMALL_INI = """
[ocsd]
seed = 11

[calling-list:Small]
dbid = 501
records = 300
max-attempts = 2
redial-delay = 120

[campaign-group:Tiny@Desk]
dbid = 500
campaign = Tiny
group = Desk
queue = 7500
agents = 8
talk-time = 60
wrap-up-time = 10
dial-mode = predictive
optimize-by = overdial-rate
optimize-goal = 3
calling-lists = Small
"""


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OCSD_CONFIG", "OCSD_SEED", "OCSD_STATS_WINDOW"):
        monkeypatch.delenv(name, raising=False)


def simulate(*argv: str) -> int:
    """``ocsd simulate ARGV`` in process: its exit status (2 for a bad argument, refused
    by the parser as ``ocsd`` refuses it)."""
    parser = Parser(prog="ocsd simulate")
    configure_parser(parser)
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    return run(args)


@pytest.fixture
def small_ini(tmp_path: Path) -> str:
    path = tmp_path / "small.ini"
    path.write_text(SMALL_INI, encoding="utf-8")
    return str(path)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_csv_timeline_of_the_embedded_example(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "timeline.csv"
    assert simulate("--until", "600", "--interval", "60", "--output", str(out)) == 0
    rows = read_csv(out)
    assert len(rows) == 10
    assert list(rows[0])[: len(COLUMNS)] == list(COLUMNS)
    assert "Renewals_Q4:hit_ratio" in rows[0] and "Renewals_Lapsed:time_to_complete" in rows[0]
    assert [float(r["time"]) for r in rows] == [60.0 * i for i in range(1, 11)]
    last = rows[-1]
    assert 0.0 < float(last["busy_factor"]) <= 1.0
    assert 0.0 < float(last["hit_ratio"]) < 1.0
    assert int(last["records_finished"]) + int(last["records_remaining"]) == 15500
    summary = capsys.readouterr().err
    assert "Renewals@Retention Team (dbid 101): predictive, optimize by busy-factor 85%" in summary
    for text in ("simulated   0:10:00", "records", "final", "whole run", "wall time", "10 rows"):
        assert text in summary
    assert "x real time" in summary


def test_jsonl_timeline_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        simulate("--group", "103", "--format", "jsonl", "--until", "300", "--interval", "100") == 0
    )
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert [row["time"] for row in rows] == [100.0, 200.0, 300.0]
    for row in rows:
        assert row["busy_factor"] is None  # a GVP group has no agents
        assert [cl["name"] for cl in row["calling_lists"]] == ["Survey_Nov"]
        assert row["calling_lists"][0]["dbid"] == 221
    assert "Customer Survey@IVR (dbid 103): predictive-gvp" in captured.err
    assert "40 IVR ports" in captured.err  # [campaign-group:Customer Survey@IVR] ports = 40


def test_to_completion(small_ini: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run.csv"
    assert simulate("--config", small_ini, "--to-completion", "--output", str(out)) == 0
    rows = read_csv(out)
    last = rows[-1]
    assert last["records_remaining"] == "0" and last["calls_in_progress"] == "0"
    assert float(last["time_to_complete"]) == 0.0
    assert all(r["records_remaining"] != "0" or r["calls_in_progress"] != "0" for r in rows[:-1])
    summary = capsys.readouterr().err
    assert "to completion: every record finished" in summary
    assert "300 finished, 0 left" in summary
    assert "seed 11" in summary  # [ocsd] seed of the file


def test_to_completion_gives_up_when_nothing_can_happen(
    small_ini: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # progressive with no agent never dials: the run stops instead of simulating 60 days
    path = Path(small_ini)
    path.write_text(SMALL_INI.replace("agents = 8", "agents = 0"), encoding="utf-8")
    assert simulate("--config", small_ini, "--to-completion", "--mode", "progressive") == 1
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) < 100
    assert "NOT complete after" in captured.err and "300 records left" in captured.err


def test_mode_override_and_seed(small_ini: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = ("--config", small_ini, "--until", "900", "--mode", "progressive")
    assert simulate(*args, "--seed", "5") == 0
    first = capsys.readouterr()
    assert "Tiny@Desk (dbid 500): progressive; 8 agents" in first.err
    assert simulate(*args, "--seed", "5") == 0
    assert capsys.readouterr().out == first.out  # same seed, same timeline
    assert simulate(*args, "--seed", "6") == 0
    assert capsys.readouterr().out != first.out


def test_goal_override(small_ini: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        simulate("--config", small_ini, "--until", "60", "--optimizeby", "busy", "--goal", "90")
        == 0
    )
    assert "optimize by busy-factor 90%" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ("--group", "Nope"),
            "unknown campaign group 'Nope'; configured: 'Renewals@Retention Team'",
        ),
        (("--mode", "sideways"), "unknown DialMode 'sideways'"),
        (("--mode", "predictive", "--optimizeby", "overdial"), "optimizegoal"),
        (("--until", "0"), "--until: 0.0 is out of range; allowed: 1 to 5184000 simulated seconds"),
        (("--interval", "-1"), "--interval: -1.0 is out of range; allowed: 0.001 to 5184000"),
        (("--until", "inf"), "--until: inf is out of range"),  # it ran until Ctrl-C
        (("--interval", "nan"), "--interval: nan is out of range"),
        (("--interval", "0.001"), "would write 3,600,000 rows up to 3600 s; at most 1,000,000"),
        (("--config", "/nonexistent/ocsd.ini"), "configuration error: /nonexistent/ocsd.ini"),
    ],
)
def test_errors_exit_2_with_one_line(
    argv: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert simulate(*argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_config_error_in_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.ini"
    bad.write_text("[campaign-group:X]\ndbid = 1\n", encoding="utf-8")
    assert simulate("--config", str(bad)) == 2
    assert "configuration error" in capsys.readouterr().err
