"""The daemon in the test's own process and event loop (``start_daemon`` fixture).

Before any in-process daemon starts, call :func:`freeze_heap` (the fixture does): see
there why.
"""

from __future__ import annotations

import contextlib
import gc
from dataclasses import dataclass
from typing import Any

from support.control import Control
from support.net import LOCALHOST


def freeze_heap() -> None:
    """Move everything the test process holds out of the garbage collector's sight.

    ``ocsd run`` turns the collector off during start-up and calls ``gc.freeze()`` after
    it (``_settle_heap`` in ocsd/service/daemon.py), so no generation-2 collection ever
    rescans the daemon's long-lived heap on its event loop. An in-process daemon shares
    its loop with pytest, whose own heap grows through a full run (every test module,
    hypothesis, schemathesis...): its gen-2 collections paused the loop up to 0.4-0.6 s
    late in the suite and made timing promises fail now and then (tests/integration/
    test_faults.py, "N of M ticks were later than 100 ms") though never in a test run
    alone. Freezing that heap right before the daemon starts gives the daemon what it has
    in production. What is frozen is never scanned or collected again: any cyclic garbage
    earlier tests left behind stays in memory; a test process can afford that.
    """
    gc.freeze()


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
    freeze_heap()
    daemon = Daemon(settings)
    await daemon.startup()
    stack.push_async_callback(daemon.shutdown)
    assert daemon.control_port, "the daemon did not report its control port"
    session = await stack.enter_async_context(aiohttp.ClientSession())
    control = Control(session, f"http://{LOCALHOST}:{daemon.control_port}")
    return InProcess(daemon, control, settings)
