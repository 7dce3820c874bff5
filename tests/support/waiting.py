"""Bounded waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def eventually(
    condition: Callable[[], bool], within: float = 5.0, what: str = "condition"
) -> None:
    """Poll ``condition`` every 20 ms until it holds; fail after ``within`` s."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {within} s")
        await asyncio.sleep(0.02)
