"""The ``ocsd`` command and its subcommands."""

from ocsd.cli.main import main

__all__ = ["main"]
