"""Every argument of every ``ocsd`` command is checked while the command line is parsed:
a bad one gets one line on stderr naming the option, exit status 2 (usage), never a
traceback, and nothing starts. Exit 1 stays for "the daemon refused" / "the check failed".

Before: ``ocsd ctl --url notaurl status`` printed a ValueError traceback (exit 1),
``ocsd sink --port 99999`` listened on port 34463 (99999 mod 65536), argparse's own errors
printed the whole usage first (three lines and more), ``ocsd demo``'s range errors went
to stdout, ``ocsd sink --max-body 0`` was a JSON log line, ``ocsd ctl start 101 --mode
warp`` and ``ocsd simulate --mode warp`` reached the daemon or the model before being
refused without naming the option, and ``ocsd ctl --token 'a b'`` could put a header
urllib refuses with a traceback.

The whole table runs as real subprocesses of ``python -m ocsd``; each case is bounded by
run_ocsd's time limit.
"""

from __future__ import annotations

import pytest

# (arguments, text the one-line error must hold: the option or argument it names)
BAD_ARGUMENTS: list[tuple[tuple[str, ...], str]] = [
    ((), "COMMAND"),
    (("warp",), "COMMAND"),
    # run and check-config
    (("run", "--config", ""), "--config"),
    (("run", "--config", "x" * 5000), "--config"),
    (("run", "--start-all=yes"), "--start-all"),
    (("run", "--bogus"), "--bogus"),
    (("run", "--duration", "soon"), "--duration"),
    (("run", "--threshold", "latency < 1s"), "--threshold"),
    (("run", "--report", "/nonexistent/dir/r.html"), "--report"),
    (("run", "--summary-json", "/nonexistent/dir/s.json"), "--summary-json"),
    (("replay", "feed.jsonl", "--uri", "nope"), "--uri"),
    (("replay", "feed.jsonl", "--uri", "http://127.0.0.1:9/", "--speed", "-1"), "--speed"),
    (("replay", "feed.jsonl"), "--uri"),
    (("check-config", "--config", ""), "--config"),
    (("check-config", "--config", "a\x01/" + "b" * 300), "--config"),
    (("schema", "extra"), "extra"),
    # ctl
    (("ctl", "--url", "notaurl", "status"), "--url"),
    (("ctl", "--url", "ftp://127.0.0.1:8090", "status"), "--url"),
    (("ctl", "--url", "http://127.0.0.1:99999", "status"), "--url"),
    (("ctl", "--url", "http://bad host:8090", "status"), "--url"),
    (("ctl", "--url", "http://127.0.0.1:8090/x?y", "health"), "--url"),  # asked /x?y/healthz
    (("ctl", "--url", "http://127.0.0.1:8090/#top", "health"), "--url"),
    (("replay", "f.jsonl", "--uri", "http://u:p/w@127.0.0.1:9/"), "--uri"),  # host from "u"
    (("ctl", "--timeout", "-1", "status"), "--timeout"),
    (("ctl", "--timeout", "inf", "status"), "--timeout"),
    (("ctl", "--timeout", "soon", "status"), "--timeout"),
    (("ctl", "--token", "with space", "status"), "--token"),
    (("ctl", "--token", "line\nbreak", "status"), "--token"),
    (("ctl", "--config", "", "status"), "--config"),
    (("ctl",), "ACTION"),
    (("ctl", "warp", "101"), "ACTION"),
    (("ctl", "status", "x"), "dbid"),
    (("ctl", "status", "99999999999999999999"), "dbid"),
    (("ctl", "load", "0"), "dbid"),
    (("ctl", "unload"), "dbid"),
    (("ctl", "stop", "-5"), "dbid"),
    (("ctl", "start", "101", "--mode", "warp"), "--mode"),
    (("ctl", "start", "101", "--optimizeby", "luck"), "--optimizeby"),
    (("ctl", "setmode", "101", "--goal", "5000"), "--goal"),
    (("ctl", "setmode", "101", "--goal", "high"), "--goal"),
    (("ctl", "load", "101", "--auto-complete=1"), "--auto-complete"),
    # sink
    (("sink", "--port", "99999"), "--port"),
    (("sink", "--port", "-1"), "--port"),
    (("sink", "--port", "http"), "--port"),
    (("sink", "--port", "8080.5"), "--port"),
    (("sink", "--host", "bad host"), "--host"),
    (("sink", "--host", ""), "--host"),
    (("sink", "--max-body", "0"), "--max-body"),
    (("sink", "--keep-bytes", "-5"), "--keep-bytes"),
    (("sink", "--idle-timeout", "0"), "--idle-timeout"),
    (("sink", "--idle-timeout", "nan"), "--idle-timeout"),
    (("sink", "--max-connections", "0"), "--max-connections"),
    (("sink", "--log-format", "xml"), "--log-format"),
    (("sink", "--record", ""), "--record"),
    # demo
    (("demo", "--port", "99999"), "--port"),
    (("demo", "--control-port", "70000"), "--control-port"),
    (("demo", "--time-scale", "0"), "--time-scale"),
    (("demo", "--time-scale", "inf"), "--time-scale"),
    (("demo", "--interval", "-1"), "--interval"),
    (("demo", "--interval", "1.5"), "--interval"),
    (("demo", "--log-format", "xml"), "--log-format"),
    (("demo", "--record", ""), "--record"),
    # simulate
    (("simulate", "--until", "-5"), "--until"),
    (("simulate", "--until", "nan"), "--until"),
    (("simulate", "--interval", "0"), "--interval"),
    (("simulate", "--seed", "-1"), "--seed"),
    (("simulate", "--seed", "lucky"), "--seed"),
    (("simulate", "--goal", "99999"), "--goal"),
    (("simulate", "--mode", "warp"), "--mode"),
    (("simulate", "--optimizeby", "luck"), "--optimizeby"),
    (("simulate", "--format", "xml"), "--format"),
    (("simulate", "--output", ""), "--output"),
    (("simulate", "--until", "10", "--to-completion"), "--to-completion"),
    (("simulate", "--config", ""), "--config"),
]


