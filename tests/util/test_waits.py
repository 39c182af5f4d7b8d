"""wait_event: set, timed out, and a cancellation in the step the event is set is kept
(asyncio.wait_for on Python 3.10/3.11 drops it: the control below shows it on this Python)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

import pytest

from minibase.util.waits import wait_event


def test_set_before_during_and_never() -> None:
    async def main() -> tuple[bool, bool, bool]:
        ev = asyncio.Event()
        ev.set()
        before = await wait_event(ev, 0.01)
        ev.clear()
        asyncio.get_running_loop().call_later(0.01, ev.set)
        during = await wait_event(ev, 5)
        ev.clear()
        never = await wait_event(ev, 0.01)
        return before, during, never

    assert asyncio.run(main()) == (True, True, False)


async def cancelled_while_set(wait: Callable[[asyncio.Event], Awaitable[object]]) -> bool:
    """Cancel a task waiting on an event in the same step as the event is set: whether the
    task ended cancelled."""
    ev = asyncio.Event()
    task = asyncio.ensure_future(wait(ev))
    for _ in range(3):
        await asyncio.sleep(0)  # it is waiting now
    ev.set()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        return True
    return False


def test_a_cancellation_in_the_step_the_event_is_set_is_kept() -> None:
    assert asyncio.run(cancelled_while_set(lambda ev: wait_event(ev, 10)))


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="Python 3.12 rewrote wait_for: nothing to show")
def test_the_control_wait_for_loses_it_on_this_python() -> None:
    """Why wait_event exists: the race above really loses the cancellation with wait_for."""

    async def with_wait_for(ev: asyncio.Event) -> None:
        await asyncio.wait_for(ev.wait(), 10)

    assert not asyncio.run(cancelled_while_set(with_wait_for))


def test_the_inner_wait_is_not_left_behind() -> None:
    async def main() -> int:
        ev = asyncio.Event()
        await wait_event(ev, 0.01)  # timed out
        task = asyncio.ensure_future(wait_event(ev, 10))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)
        return len([t for t in asyncio.all_tasks() if t is not asyncio.current_task()])

    assert asyncio.run(main()) == 0
