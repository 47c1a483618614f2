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
- Faults: :meth:`DiffusalServer.gap`, :meth:`~DiffusalServer.diff_before_snapshot`,
  :meth:`~DiffusalServer.rate_limit_next`, :meth:`~DiffusalServer.close_4029`,
  :meth:`~DiffusalServer.storm`, :meth:`~DiffusalServer.pause`, :meth:`~DiffusalServer.drop`,
  :meth:`~DiffusalServer.inject`; the same over HTTP as ``POST /_sim/<name>``.
- Ledger: every frame sent, per connection in send order (:meth:`ledger_for`), and every REST
  response (:attr:`rest_ledger`).
- Native replay (``replay=True``): no synthetic market and no RFQ heartbeat loop; recorded
  frames come in through :meth:`DiffusalServer.publish` and are routed by the recorder's
  connection name (which path) and the sessions' subscriptions; the control plane, auth and
  greetings stay this server's own. REST answers come from the recording's REST responses
  when ``recording`` names its data directory (see :class:`RecordedRest`).

Error codes other than 4029 are not documented; the simulator uses 4000 (bad request), 4001
(not authenticated / bad credentials) and 4004 (unknown channel), application-range codes a
client can tell apart (inferred).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import orjson
from aiohttp import WSMsgType, web

from recorder import journal as jr
from recorder.venues.diffusal.synth import ACCOUNT, MM_SELF, DiffusalSynth, Event, Msg
from recorder.venues.simbase import listen, loopback_url

log = logging.getLogger(__name__)

BAD_REQUEST, UNAUTHORIZED, UNKNOWN_CHANNEL, RATE_LIMITED = 4000, 4001, 4004, 4029
PRIVATE_CHANNELS = frozenset({"position", "order", "fill", "collateral", "rfq", "liquidation",
                              "portfolio"})
SIM_TOKEN = "diffusal-sim-bearer"
SIM_API_KEY = "dfsl_sim_key"


@dataclass(eq=False)
class _Conn:
    no: int
    path: str
    ws: web.WebSocketResponse
    request: web.Request
    subs: dict[str, None] = field(default_factory=dict)
    authed: bool = False
    request_id: str | None = None  # /ws/rfq/quotes
    msg_times: deque[float] = field(default_factory=deque)
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    seq: int = 0
    closing: bool = False
    writer: asyncio.Task[None] | None = None


@dataclass(frozen=True)
class _Close:
    code: int
    message: bytes = b""


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


