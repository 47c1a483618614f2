"""Local Diffusal simulator (the venue's server side), on aiohttp.web.

It serves, on one loopback port, what https://docs.diffusal.xyz/docs/api/websocket documents:

- ``/ws/public``: Binance-style control plane (``SUBSCRIBE``/``UNSUBSCRIBE``/
  ``LIST_SUBSCRIPTIONS``) with ``{"result":…,"id":n}`` and ``{"error":{"code","msg"},"id":n}``
  replies; strict frames (unknown properties rejected, like the schema's
  ``additionalProperties:false``); 50 subscriptions per connection and 300 messages/min, both
  answered with error 4029 while the connection stays open; ``@depth`` sends a ``snapshot``
  then ``diff``s with ``sequence`` +1; grouped ``<underlying>@…`` streams duplicate the
  instrument streams (one envelope per instrument); ``@index``; ``global@markets``
  (``series_created``/``series_settled``, 1e18 strikes) and ``global@rfq``.
- ``/ws/private``: ``AUTH`` in both documented shapes; ``SUBSCRIBE`` before it is rejected;
  subscribe is atomic; public keys are "unknown private channel"; a snapshot per channel after
  the ack, then updates; ``rfq.quotes.<requestId>`` for the account's requests.
- ``/ws/rfq/stream`` (``connected``, active-auction snapshot, ``rfq_request``,
  ``auction_resolved``, ``heartbeat``), ``/ws/rfq/quotes`` (bearer and ``requestId`` at the
  handshake; ``connected``, ``quote``, ``auction_resolved``, ``heartbeat``) and ``/ws/rfq/mm``
  (bearer or ``X-API-Key`` at the handshake; ``auth_success``, ``rfq_request``,
  ``quote_rejected``, ``trade_filled``, ``heartbeat``).
- Protocol pings every ``ping`` seconds; more than ``conns_per_min`` connections a minute are
  closed silently (no frame), as documented.
- REST: ``/api/health``, ``/api/markets``, ``/api/markets/pairs``, ``/api/markets/contracts``,
  ``/api/markets/orderbook/{symbol}`` (same sequence as the stream), ``/api/rfq/active-auctions``,
  ``/api/rfq/quotes/{requestId}`` (bearer).
- Faults: the driver's ``drop`` and ``inject``, and :meth:`DiffusalServer.gap`,
  :meth:`~DiffusalServer.diff_before_snapshot`, :meth:`~DiffusalServer.rate_limit`,
  :meth:`~DiffusalServer.close_4029`, :meth:`~DiffusalServer.storm` (each also
  ``POST /_sim/<name>``).
- Sessions, the writer, the ledger (every frame per connection, and every REST answer),
  closing and the clock are the simulator driver's (:mod:`recorder.sim.driver`); this module
  is the venue's grammar.
- Native replay (``replay=True``): no synthetic market and no RFQ heartbeat loop; recorded
  frames come in through :meth:`DiffusalServer.publish` and are routed by the recorder's
  connection name (which path) and the sessions' subscriptions; the control plane, auth and
  greetings stay this server's own. REST answers come from the recording's REST responses
  when the replay hands the server its ``recording`` (see :class:`RecordedRest`).

Error codes other than 4029 are not documented; the simulator uses 4000 (bad request), 4001
(not authenticated / bad credentials) and 4004 (unknown channel), application-range codes a
client can tell apart (inferred).
"""


from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson
from aiohttp import web

from recorder.sim import Recording
from recorder.sim.driver import Session, Simulator, dumps, fault, loads_object
from recorder.sim.driver import serve as run_simulator
from recorder.venues.diffusal.synth import ACCOUNT, MM_SELF, DiffusalSynth, Event, Msg

BAD_REQUEST, UNAUTHORIZED, UNKNOWN_CHANNEL, RATE_LIMITED = 4000, 4001, 4004, 4029
PRIVATE_CHANNELS = frozenset({"position", "order", "fill", "collateral", "rfq", "liquidation",
                              "portfolio"})
