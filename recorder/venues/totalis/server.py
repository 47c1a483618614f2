"""Local Totalis simulator (the venue's server side): three SSE streams and the post-trade
WebSocket on one loopback port, fed by :class:`TotalisSynth`; its grammar on the simulator
driver (:mod:`recorder.sim.driver`), which owns sessions, writers, the ledger, closing, the
faults and the clock.

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
- Faults: the driver's ``drop`` (``mid_frame=True`` cuts an SSE connection in the middle of its
  next event: the first half of its bytes, then a TCP abort; ``kind="mm"``, ``"qr"``, ``"co"``
  or ``"ws"`` picks the connections), ``inject`` and ``pause``;
  ``cut_terminal`` (the next per-request streams cut in the middle of their terminal event,
  right after a whole ``status``: what a drop at the worst moment looks like);
  ``drop_every`` (each SSE connection is cut mid-event after that many events), ``gap_every``
  (a skipped ``book_seq``), ``won_absent``, a refused key.
- Sessions are numbered across SSE and WS; SSE sessions' kind is their stream (``mm``,
  ``qr:<id>``, ``co:<id>``), WebSocket sessions' ``ws``. The ledger holds every SSE write
  (the ``retry:`` hint, events, keep-alives) and every WS text; :meth:`sent_events` reads the
  complete events back.
- ``replay=True`` (native replay, :func:`recorder.replay.serve_native`): no synthetic market;
  :meth:`TotalisServer.publish` feeds recorded frames. SSE event blocks are served byte for
  byte with their recorded ``id:``; resume, keep-alives, ``retry:``, auth, 404/204 and the WS
  protocol (auth, subscribe, ping) are this server's own. See :meth:`TotalisServer.publish`.
"""

from __future__ import annotations

import functools
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from recorder.sim.driver import Session, Simulator, dumps, fault, loads_object
from recorder.sim.driver import serve as run_simulator
from recorder.sse import parse_event
from recorder.venues.totalis.synth import Out, TotalisSynth, iso

log = logging.getLogger(__name__)
TICK_SECONDS = 0.05
AUTH_ERROR_CLOSE = 4001
WS = "ws"  # the kind of WebSocket sessions


@dataclass(frozen=True, slots=True)
class _Raw:
    """A log item in replay mode: one recorded event block, sent byte for byte."""

    raw: bytes
    id: str | None
    event: str
    data: str | None


def _block(item: tuple[str, str, str] | _Raw) -> bytes:
    """The bytes of one log item on the wire."""
    if isinstance(item, _Raw):
        return item.raw
    ev_id, event, data = item
    return f"id: {ev_id}\nevent: {event}\ndata: {data}\n\n".encode()


@dataclass(eq=False)
class _Conn(Session):
    """An SSE session (kind: its stream) or a WebSocket session (kind ``ws``)."""

    authed: bool = False
    channels: set[str] = field(default_factory=set)


@dataclass(eq=False)
class _Stream:
    """One event stream's replayable log. ``cursor`` maps an event id to the log position a
    resume from it continues at; ids that are not in it (snapshot items) mean "snapshot"."""

    key: str
    log: deque[Any] = field(default_factory=deque)  # (id, event, data) tuples, or _Raw
    base: int = 0  # position of log[0]
    cursor: dict[str, int] = field(default_factory=dict)
    conns: set[_Conn] = field(default_factory=set)
    ended: bool = False
    ended_at: float = 0.0
    last_book: int | None = None  # position of the latest best_quote
    fresh_at: int | None = None  # replay, MM stream: position of the latest recorded connected

    @property
    def end(self) -> int:
        return self.base + len(self.log)