class DiffusalServer:
    """The Diffusal simulator. Options:

    seed, rate: the synthetic market (``rate`` multiplies event frequency).
    tokens: accepted SIWE bearer tokens (private AUTH, /ws/rfq/quotes, /ws/rfq/mm, REST).
    api_keys: accepted ``dfsl_`` keys (private AUTH, /ws/rfq/mm ``X-API-Key``).
    auth_reply: ``status`` ({"status":"authenticated","id":n}, the seed's example code) or
      ``result`` ({"result":{AuthSuccessResult},"id":n}, the generated reference).
    max_subs, msgs_per_min, conns_per_min: the documented public caps.
    heartbeat: seconds between RFQ-socket ``heartbeat`` frames. ping: protocol ping interval.
    tick: seconds between market steps. ledger_path: also append sent frames as JSON lines.
    series_every, settle_every, rfq_every: market steps between those events.
    replay: native replay mode (no synthetic market, no heartbeat loop; :meth:`publish`).
    recording: in replay mode, a recorder data directory whose journaled REST responses
      answer the REST endpoints (:class:`RecordedRest`); without it REST answers come from
      the (idle) synthetic state.
    mm_address: the address in the ``auth_success`` greeting of ``/ws/rfq/mm``.
    """

    def __init__(self, *, seed: int = 1, rate: float = 1.0,
                 tokens: tuple[str, ...] | list[str] = (SIM_TOKEN,),
                 api_keys: tuple[str, ...] | list[str] = (SIM_API_KEY,),
                 auth_reply: str = "status", max_subs: int = 50, msgs_per_min: int = 300,
                 conns_per_min: int = 60, heartbeat: float = 5.0, ping: float | None = 20.0,
                 tick: float = 0.1, ledger_path: str | None = None, series_every: int = 40,
                 settle_every: int = 90, rfq_every: int = 15, auction_ms: int = 1200,
                 replay: bool = False, recording: str | Path | None = None,
                 mm_address: str = MM_SELF) -> None:
        if auth_reply not in ("status", "result"):
            raise ValueError("auth_reply is 'status' or 'result'")
        self.synth = DiffusalSynth(seed, start_ms=time.time_ns() // 1_000_000, rate=rate,
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
        self.tick_s = tick
        self.ledger_path = ledger_path
        self.ledger: list[tuple[int, int, str]] = []
        self.rest_ledger: list[tuple[str, int, str]] = []  # (path, status, body)
        self.paths: dict[int, str] = {}  # conn no -> path (with query)
        self.refused: list[tuple[float, str]] = []  # connections closed silently (cap)
        self.accepted_at: list[float] = []  # monotonic time of every accepted WS handshake
        self._sent: dict[int, list[str]] = {}
        self._conns: dict[int, _Conn] = {}
        self._next_conn = 1
        self._conn_times: deque[float] = deque()
        self._force_4029 = 0
        self._storm_until = 0.0
        self._diff_first = 0
        self._paused = False
        self._ledger_file: IO[bytes] | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._beater: asyncio.Task[None] | None = None
        self._host = "127.0.0.1"
        self._port = 0
        # Native replay: recorded frames arrive through publish(); see there.
        self.replay = replay
        self.mm_address = mm_address
        self.recorded_rest = RecordedRest(recording) if replay and recording else None
        # Recorded frames that open a subscription or a connection, published while nobody
        # was there yet to take them: (path, stream or requestId) -> {symbol: text}.
        self._held: dict[tuple[str, str], dict[Any, str]] = {}

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        if self.ledger_path:
            self._ledger_file = open(self.ledger_path, "ab")  # closed in stop()
        app = web.Application()
        for path in ("/ws/public", "/ws/private", "/ws/rfq/stream", "/ws/rfq/quotes",
                     "/ws/rfq/mm"):
            app.router.add_get(path, self._handle_ws)
        r = app.router
        r.add_get("/api/health", self._rest(lambda req: (200, {"status": "ok"})))
        r.add_get("/api/markets", self._rest(
            lambda req: (200, [s.info() for s in self.synth.live()])))
        r.add_get("/api/markets/pairs", self._rest(lambda req: (200, self.synth.pairs)))
        r.add_get("/api/markets/contracts", self._rest(
            lambda req: (200, [s.info() for s in self.synth.series.values()])))
        r.add_get("/api/markets/orderbook/{symbol}", self._rest(self._orderbook))
        r.add_get("/api/rfq/active-auctions", self._rest(
            lambda req: (200, self.synth.active_auctions(_now_ms()))))
        r.add_get("/api/rfq/quotes/{request_id}", self._rest(self._quotes))
        r.add_get("/_sim/ledger", self._http_ledger)
        r.add_post("/_sim/{name}", self._http_fault)
        self._runner, self._port = await listen(app, host, port, 1.0)
        self._host = host
        if not self.replay:
            self._ticker = asyncio.create_task(self._tick_loop(), name="diffusal-sim-ticker")
            self._beater = asyncio.create_task(self._heartbeat_loop(),
                                               name="diffusal-sim-heartbeat")
        return self._port

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """The base ``ws://HOST:PORT`` (the adapter appends the five paths)."""
        return loopback_url("ws", self._host, self._port)

    async def stop(self) -> None:
        for t in (self._ticker, self._beater):
            if t is not None:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t
        self._ticker = self._beater = None
        for task in list(self._tasks):
            task.cancel()
        conns = list(self._conns.values())
        if conns:
            await asyncio.gather(*(self._close_now(c, 1001, b"server stopping") for c in conns))
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._ledger_file is not None:
            self._ledger_file.close()
            self._ledger_file = None

    # -- ledger --------------------------------------------------------------------------------
    def ledger_for(self, conn_no: int) -> list[str]:
        return list(self._sent.get(conn_no, ()))

    def conns_on(self, path: str) -> list[int]:
        """Connection numbers (in accept order) whose path starts with ``path``."""
        return [n for n, p in sorted(self.paths.items()) if p.startswith(path)]

    def open_conns(self) -> list[int]:
        return sorted(self._conns)

    def book(self, symbol: str) -> Msg:
        return self.synth.book(symbol)

    # -- faults ------------------------------------------------------------------------------
    def gap(self, symbol: str | None = None, count: int = 1) -> str:
        """The next ``count`` diffs of ``symbol`` (default: the first live instrument) are
        applied to the book but never sent: the stream's sequence jumps."""
        s = self.synth.series[symbol] if symbol else self.synth.live()[0]
        s.hide += count
        return s.symbol

    def diff_before_snapshot(self, times: int = 1) -> None:
        """The next ``times`` instrument ``@depth`` subscribes get a diff before their
        snapshot (the other documented desync)."""
        self._diff_first += times

    def rate_limit_next(self, n: int = 1) -> None:
        """The next ``n`` control messages on /ws/public get error 4029 as if over 300/min."""
        self._force_4029 += n

    async def close_4029(self, path: str = "/ws/public") -> None:
        """Close every connection on ``path`` with code 4029 (rate limited)."""
        for c in list(self._conns.values()):
            if c.path.startswith(path):
                self._close_after_queue(c, RATE_LIMITED, b"rate limited")

    def storm(self, seconds: float) -> None:
        """For ``seconds``, close every new connection with 4029 right after the handshake."""
        self._storm_until = time.monotonic() + seconds

    def pause(self, paused: bool = True) -> None:
        """Stop (or restart) the market and the RFQ heartbeats: nothing is sent unprompted
        while paused, books stay put."""
        self._paused = paused

    async def drop(self) -> None:
        """Abort every connection's TCP transport (no close frame)."""
        for c in list(self._conns.values()):
            c.closing = True
            if c.writer is not None:
                c.writer.cancel()
            if c.request.transport is not None:
                c.request.transport.abort()

    async def inject(self, text: str, path: str = "/ws/public") -> None:
        for c in list(self._conns.values()):
            if c.path.startswith(path):
                self._enqueue(c, text)

    async def _http_fault(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            body = orjson.loads(await request.read() or b"{}")
            if not isinstance(body, dict):
                raise ValueError("body must be an object")
            if name == "gap":
                return web.json_response({"ok": True, "symbol": self.gap(
                    body.get("symbol"), int(body.get("count", 1)))})
            if name == "diff_before_snapshot":
                self.diff_before_snapshot(int(body.get("times", 1)))
            elif name == "rate_limit":
                self.rate_limit_next(int(body.get("n", 1)))
            elif name == "close_4029":
                await self.close_4029(str(body.get("path", "/ws/public")))
            elif name == "storm":
                self.storm(float(body.get("seconds", 5)))
            elif name == "pause":
                self.pause(bool(body.get("paused", True)))
            elif name == "drop":
                await self.drop()
            elif name == "inject":
                await self.inject(str(body["text"]), str(body.get("path", "/ws/public")))
            else:
                return web.json_response({"ok": False, "error": f"unknown fault {name!r}"},
                                         status=404)
        except (KeyError, TypeError, ValueError, orjson.JSONDecodeError) as e:
            return web.json_response({"ok": False, "error": repr(e)}, status=400)
        return web.json_response({"ok": True})

    async def _http_ledger(self, request: web.Request) -> web.Response:
        rows = [{"conn": c, "path": self.paths.get(c), "seq": s, "text": t}
                for c, s, t in self.ledger]
        return web.Response(body=orjson.dumps({"ws": rows, "rest": [
            {"path": p, "status": st, "body": b} for p, st, b in self.rest_ledger]}),
            content_type="application/json")

    # -- REST ----------------------------------------------------------------------------------
    def _rest(self, fn: Any) -> Any:
        async def handler(request: web.Request) -> web.Response:
            recorded = None
            if self.recorded_rest is not None and not (
                    request.path.startswith("/api/rfq/quotes/")
                    and self._bearer(request) not in self.tokens):
                recorded = self.recorded_rest.next(request.path_qs)
            if recorded is not None:
                status, body = recorded
                self.rest_ledger.append((request.path_qs, status, body))
                return web.Response(status=status, text=body, content_type="application/json")
            status, obj = fn(request)
            body = _dumps(obj)
            self.rest_ledger.append((request.path_qs, status, body))
            return web.Response(status=status, text=body, content_type="application/json")
        return handler

    def _orderbook(self, request: web.Request) -> tuple[int, Any]:
        sym = request.match_info["symbol"]
        s = self.synth.known_symbol(sym)
        if s is None:
            return 404, {"error": f"unknown symbol {sym}"}
        # REST and stream share the book's sequence, so a client can reconcile the two.
        return 200, self.synth.book_snapshot(sym, _now_ms(), typed=False)

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
    async def _handle_ws(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        rid: str | None = None
        if path in ("/ws/rfq/quotes", "/ws/rfq/mm"):
            token = self._bearer(request)
            ok = token in self.tokens or (path == "/ws/rfq/mm" and request.headers.get(
                "X-API-Key") in self.api_keys)
            if not ok:
                self.rest_ledger.append((request.path_qs, 401, "unauthorized"))
                return web.Response(status=401, text="unauthorized")
            if path == "/ws/rfq/quotes":
                rid = request.query.get("requestId") or request.headers.get("X-Request-Id")
                if not rid or (not self.replay and self.synth.auction(rid) is None):
                    self.rest_ledger.append((request.path_qs, 404, "unknown requestId"))
                    return web.Response(status=404, text="unknown requestId")
        ws = web.WebSocketResponse(compress=False, heartbeat=self.ping, max_msg_size=1 << 20)
        if not ws.can_prepare(request).ok:
            return web.Response(status=426, text="WebSocket upgrade required\n")
        await ws.prepare(request)
        now = time.monotonic()
        while self._conn_times and now - self._conn_times[0] >= 60.0:
            self._conn_times.popleft()
        self._conn_times.append(now)
        if len(self._conn_times) > self.conns_per_min:
            # "Connection limit exceeded — connection silently closed."
            self.refused.append((now, path))
            await ws.close(code=1008, message=b"")
            return ws
        self.accepted_at.append(now)
        conn = _Conn(self._next_conn, path, ws, request, request_id=rid)
        self._next_conn += 1
        self._conns[conn.no] = conn
        self._sent[conn.no] = []
        self.paths[conn.no] = request.path_qs
        conn.writer = asyncio.create_task(self._writer_loop(conn))
        if now < self._storm_until:
            self._close_after_queue(conn, RATE_LIMITED, b"rate limited")
        else:
            self._greet(conn)
        try:
            async for msg in ws:
                if conn.closing:
                    continue
                if msg.type == WSMsgType.TEXT:
                    self._on_text(conn, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    self._error(conn, BAD_REQUEST, "binary frames are not supported", None)
                else:
                    break
        except ConnectionError:
            pass
        finally:
            conn.closing = True
            self._conns.pop(conn.no, None)
            w = conn.writer
            if w is not None and not w.done():
                await asyncio.wait({w}, timeout=0.5)
                w.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await w
            if not ws.closed:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), 0.5)
        return ws

    def _greet(self, conn: _Conn) -> None:
        now = _now_ms()
        if self.replay:
            self._greet_replay(conn, now)
            return
        if conn.path == "/ws/rfq/stream":
            self._send(conn, {"type": "connected", "timestamp": now})
            self._send(conn, {"type": "snapshot", "auctions": self.synth.active_auctions(now),
                              "timestamp": now})
        elif conn.path == "/ws/rfq/quotes":
            assert conn.request_id is not None
            self._send(conn, {"type": "connected", "requestId": conn.request_id,
                              "timestamp": now})
            a = self.synth.auction(conn.request_id)
            assert a is not None
            for q in a.quotes:
                self._send(conn, {"type": "quote", **q})
            if a.resolved is not None:
                self._send(conn, a.resolved)
        elif conn.path == "/ws/rfq/mm":
            self._send(conn, {"type": "auth_success", "address": MM_SELF, "timestamp": now})

    # -- control plane -------------------------------------------------------------------------
    def _on_text(self, conn: _Conn, text: str) -> None:
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
        now = time.monotonic()
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
                self._send(conn, {"result": None, "id": rid})
        elif method == "LIST_SUBSCRIPTIONS":
            if "params" in msg:
                self._error(conn, BAD_REQUEST, "LIST_SUBSCRIPTIONS takes no params", rid)
            else:
                self._send(conn, {"result": list(conn.subs), "id": rid})
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
            self._send(conn, {"status": "authenticated", "id": rid})
        else:
            self._send(conn, {"result": {"status": "authenticated", "address": ACCOUNT,
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
        self._send(conn, {"result": None, "id": rid})
        if self.replay:
            # The snapshots that follow the ack are recorded frames: those already published
            # while this channel had no subscriber were held for this moment.
            for p in new:
                for text in self._held.pop((conn.path, p), {}).values():
                    self._enqueue(conn, text)
            return
        now = _now_ms()
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
        self._send(conn, {"stream": ch, "data": data})

    def _depth_snapshots(self, conn: _Conn, ch: str, now: int) -> None:
        key = ch.rpartition("@")[0]
        if key in (u.lower() for u in self.synth.underlyings()):
            # Grouped: one envelope per matching instrument, under the grouped key.
            for s in self.synth.live():
                if s.underlying.lower() == key:
                    self._send(conn, {"stream": ch, "data": self.synth.book_snapshot(
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
        self._send(conn, {"stream": ch, "data": self.synth.book_snapshot(s.symbol, now)})

    def _error(self, conn: _Conn, code: int, text: str, rid: int | None) -> None:
        self._send(conn, {"error": {"code": code, "msg": text}, "id": rid})

    # -- market ------------------------------------------------------------------------------
    async def _tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += self.tick_s
            delay = next_at - loop.time()
            if delay < 0:
                next_at, delay = loop.time(), 0.0
            await asyncio.sleep(delay)
            if self._paused:
                continue
            try:
                self._route(self.synth.tick(_now_ms()))
            except Exception:
                log.exception("diffusal sim: tick failed")
            if self._ledger_file is not None:
                self._ledger_file.flush()

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            if self._paused:
                continue
            now = _now_ms()
            for c in list(self._conns.values()):
                if c.path.startswith("/ws/rfq/"):
                    self._send(c, {"type": "heartbeat", "timestamp": now})

    def _route(self, events: list[Event]) -> None:
        conns = [c for c in self._conns.values() if not c.closing]
        for kind, key, payload in events:
            if kind in ("depth", "ticker", "trade"):
                assert key is not None
                s = self.synth.series[key]
                streams = (f"{key.lower()}@{kind}", f"{s.underlying.lower()}@{kind}")
                for c in conns:
                    if c.path == "/ws/public":
                        for st in streams:  # the grouped stream duplicates the instrument's
                            if st in c.subs:
                                self._send(c, {"stream": st, "data": payload})
            elif kind == "index":
                self._publish(conns, f"{key}@index", payload)
            elif kind == "markets":
                self._publish(conns, "global@markets", payload)
            elif kind == "rfq":
                self._publish(conns, "global@rfq", payload)
                for c in conns:
                    if c.path == "/ws/rfq/stream":
                        self._send(c, payload)
            elif kind == "quote":
                for c in conns:
                    if c.path == "/ws/rfq/quotes" and c.request_id == key:
                        self._send(c, payload)
                    elif c.path == "/ws/private" and f"rfq.quotes.{key}" in c.subs:
                        if payload.get("type") == "quote":
                            self._send(c, {"stream": f"rfq.quotes.{key}", "data": payload})
            elif kind == "private":
                for c in conns:
                    if c.path == "/ws/private" and key in c.subs:
                        self._send(c, {"stream": key, "data": payload})
            elif kind == "mm":
                for c in conns:
                    if c.path == "/ws/rfq/mm":
                        self._send(c, payload)

    def _publish(self, conns: list[_Conn], stream: str, payload: Msg) -> None:
        for c in conns:
            if c.path == "/ws/public" and stream in c.subs:
                self._send(c, {"stream": stream, "data": payload})

    # -- native replay -------------------------------------------------------------------------
    def subscribed(self) -> bool:
        """Native replay starts its clock once a client has subscribed to something: a
        channel on the multiplexed paths, or an RFQ socket (the connection is the
        subscription there)."""
        return any(c.subs or c.path.startswith("/ws/rfq/") for c in self._conns.values()
                   if not c.closing)

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
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return 0
        if not isinstance(msg, dict):
            return 0
        path, rid = replay_path(conn_id)
        live = [c for c in self._conns.values() if not c.closing]
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
            if not targets and msg.get("type") != "heartbeat":
                held = self._held.setdefault((path, rid or ""), {})
                held[len(held)] = text
        elif path in ("/ws/rfq/stream", "/ws/rfq/mm"):
            targets = [c for c in live if c.path == path]
            if not targets and path == "/ws/rfq/stream" and msg.get("type") == "snapshot":
                self._held[(path, "")] = {None: text}
        else:
            return 0  # an RFQ-socket frame from an unknown connection: no way to route it
        for c in targets:
            self._enqueue(c, text)
        return len(targets)

    def _greet_replay(self, conn: _Conn, now: int) -> None:
        """Greetings are this server's own; recorded frames held for this socket follow."""
        if conn.path == "/ws/rfq/stream":
            self._send(conn, {"type": "connected", "timestamp": now})
            held = self._held.pop((conn.path, ""), {})
        elif conn.path == "/ws/rfq/quotes":
            self._send(conn, {"type": "connected", "requestId": conn.request_id,
                              "timestamp": now})
            held = self._held.pop((conn.path, conn.request_id or ""), {})
        elif conn.path == "/ws/rfq/mm":
            self._send(conn, {"type": "auth_success", "address": self.mm_address,
                              "timestamp": now})
            held = {}
        else:
            held = {}
        for text in held.values():
            self._enqueue(conn, text)

    # -- sending -------------------------------------------------------------------------------
    def _send(self, conn: _Conn, obj: Msg) -> None:
        self._enqueue(conn, _dumps(obj))

    def _enqueue(self, conn: _Conn, item: Any) -> None:
        if not conn.closing:
            conn.queue.put_nowait(item)

    def _close_after_queue(self, conn: _Conn, code: int, message: bytes) -> None:
        if not conn.closing:
            conn.queue.put_nowait(_Close(code, message))
            conn.closing = True

    async def _close_now(self, conn: _Conn, code: int, message: bytes) -> None:
        conn.closing = True
        if conn.writer is not None and not conn.writer.done():
            conn.writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await conn.writer
        await _close_ws(conn, code, message)

    async def _writer_loop(self, conn: _Conn) -> None:
        try:
            while True:
                item = await conn.queue.get()
                if isinstance(item, _Close):
                    await _close_ws(conn, item.code, item.message)
                    return
                if not await self._write(conn, item):
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("diffusal sim: writer for connection %d failed", conn.no)

    async def _write(self, conn: _Conn, text: str) -> bool:
        ws = conn.ws
        if ws.closed:
            return False
        conn.seq += 1
        entry = (conn.no, conn.seq, text)
        self.ledger.append(entry)
        self._sent[conn.no].append(text)
        try:
            await ws.send_str(text)
        except (ConnectionError, RuntimeError):
            # Not written: take it back out of the ledger.
            with contextlib.suppress(ValueError):
                self.ledger.remove(entry)
            self._sent[conn.no].pop()
            conn.seq -= 1
            return False
        if self._ledger_file is not None:
            self._ledger_file.write(orjson.dumps({"conn": conn.no, "path": conn.path,
                                                  "seq": conn.seq, "text": text}) + b"\n")
        return True


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
    """REST answers from a recording: the journal's REST responses (kind ``rest``) of the
    venue, per path with query, in journal order. The k-th request for a path gets the k-th
    recorded response for it, the last one once they run out (so the replaying recorder's
    hydration and depth resyncs, which come in the recorded order, get the recorded bodies
    and statuses); a path never recorded returns None (the caller falls back to its
    synthetic state). Transport failures (status 0) are left out."""

    def __init__(self, data_dir: str | Path, venue: str = "diffusal") -> None:
        self.bodies: dict[str, list[tuple[int, str]]] = {}
        self._served: dict[str, int] = {}
        for (v, run), _ in sorted(jr.runs(Path(data_dir), venue).items()):
            for rec in jr.read_run(Path(data_dir), v, run):
                if rec.kind != jr.KIND_REST:
                    continue
                head, _, body = rec.data.partition(b"\n")
                try:
                    h = orjson.loads(head)
                    u = urlsplit(h["url"])
                    status = int(h["status"])
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    continue
                if status <= 0:
                    continue
                key = u.path + (f"?{u.query}" if u.query else "")
                self.bodies.setdefault(key, []).append((status, body.decode(errors="replace")))

    def next(self, path_qs: str) -> tuple[int, str] | None:
        got = self.bodies.get(path_qs)
        if not got:
            return None
        k = self._served.get(path_qs, 0)
        self._served[path_qs] = k + 1
        return got[min(k, len(got) - 1)]


async def _close_ws(conn: _Conn, code: int, message: bytes) -> None:
    ws = conn.ws
    if ws.closed:
        return
    try:
        await asyncio.wait_for(ws.close(code=code, message=message), 0.5)
    except (TimeoutError, ConnectionError, RuntimeError):
        if conn.request.transport is not None:
            conn.request.transport.abort()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def serve(host: str = "127.0.0.1", port: int = 8765, **opts: Any) -> None:
    """Run a :class:`DiffusalServer` until cancelled (``recorder sim diffusal``)."""
    if "api_keys" in opts and opts["api_keys"] is not None:
        opts["api_keys"] = tuple(opts["api_keys"])
    server = DiffusalServer(**{k: v for k, v in opts.items() if v is not None})
    bound = await server.start(host, port)
    print(f"diffusal simulator listening on ws://{host}:{bound} (/ws/public, /ws/private, "
          f"/ws/rfq/stream, /ws/rfq/quotes, /ws/rfq/mm; REST under /api)", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
