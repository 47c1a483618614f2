"""Local Mackinac WebSocket simulator (the server side of the venue): its grammar on the
simulator driver (:mod:`recorder.sim`), which owns sockets, the per-session writer, the
ledger, closing, the ``/_sim/*`` faults and the clock.

It speaks the documented protocol over real loopback sockets
(https://mackinac.io/api/websocket/, https://mackinac.io/api/messages/):

- WS on ``/feed`` (current) and ``/ws`` (older docs); UTF-8 JSON text frames only, no
  compression, no subprotocol.
- Client actions ``auth``, ``subscribe``, ``unsubscribe``, ``history``; replies ``authed``,
  ``subscribed`` (unless ``ack=False``, the documented no-ack mode), ``snapshot``,
  ``ammliquidity_snapshot`` and ``error`` frames with the documented codes.
- Data frames come from :class:`~recorder.venues.mackinac.synth.MarketSynth`, driven by one
  global tick every 50 ms, fanned out to every session subscribed to the key.
- Faults: the driver's ``drop`` and ``inject``, and :meth:`MackinacServer.server_closing`,
  :meth:`~MackinacServer.stale`, :meth:`~MackinacServer.rate_limit` (each also
  ``POST /_sim/<name>``).
"""

from __future__ import annotations

import functools
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from recorder.sim.driver import Burst, Session, Simulator, dumps, fault, loads_object
from recorder.sim.driver import serve as run_simulator
from recorder.venues.mackinac.synth import GATED_TYPES, HISTORY_CAP, MarketSynth

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


@dataclass(eq=False)
class _Conn(Session):
    """One Mackinac session's state."""

    tier: str = "none"
    subs: set[str] = field(default_factory=set)
    sub_times: deque[float] = field(default_factory=deque)
    firehose_sent: bool = False


