"""Per-resident flood limit: a sliding window of message times per user, in memory.

A burst from one resident must not slow everyone else down; losing the window on restart only
forgives a flooder early, so it need not survive one.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FloodVerdict:
    """Whether a message may be handled, and whether to tell the resident to slow down."""

    allowed: bool
    notify: bool = False
    retry_after: int = 0


class FloodGate:
    """At most `limit` messages per `window` seconds per user; one notice per blocked spell."""

    def __init__(self, limit: int, window: float, *, max_users: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.max_users = max_users
        self._times: dict[int, deque[float]] = {}
        self._noticed: dict[int, float] = {}

    def check(self, user_id: int, now: float) -> FloodVerdict:
        """Count one message from `user_id` at monotonic time `now`."""
        times = self._times.get(user_id)
        if times is None:
            if len(self._times) >= self.max_users:
                self._forget_idle(now)
            times = self._times[user_id] = deque()
        while times and now - times[0] >= self.window:
            times.popleft()
        if len(times) < self.limit:
            times.append(now)
            self._noticed.pop(user_id, None)
            return FloodVerdict(allowed=True)
        retry_after = max(1, math.ceil(self.window - (now - times[0])))
        noticed_at = self._noticed.get(user_id)
        notify = noticed_at is None or now - noticed_at >= self.window
        if notify:
            self._noticed[user_id] = now
        return FloodVerdict(allowed=False, notify=notify, retry_after=retry_after)

    def _forget_idle(self, now: float) -> None:
        idle = [
            u for u, times in self._times.items() if not times or now - times[-1] >= self.window
        ]
        for user_id in idle:
            del self._times[user_id]
            self._noticed.pop(user_id, None)
