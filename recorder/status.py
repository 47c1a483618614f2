"""Live status of a recording run.

On a terminal: a ``rich`` table redrawn in place that always fits the terminal: one line per
venue (its connections up, frames/s, frames, rows, the lake builder's lag, reconnects, gaps,
the last gap), and with ``connections`` a line per connection under its venue, cut with
"… N more" where the terminal is too short. Columns never wrap (long text ends in "…").
Lines logged meanwhile (the lake builder's) print above the table.

Otherwise (cron, CI, a pipe): a plain line per venue every ``quiet_every`` seconds and once
at the end, so logs stay short and greppable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from recorder.collect import VenueRun


@dataclass
class Line:
    """One row of the status: a venue (``conn`` None) or one of its connections."""

    venue: str
    conn: str | None
    state: str
    rate: float
    frames: int
    rows: int | None
    lag: int | None
    reconnects: int
    gaps: int | None
    note: str


class StatusPrinter:
    def __init__(self, runs: list[VenueRun], out: TextIO, *, live: bool = True,
                 interval: float = 1.0, quiet_every: float = 10.0, connections: bool = False,
                 title: str = "", ends_at: float | None = None,
                 console: Console | None = None) -> None:
        self.runs = runs
        self.out = out
        self.console = console or Console(file=out, highlight=False)
        self.tty = live and self.console.is_terminal
        self.interval = interval if self.tty else quiet_every
        self.connections = connections
        self.title = title
        self.ends_at = ends_at  # time.monotonic() of the deadline, if any
        self.started = time.monotonic()
        self.enabled = live
        self._prev: dict[tuple[str, str | None], tuple[float, int]] = {}
        self._live: Live | None = None
        # A line about the uploads to the bucket (``[recorder] remote``), when there is one.
        self.upload_note: Callable[[], str] | None = None

    # -- what is shown -----------------------------------------------------------------------
    def _rate(self, key: tuple[str, str | None], frames: int, now: float) -> float:
        t0, f0 = self._prev.get(key, (now, frames))
        self._prev[key] = (now, frames)
        return (frames - f0) / (now - t0) if now > t0 else 0.0

    def lines(self) -> list[Line]:
        """Venue lines, each followed (with ``connections``) by its connections' lines."""
        now = time.monotonic()
        out: list[Line] = []
        for r in self.runs:
            conns = list(r.conns.items())
            live = [(n, c) for n, c in conns if c.status.state != "stopped"]
            up = sum(1 for _, c in live if c.status.state == "open")
            frames = sum(c.status.frames for _, c in conns) + r.ended.frames
            reconn = sum(c.status.reconnects for _, c in conns) + r.ended.reconnects
            lag = max(0, r.journal.records - r.built_records)
            gaps = [c.status.last_gap for _, c in conns if c.status.last_gap]
            note = "disk behind: not reading" if r.paused else (
                f"gap {gaps[-1]}" if gaps else "")
            if r.failure is not None:
                note = f"failed: {r.failure}"
            out.append(Line(r.name, None, f"{up}/{len(live)}", self._rate((r.name, None),
                            frames, now), frames, r.records, lag, reconn, r.gaps, note))
            if not self.connections:
                continue
            for name, c in live:
                st = c.status
                out.append(Line(r.name, name, st.state, self._rate((r.name, name), st.frames,
                                now), st.frames, r.rows_by_conn.get(name), None,
                                st.reconnects, None, st.last_gap or st.last_error or ""))
            ended = [c for _, c in conns if c.status.state == "stopped"]
            if ended or r.ended.count:
                # Per-request streams (one per quote request) end by the hundred: one line.
                n = len(ended) + r.ended.count
                out.append(Line(r.name, f"({n} ended)", "stopped", 0.0,
                                sum(c.status.frames for c in ended) + r.ended.frames, None,
                                None, sum(c.status.reconnects for c in ended)
                                + r.ended.reconnects, None, ""))
        return out

    def _header(self) -> str:
        elapsed = time.monotonic() - self.started
        clock = _hms(elapsed)
        if self.ends_at is not None:
            clock += f" of {_hms(self.ends_at - self.started)}"
        head = f"{clock}  {self.title}" if self.title else clock
        return head + (f"  · {self.upload_note()}" if self.upload_note is not None else "")

    # (header, width, justify) in display order; _KEEP: which go last when the terminal is
    # narrow (venue and frames stay, rows and msg/s go first).
    _COLUMNS = (("venue", 13, "left"), ("up", 5, "left"), ("msg/s", 6, "right"),
                ("frames", 9, "right"), ("rows", 9, "right"), ("lake lag", 8, "right"),
                ("reconn", 6, "right"), ("gaps", 4, "right"))
    _KEEP = ("venue", "up", "frames", "lake lag", "reconn", "gaps", "msg/s", "rows")

    def table(self, width: int, height: int) -> Group:
        """The status as a rich renderable at most ``height`` lines tall and ``width`` wide:
        fixed-width columns (as many as fit), then a note with what is left; nothing wraps."""
        t = Table(box=None, pad_edge=False, padding=(0, 1), collapse_padding=True,
                  expand=False, header_style="bold", show_edge=False)
        widths = {name: w for name, w, _ in self._COLUMNS}
        keep: list[str] = []
        used = 0
        for name in self._KEEP:
            if used + widths[name] + 1 > width and keep:
                break
            keep.append(name)
            used += widths[name] + 1
        order = [c for c in self._COLUMNS if c[0] in keep]
        for name, w, just in order:
            t.add_column(name, justify=just, no_wrap=True, overflow="ellipsis",  # type: ignore[arg-type]
                         min_width=w, max_width=w)
        note_w = width - used - 1
        if note_w >= 6:
            t.add_column("note", no_wrap=True, overflow="ellipsis", max_width=note_w)
        lines = self.lines()
        room = max(1, height - 3)  # header text, table header, one spare line
        for ln in _fit(lines, room):
            cells: dict[str, Any]
            if isinstance(ln, str):
                cells = {"venue": Text(ln, style="dim")}
            else:
                name = ln.venue if ln.conn is None else f"  {ln.conn}"
                cells = {"venue": Text(name, style="bold" if ln.conn is None else ""),
                         "up": ln.state, "msg/s": f"{ln.rate:,.0f}", "frames": f"{ln.frames:,}",
                         "rows": "" if ln.rows is None else f"{ln.rows:,}",
                         "lake lag": "" if ln.lag is None else f"{ln.lag:,}",
                         "reconn": f"{ln.reconnects}",
                         "gaps": "" if ln.gaps is None else f"{ln.gaps}", "note": ln.note}
            row = [cells.get(name, "") for name, _, _ in order]
            if note_w >= 6:
                row.append(cells.get("note", ""))
            t.add_row(*row)
        head = Text(self._header(), style="dim", no_wrap=True, overflow="ellipsis")
        return Group(head, t)

    def plain(self) -> list[str]:
        out = []
        for ln in self.lines():
            if ln.conn is not None:
                continue
            out.append(f"{ln.venue}: {ln.state} connections open, {ln.frames} frames ({ln.rate:.0f}/s), "
                       f"{ln.rows} rows, lake lag {ln.lag}, {ln.reconnects} reconnects, "
                       f"{ln.gaps} gaps" + (f", {ln.note}" if ln.note else ""))
        if self.upload_note is not None:
            out.append(self.upload_note())
        return out

    # -- drawing -----------------------------------------------------------------------------
    def _renderable(self) -> Group:
        size = self.console.size
        return self.table(size.width, size.height)

    def log(self, line: str) -> None:
        """Print a line for a person: above the live table, or as a plain line."""
        if self._live is not None:
            self.console.print(Text(line), soft_wrap=True)
        else:
            print(line, file=self.out, flush=True)

    def draw(self) -> None:
        if self._live is not None:
            self._live.update(self._renderable(), refresh=True)
        else:
            stamp = time.strftime("%H:%M:%S")
            for line in self.plain():
                print(f"{stamp} {line}", file=self.out)
            self.out.flush()

    async def run(self, stop: asyncio.Event) -> None:
        if not self.enabled:
            await stop.wait()
            return
        self.lines()  # prime rates
        if self.tty:
            self._live = Live(self._renderable(), console=self.console, auto_refresh=False,
                              transient=False, redirect_stdout=False, redirect_stderr=False,
                              vertical_overflow="crop")
            self._live.start()
        try:
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), timeout=self.interval)
                except TimeoutError:
                    pass
                self.draw()
        finally:
            if self._live is not None:
                self._live.stop()
                self._live = None


def _fit(lines: list[Line], room: int) -> list[Line | str]:
    """At most ``room`` rows: every venue line, then as many connection lines as fit, each
    venue's cut ones summed up in one "… N more" row."""
    venues = [ln for ln in lines if ln.conn is None]
    if len(lines) <= room:
        return list(lines)
    if len(venues) >= room:
        return [*venues[:room - 1], f"… {len(venues) - room + 1} more venues"] if room > 1 \
            else venues[:1]
    by_venue: dict[str, list[Line]] = {}
    for ln in lines:
        if ln.conn is not None:
            by_venue.setdefault(ln.venue, []).append(ln)
    spare = room - len(venues)
    out: list[Line | str] = []
    for v in venues:
        conns = by_venue.get(v.venue, [])
        out.append(v)
        if not conns:
            continue
        if spare <= 0:
            continue
        if len(conns) <= spare:
            out += conns
            spare -= len(conns)
        else:
            keep = spare - 1
            out += conns[:keep]
            out.append(f"  … {len(conns) - keep} more")
            spare = 0
    return out


def _hms(seconds: float) -> str:
    s = max(0, round(seconds))
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"
