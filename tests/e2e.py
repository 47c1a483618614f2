"""Helpers for end-to-end tests: run the recorder in-process against a simulator, and compare
the lake with the simulator's ledger."""

from __future__ import annotations

import asyncio
import io
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable, Iterable
from pathlib import Path
from typing import Any

import orjson

from recorder import duck
from recorder import journal as jr
from recorder.config import Config, RecorderSettings, TransportSettings, VenueConfig
from recorder.normalize import Normalizer
from recorder.record import RunResult, record
from recorder.sim.driver import Sent, Simulator
from recorder.venues import CATALOGUE


def venue_config(data_dir: Path, venue: str, url: str, options: dict[str, Any],
                 **transport: Any) -> Config:
    """One venue on ``url``, flushing and reconnecting fast enough for a few-second test."""
    ts = TransportSettings(**{"backoff_initial": 0.2, "backoff_max": 1.0, **transport})
    return Config(Path("test.toml"), RecorderSettings(
        data_dir=data_dir, lake_flush_seconds=0.5, lake_rotate_seconds=2.0,
        journal_flush_ms=50), (VenueConfig(venue, venue, url=url, transport=ts,
                                           options=options),))


def connect(data_dir: Path, *venues: str) -> Any:
    """:func:`recorder.duck.connect` with the views of ``venues``' tables and the shared ones
    (session_events, unhandled) only: binding every venue's views over a lake costs each
    connection half a CPU second or more, these a tenth of it."""
    names = {"session_events", "unhandled"}
    for v in venues:
        names |= {t.name for t in CATALOGUE.venue(v).tables}
    return duck.connect(data_dir, views=names)


async def run_with(cfg: Config, scenario: Callable[[asyncio.Event], Awaitable[None]],
                   ) -> tuple[RunResult, str]:
    """Record while ``scenario`` runs; stop when it returns."""
    stop = asyncio.Event()
    out = io.StringIO()
    task = asyncio.create_task(record(cfg, 120, out=out, live_status=False,
                                      install_signals=False, stop=stop))
    try:
        await scenario(stop)
    finally:
        stop.set()
    return await task, out.getvalue()


class Tally:
    """What a simulator has handed to its sockets so far, counted by ``kinds(entry)`` (the keys
    an entry counts under), read from its ledger incrementally: cheap enough to re-check at
    every wake of ``server.until``. A scenario waits for what it needs this way, not for a
    fixed time that a loaded machine may not honour."""

    def __init__(self, server: Simulator[Any], kinds: Callable[[Sent], Iterable[Hashable]]
                 ) -> None:
        self.server, self.kinds, self.read, self.counts = server, kinds, 0, Counter[Hashable]()

    def __call__(self) -> Counter[Hashable]:
        new = self.server.ledger[self.read:]
        self.read += len(new)
        for entry in new:
            self.counts.update(self.kinds(entry))
        return self.counts


class Live:
    """What the journal of the live run of ``venue`` yields so far, read as the lake builder
    reads it (the venue's adapter, offline, through the normalizer) and incrementally, so a
    scenario can wait for what the lake will hold: the builder itself runs at a low priority
    and lags on a loaded machine. Call it to read what was journaled since the last call."""

    def __init__(self, data_dir: Path, venue: str, adapter: str | None = None,
                 keep: tuple[str, ...] = (), rows: bool = True) -> None:
        self.data_dir, self.venue, self.adapter = data_dir, venue, adapter or venue
        self.rows = rows  # False: count frames per connection only (no adapter, no rows)
        self.kept: dict[str, list[Any]] = {name: [] for name in keep}  # rows of these tables
        self.tail: jr.RunTail | None = None
        self.norm: Normalizer | None = None
        self.tables: Counter[str] = Counter()  # rows per table
        self.events: list[dict[str, Any]] = []  # session_events rows, with their conn_id
        self.frames: Counter[str] = Counter()  # inbound frames per connection
        self.requests = 0  # HTTP requests the recorder started (its fetches)
        self.responses = 0  # their outcomes: an answer, or the failure (connection refused)
        self.answers = 0  # the outcomes that are an answer (a status): some server's ledger
        self._read_at = 0.0

    def __call__(self) -> Live:
        # the journal reaches the disk every 50 ms (venue_config): reading it more often,
        # as server.until's predicates are, would only take time from the recorder
        now = time.monotonic()
        if now - self._read_at < 0.05:
            return self
        self._read_at = now
        if self.tail is None:
            segments = sorted((self.data_dir / "journal" / self.venue).glob(
                f"date=*/*{jr.SUFFIX}"))
            if not segments:
                return self
            run, _ = jr.parse_name(segments[0])
            self.tail = jr.RunTail(self.data_dir, self.venue, run)
            if self.rows:
                self.norm = Normalizer(CATALOGUE.venue(self.adapter).make_adapter(
                    self.venue, None, {}, offline=True))
        for rec in self.tail.poll():
            if rec.kind == jr.KIND_IN:
                self.frames[rec.conn] += 1
            elif rec.kind == jr.KIND_REST:
                self.responses += 1
                self.answers += jr.decode_rest(rec.data).status > 0
            elif rec.kind == jr.KIND_OUT and rec.data.startswith(b'{"http"'):
                self.requests += 1  # (recorder.collect journals a fetch as {"http": ...})
            if self.norm is None:
                continue
            rows, _ = self.norm.process(rec.kind, rec.conn, rec.ts_recv, rec.data)
            for table, row in rows:
                self.tables[table.name] += 1
                if table.name == "session_events":
                    self.events.append({**row, "conn_id": rec.conn})
                if table.name in self.kept:
                    self.kept[table.name].append(row)
        return self


