"""Local Mackinac WebSocket simulator (the server side of the venue), on aiohttp.web.

It speaks the documented protocol over real loopback sockets
(https://mackinac.io/api/websocket/, https://mackinac.io/api/messages/):

- WS on ``/feed`` (current) and ``/ws`` (older docs); UTF-8 JSON text frames only, no
  compression, no subprotocol.
- Client actions ``auth``, ``subscribe``, ``unsubscribe``, ``history``; replies ``authed``,
  ``subscribed`` (unless ``ack=False``, the documented no-ack mode), ``snapshot``,
  ``ammliquidity_snapshot`` and ``error`` frames with the documented codes.
- Data frames come from :class:`~recorder.venues.mackinac.synth.MarketSynth`, driven by one
  global ticker every 50 ms, fanned out to every session subscribed to the key.
- Faults for tests: :meth:`MackinacServer.drop`, :meth:`~MackinacServer.server_closing`,
  :meth:`~MackinacServer.inject`, :meth:`~MackinacServer.stale`,
  :meth:`~MackinacServer.rate_limit`; the same over HTTP as ``POST /_sim/<name>`` with a
  JSON body, and ``GET /_sim/ledger``.
- Every frame sent to a client is recorded in :attr:`MackinacServer.ledger` in send order.

Each connection has one outbound queue drained by one writer task, so replies, data and
broadcasts reach a client in exactly the order they are ledgered, and a slow or vanished
client never blocks the ticker or other clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

import orjson
from aiohttp import WSMsgType, web

from recorder.venues.mackinac.synth import GATED_TYPES, HISTORY_CAP, MarketSynth
from recorder.venues.simbase import listen, loopback_url

log = logging.getLogger(__name__)

#: tier -> (rank, symbol limit). ``none`` is the anonymous free tier whose limit is the
#: server's ``anon_limit``; ``symbolLimit`` is null (unlimited) for super_admin
#: (https://mackinac.io/api/messages/ "authed"). Ranks order the feature gates.
TIERS: dict[str, tuple[int, int | None]] = {
    "none": (0, 3),
    "professional": (1, 50),
    "api": (2, 100),
    "super_admin": (3, None),
}

AUTH_FAILED_CLOSE = 4001
"""Close code after ``auth_failed``: the docs only say "a close frame may follow"; 4001 is
an application code (4000-4999) so clients can tell it from transport failures."""

SERVER_CLOSING_CLOSE = 1012  # "service restart": what a planned restart announces
TICK_SECONDS = 0.05
SUB_WINDOW_SECONDS = 10.0


@dataclass(frozen=True)
class _Close:
    """Queue item: send a close frame after everything queued before it."""

    code: int
    message: bytes = b""


_FIREHOSE = object()  # queue item: send the pre-generated firehose frames


@dataclass(eq=False)
class _Conn:
    """One accepted WebSocket session."""

    no: int
    ws: web.WebSocketResponse
    request: web.Request
    tier: str = "none"
    subs: set[str] = field(default_factory=set)
    sub_times: deque[float] = field(default_factory=deque)
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    seq: int = 0
    closing: bool = False  # no more frames may be queued
    close_started: bool = False  # the writer is sending the close frame
    firehose_sent: bool = False
    writer: asyncio.Task[None] | None = None


class MackinacServer:
    """The Mackinac simulator: an aiohttp app on one loopback port.

    Options:
      seed, rate: passed to :class:`MarketSynth` (``rate`` multiplies message cadence).
      api_keys: accepted keys; a sequence grants ``tier`` to each, a mapping key -> tier
        name (``professional``, ``api``, ``super_admin``).
      ack: send ``{"type":"subscribed",...}`` after each accepted subscribe; False is the
        documented no-ack mode ("the next data frame is the confirmation").
      anon_limit: symbols allowed to an unauthenticated session (free tier).
      sub_limit_per_10s: subscribe actions allowed per session per sliding 10 s window.
      firehose: when > 0, a session's first accepted subscribe is followed by that many
        pre-generated data frames sent back to back, then the paced stream continues.
      firehose_repeat: after the firehose, send the same frames again and again until the
        session ends (``make bench``'s soak: an endless stream without pre-generating
        millions of frames). Repeats are not ledgered, so the simulator's memory stays flat;
        their times and block numbers repeat too (duplicates, as a re-sent stream would be).
      ledger_path: also append every sent frame as a JSON line {"conn","seq","text"}.
      clob_levels, legacy_hl_every: passed to :class:`MarketSynth`.
      max_queue: a session whose outbound queue exceeds this is closed with 1008 (slow
        consumer). Mackinac documents no server-side flow control; this only bounds memory.
      heartbeat: server-initiated ping interval in seconds (None: only answer pings).
    """

    def __init__(
        self,
        *,
        seed: int = 1,
        api_keys: Iterable[str] | Mapping[str, str] = ("mk_test_sim",),
        ack: bool = True,
        rate: float = 1.0,
        anon_limit: int = 3,
        sub_limit_per_10s: int = 30,
        tier: str = "api",
        firehose: int = 0,
        firehose_repeat: bool = False,
        ledger_path: str | None = None,
        clob_levels: int = 20,
        legacy_hl_every: int = 0,
        max_queue: int = 200_000,
        heartbeat: float | None = None,
        replay: bool = False,
    ) -> None:
        if isinstance(api_keys, Mapping):
            self.api_keys: dict[str, str] = dict(api_keys)
        else:
            self.api_keys = dict.fromkeys(api_keys, tier)
        unknown = {t for t in self.api_keys.values() if t not in TIERS or t == "none"}
        if unknown:
            raise ValueError(f"unknown tier(s) {sorted(unknown)}; use one of {list(TIERS)[1:]}")
        self.synth = MarketSynth(seed, rate=rate, clob_levels=clob_levels,
                                 legacy_hl_every=legacy_hl_every)
        self.ack = ack
        self.anon_limit = anon_limit
        self.sub_limit_per_10s = sub_limit_per_10s
        self.firehose = firehose
        self.firehose_repeat = firehose_repeat
        self.ledger_path = ledger_path
        self.max_queue = max_queue
        self.heartbeat = heartbeat
        # Native replay: no synthetic market; recorded frames arrive through publish().
        self.replay = replay
        self._replay_prints: dict[str, deque[dict[str, Any]]] = {}
        self.ledger: list[tuple[int, int, str]] = []
        self._sent: dict[int, list[str]] = {}
        self._conns: dict[int, _Conn] = {}
        self._next_conn = 1
        self._stale: set[str] = set()
        self._forced_retry: int | None = None
        self._firehose_frames: list[str] = []
        self._ledger_file: IO[bytes] | None = None
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._host = "127.0.0.1"
        self._port = 0

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Bind, start serving and ticking; returns the bound port (useful with port=0)."""
        if self.firehose > 0:
            self._firehose_frames = self.synth.firehose(
                self.firehose, end_ms=time.time_ns() // 1_000_000)
        if self.ledger_path:
            self._ledger_file = open(self.ledger_path, "ab")  # closed in stop()
        app = web.Application()
        app.router.add_get("/feed", self._handle_ws)
        app.router.add_get("/ws", self._handle_ws)
        app.router.add_get("/_sim/ledger", self._http_ledger)
        app.router.add_post("/_sim/{name}", self._http_fault)
        self._runner, self._port = await listen(app, host, port, 1.0)
        self._host = host
        if not self.replay:
            self._ticker = asyncio.create_task(self._tick_loop(), name="mackinac-sim-ticker")
        return self._port

    @property
    def port(self) -> int:
        """The bound port (0 before :meth:`start`)."""
        return self._port

    @property
    def url(self) -> str:
        """``ws://HOST:PORT/feed`` of the running server (wildcard hosts become 127.0.0.1)."""
        return loopback_url("ws", self._host, self._port, "/feed")

    async def stop(self) -> None:
        """Close every session (1001) and the listener; returns within about a second."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
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

    # -- ledger --------------------------------------------------------------------------

    def ledger_for(self, conn_no: int) -> list[str]:
        """Texts sent to connection ``conn_no`` (1 = first accepted), in send order."""
        return list(self._sent.get(conn_no, ()))

    def connections(self) -> list[int]:
        """Numbers of the sessions currently open."""
        return sorted(self._conns)

    # -- faults --------------------------------------------------------------------------

    async def drop(self, code: int | None = None) -> None:
        """Abruptly end every session: abort the TCP transport (``code=None``) or send a
        close frame with ``code`` right away, skipping anything still queued."""
        conns = list(self._conns.values())
        if code is None:
            for conn in conns:
                conn.closing = True
                if conn.writer is not None:
                    conn.writer.cancel()
                transport = conn.request.transport
                if transport is not None:
                    transport.abort()
        else:
            await asyncio.gather(*(self._close_now(c, code, b"dropped") for c in conns))

    async def server_closing(self, reconnect_in_ms: int = 1000) -> None:
        """Broadcast ``{"type":"server_closing","reconnectIn":N}``; N ms later close those
        sessions (1012) after their queued frames. New connections keep being accepted.

        Returns right after the broadcast is queued; the close happens in the background.
        """
        conns = [c for c in self._conns.values() if not c.closing]
        text = _dumps({"type": "server_closing", "reconnectIn": int(reconnect_in_ms)})
        for conn in conns:
            self._enqueue(conn, text)

        async def later() -> None:
            await asyncio.sleep(reconnect_in_ms / 1000)
            for conn in conns:
                self._close_after_queue(conn, SERVER_CLOSING_CLOSE, b"server restarting")

        self._spawn(later())

    async def inject(self, text: str, conn_no: int | None = None) -> None:
        """Send raw ``text`` (malformed, unknown type, oversized...) to every session, or to
        ``conn_no`` only. Ledgered like any other frame."""
        for conn in list(self._conns.values()):
            if conn_no is None or conn.no == conn_no:
                self._enqueue(conn, text)

    async def stale(self, exchange: str, stale: bool = True, stale_sec: float = 67.4) -> None:
        """Broadcast ``feed_stale`` (and pause that exchange's frames) or ``feed_live``."""
        if stale:
            self._stale.add(exchange)
            frame: dict[str, Any] = {"type": "feed_stale", "exchange": exchange,
                                     "staleSec": float(stale_sec)}
        else:
            self._stale.discard(exchange)
            frame = {"type": "feed_live", "exchange": exchange}
        text = _dumps(frame)
        for conn in list(self._conns.values()):
            self._enqueue(conn, text)

    async def rate_limit(self, retry_after: int = 2) -> None:
        """Make the next subscribe action (any session) fail with ``rate_limited``."""
        self._forced_retry = int(retry_after)

    # -- HTTP control --------------------------------------------------------------------

    async def _http_fault(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body: Any = {}
        if request.can_read_body:
            try:
                body = orjson.loads(await request.read() or b"{}")
            except orjson.JSONDecodeError:
                return web.json_response({"ok": False, "error": "body is not JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"ok": False, "error": "body must be an object"},
                                     status=400)
        handlers = {
            "drop": lambda: self.drop(body.get("code")),
            "server_closing": lambda: self.server_closing(
                int(body.get("reconnect_in_ms", body.get("reconnectIn", 1000)))),
            "inject": lambda: self.inject(str(body["text"]), body.get("conn")),
            "stale": lambda: self.stale(str(body["exchange"]), bool(body.get("stale", True)),
                                        float(body.get("stale_sec", 67.4))),
            "rate_limit": lambda: self.rate_limit(int(body.get("retry_after", 2))),
        }
        if name not in handlers:
            return web.json_response({"ok": False, "error": f"unknown fault {name!r}"},
                                     status=404)
        try:
            await handlers[name]()
        except (KeyError, TypeError, ValueError) as exc:
            return web.json_response({"ok": False, "error": repr(exc)}, status=400)
        return web.json_response({"ok": True})

    async def _http_ledger(self, request: web.Request) -> web.Response:
        conn = request.query.get("conn")
        rows = [{"conn": c, "seq": s, "text": t} for c, s, t in self.ledger
                if conn is None or str(c) == conn]
        return web.Response(body=orjson.dumps(rows), content_type="application/json")

    # -- sessions ------------------------------------------------------------------------

    async def _handle_ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(compress=False, heartbeat=self.heartbeat,
                                   max_msg_size=1024 * 1024)
        if not ws.can_prepare(request).ok:
            return web.Response(status=426, text="WebSocket upgrade required\n")
        await ws.prepare(request)
        conn = _Conn(self._next_conn, ws, request)
        self._next_conn += 1
        self._conns[conn.no] = conn
        self._sent[conn.no] = []
        conn.writer = asyncio.create_task(self._writer_loop(conn),
                                          name=f"mackinac-sim-writer-{conn.no}")
        try:
            async for msg in ws:
                if conn.closing:
                    continue  # after auth_failed / server_closing: ignore the client
                if msg.type == WSMsgType.TEXT:
                    self._on_text(conn, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    self._error(conn, "internal_error", "Binary frames are not supported.")
                else:  # ERROR
                    break
        except ConnectionError:
            pass
        finally:
            conn.closing = True
            self._conns.pop(conn.no, None)
            writer = conn.writer
            if writer is not None and not writer.done():
                if conn.close_started:
                    # The writer is sending our close frame: let it finish briefly.
                    await asyncio.wait({writer}, timeout=1.0)
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await writer
            if not ws.closed:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), 0.5)
        return ws

    def _on_text(self, conn: _Conn, data: str) -> None:
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:
            # The docs list no "bad request" code; internal_error is the generic one and,
            # unlike invalid_symbol, makes the SDK drop nothing.
            self._error(conn, "internal_error", "Malformed JSON frame.")
            return
        if not isinstance(msg, dict):
            self._error(conn, "internal_error", "Expected a JSON object.")
            return
        action = msg.get("action")
        if action == "auth":
            self._on_auth(conn, msg)
        elif action == "subscribe":
            self._on_subscribe(conn, msg)
        elif action == "unsubscribe":
            self._on_unsubscribe(conn, msg)
        elif action == "history":
            self._on_history(conn, msg)
        else:
            self._error(conn, "internal_error", f"Unknown action {action!r}.")

    def _on_auth(self, conn: _Conn, msg: dict[str, Any]) -> None:
        tier = self.api_keys.get(msg.get("key")) if isinstance(msg.get("key"), str) else None
        if tier is None:
            self._error(conn, "auth_failed", "Invalid or revoked API key.")
            # "A close frame may follow" (https://mackinac.io/api/messages/ "error").
            self._close_after_queue(conn, AUTH_FAILED_CLOSE, b"auth_failed")
            return
        conn.tier = tier
        self._send_obj(conn, {"type": "authed", "tier": tier,
                              "symbolLimit": self._symbol_limit(tier)})

    def _symbol_limit(self, tier: str) -> int | None:
        return self.anon_limit if tier == "none" else TIERS[tier][1]

    def _key_of(self, conn: _Conn, msg: dict[str, Any]) -> tuple[str, str] | None:
        ex, sym = msg.get("exchange"), msg.get("symbol")
        if not isinstance(ex, str) or not isinstance(sym, str) or not ex or not sym:
            # Missing/non-string exchange or symbol: the documented invalid_symbol code.
            self._error(conn, "invalid_symbol", "exchange and symbol must be non-empty strings.",
                        exchange=ex if isinstance(ex, str) else None,
                        symbol=sym if isinstance(sym, str) else None)
            return None
        return ex, sym

    def _gate(self, conn: _Conn, key: str, ex: str, sym: str) -> bool:
        """Send unknown_symbol / subscription_required and return False when refused."""
        if not self.replay and not self.synth.known(key):
            self._error(conn, "unknown_symbol", f"Unknown symbol {sym!r} on exchange {ex!r}.",
                        exchange=ex, symbol=sym)
            return False
        need = self.synth.is_gated(key)
        if need is not None and TIERS[conn.tier][0] < TIERS[need][0]:
            self._error(conn, "subscription_required",
                        f"{ex}:{sym} requires the {need} tier.", exchange=ex, symbol=sym)
            return False
        return True

    def _on_subscribe(self, conn: _Conn, msg: dict[str, Any]) -> None:
        parsed = self._key_of(conn, msg)
        if parsed is None:
            return
        ex, sym = parsed
        # Sliding-window throttle. The server-side limit is undocumented; the SDK limits
        # itself to 30 per 10 s and the server answers excess with rate_limited+retryAfter
        # in whole seconds (https://mackinac.io/api/websocket/).
        now = time.monotonic()
        window = conn.sub_times
        while window and now - window[0] >= SUB_WINDOW_SECONDS:
            window.popleft()
        retry: int | None = None
        if self._forced_retry is not None:
            retry, self._forced_retry = self._forced_retry, None
        elif len(window) >= self.sub_limit_per_10s:
            retry = max(1, math.ceil(SUB_WINDOW_SECONDS - (now - window[0])))
        if retry is not None:
            self._error(conn, "rate_limited", f"Too many subscribe actions; retry in {retry}s.",
                        retryAfter=retry, exchange=ex, symbol=sym)
            return
        window.append(now)
        token = msg.get("token")
        if isinstance(token, str) and token in self.api_keys:
            # Browser-style auth: a JWT on the first subscribe sets the session tier.
            conn.tier = self.api_keys[token]
        key = f"{ex}:{sym}"
        if not self._gate(conn, key, ex, sym):
            return
        if key not in conn.subs:
            limit = self._symbol_limit(conn.tier)
            if limit is not None and len(conn.subs) >= limit:
                self._error(conn, "symbol_limit_reached",
                            f"Tier '{conn.tier}' allows {limit} symbols; you have "
                            f"{len(conn.subs)}.", limit=limit, exchange=ex, symbol=sym)
                return
            conn.subs.add(key)
            fresh = True
        else:
            fresh = False  # idempotent: ack again, but no second stream or snapshot
        if self.ack:
            # Sent since SDK 0.1.1; the websocket page still says "no explicit ack".
            self._send_obj(conn, {"type": "subscribed", "exchange": ex, "symbol": sym})
        if fresh and ex == "ammliquidity" and not self.replay:
            # One LP-event backfill on subscribe, then individual liquidity frames.
            self._send_obj(conn, self.synth.ammliquidity_snapshot(
                key, now_ms=time.time_ns() // 1_000_000))
        if self.firehose > 0 and not conn.firehose_sent:
            conn.firehose_sent = True
            self._enqueue(conn, _FIREHOSE)

    def _on_unsubscribe(self, conn: _Conn, msg: dict[str, Any]) -> None:
        parsed = self._key_of(conn, msg)
        if parsed is not None:
            # No reply is documented for unsubscribe; unknown or absent keys are ignored.
            conn.subs.discard(f"{parsed[0]}:{parsed[1]}")

    def _on_history(self, conn: _Conn, msg: dict[str, Any]) -> None:
        parsed = self._key_of(conn, msg)
        if parsed is None:
            return
        ex, sym = parsed
        key = f"{ex}:{sym}"
        if not self._gate(conn, key, ex, sym):
            return
        limit = msg.get("limit", 500)
        if isinstance(limit, bool) or not isinstance(limit, int):
            limit = 500
        # Oldest first, default 500, server cap 1000; prints is empty when nothing is
        # buffered (https://mackinac.io/api/messages/ via the SDK's SnapshotMessage).
        limit = max(0, min(limit, HISTORY_CAP))
        if self.replay:  # the prints replayed so far, as the venue's ring buffer would hold
            prints = list(self._replay_prints.get(key, ()))[-limit:] if limit else []
        else:
            prints = self.synth.history(key, limit)
        reply: dict[str, Any] = {"type": "snapshot", "exchange": ex, "symbol": sym,
                                 "prints": prints}
        if "reqId" in msg:
            reply["reqId"] = msg["reqId"]  # echoed verbatim, only when given
        self._send_obj(conn, reply)

    def _error(self, conn: _Conn, code: str, message: str, **extra: Any) -> None:
        frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
        frame.update({k: v for k, v in extra.items() if v is not None})
        self._send_obj(conn, frame)

    # -- sending -------------------------------------------------------------------------

    def _send_obj(self, conn: _Conn, obj: dict[str, Any]) -> None:
        self._enqueue(conn, _dumps(obj))

    def _enqueue(self, conn: _Conn, item: Any) -> None:
        if conn.closing:
            return
        if conn.queue.qsize() >= self.max_queue:
            log.warning("mackinac sim: connection %d is too slow; closing it", conn.no)
            conn.closing = True
            self._spawn(self._close_now(conn, 1008, b"slow consumer"))
            return
        conn.queue.put_nowait(item)

    def _close_after_queue(self, conn: _Conn, code: int, message: bytes) -> None:
        if conn.closing:
            return
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
        queue = conn.queue
        try:
            while True:
                item = await queue.get()
                if isinstance(item, str):
                    if not await self._send(conn, item):
                        return
                elif item is _FIREHOSE:
                    for i, text in enumerate(self._firehose_frames):
                        if not await self._send(conn, text):
                            return
                        if i % 256 == 255:
                            await asyncio.sleep(0)  # let other sessions and the ticker run
                    if self.firehose_repeat:
                        await self._repeat_firehose(conn)
                        return
                elif isinstance(item, _Close):
                    conn.close_started = True
                    await _close_ws(conn, item.code, item.message)
                    return
        except asyncio.CancelledError:
            raise
        except Exception:  # never let one session's failure escape into the loop
            log.exception("mackinac sim: writer for connection %d failed", conn.no)

    async def _repeat_firehose(self, conn: _Conn) -> None:
        """Send the firehose frames again until the session ends. Bypasses :meth:`_send`:
        ledgering every repeat would grow memory by an entry per frame for the whole soak.
        ``send_str`` waits while the socket's buffer is full, so a slow client slows us."""
        ws, frames = conn.ws, self._firehose_frames
        while frames and not ws.closed:
            for i, text in enumerate(frames):
                if ws.closed:
                    return
                try:
                    await ws.send_str(text)
                except (ConnectionError, RuntimeError):
                    return
                if i % 256 == 255:
                    await asyncio.sleep(0)

    async def _send(self, conn: _Conn, text: str) -> bool:
        """Send one frame and ledger it; False once the session is gone."""
        ws = conn.ws
        if ws.closed:
            return False
        conn.seq += 1
        entry = (conn.no, conn.seq, text)
        self.ledger.append(entry)
        sent = self._sent[conn.no]
        sent.append(text)
        try:
            await ws.send_str(text)
        except (ConnectionError, RuntimeError):
            # Uncompressed frames are written synchronously, so these errors mean the
            # frame never reached the transport: take it back out of the ledger.
            if self.ledger and self.ledger[-1] is entry:
                self.ledger.pop()
            else:
                with contextlib.suppress(ValueError):
                    self.ledger.remove(entry)
            sent.pop()
            conn.seq -= 1
            return False
        if self._ledger_file is not None:
            self._ledger_file.write(orjson.dumps({"conn": conn.no, "seq": entry[1],
                                                  "text": text}) + b"\n")
        return True

    # -- ticking -------------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += TICK_SECONDS
            delay = next_at - loop.time()
            if delay < 0:  # fell behind (e.g. a firehose burst): skip, do not catch up
                next_at = loop.time()
                delay = 0.0
            await asyncio.sleep(delay)
            try:
                self.tick_once(time.time_ns() // 1_000_000)
            except Exception:
                log.exception("mackinac sim: tick failed")
            if self._ledger_file is not None:
                self._ledger_file.flush()

    def subscribed(self) -> bool:
        """Native replay starts its clock once a client has subscribed to something."""
        return any(c.subs for c in self._conns.values())

    def publish(self, data: bytes | str, conn_id: str | None = None) -> int:
        """Native replay: send one recorded frame, byte for byte, to every session subscribed
        to a key the frame belongs to (see :func:`replay_keys`); returns how many got it.
        Connection-level frames (acks, auth, errors, history replies) are not replayed: this
        server answers those itself, as the venue would for the replaying client."""
        text = data.decode() if isinstance(data, bytes | bytearray) else data
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return 0
        if not isinstance(msg, dict):
            return 0
        keys = replay_keys(msg)
        if keys is None:  # broadcast (feed_stale / feed_live)
            targets = [c for c in self._conns.values() if not c.closing]
        else:
            targets = [c for c in self._conns.values()
                       if not c.closing and not c.subs.isdisjoint(keys)]
        if msg.get("type") == "print":
            ring_key = f"{msg.get('exchange', 'hl')}:{msg.get('symbol')}"
            self._replay_prints.setdefault(ring_key, deque(maxlen=HISTORY_CAP)).append(msg)
        for conn in targets:
            self._enqueue(conn, text)
        return len(targets)

    def tick_once(self, now_ms: int) -> None:
        """Advance every subscribed feed to ``now_ms`` and queue its frames to subscribers.

        Frames of a stale exchange are held back; ``spread`` frames go only to sessions of
        professional tier or above.
        """
        by_key: dict[str, list[_Conn]] = {}
        for conn in self._conns.values():
            if not conn.closing:
                for key in conn.subs:
                    by_key.setdefault(key, []).append(conn)
        for key in sorted(by_key):
            key_ex = key.split(":", 1)[0]
            if key_ex in self._stale:
                continue
            for msg in self.synth.tick(key, now_ms):
                if msg.get("exchange", key_ex) in self._stale:
                    continue
                need = GATED_TYPES.get(msg["type"])
                text = _dumps(msg)
                for conn in by_key[key]:
                    if need is None or TIERS[conn.tier][0] >= TIERS[need][0]:
                        self._enqueue(conn, text)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _close_ws(conn: _Conn, code: int, message: bytes) -> None:
    """Close with ``code``; abort the transport if the close handshake stalls."""
    ws = conn.ws
    if ws.closed:
        return
    try:
        await asyncio.wait_for(ws.close(code=code, message=message), 0.5)
    except (TimeoutError, ConnectionError, RuntimeError):
        transport = conn.request.transport
        if transport is not None:
            transport.abort()


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


_LENDING = frozenset({"aave", "compound", "morpho"})
_CONTROL = frozenset({"subscribed", "authed", "error", "snapshot", "server_closing"})


def replay_keys(msg: dict[str, Any]) -> set[str] | None:
    """The subscription keys a recorded frame was delivered under (None: to everyone).

    The recording does not say which of a connection's keys a frame answered, so this is the
    venue's documented key grammar read backwards (https://mackinac.io/api/websocket/):
    market frames belong to ``exchange:symbol``; Pendle/Spectra yield frames to ``rates:all``
    and ``rates:<symbol|address>`` (``rates:swaps`` for prints); lending venues to
    ``<venue>:<asset>``/``<venue>:all`` and ``lending:actions``; virtual feeds to their own
    keys. Connection-level frames belong to no key."""
    kind = msg.get("type")
    if kind in ("feed_stale", "feed_live"):
        return None
    if kind in _CONTROL:
        return set()
    ex = msg.get("exchange", "hl" if kind == "print" else None)
    sym = msg.get("symbol")
    keys: set[str] = set()
    if kind in ("ammbook", "arbflag"):
        return {f"{kind}:{sym}"}
    if kind == "ammliquidity_snapshot":
        return {f"ammliquidity:{sym}"}
    if kind == "lending_action":
        return {"lending:actions", f"{ex}:all", f"{ex}:{msg.get('asset')}"}
    if ex in ("pendle", "spectra"):
        keys |= {"rates:all", f"rates:{sym}", f"rates:{msg.get('address')}"}
        if kind == "print":
            keys.add("rates:swaps")
    elif ex in _LENDING:
        keys |= {f"{ex}:all", f"{ex}:{msg.get('asset') or sym}", f"{ex}:{sym}"}
    else:
        keys.add(f"{ex}:{sym}")
    if kind == "liquidity":
        keys.add(f"ammliquidity:{sym}")
    return keys


async def serve(host: str = "127.0.0.1", port: int = 8765, **opts: Any) -> None:
    """Run a :class:`MackinacServer` until cancelled (the ``recorder sim mackinac`` CLI).

    Prints one line, ``mackinac simulator listening on ws://HOST:PORT/feed``, once bound.
    """
    server = MackinacServer(**{k: v for k, v in opts.items() if v is not None})
    bound = await server.start(host, port)
    print(f"mackinac simulator listening on ws://{host}:{bound}/feed", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
