"""The daemon in the test's own process and event loop (``start_daemon`` fixture)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from support.control import Control
from support.net import LOCALHOST


@dataclass
class InProcess:
    daemon: Any  # ocsd.service.daemon.Daemon
    control: Control
    settings: Any

    @property
    def base_url(self) -> str:
        return self.control.base


async def start_in_process(stack: contextlib.AsyncExitStack, settings: Any) -> InProcess:
    """Start a Daemon on ``settings`` in this event loop, with a Control client.

    ``stack`` shuts the daemon down and closes the client when it closes.
    """
    import aiohttp

    from ocsd.service.daemon import Daemon

    assert settings.control_port == 0, "use an ephemeral control port in tests"
    daemon = Daemon(settings)
    await daemon.startup()
    stack.push_async_callback(daemon.shutdown)
    assert daemon.control_port, "the daemon did not report its control port"
    session = await stack.enter_async_context(aiohttp.ClientSession())
    control = Control(session, f"http://{LOCALHOST}:{daemon.control_port}")
    return InProcess(daemon, control, settings)
