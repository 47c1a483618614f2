"""Local Power.Trade simulator (the venue's server side), on aiohttp.web, one loopback port:

- ``/`` Market Proxy WebSocket (https://api-docs-5180b.web.app/docs/web-socket-api): one-key
  envelopes; any non-string value is refused with a ``command_response`` error; requests need
  a ``user_tag`` (1-64 bytes), echoed on the answer; ``authenticate`` verifies the ES256 JWT
  against the key's public key (``sub`` names the key; ``exp``/``iat`` checks optional);
  answers to requests arriving within ``reorder_ms`` of each other are sent in a shuffled
  order ("responses may be returned out of order"); ``heartbeat`` every ``heartbeat`` seconds
  while the client sends nothing; ``entities_and_rules_request``, ``subscribe`` (snapshot, then
  deltas and trades / full snapshots every ``interval`` ms / snapshot only),
  ``register_for_rfqs`` (a snapshot per live RFQ book, then RFQ adds and deletes),
  ``positions``, ``balances``, ``trade_history_request``, ``new_order``, ``cancel_order``,
  ``cancel_all_orders``, ``refresh_interest``, ``new_bulk_order``; the account's activity from
  its other sessions (order lifecycle messages) goes to every authenticated session.
- ``/v1/feeds?type[]=...`` Feeds WebSocket: the chosen types, integer-scaled, no session
  protocol.
- ``/v1/market_data/tradeable_entity/all/summary`` REST: the entity list with decimal places.
- Faults: the driver's ``drop`` and ``inject``, and :meth:`PowerTradeServer.silence` (no
  data, no heartbeat), :meth:`~PowerTradeServer.fail_next` (an error_code other than "0"),
  :meth:`~PowerTradeServer.duplicate_next_rfq` (each also ``POST /_sim/<name>``).
- Sessions, the writer, the ledger, closing and the clock are the simulator driver's
  (:mod:`recorder.sim.driver`); this module is the venue's grammar.
- Native replay (``replay=True``): the same server side (auth, request grammar, answers,
  heartbeats) without the synthetic market; :meth:`PowerTradeServer.publish` routes each
  recorded frame to the sessions it belongs to (see :meth:`~PowerTradeServer.replay_targets`);
  the REST summary and the answers to account requests come from the ``recording``.

Error codes: the venue publishes no list; the simulator uses 1 not authenticated,
2 authentication failed, 10 malformed request, 11 a non-string value, 12 error parsing new
order request (the docs' example), 13 unknown symbol or order, 14 unknown request.
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
import orjson
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from recorder import journal as jr
from recorder.sim import Recording, Timer
from recorder.sim.driver import Session, Simulator, dumps, fault, loads_object
from recorder.sim.driver import serve as run_simulator
from recorder.venues.powertrade.synth import BY_ID, BY_SYMBOL, MarketSynth

log = logging.getLogger(__name__)
TICK_SECONDS = 0.05
SUB_TYPES = ("snap_only", "snap_with_deltas", "snap_full_updates")
FEED_TYPES = ("top_of_book", "reference_price", "last_trade_price")
SUMMARY_PATH = "/v1/market_data/tradeable_entity/all/summary"
# Replay: requests the server answers with the recorded answer (or its own stand-in), and
# order entry, which a replay refuses.
REPLAY_ANSWERS = {"entities_and_rules_request": "entities_and_rules_response",
                  "positions": "positions_response", "position_info": "positions_response",
                  "balances": "balances_response",
                  "trade_history_request": "trade_history_response"}
REPLAY_LISTS = {"entities_and_rules_response": "symbols", "positions_response": "positions",
                "balances_response": "balances", "trade_history_response": "executions"}
ORDER_ENTRY = frozenset({"new_order", "new_bulk_order", "cancel_order", "cancel_all_orders",
                         "refresh_interest"})
BOOK_MESSAGES = frozenset({"snapshot", "order_added", "order_deleted", "order_updated",
                           "order_executed", "trade"})
RFQ_MARKETS = frozenset({"none", "255"})  # "none" is 255 in the session API
FEEDS_CONN = "feeds"  # the recorder's connection names (adapter.PROXY / adapter.FEEDS)


@dataclass(eq=False)
class _Conn(Session):
    """A Market Proxy (kind ``proxy``) or Feeds (``feeds``) session's state."""

    key: str | None = None  # authenticated API key
    subs: dict[tuple[int, str, int], int] = field(default_factory=dict)  # (tid, type, iv) -> last
    rfqs: bool = False
    feed_types: set[str] = field(default_factory=set)
    last_client: float = 0.0
    last_heartbeat: float = 0.0
    muted_until: float = 0.0
    groups: list[list[str]] = field(default_factory=list)  # answers awaiting the shuffle
    # replay: (symbol | tradeable_entity_id field, value) -> subscription types on it
    rsubs: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    flush: Timer | None = None


