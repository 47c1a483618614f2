"""``recorder replay serve``: native replay that stays up for any number of clients.

Each venue gets one public port that stays open until the command is stopped. Behind it,
a *pass* is one run of :func:`recorder.replay.serve_native`: the venue's own server side on
a private loopback port, fed the recorded frames of the range on a clock that starts when
its client has subscribed, and closed after the last frame. Every TCP connection to a
public port is relayed byte for byte to a pass:

- by default each connection gets a pass of its own, so every client replays its own
  subscription from the start of the range, whoever else is connected (right for a client
  that uses one socket: Mackinac, Derive, the examples);
- with ``shared_clock`` every connection, to any venue, joins the current pass (one clock
  for all venues and connections); once it has ended, the next connection starts a new one
  from the start of the range. Use it for clients that open several sockets which belong
  together (Diffusal's five paths, Totalis's per-request SSE streams, Power.Trade's Feeds
  socket and REST beside the Market Proxy), and to replay several venues on one clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from recorder import journal as jr
from recorder.replay import _adapter_of, _ns, raw_frames, serve_native
from recorder.venues import CATALOGUE

Log = Callable[[str], None]


def _iso(ns: int | None) -> str:
    if ns is None:
        return "-"
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).isoformat(timespec="milliseconds")


@dataclass
class Span:
    """What a venue's journal holds: its first recorded frame in the range (None: the range
    is empty) and the whole journal's first and last frame."""

    venue: str
    first_in_range: int | None
    runs: int
    journal_first: int | None = None
    journal_last: int | None = None


def span(data_dir: Path, venue: str, start: int | str | None, end: int | str | None) -> Span:
    """Whether ``venue`` has recorded frames in ``[start, end)``; for the message when not,
    the time span its journal holds. Raises ValueError for an unknown venue."""
    found = sorted(jr.runs(data_dir, venue))
    if not found:
        raise ValueError(f"no journal for venue {venue!r} under {data_dir}")
    first = next(iter(raw_frames(data_dir, venue, start, end)), None)
    s = Span(venue, first.ts_recv if first else None, len({r for _, r in found}))
    if first is None:
        head = next(iter(raw_frames(data_dir, venue)), None)
        s.journal_first = head.ts_recv if head else None
        s.journal_last = max((t for _, r in found if (t := jr.last_in(data_dir, venue, r))),
                             default=None)
    return s


@dataclass
class _Pass:
    """One run of serve_native for some venues (its private servers)."""

    venues: list[str]
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    urls: dict[str, str] = field(default_factory=dict)
    task: asyncio.Task[dict[str, int]] | None = None
    clients: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def ended(self) -> bool:
        return self.task is not None and self.task.done()


