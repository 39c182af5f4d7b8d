"""This process's request counters by minute, for the admin console's overview (leaf module).

Per instance and in memory: on Function Compute each instance counts its own requests.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Counters"]

_MINUTES = 24 * 60


class Counters:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        # minute number -> [requests, client errors (4xx), server errors (5xx)]
        self._minutes: dict[int, list[int]] = {}

    def hit(self, status: int) -> None:
        minute = int(self.clock() // 60)
        slot = self._minutes.get(minute)
        if slot is None:
            if len(self._minutes) >= _MINUTES:  # bounded: drop the minutes older than a day
                for m in [m for m in self._minutes if m <= minute - _MINUTES]:
                    del self._minutes[m]
            slot = self._minutes[minute] = [0, 0, 0]
        slot[0] += 1
        if status >= 500:
            slot[2] += 1
        elif status >= 400:
            slot[1] += 1

    def totals(self, seconds: float) -> dict[str, int]:
        """Requests, client errors and server errors in the last ``seconds``."""
        since = int((self.clock() - seconds) // 60)
        out = [0, 0, 0]
        for minute, slot in self._minutes.items():
            if minute > since:
                for i in range(3):
                    out[i] += slot[i]
        return {"requests": out[0], "clientErrors": out[1], "serverErrors": out[2]}
