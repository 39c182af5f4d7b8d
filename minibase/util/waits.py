"""Waiting for an :class:`asyncio.Event` with a timeout, without losing a cancellation.

``asyncio.wait_for(event.wait(), t)`` on Python 3.10 and 3.11 returns normally when the task
is cancelled in the same loop step as the event is set: the cancellation is gone. A
background loop that exits only by being cancelled (the outbox dispatcher, the realtime
hub's follower, a socket's heartbeat) then runs on, and whatever awaits its end after
cancelling it waits for ever (a clean-clone CI run hung 120 s in a test's shutdown).
``asyncio.wait`` lets the cancellation through.
"""

from __future__ import annotations

import asyncio

__all__ = ["wait_event"]


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Whether ``event`` is set within ``timeout`` seconds; a cancellation always raises."""
    if event.is_set():
        return True
    waiting = asyncio.ensure_future(event.wait())
    try:
        done, _ = await asyncio.wait((waiting,), timeout=timeout)
    finally:
        if not waiting.done():
            waiting.cancel()
    return bool(done)
