"""Power.Trade client side: the Market Proxy WebSocket, the public Feeds WebSocket and the REST
entity summary, sans-I/O.

Market Proxy (https://api-docs-5180b.web.app/docs/web-socket-api, seed 004):
- every frame is a one-key envelope ``{"<message>": {...}}`` and **every value is a string**
  ("Any value sent as a number or a boolean will not be accepted"), so every request we build
  goes through :func:`stringify` and carries a unique ``user_tag``;
- "responses may be returned out of order": a response is matched to its request by
  ``user_tag`` (:attr:`PowerTradeAdapter.pending`), never by position;
- the server sends ``heartbeat`` every 5 s *while the client is idle*. We never send
  heartbeats ourselves: a client heartbeat would make us non-idle and stop the server's, which
  are what the transport's idle watchdog (``transport.idle_timeout``) lives on.

Feeds (https://power-trade.github.io/api-docs-source/ws_feeds.html): no session protocol, the
URL's ``type[]`` filter selects messages; prices are integers scaled by the entity's decimal
places, which the REST summary supplies. The summary is fetched first (``on_start``) and the
Feeds connection is opened when it has answered, so the first feed rows are already scaled;
an entity the summary does not know yet triggers one refetch.

The JWT (ES256, claims client/sub/iat/exp/nonce/uri; https://power-trade.github.io/
api-docs-source/rest_api.html "Generating JWT") is minted by an injected signer: the only
clock read of this module, replaced by a fixed clock in tests and by nothing offline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

import orjson

from recorder.actions import NO_ACTIONS, Action, ConnSpec, Fetch, Open, Send, Stop
from recorder.config import secret
from recorder.errors import ConfigError
from recorder.exact import dumps
from recorder.options import filled, opt, typed, within
from recorder.rows import JSONError, Row, loads, session, unhandled, with_extra
from recorder.schema import Table
from recorder.venues.base import BaseAdapter, Handler, Result, dispatch, json_object, reject
from recorder.venues.powertrade import tables as T
from recorder.venues.powertrade.tables import FIELDS, SCALED, Fld, Nested

PROXY = "proxy"
FEEDS = "feeds"
REST = "rest"
SUB_TYPES = ("snap_only", "snap_with_deltas", "snap_full_updates")
FEED_TYPES = ("top_of_book", "reference_price", "last_trade_price")
RFQ_MARKETS = frozenset({"none", "255"})  # "none" == 255 in the session API
JWT_LIFETIME_S = 30  # docs: exp must be < iat + 30 s; recommended iat = now - 5 s


# --- configuration ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    """``[venues.<name>]`` of a Power.Trade venue."""

    api_key_env: str | None = opt(None, "the NAME of an environment variable")
    api_secret_env: str | None = opt(None, "the NAME of an environment variable")
    # None ("all"): every entity of entities_and_rules_response
    symbols: tuple[str, ...] | None = opt(None, '"all" or a non-empty list of strings', filled,
                                          convert=lambda v: None if v == "all" else v)
    subscribe_types: tuple[str, ...] = opt(
        ("snap_with_deltas",), f"a non-empty list of {list(SUB_TYPES)}",
        lambda v: filled(v) and within(SUB_TYPES)(v))
    intervals: tuple[int, ...] = opt((0,), "a list of milliseconds (0..3600000)",
                                     lambda v: bool(v) and all(0 <= i <= 3_600_000 for i in v))
    market_id: str = opt("0", "a string ('0' is the firm order book)")
    rfqs: bool = opt(True, "true or false")
    account: bool = opt(True, "true or false")
    feeds_url: str | None = opt(None, "a string")
    summary_url: str | None = opt(None, "a string")
    feed_types: tuple[str, ...] = opt(FEED_TYPES, "a non-empty list of strings", filled)


class JwtSigner:
    """Mints the ES256 JWT ``authenticate.credentials_secret`` carries. ``clock`` returns
    epoch seconds; the nonce is strictly increasing (µs of the clock, bumped if needed)."""

    def __init__(self, api_key: str, pem: str, uri: str,
                 clock: Callable[[], float] = time.time) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        try:
            key = load_pem_private_key(pem.replace("\\n", "\n").encode(), password=None)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"the API secret is not a PEM private key: {e}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ConfigError("the API secret must be an EC P-256 private key (ES256)")
        self.api_key, self._key, self.uri, self.clock = api_key, key, uri, clock
        self._nonce = 0

    def token(self) -> str:
        import jwt

        now = self.clock()
        self._nonce = max(self._nonce + 1, int(now * 1_000_000))
        claims = {"client": "api", "sub": self.api_key, "iat": int(now) - 5,
                  "exp": int(now) + JWT_LIFETIME_S, "nonce": self._nonce, "uri": self.uri}
        return jwt.encode(claims, self._key, algorithm="ES256")


# --- value conversion -------------------------------------------------------------------------

_NULLS = frozenset({"", "none", "null"})


def _parsed(v: Any, parse: Callable[[str], Any]) -> Any:
    if type(v) is str:
        if v.lower() in _NULLS:
            return None
        try:
            return parse(v)
        except ValueError:
            return v  # left as sent: the lake quarantines the row as bad_value
    return v


def _int(v: Any) -> Any:
    return _parsed(v, int)


def _float(v: Any) -> Any:
    return float(v) if type(v) is int else _parsed(v, float)


_BOOLS = {"true": True, "false": False, "1": True, "0": False}


def _bool(v: Any) -> Any:
    return _BOOLS.get(v.lower(), v) if type(v) is str else v


def _str(v: Any) -> Any:
    if v is None or type(v) is str:
        return v
    return orjson.dumps(v).decode() if isinstance(v, dict | list) else str(v)


def _strs(v: Any) -> Any:
    return [_str(x) for x in v] if type(v) is list else v


def _entity(v: Any) -> Any:
    """A tradeable entity id: the int of a single entity; None for a multi-leg one
    (``117@1/336@-1``), which only its text column can hold."""
    i = _int(v)
    return i if type(i) is not str else None


_CONV: dict[str, Callable[[Any], Any]] = {"s": _str, "i": _int, "us": _int, "f": _float,
                                          "b": _bool, "sl": _strs, "e": _entity}


def convert(obj: dict[str, Any], fields: Sequence[Fld], nested: bool = False) -> None:
    """String values -> real types, in place (see ``tables`` for the kinds)."""
    for f in fields:
        w = f.wire
        if w not in obj:
            continue
        v = obj[w]
        kind = f.kind
        if isinstance(kind, Nested):
            if type(v) is list:
                for item in v:
                    if type(item) is dict:
                        _convert_item(item, kind)
            continue
        if kind == "x" or kind == "e":
            obj[f"{w}_text" if nested else f"_{w}_text"] = _str(v)
        obj[w] = _float(v) if kind == "x" else _CONV[kind](v)


def _convert_item(item: dict[str, Any], kind: Nested) -> None:
    declared = {f.wire for f in kind.fields}
    unknown = sorted(k for k in item if k not in declared)
    convert(item, kind.fields, nested=True)
    if unknown:
        # Moved into the item's own `extra` member (so not reported again at the top level).
        item["extra"] = dumps({k: item.pop(k) for k in unknown})


def stringify(obj: Any) -> Any:
    """A request body with every leaf a string, as the Market Proxy demands."""
    if isinstance(obj, dict):
        return {str(k): stringify(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [stringify(v) for v in obj]
    if isinstance(obj, bool):
        return "true" if obj else "false"
    if obj is None:
        return ""
    return obj if isinstance(obj, str) else str(obj)


def _split(text: Any) -> list[tuple[str, str | None]]:
    """``a@1/b@-1`` -> [(a, "1"), (b, "-1")]; [] when ``text`` names one thing."""
    if type(text) is not str or "@" not in text:
        return []
    out: list[tuple[str, str | None]] = []
    for part in text.split("/"):
        name, at, ratio = part.rpartition("@")
        out.append((name, ratio) if at else (part, None))
    return out


def legs(symbol: Any, entity: Any = None) -> list[dict[str, Any]] | None:
    """The legs of a multi-leg entity, from its symbol
    (``BTC-20220930-25000C@1/BTC-20220930-26000C@-1``) and its entity id (``117@1/336@-1``),
    leg by leg; None for a single entity. The ratio comes from the symbol, else the id; both
    strings stay whole in their own columns."""
    by_sym, by_id = _split(symbol), _split(_str(entity))
    if not by_sym and not by_id:
        return None
    out = []
    for i in range(max(len(by_sym), len(by_id))):
        sym, sratio = by_sym[i] if i < len(by_sym) else (None, None)
        ent, eratio = by_id[i] if i < len(by_id) else (None, None)
        leg: dict[str, Any] = {"symbol": sym, "tradeable_entity_id": ent,
                               "ratio": sratio if sratio is not None else eratio}
        convert(leg, T.LEG.fields, nested=True)
        out.append(leg)
    return out


def venue_legs(sent: list[Any]) -> list[dict[str, Any]]:
    """``legs[]{ratio, symbol, tradeable_entity_id}`` as order_accepted sends them
    (market-proxy-clients json-schema order-accepted.json), typed like parsed legs."""
    out = []
    for item in sent:
        if type(item) is dict:
            leg = dict(item)
            _convert_item(leg, T.LEG)
            out.append(leg)
        else:
            out.append({"extra": dumps(item)})
    return out


# --- the adapter ------------------------------------------------------------------------------

@dataclass
class _Entity:
    symbol: str | None
    price_dp: int | None
    qty_dp: int | None


class PowerTradeAdapter(BaseAdapter):
    def __init__(self, url: str, settings: Settings, signer: JwtSigner | None,
                 offline: bool = False) -> None:
        self.url = url
        self.offline = offline
        self._answered: set[str] = set()
        self.settings = settings
        self.signer = signer
        self.pending: dict[str, tuple[str, dict[str, Any]]] = {}  # user_tag -> (name, body)
        self.entities: dict[int, _Entity] = {}  # from the REST summary (Feeds scaling)
        self.rules: dict[str, int | None] = {}  # symbol -> id, from entities_and_rules
        self._tags = 0
        self._fetches = 0
        self._feeds_open = False
        self._feeds_connects = 0
        self._refetched: set[int] = set()
        p = self._proxy_simple
        self._proxy: dict[str, Handler] = {
            "command_response": self._command_response,
            "heartbeat": self._heartbeat,
            "entities_and_rules_response": self._entities_and_rules,
            "snapshot": self._snapshot,
            "order_added": self._book(T.ORDER_ADDED), "order_deleted": self._book(T.ORDER_DELETED),
            "order_updated": self._book(T.ORDER_UPDATED),
            "order_executed": self._book(T.ORDER_EXECUTED), "trade": self._book(T.TRADE),
            "order_accepted": self._book(T.ORDER_ACCEPTED),
            "order_rejected": p(T.ORDER_REJECTED),
            "execution": p(T.EXECUTION_T),
            # The response keys of these are not confirmed by the docs; the request names
            # and the *_response forms are both read.
            "cancel_order": p(T.CANCEL_ORDER), "cancel_order_response": p(T.CANCEL_ORDER),
            "cancel_all_orders": p(T.CANCEL_ALL_ORDERS),
            "cancel_all_orders_response": p(T.CANCEL_ALL_ORDERS),
            "refresh_interest": p(T.REFRESH_INTEREST),
            "refresh_interest_response": p(T.REFRESH_INTEREST),
            "positions_response": p(T.POSITIONS), "position_info_response": p(T.POSITIONS),
            "balances_response": p(T.BALANCES), "balances": p(T.BALANCES),
            "trade_history_response": p(T.TRADE_HISTORY),
            "new_bulk_order_response": p(T.BULK_ORDER), "bulk_order_response": p(T.BULK_ORDER),
        }
        # Feeds messages by name; each also comes as its `rte_` variant (same shape).
        self._feeds: dict[str, Handler] = {}
        for name, table in (("top_of_book", T.FEED_TOP_OF_BOOK),
                            ("reference_price", T.FEED_REFERENCE_PRICE),
                            ("last_trade_price", T.FEED_LAST_TRADE_PRICE)):
            self._feeds[name] = self._feed(table, rte=False)
            self._feeds[f"rte_{name}"] = self._feed(table, rte=True)

    # -- connections ---------------------------------------------------------------------------
    def connections(self) -> Sequence[ConnSpec]:
        return [ConnSpec(PROXY, self.url)]

    def feeds_spec(self) -> ConnSpec:
        base = self.settings.feeds_url or ""
        query = "&".join(f"type[]={quote(t)}" for t in self.settings.feed_types)
        return ConnSpec(FEEDS, base + ("&" if "?" in base else "?") + query)

    def on_start(self) -> Sequence[Action]:
        """Before any frame: the entity summary, then (on its answer) the Feeds socket."""
        if not self.settings.feeds_url:
            return NO_ACTIONS
        if not self.settings.summary_url:
            self._feeds_open = True
            return [Open(self.feeds_spec())]
        return [self._fetch_summary()]

    def _fetch_summary(self, delay: float = 0.0) -> Fetch:
        self._fetches += 1
        return Fetch(REST, self.settings.summary_url or "", f"summary-{self._fetches}",
                     delay=delay)

    def on_connected(self, conn: str) -> Sequence[Action]:
        if conn == FEEDS:
            self._feeds_connects += 1
            # A reconnect may follow a listing: refresh the decimals (URL filters resend
            # nothing else; the Feeds have no session protocol).
            if self._feeds_connects > 1 and self.settings.summary_url:
                return [self._fetch_summary()]
            return NO_ACTIONS
        if conn != PROXY:
            return NO_ACTIONS
        self.pending.clear()
        self._answered.clear()
        token = self.signer.token() if self.signer is not None else ""
        return [self._request("authenticate", {"credentials_secret": token}, paced=False,
                              secret=("credentials_secret",))]

    def on_disconnected(self, conn: str) -> None:
        if conn == PROXY:
            # Answers to requests of a dead socket never come; keep none pending.
            self.pending.clear()

    def _request(self, name: str, body: dict[str, Any], paced: bool = True,
                 secret: tuple[str, ...] = ()) -> Send:
        self._tags += 1
        tag = f"{name}-{self._tags}"
        body = stringify({**body, "user_tag": tag})
        if not self.offline:
            # Registered at once (the answer may race the journal's copy of the request);
            # on_sent confirms it from what was really sent.
            self.pending[tag] = (name, {k: ("***" if k in secret else v)
                                        for k, v in body.items()})
        return Send(PROXY, orjson.dumps({name: body}).decode(), paced=paced, secret_keys=secret)

    def on_sent(self, conn: str, data: bytes) -> None:
        """The journal's copy of a request: the pending entry offline (rebuild), where the
        requests cannot be rebuilt from a config the journal does not hold."""
        if conn != PROXY:
            return
        try:
            env = loads(data)
        except JSONError:
            return
        if type(env) is not dict or len(env) != 1:
            return
        (name, body), = env.items()
        tag = body.get("user_tag") if type(body) is dict else None
        if type(tag) is str and tag not in self._answered:
            self.pending[tag] = (name, body)

    def _after_auth(self) -> list[Action]:
        s = self.settings
        out: list[Action] = [self._request("entities_and_rules_request", {})]
        if s.rfqs:
            out.append(self._request("register_for_rfqs", {}))
        if s.symbols is not None:
            out += self._subscribe(s.symbols)
        if s.account:
            out += [self._request("positions", {}), self._request("balances", {}),
                    self._request("trade_history_request", {})]
        return out

    def _subscribe(self, symbols: Sequence[str]) -> list[Action]:
        s = self.settings
        return [self._request("subscribe", {"market_id": s.market_id, "symbol": sym,
                                            "type": typ, "interval": iv})
                for sym in symbols for typ in s.subscribe_types for iv in s.intervals]

    # -- frames --------------------------------------------------------------------------------
    def on_frame(self, conn: str, data: bytes) -> Result:
        # One-key envelope: {"<message name>": {fields}}; the name is the discriminator.
        envelope = "not a one-key JSON object envelope"
        msg = json_object(data, envelope)
        if type(msg) is not dict:
            return msg
        if len(msg) != 1:
            return reject("unexpected_shape", data, error=envelope)
        name, body = next(iter(msg.items()))
        if type(body) is not dict:
            return reject("unexpected_shape", data, msg_type=name,
                          error="envelope value is not an object")
        return dispatch(self._feeds if conn == FEEDS else self._proxy, name, data, body)

    @staticmethod
    def _row(table: Table, body: dict[str, Any]) -> Row:
        convert(body, FIELDS[table.name])
        return table, with_extra(table, body)

    def _matched(self, body: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        tag = body.get("user_tag")
        req = self.pending.pop(tag, None) if type(tag) is str else None
        if req is not None:
            self._answered.add(tag)  # type: ignore[arg-type]
        body["_request_type"] = req[0] if req else None
        return req

    def _proxy_simple(self, table: Table) -> Handler:
        with_request = "_request_type" in table.wire_keys

        def handle(body: dict[str, Any]) -> Result:
            if with_request:
                self._matched(body)
            return [self._row(table, body)], NO_ACTIONS
        return handle

    def _book(self, table: Table) -> Handler:
        with_legs = "_legs" in table.wire_keys

        def handle(body: dict[str, Any]) -> Result:
            body["_rfq"] = body.get("market_id") in RFQ_MARKETS
            if with_legs:
                sent = body.get("legs")
                if type(sent) is list:  # order_accepted on a multi-leg order says them
                    body["_legs"] = venue_legs(body.pop("legs"))
                else:
                    body["_legs"] = legs(body.get("symbol"), body.get("tradeable_entity_id"))
            return [self._row(table, body)], NO_ACTIONS
        return handle

    def _snapshot(self, body: dict[str, Any]) -> Result:
        for side in ("buy", "sell"):
            for lvl in body.get(side) or ():
                # The 2023 JSON schema names the level's order id "ordered" (a typo of
                # order_id, https://github.com/Power-Trade/market-proxy-clients
                # json-schema/.../snapshot.json); read both.
                if type(lvl) is dict and "ordered" in lvl and "order_id" not in lvl:
                    lvl["order_id"] = lvl.pop("ordered")
        return self._book(T.SNAPSHOT)(body)

    def _heartbeat(self, body: dict[str, Any]) -> Result:
        # Seed: server_utc_timestamp; the older JSON schema: timestamp. Accept both.
        if "server_utc_timestamp" in body:
            body["_field"] = "server_utc_timestamp"
        elif "timestamp" in body:
            body["server_utc_timestamp"] = body.pop("timestamp")
            body["_field"] = "timestamp"
        return [self._row(T.HEARTBEAT, body)], NO_ACTIONS

    def _command_response(self, body: dict[str, Any]) -> Result:
        req = self._matched(body)
        body["_matched"] = req is not None
        body["_request"] = orjson.dumps(req[1]).decode() if req else None
        code_raw = body.get("error_code")
        code = None if code_raw is None else _str(code_raw)
        rows: list[Row] = [self._row(T.COMMAND_RESPONSE, body)]
        actions: list[Action] = []
        ok = code == "0"
        kind = req[0] if req else None
        text = body.get("error_text")
        tag = body.get("user_tag")
        if kind == "authenticate":
            if ok:
                rows.append(session("auth_ok", reason=text))
                actions += self._after_auth()
            else:
                rows.append(session("auth_failed", code=code, reason=text))
                actions.append(Stop(PROXY, f"credentials refused: error_code {code}"))
        elif ok:
            if kind == "subscribe":
                r = req[1]  # type: ignore[index]
                rows.append(session("subscribed", channel=_channel(r)))
            elif kind == "register_for_rfqs":
                rows.append(session("subscribed", channel="rfqs"))
        else:
            rows.append(session(
                "error", code=code, reason=text,
                channel=_channel(req[1]) if kind == "subscribe" else kind,
                detail={"user_tag": tag, "request_type": kind,
                        "request": req[1] if req else None, "matched": req is not None}))
        return rows, actions

    def _entities_and_rules(self, body: dict[str, Any]) -> Result:
        req = self._matched(body)
        row = self._row(T.ENTITIES_AND_RULES, body)
        syms = [s for s in body.get("symbols") or () if type(s) is dict]
        for s in syms:
            if type(s.get("symbol")) is str:
                tid = s.get("tradeable_entity_id")
                self.rules[s["symbol"]] = tid if type(tid) is int else None
        actions: list[Action] = []
        if req is not None and self.settings.symbols is None:
            # symbols = "all": subscribe to every entity the venue lists, on every connection.
            actions = self._subscribe([s["symbol"] for s in syms
                                       if type(s.get("symbol")) is str])
        return [row], actions

    # -- Feeds ---------------------------------------------------------------------------------
    def _feed(self, table: Table, rte: bool) -> Handler:
        return lambda body: self._feed_row(table, rte, body)

    def _feed_row(self, table: Table, rte: bool, body: dict[str, Any]) -> Result:
        convert(body, FIELDS[table.name])
        body["_rte"] = rte
        ts = body.get("timestamp")
        if type(ts) is int:
            # ns in the session API; µs in the Market Proxy. Read both by magnitude.
            body["_time_ns"] = ts if ts >= 10**17 else ts * 1000
        tid = body.get("tradeable_entity_id")
        ent = self.entities.get(tid) if type(tid) is int else None
        actions: list[Action] = []
        if ent is not None:
            body["_symbol"], body["_price_dp"], body["_qty_dp"] = (ent.symbol, ent.price_dp,
                                                                   ent.qty_dp)
            for wire, is_qty in SCALED[table.name]:
                raw = body.get(wire)
                dp = ent.qty_dp if is_qty else ent.price_dp
                if type(raw) is int and dp is not None:
                    body[f"_{wire}"] = raw / 10**dp  # int / int: correctly rounded
        elif type(tid) is int and tid not in self._refetched and self.settings.summary_url:
            self._refetched.add(tid)  # a new listing: ask the summary once more
            actions.append(self._fetch_summary())
        return [(table, with_extra(table, body))], actions

    def on_response(self, conn: str, tag: str, status: int,
                    body: bytes) -> Result:
        if not tag.startswith("summary"):
            return super().on_response(conn, tag, status, body)
        rows: list[Row] = []
        actions: list[Action] = []
        items = None
        if status == 200:
            try:
                items = _summary_items(loads(body))
            except JSONError as e:
                rows.append(unhandled("malformed", body, msg_type=tag, error=str(e)))
        if items is None:
            rows.append(session("error", code=str(status), channel="summary",
                                reason=f"entity summary unavailable: HTTP {status}",
                                detail={"tag": tag, "body": body[:500].decode("utf-8",
                                                                               "replace")}))
            actions.append(self._fetch_summary(delay=10.0))
        else:
            for it in items:
                if type(it) is not dict:
                    rows.append(unhandled("unexpected_shape", orjson.dumps(it), msg_type=tag,
                                          error="summary item is not an object"))
                    continue
                # Decimal places: the session API's tradeable_entity names them
                # price_decimal_places / quantity_decimal_places (inferred for the REST
                # summary, whose field list was not retrieved); shorter forms read too.
                for long, short in (("price_decimal_places", "price_decimals"),
                                    ("quantity_decimal_places", "quantity_decimals")):
                    if long not in it and short in it:
                        it[long] = it.pop(short)
                it["_tag"] = tag
                table, row = self._row(T.ENTITY_SUMMARY, it)
                rows.append((table, row))
                tid, pdp, qdp = row.get("id"), row.get("price_decimal_places"), row.get(
                    "quantity_decimal_places")
                if type(tid) is int:
                    self.entities[tid] = _Entity(
                        row.get("symbol") if type(row.get("symbol")) is str else None,
                        pdp if type(pdp) is int else None, qdp if type(qdp) is int else None)
        if not self._feeds_open:
            self._feeds_open = True
            actions.append(Open(self.feeds_spec()))
        return rows, actions


def _channel(req: dict[str, Any] | None) -> str | None:
    if not req:
        return None
    return f"{req.get('symbol') or req.get('tradeable_entity_id')}/{req.get('type')}/" \
           f"{req.get('interval')}"


def _summary_items(doc: Any) -> list[Any] | None:
    """The entity list: a bare list, or the first list value of an object."""
    if type(doc) is list:
        return doc
    if type(doc) is dict:
        for key in ("tradeable_entities", "entities", "data", "result"):
            if type(doc.get(key)) is list:
                return doc[key]
        for v in doc.values():
            if type(v) is list:
                return v
    return None


def make_adapter(venue: str, url: str | None, options: Mapping[str, Any], *,
                 offline: bool = False, sim: Mapping[str, Any] | None = None,
                 clock: Callable[[], float] = time.time) -> PowerTradeAdapter:
    """Build the adapter. ``offline`` (rebuild, recovery) needs no settings or secrets; ``sim``
    carries the simulator's key, secret and URLs."""
    if offline:
        return PowerTradeAdapter(url or "", Settings(), None, offline=True)
    s = typed(Settings, options, f"[venues.{venue}]")
    where = f"[venues.{venue}]"
    signer: JwtSigner | None = None
    if sim is not None:
        s = replace(s, **{k: sim[k] for k in ("feeds_url", "summary_url") if sim.get(k)})
        if sim.get("api_key") and sim.get("api_secret"):
            signer = JwtSigner(sim["api_key"], sim["api_secret"], url or "", clock)
    else:
        if not s.api_key_env or not s.api_secret_env:
            raise ConfigError(f"{where}: the Market Proxy needs api_key_env and api_secret_env "
                              "(names of environment variables with the key and its PEM)")
        key = secret(s.api_key_env, f"{where}.api_key_env")
        pem = secret(s.api_secret_env, f"{where}.api_secret_env")
        signer = JwtSigner(key, pem, url or "", clock)
    return PowerTradeAdapter(url or "", s, signer)
