"""Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And
Jitter"): spreads reconnects of many recorders so they do not hammer a venue in step."""

from __future__ import annotations

import random


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