class PowerTradeServer(Simulator[_Conn]):
    """Options: seed, rate (firm-book activity), rfq_rate, account_rate; api_keys (key ids; a
    P-256 key pair is made for each, :meth:`credentials`), or key_pems (key id -> the PEM of
    its P-256 private or public key: a client's own key, e.g. for a replay); heartbeat (seconds
    of client silence between heartbeats, 5 like the venue); reorder_ms (answers to requests
    closer than this are shuffled; 0 = in order); check_exp (verify the JWT's exp/iat);
    firehose (accepted, unused); and the driver's (``clock``, ``ledger_path``, ``max_queue``).

    Native replay: ``replay`` (no synthetic market; frames come through :meth:`publish`);
    ``recording`` (the journal slice replayed: the REST summary body and the answers to
    entities_and_rules_request, positions, balances and trade_history_request are served as
    recorded there, the last one recorded before its start or else the first; without it the
    simulator's entity list is served and the account answers are empty); start_grace (see
    :meth:`subscribed`)."""

    name = "powertrade"

    def __init__(self, *, seed: int = 1, rate: float = 1.0, rfq_rate: float = 1.0,
                 account_rate: float = 1.0, api_keys: Iterable[str] = ("pt_sim_key",),
                 key_pems: Mapping[str, str] | None = None,
                 heartbeat: float = 5.0, reorder_ms: float = 30.0, check_exp: bool = True,
                 firehose: int = 0, start_grace: float = 1.0, **driver: Any) -> None:
        super().__init__(**driver)
        self.start_grace = start_grace
        self._first_ready: float | None = None
        self._recorded_conns: set[str] = set()  # "proxy" / "feeds", those with frames
        # replay: recorded answers by message name, and the recorded REST summary body
        self._recorded: dict[str, dict[str, Any]] = {}
        self._summary_body: bytes | None = None
        if self.recording is not None:
            self._load_recording(self.recording)
        self.synth = MarketSynth(seed, rate=rate, rfq_rate=rfq_rate, account_rate=account_rate)
        self.rng = random.Random(seed + 1)
        self.keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        self._public: dict[str, ec.EllipticCurvePublicKey] = {}
        if key_pems:
            for k, pem in key_pems.items():
                self._add_pem(k, pem)
        else:
            self.keys = {k: ec.generate_private_key(ec.SECP256R1()) for k in api_keys}
            self._public = {k: v.public_key() for k, v in self.keys.items()}
        if not self._public:
            raise ValueError("api_keys: at least one key")
        self.heartbeat = heartbeat
        self.reorder = reorder_ms / 1000.0
        self.check_exp = check_exp
        # In a replay too: the heartbeats are the server's own (see on_tick).
        self.tick_seconds = TICK_SECONDS
        self._ticks = 0
        self._fail: dict[str, tuple[str, str]] = {}
        self._dup_rfq = False

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/", self.websocket("proxy", session=_Conn))
        router.add_get("/v1/feeds", self.websocket("feeds", session=_Conn))
        router.add_get(SUMMARY_PATH, self._handle_summary)

    @property
    def url(self) -> str:
        """The Market Proxy WebSocket."""
        return self.base_url("ws", "/")

    @property
    def feeds_url(self) -> str:
        return self.base_url("ws", "/v1/feeds")

    @property
    def summary_url(self) -> str:
        return self.base_url("http", SUMMARY_PATH)

    def banner(self) -> str:
        key, pem = self.credentials()
        return (f"powertrade simulator listening on {self.url} (Market Proxy), "
                f"{self.feeds_url} (Feeds), {self.summary_url} (REST)\napi key: {key}\n{pem}")

    def _add_pem(self, key_id: str, pem: str) -> None:
        data = pem.replace("\\n", "\n").encode()
        if b"PRIVATE KEY" in data:
            priv = serialization.load_pem_private_key(data, password=None)
            if not isinstance(priv, ec.EllipticCurvePrivateKey):
                raise ValueError(f"key_pems[{key_id!r}]: not an EC private key")
            self.keys[key_id] = priv
            self._public[key_id] = priv.public_key()
        else:
            pub = serialization.load_pem_public_key(data)
            if not isinstance(pub, ec.EllipticCurvePublicKey):
                raise ValueError(f"key_pems[{key_id!r}]: not an EC public key")
            self._public[key_id] = pub

    def credentials(self, key: str | None = None) -> tuple[str, str]:
        """(API key, PEM private key) a client signs its JWT with."""
        key = key or next(iter(self.keys))
        pem = self.keys[key].private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()).decode()
        return key, pem

    # -- faults --------------------------------------------------------------------------------
    @fault
    def silence(self, seconds: float = 10.0, kind: str = "proxy") -> None:
        """Send nothing (no data, no heartbeat) to current ``kind`` sessions for ``seconds``:
        a dead link as the client sees it. Frames not sent are not ledgered."""
        until = self.clock.monotonic() + float(seconds)
        for c in self.sessions(kind):
            c.muted_until = until

    @fault
    def fail_next(self, request: str, code: str = "13", text: str = "simulated failure") -> None:
        """Answer the next ``request`` (any session) with this error_code instead."""
        self._fail[str(request)] = (str(code), str(text))

    @fault
    def duplicate_next_rfq(self) -> None:
        """Send the next RFQ ``order_added`` twice."""
        self._dup_rfq = True

    # -- sessions ------------------------------------------------------------------------------
    async def _handle_summary(self, request: web.Request) -> web.Response:
        # Replay: the recorded body when a recording was given, else the simulator's entities.
        return self.rest(request, 200, self._summary_body or orjson.dumps(self.synth.summary()))

    def on_open(self, c: _Conn) -> None:
        c.last_client = c.last_heartbeat = self.clock.monotonic()
        if c.kind == "feeds":
            # URL filter: ?type[]=top_of_book&type[]=... (unknown types are ignored).
            # Replay keeps every requested type: a recording may hold rte_* and other feeds.
            assert c.request is not None
            c.feed_types = {t for t in c.request.query.getall("type[]", [])
                            if t in FEED_TYPES or self.replay}

    def on_text(self, c: _Conn, text: str) -> None:
        if c.kind == "feeds":
            return  # in-band subscribe/unsubscribe: format not documented; ignored
        c.last_client = self.clock.monotonic()
        try:
            self._on_request(c, text)
        except Exception:  # one bad request must not end the session
            log.exception("powertrade sim: request failed")
            self._answer(c, [self._error("10", "internal error", "")])

    def on_close(self, c: _Conn) -> None:
        if c.flush is not None:
            c.flush.cancel()

    # -- the Market Proxy protocol -------------------------------------------------------------
    @staticmethod
    def _error(code: str, text: str, tag: Any) -> dict[str, Any]:
        return {"command_response": {"error_code": code, "error_text": text,
                                     "user_tag": tag if isinstance(tag, str) else ""}}

    @staticmethod
    def _ok(tag: str, text: str = "success") -> dict[str, Any]:
        return {"command_response": {"error_code": "0", "error_text": text, "user_tag": tag}}

    def _on_request(self, c: _Conn, text: str) -> None:
        try:
            env = orjson.loads(text)
        except orjson.JSONDecodeError:
            self._answer(c, [self._error("10", "malformed message: not JSON", "")])
            return
        if type(env) is not dict or len(env) != 1 or type(next(iter(env.values()))) is not dict:
            self._answer(c, [self._error("10", "malformed message: expected one key", "")])
            return
        (name, body), = env.items()
        tag = body.get("user_tag")
        bad = _non_strings(body)
        if bad:
            # "Any value sent as a number or a boolean will not be accepted."
            self._answer(c, [self._error("11", f"value of {bad[0]} must be a string", tag)])
            return
        if name == "heartbeat":
            return  # a client heartbeat: activity only, no answer
        if not isinstance(tag, str) or not 1 <= len(tag.encode()) <= 64:
            self._answer(c, [self._error("10", "user_tag must be 1 to 64 bytes", tag)])
            return
        now = self.clock.now_us()
        if name in self._fail:
            code, msg = self._fail.pop(name)
            self._answer(c, [self._error(code, msg, tag)])
            return
        if name == "authenticate":
            ok, why = self._verify(body.get("credentials_secret", ""))
            if ok:
                c.key = why
                self._answer(c, [self._ok(tag, "authenticated")])
            else:
                self._answer(c, [self._error("2", f"authentication failed: {why}", tag)])
            return
        if c.key is None:
            self._answer(c, [self._error("1", "not authenticated", tag)])
            return
        s = self.synth
        if self.replay and name in REPLAY_ANSWERS:
            self._answer(c, [self._replay_answer(name, tag, now)])
        elif self.replay and name in ORDER_ENTRY:
            self._answer(c, [self._error("15", "order entry is not available in a replay", tag)])
        elif name == "entities_and_rules_request":
            self._answer(c, [s.entities_and_rules(now, tag)])
        elif name == "subscribe":
            self._subscribe(c, body, tag, now)
        elif name == "register_for_rfqs":
            c.rfqs = True
            # replay: the RFQ snapshots are recorded frames, routed by publish()
            self._answer(c, [self._ok(tag)] + ([] if self.replay else s.rfq_snapshots(now)))
        elif name == "deregister_for_rfqs":
            c.rfqs = False
            self._answer(c, [self._ok(tag)])
        elif name in ("positions", "position_info"):
            self._answer(c, [s.positions(now, tag)])
        elif name == "balances":
            self._answer(c, [s.balances(now, tag)])
        elif name == "trade_history_request":
            self._answer(c, [s.trade_history(now, tag)])
        elif name == "new_order":
            if not body.get("client_order_id") or body.get("side") not in ("buy", "sell"):
                self._answer(c, [self._error("12", "error parsing new order request", tag)])
            else:
                self._answer(c, [self._ok(tag), *s.new_order(body, now)])
        elif name == "new_bulk_order":
            orders = body.get("orders") if isinstance(body.get("orders"), list) else []
            results, msgs = [], []
            for o in orders:
                out = s.new_order(o, now) if isinstance(o, dict) else []
                state = "accepted" if out and "order_accepted" in out[0] else "rejected"
                results.append({"client_order_id": str(o.get("client_order_id", "")),
                                "order_state": state})
                msgs += out
            self._answer(c, [{"new_bulk_order_response": {
                "server_utc_timestamp": str(now), "user_tag": tag, "results": results}}, *msgs])
        elif name == "cancel_order":
            oid = body.get("order_id") or next(
                (k for k, v in s.own.items() if v[0] == body.get("client_order_id")), "")
            msg = s.cancel(oid, now, tag)
            self._answer(c, [msg] if msg else [self._error("13", "unknown order", tag)])
        elif name == "cancel_all_orders":
            results = []
            for oid in sorted(s.own):
                m = s.cancel(oid, now)
                if m:
                    results.append({"client_order_id": m["cancel_order"]["client_order_id"],
                                    "order_state": "cancelled"})
            self._answer(c, [{"cancel_all_orders": {
                "server_utc_timestamp": str(now), "timestamp": body.get("timestamp", str(now)),
                "reason": "" if results else "no open orders", "user_tag": tag,
                "results": results}}])
        elif name == "refresh_interest":
            self._answer(c, [{"refresh_interest": {
                "server_utc_timestamp": str(now), "order_id": body.get("order_id", ""),
                "client_order_id": body.get("client_order_id", ""), "user_tag": tag,
                "reason": ""}}])
        else:
            self._answer(c, [self._error("14", f"unknown request {name}", tag)])

    def _verify(self, token: str) -> tuple[bool, str]:
        """(True, api key) or (False, why). The docs contradict themselves on the lifetime
        (exp < iat + 30 s, yet iat = now - 5 s and exp = now + 30 s are recommended), so only
        expiry and issue time are checked, with 5 s of leeway."""
        try:
            sub = jwt.decode(token, options={"verify_signature": False}).get("sub")
            key = self._public.get(sub) if isinstance(sub, str) else None
            if key is None:
                return False, "unknown api key"
            claims = jwt.decode(token, key, algorithms=["ES256"], leeway=5,
                                options={"require": ["sub", "iat", "exp", "nonce"],
                                         "verify_exp": self.check_exp,
                                         "verify_iat": self.check_exp})
        except jwt.PyJWTError as e:
            return False, str(e)
        if claims.get("client") != "api":
            return False, "claim client must be 'api'"
        return True, str(sub)

    def _subscribe(self, c: _Conn, body: dict[str, str], tag: str, now: int) -> None:
        if self.replay:
            self._replay_subscribe(c, body, tag)
            return
        ent = BY_SYMBOL.get(body.get("symbol", ""))
        if ent is None and body.get("tradeable_entity_id", "").isdigit():
            ent = BY_ID.get(int(body["tradeable_entity_id"]))
        typ, iv = body.get("type", "snap_with_deltas"), body.get("interval", "0")
        if body.get("market_id", "0") != "0" or ent is None:
            self._answer(c, [self._error("13", "unknown symbol", tag)])
        elif typ not in SUB_TYPES or not iv.isdigit():
            self._answer(c, [self._error("10", "bad subscription type or interval", tag)])
        else:
            if typ != "snap_only":
                # snap_full_updates: a full snapshot every `interval` ms (at least 200)
                c.subs[(ent.id, typ, max(200, int(iv)))] = now
            self._answer(c, [self._ok(tag), self.synth.snapshot(ent.id, now)])

    # -- native replay -------------------------------------------------------------------------
    def _load_recording(self, recording: Recording) -> None:
        """The recorded REST summary body and request answers: per kind, the last one recorded
        before the replay's start, else the first one recorded."""
        start = recording.start

        def better(ts: int, have: int | None) -> bool:
            if have is None:
                return True
            if start is None:
                return False  # keep the first
            return ts < start and (have >= start or ts >= have)

        when: dict[str, int] = {}
        for rec in recording.records((jr.KIND_IN, jr.KIND_REST), before_start=True):
            if rec.kind == jr.KIND_REST:
                try:
                    rest = jr.decode_rest(rec.data)
                except ValueError:
                    continue
                if (rest.status == 200 and rest.tag.startswith("summary")
                        and better(rec.ts_recv, when.get("rest"))):
                    when["rest"], self._summary_body = rec.ts_recv, rest.body
                continue
            self._recorded_conns.add(FEEDS_CONN if rec.conn == FEEDS_CONN else "proxy")
            if rec.conn == FEEDS_CONN:
                continue
            env = loads_object(rec.data)
            if env is not None and len(env) == 1:
                (name, body), = env.items()
                if (name in REPLAY_LISTS and type(body) is dict
                        and better(rec.ts_recv, when.get(name))):
                    when[name], self._recorded[name] = rec.ts_recv, body

    def _replay_answer(self, request: str, tag: str, now: int) -> dict[str, Any]:
        """The recorded answer with this request's user_tag; else the simulator's entity list
        (reference data) or an empty account list (a replay has no account of its own)."""
        name = REPLAY_ANSWERS[request]
        body = self._recorded.get(name)
        if body is not None:
            return {name: {**body, "user_tag": tag}}
        if name == "entities_and_rules_response":
            return self.synth.entities_and_rules(now, tag)
        return {name: {"server_utc_timestamp": str(now), "user_tag": tag,
                       REPLAY_LISTS[name]: []}}

    def _replay_subscribe(self, c: _Conn, body: dict[str, str], tag: str) -> None:
        """The subscribe grammar without the simulator's entity list (a recording may hold
        any symbol): symbol or tradeable_entity_id, market "0", a known type, an interval."""
        typ, iv = body.get("type", "snap_with_deltas"), body.get("interval", "0")
        field_ = "symbol" if body.get("symbol") else "tradeable_entity_id"
        value = body.get(field_, "")
        if body.get("market_id", "0") != "0" or not value:
            self._answer(c, [self._error("13", "unknown symbol", tag)])
        elif typ not in SUB_TYPES or not iv.isdigit():
            self._answer(c, [self._error("10", "bad subscription type or interval", tag)])
        else:
            c.rsubs.setdefault((field_, value), []).append(typ)
            self._answer(c, [self._ok(tag)])

    def subscribed(self) -> bool:
        """Native replay starts its clock once the client has subscribed: on the Market Proxy
        (a book or the RFQs) and on the Feeds (a URL with types). Each connection is waited
        for that the recording has frames of (without a recording: both), but for at most
        ``start_grace`` seconds after the first, so a client of only one still starts it."""
        live = self.sessions()
        ready = {"proxy": any(c.kind == "proxy" and (c.rsubs or c.rfqs) for c in live),
                 FEEDS_CONN: any(c.kind == "feeds" and c.feed_types for c in live)}
        if not any(ready.values()):
            return False
        if all(ready[k] for k in self._recorded_conns or ready):
            return True
        now = self.clock.monotonic()
        if self._first_ready is None:
            self._first_ready = now
        return now - self._first_ready >= self.start_grace

    def publish(self, data: bytes | str, conn_id: str | None = None) -> int:
        """Native replay: send one recorded frame, byte for byte, to every session it belongs
        to (:meth:`replay_targets`); returns how many got it."""
        text = data.decode() if isinstance(data, bytes | bytearray) else data
        env = loads_object(text)
        if env is None or len(env) != 1:
            return 0
        (name, body), = env.items()
        if type(body) is not dict:
            return 0
        targets = self.replay_targets(name, body, conn_id)
        for c in targets:
            self.send(c, text)
        return len(targets)

    def replay_targets(self, name: str, body: dict[str, Any], conn_id: str | None) -> list[_Conn]:
        """The sessions a recorded frame ``{name: body}`` from the recorder's connection
        ``conn_id`` belongs to.

        - ``feeds``: Feeds sessions whose URL's ``type[]`` names the message
          (https://power-trade.github.io/api-docs-source/ws_feeds.html).
        - Market Proxy (https://api-docs-5180b.web.app/docs/web-socket-api): not replayed are
          ``command_response``, ``heartbeat`` and every message carrying ``user_tag`` (answers
          to the recorder's own requests and the server's own heartbeat: this server sends
          its own to the replaying client). Book messages of market "none"/"255" (RFQs) go to
          sessions registered for RFQs; other book messages go by entity (``symbol`` or
          ``tradeable_entity_id``, as subscribed). Anything else without a ``user_tag``
          (order lifecycle of the account's other sessions) goes to every authenticated
          session.

        What the recording cannot tell: book messages carry no subscription id, type or
        interval, so which ``subscribe`` a firm ``snapshot`` answered (the initial snapshot
        of which type, or a ``snap_full_updates`` refresh of which interval) is unknown. The
        reading chosen: a firm snapshot goes to every session subscribed to its entity with
        any type (a ``snap_only`` subscription takes one and is then done); deltas
        (order_added/deleted/updated/executed) and trades only to ``snap_with_deltas``
        subscriptions; the interval is not applied (snapshots come at the recorded cadence).
        """
        live = self.sessions()
        if conn_id == FEEDS_CONN:
            return [c for c in live if c.kind == "feeds" and name in c.feed_types]
        proxies = [c for c in live if c.kind == "proxy" and c.key is not None]
        if name in ("command_response", "heartbeat") or "user_tag" in body:
            return []
        if name not in BOOK_MESSAGES:
            return proxies
        if body.get("market_id") in RFQ_MARKETS:
            return [c for c in proxies if c.rfqs]
        keys = [(f, body[f]) for f in ("symbol", "tradeable_entity_id")
                if isinstance(body.get(f), str)]
        out = []
        for c in proxies:
            types = [t for k in keys for t in c.rsubs.get(k, ())]
            if name != "snapshot":
                if "snap_with_deltas" in types:
                    out.append(c)
                continue
            if types:
                out.append(c)
                for k in keys:  # a snap_only subscription is answered once
                    subs = c.rsubs.get(k)
                    if subs and "snap_only" in subs:
                        subs.remove("snap_only")
                        if not subs:
                            del c.rsubs[k]
        return out

    # -- sending -------------------------------------------------------------------------------
    def _answer(self, c: _Conn, msgs: list[dict[str, Any]]) -> None:
        """Queue a request's answer group; groups closer than reorder_ms are shuffled."""
        group = [dumps(m) for m in msgs]
        if self.reorder <= 0:
            for t in group:
                self.send(c, t)
            return
        c.groups.append(group)
        if c.flush is None:
            c.flush = self.later(self.reorder, lambda: self._flush(c))

    def _flush(self, c: _Conn) -> None:
        groups, c.groups, c.flush = c.groups, [], None
        self.rng.shuffle(groups)
        for g in groups:
            for t in g:
                self.send(c, t)

    # -- ticking -------------------------------------------------------------------------------
    def on_tick(self, now_ms: int) -> None:
        now_us, mono = self.clock.now_us(), self.clock.monotonic()
        self._ticks += 1
        s = self.synth
        if self.replay:  # no synthetic market: heartbeats only
            self._heartbeats(now_us, mono)
            return
        book = s.step(now_us)
        rfq = s.rfq_step(now_us)
        if rfq and self._dup_rfq and "order_added" in rfq[0]:
            self._dup_rfq = False
            rfq = [rfq[0], *rfq]
        acct = s.account_step(now_us)
        feeds_cache: dict[frozenset[str], list[str]] = {}
        for c in self.sessions():
            if mono < c.muted_until:
                continue
            out: list[dict[str, Any]] = []
            if c.kind == "feeds":
                k = frozenset(c.feed_types)
                if k not in feeds_cache:
                    feeds_cache[k] = [orjson.dumps(m).decode()
                                      for m in s.feeds(set(k), now_us, self._ticks)]
                for t in feeds_cache[k]:
                    self.send(c, t)
                continue
            if c.key is None:
                continue
            for (tid, typ, iv), last in list(c.subs.items()):
                if typ == "snap_with_deltas":
                    out += book.get(tid, [])
                elif now_us - last >= iv * 1000:  # snap_full_updates
                    c.subs[(tid, typ, iv)] = now_us
                    out.append(s.snapshot(tid, now_us))
            if c.rfqs:
                out += rfq
            out += acct
            if out:
                for m in out:
                    self.send(c, orjson.dumps(m).decode())
        self._heartbeats(now_us, mono)

    def _heartbeats(self, now_us: int, mono: float) -> None:
        """A heartbeat every ``heartbeat`` s to each authenticated Market Proxy session while
        its client is idle (sends nothing). In a replay too: the heartbeat is the server's
        own, never a recorded one."""
        for c in self.sessions():
            if mono < c.muted_until or c.kind != "proxy" or c.key is None:
                continue
            if (mono - c.last_client >= self.heartbeat
                    and mono - c.last_heartbeat >= self.heartbeat):
                c.last_heartbeat = mono
                self.send(c, orjson.dumps(
                    {"heartbeat": {"server_utc_timestamp": str(now_us)}}).decode())




def _non_strings(obj: Any, path: str = "") -> list[str]:
    """Paths of values that are not strings (objects and lists are walked)."""
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in _non_strings(v, f"{path}.{k}" if path else k)]
    if isinstance(obj, list):
        return [p for i, v in enumerate(obj) for p in _non_strings(v, f"{path}[{i}]")]
    return [] if isinstance(obj, str) else [path or "<root>"]


#: ``recorder sim powertrade``: a :class:`PowerTradeServer` until cancelled; it prints the
#: URLs, the API key and the PEM secret a client signs its JWT with.
serve = functools.partial(run_simulator, PowerTradeServer)
