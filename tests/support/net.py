"""Addresses for tests: everything listens on and talks to 127.0.0.1 only."""

from __future__ import annotations

import contextlib
import socket

from aiohttp import web

LOCALHOST = "127.0.0.1"
#: The path the daemon posts to in tests (the recording receivers answer on any path).
RECEIVER_PATH = "/ocs/campaign-group-state"


def free_ports(count: int = 1) -> list[int]:
    """``count`` different TCP ports on 127.0.0.1 where nothing listens right now (all
    bound at once while they are picked, so they cannot be the same port twice)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind((LOCALHOST, 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def free_port() -> int:
    """A TCP port on 127.0.0.1 where nothing listens right now."""
    return free_ports(1)[0]


def refusing_uri(path: str = RECEIVER_PATH) -> str:
    """An http URI on a 127.0.0.1 port where nothing listens (connection refused)."""
    return f"http://{LOCALHOST}:{free_port()}{path}"


def bound_port(runner: web.BaseRunner) -> int:
    """The port the (one) started site of ``runner`` listens on; ask after ``site.start()``."""
    addresses = runner.addresses
    assert addresses, "no site of this runner has started"
    return int(addresses[0][1])