SIM_TOKEN = "diffusal-sim-bearer"
SIM_API_KEY = "dfsl_sim_key"
WS_PATHS = ("/ws/public", "/ws/private", "/ws/rfq/stream", "/ws/rfq/quotes", "/ws/rfq/mm")


@dataclass(eq=False)
class _Conn(Session):
    subs: dict[str, None] = field(default_factory=dict)
    authed: bool = False
    request_id: str | None = None  # /ws/rfq/quotes
    resolved: bool = False  # /ws/rfq/quotes: its auction_resolved is sent
    msg_times: deque[float] = field(default_factory=deque)


class DiffusalServer(Simulator[_Conn]):
    """The Diffusal simulator. Options (and the driver's: ``clock``, ``ledger_path``,
    ``max_queue``, ``replay``, ``recording``):

    seed, rate: the synthetic market (``rate`` multiplies event frequency).
    tokens: accepted SIWE bearer tokens (private AUTH, /ws/rfq/quotes, /ws/rfq/mm, REST).
    api_keys: accepted ``dfsl_`` keys (private AUTH, /ws/rfq/mm ``X-API-Key``).
    auth_reply: ``status`` ({"status":"authenticated","id":n}, the seed's example code) or
      ``result`` ({"result":{AuthSuccessResult},"id":n}, the generated reference).
    max_subs, msgs_per_min, conns_per_min: the documented public caps.
    heartbeat: seconds between RFQ-socket ``heartbeat`` frames. ping: protocol ping interval.
    tick: seconds between market steps.
    series_every, settle_every, rfq_every: market steps between those events.
    replay: native replay mode (no synthetic market, no heartbeat timer; :meth:`publish`);
      its ``recording``'s REST responses answer the REST endpoints (:class:`RecordedRest`);
      without one REST answers come from the (idle) synthetic state.
    mm_address: the address in the ``auth_success`` greeting of ``/ws/rfq/mm``.
    """

    name = "diffusal"

    def __init__(self, *, seed: int = 1, rate: float = 1.0,
                 tokens: tuple[str, ...] | list[str] = (SIM_TOKEN,),
                 api_keys: tuple[str, ...] | list[str] = (SIM_API_KEY,),
                 auth_reply: str = "status", max_subs: int = 50, msgs_per_min: int = 300,
                 conns_per_min: int = 60, heartbeat: float = 5.0, ping: float | None = 20.0,
                 tick: float = 0.1, series_every: int = 40, settle_every: int = 90,
                 rfq_every: int = 15, auction_ms: int = 1200, mm_address: str = MM_SELF,
                 **driver: Any) -> None:
        super().__init__(**driver)
        if auth_reply not in ("status", "result"):
            raise ValueError("auth_reply is 'status' or 'result'")
        self.synth = DiffusalSynth(seed, start_ms=self.clock.now_ms(), rate=rate,
                                   series_every=series_every, settle_every=settle_every,
                                   rfq_every=rfq_every, auction_ms=auction_ms)
        self.tokens = set(tokens)
        self.api_keys = set(api_keys)
        self.auth_reply = auth_reply
        self.max_subs = max_subs
        self.msgs_per_min = msgs_per_min
        self.conns_per_min = conns_per_min
        self.heartbeat = heartbeat
        self.ping = ping
        self.tick_seconds = None if self.replay else tick
        self.refused: list[tuple[float, str]] = []  # connections closed silently (cap)
        self.accepted_at: list[float] = []  # clock time of every accepted WS handshake
        self._conn_times: deque[float] = deque()
        self._force_4029 = 0
        self._storm_until = 0.0
        self._diff_first = 0
        self.mm_address = mm_address
        self.recorded_rest = RecordedRest(self.recording) if (
            self.replay and self.recording is not None) else None
        # Native replay: recorded frames that open a subscription or a connection, published
        # while nobody was there yet to take them: (path, stream or requestId) -> {key: text}.
        self._held: dict[tuple[str, str], dict[Any, str]] = {}
        self._quotes_opened: set[str] = set()  # requestIds whose quotes socket opened (replay)

    def routes(self, router: web.UrlDispatcher) -> None:
        ws = self.websocket(session=_Conn, check=self._handshake, heartbeat=self.ping,
                            max_msg_size=1 << 20)
        for path in WS_PATHS:
            router.add_get(path, ws)
        router.add_get("/api/health", self._answer(lambda req: (200, {"status": "ok"})))
        router.add_get("/api/markets", self._answer(
            lambda req: (200, [s.info() for s in self.synth.live()])))
        router.add_get("/api/markets/pairs", self._answer(lambda req: (200, self.synth.pairs)))
        router.add_get("/api/markets/contracts", self._answer(
            lambda req: (200, [s.info() for s in self.synth.series.values()])))
        router.add_get("/api/markets/orderbook/{symbol}", self._answer(self._orderbook))
        router.add_get("/api/rfq/active-auctions", self._answer(
            lambda req: (200, self.synth.active_auctions(self.clock.now_ms()))))
        router.add_get("/api/rfq/quotes/{request_id}", self._answer(self._quotes))

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        bound = await super().start(host, port)
        if not self.replay:  # in a replay the recorded heartbeats are replayed
            self.every(self.heartbeat, self._heartbeats)
        return bound

    @property
    def url(self) -> str:
        """The base ``ws://HOST:PORT`` (the adapter appends the five paths)."""
        return self.base_url("ws")

    def banner(self) -> str:
        return (f"{super().banner()} (/ws/public, /ws/private, /ws/rfq/stream, "
                f"/ws/rfq/quotes, /ws/rfq/mm; REST under /api)")

    def book(self, symbol: str) -> Msg:
        return self.synth.book(symbol)

    # -- faults ------------------------------------------------------------------------------
    @fault
    def gap(self, symbol: str | None = None, count: int = 1) -> str:
        """The next ``count`` diffs of ``symbol`` (default: the first live instrument) are
        applied to the book but never sent: the stream's sequence jumps."""
        s = self.synth.series[symbol] if symbol else self.synth.live()[0]
        s.hide += int(count)
        return s.symbol

    @fault
    def diff_before_snapshot(self, times: int = 1) -> None:
        """The next ``times`` instrument ``@depth`` subscribes get a diff before their
        snapshot (the other documented desync)."""
        self._diff_first += int(times)

    @fault
    def rate_limit(self, n: int = 1) -> None:
        """The next ``n`` control messages on /ws/public get error 4029 as if over 300/min."""
        self._force_4029 += int(n)

    @fault
    def close_4029(self, path: str = "/ws/public") -> None:
        """Close every connection on ``path`` with code 4029 (rate limited)."""
        for c in self.sessions(path):
            self.close(c, RATE_LIMITED, b"rate limited")

    @fault
    def storm(self, seconds: float = 5.0) -> None:
        """For ``seconds``, close every new connection with 4029 right after the handshake."""
        self._storm_until = self.clock.monotonic() + float(seconds)

    # -- REST ----------------------------------------------------------------------------------
    def _answer(self, fn: Callable[[web.Request], tuple[int, Any]]) -> Any:
        """A REST handler: the recording's answer in a replay (when it has one for the path),
        else ``fn``'s."""
        async def handler(request: web.Request) -> web.Response:
            recorded = None
            if self.recorded_rest is not None and not (
                    request.path.startswith("/api/rfq/quotes/")
                    and self._bearer(request) not in self.tokens):
                recorded = self.recorded_rest.next(request.path_qs)
            if recorded is not None:
                return self.rest(request, *recorded)
            status, obj = fn(request)
            return self.rest(request, status, dumps(obj))
        return handler

    def _orderbook(self, request: web.Request) -> tuple[int, Any]:
        sym = request.match_info["symbol"]
        s = self.synth.known_symbol(sym)
        if s is None:
            return 404, {"error": f"unknown symbol {sym}"}
        # REST and stream share the book's sequence, so a client can reconcile the two.
        return 200, self.synth.book_snapshot(sym, self.clock.now_ms(), typed=False)

    def _bearer(self, request: web.Request) -> str | None:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth[7:]
        # Browsers pass the Better Auth session cookie instead of a header.
        return request.cookies.get("better-auth.session_token")

    def _quotes(self, request: web.Request) -> tuple[int, Any]:
        if self._bearer(request) not in self.tokens:
            return 401, {"error": "unauthorized"}
        quotes = self.synth.quotes_for(request.match_info["request_id"])
        if quotes is None:
            return 404, {"error": "unknown request"}
        return 200, quotes

    # -- WebSocket sessions ---------------------------------------------------------------------
    def _handshake(self, request: web.Request) -> web.StreamResponse | None:
        """The RFQ quotes and MM sockets authenticate at the handshake (HTTP 401/404)."""
        path = request.path
        if path not in ("/ws/rfq/quotes", "/ws/rfq/mm"):
            return None
        token = self._bearer(request)
        ok = token in self.tokens or (path == "/ws/rfq/mm" and request.headers.get(
            "X-API-Key") in self.api_keys)
        if not ok:
            return self.rest(request, 401, "unauthorized", "text/plain")
        if path == "/ws/rfq/quotes":
            rid = _request_id(request)
            if not rid or (not self.replay and self.synth.auction(rid) is None):
                return self.rest(request, 404, "unknown requestId", "text/plain")
        return None

    def on_open(self, conn: _Conn) -> None:
        now = self.clock.monotonic()
        while self._conn_times and now - self._conn_times[0] >= 60.0:
            self._conn_times.popleft()
        self._conn_times.append(now)
        if len(self._conn_times) > self.conns_per_min:
            # "Connection limit exceeded — connection silently closed."
            self.refused.append((now, conn.path))
            self.close(conn, 1008)
            return
        self.accepted_at.append(now)
        if conn.path == "/ws/rfq/quotes":
            assert conn.request is not None
            conn.request_id = _request_id(conn.request)
        if now < self._storm_until:
            self.close(conn, RATE_LIMITED, b"rate limited")
        else:
            self._greet(conn)

    def on_binary(self, conn: _Conn, data: bytes) -> None:
        self._error(conn, BAD_REQUEST, "binary frames are not supported", None)

    def _greet(self, conn: _Conn) -> None:
        now = self.clock.now_ms()
        if self.replay:
            self._greet_replay(conn, now)
            return
        if conn.path == "/ws/rfq/stream":
            self.send_json(conn, {"type": "connected", "timestamp": now})
            self.send_json(conn, {"type": "snapshot", "auctions": self.synth.active_auctions(now),
                              "timestamp": now})
        elif conn.path == "/ws/rfq/quotes":
            assert conn.request_id is not None
            self.send_json(conn, {"type": "connected", "requestId": conn.request_id,
                              "timestamp": now})
            a = self.synth.auction(conn.request_id)
            assert a is not None
            for q in a.quotes:
                self.send_json(conn, {"type": "quote", **q})
            if a.resolved is not None:
                self.send_json(conn, a.resolved)
                conn.resolved = True
        elif conn.path == "/ws/rfq/mm":
            self.send_json(conn, {"type": "auth_success", "address": MM_SELF, "timestamp": now})

    # -- control plane -------------------------------------------------------------------------
    def on_text(self, conn: _Conn, text: str) -> None:
        if conn.path.startswith("/ws/rfq/"):
            return  # the RFQ sockets take no client messages (MM quotes go over REST here)
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            self._error(conn, BAD_REQUEST, "invalid JSON", None)
            return
        rid = msg.get("id") if isinstance(msg, dict) else None
        rid = rid if isinstance(rid, int) and not isinstance(rid, bool) else None
        # 300 messages/min per connection: excess gets 4029 and the connection stays open.
        now = self.clock.monotonic()
        times = conn.msg_times
        while times and now - times[0] >= 60.0:
            times.popleft()
        if len(times) >= self.msgs_per_min or self._force_4029 > 0:
            if self._force_4029 > 0:
                self._force_4029 -= 1
            self._error(conn, RATE_LIMITED, "rate limit exceeded: 300 messages/min", rid)
            return
        times.append(now)
        if not isinstance(msg, dict):
            self._error(conn, BAD_REQUEST, "expected a JSON object", None)
            return
        method = msg.get("method")
        private = conn.path == "/ws/private"
        allowed = {"method", "params", "id"}
        if private and method == "AUTH":
            allowed = {"method", "params", "id", "authorization", "primaryWalletAddress"}
        extra = set(msg) - allowed
        if extra:
            self._error(conn, BAD_REQUEST, f"unknown properties: {sorted(extra)}", rid)
            return
        if "id" in msg and rid is None:
            self._error(conn, BAD_REQUEST, "id must be a number", None)
            return
        if method == "AUTH" and private:
            self._on_auth(conn, msg, rid)
        elif method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            params = msg.get("params")
            if not isinstance(params, list) or not params or not all(
                    isinstance(p, str) for p in params):
                self._error(conn, BAD_REQUEST, "params must be a non-empty list of strings", rid)
            elif private and not conn.authed:
                self._error(conn, UNAUTHORIZED, "authenticate first (AUTH)", rid)
            elif method == "SUBSCRIBE":
                self._on_subscribe(conn, params, rid)
            else:
                for p in params:
                    conn.subs.pop(p, None)
                self.send_json(conn, {"result": None, "id": rid})
        elif method == "LIST_SUBSCRIPTIONS":
            if "params" in msg:
                self._error(conn, BAD_REQUEST, "LIST_SUBSCRIPTIONS takes no params", rid)
            else:
                self.send_json(conn, {"result": list(conn.subs), "id": rid})
        else:
            self._error(conn, BAD_REQUEST, f"unknown method {method!r}", rid)

    def _on_auth(self, conn: _Conn, msg: Msg, rid: int | None) -> None:
        # Shape 1 (websocket page): {"method":"AUTH","params":{"token":...},"id":1}.
        # Shape 2 (private page): {"method":"AUTH","authorization":"Bearer ...","id":1}.
        token: Any = None
        params = msg.get("params")
        if "authorization" in msg and params is None:
            token = msg["authorization"]
        elif isinstance(params, dict) and set(params) <= {"token"} and "authorization" not in msg:
            token = params.get("token")
        if not isinstance(token, str):
            self._error(conn, BAD_REQUEST, "AUTH needs params.token or authorization", rid)
            return
        token = token.removeprefix("Bearer ")
        if token not in self.tokens and token not in self.api_keys:
            self._error(conn, UNAUTHORIZED, "invalid or expired token", rid)
            return
        conn.authed = True
        if self.auth_reply == "status":
            self.send_json(conn, {"status": "authenticated", "id": rid})
        else:
            self.send_json(conn, {"result": {"status": "authenticated", "address": ACCOUNT,
                                         "scopes": ["read", "trade", "rfq"]}, "id": rid})

    def _known_public(self, ch: str) -> bool:
        if ch in ("global@markets", "global@rfq"):
            return True
        key, _, kind = ch.rpartition("@")
        if self.replay:  # the grammar only: what the recording holds is not known up front
            return bool(key) and kind in ("depth", "ticker", "trade", "index")
        if kind == "index":
            return any(p["symbol"].lower() == key for p in self.synth.pairs)
        if kind not in ("depth", "ticker", "trade"):
            return False
        if key in (u.lower() for u in self.synth.underlyings()):
            return True
        s = self.synth.known_symbol(key.upper())
        return s is not None and not s.settled

    def _known_private(self, ch: str) -> bool:
        if ch in PRIVATE_CHANNELS:
            return True
        if ch.startswith("rfq.quotes."):
            if self.replay:
                return len(ch) > len("rfq.quotes.")
            a = self.synth.auction(ch.removeprefix("rfq.quotes."))
            return a is not None and a.taker == ACCOUNT
        return False

    def _on_subscribe(self, conn: _Conn, params: list[str], rid: int | None) -> None:
        private = conn.path == "/ws/private"
        known = self._known_private if private else self._known_public
        bad = [p for p in params if not known(p)]
        if bad:
            # Atomic: one bad channel rejects the whole request.
            what = "unknown private channel" if private else "unknown channel"
            self._error(conn, UNKNOWN_CHANNEL, f"{what}: {bad[0]}", rid)
            return
        new = [p for p in dict.fromkeys(params) if p not in conn.subs]
        if len(conn.subs) + len(new) > self.max_subs:
            self._error(conn, RATE_LIMITED, f"subscription limit exceeded: max {self.max_subs} "
                        f"per connection", rid)
            return
        for p in new:
            conn.subs[p] = None
        self.send_json(conn, {"result": None, "id": rid})
        if self.replay:
            # The snapshots that follow the ack are recorded frames: those already published
            # while this channel had no subscriber were held for this moment.
            for p in new:
                for text in self._held.pop((conn.path, p), {}).values():
                    self.send(conn, text)
            return
        now = self.clock.now_ms()
        for p in new:
            if private:
                self._private_snapshot(conn, p, now)
            elif p.endswith("@depth"):
                self._depth_snapshots(conn, p, now)

    def _private_snapshot(self, conn: _Conn, ch: str, now: int) -> None:
        if ch.startswith("rfq.quotes."):
            a = self.synth.auction(ch.removeprefix("rfq.quotes."))
            quotes = list(a.quotes) if a is not None else []
            data: Msg = {"type": "snapshot", "items": quotes, "timestamp": now}
        else:
            data = self.synth.private_snapshot(ch, now)
        self.send_json(conn, {"stream": ch, "data": data})

    def _depth_snapshots(self, conn: _Conn, ch: str, now: int) -> None:
        key = ch.rpartition("@")[0]
        if key in (u.lower() for u in self.synth.underlyings()):
            # Grouped: one envelope per matching instrument, under the grouped key.
            for s in self.synth.live():
                if s.underlying.lower() == key:
                    self.send_json(conn, {"stream": ch, "data": self.synth.book_snapshot(
                        s.symbol, now)})
            return
        s = self.synth.known_symbol(key.upper())
        if s is None:
            return
        if self._diff_first > 0:
            self._diff_first -= 1
            d = self.synth.depth_diff(s, now)
            if d is not None:
                self._route([("depth", s.symbol, d)])
        self.send_json(conn, {"stream": ch, "data": self.synth.book_snapshot(s.symbol, now)})

    def _error(self, conn: _Conn, code: int, text: str, rid: int | None) -> None:
        self.send_json(conn, {"error": {"code": code, "msg": text}, "id": rid})

    # -- market ------------------------------------------------------------------------------
    def on_tick(self, now_ms: int) -> None:
        self._route(self.synth.tick(now_ms))

    def _heartbeats(self) -> None:
        if self.paused:  # the driver's pause stops the heartbeats too
            return
        now = self.clock.now_ms()
        for c in self.sessions("/ws/rfq/"):
            # Not on a quotes socket whose auction is resolved: a client closes it then (the
            # recorder does), and a heartbeat crossing that close would be in the ledger but
            # never read. The docs do not say whether the venue keeps sending them.
            if not c.resolved:
                self.send_json(c, {"type": "heartbeat", "timestamp": now})

    def _route(self, events: list[Event]) -> None:
        conns = self.sessions()
        for kind, key, payload in events:
            if kind in ("depth", "ticker", "trade"):
                assert key is not None
                s = self.synth.series[key]
                streams = (f"{key.lower()}@{kind}", f"{s.underlying.lower()}@{kind}")
                for c in conns:
                    if c.path == "/ws/public":
                        for st in streams:  # the grouped stream duplicates the instrument's
                            if st in c.subs:
                                self.send_json(c, {"stream": st, "data": payload})
            elif kind == "index":
                self._publish(conns, f"{key}@index", payload)
            elif kind == "markets":
                self._publish(conns, "global@markets", payload)
            elif kind == "rfq":
                self._publish(conns, "global@rfq", payload)
                for c in conns:
                    if c.path == "/ws/rfq/stream":
                        self.send_json(c, payload)
            elif kind == "quote":
                for c in conns:
                    if c.path == "/ws/rfq/quotes" and c.request_id == key:
                        self.send_json(c, payload)
                        c.resolved = c.resolved or payload.get("type") == "auction_resolved"
                    elif c.path == "/ws/private" and f"rfq.quotes.{key}" in c.subs:
                        if payload.get("type") == "quote":
                            self.send_json(c, {"stream": f"rfq.quotes.{key}", "data": payload})
            elif kind == "private":
                for c in conns:
                    if c.path == "/ws/private" and key in c.subs:
                        self.send_json(c, {"stream": key, "data": payload})
            elif kind == "mm":
                for c in conns:
                    if c.path == "/ws/rfq/mm":
                        self.send_json(c, payload)

    def _publish(self, conns: list[_Conn], stream: str, payload: Msg) -> None:
        for c in conns:
            if c.path == "/ws/public" and stream in c.subs:
                self.send_json(c, {"stream": stream, "data": payload})

    # -- native replay -------------------------------------------------------------------------
    def subscribed(self) -> bool:
        """Native replay starts its clock once a client has subscribed to something: a
        channel on the multiplexed paths, or an RFQ socket (the connection is the
        subscription there)."""
        return any(c.subs or c.path.startswith("/ws/rfq/") for c in self.sessions())

    def publish(self, data: bytes | str, conn_id: str | None = None) -> int:
        """Native replay: send one recorded frame, byte for byte, to the sessions it belongs
        to; returns how many got it.

        ``conn_id`` (the recorder's connection name) says which path the frame came from
        (:func:`replay_path`); within a path, ``{"stream","data"}`` envelopes go to the
        sessions subscribed to ``stream``, ``/ws/rfq/stream`` and ``/ws/rfq/mm`` frames to
        every session on that path, ``/ws/rfq/quotes`` frames to the sessions of that
        ``requestId``. Connection-level frames (``{"result"}``/``{"error"}`` replies, the
        ``status: authenticated`` AUTH reply, the ``connected`` and ``auth_success``
        greetings) are not replayed: this server answers those itself. Recorded ``heartbeat``
        frames are replayed (the heartbeat loop is off in replay mode): they carry the
        venue's own timestamps.

        Subscription snapshots (depth/private ``type: snapshot`` envelopes), the
        ``/ws/rfq/stream`` auction snapshot and the frames of a ``/ws/rfq/quotes`` request
        whose socket is not open yet are held when nobody takes them, and sent right after
        the ack (or the greeting) of the next session that asks: the venue sends those on
        subscribe/connect, and a replaying client reacts to recorded frames a little later
        than the recorded client did.
        """
        text = data.decode() if isinstance(data, bytes | bytearray) else data
        msg = loads_object(text)
        if msg is None:
            return 0
        path, rid = replay_path(conn_id)
        live = self.sessions()
        if "stream" in msg and "data" in msg:
            stream = msg["stream"]
            if not isinstance(stream, str):
                return 0
            # The recording cannot tell which of the connection's subscriptions a frame
            # answered. Reading chosen: the envelope's ``stream`` value is the subscription
            # key. The docs say a grouped key (``btc@depth``) sends "one envelope per matching
            # symbol" but not under which ``stream`` value; the simulator (and this reading)
            # uses the grouped key, with ``data.symbol`` naming the instrument
            # (https://docs.diffusal.xyz/docs/api/websocket, "Channels"; inferred, see
            # shared/venues/002-diffusal.md). Had the venue used the instrument key instead,
            # a replaying client subscribed only to ``btc@depth`` would miss those frames.
            # Any connection of the path may take it (the replaying client may spread its
            # channels over its sockets differently); without a known conn_id an envelope
            # goes to subscribers on both multiplexed paths.
            paths = (path,) if path in ("/ws/public", "/ws/private") else (
                "/ws/public", "/ws/private")
            targets = [c for c in live if c.path in paths and stream in c.subs]
            payload = msg["data"]
            if not targets and isinstance(payload, dict) and payload.get("type") == "snapshot":
                for pth in paths:
                    self._held.setdefault((pth, stream), {})[payload.get("symbol")] = text
        elif "result" in msg or "error" in msg or msg.get("status") == "authenticated":
            return 0  # replies to the recorded client's own requests
        elif msg.get("type") in ("connected", "auth_success"):
            return 0  # greetings: generated by _greet_replay
        elif path == "/ws/rfq/quotes":
            targets = [c for c in live if c.path == path and c.request_id == rid]
            # Held until the replaying client opens the socket (it reacts to the recorded
            # RFQ later than the recorded client did), heartbeats too while it never has:
            # the venue's heartbeat timer may fire right after the recorded connect, and
            # dropping that one reordered the socket's frames against the recording. Once
            # it has opened, a heartbeat nobody takes is dropped (nothing would flush it).
            if not targets and (msg.get("type") != "heartbeat"
                                or (rid or "") not in self._quotes_opened):
                held = self._held.setdefault((path, rid or ""), {})
                held[len(held)] = text
        elif path in ("/ws/rfq/stream", "/ws/rfq/mm"):
            targets = [c for c in live if c.path == path]
            if not targets and path == "/ws/rfq/stream" and msg.get("type") == "snapshot":
                self._held[(path, "")] = {None: text}
        else:
            return 0  # an RFQ-socket frame from an unknown connection: no way to route it
        for c in targets:
            self.send(c, text)
        return len(targets)

    def _greet_replay(self, conn: _Conn, now: int) -> None:
        """Greetings are this server's own; recorded frames held for this socket follow."""
        if conn.path == "/ws/rfq/stream":
            self.send_json(conn, {"type": "connected", "timestamp": now})
            held = self._held.pop((conn.path, ""), {})
        elif conn.path == "/ws/rfq/quotes":
            self.send_json(conn, {"type": "connected", "requestId": conn.request_id,
                              "timestamp": now})
            self._quotes_opened.add(conn.request_id or "")
            held = self._held.pop((conn.path, conn.request_id or ""), {})
        elif conn.path == "/ws/rfq/mm":
            self.send_json(conn, {"type": "auth_success", "address": self.mm_address,
                              "timestamp": now})
            held = {}
        else:
            held = {}
        for text in held.values():
            self.send(conn, text)



