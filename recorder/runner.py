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
from recorder.journal import KIND_IN, KIND_META, KIND_OUT, JournalWriter
from recorder.lake import LakeWriter
from recorder.normalize import Normalizer, meta
from recorder.transport.ws import WsConnection
from recorder.venues.base import Action, Adapter, Send, VenueSpec


def redact(text: str, keys: tuple[str, ...]) -> bytes:
    """The journal copy of an outbound message, with secret values replaced."""
    if not keys:
        return text.encode()
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        return b'"<redacted: unparsable message with secrets>"'
    if isinstance(obj, dict):
        for k in keys:
            if k in obj:
                obj[k] = "***"
    return orjson.dumps(obj)


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
        self.conns: dict[str, WsConnection] = {}
        self.records = 0
        self.gaps = 0
        self.errors: list[str] = []
        self.events: dict[str, int] = {}
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"io-{cfg.name}")
        self._pending: list[Future[Any]] = []
        self.failure: BaseException | None = None

    # -- the hot path ------------------------------------------------------------------------
    def _ingest(self, kind: int, conn: str, data: bytes, ts: int) -> None:
        seg, idx, seq = self.journal.append(kind, conn, ts, data)
        try:
            rows, actions = self.normalizer.process(kind, conn, ts, data)
        except Exception as e:  # an adapter bug must not lose the frame: it is journaled
            from recorder.venues.base import unhandled

            rows, actions = [unhandled("adapter_error", data, error=repr(e))], ()
        lake = self.lake
        lake.note(seg, idx)
        for table, row in rows:
            lake.add(table, row, ts, conn, seq)
        if rows:
            self.records += len(rows)
            for table, row in rows:
                if table.name == "session_events":
                    self._session_row(conn, row)
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
        c = self.conns.get(action.conn)
        if c is not None:
            c.submit(action)

    # -- Link protocol (called by the transport) ---------------------------------------------
    def frame(self, conn: str, data: bytes, ts_recv: int) -> None:
        self._ingest(KIND_IN, conn, data, ts_recv)

    def event(self, conn: str, ev: str, **fields: Any) -> None:
        self._ingest(KIND_META, conn, meta(ev, **fields), time.time_ns())

    def sent(self, conn: str, send: Send, ts: int) -> None:
        self._ingest(KIND_OUT, conn, redact(send.text, send.secret_keys), ts)

    # -- disk --------------------------------------------------------------------------------
    def _submit(self, fn: Any, *args: Any) -> None:
        self._pending = [f for f in self._pending if not f.done() or self._check(f)]
        self._pending.append(self._io.submit(fn, *args))

    def _check(self, f: Future[Any]) -> bool:
        exc = f.exception()
        if exc is not None and self.failure is None:
            self.failure = exc
        return False

    def flush_journal(self) -> None:
        self._submit(self.journal.write_batch, *self.journal.take_batch(time.time_ns()))

    def flush_lake(self) -> None:
        self.flush_journal()  # the journal batch is written before the files that cover it
        self._submit(self.lake.write, *self.lake.take())

    async def run(self, http: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        for spec in self.adapter.connections():
            self.conns[spec.name] = WsConnection(spec, self.cfg.transport, self, http,
                                                 self.spec.send_limit)
        tasks = [asyncio.create_task(c.run(stop)) for c in self.conns.values()]
        flusher = asyncio.create_task(self._flush_loop(stop))
        try:
            await asyncio.gather(*tasks)
        finally:
            stop.set()
            await flusher
            await self.close()

    async def _flush_loop(self, stop: asyncio.Event) -> None:
        jf = self.settings.journal_flush_ms / 1000.0
        lf = self.settings.lake_flush_seconds
        last_lake = time.monotonic()
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=jf)
            except TimeoutError:
                pass
            now = time.monotonic()
            if now - last_lake >= lf or self.lake.buffered >= self.settings.lake_max_rows:
                last_lake = now
                self.flush_lake()
            else:
                self.flush_journal()
            if self.failure is not None:
                stop.set()

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
