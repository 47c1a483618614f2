"""Diffusal client side, sans-I/O: frames and REST bodies in, typed rows and actions out.

Protocol: https://docs.diffusal.xyz/docs/api/websocket (seed 002),
https://docs.diffusal.xyz/docs/api/private-websocket, https://docs.diffusal.xyz/reference/ws;
notes in ``shared/venues/002-diffusal.md``.

Connections (``conn_id``):
- ``public-0``, ``public-1``, ...: ``/ws/public``. The venue caps a connection at 50
  subscriptions (excess is refused with 4029), so channels are spread over as many sockets as
  needed; ``public-0`` also triggers the REST hydration the first time it connects.
- ``private``: ``/ws/private``, ``AUTH`` after connect (either documented frame shape), then
  the account channels; ``rfq.quotes.<requestId>`` is added for each of the account's RFQs.
- ``rfq-stream``: ``/ws/rfq/stream`` (no auth). ``rfq-mm``: ``/ws/rfq/mm`` (bearer at the
  handshake; an MMM-enabled account). ``rfq-quotes-<requestId>``: ``/ws/rfq/quotes`` for one
  of the account's requests (bearer at the handshake), stopped once the auction resolves.
- ``rest``: the journal name of every REST request (hydration, depth resyncs).

Socket allocation (:mod:`.sockets`) and book sequence sync (:mod:`.books`) are modules of their
own; this one turns their answers into actions and rows.

Bearer tokens come from the SIWE flow (``/api/auth/siwe/nonce`` + ``verify``), which needs a
wallet signature; the recorder does not sign, it reads a token obtained out of band from the
environment variable named by ``token_env``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

import orjson

from recorder.actions import NO_ACTIONS, Action, ConnSpec, Fetch, Open, Send, Stop
from recorder.config import secret
from recorder.exact import epoch_ns, shaper
from recorder.options import opt, typed
from recorder.rows import JSONError, Row, loads, session, unhandled
from recorder.schema import Table
from recorder.venues.base import (
    SHAPE_ERRORS,
    BaseAdapter,
    Handler,
    Result,
    dispatch,
    guard,
    json_object,
    reject,
)
from recorder.venues.diffusal import tables as T
from recorder.venues.diffusal.books import Books
from recorder.venues.diffusal.sockets import MAX_SUBS, PublicSockets

PUBLIC = "public"
PRIVATE = "private"
RFQ_STREAM = "rfq-stream"
RFQ_MM = "rfq-mm"
RFQ_QUOTES = "rfq-quotes-"
REST = "rest"
RATE_LIMITED = 4029
PRIVATE_CHANNELS = ("position", "order", "fill", "collateral", "rfq", "liquidation", "portfolio")
GLOBAL_CHANNELS = ("global@markets", "global@rfq")
WAD = 10**18
_INT_RE = re.compile(r"^-?\d+$")
# WAD strikes go through Decimal: an unreadable one fails the frame's shape, not the adapter.
_SHAPE_ERRORS = (*SHAPE_ERRORS, InvalidOperation)
# Discovery over REST (https://docs.diffusal.xyz/docs/api/rest), by tag.
DISCOVERY = {"pairs": "/api/markets/pairs", "markets": "/api/markets",
             "contracts": "/api/markets/contracts"}

# RFQ payload types. The generated schema lists connected/heartbeat/rfq_request for
# /ws/rfq/stream and quote/auction_resolved for /ws/rfq/quotes; the prose says the stream
# and global@rfq carry auction "create/resolve" events without naming them, so the
# plausible aliases are read the same way (inferred; cheap to accept).
_RFQ_CREATED = frozenset({"rfq_request", "rfq_created", "auction_created", "created"})
_RFQ_RESOLVED = frozenset({"auction_resolved", "rfq_resolved", "resolved", "auction_ended"})



@dataclass(frozen=True)
class Settings:
    """``[venues.<name>]`` of a Diffusal venue."""

    # lower case; None: every one discovered
    underlyings: tuple[str, ...] | None = opt(
        None, 'a non-empty list like ["btc", "eth"]',
        lambda v: bool(v) and all(re.fullmatch(r"[A-Za-z0-9]{1,16}", u) for u in v),
        convert=lambda v: [u.lower() if isinstance(u, str) else u for u in v]
        if isinstance(v, list) else v)
    instruments: bool = opt(True, "true or false")
    grouped: bool = opt(True, "true or false")
    max_subscriptions: int = opt(MAX_SUBS, f"1..{MAX_SUBS} (the venue's cap per connection)",
                                 lambda v: 1 <= v <= MAX_SUBS)
    token_env: str | None = opt(None, "the NAME of an environment variable holding a SIWE "
                                "bearer token", bool)
    auth_shape: Literal["params", "authorization"] = opt(
        "params", '"params" ({params:{token}}, the websocket page) or "authorization" (the '
        "private page)")
    mm: bool = opt(False, "true or false")
    rest_url: str | None = opt(None, "an http(s) URL",
                               lambda v: v.startswith(("http://", "https://")))
    keepalive: float = opt(30.0, "a duration: seconds between LIST_SUBSCRIPTIONS (>= 1)",
                           lambda v: v >= 1)

    def problems(self) -> Iterator[tuple[str, str]]:
        if self.mm and self.token_env is None:
            yield ".mm", "the /ws/rfq/mm socket needs token_env"


def _bases(url: str, rest_url: str | None) -> tuple[str, str]:
    """``wss://host[/ws/public]`` -> (``wss://host``, ``https://host``)."""
    parts = urlsplit(url)
    path = parts.path
    for suffix in ("/ws/public", "/ws/private", "/ws"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    ws = urlunsplit((parts.scheme, parts.netloc, path.rstrip("/"), "", ""))
    if rest_url:
        return ws, rest_url.rstrip("/")
    scheme = {"wss": "https", "ws": "http"}.get(parts.scheme, parts.scheme)
    return ws, urlunsplit((scheme, parts.netloc, path.rstrip("/"), "", ""))


_SHAPE = {t.name: shaper(t) for t in T.TABLES}


def _row(table: Table, row: dict[str, Any]) -> Row:
    """The row typed by its table's columns: decimal strings read as floats with their exact
    text beside them (unparsable values stay as sent, so the lake writer quarantines the row
    as bad_value instead of guessing), every undeclared key, at any depth, in ``extra``."""
    return table, _SHAPE[table.name](row)


def _wad(v: Any) -> tuple[str | None, float | None]:
    """A 1e18-scaled integer (string or JSON number) -> (exact string, float / 1e18)."""
    if v is None:
        return None, None
    if type(v) is int:
        return str(v), v / WAD
    if type(v) is str and _INT_RE.match(v):
        return v, int(v) / WAD
    if type(v) is str:
        try:
            return v, float(v)
        except ValueError:
            return v, None
    return repr(v), float(v) if isinstance(v, float) else None


def _event_ms(v: Any) -> int | None:
    """RFQ timestamps are typed only as ``number``: the unit is read from the magnitude."""
    ns = epoch_ns(v) if isinstance(v, int | float) else None
    return None if ns is None else ns // 1_000_000


def _event_ns(row: dict[str, Any]) -> int | None:
    """A private row's venue time (updatedAt, else timestamp) in ns. No example fixes the
    unit of the private channels (https://docs.diffusal.xyz/docs/api/private-websocket was
    not retrievable; the public examples mix s and ms), so it is read from the magnitude: a
    fill's timestamp in seconds is not read as ms into 1970."""
    v = row.get("updatedAt")
    return epoch_ns(row.get("timestamp") if v is None else v)


def _human_strike(strike: int) -> str:
    """82000e18 -> '82000'; 82000.5e18 -> '82000.5' (the symbol format's STRIKE)."""
    return format((Decimal(strike) / WAD).normalize(), "f")


# The list a REST body wraps its items in, per request kind (first one present wins).
_REST_LISTS = {"pairs": ("pairs", "data", "items"),
               "markets": ("markets", "contracts", "data", "items"),
               "contracts": ("markets", "contracts", "data", "items"),
               "active-auctions": ("auctions", "data", "items"),
               "quotes": ("quotes", "data", "items"), "orderbook": ("data",)}


def _wrapper(kind: str, payload: Any) -> dict[str, Any]:
    """Keys of a REST body beside the items it wraps (pagination, metadata), under a
    ``body.`` prefix for the response row's ``extra``: the items have rows of their own."""
    if not isinstance(payload, dict):
        return {}
    inner = next((n for n in _REST_LISTS.get(kind, ()) if n in payload
                  and isinstance(payload[n], list | dict)), None)
    if inner is None:
        return {}
    return {f"body.{k}": v for k, v in payload.items() if k != inner}


def _items(data: Any, *names: str) -> list[Any] | None:
    """The list inside a snapshot-ish payload: the payload itself, or a named list field."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for n in names:
            if isinstance(data.get(n), list):
                return data[n]
    return None


def _rest_items(payload: Any, kind: str, what: str) -> list[Any]:
    """The items of a REST body (:data:`_REST_LISTS`); a body without them fails its shape."""
    items = _items(payload, *_REST_LISTS[kind])
    if items is None:
        raise TypeError(f"no {what} list")
    return items


class DiffusalAdapter(BaseAdapter):
    def __init__(self, url: str, settings: Settings, token: str | None = None, *,
                 offline: bool = False) -> None:
        self.settings = settings
        self.token = token
        self.offline = offline
        self.ws_base, self.rest_base = _bases(url, settings.rest_url)
        self._id = 0
        self.pending: dict[int, tuple[str, str, Any]] = {}  # id -> (conn, method, params)
        self._keepalive: dict[str, int] = {}  # conn -> id of its armed LIST_SUBSCRIPTIONS
        self._auth_id: int | None = None
        self.authed = False
        self.sockets = PublicSockets(PUBLIC, settings.max_subscriptions)
        self.pairs: dict[str, dict[str, Any]] = {}  # pairId -> pair
        self.symbols: dict[str, str] = {}  # instrument symbol -> underlying (lower)
        self.books = Books()
        self.account_rfqs: dict[str, None] = {}
        self.quote_conns: set[str] = set()
        self.settled: set[str] = set()
        self._hydrated = False
        self._retry: dict[str, float] = {}  # conn -> delay of its next 4029 retry
        self._assign(list(GLOBAL_CHANNELS))
        # RFQ socket messages (and global@rfq payloads) by `type`.
        self._handlers: dict[str, Callable[[str, dict[str, Any], str | None], Result]] = {
            "connected": self._rfq_simple(T.RFQ_CONNECTED),
            "heartbeat": self._rfq_simple(T.RFQ_HEARTBEAT),
            "auth_success": self._auth_success,
            "snapshot": self._rfq_snapshot,
            "quote": self._rfq_quote,
            "quote_rejected": self._rfq_rejected,
            "trade_filled": self._rfq_filled,
            **dict.fromkeys(_RFQ_CREATED, self._rfq_request),
            **dict.fromkeys(_RFQ_RESOLVED, self._rfq_resolved),
        }
        # Multiplexed streams by their name; the rest by the name's suffix (<key>@depth).
        self._streams: dict[str, Handler] = {
            **dict.fromkeys(T.PRIVATE_TABLES, self._private),
            "global@markets": self._markets, "global@rfq": self._global_rfq}
        self._suffixes: dict[str, Callable[[dict[str, Any], str], Result]] = {
            "depth": lambda data, stream: self._depth(data, stream, "ws"),
            "trade": self._stream_row(T.TRADE), "ticker": self._stream_row(T.TICKER),
            "index": self._index}
        # REST bodies by the request's tag (`kind` or `kind:arg`): rows, actions, item count.
        self._rest: dict[str, Callable[[str, Any], tuple[list[Row], Sequence[Action], int]]] = {
            "pairs": self._rest_pairs, "orderbook": self._rest_orderbook,
            "markets": lambda _, body: self._rest_instruments("markets", body),
            "contracts": lambda _, body: self._rest_instruments("contracts", body),
            "active-auctions": self._rest_auctions, "quotes": self._rest_quotes}

    # -- connections ---------------------------------------------------------------------------
    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def connections(self) -> Sequence[ConnSpec]:
        out = [ConnSpec(self.sockets.conns[0].name, f"{self.ws_base}/ws/public"),
               ConnSpec(RFQ_STREAM, f"{self.ws_base}/ws/rfq/stream")]
        if self.token:
            out.append(ConnSpec(PRIVATE, f"{self.ws_base}/ws/private"))
            if self.settings.mm:
                # MM auth is at the handshake: SIWE bearer (or an API key with trade scope,
                # whose HMAC signing string is not documented publicly).
                out.append(ConnSpec(RFQ_MM, f"{self.ws_base}/ws/rfq/mm", self._auth_headers()))
        return out

    def on_connected(self, conn: str) -> Sequence[Action]:
        out: list[Action] = []
        pc = self.sockets.get(conn)
        if pc is not None:
            pc.open = True
            if pc.channels:
                out.append(self._request(conn, "SUBSCRIBE", list(pc.channels)))
            out.append(self._arm_keepalive(conn))
            if conn == self.sockets.conns[0].name and not self._hydrated:
                self._hydrated = True
                out += self._hydrate()
        elif conn == PRIVATE:
            self.authed = False
            out.append(self._auth(conn))
        return out

    def on_disconnected(self, conn: str) -> None:
        pc = self.sockets.get(conn)
        if pc is not None:
            pc.open = False
        if conn == PRIVATE:
            self.authed = False
        self._keepalive.pop(conn, None)
        for i in [i for i, p in self.pending.items() if p[0] == conn]:
            del self.pending[i]

    def on_sent(self, conn: str, data: bytes) -> None:
        # Learn what really went out (ids are ours), so replies name their request even when
        # the lake is rebuilt from the journal by an adapter with other settings.
        try:
            msg = loads(data)
        except JSONError:
            return
        if type(msg) is dict and isinstance(msg.get("method"), str) and isinstance(
                msg.get("id"), int):
            self.pending[msg["id"]] = (conn, msg["method"], msg.get("params"))
            if msg["method"] == "AUTH":
                self._auth_id = msg["id"]

    # -- requests ------------------------------------------------------------------------------
    def _next_id(self) -> int:
        self._id += 1
        return self._id

    def _request(self, conn: str, method: str, params: list[str] | None = None,
                 delay: float = 0.0) -> Send:
        msg: dict[str, Any] = {"method": method}
        if params is not None:
            msg["params"] = params
        msg["id"] = self._next_id()
        return Send(conn, orjson.dumps(msg).decode(), delay=delay)

    def _arm_keepalive(self, conn: str) -> Send:
        # Application keep-alive recommended by the docs: LIST_SUBSCRIPTIONS about every 30 s;
        # its reply also lets us resubscribe anything the server lost.
        send = self._request(conn, "LIST_SUBSCRIPTIONS", delay=self.settings.keepalive)
        self._keepalive[conn] = orjson.loads(send.text)["id"]
        return send

    def _auth(self, conn: str) -> Send:
        # Two documented shapes: {"method":"AUTH","params":{"token":...},"id":1} (websocket
        # page) and {"method":"AUTH","authorization":"Bearer ...","id":1} (private page).
        i = self._next_id()
        self._auth_id = i
        if self.settings.auth_shape == "authorization":
            msg: dict[str, Any] = {"method": "AUTH", "authorization": f"Bearer {self.token}",
                                   "id": i}
            keys: tuple[str, ...] = ("authorization",)
        else:
            msg = {"method": "AUTH", "params": {"token": self.token}, "id": i}
            keys = ("params",)
        return Send(conn, orjson.dumps(msg).decode(), paced=False, secret_keys=keys)

    def _fetch(self, path: str, tag: str, auth: bool = False, delay: float = 0.0) -> Fetch:
        headers = self._auth_headers() if auth else {}
        return Fetch(REST, f"{self.rest_base}{path}", tag, headers=headers, delay=delay,
                     secret_headers=("Authorization",) if auth else ())

    def _hydrate(self) -> list[Action]:
        """REST before streaming: pairs and instruments (to know what to subscribe) and the
        active auctions; the orderbook snapshots follow once the instruments are known."""
        return [*(self._fetch(path, tag) for tag, path in DISCOVERY.items()),
                self._fetch("/api/rfq/active-auctions", "active-auctions")]

    # -- subscription allocation ---------------------------------------------------------------
    def _assign(self, channels: Sequence[str]) -> list[Action]:
        """Give each new channel a public connection with room (opening one when all are
        full) and subscribe it there if that connection is up."""
        opened, fresh = self.sockets.assign(channels)
        out: list[Action] = [Open(ConnSpec(name, f"{self.ws_base}/ws/public"))
                             for name in opened]
        for name, chs in fresh.items():
            pc = self.sockets.get(name)
            if pc is not None and pc.open:
                out.append(self._request(name, "SUBSCRIBE", chs))
        return out

    def _unassign(self, channels: Sequence[str], why: str | None = None) -> list[Action]:
        return [self._request(name, "UNSUBSCRIBE", chs)
                for name, chs in self.sockets.unassign(channels, why).items()]

    def _instrument_channels(self, symbol: str) -> list[str]:
        key = symbol.lower()
        return [f"{key}@depth", f"{key}@ticker", f"{key}@trade"]

    def _add_symbols(self, found: Mapping[str, str]) -> list[Action]:
        """New instruments (symbol -> underlying): their channels, the grouped ones of new
        underlyings, and a REST orderbook snapshot each (hydration before streaming)."""
        out: list[Action] = []
        want: list[str] = []
        only = self.settings.underlyings
        for sym, und in found.items():
            if sym in self.symbols or sym in self.settled or (only and und not in only):
                continue
            new_und = und not in self.symbols.values()
            self.symbols[sym] = und
            if new_und and self.settings.grouped:
                want += self._instrument_channels(und)
            if self.settings.instruments:
                want += self._instrument_channels(sym)
            if self.settings.instruments or self.settings.grouped:
                # Staggered 100 ms apart: discovery can list hundreds of instruments, and
                # unauthenticated REST data is limited to 600 requests/min per IP.
                out.append(self._orderbook(sym, delay=round(0.1 * len(out), 3)))
        return self._assign(want) + out

    # -- frames --------------------------------------------------------------------------------
    def on_frame(self, conn: str, data: bytes) -> Result:
        msg = json_object(data)
        if type(msg) is not dict:
            return msg
        return guard(data, _kind(msg), self._route, conn, msg, data, errors=_SHAPE_ERRORS)

    def _route(self, conn: str, msg: dict[str, Any], data: bytes) -> Result:
        # The frame's shape says what it is: a stream envelope, a reply to one of our
        # requests (error or result), or an RFQ socket message with its `type`.
        if "stream" in msg and "data" in msg:
            return self._envelope(conn, msg, data)
        if "error" in msg:
            return self._error(conn, msg)
        if "result" in msg or msg.get("status") == "authenticated":
            return self._reply(conn, msg)
        return dispatch(self._handlers, msg.get("type"), data, conn, msg, None,
                        errors=_SHAPE_ERRORS)

    def _envelope(self, conn: str, msg: dict[str, Any], raw: bytes) -> Result:
        stream, data = msg["stream"], msg["data"]
        if type(stream) is not str:
            return reject("unexpected_shape", raw, error="stream is not a string")
        handler = self._streams.get(stream)
        if handler is None and stream.startswith("rfq.quotes."):
            handler = self._private_quotes
        if handler is not None:
            return handler(conn, stream, data, raw)
        if type(data) is not dict:
            return reject("unexpected_shape", raw, msg_type=stream,
                          error="data is not an object")
        by_suffix = self._suffixes.get(stream.rpartition("@")[2])
        if by_suffix is None:
            return reject("unknown_type", raw, msg_type=stream)
        return by_suffix(data, stream)

    def _global_rfq(self, conn: str, stream: str, data: Any, raw: bytes) -> Result:
        kind = data.get("type")
        handler = self._handlers.get(kind) if type(kind) is str else None
        if handler is None:
            return reject("unknown_type", raw, msg_type=f"global@rfq:{kind}")
        return handler(conn, data, stream)

    # -- market data ---------------------------------------------------------------------------
    def _depth(self, data: dict[str, Any], stream: str | None, source: str) -> Result:
        row = dict(data)
        if source == "rest":
            row.setdefault("type", "snapshot")
        row["_stream"] = stream
        row["_source"] = source
        rows: list[Row] = [_row(T.DEPTH, row)]
        sym, seq = data.get("symbol"), data.get("sequence")
        if type(sym) is not str or isinstance(seq, bool) or not isinstance(seq, int):
            return rows, NO_ACTIONS
        more, resync = self.books.update(sym, seq, row.get("type"), source, stream)
        # Resynchronise from the REST snapshot (its sequence reconciles with the stream's).
        return rows + more, [self._orderbook(sym)] if resync else []

    def _orderbook(self, sym: str, delay: float = 0.0) -> Fetch:
        return self._fetch(f"/api/markets/orderbook/{quote(sym, safe='')}", f"orderbook:{sym}",
                           delay=delay)

    @staticmethod
    def _stream_row(table: Table) -> Callable[[dict[str, Any], str], Result]:
        """A stream whose payload is one row of ``table`` (``@trade``, ``@ticker``)."""
        def handle(data: dict[str, Any], stream: str) -> Result:
            return [_row(table, {**data, "_stream": stream, "_source": "ws"})], NO_ACTIONS
        return handle

    def _index(self, data: dict[str, Any], stream: str) -> Result:
        row = dict(data)
        row["_stream"] = stream
        # The payload names no pair; the stream key does (eth-usdt@index).
        row["_pair"] = stream.rpartition("@")[0]
        return [_row(T.INDEX, row)], NO_ACTIONS

    def _markets(self, conn: str, stream: str, data: dict[str, Any], raw: bytes) -> Result:
        row = dict(data)
        row["_stream"] = stream
        row["strike"], row["_strike_f"] = _wad(data.get("strike"))
        sp = data.get("settlementPrice")
        if sp is not None:
            row["settlementPrice"], row["_settlement_price_f"] = _wad(sp)
        sym = self._series_symbol(data)
        row["_symbol"] = sym
        rows: list[Row] = [_row(T.MARKETS, row)]
        actions: list[Action] = []
        kind = data.get("type")
        if kind == "series_created":
            if sym is not None:
                und = self.pairs[data["pairId"]]["underlying"].lower()
                actions += self._add_symbols({sym: und})
            else:
                # Pair unknown or strike not representable: ask REST for the symbol.
                actions.append(self._fetch(DISCOVERY["contracts"], "contracts"))
        elif kind == "series_settled" and sym is not None:
            self.settled.add(sym)
            if sym in self.symbols:
                # A settled series trades no more: free its subscription slots.
                del self.symbols[sym]
                actions += self._unassign(self._instrument_channels(sym))
        return rows, actions

    def _series_symbol(self, data: dict[str, Any]) -> str | None:
        """UNDERLYING-STRIKE-C|P-EXPIRYUNIX from a global@markets payload, when the pair is
        known (https://docs.diffusal.xyz/docs/api/websocket "Channel Payloads")."""
        pair = self.pairs.get(data.get("pairId"))  # type: ignore[arg-type]
        strike, expiry, call = data.get("strike"), data.get("expiry"), data.get("isCall")
        if pair is None or not isinstance(expiry, int) or not isinstance(call, bool):
            return None
        if type(strike) is str and _INT_RE.match(strike):
            strike = int(strike)
        if type(strike) is not int:
            return None
        und = str(pair.get("underlying", "")).upper()
        if not und:
            return None
        return f"{und}-{_human_strike(strike)}-{'C' if call else 'P'}-{expiry}"

    # -- control replies -----------------------------------------------------------------------
    def _reply(self, conn: str, msg: dict[str, Any]) -> Result:
        rid = msg.get("id")
        req = self.pending.pop(rid, None) if isinstance(rid, int) else None
        method = req[1] if req else None
        is_auth = msg.get("status") == "authenticated" or (
            method == "AUTH" or (conn == PRIVATE and rid is not None and rid == self._auth_id))
        if is_auth:
            return self._auth_ok(conn, msg)
        row = dict(msg)
        row["result"] = orjson.dumps(msg.get("result")).decode()
        row["_method"] = method
        row["_params"] = None if req is None or req[2] is None else orjson.dumps(req[2]).decode()
        rows: list[Row] = [_row(T.REPLY, row)]
        actions: list[Action] = []
        params = req[2] if req and isinstance(req[2], list) else []
        if method == "SUBSCRIBE":
            self._retry.pop(conn, None)
            rows += [session("subscribed", channel=str(ch)) for ch in params]
        elif method == "UNSUBSCRIBE":
            rows += [session("unsubscribed", channel=str(ch)) for ch in params]
        elif method == "LIST_SUBSCRIPTIONS" and rid == self._keepalive.get(conn):
            actions.append(self._arm_keepalive(conn))
            actions += self._heal(conn, msg.get("result"))
        return rows, actions

    def _heal(self, conn: str, listed: Any) -> list[Action]:
        """Resubscribe channels the server does not list for this connection."""
        if not isinstance(listed, list):
            return []
        have = {str(c) for c in listed}
        if conn == PRIVATE:
            want = [c for c in self._private_channels() if c not in have] if self.authed else []
        else:
            pc = self.sockets.get(conn)
            if pc is None:
                return []
            # Only channels acked before: one whose SUBSCRIBE is still in flight is not lost.
            inflight = {c for p in self.pending.values() if p[0] == conn and p[1] == "SUBSCRIBE"
                        for c in (p[2] or ())}
            want = [c for c in pc.channels if c not in have and c not in inflight]
        return [self._request(conn, "SUBSCRIBE", want)] if want else []

    def _auth_ok(self, conn: str, msg: dict[str, Any]) -> Result:
        self.authed = True
        row = dict(msg)
        res = msg.get("result")
        shape = "result" if "result" in msg else "status"
        if isinstance(res, dict):
            row.setdefault("status", res.get("status"))
        row["_result"] = None if res is None else orjson.dumps(res).decode()
        row["_shape"] = shape
        row.pop("result", None)
        rows: list[Row] = [_row(T.AUTH, row),
                           session("auth_ok", reason=f"AUTH accepted ({shape} reply)")]
        actions: list[Action] = [self._request(conn, "SUBSCRIBE", self._private_channels()),
                                 self._arm_keepalive(conn)]
        return rows, actions

    def _private_channels(self) -> list[str]:
        return list(PRIVATE_CHANNELS) + [f"rfq.quotes.{r}" for r in self.account_rfqs]

    def _error(self, conn: str, msg: dict[str, Any]) -> Result:
        err = msg.get("error")
        code = err.get("code") if isinstance(err, dict) else None
        text = err.get("msg") if isinstance(err, dict) else str(err)
        rid = msg.get("id")
        req = self.pending.pop(rid, None) if isinstance(rid, int) else None
        method, params = (req[1], req[2]) if req else (None, None)
        row = {k: v for k, v in msg.items() if k != "error"}
        if isinstance(err, dict):
            extra_err = {k: v for k, v in err.items() if k not in ("code", "msg")}
            if extra_err:
                row["error_extra"] = extra_err
        row.update(_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
                   _msg=None if text is None else str(text), _method=method,
                   _params=None if params is None else orjson.dumps(params).decode())
        rows: list[Row] = [_row(T.ERROR, row)]
        actions: list[Action] = []
        chans = [str(c) for c in params] if isinstance(params, list) else []
        scode = None if code is None else str(code)
        if method == "AUTH" or (conn == PRIVATE and rid is not None and rid == self._auth_id):
            # Credentials refused: retrying cannot help. The public sockets go on recording.
            rows.append(session("auth_failed", code=scode, reason=f"/ws/private AUTH refused: "
                                f"{text}"))
            actions.append(Stop(conn, f"AUTH refused: {text}"))
        elif code == RATE_LIMITED:
            actions += self._rate_limited(conn, method, chans, str(text), rows)
        else:
            rows.append(session("error", code=scode, channel=",".join(chans) or None,
                                reason=f"{method or 'request'} refused: {text}"))
            if method == "SUBSCRIBE" and chans:
                if len(chans) == 1:
                    # A single refused channel: stop asking for it (unknown/settled series).
                    actions += self._drop(conn, chans[0], f"{scode}: {text}")
                else:
                    # Which one? Private SUBSCRIBE is atomic and public may be too: ask for
                    # each channel alone, so only the bad one is refused (and dropped).
                    actions += [self._request(conn, "SUBSCRIBE", [c]) for c in chans]
        return rows, actions

    def _drop(self, conn: str, channel: str, why: str) -> list[Action]:
        if conn == PRIVATE:
            if channel.startswith("rfq.quotes."):
                self.account_rfqs.pop(channel.removeprefix("rfq.quotes."), None)
            return []
        self._unassign([channel], why)
        return []

    def _rate_limited(self, conn: str, method: str | None, chans: list[str], text: str,
                      rows: list[Row]) -> list[Action]:
        """4029: the messages/min cap (the connection stays open) or the 50-subscriptions cap
        (existing subscriptions unaffected). Both use the same code; the text tells them apart
        when it mentions subscriptions."""
        delay = min(60.0, self._retry.get(conn, 2.0))
        self._retry[conn] = delay * 2
        rows.append(session("rate_limited", code=str(RATE_LIMITED), channel=",".join(chans) or
                            None, retry_after_s=delay, reason=text))
        if method != "SUBSCRIBE" or not chans:
            return []
        split = self.sockets.refused(conn, chans) if "subscription" in text.lower() else None
        if split is not None:
            keep, move = split
            # The server's cap is lower than ours (sockets.PublicSockets.refused): ask again
            # for what stays here, move the rest.
            again = [self._request(conn, "SUBSCRIBE", keep)] if keep else []
            return again + self._assign(move)
        return [self._request(conn, "SUBSCRIBE", chans, delay=delay)]

    # -- REST ----------------------------------------------------------------------------------
    def on_response(self, conn: str, tag: str, status: int, body: bytes) -> Result:
        kind, _, arg = tag.partition(":")
        if status != 200:
            return self._rest_failed(kind, arg, tag, status, body)
        try:
            payload = loads(body)
        except JSONError as e:
            return [self._rest_row(tag, status, None, f"not JSON: {e}"),
                    unhandled("malformed", body, msg_type=f"rest:{kind}", error=str(e))], \
                NO_ACTIONS
        reader = self._rest.get(kind)
        try:
            if reader is None:
                raise ValueError(f"no reader for REST tag {kind!r}")
            rows, actions, count = reader(arg, payload)
        except _SHAPE_ERRORS as e:
            err = f"{type(e).__name__}: {e}"
            return [self._rest_row(tag, status, None, err),
                    unhandled("unexpected_shape", body, msg_type=f"rest:{kind}", error=err)], \
                NO_ACTIONS
        return [self._rest_row(tag, status, count, None, _wrapper(kind, payload)), *rows], \
            actions

    @staticmethod
    def _rest_row(tag: str, status: int, count: int | None, error: str | None,
                  beside: dict[str, Any] | None = None) -> Row:
        return _row(T.REST_RESPONSE, {"_tag": tag, "_status": status, "_count": count,
                                      "_error": error, **(beside or {})})

    def _rest_orderbook(self, arg: str, payload: Any) -> tuple[list[Row], Sequence[Action],
                                                                int]:
        data = payload.get("data", payload) if isinstance(payload, dict) else payload
        if not isinstance(data, dict):
            raise TypeError("orderbook body is not an object")
        rows, actions = self._depth(data, None, "rest")
        return rows, actions, 1

    def _rest_auctions(self, arg: str, payload: Any) -> tuple[list[Row], Sequence[Action], int]:
        items = _rest_items(payload, "active-auctions", "auction")
        rows = [r for a in items for r in self._rfq_request(REST, a, None, "rest")[0]]
        return rows, NO_ACTIONS, len(items)

    def _rest_quotes(self, arg: str, payload: Any) -> tuple[list[Row], Sequence[Action], int]:
        items = _rest_items(payload, "quotes", "quote")
        rows = []
        for q in items:
            q = dict(q)
            q.setdefault("requestId", arg)
            rows += self._quote_row(q, None, "rest")
        return rows, NO_ACTIONS, len(items)

    def _rest_failed(self, kind: str, arg: str, tag: str, status: int, body: bytes) -> Result:
        text = body[:500].decode("utf-8", "replace")
        rows: list[Row] = [self._rest_row(tag, status, None, text),
                           session("error", code=str(status), channel=tag,
                                   reason=f"REST {tag} failed: {text[:200]}")]
        actions: list[Action] = []
        if kind == "orderbook":
            delay = self.books.retry_delay(arg)
            if delay is not None:
                actions.append(self._orderbook(arg, delay))
        elif kind in DISCOVERY:
            # Without discovery there is nothing to subscribe: try again shortly.
            actions.append(self._fetch(DISCOVERY[kind], tag, delay=5.0))
        return rows, actions

    def _rest_pairs(self, arg: str, payload: Any) -> tuple[list[Row], Sequence[Action], int]:
        items = _rest_items(payload, "pairs", "pair")
        rows: list[Row] = []
        want: list[str] = []
        for p in items:
            rows.append(_row(T.PAIR_T, dict(p)))
            pid = p.get("pairId")
            if isinstance(pid, str):
                self.pairs[pid] = p
            sym = p.get("symbol")
            und = str(p.get("underlying", "")).lower()
            only = self.settings.underlyings
            if isinstance(sym, str) and (not only or und in only):
                want.append(f"{sym.lower()}@index")
        return rows, self._assign(want), len(rows)

    def _rest_instruments(self, endpoint: str, payload: Any) -> tuple[list[Row],
                                                                      Sequence[Action], int]:
        items = _rest_items(payload, endpoint, endpoint)
        rows: list[Row] = []
        found: dict[str, str] = {}
        for m in items:
            row = dict(m)
            row["_endpoint"] = endpoint
            row["strike"], row["_strike_f"] = _wad(m.get("strike"))
            rows.append(_row(T.INSTRUMENT, row))
            sym = m.get("symbol")
            if not isinstance(sym, str) or m.get("status") in ("settled", "expired"):
                continue
            und = m.get("underlying")
            if not isinstance(und, str):
                pair = self.pairs.get(m.get("pairId"))  # type: ignore[arg-type]
                und = str(pair["underlying"]) if pair else sym.split("-", 1)[0]
            found[sym] = und.lower()
        return rows, self._add_symbols(found), len(rows)

    # -- RFQ sockets and global@rfq ------------------------------------------------------------
    @staticmethod
    def _stamp(row: dict[str, Any]) -> dict[str, Any]:
        row["_event_ms"] = _event_ms(row.get("timestamp"))
        return row

    def _rfq_simple(self, table: Table) -> Callable[[str, dict[str, Any], str | None], Result]:
        def handle(conn: str, msg: dict[str, Any], stream: str | None) -> Result:
            return [_row(table, self._stamp(dict(msg)))], NO_ACTIONS
        return handle

    def _auth_success(self, conn: str, msg: dict[str, Any], stream: str | None) -> Result:
        rows, _ = self._rfq_simple(T.RFQ_AUTH_SUCCESS)(conn, msg, stream)
        return rows + [session("auth_ok", reason=f"{conn}: handshake credentials accepted")], \
            NO_ACTIONS

    def _rfq_request(self, conn: str, msg: dict[str, Any], stream: str | None,
                     source: str | None = None) -> Result:
        row = self._stamp(dict(msg))
        row["strike"], row["_strike_f"] = _wad(msg.get("strike"))
        row["_stream"] = stream
        row["_source"] = source or ("mm" if conn == RFQ_MM else "ws")
        return [_row(T.RFQ_AUCTION, row)], NO_ACTIONS

    def _rfq_resolved(self, conn: str, msg: dict[str, Any], stream: str | None) -> Result:
        row = self._stamp(dict(msg))
        row["price"], row["_price_f"] = _wad(msg.get("price"))
        row["_stream"] = stream
        row["_source"] = "mm" if conn == RFQ_MM else "ws"
        actions: list[Action] = []
        if conn.startswith(RFQ_QUOTES):
            # A per-request stream has nothing more to say once its auction resolved.
            actions.append(Stop(conn, "auction resolved"))
        return [_row(T.RFQ_RESOLUTION, row)], actions

    def _rfq_snapshot(self, conn: str, msg: dict[str, Any], stream: str | None) -> Result:
        items = _items(msg, "auctions", "data", "items") or []
        rows: list[Row] = []
        for a in items:
            rows += self._rfq_request(conn, a, stream, "snapshot")[0]
        row = self._stamp({k: v for k, v in msg.items() if k not in ("auctions", "data",
                                                                     "items")})
        row["_count"] = len(items)
        rows.append(_row(T.RFQ_SNAPSHOT, row))
        return rows, NO_ACTIONS

    def _quote_row(self, msg: dict[str, Any], stream: str | None, source: str) -> list[Row]:
        row = self._stamp(dict(msg))
        row["price"], row["_price_f"] = _wad(msg.get("price"))
        row["size"], row["_size_f"] = _wad(msg.get("size"))
        n = msg.get("nonce")
        if n is not None and type(n) is not str:
            row["nonce"] = str(n)
        row["_stream"] = stream
        row["_source"] = source
        return [_row(T.RFQ_QUOTE, row)]

    def _rfq_quote(self, conn: str, msg: dict[str, Any], stream: str | None) -> Result:
        q = msg.get("quote")
        if isinstance(q, dict):  # a nested quote object (inferred variant): flatten it
            msg = {**{k: v for k, v in msg.items() if k != "quote"}, **q}
        return self._quote_row(msg, stream, "ws"), NO_ACTIONS

    def _rfq_rejected(self, conn: str, msg: dict[str, Any], stream: str | None) -> Result:
        row = self._stamp(dict(msg))
        n = msg.get("nonce")
        if n is not None and type(n) is not str:
            row["nonce"] = str(n)
        return [_row(T.RFQ_QUOTE_REJECTED, row)], NO_ACTIONS

    def _rfq_filled(self, conn: str, msg: dict[str, Any], stream: str | None) -> Result:
        row = self._stamp(dict(msg))
        row["price"], row["_price_f"] = _wad(msg.get("price"))
        row["size"], row["_size_f"] = _wad(msg.get("size"))
        return [_row(T.RFQ_TRADE_FILLED, row)], NO_ACTIONS

    # -- /ws/private ---------------------------------------------------------------------------
    def _private(self, conn: str, channel: str, data: Any, raw: bytes) -> Result:
        """After SUBSCRIBE the server sends a snapshot per channel, then updates. The
        payload schemas were not retrievable; read here: a snapshot is ``{"type":
        "snapshot", "items": [...]}`` (or a bare list), an update one object (inferred).
        An item's ``type`` is kept: the rfq channel carries several kinds of event."""
        table = T.PRIVATE_TABLES[channel]
        snapshot = isinstance(data, list) or (isinstance(data, dict)
                                              and data.get("type") == "snapshot")
        items = _items(data, "items", "data", channel + "s") if snapshot else [data]
        if items is None:
            items = [data]
        rows: list[Row] = []
        actions: list[Action] = []
        for it in items:
            row = dict(it)
            row["_stream"] = channel
            row["_snapshot"] = snapshot
            row["_event_ns"] = _event_ns(row)
            rows.append(_row(table, row))
            if channel == "rfq":
                actions += self._account_rfq(row)
        if snapshot:
            rows.append(self._snapshot_row(channel, data, len(items)))
        return rows, actions

    @staticmethod
    def _snapshot_row(channel: str, data: Any, count: int) -> Row:
        row = {"_stream": channel, "_count": count}
        if isinstance(data, dict):
            row.update({k: v for k, v in data.items()
                        if k not in ("items", "data", "quotes", channel + "s")})
        row["_event_ns"] = _event_ns(row)
        return _row(T.PRIVATE_SNAPSHOT, row)

    def _account_rfq(self, row: dict[str, Any]) -> list[Action]:
        """One of our RFQs appeared: hydrate its quotes over REST, then follow them on
        rfq.quotes.<id> and on its own /ws/rfq/quotes socket."""
        rid = row.get("requestId")
        if not isinstance(rid, str):
            return []
        if row.get("status") not in (None, "open", "active", "pending"):
            # Ended: stop following its quotes, so a busy account's subscriptions (and the
            # resubscribe after every reconnect) do not grow without bound.
            if rid in self.account_rfqs:
                del self.account_rfqs[rid]
                if self.authed:
                    return [self._request(PRIVATE, "UNSUBSCRIBE", [f"rfq.quotes.{rid}"])]
            return []
        if rid in self.account_rfqs:
            return []
        self.account_rfqs[rid] = None
        out: list[Action] = [self._fetch(f"/api/rfq/quotes/{quote(rid, safe='')}",
                                         f"quotes:{rid}", auth=True)]
        if self.authed:
            out.append(self._request(PRIVATE, "SUBSCRIBE", [f"rfq.quotes.{rid}"]))
        name = f"{RFQ_QUOTES}{rid}"
        if name not in self.quote_conns:
            self.quote_conns.add(name)
            # requestId goes in the handshake query; the bearer in the Authorization header.
            out.append(Open(ConnSpec(name, f"{self.ws_base}/ws/rfq/quotes?requestId="
                                           f"{quote(rid, safe='')}", self._auth_headers())))
        return out

    def _private_quotes(self, conn: str, stream: str, data: Any, raw: bytes) -> Result:
        snapshot = isinstance(data, list) or (isinstance(data, dict)
                                              and data.get("type") == "snapshot")
        items = _items(data, "items", "quotes", "data") if snapshot else [data]
        if items is None:
            items = []
        rid = stream.removeprefix("rfq.quotes.")
        rows: list[Row] = []
        for q in items:
            q = dict(q)
            q.setdefault("requestId", rid)
            rows += self._quote_row(q, stream, "snapshot" if snapshot else "ws")
        if snapshot:
            rows.append(self._snapshot_row(stream, data, len(items)))
        return rows, NO_ACTIONS


def _kind(msg: dict[str, Any]) -> str | None:
    if "stream" in msg:
        return str(msg["stream"])
    t = msg.get("type")
    return None if t is None else str(t)


def make_adapter(venue: str, url: str | None, options: Mapping[str, Any], *,
                 offline: bool = False, sim: Mapping[str, Any] | None = None) -> DiffusalAdapter:
    """Build the adapter. ``offline`` (rebuild, recovery) needs no settings or secrets; it
    behaves as if a token were set so private and RFQ frames read the same as live."""
    if offline:
        return DiffusalAdapter(url or "ws://offline", Settings(), token="offline",
                               offline=True)
    s = typed(Settings, options, f"[venues.{venue}]")
    token = None
    if sim is not None:
        token = sim.get("token") or sim.get("api_key")
        if sim.get("mm") and token and not s.mm:
            s = replace(s, mm=True)
    elif s.token_env:
        token = secret(s.token_env, f"[venues.{venue}].token_env")
    return DiffusalAdapter(url or "", s, token)
