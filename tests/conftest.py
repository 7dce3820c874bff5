"""The shared test harness is the plugin package tests/support/ (fixtures in support/plugin.py)."""

pytest_plugins = ["support.plugin"]