def _request_id(request: web.Request) -> str | None:
    return request.query.get("requestId") or request.headers.get("X-Request-Id")


def replay_path(conn_id: str | None) -> tuple[str | None, str | None]:
    """The WS path (and requestId) of a recorder connection name: ``public-N`` ->
    ``/ws/public``, ``private``, ``rfq-stream``, ``rfq-mm``, ``rfq-quotes-<requestId>``
    (see the adapter's module docstring); (None, None) when the name is not one of those."""
    if conn_id is None:
        return None, None
    if conn_id == "public" or conn_id.startswith("public-"):
        return "/ws/public", None
    if conn_id == "private":
        return "/ws/private", None
    if conn_id == "rfq-stream":
        return "/ws/rfq/stream", None
    if conn_id == "rfq-mm":
        return "/ws/rfq/mm", None
    if conn_id.startswith("rfq-quotes-"):
        return "/ws/rfq/quotes", conn_id.removeprefix("rfq-quotes-")
    return None, None


class RecordedRest:
    """REST answers from the recording: its REST responses (kind ``rest``), per path with
    query, in journal order. The k-th request for a path gets the k-th
    recorded response for it, the last one once they run out (so the replaying recorder's
    hydration and depth resyncs, which come in the recorded order, get the recorded bodies
    and statuses); a path never recorded returns None (the caller falls back to its
    synthetic state). Transport failures (status 0) are left out."""

    def __init__(self, recording: Recording) -> None:
        self.bodies: dict[str, list[tuple[int, str]]] = {}
        self._served: dict[str, int] = {}
        for _, rest in recording.rest():
            if rest.status <= 0:
                continue
            u = urlsplit(rest.url)
            key = u.path + (f"?{u.query}" if u.query else "")
            self.bodies.setdefault(key, []).append((rest.status,
                                                    rest.body.decode(errors="replace")))

    def next(self, path_qs: str) -> tuple[int, str] | None:
        got = self.bodies.get(path_qs)
        if not got:
            return None
        k = self._served.get(path_qs, 0)
        self._served[path_qs] = k + 1
        return got[min(k, len(got) - 1)]


#: ``recorder sim diffusal``: a :class:`DiffusalServer` until cancelled.
serve = functools.partial(run_simulator, DiffusalServer)
