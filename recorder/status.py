"""Live status: per connection, state, frames/s, frames; per venue, rows and the lake
builder's lag (journal records not yet built); reconnects, last gap.

On a terminal the block redraws in place every second; otherwise (cron, CI) one plain block is
printed every ``quiet_every`` seconds so logs stay short.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from recorder.collect import VenueRun


class StatusPrinter:
    def __init__(self, runs: list[VenueRun], out: TextIO, *, live: bool = True,
                 interval: float = 1.0, quiet_every: float = 10.0) -> None:
        self.runs = runs
        self.out = out
        self.tty = live and out.isatty()
        self.interval = interval if self.tty else quiet_every
        self._prev: dict[tuple[str, str], tuple[float, int]] = {}
        self._lines = 0
        self.enabled = live

    def render(self) -> list[str]:
        now = time.monotonic()
        rows = [f"{'venue/conn':<24} {'state':<10} {'frames/s':>9} {'frames':>9} "
                f"{'lake lag':>9} {'reconn':>6}  last gap"]
        for r in self.runs:
            lag = max(0, r.journal.records - r.built_records)
            rows.append(f"{r.name:<24} {'':<10} {'':>9} {r.journal.records:>9} {lag:>9} "
                        f"{'':>6}  {'disk behind: not reading' if r.paused else ''}")
            ended = [c for c in r.conns.values() if c.status.state == "stopped"]
            if ended or r.ended.count:
                # Per-request streams (one per quote request) end by the hundred: one line.
                n = len(ended) + r.ended.count
                rows.append(f"{'  (ended)':<24} {'stopped':<10} {'':>9} "
                            f"{sum(c.status.frames for c in ended) + r.ended.frames:>9} "
                            f"{'':>9} "
                            f"{sum(c.status.reconnects for c in ended) + r.ended.reconnects:>6}"
                            f"  {n} connections")
            for name, c in r.conns.items():
                if c.status.state == "stopped":
                    continue
                key = (r.name, name)
                t0, f0 = self._prev.get(key, (now, c.status.frames))
                rate = (c.status.frames - f0) / (now - t0) if now > t0 else 0.0
                self._prev[key] = (now, c.status.frames)
                label = f"  {name}"
                if len(label) > 24:  # per-request streams carry a uuid: keep the columns
                    label = label[:23] + "…"
                rows.append(f"{label:<24} {c.status.state:<10} {rate:>9.0f} "
                            f"{c.status.frames:>9} {'':>9} {c.status.reconnects:>6}  "
                            f"{c.status.last_gap or '-'}")
        return rows

    def draw(self) -> None:
        lines = self.render()
        if self.tty:
            if self._lines:
                self.out.write(f"\x1b[{self._lines}F")
            self.out.write("".join(f"\x1b[2K{line}\n" for line in lines))
            self._lines = len(lines)
        else:
            self.out.write("\n".join(lines) + "\n")
        self.out.flush()

    async def run(self, stop: asyncio.Event) -> None:
        if not self.enabled:
            await stop.wait()
            return
        self.render()  # prime rates
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
            except TimeoutError:
                pass
            self.draw()
