"""Configuration files with every kind of mistake: refused with one line naming the line.

Nothing of this kind may produce a traceback or change a running daemon's state: a
table of mistakes (one of each kind, the delivery options included), a fuzzer that
breaks a valid file at random, ``ocsd check-config`` on broken files, and a reload of a
broken file into a running daemon.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.ini import GROUP_C, RANGE_MISTAKES, make_sections, render_ini, with_line
from support.inprocess import freeze_heap

from ocsd.config.settings import ConfigError, load_settings
from ocsd.delivery.signing import new_secret

VALID = render_ini(make_sections("http://127.0.0.1:9/events"))
SECRET = new_secret()


#: (id, section, line added, a fragment the message must hold)
MISTAKES = [
    ("unknown-option", "ocsd", "colour = blue", "unknown option"),
    ("misspelt-ocserver-option", "OCServer", "http-response-timout = 5", "unknown option"),
    ("bool", "OCServer", "send-campaigngroup-states = maybe", "send-campaigngroup-states"),
    ("int", "OCServer", "http-connection-pool-size = ten", "http-connection-pool-size"),
    (
        "range",
        "OCServer",
        "http-connection-pool-size = 0",
        "'0' is out of range; allowed: a whole number from 1 to 1000",
    ),
    (
        "negative-timeout",
        "OCServer",
        "http-response-timeout = -1",
        "'-1' is out of range; allowed: 0.1 to 3600 seconds",
    ),
    ("port", "ocsd", "control-port = 70000", "control-port"),
    ("log-format", "ocsd", "log-format = xml", "log-format"),
    ("time-zone", "ocsd", "schedule-timezone = Mars/Olympus", "unknown time zone"),
    ("delivery-mode", "ocsd", "delivery-mode = sometimes", "delivery-mode"),
    ("retry-schedule-text", "ocsd", "retry-schedule = 1,soon,5", "'soon' is not a number"),
    ("retry-schedule-empty-item", "ocsd", "retry-schedule = 1,,5", "comma-separated"),
    (
        "retry-schedule-zero",
        "ocsd",
        "retry-schedule = 0,1",
        "'0' is out of range; allowed: 0.01 to 86400 seconds",
    ),
    ("retry-schedule-nan", "ocsd", "retry-schedule = nan", "'nan' is out of range"),
    ("max-attempts-zero", "ocsd", "max-attempts = 0", "max-attempts"),
    ("secret-prefix", "ocsd", "webhook-secret = hunter2hunter2hunter2hunter2", "whsec_"),
    ("secret-base64", "ocsd", "webhook-secret = whsec_not*base64*at*all", "not valid base64"),
    ("secret-short", "ocsd", "webhook-secret = whsec_c2hvcnQ=", "24 to 64 bytes"),
    ("token-short", "ocsd", "control-token = abc", "at least 16 characters"),
    ("token-space", "ocsd", "control-token = abcdefgh ijklmnopqrstu", "without spaces"),
    ("ca-file-missing", "ocsd", "ca-file = /nonexistent/ca.pem", "no such file"),
    ("uri-scheme", "OCServer", "campaigngroup-states-uri = ftp://x/y", "http:// or https://"),
    ("group-dial-mode", "campaign-group:Survey@IVR", "dial-mode = telepathic", "dial-mode"),
    ("group-unknown-option", "campaign-group:Survey@IVR", "colour = red", "unknown option"),
    ("list-rate", "calling-list:Survey_Nov", "live-answer-rate = 2", "live-answer-rate"),
    ("duplicate-option", "tenant", "name = again", "appears twice"),
    ("shard", "ocsd", "shard = 3/2", "'3/2' is not K/N with 1 <= K <= N, nor auto"),
    (
        "continued-list-name",
        f"campaign-group:{GROUP_C}",
        "calling-lists = Survey_Nov\n  0",
        "list 'Survey_Nov\\n0'",
    ),
    *RANGE_MISTAKES,
]


@pytest.mark.parametrize(
    ("section", "line", "fragment"), [pytest.param(*m[1:], id=m[0]) for m in MISTAKES]
)
def test_each_mistake_names_its_line(tmp_path: Path, section: str, line: str, fragment: str):
    text, number = with_line(VALID, section, line)
    path = tmp_path / "ocsd.ini"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert "\n" not in message
    where = re.match(rf"{re.escape(str(path))}:(\d+): ", message)
    assert where, f"no file:line in {message!r}"
    if fragment != "appears twice":  # configparser names the second occurrence, same place
        assert int(where[1]) == number, f"line {where[1]} named, the mistake is on {number}"
    assert fragment in message, message
    for secret_word in ("hunter2", "not*base64", "abcdefgh ijkl"):
        assert secret_word not in message, "a secret value was echoed"


@pytest.mark.parametrize(
    ("text", "number", "fragment"),
    [
        pytest.param("[ocsd]\nlog-format json\n", 2, "not an INI line", id="no-equals"),
        pytest.param("log-format = json\n", 1, "before any [section]", id="no-section"),
        pytest.param("[ocsd]\n[ocsd]\n", 2, "appears twice", id="duplicate-section"),
        pytest.param(
            "[ocsd]\nseed = 1\n\n  log-format = xml\n", 4, "log-format", id="indented-option"
        ),
        pytest.param("[ocsd]\nseed = 1\n  2\n", 2, "seed", id="continued-value"),
        pytest.param("[paint]\ncolour = red\n", 1, "unknown section", id="unknown-section"),
        pytest.param("[calling-list:]\ndbid = 3\n", 1, "needs a name", id="unnamed-list"),
        pytest.param(
            "[campaign-group:G]\ndbid = 1\n",
            1,
            "campaign: is required and not set; add a line 'campaign = ...' to the section",
            id="group-missing-fields",
        ),
    ],
)
def test_structural_mistakes(tmp_path: Path, text: str, number: int, fragment: str) -> None:
    path = tmp_path / "ocsd.ini"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(caught.value).startswith(f"{path}:{number}: "), caught.value
    assert fragment in str(caught.value)


def test_reliable_paths_must_be_usable(tmp_path: Path) -> None:
    base = make_sections("http://127.0.0.1:9/events")
    cases = [
        ({"delivery-mode": "reliable", "outbox-path": tmp_path / "no" / "o.db"}, "outbox-path"),
        ({"delivery-mode": "reliable", "outbox-path": tmp_path}, "is a directory"),
        (
            {
                "delivery-mode": "reliable",
                "outbox-path": tmp_path / "same",
                "dead-letter-path": tmp_path / "same",
            },
            "must not be the outbox-path",
        ),
    ]
    for options, fragment in cases:
        sections = {**base, "ocsd": {**base["ocsd"], **options}}
        path = tmp_path / "ocsd.ini"
        path.write_text(render_ini(sections))
        with pytest.raises(ConfigError) as caught:
            load_settings(path)
        assert re.match(rf"{re.escape(str(path))}:\d+: \[ocsd\] ", str(caught.value))
        assert fragment in str(caught.value)


def test_reliable_paths_must_not_write_over_what_ocsd_reads(tmp_path: Path, tls_material) -> None:
    """A dead letter appended to the configuration file broke the next reload; an outbox
    over the CA bundle broke the next https connection."""
    base = make_sections("http://127.0.0.1:9/events")
    path = tmp_path / "ocsd.ini"
    ca = str(tls_material.ca_file)
    cases = [
        ({"dead-letter-path": path}, "dead-letter-path: must not be the configuration file"),
        ({"outbox-path": path}, "outbox-path: must not be the configuration file"),
        ({"ca-file": ca, "outbox-path": ca}, "outbox-path: must not be the ca-file"),
        ({"ca-file": ca, "dead-letter-path": ca}, "dead-letter-path: must not be the ca-file"),
    ]
    for options, fragment in cases:
        sections = {**base, "ocsd": {**base["ocsd"], "delivery-mode": "reliable", **options}}
        path.write_text(render_ini(sections))
        with pytest.raises(ConfigError) as caught:
            load_settings(path)
        assert re.match(rf"{re.escape(str(path))}:\d+: \[ocsd\] {fragment}$", str(caught.value))
    sections["ocsd"]["delivery-mode"] = "ocs"  # nothing is written then
    path.write_text(render_ini(sections))
    assert load_settings(path).dead_letter_path == ca


def test_ca_file_that_is_not_pem(tmp_path: Path, tls_material) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    text, number = with_line(VALID, "ocsd", f"ca-file = {junk}")
    path = tmp_path / "ocsd.ini"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf":{number}: \[ocsd\] ca-file: .*not a PEM bundle"):
        load_settings(path)
    path.write_text(with_line(VALID, "ocsd", f"ca-file = {tls_material.ca_file}")[0])
    assert load_settings(path).ca_file == str(tls_material.ca_file)


def test_environment_mistake_names_the_variable(tmp_path, monkeypatch) -> None:
    path = tmp_path / "ocsd.ini"
    path.write_text(VALID)
    monkeypatch.setenv("OCSD_RETRY_SCHEDULE", "1,-2")
    with pytest.raises(ConfigError, match=r"^environment OCSD_RETRY_SCHEDULE \(\[ocsd\]"):
        load_settings(path)
    monkeypatch.setenv("OCSD_RETRY_SCHEDULE", "0.5, 1 ,2")
    monkeypatch.setenv("OCSD_WEBHOOK_SECRET", SECRET)
    settings = load_settings(path)
    assert settings.retry_schedule == (0.5, 1.0, 2.0) and settings.attempts_allowed == 4
    assert SECRET not in repr(settings)


# -- a fuzzer: a valid file broken at random -------------------------------------------------

LINES = VALID.splitlines()
junk_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30
) | st.sampled_from(["[", "]", "=", ":", "[x", "a = [", "%(x)s", "\x00", "  indented = 1"])


@st.composite
def broken_files(draw: st.DrawFn) -> str:
    lines = list(LINES)
    for _ in range(draw(st.integers(1, 3))):
        index = draw(st.integers(0, len(lines)))
        how = draw(st.sampled_from(["insert", "replace-value", "delete", "cut"]))
        if how == "insert":
            lines.insert(index, draw(junk_text))
        elif index < len(lines) and how == "replace-value" and "=" in lines[index]:
            name = lines[index].split("=")[0]
            lines[index] = f"{name}= {draw(junk_text)}"
        elif index < len(lines) and how == "delete":
            del lines[index]
        elif index < len(lines):
            lines[index] = lines[index][: draw(st.integers(0, len(lines[index])))]
    return "\n".join(lines)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=broken_files())
def test_fuzzed_files_are_refused_cleanly_or_loaded(tmp_path_factory, text: str) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "ocsd.ini"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_settings(path)
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith(str(path)), message
        assert "\n" not in message.strip(), message


# -- the command line and a running daemon ----------------------------------------------------


async def test_check_config_refuses_without_a_traceback(run_ocsd, write_ini) -> None:
    text, number = with_line(VALID, "ocsd", "webhook-secret = whsec_tooshort")
    path = write_ini(text)
    done = await run_ocsd("check-config", "--config", str(path))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"ocsd: configuration error: {path}:{number}: [ocsd] webhook-secret: must hold 24 "
        "to 64 bytes after base64 decoding, holds 6 (value not shown)"
    ), done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    good = write_ini(
        with_line(VALID, "ocsd", f"webhook-secret = {SECRET}\ncontrol-token = {'t' * 20}")[0]
    )
    done = await run_ocsd("check-config", "--config", str(good))
    assert done.returncode == 0, done.stderr
    assert (
        "\n; webhook-secret is set (not shown: give it again in OCSD_WEBHOOK_SECRET" in done.stdout
    )
    assert "\n; control-token is set (not shown: give it again in OCSD_CONTROL_TOKEN" in done.stdout
    assert SECRET not in done.stdout and "t" * 20 not in done.stdout


async def test_a_broken_file_reloaded_changes_nothing(
    tmp_path, write_ini, rewrite_ini, receiver, control_for, monkeypatch
) -> None:
    import ocsd.service.config_file
    import ocsd.service.reload
    from ocsd.service.daemon import Daemon

    # each file is replaced atomically and reloaded here: no watcher's reloads beside
    # these, and no need to wait for a file to settle
    monkeypatch.setattr(ocsd.service.reload, "CONFIG_POLL_S", 3600.0)
    monkeypatch.setattr(ocsd.service.config_file, "SETTLE_S", 0.0)
    path = write_ini(make_sections(receiver.url))
    freeze_heap()  # as `ocsd run` freezes its heap: see support.inprocess
    daemon = Daemon(load_settings(path), config_path=str(path))
    await daemon.startup()
    try:
        control = control_for(f"http://127.0.0.1:{daemon.control_port}")
        await control.ok(101, "LoadCampaign")
        await receiver.wait_for(1)
        notifier, before = daemon.notifier, await control.group(101)
        for mistake in MISTAKES:
            rewrite_ini(path, with_line(VALID, mistake[1], mistake[2])[0])
            assert not await daemon.reload("test")
        assert daemon.state.reload_results["refused"] == len(MISTAKES)
        assert daemon.notifier is notifier and daemon.settings.campaigngroup_states_uri == (
            receiver.url
        )
        assert await control.group(101) == before
        await control.ok(101, "StartDialing")
        assert [r.action for r in await receiver.wait_for(2)] == [7, 9]
    finally:
        await daemon.shutdown()
