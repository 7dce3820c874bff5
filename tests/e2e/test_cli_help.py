"""``--help`` of every command: a one-line summary in ``ocsd --help``, a description, and
every option's default; ``run --help`` names OCSD_CONFIG and the OCSD_* variables.

Before: options such as ``--config``, ``--timeout``, ``--host`` and ``--log-format`` showed
no default, ``run --help`` said nothing of the environment, and ``ocsd ctl status
--help`` had no description.
"""

from __future__ import annotations

import argparse
import re

import pytest

from ocsd.cli.main import build_parser


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(words, parser, one-line summary) of every command and ctl action, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            summaries = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield (*path, name), sub, summaries.get(name)
                yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(build_parser()))


def test_the_command_tree_is_what_the_help_covers() -> None:
    names = {" ".join(words) for words, _, _ in COMMANDS}
    assert {"run", "check-config", "ctl", "simulate", "sink", "schema", "demo"} <= names
    assert {"ctl status", "ctl health", "ctl unload", "ctl force-unload"} <= names


@pytest.mark.parametrize(
    ("words", "parser", "summary"), COMMANDS, ids=[" ".join(w) for w, _, _ in COMMANDS]
)
def test_every_command_has_a_summary_and_every_option_its_default(
    words: tuple[str, ...], parser: argparse.ArgumentParser, summary: str | None
) -> None:
    assert summary and "\n" not in summary and len(summary) <= 100, (words, summary)
    assert parser.description, f"ocsd {' '.join(words)} has no description"
    formatter = parser._get_formatter()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        help_text = formatter._get_help_string(action)  # what --help prints for it
        assert action.help, f"ocsd {' '.join(words)} {action.option_strings}: no help"
        if action.option_strings or action.nargs == "?":
            assert "default" in help_text.lower(), (
                f"ocsd {' '.join(words)} {'/'.join(action.option_strings) or action.dest}: "
                f"no default in {help_text!r}"
            )


@pytest.mark.parametrize("words", [w for w, _, _ in COMMANDS], ids=" ".join)
async def test_help_runs_and_shows_defaults(run_ocsd, ocsd_env, words: tuple[str, ...]) -> None:
    done = await run_ocsd(*words, "--help", env=ocsd_env())
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith(f"usage: ocsd {' '.join(words)}")
    options = re.findall(r"^  --?\w", done.stdout, flags=re.MULTILINE)
    if len(options) > 1:  # more than -h/--help
        assert "default" in done.stdout


async def test_run_help_names_the_environment(run_ocsd, ocsd_env) -> None:
    done = await run_ocsd("run", "--help", env=ocsd_env())
    text = " ".join(done.stdout.split())
    assert "OCSD_CONFIG" in text
    assert "OCSD_<OPTION>" in text and "OCSD_CONTROL_PORT" in text


async def test_top_level_help_lists_each_command_on_one_line(run_ocsd, ocsd_env) -> None:
    done = await run_ocsd("--help", env=ocsd_env())
    assert done.returncode == 0
    for name in ("run", "check-config", "ctl", "simulate", "sink", "schema", "demo"):
        assert re.search(rf"^    {re.escape(name)}\b", done.stdout, flags=re.MULTILINE), name
