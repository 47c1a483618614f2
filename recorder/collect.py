"""The collector: thin asyncio glue for one venue, transport -> journal (+ adapter actions).

Nothing here builds Parquet: the lake builder (:mod:`recorder.build`, its own process) follows
the journal. The journal's writer thread does the compression and the writes.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from recorder.actions import Action, ConnSpec, Fetch, Open, Send
from recorder.catalogue import Adapter, VenueSpec
from recorder.config import RecorderSettings, VenueConfig
from recorder.journal import KIND_IN, KIND_META, KIND_OUT, KIND_REST, JournalWriter
from recorder.normalize import Normalizer, meta
from recorder.schema import SESSION_EVENTS, UNHANDLED
from recorder.transport import TRANSPORTS
from recorder.transport.backoff import RateGate


def redact(text: str, keys: tuple[str, ...]) -> bytes:
    """The journal copy of an outbound message, with secret values replaced. A key may be a
    dotted path into nested objects (``params.signature``)."""
    if not keys:
        return text.encode()
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        return b'"<redacted: unparsable message with secrets>"'
    # A dotted key ("params.signature", JSON-RPC) names its last part; any depth matches, as
    # some venues nest the request in an envelope (Power.Trade).
    _redact(obj, tuple(k.rsplit(".", 1)[-1] for k in keys))
    return orjson.dumps(obj)


def _redact(obj: Any, keys: tuple[str, ...]) -> None:
    """Replace secret values at any depth: some venues nest the request in an envelope
    (Power.Trade: ``{"authenticate": {"credentials_secret": ...}}``)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in keys:
                obj[k] = "***"
            else:
                _redact(v, keys)
    elif isinstance(obj, list):
        for v in obj:
            _redact(v, keys)