class MackinacServer(Simulator[_Conn]):
    """The Mackinac simulator: an aiohttp app on one loopback port.

    Options (and the driver's: ``clock``, ``ledger_path``, ``max_queue``, ``replay``):
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
      clob_levels, legacy_hl_every: passed to :class:`MarketSynth`.
      heartbeat: server-initiated ping interval in seconds (None: only answer pings).

    Mackinac documents no server-side flow control; ``max_queue`` only bounds memory.
    """

    name = "mackinac"

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
        clob_levels: int = 20,
        legacy_hl_every: int = 0,
        heartbeat: float | None = None,
        **driver: Any,
    ) -> None:
        super().__init__(**driver)
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
        self.heartbeat = heartbeat
        # Native replay: no synthetic market; recorded frames arrive through publish().
        self.tick_seconds = None if self.replay else TICK_SECONDS
        self._replay_prints: dict[str, deque[dict[str, Any]]] = {}
        self._stale: set[str] = set()
        self._forced_retry: int | None = None
        self._firehose_frames = self.synth.firehose(firehose, end_ms=self.clock.now_ms()) \
            if firehose > 0 else []

    def routes(self, router: web.UrlDispatcher) -> None:
        ws = self.websocket(session=_Conn, heartbeat=self.heartbeat, max_msg_size=1 << 20)
        router.add_get("/feed", ws)
        router.add_get("/ws", ws)

    @property
    def url(self) -> str:
        """``ws://HOST:PORT/feed`` of the running server (wildcard hosts become 127.0.0.1)."""
        return self.base_url("ws", "/feed")

    # -- faults --------------------------------------------------------------------------
    @fault
    def server_closing(self, reconnect_in_ms: int = 1000) -> None:
        """Broadcast ``{"type":"server_closing","reconnectIn":N}``; N ms later close those
        sessions (1012) after their queued frames. New connections keep being accepted."""
        conns = self.sessions()
        text = dumps({"type": "server_closing", "reconnectIn": int(reconnect_in_ms)})
        for conn in conns:
            self.send(conn, text)

        def close() -> None:
            for conn in conns:
                self.close(conn, SERVER_CLOSING_CLOSE, b"server restarting")

        self.later(reconnect_in_ms / 1000, close)

    @fault
    def stale(self, exchange: str, stale: bool = True, stale_sec: float = 67.4) -> None:
        """Broadcast ``feed_stale`` (and pause that exchange's frames) or ``feed_live``."""
        if stale:
            self._stale.add(exchange)
            frame: dict[str, Any] = {"type": "feed_stale", "exchange": exchange,
                                     "staleSec": float(stale_sec)}
        else:
            self._stale.discard(exchange)
            frame = {"type": "feed_live", "exchange": exchange}
        for conn in self.sessions():
            self.send_json(conn, frame)

    @fault
    def rate_limit(self, retry_after: int = 2) -> None:
        """Make the next subscribe action (any session) fail with ``rate_limited``."""
        self._forced_retry = int(retry_after)

    # -- the grammar ---------------------------------------------------------------------
    def on_binary(self, conn: _Conn, data: bytes) -> None:
        self._error(conn, "internal_error", "Binary frames are not supported.")

    def on_text(self, conn: _Conn, data: str) -> None:
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
            self.close(conn, AUTH_FAILED_CLOSE, b"auth_failed")
            return
        conn.tier = tier
        self.send_json(conn, {"type": "authed", "tier": tier,
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
        now = self.clock.monotonic()
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
            self.send_json(conn, {"type": "subscribed", "exchange": ex, "symbol": sym})
        if fresh and ex == "ammliquidity" and not self.replay:
            # One LP-event backfill on subscribe, then individual liquidity frames.
            self.send_json(conn, self.synth.ammliquidity_snapshot(
                key, now_ms=self.clock.now_ms()))
        if self.firehose > 0 and not conn.firehose_sent:
            conn.firehose_sent = True
            self.send(conn, Burst(self._firehose_frames, repeat=self.firehose_repeat))

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
        self.send_json(conn, reply)

    def _error(self, conn: _Conn, code: str, message: str, **extra: Any) -> None:
        frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
        frame.update({k: v for k, v in extra.items() if v is not None})
        self.send_json(conn, frame)

    # -- native replay and ticking ------------------------------------------------------
    def subscribed(self) -> bool:
        """Native replay starts its clock once a client has subscribed to something."""
        return any(c.subs for c in self.sessions())

    def publish(self, data: bytes | str, conn_id: str | None = None) -> int:
        """Native replay: send one recorded frame, byte for byte, to every session subscribed
        to a key the frame belongs to (see :func:`replay_keys`); returns how many got it.
        Connection-level frames (acks, auth, errors, history replies) are not replayed: this
        server answers those itself, as the venue would for the replaying client."""
        text = data.decode() if isinstance(data, bytes | bytearray) else data
        msg = loads_object(text)
        if msg is None:
            return 0
        keys = replay_keys(msg)
        if keys is None:  # broadcast (feed_stale / feed_live)
            targets = self.sessions()
        else:
            targets = [c for c in self.sessions() if not c.subs.isdisjoint(keys)]
        if msg.get("type") == "print":
            ring_key = f"{msg.get('exchange', 'hl')}:{msg.get('symbol')}"
            self._replay_prints.setdefault(ring_key, deque(maxlen=HISTORY_CAP)).append(msg)
        for conn in targets:
            self.send(conn, text)
        return len(targets)

    def on_tick(self, now_ms: int) -> None:
        """Advance every subscribed feed to ``now_ms`` and queue its frames to subscribers.

        Frames of a stale exchange are held back; ``spread`` frames go only to sessions of
        professional tier or above.
        """
        by_key: dict[str, list[_Conn]] = {}
        for conn in self.sessions():
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
                text = dumps(msg)
                for conn in by_key[key]:
                    if need is None or TIERS[conn.tier][0] >= TIERS[need][0]:
                        self.send(conn, text)


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


#: ``recorder sim mackinac``: a :class:`MackinacServer` until cancelled; it prints one line,
#: ``mackinac simulator listening on ws://HOST:PORT/feed``, once bound.
serve = functools.partial(run_simulator, MackinacServer)