@pytest.mark.parametrize(
    ("args", "names"), BAD_ARGUMENTS, ids=[" ".join(a)[:60] or "none" for a, _ in BAD_ARGUMENTS]
)
async def test_a_bad_argument_is_one_line_naming_it_and_exit_2(
    run_ocsd, ocsd_env, args: tuple[str, ...], names: str
) -> None:
    done = await run_ocsd(*args, env=ocsd_env())
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    assert done.returncode == 2, output
    assert done.stdout == "", f"a usage error goes to stderr only: {done.stdout!r}"
    lines = done.stderr.splitlines()
    assert len(lines) == 1, f"one line, got {len(lines)}: {done.stderr}"
    assert lines[0].startswith("ocsd"), lines[0]
    assert names in lines[0], f"{names} not named in: {lines[0]}"


async def test_out_of_range_dbid_says_out_of_range(run_ocsd, ocsd_env) -> None:
    """It said "must be a number" (the control API's word for it)."""
    done = await run_ocsd("ctl", "status", "99999999999999999999", env=ocsd_env())
    assert done.stderr.strip() == (
        "ocsd ctl status: dbid: 99999999999999999999 is out of range; "
        "allowed: a whole number from 1 to 2147483647"
    )


async def test_sink_port_99999_is_refused_not_wrapped(run_ocsd, ocsd_env) -> None:
    """It listened on 34463 (99999 mod 65536) and said so as if all was well."""
    done = await run_ocsd("sink", "--port", "99999", env=ocsd_env(), within=10)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "ocsd sink: --port: 99999 is out of range; "
        "allowed: a whole number from 0 to 65535 (0: any free port)"
    )
    assert "34463" not in done.stdout + done.stderr