class VenueRun:
    """One venue of a recording run: its connections, its journal, its adapter (for actions).

    The hot path per frame, on the event loop and without awaiting: journal append (bytes +
    ``ts_recv``), then the adapter, whose rows are dropped here (the lake builder makes them
    from the journal) and whose actions (subscribe, resync, open a stream) are carried out.
    """

    def __init__(self, cfg: VenueConfig, spec: VenueSpec, adapter: Adapter,
                 settings: RecorderSettings, run_id: str) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.spec = spec
        self.settings = settings
        self.run_id = run_id
        self.journal = JournalWriter(settings.data_dir, cfg.name, run_id,
                                     segment_bytes=settings.journal_segment_bytes,
                                     segment_seconds=settings.journal_segment_seconds,
                                     max_pending_bytes=settings.journal_max_pending_bytes)
        self.normalizer = Normalizer(adapter)
        self.adapter = adapter
        self._data_only = adapter.data_only
        self.conns: dict[str, Any] = {}
        self.ended = EndedConns()
        self._ended_names: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._conn_tasks: dict[asyncio.Task[None], str] = {}
        self._http: aiohttp.ClientSession | None = None
        self._stop: asyncio.Event | None = None
        self.records = 0  # rows the adapter produced (the builder writes them)
        self.rows_by_conn: dict[str, int] = {}
        self.unhandled: dict[str, int] = {}  # unhandled rows by reason
        self.built_records = 0  # journal records the lake builder has built (its state file)
        self.build_state: dict[str, Any] = {}  # the lake builder's last progress file
        self.static_conns: set[str] = set()  # the adapter's own connections (not Open-ed)
        # Set by record() before run(): journaled first as the `run_start` record, which the
        # lake builder turns into a `run_gap` row when the previous run of this config and
        # venue had ended before this one (see recorder.normalize).
        self.run_start: dict[str, Any] = {}
        self.gaps = 0
        self.errors: list[str] = []
        self.events: dict[str, int] = {}
        self.failure: BaseException | None = None
        # Backpressure: while the journal's writer is behind, transports stop reading.
        self.paused = False
        self._resume = asyncio.Event()
        self._resume.set()
        # Read by the transports before every connection attempt (VenueSpec.connect_limit).
        self.connect_gate = RateGate(*spec.connect_limit) if spec.connect_limit else None

    # -- the hot path ------------------------------------------------------------------------
    def _ingest(self, kind: int, conn: str, data: bytes, ts: int) -> None:
        self.journal.append(kind, conn, ts, data)
        try:
            rows, actions = self.normalizer.process(kind, conn, ts, data)
        except Exception:  # noqa: BLE001 - journaled; the builder records the failure as a row
            return
        if rows:
            self.records += len(rows)
            self.rows_by_conn[conn] = self.rows_by_conn.get(conn, 0) + len(rows)
            for table, row in rows:
                if table is SESSION_EVENTS:
                    self._session_row(conn, row)
                elif table is UNHANDLED:
                    why = str(row.get("reason") if isinstance(row, dict) else "unknown")
                    self.unhandled[why] = self.unhandled.get(why, 0) + 1
        for a in actions:
            self._dispatch(a)

    def _session_row(self, conn: str, row: dict[str, Any]) -> None:
        ev = row["event"]
        self.events[ev] = self.events.get(ev, 0) + 1
        if ev in ("reconnected", "gap", "run_gap"):
            self.gaps += 1
            c = self.conns.get(conn)
            if c is not None:
                start, end = row.get("gap_start"), row.get("gap_end")
                if start and end:
                    c.status.last_gap = f"{(end - start) / 1e9:.1f}s {time.strftime('%H:%M:%S')}"
                else:
                    c.status.last_gap = f"{ev} {time.strftime('%H:%M:%S')}"
        elif ev in ("error", "auth_failed", "rate_limited", "frame_too_large"):
            self.errors.append(f"{conn}: {ev} {row.get('code') or ''} {row.get('reason') or ''}")
            del self.errors[:-200]

    def _dispatch(self, action: Action) -> None:
        if isinstance(action, Open):
            self._open(action.spec)
            return
        if isinstance(action, Fetch):
            t = asyncio.get_running_loop().create_task(self._fetch(action))
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)
            return
        c = self.conns.get(action.conn)
        if c is None:
            if action.conn in self._ended_names:
                return  # a late action for a stream that has ended: nothing to do
            self.event(action.conn, "error", reason=f"adapter asked {type(action).__name__} on "
                       "a connection that does not exist (adapter bug)")
            return
        c.submit(action)

    def _open(self, spec: ConnSpec) -> None:
        if self._http is None or self._stop is None or self._stop.is_set():
            return
        if spec.name in self.conns or spec.name in self._ended_names:
            self.event(spec.name, "error", reason="adapter opened a connection twice")
            return
        try:
            cls = TRANSPORTS[spec.kind]
        except KeyError:
            self.event(spec.name, "error", reason=f"no transport for kind {spec.kind!r}")
            return
        c = self.conns[spec.name] = cls(spec, self.cfg.transport, self, self._http,
                                        self.spec.send_limit)
        task = asyncio.get_running_loop().create_task(c.run(self._stop))
        self._conn_tasks[task] = spec.name

    async def _fetch(self, f: Fetch) -> None:
        """Run one HTTP request; journal the response (or the failure) as a REST record."""
        if f.delay:
            await asyncio.sleep(f.delay)
        assert self._http is not None
        shown = {k: ("***" if k in f.secret_headers else v) for k, v in f.headers.items()}
        self._ingest(KIND_OUT, f.conn, orjson.dumps(
            {"http": f.method, "url": f.url, "headers": shown, "tag": f.tag}), time.time_ns())
        status, body = 0, b""
        try:
            async with self._http.request(
                    f.method, f.url, headers=f.headers, data=f.body,
                    timeout=aiohttp.ClientTimeout(total=self.cfg.transport.connect_timeout * 3),
            ) as resp:
                status = resp.status
                body = await resp.read()
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            body = f"{type(e).__name__}: {e}".encode()
        head = orjson.dumps({"tag": f.tag, "status": status, "url": f.url})
        self._ingest(KIND_REST, f.conn, head + b"\n" + body, time.time_ns())

    # -- Link protocol (called by the transport) ---------------------------------------------
    def frame(self, conn: str, data: bytes, ts_recv: int) -> None:
        if self._data_only(conn, data):
            # Rows only: journaled, and the builder makes them; the adapter need not parse.
            # (Counted as one row: the live counts are the collector's estimate, the lake's
            # exact rows per table come from the builder.)
            self.journal.append(KIND_IN, conn, ts_recv, data)
            self.normalizer.saw(conn, ts_recv)
            self.records += 1
            self.rows_by_conn[conn] = self.rows_by_conn.get(conn, 0) + 1
            return
        self._ingest(KIND_IN, conn, data, ts_recv)

    def event(self, conn: str, ev: str, **fields: Any) -> None:
        self._ingest(KIND_META, conn, meta(ev, **fields), time.time_ns())

    def sent(self, conn: str, send: Send, ts: int) -> None:
        self._ingest(KIND_OUT, conn, redact(send.text, send.secret_keys), ts)

    async def resumed(self) -> None:
        """Transports await this before the next read while ``paused`` (backpressure)."""
        await self._resume.wait()

    # -- journal writer callbacks (on the loop) ----------------------------------------------
    def _pressure(self, on: bool) -> None:
        self.paused = on
        (self._resume.clear if on else self._resume.set)()
        pending = self.journal.pending_bytes
        for name in list(self.conns):
            self.event(name, "backpressure" if on else "backpressure_end",
                       reason=f"journal writer {'behind' if on else 'caught up'}: "
                       f"{pending >> 20} MiB waiting for the disk; "
                       f"{'not reading the socket' if on else 'reading again'}")

    def _failed(self, e: BaseException) -> None:
        if self.failure is None:
            self.failure = e
        self._resume.set()
        if self._stop is not None:
            self._stop.set()  # the disk failed: the whole run stops and says why

    # -- the run -----------------------------------------------------------------------------
    async def run(self, http: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        """Run every connection (those the adapter opens later too) until all have ended."""
        self._http, self._stop = http, stop
        self.journal.on_pressure = self._pressure
        self.journal.on_failure = self._failed
        self.journal.start(asyncio.get_running_loop())
        self.event("run", "run_start", **self.run_start)
        for spec in self.adapter.connections():
            self.static_conns.add(spec.name)
            self._open(spec)
        # Optional hook: actions due before any frame (a REST hydration, say).
        for action in self.adapter.on_start():
            self._dispatch(action)
        flusher = asyncio.create_task(self._flush_loop(stop))
        closing = asyncio.create_task(self._close_deadline(stop))
        try:
            while self._conn_tasks:
                done, _ = await asyncio.wait(self._conn_tasks,
                                             return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    self._ended(self._conn_tasks.pop(t))
                    exc = t.exception()
                    if exc is not None:
                        raise exc
        finally:
            closing.cancel()
            for t in list(self._tasks):
                t.cancel()
            flusher.cancel()
            await self.close()

    def _ended(self, name: str) -> None:
        """A connection's loop has returned. A stream that ended for good (a per-request
        stream whose request is over) leaves the run; its counts stay in ``ended``."""
        c = self.conns.get(name)
        if c is not None and c.status.state == "stopped" and not self._stop.is_set():  # type: ignore[union-attr]
            del self.conns[name]
            self._ended_names.add(name)
            self.ended.add(c.status)

    async def _close_deadline(self, stop: asyncio.Event) -> None:
        """Closing has an overall deadline: a server that keeps sending (or never answers
        the close) cannot hold the run open."""
        await stop.wait()
        await asyncio.sleep(self.settings.close_deadline)
        for t, name in list(self._conn_tasks.items()):
            if not t.done():
                self.conns[name].status.state = "abandoned"
                self.event(name, "error", reason=f"connection did not close within "
                           f"{self.settings.close_deadline:g}s; abandoned")
                t.cancel()

    async def _flush_loop(self, stop: asyncio.Event) -> None:
        jf = self.settings.journal_flush_ms / 1000.0
        while True:
            await asyncio.sleep(jf)
            self.journal.flush()

    @property
    def last_recv(self) -> int | None:
        """The receive time of this venue's last frame in this run (any connection)."""
        times = [c.status.last_ts for c in self.conns.values() if c.status.last_ts]
        if self.ended.last_ts:
            times.append(self.ended.last_ts)
        return max(times) if times else None

    async def close(self) -> None:
        """Write what is buffered and close the journal (its thread finishes off the loop)."""
        try:
            await asyncio.to_thread(self.journal.close)
        except Exception as e:  # noqa: BLE001 - surfaced through self.failure
            if self.failure is None:
                self.failure = e


@dataclass
class EndedConns:
    """What connections that left the run (per-request streams) received, in sum."""

    count: int = 0
    frames: int = 0
    bytes: int = 0
    reconnects: int = 0
    last_ts: int | None = None

    def add(self, st: Any) -> None:
        self.count += 1
        self.frames += st.frames
        self.bytes += st.bytes
        self.reconnects += st.reconnects
        if st.last_ts is not None and (self.last_ts is None or st.last_ts > self.last_ts):
            self.last_ts = st.last_ts
