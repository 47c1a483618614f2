"""The simulators' time: wall and monotonic readings, one-shot and periodic timers.

A simulator reads time and schedules everything it does unprompted (market ticks, heartbeats,
keep-alives, delayed closes, shuffled answers) through one :class:`Clock`, never through
``time`` or ``asyncio.sleep`` directly. That is what lets a test swap in a
:class:`ManualClock` and move time forward by hand: ``await clock.advance(1.5)`` runs the 30
market ticks of 1.5 s at once, in order, with the times they would have had, instead of the
test sleeping 1.5 s and hoping the machine kept up.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol


class Timer(Protocol):
    """What scheduling returns: it can be cancelled (a no-op once it has run)."""

    def cancel(self) -> None: ...


class Clock:
    """Real time: the wall clock, ``time.monotonic`` and the running event loop's timers."""

    def time_ns(self) -> int:
        """Wall time, ns since the epoch (what the venue stamps its frames with)."""
        return time.time_ns()

    def now_ms(self) -> int:
        return self.time_ns() // 1_000_000

    def now_us(self) -> int:
        return self.time_ns() // 1_000

    def monotonic(self) -> float:
        """Seconds, for windows and deadlines (rate limits, heartbeats, TTLs)."""
        return time.monotonic()

    def call_later(self, delay: float, fn: Callable[[], object]) -> Timer:
        """Run ``fn()`` once, ``delay`` seconds from now."""
        return asyncio.get_running_loop().call_later(max(0.0, delay), fn)

    def every(self, interval: float, fn: Callable[[], object]) -> Timer:
        """Run ``fn()`` every ``interval`` seconds, the first time one interval from now.
        A run that falls behind (a long burst, a loaded machine) skips the missed beats
        rather than catching up with a flurry. An exception in ``fn`` ends nothing: it is
        the caller's to log."""
        return asyncio.get_running_loop().create_task(self._every(interval, fn))

    @staticmethod
    async def _every(interval: float, fn: Callable[[], object]) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += interval
            delay = next_at - loop.time()
            if delay < 0:
                next_at, delay = loop.time(), 0.0
            await asyncio.sleep(delay)
            fn()

    async def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass. Real time cannot be hurried: this sleeps."""
        await asyncio.sleep(seconds)


class _Scheduled:
    """A :class:`ManualClock` timer: due at ``due`` (clock ns), every ``every`` ns if set.
    Integer nanoseconds, so a timer due in exactly the time a test advances always runs."""

    __slots__ = ("due", "every", "fn", "cancelled")

    def __init__(self, due: int, every: int | None, fn: Callable[[], object]) -> None:
        self.due, self.every, self.fn, self.cancelled = due, every, fn, False

    def cancel(self) -> None:
        self.cancelled = True


def _ns(seconds: float) -> int:
    return round(seconds * 1e9)


class ManualClock(Clock):
    """Time that moves only when a test calls :meth:`advance`.

    It starts at the real wall time (``start_ns``: another one), so what a simulator stamps
    looks like a live venue's and clients that compare it with their own clock (a login
    window, a JWT's expiry) agree; its monotonic reading is the same instant in seconds.
    Timers run inside :meth:`advance`, each at its own due time, in due order (ties in the
    order they were scheduled); an exception in one propagates out of :meth:`advance`."""

    def __init__(self, start_ns: int | None = None) -> None:
        self._ns = time.time_ns() if start_ns is None else start_ns
        self._heap: list[tuple[int, int, _Scheduled]] = []
        self._order = itertools.count()

    def time_ns(self) -> int:
        return self._ns

    def monotonic(self) -> float:
        return self._ns / 1e9

    def _push(self, t: _Scheduled) -> _Scheduled:
        heapq.heappush(self._heap, (t.due, next(self._order), t))
        return t

    def call_later(self, delay: float, fn: Callable[[], object]) -> Timer:
        return self._push(_Scheduled(self._ns + max(0, _ns(delay)), None, fn))

    def every(self, interval: float, fn: Callable[[], object]) -> Timer:
        if interval <= 0:
            raise ValueError("interval must be > 0")
        return self._push(_Scheduled(self._ns + _ns(interval), _ns(interval), fn))

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, running every timer that falls due on the way at
        its due time. Between timers the event loop gets a turn, so what one timer queued is
        on its way before the next runs, as it would be in real time."""
        if seconds < 0:
            raise ValueError("time does not go back")
        target = self._ns + _ns(seconds)
        while self._heap and self._heap[0][0] <= target:
            due, _, t = heapq.heappop(self._heap)
            if t.cancelled:
                continue
            self._ns = max(self._ns, due)
            if t.every is not None:
                t.due = due + t.every
                self._push(t)
            t.fn()  # an exception reaches the test that advanced the clock
            await asyncio.sleep(0)
        self._ns = target