class ReplayServer:
    """The public listeners and the passes behind them (see the module docstring)."""

    def __init__(self, data_dir: str | Path, venues: list[str], start: int | str | None = None,
                 end: int | str | None = None, speed: float = 1.0, host: str = "127.0.0.1",
                 ports: dict[str, int] | None = None,
                 server_options: dict[str, dict[str, Any]] | None = None,
                 shared_clock: bool = False, linger: float = 1.0, log: Log = print) -> None:
        self.data_dir = Path(data_dir)
        self.venues = list(venues)
        self.start, self.end = _ns(start), _ns(end)
        self.speed = speed
        self.host = host
        self.ports = ports or {}
        self.server_options = server_options
        self.shared_clock = shared_clock
        self.linger = linger
        self.log = log
        self.urls: dict[str, str] = {}
        self.passes = 0
        self._listeners: list[asyncio.Server] = []
        self._shared: _Pass | None = None
        self._shared_lock = asyncio.Lock()
        self._relays: set[asyncio.Task[None]] = set()

    async def _shape(self, venue: str) -> str:
        """The URL a venue's replay server has (scheme and path), from a throwaway one."""
        spec = CATALOGUE.venue(_adapter_of(self.data_dir, venue))
        if spec.replay_server is None:
            raise ValueError(f"venue {venue} has no native replay yet")
        # the URL does not depend on what is replayed: no recording for the throwaway one
        srv = spec.replay_server(**(self.server_options or {}).get(venue, {}))
        await srv.start("127.0.0.1", 0)
        try:
            return str(srv.url)
        finally:
            await srv.stop()

    async def open(self) -> dict[str, str]:
        """Listen on every venue's public port; returns ``{venue: url}``."""
        try:
            for v in self.venues:
                shape = urlsplit(await self._shape(v))
                srv = await asyncio.start_server(
                    lambda r, w, v=v: self._accept(v, r, w), self.host, self.ports.get(v, 0))
                self._listeners.append(srv)
                port = srv.sockets[0].getsockname()[1]
                host = "127.0.0.1" if self.host in ("", "0.0.0.0", "::") else self.host
                if ":" in host:
                    host = f"[{host}]"
                self.urls[v] = urlunsplit(shape._replace(netloc=f"{host}:{port}"))
        except BaseException:
            await self.close()
            raise
        return dict(self.urls)

    async def serve_forever(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        try:
            await stop.wait()
        finally:
            await self.close()

    async def close(self) -> None:
        for srv in self._listeners:
            srv.close()
        for t in list(self._relays):
            t.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)
        for srv in self._listeners:
            with contextlib.suppress(Exception):
                await srv.wait_closed()
        self._listeners = []
        if self._shared is not None:
            await self._end(self._shared)

    # -- passes ------------------------------------------------------------------------------
    async def _begin(self, venues: list[str]) -> _Pass:
        p = _Pass(venues)
        self.passes += 1

        def ready(urls: dict[str, str]) -> None:
            p.urls.update(urls)
            p.ready.set()

        p.task = asyncio.create_task(serve_native(
            self.data_dir, venues, self.start, self.end, self.speed, "127.0.0.1", None,
            self.server_options, ready, p.stop, wait_for_subscriber=True, linger=self.linger))
        waiter = asyncio.create_task(p.ready.wait())
        await asyncio.wait({waiter, p.task}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if not p.ready.is_set():
            await p.task  # it failed before listening: raise why
        return p

    async def _end(self, p: _Pass) -> dict[str, int]:
        p.stop.set()
        if p.task is None:
            return {}
        try:
            return await p.task
        except Exception as e:  # noqa: BLE001 - one pass failing must not stop the server
            self.log(f"replay pass failed: {type(e).__name__}: {e}")
            return {}

    async def _pass_for(self, venue: str) -> tuple[_Pass, bool]:
        """The pass a new connection to ``venue`` is relayed to, and whether it is its own."""
        if not self.shared_clock:
            return await self._begin([venue]), True
        async with self._shared_lock:
            if self._shared is None or self._shared.ended:
                self._shared = await self._begin(self.venues)
                self.log(f"replay pass {self.passes}: {', '.join(self.venues)} from "
                         f"{_iso(self.start) if self.start else 'the start'} on one clock "
                         f"(speed {self.speed:g})")
            return self._shared, False

    # -- relaying ----------------------------------------------------------------------------
    def _accept(self, venue: str, reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter) -> None:
        t = asyncio.create_task(self._relay(venue, reader, writer))
        self._relays.add(t)
        t.add_done_callback(self._relays.discard)

    async def _relay(self, venue: str, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        who = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        p: _Pass | None = None
        own = False
        t0 = time.monotonic()
        try:
            p, own = await self._pass_for(venue)
            p.clients += 1
            up = urlsplit(p.urls[venue])
            ur, uw = await asyncio.open_connection(up.hostname, up.port)
        except Exception as e:  # noqa: BLE001 - this client is refused, the server stays up
            self.log(f"{venue}: cannot serve {who}: {type(e).__name__}: {e}")
            writer.close()
            if p is not None and own:
                await self._end(p)
            return
        if own:
            self.log(f"{venue}: client {who} connected; replaying from "
                     f"{_iso(self.start) if self.start else 'the start'} on its own clock")
        try:
            a = asyncio.create_task(_pipe(reader, uw))
            b = asyncio.create_task(_pipe(ur, writer))
            await asyncio.wait({a, b}, return_when=asyncio.FIRST_COMPLETED)
            for t in (a, b):
                t.cancel()
            await asyncio.gather(a, b, return_exceptions=True)
        finally:
            for w in (uw, writer):
                w.close()
            if own:
                sent = await self._end(p)
                self.log(f"{venue}: client {who} done after {time.monotonic() - t0:.1f}s; "
                         f"{sum(sent.values())} recorded frames published")


async def _pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    try:
        while data := await r.read(1 << 16):
            w.write(data)
            await w.drain()
        if w.can_write_eof():
            w.write_eof()
    except (ConnectionError, OSError):
        pass