class TotalisServer(Simulator[_Conn]):
    """Options: ``seed``, ``rate`` (request arrivals), ``api_keys``, ``keepalive`` (s),
    ``retry_ms`` (the ``retry:`` sent first on every stream), ``replay_buffer`` (MM stream
    events kept for resume), ``page_size``, ``drop_every``, ``forbid_request_streams``,
    ``subscribe_before_auth`` (``reject`` answers an error frame, ``ignore`` drops it),
    ``house_id`` (the house MM's DID: WS user_id), ``mm_id`` (the SSE ``connected.mm_id``,
    default the same DID as the current docs say; older docs showed ``mm-uuid-...``),
    ``quote_channel`` (``user_id`` or ``mm_id``: whose id names the channel quote events go
    to), ``won_absent``, ``gap_every``, ``cashout_chance``, ``stream_ttl`` (seconds an ended
    request stream stays resumable); and the driver's (``clock``, ``ledger_path``,
    ``max_queue``, ``replay``)."""

    name = "totalis"
    shutdown_timeout = 0.5

    def __init__(self, *, seed: int = 1, rate: float = 1.0,
                 api_keys: Iterable[str] = ("api_test_simulator_key",),
                 keepalive: float = 3.0, retry_ms: int = 1000, replay_buffer: int = 10_000,
                 page_size: int = 500, drop_every: int = 0, forbid_request_streams: bool = False,
                 subscribe_before_auth: str = "reject",
                 house_id: str = "did:privy:cmsimhouse0001", mm_id: str | None = None,
                 quote_channel: str = "user_id", won_absent: float = 0.1, gap_every: int = 0,
                 cashout_chance: float = 0.35, request_interval_ms: int = 400,
                 stream_ttl: float = 120.0, **driver: Any) -> None:
        super().__init__(**driver)
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
        self.requests_seen: list[dict[str, Any]] = []  # SSE requests: path, resume id, status
        self.streams: dict[str, _Stream] = {"mm": _Stream("mm")}
        self._ids_ms = 0
        self._ids_n = 0
        # Native replay: recorded frames arrive through publish(); no ticker.
        self.tick_seconds = None if self.replay else TICK_SECONDS
        self._own_mm_ids: set[str] = {self.house_id, self.mm_id}  # ids naming our mm:quotes
        self._known: dict[str, None] = {}  # qr:<id>/co:<id> announced on the MM stream
        self._published = 0
        self._subscribed_once = False
        self._cut_terminal: dict[str, int] = {}  # stream kind -> terminal events still to cut

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/v1/mm/quote-requests/stream", self._mm_stream)
        router.add_get("/v1/quote-requests/{id}/stream", self._qr_stream)
        router.add_get("/v1/cashout-requests/{id}/stream", self._co_stream)
        router.add_get("/ws", self.websocket(WS, session=_Conn))

    @property
    def url(self) -> str:
        """``http://HOST:PORT``: the API origin (SSE paths below it)."""
        return self.base_url("http")

    @property
    def ws_url(self) -> str:
        return self.base_url("ws", "/ws")

    def banner(self) -> str:
        return (f"{super().banner()} (SSE: /v1/mm/quote-requests/stream, "
                f"/v1/quote-requests/{{id}}/stream, /v1/cashout-requests/{{id}}/stream; "
                f"WebSocket: /ws)")

    # -- what was sent -------------------------------------------------------------------
    def sent_events(self, stream: str | None = None) -> list[dict[str, Any]]:
        """Complete SSE events handed to the sockets, in order (``stream`` filters: ``mm``,
        ``qr:<id>``...): ``{"conn", "stream", "id", "event", "data", "raw"}``."""
        out = []
        for e in self.ledger:
            kind = self.kinds[e.conn]
            if kind == WS or stream is not None and kind != stream:
                continue
            ev = parse_event(e.text.encode())
            if ev.data is not None:
                out.append({"conn": e.conn, "stream": kind, "id": ev.id, "event": ev.event,
                            "data": ev.data, "raw": e.text})
        return out

    def ws_sent(self) -> list[dict[str, Any]]:
        """Every WebSocket text sent, parsed, session after session."""
        return [orjson.loads(t) for no in self.conns(WS) for t in self.ledger_for(no)]

    # -- the market ----------------------------------------------------------------------
    def on_tick(self, now_ms: int) -> None:
        self._route(self.synth.tick(now_ms), now_ms)
        self._expire_streams()

    # -- ids and logs --------------------------------------------------------------------
    def _new_id(self, now_ms: int) -> str:
        if now_ms <= self._ids_ms:
            self._ids_n += 1
        else:
            self._ids_ms, self._ids_n = now_ms, 0
        return f"{self._ids_ms}-{self._ids_n}"

    def _append(self, st: _Stream, event: str, data: dict[str, Any], now_ms: int) -> tuple[
            str, str, str]:
        item = (self._new_id(now_ms), event, dumps(data))
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
                text = dumps({"type": o.event, "data": o.data})
                channel = o.target[3:]
                for w in self.sessions("ws"):
                    if w.authed and channel in w.channels:
                        self.send(w, text)
                continue
            st = self.streams.get(o.target)
            if st is None:
                st = self.streams[o.target] = _Stream(o.target)
            block = _block(self._append(st, o.event, o.data, now_ms))
            for c in st.conns:
                self.send(c, block)
            if o.final:
                st.ended, st.ended_at = True, self.clock.monotonic()
                for c in st.conns:
                    self.close(c)

    def _expire_streams(self) -> None:
        cutoff = self.clock.monotonic() - self.stream_ttl
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

    def _error(self, request: web.Request, status: int, code: str,
               message: str) -> web.Response:
        # https://docs.totalis.trade/api-reference/errors: {"error": {code, message, details}}
        return self.rest(request, status, dumps(
            {"error": {"code": code, "message": message, "details": {}}}))

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
            return self._error(request, 401, "UNAUTHORIZED", "Missing or invalid API key.")
        st = self.streams["mm"]
        if self.replay:
            return await self._replay_stream(request, st, resume)
        now = self.clock.now_ms()
        pos = st.cursor.get(resume) if resume else None
        conn = self._open_sse(request, "mm")
        # Everything below is queued without an await: the snapshot and the live events after
        # it meet exactly at the log position `st.end`, with no hole and no overlap.
        connected_id = self._new_id(now)
        self.send(conn, _block((connected_id, "connected", dumps({"mm_id": self.mm_id}))))
        if pos is not None and pos >= st.base:
            st.cursor[connected_id] = pos
            self._note(request, 200, resume, "replay")
            return await self._attach(conn, st, pos)
        self._note(request, 200, resume, "snapshot")
        items = self.synth.snapshot()
        for event, data in [("snapshot_begin", {"page_size": self.page_size}), *items]:
            self.send(conn, _block((self._new_id(now), event, dumps(data))))
        done_id = self._new_id(now)
        st.cursor[done_id] = st.end
        self.send(conn, _block((done_id, "snapshot_complete", dumps({
            "pages": self.synth.pages(len(items), self.page_size), "total": len(items)}))))
        return await self._attach(conn, st, st.end)

    async def _qr_stream(self, request: web.Request) -> web.StreamResponse:
        return await self._request_stream(request, "qr")

    async def _co_stream(self, request: web.Request) -> web.StreamResponse:
        return await self._request_stream(request, "co")

    async def _request_stream(self, request: web.Request, kind: str) -> web.StreamResponse:
        resume = self._resume_id(request)
        if not self._authorized(request):
            self._note(request, 401, resume)
            return self._error(request, 401, "UNAUTHORIZED", "Missing or invalid JWT.")
        if self.forbid_request_streams:
            self._note(request, 403, resume)
            return self._error(request, 403, "FORBIDDEN", "You do not own this quote request.")
        key = f"{kind}:{request.match_info['id']}"
        st = self.streams.get(key)
        if st is None and self.replay and key in self._known:
            st = self.streams[key] = _Stream(key)  # announced; its events are still to come
        if st is not None and self.replay:
            return await self._replay_stream(request, st, resume)
        if st is None:
            self._note(request, 404, resume)
            return self._error(request, 404, "NOT_FOUND", "Quote request not found.")
        pos = st.cursor.get(resume) if resume else None
        if pos is None:
            pos = st.last_book if st.last_book is not None else st.base
            mode = "fresh"
        else:
            mode = "replay"
        if st.ended and pos >= st.end:
            self._note(request, 204, resume, mode)
            return self.rest(request, 204, b"")  # nothing more will ever come: stop reconnecting
        self._note(request, 200, resume, mode)
        return await self._attach(self._open_sse(request, st.key), st, pos)

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
            return self.rest(request, 204, b"")
        self._note(request, 200, resume, mode)
        self._subscribed_once = True
        return await self._attach(self._open_sse(request, st.key), st, pos)

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
        targets = [c for c in st.conns if not c.closing]
        for c in targets:
            self.send(c, raw)
        if final:
            st.ended, st.ended_at = True, self.clock.monotonic()
            for c in targets:
                self.close(c)
        return len(targets)

    def _on_mm_event(self, st: _Stream, event: str, data: str | None) -> None:
        if event not in ("connected", "quote_request", "quote_request:updated",
                         "cashout_request"):
            return
        if event == "connected":
            st.fresh_at = st.end - 1
        msg = loads_object(data or "")
        if msg is None:
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
        msg = loads_object(raw)
        if msg is None or msg.get("type") in _WS_OWN:
            return 0
        channels = ws_channels(msg, self._own_mm_ids)
        targets = [w for w in self.sessions("ws") if w.authed and (
            (channels is None and w.channels) or (channels and not w.channels.isdisjoint(
                channels)))]
        text = raw.decode(errors="replace")
        for w in targets:
            self.send(w, text)
        return len(targets)

    @fault
    def cut_terminal(self, kind: str = "qr", times: int = 1) -> None:
        """Cut the next ``times`` per-request streams of ``kind`` (``qr``: its ``committed``,
        ``cancelled`` or ``expired``; ``co``: its ``status``) in the middle of their terminal
        event, as :meth:`drop` with ``mid_frame`` does (half the bytes, then a TCP abort).
        Everything before it, the ``status`` that precedes a quote request's terminal event
        included, is written whole."""
        if kind not in ("qr", "co"):
            raise ValueError("kind: qr or co")
        self._cut_terminal[kind] = int(times)

    def _terminal(self, s: Session, item: str | bytes) -> bool:
        kind = s.kind[:2]
        if not self._cut_terminal.get(kind) or s.kind[2:3] != ":":
            return False
        ev = parse_event(item)
        return ev.event in (("committed", "cancelled", "expired") if kind == "qr"
                            else ("status",))

    async def _write(self, s: Session, item: str | bytes, counted: bool = True,
                     ledgered: bool = True) -> bool:
        # The driver cuts a session's next frame (cut_next); cut_terminal arms it only when
        # that frame is the terminal event, after the frames queued before it went out whole.
        if counted and not s.cut_next and self._terminal(s, item):
            self._cut_terminal[s.kind[:2]] -= 1
            s.cut_next = True
        return await super()._write(s, item, counted, ledgered)

    def _open_sse(self, request: web.Request, stream: str) -> _Conn:
        conn = self.open_sse(request, stream, session=_Conn)
        conn.cut_after = self.drop_every
        return conn

    async def _attach(self, conn: _Conn, st: _Stream, pos: int) -> web.StreamResponse:
        """Serve ``conn`` the log of ``st`` from position ``pos`` on, then live (or close it
        once the stream has ended): the server's own ``retry:`` first, keep-alives every
        ``keepalive`` seconds."""
        for item in list(st.log)[pos - st.base:]:
            self.send(conn, _block(item))
        if st.ended:
            self.close(conn)
        else:
            st.conns.add(conn)
        return await self.serve_sse(conn, preface=f"retry: {self.retry_ms}\n\n".encode(),
                                    keepalive=self.keepalive)

    def on_close(self, conn: _Conn) -> None:
        st = self.streams.get(conn.kind)
        if st is not None:
            st.conns.discard(conn)

    # -- WebSocket -----------------------------------------------------------------------
    def on_text(self, conn: _Conn, text: str) -> None:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            self.send_json(conn, {"type": "error", "message": "Invalid JSON"})
            return
        if not isinstance(msg, dict):
            self.send_json(conn, {"type": "error", "message": "Expected an object"})
            return
        kind = msg.get("type")
        if kind == "auth":
            if msg.get("api_key") in self.api_keys:
                conn.authed = True
                self.send_json(conn, {"type": "auth:success", "user_id": self.house_id,
                                     "user_type": "market_maker"})
            else:
                self.send_json(conn, {"type": "auth:error", "message": "Invalid API key"})
                self.close(conn, AUTH_ERROR_CLOSE, b"auth error")
        elif kind == "ping":
            self.send_json(conn, {"type": "pong", "timestamp": iso(self.clock.now_ms())})
        elif kind in ("subscribe", "unsubscribe"):
            channel = msg.get("channel")
            if not conn.authed:
                # Undocumented: the default answers with an error frame; "ignore" drops it.
                if self.subscribe_before_auth == "reject":
                    self.send_json(conn, {"type": "error", "message": "Not authenticated"})
                return
            if not isinstance(channel, str):
                self.send_json(conn, {"type": "error", "message": "channel must be a string"})
                return
            # No acknowledgement is documented for either.
            if kind == "subscribe":
                conn.channels.add(channel)
                self._subscribed_once = True
            else:
                conn.channels.discard(channel)
        else:
            self.send_json(conn, {"type": "error", "message": f"Unknown message type {kind!r}"})


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


#: ``recorder sim totalis``: a :class:`TotalisServer` until cancelled.
serve = functools.partial(run_simulator, TotalisServer)
