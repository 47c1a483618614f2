"""Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And
Jitter"): spreads reconnects of many recorders so they do not hammer a venue in step."""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable


class Backoff:
    def __init__(self, initial: float = 1.0, maximum: float = 30.0,
                 rng: random.Random | None = None) -> None:
        self.initial = initial
        self.maximum = maximum
        self.attempt = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        """Delay before the next attempt: uniform in [cap/2, cap], cap doubling per attempt."""
        cap = min(self.maximum, self.initial * (2 ** self.attempt))
        self.attempt += 1
        return cap / 2 + self._rng.random() * cap / 2

    def reset(self) -> None:
        self.attempt = 0


class RateGate:
    """At most ``n`` connection attempts in any ``per``-second window, shared by all of a
    venue's connections (``VenueSpec.connect_limit``). A venue that closes excess connections
    (Diffusal: 60/min, silently) must never see a reconnect storm from many sockets whose own
    backoffs were reset by data that flowed before the close."""

    def __init__(self, n: int, per: float, clock: Callable[[], float] = time.monotonic) -> None:
        if n < 1 or per <= 0:
            raise ValueError("RateGate needs n >= 1 and per > 0")
        self.n = n
        self.per = per
        self._clock = clock
        self._slots: deque[float] = deque()  # granted (possibly future) times, ascending

    def reserve(self) -> float:
        """Reserve the earliest slot the window allows; returns seconds to wait for it."""
        now = self._clock()
        slots = self._slots
        while slots and slots[0] <= now - self.per:
            slots.popleft()
        at = now if len(slots) < self.n else max(now, slots[-self.n] + self.per)
        slots.append(at)
        return at - now
