"""Thin asyncio glue for one venue: transport -> journal -> normalizer -> lake writer.

Per frame, on the event loop and without awaiting: journal append (bytes + ts_recv), normalize
(the sans-I/O adapter), buffer rows. Disk work runs on one I/O thread per venue, in order:
a journal batch is always written before any Parquet file that covers it is committed.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import aiohttp
import orjson

from recorder.config import RecorderSettings, VenueConfig
from recorder.errors import RecorderError
from recorder.journal import KIND_IN, KIND_META, KIND_OUT, KIND_REST, JournalWriter
from recorder.lake import LakeWriter
from recorder.normalize import Normalizer, meta
from recorder.schema import SESSION_EVENTS
from recorder.transport import TRANSPORTS
from recorder.transport.backoff import RateGate
from recorder.venues.base import (
    Action,
    Adapter,
    ConnSpec,
    Fetch,
    Open,
    Send,
    VenueSpec,
    unhandled,
)


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
    def __init__(self, cfg: VenueConfig, spec: VenueSpec, adapter: Adapter,
                 settings: RecorderSettings, run_id: str) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.spec = spec
        self.settings = settings
        self.journal = JournalWriter(settings.data_dir, cfg.name, run_id,
                                     segment_bytes=settings.journal_segment_bytes,
                                     segment_seconds=settings.journal_segment_seconds)
        self.lake = LakeWriter(settings.data_dir, cfg.name, run_id,
                               max_rows=settings.lake_max_rows, max_bytes=settings.lake_max_bytes,
                               rotate_seconds=settings.lake_rotate_seconds)
        self.normalizer = Normalizer(adapter)
        self.adapter = adapter
        self.conns: dict[str, Any] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: aiohttp.ClientSession | None = None
        self._stop: asyncio.Event | None = None
        self.records = 0
        self.gaps = 0
        self.errors: list[str] = []
        self.events: dict[str, int] = {}
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"io-{cfg.name}")
        self._pending: list[Future[Any]] = []
        self.failure: BaseException | None = None
        # Read by the transports before every connection attempt (VenueSpec.connect_limit).
        self.connect_gate = RateGate(*spec.connect_limit) if spec.connect_limit else None

    # -- the hot path ------------------------------------------------------------------------
    def _ingest(self, kind: int, conn: str, data: bytes, ts: int) -> None:
        seg, idx, seq = self.journal.append(kind, conn, ts, data)
        try:
            rows, actions = self.normalizer.process(kind, conn, ts, data)
        except Exception as e:  # an adapter bug must not lose the frame: it is journaled
            rows, actions = [unhandled("adapter_error", data, error=repr(e))], ()
        lake = self.lake
        lake.note(seg, idx)
        add = lake.add
        for sub, (table, row) in enumerate(rows):
            add(table, row, ts, conn, seq, sub)
            if table is SESSION_EVENTS:
                self._session_row(conn, row)
        self.records += len(rows)
        for a in actions:
            self._dispatch(a)

    def _session_row(self, conn: str, row: dict[str, Any]) -> None:
        ev = row["event"]
        self.events[ev] = self.events.get(ev, 0) + 1
        if ev in ("reconnected", "gap"):
            self.gaps += 1
            c = self.conns.get(conn)
            if c is not None:
                start, end = row.get("gap_start"), row.get("gap_end")
                if start and end:
                    c.status.last_gap = f"{(end - start) / 1e9:.1f}s @ {time.strftime('%H:%M:%S')}"
                else:
                    c.status.last_gap = f"{ev} @ {time.strftime('%H:%M:%S')}"
        elif ev in ("error", "auth_failed", "rate_limited", "frame_too_large"):
            self.errors.append(f"{conn}: {ev} {row.get('code') or ''} {row.get('reason') or ''}")

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
            self.event(action.conn, "error", reason=f"adapter asked {type(action).__name__} on "
                       "a connection that does not exist (adapter bug)")
            return
        c.submit(action)

    def _open(self, spec: ConnSpec) -> None:
        if self._http is None or self._stop is None:
            return  # rebuild/recovery: nothing to open
        if spec.name in self.conns:
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
        self._conn_tasks.add(task)

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
        self._ingest(KIND_IN, conn, data, ts_recv)

    def event(self, conn: str, ev: str, **fields: Any) -> None:
        self._ingest(KIND_META, conn, meta(ev, **fields), time.time_ns())

    def sent(self, conn: str, send: Send, ts: int) -> None:
        self._ingest(KIND_OUT, conn, redact(send.text, send.secret_keys), ts)

    # -- disk --------------------------------------------------------------------------------
    def _submit(self, fn: Any, *args: Any) -> None:
        """Queue disk work on the venue's I/O thread; a failure of earlier work is kept in
        ``self.failure`` (the flush loop then stops the run and says why)."""
        still = []
        for f in self._pending:
            if not f.done():
                still.append(f)
            elif f.exception() is not None and self.failure is None:
                self.failure = f.exception()
        still.append(self._io.submit(fn, *args))
        self._pending = still

    def flush_journal(self) -> None:
        self._submit(self.journal.write_batch, *self.journal.take_batch(time.time_ns()))

    def flush_lake(self) -> None:
        self.flush_journal()  # the journal batch is written before the files that cover it
        self._submit(self.lake.write, *self.lake.take())

    async def run(self, http: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        """Run every connection (those the adapter opens later too) until all have ended."""
        self._http, self._stop = http, stop
        self._conn_tasks: set[asyncio.Task[None]] = set()
        for spec in self.adapter.connections():
            self._open(spec)
        # Optional hook: actions due before any frame (a REST hydration, say).
        for action in self.adapter.on_start():
            self._dispatch(action)
        done_here = asyncio.Event()  # this venue only: never stops the other venues
        flusher = asyncio.create_task(self._flush_loop(done_here, stop))
        try:
            while self._conn_tasks:
                done, _ = await asyncio.wait(self._conn_tasks,
                                             return_when=asyncio.FIRST_COMPLETED)
                self._conn_tasks -= done
                for t in done:
                    exc = t.exception()
                    if exc is not None:
                        raise exc
        finally:
            done_here.set()
            for t in list(self._tasks):
                t.cancel()
            await flusher
            await self.close()

    async def _flush_loop(self, done: asyncio.Event, run_stop: asyncio.Event) -> None:
        jf = self.settings.journal_flush_ms / 1000.0
        lf = self.settings.lake_flush_seconds
        last_lake = time.monotonic()
        while not done.is_set():
            try:
                await asyncio.wait_for(done.wait(), timeout=jf)
            except TimeoutError:
                pass
            now = time.monotonic()
            if now - last_lake >= lf or self.lake.buffered >= self.settings.lake_max_rows:
                last_lake = now
                self.flush_lake()
            else:
                self.flush_journal()
            if self.failure is not None:
                run_stop.set()  # the disk failed: the whole run must stop and say so

    async def close(self) -> None:
        """Flush everything and commit every open file."""
        self.flush_lake()
        self._submit(self.lake.commit_all)
        self._submit(self.journal.close)
        loop = asyncio.get_running_loop()
        for f in self._pending:
            try:
                await asyncio.wrap_future(f)
            except Exception as e:  # surfaced through self.failure
                if self.failure is None:
                    self.failure = e
        self._pending = []
        await loop.run_in_executor(None, self._io.shutdown)
        if self.failure is not None and not isinstance(self.failure, RecorderError):
            raise self.failure
