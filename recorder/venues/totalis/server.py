"""Local Totalis simulator (the venue's server side) on aiohttp: three SSE streams and the
post-trade WebSocket on one loopback port, fed by :class:`TotalisSynth`.

- ``GET /v1/mm/quote-requests/stream`` (X-API-Key, or ``Authorization: Bearer``): ``retry``,
  ``connected``, the snapshot (``snapshot_begin``, ``quote_request``/``cashout_request`` per
  active item, ``snapshot_complete``), then live events. Every event has an ``id:``
  (``<ms>-<n>``, the docs' ``1789161257595-0`` form). A reconnect with ``?last_event_id=`` or
  ``Last-Event-ID`` replays what followed that id from a bounded buffer; an unknown or too old
  id (or one inside a snapshot) gets a fresh snapshot instead, as the docs say.
- ``GET /v1/quote-requests/{id}/stream`` and ``GET /v1/cashout-requests/{id}/stream``: the
  request's events with ids; a fresh connection starts at its latest ``best_quote``; after the
  terminal event the stream closes; a resume past the end gets 204 (the standard's "stop
  reconnecting"). 404 for an unknown id, 403 when ``forbid_request_streams`` (the venue's answer
  to a key that does not own the request).
- ``: keepalive`` comments every ``keepalive`` seconds (the docs: about every 3 s).
- ``GET /ws``: ``auth`` -> ``auth:success``/``auth:error`` (then close 4001), ``subscribe``,
  ``unsubscribe`` (inferred), ``ping`` -> ``pong``; frames ``{"type", "data"}``; no replay.
- Faults: :meth:`TotalisServer.drop` (cut connections in the middle of an event: the first half
  of its bytes, then a TCP abort), ``drop_every`` (each SSE connection is cut mid-event after
  that many events), ``gap_every`` (a skipped ``book_seq``), ``won_absent``, a refused key.
- Ledgers: :attr:`sse_ledger` (every SSE write: events, partial events, keep-alives, retry) and
  :attr:`ws_ledger` (every WS text, per connection), :attr:`ws_commands` (what clients sent).
- ``replay=True`` (native replay, :func:`recorder.replay.serve_native`): no synthetic market;
  :meth:`TotalisServer.publish` feeds recorded frames. SSE event blocks are served byte for
  byte with their recorded ``id:``; resume, keep-alives, ``retry:``, auth, 404/204 and the WS
  protocol (auth, subscribe, ping) are this server's own. See :meth:`TotalisServer.publish`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

import orjson
from aiohttp import WSMsgType, web

from recorder.transport.sse import parse_event
from recorder.venues.simbase import listen, loopback_url
from recorder.venues.totalis.synth import Out, TotalisSynth, iso

log = logging.getLogger(__name__)
TICK_SECONDS = 0.05
AUTH_ERROR_CLOSE = 4001
_CUT = object()  # queue item: the next event is cut in half and the connection aborted
_END = object()  # queue item: end the response normally


@dataclass(frozen=True, slots=True)
class _Raw:
    """Queue/log item in replay mode: one recorded event block, sent byte for byte."""

    raw: bytes
    id: str | None
    event: str
    data: str | None


@dataclass(eq=False)
class _SseConn:
    no: int
    stream: str
    request: web.Request
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    events: int = 0
    cut_next: bool = False
    done: bool = False


@dataclass(eq=False)
class _Stream:
    """One event stream's replayable log. ``cursor`` maps an event id to the log position a
    resume from it continues at; ids that are not in it (snapshot items) mean "snapshot"."""

    key: str
    log: deque[tuple[str, str, str]] = field(default_factory=deque)  # (id, event, data)
    base: int = 0  # position of log[0]
    cursor: dict[str, int] = field(default_factory=dict)
    conns: set[_SseConn] = field(default_factory=set)
    ended: bool = False
    ended_at: float = 0.0
    last_book: int | None = None  # position of the latest best_quote
    fresh_at: int | None = None  # replay, MM stream: position of the latest recorded connected

    @property
    def end(self) -> int:
        return self.base + len(self.log)


@dataclass(eq=False)
class _WsConn:
    no: int
    ws: web.WebSocketResponse
    authed: bool = False
    channels: set[str] = field(default_factory=set)
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)


class TotalisServer:
    """Options: ``seed``, ``rate`` (request arrivals), ``api_keys``, ``keepalive`` (s),
    ``retry_ms`` (the ``retry:`` sent first on every stream), ``replay_buffer`` (MM stream
    events kept for resume), ``page_size``, ``drop_every``, ``forbid_request_streams``,
    ``subscribe_before_auth`` (``reject`` answers an error frame, ``ignore`` drops it),
    ``house_id`` (the house MM's DID: WS user_id), ``mm_id`` (the SSE ``connected.mm_id``,
    default the same DID as the current docs say; older docs showed ``mm-uuid-...``),
    ``quote_channel`` (``user_id`` or ``mm_id``: whose id names the channel quote events go
    to), ``won_absent``, ``gap_every``, ``cashout_chance``, ``ledger_path``, ``stream_ttl``
    (seconds an ended request stream stays resumable)."""

    def __init__(self, *, seed: int = 1, rate: float = 1.0,
                 api_keys: Iterable[str] = ("api_test_simulator_key",),
                 keepalive: float = 3.0, retry_ms: int = 1000, replay_buffer: int = 10_000,
                 page_size: int = 500, drop_every: int = 0, forbid_request_streams: bool = False,
                 subscribe_before_auth: str = "reject",
                 house_id: str = "did:privy:cmsimhouse0001", mm_id: str | None = None,
                 quote_channel: str = "user_id", won_absent: float = 0.1, gap_every: int = 0,
                 cashout_chance: float = 0.35, request_interval_ms: int = 400,
                 ledger_path: str | None = None, stream_ttl: float = 120.0,
                 replay: bool = False) -> None:
        if subscribe_before_auth not in ("reject", "ignore"):
            raise ValueError("subscribe_before_auth: reject or ignore")
        if quote_channel not in ("user_id", "mm_id"):
            raise ValueError("quote_channel: user_id or mm_id")
        self.api_keys = set(api_keys)
        self.keepalive = keepalive
        self.retry_ms = retry_ms
        self.replay_buffer = replay_buffer
        self.page_size = page_size
        self.drop_every = drop_every
        self.forbid_request_streams = forbid_request_streams
        self.subscribe_before_auth = subscribe_before_auth
        self.house_id = house_id
        self.mm_id = mm_id or house_id
        channel_id = house_id if quote_channel == "user_id" else self.mm_id
        self.synth = TotalisSynth(seed, rate=rate, house_id=house_id,
                                  quote_channel_id=channel_id, won_absent=won_absent,
                                  gap_every=gap_every, cashout_chance=cashout_chance,
                                  request_interval_ms=request_interval_ms)
        self.stream_ttl = stream_ttl
        self.ledger_path = ledger_path
        self.sse_ledger: list[dict[str, Any]] = []
        self.ws_ledger: dict[int, list[str]] = {}
        self.ws_commands: list[tuple[int, dict[str, Any]]] = []
        self.requests_seen: list[dict[str, Any]] = []  # SSE requests: path, resume id, status
        self.streams: dict[str, _Stream] = {"mm": _Stream("mm")}
        self._sse: dict[int, _SseConn] = {}
        self._ws: dict[int, _WsConn] = {}
        self._next_conn = 1
        self._ids_ms = 0
        self._ids_n = 0
        self._ledger_file: IO[bytes] | None = None
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._host = "127.0.0.1"
        self._port = 0
        self.paused = False
        # Native replay: recorded frames arrive through publish(); no ticker.
        self.replay = replay
        self._own_mm_ids: set[str] = {self.house_id, self.mm_id}  # ids naming our mm:quotes
        self._known: dict[str, None] = {}  # qr:<id>/co:<id> announced on the MM stream
        self._published = 0
        self._subscribed_once = False

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        if self.ledger_path:
            self._ledger_file = open(self.ledger_path, "ab")  # closed in stop()
        app = web.Application()
        app.router.add_get("/v1/mm/quote-requests/stream", self._mm_stream)
        app.router.add_get("/v1/quote-requests/{id}/stream", self._qr_stream)
        app.router.add_get("/v1/cashout-requests/{id}/stream", self._co_stream)
        app.router.add_get("/ws", self._handle_ws)
        app.router.add_get("/_sim/ledger", self._http_ledger)
        app.router.add_post("/_sim/{name}", self._http_fault)
        self._runner, self._port = await listen(app, host, port, 0.5)
        self._host = host
        if not self.replay:
            self._ticker = asyncio.create_task(self._tick_loop(), name="totalis-sim-ticker")
        return self._port

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """``http://HOST:PORT``: the API origin (SSE paths below it)."""
        return loopback_url("http", self._host, self._port)

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/ws"

    async def stop(self) -> None:
        """End every SSE stream cleanly (after what is queued) and close every WebSocket."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        for c in list(self._sse.values()):
            c.queue.put_nowait(_END)
        for w in list(self._ws.values()):
            w.queue.put_nowait(_END)
        deadline = time.monotonic() + 2.0
        while (self._sse or self._ws) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for task in list(self._tasks):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._ledger_file is not None:
            self._ledger_file.close()
            self._ledger_file = None

    # -- ledgers -------------------------------------------------------------------------
    def sent_events(self, stream: str | None = None) -> list[dict[str, Any]]:
        """Complete SSE events written, in order (``stream`` filters: ``mm``, ``qr:<id>``...)."""
        return [e for e in self.sse_ledger if e["kind"] == "event"
                and (stream is None or e["stream"] == stream)]

    def ws_sent(self) -> list[dict[str, Any]]:
        return [orjson.loads(t) for no in sorted(self.ws_ledger) for t in self.ws_ledger[no]]

    def _ledger(self, entry: dict[str, Any]) -> None:
        self.sse_ledger.append(entry)
        if self._ledger_file is not None:
            self._ledger_file.write(orjson.dumps(entry) + b"\n")

    # -- faults --------------------------------------------------------------------------
    def drop(self, target: str = "all") -> int:
        """Cut SSE connections in the middle of their next event (``mm``, ``qr``, ``co`` or
        ``all``); returns how many were marked."""
        n = 0
        for c in self._sse.values():
            if target == "all" or c.stream == target or c.stream.startswith(target + ":"):
                c.cut_next = True
                n += 1
        return n

    async def drop_ws(self) -> None:
        for w in list(self._ws.values()):
            with contextlib.suppress(Exception):
                await w.ws.close(code=1011, message=b"dropped")

    async def _http_fault(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            body = orjson.loads(await request.read() or b"{}")
        except orjson.JSONDecodeError:
            return web.json_response({"ok": False, "error": "body is not JSON"}, status=400)
        if name == "drop":
            return web.json_response({"ok": True, "cut": self.drop(str(body.get("target",
                                                                                "all")))})
        if name == "drop_ws":
            await self.drop_ws()
            return web.json_response({"ok": True})
        return web.json_response({"ok": False, "error": f"unknown fault {name!r}"}, status=404)

    async def _http_ledger(self, request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps({"sse": self.sse_ledger, "ws": self.ws_ledger}),
                            content_type="application/json")

    # -- ids and logs --------------------------------------------------------------------
    def _new_id(self, now_ms: int) -> str:
        if now_ms <= self._ids_ms:
            self._ids_n += 1
        else:
            self._ids_ms, self._ids_n = now_ms, 0
        return f"{self._ids_ms}-{self._ids_n}"

    def _append(self, st: _Stream, event: str, data: dict[str, Any], now_ms: int) -> tuple[
            str, str, str]:
        item = (self._new_id(now_ms), event, orjson.dumps(data).decode())
        st.log.append(item)
        st.cursor[item[0]] = st.end
        if event == "best_quote":
            st.last_book = st.end - 1
        if st.key == "mm":
            while len(st.log) > self.replay_buffer:
                old = st.log.popleft()
                st.cursor.pop(old[0], None)
                st.base += 1
        return item

    def _route(self, outs: list[Out], now_ms: int) -> None:
        for o in outs:
            if o.target.startswith("ws:"):
                text = orjson.dumps({"type": o.event, "data": o.data}).decode()
                channel = o.target[3:]
                for w in self._ws.values():
                    if w.authed and channel in w.channels:
                        w.queue.put_nowait(text)
                continue
            st = self.streams.get(o.target)
            if st is None:
                st = self.streams[o.target] = _Stream(o.target)
            item = self._append(st, o.event, o.data, now_ms)
            for c in st.conns:
                c.queue.put_nowait(item)
            if o.final:
                st.ended, st.ended_at = True, time.monotonic()
                for c in st.conns:
                    c.queue.put_nowait(_END)

    async def _tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += TICK_SECONDS
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            if loop.time() - next_at > 1.0:
                next_at = loop.time()
            if self.paused:
                continue
            try:
                now = time.time_ns() // 1_000_000
                self._route(self.synth.tick(now), now)
                self._expire_streams()
            except Exception:
                log.exception("totalis sim: tick failed")
            if self._ledger_file is not None:
                self._ledger_file.flush()

    def _expire_streams(self) -> None:
        cutoff = time.monotonic() - self.stream_ttl
        for key in [k for k, s in self.streams.items()
                    if s.ended and s.ended_at < cutoff and not s.conns]:
            del self.streams[key]
            self._known.pop(key, None)  # replay: a late connect gets 404, not an empty stream

    # -- SSE endpoints -------------------------------------------------------------------
    def _authorized(self, request: web.Request) -> bool:
        key = request.headers.get("X-API-Key")
        auth = request.headers.get("Authorization", "")
        if key is None and auth.startswith("Bearer "):
            key = auth[7:]
        return key in self.api_keys

    @staticmethod
    def _error(status: int, code: str, message: str) -> web.Response:
        # https://docs.totalis.trade/api-reference/errors: {"error": {code, message, details}}
        return web.json_response({"error": {"code": code, "message": message, "details": {}}},
                                 status=status)

    def _resume_id(self, request: web.Request) -> str | None:
        # The docs give ?last_event_id=; the standard's header is honoured too (query first).
        return request.query.get("last_event_id") or request.headers.get("Last-Event-ID")

    def _note(self, request: web.Request, status: int, resume: str | None,
              mode: str = "") -> None:
        self.requests_seen.append({"path": request.path, "status": status, "resume": resume,
                                   "query": request.query.get("last_event_id"),
                                   "header": request.headers.get("Last-Event-ID"),
                                   "mode": mode})

    async def _mm_stream(self, request: web.Request) -> web.StreamResponse:
        resume = self._resume_id(request)
        if not self._authorized(request):
            self._note(request, 401, resume)
            return self._error(401, "UNAUTHORIZED", "Missing or invalid API key.")
        st = self.streams["mm"]
        if self.replay:
            return await self._replay_stream(request, st, resume)
        now = time.time_ns() // 1_000_000
        pos = st.cursor.get(resume) if resume else None
        conn = self._new_conn("mm", request)
        # Everything below is queued without an await: the snapshot and the live events after
        # it meet exactly at the log position `st.end`, with no hole and no overlap.
        connected_id = self._new_id(now)
        self._enqueue_event(conn, (connected_id, "connected",
                                   orjson.dumps({"mm_id": self.mm_id}).decode()))
        if pos is not None and pos >= st.base:
            st.cursor[connected_id] = pos
            self._note(request, 200, resume, "replay")
            for item in list(st.log)[pos - st.base:]:
                self._enqueue_event(conn, item)
        else:
            self._note(request, 200, resume, "snapshot")
            items = self.synth.snapshot()
            self._enqueue_event(conn, (self._new_id(now), "snapshot_begin",
                                       orjson.dumps({"page_size": self.page_size}).decode()))
            for event, data in items:
                self._enqueue_event(conn, (self._new_id(now), event, orjson.dumps(data).decode()))
            done_id = self._new_id(now)
            st.cursor[done_id] = st.end
            self._enqueue_event(conn, (done_id, "snapshot_complete", orjson.dumps({
                "pages": self.synth.pages(len(items), self.page_size),
                "total": len(items)}).decode()))
        st.conns.add(conn)
        return await self._serve_sse(conn, st, request)

    async def _qr_stream(self, request: web.Request) -> web.StreamResponse:
        return await self._request_stream(request, "qr")

    async def _co_stream(self, request: web.Request) -> web.StreamResponse:
        return await self._request_stream(request, "co")

    async def _request_stream(self, request: web.Request, kind: str) -> web.StreamResponse:
        resume = self._resume_id(request)
        if not self._authorized(request):
            self._note(request, 401, resume)
            return self._error(401, "UNAUTHORIZED", "Missing or invalid JWT.")
        if self.forbid_request_streams:
            self._note(request, 403, resume)
            return self._error(403, "FORBIDDEN", "You do not own this quote request.")
        key = f"{kind}:{request.match_info['id']}"
        st = self.streams.get(key)
        if st is None and self.replay and key in self._known:
            st = self.streams[key] = _Stream(key)  # announced; its events are still to come
        if st is not None and self.replay:
            return await self._replay_stream(request, st, resume)
        if st is None:
            self._note(request, 404, resume)
            return self._error(404, "NOT_FOUND", "Quote request not found.")
        pos = st.cursor.get(resume) if resume else None
        if pos is None:
            pos = st.last_book if st.last_book is not None else st.base
            mode = "fresh"
        else:
            mode = "replay"
        if st.ended and pos >= st.end:
            self._note(request, 204, resume, mode)
            return web.Response(status=204)  # nothing more will ever come: stop reconnecting
        self._note(request, 200, resume, mode)
        conn = self._new_conn(st.key, request)
        for item in list(st.log)[pos - st.base:]:
            self._enqueue_event(conn, item)
        if st.ended:
            conn.queue.put_nowait(_END)
        else:
            st.conns.add(conn)
        return await self._serve_sse(conn, st, request)

    # -- native replay -------------------------------------------------------------------
    async def _replay_stream(self, request: web.Request, st: _Stream,
                             resume: str | None) -> web.StreamResponse:
        """A replayed SSE stream: after the server's own ``retry:``, the recorded blocks from
        the resume point on, then live as they are published.

        Resume (``?last_event_id=`` first, else ``Last-Event-ID``): the blocks recorded after
        that id, so no hole and no repeat. Without an id, or with one this replay never served
        (or already trimmed from the buffer), the connection starts where a fresh recorded
        connection would: on the MM stream at the latest recorded ``connected`` (its snapshot
        and everything since: a new snapshot of the requests open at this moment cannot be
        built, the recording has none), on a per-request stream at its first recorded event
        (the book as it was when the recorder connected, then every change). A per-request
        stream that has ended and is resumed past its end answers 204, as the simulator does.
        """
        pos = st.cursor.get(resume) if resume else None
        mode = "replay"
        if pos is None or pos < st.base:
            pos = max(st.base, st.fresh_at if st.fresh_at is not None else st.base)
            mode = "fresh"
        if st.ended and pos >= st.end:
            self._note(request, 204, resume, mode)
            return web.Response(status=204)
        self._note(request, 200, resume, mode)
        conn = self._new_conn(st.key, request)
        for item in list(st.log)[pos - st.base:]:
            conn.queue.put_nowait(item)
        if st.ended:
            conn.queue.put_nowait(_END)
        else:
            st.conns.add(conn)
        self._subscribed_once = True
        return await self._serve_sse(conn, st, request)

    def subscribed(self) -> bool:
        """Native replay starts its clock once a client has opened a stream or subscribed to a
        WebSocket channel."""
        return self._subscribed_once

    def publish(self, data: bytes | str, conn_id: str | None = None) -> int:
        """Native replay: route one recorded inbound frame; returns how many clients got it.

        ``conn_id`` is the recorder's connection name (adapter ConnSpec names): ``mm`` (the MM
        firehose), ``qr:<id>`` / ``co:<id>`` (one request's stream), ``ws`` (the WebSocket).

        SSE: the block is appended to that stream's log and sent byte for byte, ``id:`` line
        included, to the clients on that stream. Blocks without ``data`` that carry ``retry:``
        are the server's own hint at each connect: not replayed, this server sends its own.
        A ``quote_request``/``quote_request:updated``/``cashout_request`` makes that request's
        stream exist (404 before, as for an unknown id); ``committed``/``cancelled``/``expired``
        on ``qr:`` and ``status`` on ``co:`` end the stream (the server closes it after them,
        https://docs.totalis.trade/api-reference/quote-service/stream). A recorded
        ``connected`` (the MM stream's greeting with ``mm_id``) is replayed in its place with
        its recorded id: inventing a greeting would need an id the recording does not have.

        WebSocket: ``auth:success``/``auth:error``/``pong``/``error`` answered the recorder
        itself and are not replayed. The frames do not say which channel they came on (the
        envelope is ``{type, data}``; a ``channel`` key is not documented,
        https://docs.totalis.trade/guides/websocket), so the channel is read back from the
        documented grammar: ``quote:*`` and ``mm_quote:accepted`` go to ``mm:quotes:<id>``
        for this server's own MM ids (the auth ``user_id``, the ``mm_id`` option and every
        ``mm_id`` of a replayed ``connected``: the recording cannot tell which of the two
        ids named the channel, so a session on either gets it, once); ``position:*`` and any
        other frame with ``data.rfq_id`` go to ``rfq:<rfq_id>``; a frame with none of these
        goes to every authenticated session that holds a subscription. A ``channel`` in the
        envelope, when present, decides alone.
        """
        raw = data if isinstance(data, bytes) else data.encode()
        conn = conn_id or ""
        self._published += 1
        if self._published % 1000 == 0:
            self._expire_streams()
        if conn == "ws":
            return self._publish_ws(raw)
        ev = parse_event(raw)
        if ev.data is None and ev.retry is not None:
            return 0  # the recorded server's reconnection hint: ours is sent on every connect
        if conn != "mm" and not conn.startswith(("qr:", "co:")):
            log.warning("totalis replay: frame on unknown connection %r dropped", conn)
            return 0
        st = self.streams.get(conn)
        if st is None:
            st = self.streams[conn] = _Stream(conn)
        if st.ended:  # a recorded stream reopened after its end (a resume past it): new life
            st.ended = False
        item = _Raw(raw, ev.id, ev.event, ev.data)
        st.log.append(item)
        if ev.id is not None:
            # A repeated id (a venue fault) resumes after its FIRST copy: a client that saw
            # only that copy gets no hole; one that saw both gets a repeat it can dedup.
            st.cursor.setdefault(ev.id, st.end)
        if conn == "mm":
            self._on_mm_event(st, ev.event, ev.data)
            while len(st.log) > self.replay_buffer:
                old = st.log.popleft()
                st.base += 1
                if old.id is not None and st.cursor.get(old.id) == st.base:
                    del st.cursor[old.id]
        final = (conn.startswith("qr:") and ev.event in ("committed", "cancelled", "expired")
                 or conn.startswith("co:") and ev.event == "status")
        targets = list(st.conns)
        for c in targets:
            c.queue.put_nowait(item)
        if final:
            st.ended, st.ended_at = True, time.monotonic()
            for c in targets:
                c.queue.put_nowait(_END)
        return len(targets)

    def _on_mm_event(self, st: _Stream, event: str, data: str | None) -> None:
        if event not in ("connected", "quote_request", "quote_request:updated",
                         "cashout_request"):
            return
        if event == "connected":
            st.fresh_at = st.end - 1
        try:
            msg = orjson.loads(data or "")
        except orjson.JSONDecodeError:
            return
        if not isinstance(msg, dict):
            return
        if event == "connected":
            if isinstance(msg.get("mm_id"), str):
                self._own_mm_ids.add(msg["mm_id"])
            return
        rid = msg.get("cashout_request_id" if event == "cashout_request" else "id")
        if isinstance(rid, str):
            self._known[("co:" if event == "cashout_request" else "qr:") + rid] = None
            while len(self._known) > 100_000:
                del self._known[next(iter(self._known))]

    def _publish_ws(self, raw: bytes) -> int:
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return 0
        if not isinstance(msg, dict) or msg.get("type") in _WS_OWN:
            return 0
        channels = ws_channels(msg, self._own_mm_ids)
        targets = [w for w in self._ws.values() if w.authed and (
            (channels is None and w.channels) or (channels and not w.channels.isdisjoint(
                channels)))]
        text = raw.decode(errors="replace")
        for w in targets:
            w.queue.put_nowait(text)
        return len(targets)

    def _new_conn(self, stream: str, request: web.Request) -> _SseConn:
        conn = _SseConn(self._next_conn, stream, request)
        self._next_conn += 1
        self._sse[conn.no] = conn
        return conn

    @staticmethod
    def _enqueue_event(conn: _SseConn, item: tuple[str, str, str]) -> None:
        conn.queue.put_nowait(item)

    async def _serve_sse(self, conn: _SseConn, st: _Stream,
                         request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
        keeper: asyncio.Task[None] | None = None
        try:
            await resp.prepare(request)
            await self._write(conn, resp, f"retry: {self.retry_ms}\n\n".encode(), "retry")
            keeper = asyncio.create_task(self._keepalive(conn))
            while True:
                item = await conn.queue.get()
                if item is _END:
                    break
                if item is _CUT:
                    conn.cut_next = True
                    continue
                if isinstance(item, bytes):  # keep-alive comment
                    await self._write(conn, resp, item, "keepalive")
                    continue
                if isinstance(item, _Raw):
                    raw = item.raw
                    item = (item.id, item.event, item.data)
                else:
                    ev_id, event, data = item
                    raw = f"id: {ev_id}\nevent: {event}\ndata: {data}\n\n".encode()
                if conn.cut_next or (self.drop_every and conn.events >= self.drop_every):
                    await self._cut(conn, resp, request, item, raw)
                    break
                await self._write(conn, resp, raw, "event", item)
                conn.events += 1
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass
        finally:
            conn.done = True
            if keeper is not None:
                keeper.cancel()
            st.conns.discard(conn)
            self._sse.pop(conn.no, None)
        return resp

    async def _write(self, conn: _SseConn, resp: web.StreamResponse, raw: bytes, kind: str,
                     item: tuple[str, str, str] | None = None) -> None:
        entry: dict[str, Any] = {"conn": conn.no, "stream": conn.stream, "kind": kind,
                                 "raw": raw.decode(errors="replace")}
        if item is not None:
            entry.update(id=item[0], event=item[1], data=item[2])
        await resp.write(raw)
        self._ledger(entry)

    async def _cut(self, conn: _SseConn, resp: web.StreamResponse, request: web.Request,
                   item: tuple[str, str, str], raw: bytes) -> None:
        """Send the first half of an event, let it reach the client, then abort the TCP
        connection: the client holds a partial event that must never count."""
        half = raw[:len(raw) // 2]
        await resp.write(half)
        self._ledger({"conn": conn.no, "stream": conn.stream, "kind": "partial",
                      "raw": half.decode(errors="replace"), "id": item[0], "event": item[1]})
        await asyncio.sleep(0.05)
        if request.transport is not None:
            request.transport.abort()

    async def _keepalive(self, conn: _SseConn) -> None:
        while True:
            await asyncio.sleep(self.keepalive)
            conn.queue.put_nowait(b": keepalive\n\n")

    # -- WebSocket -----------------------------------------------------------------------
    async def _handle_ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(compress=False, max_msg_size=1024 * 1024)
        if not ws.can_prepare(request).ok:
            return web.Response(status=426, text="WebSocket upgrade required\n")
        await ws.prepare(request)
        conn = _WsConn(self._next_conn, ws)
        self._next_conn += 1
        self._ws[conn.no] = conn
        self.ws_ledger[conn.no] = []
        writer = asyncio.create_task(self._ws_writer(conn))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    break
                self._ws_command(conn, msg.data)
        except ConnectionError:
            pass
        finally:
            self._ws.pop(conn.no, None)
            if not writer.done():
                conn.queue.put_nowait(_END)
                with contextlib.suppress(asyncio.TimeoutError, Exception):
                    await asyncio.wait_for(writer, 1.0)
            writer.cancel()
            if not ws.closed:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), 0.5)
        return ws

    def _ws_send(self, conn: _WsConn, obj: dict[str, Any]) -> None:
        conn.queue.put_nowait(orjson.dumps(obj).decode())

    def _ws_command(self, conn: _WsConn, text: str) -> None:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            self._ws_send(conn, {"type": "error", "message": "Invalid JSON"})
            return
        if not isinstance(msg, dict):
            self._ws_send(conn, {"type": "error", "message": "Expected an object"})
            return
        self.ws_commands.append((conn.no, {k: ("***" if k == "api_key" else v)
                                           for k, v in msg.items()}))
        kind = msg.get("type")
        if kind == "auth":
            if msg.get("api_key") in self.api_keys:
                conn.authed = True
                self._ws_send(conn, {"type": "auth:success", "user_id": self.house_id,
                                     "user_type": "market_maker"})
            else:
                self._ws_send(conn, {"type": "auth:error", "message": "Invalid API key"})
                conn.queue.put_nowait(("close", AUTH_ERROR_CLOSE))
        elif kind == "ping":
            self._ws_send(conn, {"type": "pong", "timestamp": iso(time.time_ns() // 1_000_000)})
        elif kind in ("subscribe", "unsubscribe"):
            channel = msg.get("channel")
            if not conn.authed:
                # Undocumented: the default answers with an error frame; "ignore" drops it.
                if self.subscribe_before_auth == "reject":
                    self._ws_send(conn, {"type": "error", "message": "Not authenticated"})
                return
            if not isinstance(channel, str):
                self._ws_send(conn, {"type": "error", "message": "channel must be a string"})
                return
            # No acknowledgement is documented for either.
            if kind == "subscribe":
                conn.channels.add(channel)
                self._subscribed_once = True
            else:
                conn.channels.discard(channel)
        else:
            self._ws_send(conn, {"type": "error", "message": f"Unknown message type {kind!r}"})

    async def _ws_writer(self, conn: _WsConn) -> None:
        ws = conn.ws
        try:
            while True:
                item = await conn.queue.get()
                if item is _END:
                    await ws.close(code=1001, message=b"server stopping")
                    return
                if isinstance(item, tuple):
                    await ws.close(code=item[1], message=b"auth error")
                    return
                if ws.closed:
                    return
                await ws.send_str(item)
                self.ws_ledger[conn.no].append(item)
        except (ConnectionError, RuntimeError):
            return


_WS_OWN = frozenset({"auth:success", "auth:error", "pong", "error"})


def ws_channels(msg: dict[str, Any], own_mm_ids: Iterable[str]) -> set[str] | None:
    """The WS channels a recorded frame belongs to (None: unknown, every subscriber).

    Read back from the documented channel grammar (https://docs.totalis.trade/guides/websocket):
    ``quote:*``/``mm_quote:accepted`` on the MM's private ``mm:quotes:<mm_id>``, ``position:*``
    on ``rfq:<rfq_id>``. An envelope ``channel`` (undocumented) wins when present."""
    channel = msg.get("channel")
    if isinstance(channel, str) and channel:
        return {channel}
    kind = msg.get("type")
    data = msg.get("data")
    if isinstance(kind, str) and (kind.startswith("quote:") or kind == "mm_quote:accepted"):
        return {f"mm:quotes:{m}" for m in own_mm_ids}
    rfq = data.get("rfq_id") if isinstance(data, dict) else None
    if isinstance(rfq, str):
        return {f"rfq:{rfq}"}
    return None


async def serve(host: str = "127.0.0.1", port: int = 8766, **opts: Any) -> None:
    """Run a :class:`TotalisServer` until cancelled (``recorder sim totalis``)."""
    server = TotalisServer(**{k: v for k, v in opts.items() if v is not None})
    bound = await server.start(host, port)
    print(f"totalis simulator listening on http://{host}:{bound} (SSE: "
          f"/v1/mm/quote-requests/stream, /v1/quote-requests/{{id}}/stream, "
          f"/v1/cashout-requests/{{id}}/stream; WebSocket: /ws)", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