def journaled(server: Simulator[Any], live: Live, path: str | None = None) -> bool:
    """Every frame the simulator handed to its sockets (on ``path``'s sessions) is in the
    journal: after a graceful stop, or a pause, nothing is in flight any more. (SSE comments,
    the keep-alives, are ledgered but never journaled: not counted.)"""
    sent = sum(1 for e in server.ledger if (path is None or server.paths[e.conn] == path)
               and not e.text.startswith(":"))
    prefix = None if path is None else _CONN_OF_PATH.get(path, "")
    return sent <= sum(n for c, n in live().frames.items()
                       if prefix is None or c.startswith(prefix))


_CONN_OF_PATH = {"/ws/public": "public-"}  # Diffusal's public sockets


def answered(server: Simulator[Any], live: Live) -> bool:
    """Every answer the simulator gave to a plain HTTP request (a REST call) is in the
    journal. (Answers with a status are counted: a fetch that failed, refused say, is
    journaled too, but no server answered it.)"""
    return server.plain_answers <= live().answers


async def finish(server: Simulator[Any], live: Live | None, path: str | None = None,
                 pause: bool = True, timeout: float = 30.0) -> None:
    """The end of a scenario: the market stops (``pause``), every frame the simulator handed
    to its sockets (on ``path``'s) reaches the journal, the simulator closes every session
    gracefully, after what is queued (:meth:`~Simulator.close_sessions`; its listener stays
    open and still answers REST), what that flushed and the REST answers reach the journal
    too, and the REST ledger is closed (:meth:`~Simulator.hold_requests`). Then nothing is in
    flight and the recorder can stop; :func:`run_scenario` closes the listener after it.
    Without ``live``, the journal is not waited for (a test whose client refuses some
    frames, or that compares none)."""
    if pause:
        server.pause()
    if live is not None:
        await server.until(lambda: journaled(server, live, path), timeout,
                           "every frame journaled")
    await server.close_sessions()
    if live is not None:
        # The recorder's fetches already on their way (a resync the last frames asked for, a
        # hydration, a delayed retry) are still answered: wait until each one it journaled
        # as started has its outcome journaled, so the lake gets what they ask for. (Best
        # effort: a fetch still waiting out its delay is not seen; the hold below covers it.)
        await server.until(lambda: journaled(server, live, path) and answered(server, live)
                           and live.requests <= live.responses, timeout,
                           "every frame and fetch journaled after the close")
    # From the hold on no answer is given (the request of a late fetch waits, never
    # answered, until the recorder stops and cancels it); the wait below covers what was let
    # in before. So no answer can be given that the recorder might not journal before it
    # stops, nor a refusal be journaled that the simulator did not give (the listener is
    # still open until run_scenario closes it).
    server.hold_requests()
    if live is not None:  # what was let in before the hold: answered, then journaled
        await server.until(lambda: not server.pending_requests and answered(server, live),
                           timeout, "every answer journaled after the hold")


async def run_scenario(cfg: Config, server: Simulator[Any],
                       scenario: Callable[[asyncio.Event], Awaitable[None]], *,
                       journal: bool | Live = True, path: str | None = None,
                       pause: bool = True, exit_code: int | None = 0) -> RunResult:
    """Record (``cfg``'s first venue) while ``scenario`` runs, then :func:`finish` it, then
    stop the recorder, then close the simulator's listener: the epilogue every end-to-end
    test shares. With ``journal`` (True, or the scenario's own :class:`Live`), the recorder
    is stopped only once every frame and REST answer ``server`` sent is in the journal (see
    :func:`finish`). The run must end with ``exit_code`` (None: any)."""
    live = journal if isinstance(journal, Live) else Live(
        cfg.recorder.data_dir, cfg.venues[0].name, rows=False) if journal else None

    async def whole(stop: asyncio.Event) -> None:
        await scenario(stop)
        await finish(server, live, path, pause=pause)

    try:
        result, _ = await run_with(cfg, whole)
    finally:
        # Only now: until the recorder has stopped, a late fetch of its must reach a server
        # that holds it (finish), not a closed port whose refusal the recorder would journal
        # and the lake record as a REST row the simulator never answered.
        await server.close_listener()
    if exit_code is not None:
        assert result.exit_code == exit_code, result.reason
    return result


def journal_sessions(data_dir: Path, run: str, conn: str, venue: str) -> list[list[bytes]]:
    """Inbound frames of one connection, split at each (re)connect."""
    out: list[list[bytes]] = []
    for rec in jr.read_run(data_dir, venue, run):
        if rec.conn != conn:
            continue
        if rec.kind == jr.KIND_META and orjson.loads(rec.data)["ev"] == "connected":
            out.append([])
        elif rec.kind == jr.KIND_IN:
            out[-1].append(rec.data)
    return out
