"""Helpers shared by tests (from tests/store/test_sqlite_budget.py)."""

from __future__ import annotations

import asyncio
import contextlib
import time


class Ticker:
    """Counts how often the loop runs a task that sleeps ``every`` seconds."""

    def __init__(self, every: float = 0.005) -> None:
        self.every = every
        self.ticks = 0
        self.gaps: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        self.last = time.monotonic()
        while True:
            await asyncio.sleep(self.every)
            now = time.monotonic()
            self.gaps.append(now - self.last)
            self.ticks += 1
            self.last = now

    async def __aenter__(self) -> Ticker:
        self._task = asyncio.get_running_loop().create_task(self._run())
        await asyncio.sleep(0)
        self.start = time.monotonic()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.elapsed = time.monotonic() - self.start
        # The pause since the last tick counts too: a loop held until the work ended never
        # got to record it.
        self.gaps.append(time.monotonic() - self.last)
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def assert_free(self) -> None:
        """The loop kept running: no pause as long as half the work (a blocked loop pauses
        for all of it) nor over 500 ms, and short pauses most of the time. Decoding or
        encoding a 1 MB document holds the GIL for tens of milliseconds wherever it runs,
        and the machine is shared: hence the margins."""
        assert self.elapsed > 0.2, f"the work took {self.elapsed:.3f}s: too short to tell"
        gaps = sorted(self.gaps)
        assert gaps and gaps[-1] < min(0.5, self.elapsed / 2), (self.elapsed, gaps[-5:])
        assert gaps[len(gaps) // 2] < 0.05, gaps[-5:]
