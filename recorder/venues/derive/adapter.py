"""Derive client side, sans-I/O: JSON-RPC frames in, typed rows and requests out.

Protocol: https://docs.derive.xyz/reference/json-rpc (envelope), /reference/authentication
(``public/login``), /reference/subscribe, the channel pages, and the official SDK derive-py
(its WS session routes notifications on ``params.channel``). Notes:
``shared/venues/001-derive.md``.

Everything goes over one WebSocket:

1. On connect: ``public/get_all_currencies``; for every currency kept and every instrument
   type it lists, ``public/get_instruments``. Each answer subscribes the channels of newly
   listed instruments and unsubscribes those no longer listed (expired), in batches, then
   schedules the same request again ``refresh_seconds`` later (a delayed :class:`Send`: the
   adapter has no clock, the transport's timer is the periodic trigger).
2. With a wallet and a key: ``public/get_time``, then ``public/login`` signing the *server's*
   time (EIP-191 ``personal_sign`` of the decimal string). Using the server's clock keeps the
   adapter free of clock reads and immune to local skew. The login result lists the
   subaccounts; their private channels and ``{wallet}.rfqs`` are subscribed next.
3. Notifications ``{"method": "subscription", "params": {"channel", "data"}}`` are routed on
   the channel's family to one handler per table.

Request ids are self-describing strings, ``tag:generation:number[:args]`` (JSON-RPC allows
string ids). A response is therefore understood from its own id, without the table of pending
requests, so a rebuild from the journal (where our outbound messages are not replayed into
the adapter) yields the same rows. The pending table is kept only to resend a request the
venue refused with a rate-limit hint.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import orjson

from recorder.actions import NO_ACTIONS, Action, ConnSpec, Send
from recorder.config import secret
from recorder.errors import ConfigError
from recorder.exact import dumps, epoch_ns, shaper
from recorder.options import opt, typed, within
from recorder.rows import JSONError, Row, loads, session, unhandled
from recorder.schema import Table
from recorder.venues.base import BaseAdapter, Result, guard, json_object, reject
from recorder.venues.derive import tables as T

CONN = "ws"
INSTRUMENT_TYPES = ("option", "perp", "erc20")
PUBLIC_FAMILIES = ("orderbook", "ticker", "ticker_slim", "trades", "trades_by_currency",
                   "trades_settled", "spot_feed", "auctions", "margin")
PRIVATE_FAMILIES = ("orders", "trades", "trades_status", "balances", "quotes", "best_quotes",
                    "rfqs")
TAG_METHOD = {"cur": "public/get_all_currencies", "ins": "public/get_instruments",
              "time": "public/get_time", "login": "public/login", "sub": "subscribe",
              "unsub": "unsubscribe"}
# Error codes (derive-py enums.py; https://docs.derive.xyz/reference/json-rpc).
RATE_LIMITED = -32000  # data: "Retry after <ms> ms"
INVALID_CHANNELS = 13000
PRIVATE_CHANNEL_SUBSCRIPTION_FAILED = 14022
# Per-channel failures arrive as free text in subscribe's ``status`` map; the page gives no
# format. A code written in the text wins; otherwise these phrases name the documented codes.
_STATUS_CODES = (("invalid channel", INVALID_CHANNELS),
                 ("private channel", PRIVATE_CHANNEL_SUBSCRIPTION_FAILED),
                 ("not logged in", PRIVATE_CHANNEL_SUBSCRIPTION_FAILED),
                 ("login", PRIVATE_CHANNEL_SUBSCRIPTION_FAILED))
_CODE_IN_TEXT = re.compile(r"(?<![\d.])(-?\d{4,5})(?![\d.])")
_RETRY_MS = re.compile(r"(\d+(?:\.\d+)?)\s*ms")
_WALLET = re.compile(r"^0x[0-9a-fA-F]{40}$")
# A channel's parts are indexed by position: a short one fails with IndexError, its shape's.
_SHAPE_ERRORS = (TypeError, AttributeError, KeyError, ValueError, IndexError)


@dataclass(frozen=True)
class Variant:
    """What differs between API generations; everything else is the same adapter.

    v3 (Derive v3 API, AsyncAPI 0.2.0, derive-py ``specs/``): host api.derive.xyz, path
    /v3/ws; price levels may be ``{price, amount}`` objects; trades carry ``batch_status`` and
    ``op_uuid`` instead of ``tx_status`` and ``transaction_id``; nonces are strings; the
    status segment of ``trades.{type}.{currency}.{status}`` and ``{sub}.trades.{status}`` is a
    BatchStatus. The parsing accepts both shapes whatever the variant (cheap, and a server
    mid-migration may mix them); the variant sets the defaults that name channels.
    """

    name: str
    url: str
    settled_statuses: tuple[str, ...]
    own_statuses: tuple[str, ...]


VARIANTS = {
    "v2": Variant("v2", "wss://api.lyra.finance/ws", ("settled", "reverted", "timed_out"),
                  ("settled", "reverted", "timed_out")),
    "v3": Variant("v3", "wss://api.derive.xyz/v3/ws", ("Settled", "SettledError"),
                  ("Settled", "SettledError")),
}


def _names(allowed: Iterable[str] | None = None) -> Callable[[tuple[str, ...]], bool]:
    """Channel-name parts: non-empty, without '.', from ``allowed`` when given."""
    inside = within(allowed) if allowed is not None else (lambda v: True)
    return lambda v: all(x and "." not in x for x in v) and inside(v)


@dataclass(frozen=True)
class Settings:
    """``[venues.<name>]`` of a Derive venue."""

    variant: Literal["v2", "v3"] = opt("v2", f"one of {sorted(VARIANTS)}")
    # None: every currency the venue lists
    currencies: tuple[str, ...] | None = opt(None, "a list of names (no '.')", _names())
    instrument_types: tuple[str, ...] = opt(
        INSTRUMENT_TYPES, f"a list of {list(INSTRUMENT_TYPES)}", _names(INSTRUMENT_TYPES))
    channels: tuple[str, ...] = opt(PUBLIC_FAMILIES, f"a list of {list(PUBLIC_FAMILIES)}",
                                    _names(PUBLIC_FAMILIES))
    private_channels: tuple[str, ...] = opt(
        PRIVATE_FAMILIES, f"a list of {list(PRIVATE_FAMILIES)}", _names(PRIVATE_FAMILIES))
    orderbook_group: Literal[1, 10, 100] = opt(1, "one of [1, 10, 100]")
    orderbook_depth: Literal[1, 10, 20, 100] = opt(10, "one of [1, 10, 20, 100]")
    ticker_interval: Literal[100, 1000] = opt(1000, "one of [100, 1000]")
    # None: the variant's (Variant.settled_statuses / own_statuses)
    settled_statuses: tuple[str, ...] | None = opt(None, "a list of names (no '.')", _names())
    own_statuses: tuple[str, ...] | None = opt(None, "a list of names (no '.')", _names())
    refresh_seconds: float = opt(300.0, "a positive number of seconds", lambda v: v > 0)
    batch_size: int = opt(100, "1..1000 channels per subscribe request",
                          lambda v: 1 <= v <= 1000)
    wallet: str | None = opt(None, "the Derive wallet address (0x + 40 hex)",
                             lambda v: bool(_WALLET.match(v)))
    private_key_env: str | None = opt(None, "the NAME of an environment variable")

    def problems(self) -> Iterator[tuple[str, str]]:
        if (self.wallet is None) != (self.private_key_env is None):
            yield "", "wallet and private_key_env go together (private channels need both)"

    @property
    def settled(self) -> tuple[str, ...]:
        v = self.settled_statuses
        return VARIANTS[self.variant].settled_statuses if v is None else v

    @property
    def own(self) -> tuple[str, ...]:
        v = self.own_statuses
        return VARIANTS[self.variant].own_statuses if v is None else v


Handler = Callable[[str, list[str], Any], list[Row]]


class DeriveAdapter(BaseAdapter):
    """One instance per run. ``key`` is the owner or session private key (hex) used to sign
    ``public/login``; without it (or without ``wallet``) only public channels are recorded."""

    def __init__(self, url: str, settings: Settings, key: str | None = None) -> None:
        self.url = url or VARIANTS[settings.variant].url
        self.s = settings
        self.key = key
        self.gen = 0
        self._n = 0
        self._fix = {t.name: shaper(t) for t in T.TABLES}
        self.pending: dict[str, str] = {}  # id -> request text (rate-limit resends)
        self.currencies: set[str] = set()
        self.known: dict[tuple[str, str], set[str]] = {}
        self.subscribed: set[str] = set()
        self.subaccounts: list[int] = []
        self.last_publish: dict[str, int] = {}
        self._families: dict[str, Handler] = {
            "orderbook": self._orderbook, "ticker": self._ticker,
            "ticker_slim": self._ticker_slim, "trades": self._trades(T.TRADES),
            "trades_by_currency": self._trades(T.TRADES_BY_CURRENCY),
            "trades_settled": self._trades(T.TRADES_SETTLED), "spot_feed": self._spot_feed,
            "auctions": self._auctions, "margin": self._margin,
            "orders": self._list(T.ORDERS), "own_trades": self._own_trades,
            "balances": self._balances, "quotes": self._list(T.QUOTES),
            "best_quotes": self._best_quotes, "rfqs": self._list(T.RFQS),
        }
        self._responses: dict[str, Callable[[list[str], Any], tuple[list[Row], list[Action]]]] = {
            "cur": self._on_currencies, "ins": self._on_instruments, "time": self._on_time,
            "login": self._on_login, "sub": self._on_subscribed, "unsub": self._on_unsubscribed,
        }

    # -- requests ----------------------------------------------------------------------------
    def _request(self, tag: str, params: Mapping[str, Any] | None, *args: str,
                 delay: float = 0.0, secret_keys: tuple[str, ...] = ()) -> Send:
        self._n += 1
        rid = ":".join((tag, str(self.gen), str(self._n), *args))
        msg: dict[str, Any] = {"id": rid, "method": TAG_METHOD[tag]}
        if params is not None:
            msg["params"] = params
        text = orjson.dumps(msg).decode()
        self.pending[rid] = text
        return Send(CONN, text, delay=delay, secret_keys=secret_keys)

    def _subscribe(self, channels: Iterable[str], tag: str = "sub") -> list[Action]:
        todo = list(dict.fromkeys(channels))
        size = self.s.batch_size
        return [self._request(tag, {"channels": todo[i:i + size]})
                for i in range(0, len(todo), size)]

    def _instrument_channels(self, name: str) -> list[str]:
        s = self.s
        by_family = {"orderbook": f"orderbook.{name}.{s.orderbook_group}.{s.orderbook_depth}",
                     "ticker": f"ticker.{name}.{s.ticker_interval}",
                     "ticker_slim": f"ticker_slim.{name}.{s.ticker_interval}",
                     "trades": f"trades.{name}"}
        return [ch for fam, ch in by_family.items() if fam in s.channels]

    def _currency_channels(self, cur: str, types: Iterable[str]) -> list[str]:
        fams = self.s.channels
        out = [f"spot_feed.{cur}"] if "spot_feed" in fams else []
        for t in types:
            if "trades_by_currency" in fams:
                out.append(f"trades.{t}.{cur}")
            if "trades_settled" in fams:
                out += [f"trades.{t}.{cur}.{st}" for st in self.s.settled]
        return out

    def _private_channels(self) -> list[str]:
        fams, out = self.s.private_channels, []
        for sub in self.subaccounts:
            by_family = {"orders": [f"{sub}.orders"], "trades": [f"{sub}.trades"],
                         "trades_status": [f"{sub}.trades.{st}" for st in self.s.own],
                         "balances": [f"{sub}.balances"], "quotes": [f"{sub}.quotes"],
                         "best_quotes": [f"{sub}.best.quotes"]}
            out += [ch for fam, chs in by_family.items() if fam in fams for ch in chs]
        if "rfqs" in fams and self.s.wallet:
            out.append(f"{self.s.wallet}.rfqs")
        return out

    # -- connection life ---------------------------------------------------------------------
    def connections(self) -> Sequence[ConnSpec]:
        return [ConnSpec(CONN, self.url)]

    def on_connected(self, conn: str) -> Sequence[Action]:
        # Subscriptions and login are per connection and nothing is replayed after a
        # reconnect (derive-py session.py): start over. A new generation makes the answers
        # to requests sent on the previous socket (and its scheduled refreshes) inert.
        self.gen += 1
        self.pending.clear()
        self.currencies.clear()
        self.known.clear()
        self.subscribed.clear()
        self.subaccounts = []
        self.last_publish.clear()
        out: list[Action] = [self._request("cur", {})]
        if self.s.wallet and self.s.private_key_env:
            out.append(self._request("time", {}))
        glob = [c for f, c in (("auctions", "auctions.watch"), ("margin", "margin.watch"))
                if f in self.s.channels]
        out += self._subscribe(glob)
        return out

    def on_disconnected(self, conn: str) -> None:
        pass

    def on_response(self, conn: str, tag: str, status: int,
                    body: bytes) -> Result:
        return [unhandled("unexpected_response", body, msg_type=tag,
                          error=f"HTTP {status}; this adapter makes no HTTP requests")], \
            NO_ACTIONS

    # -- frames ------------------------------------------------------------------------------
    def on_frame(self, conn: str, data: bytes) -> Result:
        msg = json_object(data)
        if type(msg) is not dict:
            return msg
        return guard(data, _kind(msg), self._route, msg, data, errors=_SHAPE_ERRORS)

    def _route(self, msg: dict[str, Any], data: bytes) -> Result:
        # Notifications go by their channel's family (params.channel, as derive-py routes
        # them); answers to our requests by their self-describing id.
        if msg.get("method") == "subscription":
            params = msg.get("params")
            channel = params.get("channel") if type(params) is dict else None
            if type(channel) is not str:
                return reject("unexpected_shape", data, msg_type="subscription",
                              error="params.channel missing")
            fam, parts = classify(channel)
            handler = self._families.get(fam) if fam else None
            if handler is None:
                return reject("unknown_type", data, msg_type=channel)
            return handler(channel, parts, params.get("data")), NO_ACTIONS
        if "id" in msg and ("result" in msg or "error" in msg):
            return self._response(msg)
        return reject("unknown_type", data, msg_type=_kind(msg))

    def _row(self, table: Table, row: dict[str, Any]) -> Row:
        # Types, decimal texts, and every undeclared key (at any depth) into `extra`.
        return table, self._fix[table.name](row)

    # -- responses to our requests -----------------------------------------------------------
    def _response(self, msg: dict[str, Any]) -> tuple[list[Row], list[Action]]:
        # JSON-RPC allows a null id (the server's answer to a request it could not read the
        # id of, https://www.jsonrpc.org/specification#response_object; v3 JsonRpcId is
        # string | number | null): it stays null, never the text "None".
        raw_id = msg["id"]
        rid = None if raw_id is None else str(raw_id)
        text = self.pending.pop(rid, None) if rid is not None else None
        parts = rid.split(":") if rid is not None else [""]
        tag = parts[0] if parts[0] in TAG_METHOD else None
        current = len(parts) >= 3 and parts[1] == str(self.gen)
        rpc: dict[str, Any] = {"id": rid, "_method": TAG_METHOD.get(tag or "")}
        for k in msg.keys() - {"id", "result", "error"}:
            rpc[k] = msg[k]  # jsonrpc and anything else the envelope holds: kept in `extra`
        err = msg.get("error")
        if err is not None:
            err = err if type(err) is dict else {"message": str(err)}
            code = err.get("code")
            data = err.get("data")
            rpc.update(_ok=False, _code=code, _message=err.get("message"),
                       _data=data if data is None or type(data) is str else dumps(data))
            for k in err.keys() - {"code", "message", "data"}:
                rpc[f"error.{k}"] = err[k]
            rows = [self._row(T.RPC, rpc)]
            acts: list[Action] = []
            if code == RATE_LIMITED:
                after = _retry_after(err.get("data"))
                rows.append(session("rate_limited", code=str(code), reason=err.get("message"),
                                    retry_after_s=after, detail={"id": rid}))
                if text is not None and current:
                    # Same request again after the hint, under a fresh id.
                    m = orjson.loads(text)
                    acts.append(self._request(tag or "sub", m.get("params"), *parts[3:],
                                              delay=after))
            elif tag == "login":
                rows.append(session("auth_failed", code=None if code is None else str(code),
                                    reason=err.get("message"), detail=err.get("data")))
            else:
                rows.append(session("error", code=None if code is None else str(code),
                                    reason=err.get("message"),
                                    detail={"id": rid, "method": rpc["_method"],
                                            "data": err.get("data")}))
            return rows, acts
        result = msg.get("result")
        rpc.update(_ok=True, _count=len(result) if type(result) is list else None)
        handler = self._responses.get(tag or "")
        if handler is None:
            rpc["_result"] = dumps(result)
            return [self._row(T.RPC, rpc)], []
        rows, acts = handler(parts, result)
        if tag not in ("cur", "ins"):
            rpc["_result"] = dumps(result)
        rows.insert(0, self._row(T.RPC, rpc))
        return rows, acts if current else []

    def _on_currencies(self, parts: list[str], result: Any) -> tuple[list[Row], list[Action]]:
        rows: list[Row] = []
        acts: list[Action] = []
        wanted = self.s.currencies
        for c in _elements(result):
            for k in ("asset_cap_and_supply_per_manager", "erc20_details"):
                if c.get(k) is not None and type(c[k]) is not str:
                    c[k] = dumps(c[k])
            rows.append(self._row(T.CURRENCIES, c))
            cur = c.get("currency")
            if type(cur) is not str or cur in self.currencies or "." in cur:
                continue
            if wanted is not None and cur not in wanted:
                continue
            self.currencies.add(cur)
            listed = c.get("instrument_types")
            types = [t for t in self.s.instrument_types
                     if type(listed) is not list or t in listed]
            for t in types:
                acts.append(self._request("ins", {"currency": cur, "instrument_type": t,
                                                  "expired": False}, cur, t))
            acts += self._subscribe(self._currency_channels(cur, types))
        # Refresh the currency list too: a new currency brings its own instruments.
        acts.append(self._request("cur", {}, delay=self.s.refresh_seconds))
        return rows, acts

    def _on_instruments(self, parts: list[str], result: Any) -> tuple[list[Row], list[Action]]:
        cur, typ = (parts[3], parts[4]) if len(parts) >= 5 else (None, None)
        rows: list[Row] = []
        active: list[str] = []
        for inst in _elements(result):
            inst["_currency"], inst["_type"] = cur, typ
            rows.append(self._row(T.INSTRUMENTS, inst))
            name = inst.get("instrument_name")
            if type(name) is str and inst.get("is_active", True) is not False:
                active.append(name)
        if cur is None or typ is None:
            return rows, []
        key = (cur, typ)
        before = self.known.get(key, set())
        now = set(active)
        self.known[key] = now
        listed = [n for n in active if n not in before]
        gone = sorted(before - now)
        acts: list[Action] = []
        acts += self._subscribe(c for n in listed for c in self._instrument_channels(n))
        # Expired instruments: unsubscribe, so the channel list does not grow for ever.
        acts += self._subscribe((c for n in gone for c in self._instrument_channels(n)), "unsub")
        acts.append(self._request("ins", {"currency": cur, "instrument_type": typ,
                                          "expired": False}, cur, typ,
                                  delay=self.s.refresh_seconds))
        return rows, acts

    def _on_time(self, parts: list[str], result: Any) -> tuple[list[Row], list[Action]]:
        if not (self.s.wallet and self.s.private_key_env):
            return [], []
        ts = str(result)
        sig = sign_login(self.key, ts) if self.key else ""
        # The timestamp is a string in the v2 schema (PublicLoginParamsSchema).
        return [], [self._request("login", {"wallet": self.s.wallet, "timestamp": ts,
                                            "signature": sig},
                                  secret_keys=("params.signature",))]

    def _on_login(self, parts: list[str], result: Any) -> tuple[list[Row], list[Action]]:
        subs = [int(x) for x in _elements(result) if type(x) is int or
                (type(x) is str and x.isdigit())]
        self.subaccounts = subs
        rows = [session("auth_ok", reason=f"{len(subs)} subaccount(s)", detail={
            "wallet": self.s.wallet, "subaccounts": subs})]
        return rows, self._subscribe(self._private_channels())

    def _on_subscribed(self, parts: list[str], result: Any) -> tuple[list[Row], list[Action]]:
        rows: list[Row] = []
        status = result.get("status") if type(result) is dict else None
        for ch, st in (status or {}).items():
            if st == "ok":
                self.subscribed.add(ch)
                rows.append(session("subscribed", channel=ch))
            else:
                rows.append(session("error", channel=ch, code=_status_code(str(st)),
                                    reason=str(st)))
        return rows, []

    def _on_unsubscribed(self, parts: list[str], result: Any) -> tuple[list[Row], list[Action]]:
        rows: list[Row] = []
        status = result.get("status") if type(result) is dict else None
        for ch, st in (status or {}).items():
            self.subscribed.discard(ch)
            if st == "ok":
                rows.append(session("unsubscribed", channel=ch))
            else:
                rows.append(session("error", channel=ch, code=_status_code(str(st)),
                                    reason=str(st)))
        return rows, []

    # -- channel families --------------------------------------------------------------------
    def _orderbook(self, channel: str, parts: list[str], data: Any) -> list[Row]:
        row = dict(data)
        row["_channel"] = channel
        row["_group"], row["_depth"] = _int_or_none(parts[-2]), _int_or_none(parts[-1])
        row.setdefault("instrument_name", ".".join(parts[1:-2]))
        row["bids"] = _levels(row.get("bids"))
        row["asks"] = _levels(row.get("asks"))
        rows = [self._row(T.ORDERBOOK, row)]
        pid = row.get("publish_id")
        if type(pid) is int:
            last = self.last_publish.get(channel)
            self.last_publish[channel] = pid
            if last is not None and pid != last + 1:
                # Each message is a full snapshot, so the book is whole again; what is lost is
                # the states in between. A decrease means the publisher restarted (inferred).
                rows.append(session(
                    "gap", channel=channel, expected=last + 1, received=pid,
                    reason="publish_id skipped" if pid > last else "publish_id went back"))
        return rows

    def _ticker(self, channel: str, parts: list[str], data: Any) -> list[Row]:
        row = {**dict(data["instrument_ticker"]), **_beside(data, "instrument_ticker")}
        row["_channel"] = channel
        row["_timestamp"] = data.get("timestamp")
        row["_interval"] = _int_or_none(parts[-1])
        return [self._row(T.TICKER, row)]

    def _ticker_slim(self, channel: str, parts: list[str], data: Any) -> list[Row]:
        row = {**dict(data["instrument_ticker"]), **_beside(data, "instrument_ticker")}
        row["_channel"] = channel
        row["_timestamp"] = data.get("timestamp")
        row["_instrument"] = ".".join(parts[1:-1])
        row["_interval"] = _int_or_none(parts[-1])
        for key, names in (("stats", T.SLIM_STATS_NAMES), ("option_pricing",
                                                           T.SLIM_PRICING_NAMES)):
            nested = row.get(key)
            if type(nested) is dict:
                row[key] = {names.get(k, k): v for k, v in nested.items()}
                for k, v in nested.items():
                    if k not in names:
                        row[f"{key}.{k}"] = v  # undeclared one-letter key: kept in extra
        return [self._row(T.TICKER_SLIM, row)]

    def _trades(self, table: Table) -> Handler:
        def handle(channel: str, parts: list[str], data: Any) -> list[Row]:
            extra: dict[str, Any] = {"_channel": channel}
            if table is not T.TRADES:
                extra["_type"], extra["_currency"] = parts[1], parts[2]
            if table is T.TRADES_SETTLED:
                extra["_status"] = parts[3]
            return [self._row(table, {**e, **extra}) for e in _elements(data)]
        return handle

    def _list(self, table: Table) -> Handler:
        def handle(channel: str, parts: list[str], data: Any) -> list[Row]:
            return [self._row(table, {**e, "_channel": channel}) for e in _elements(data)]
        return handle

    def _auctions(self, channel: str, parts: list[str], data: Any) -> list[Row]:
        rows = []
        for e in _elements(data):
            row = {**e, "_channel": channel}
            details = row.get("details")
            if type(details) is dict and type(details.get("subaccount_balances")) is str:
                # v3 sends the map of balances as a JSON string; both shapes read the same
                # (an unreadable string stays as sent and fails the row into `unhandled`).
                details = row["details"] = dict(details)
                try:
                    parsed = loads(details["subaccount_balances"].encode())
                except JSONError:
                    parsed = None
                if type(parsed) is dict:
                    details["subaccount_balances"] = parsed
            rows.append(self._row(T.AUCTIONS, row))
        return rows

    def _margin(self, channel: str, parts: list[str], data: Any) -> list[Row]:
        rows = []
        for e in _elements(data):
            # The unit of valuation_timestamp is undocumented: read per value (tables.py).
            row = {**e, "_channel": channel,
                   "_valuation_ns": epoch_ns(e.get("valuation_timestamp"))}
            rows.append(self._row(T.MARGIN_WATCH, row))
        return rows

    def _own_trades(self, channel: str, parts: list[str], data: Any) -> list[Row]:
        status = parts[2] if len(parts) > 2 else None
        return [self._row(T.OWN_TRADES, {**e, "_channel": channel, "_status": status})
                for e in _elements(data)]

    def _balances(self, channel: str, parts: list[str], data: Any) -> list[Row]:
        sub = _int_or_none(parts[0])
        return [self._row(T.BALANCES, {**e, "_channel": channel, "_subaccount": sub})
                for e in _elements(data)]

    def _best_quotes(self, channel: str, parts: list[str], data: Any) -> list[Row]:
        sub = _int_or_none(parts[0])
        rows = []
        for e in _elements(data):
            row = {k: v for k, v in e.items() if k not in ("result", "error")}
            result = e.get("result")
            if type(result) is dict:
                for k, v in result.items():
                    if row.setdefault(k, v) != v:
                        row[f"result.{k}"] = v  # differs from the element's own: kept too
            elif result is not None:
                row["result"] = result
            err = e.get("error")
            if type(err) is dict:
                row["_error_code"] = err.get("code")
                row["_error_message"] = err.get("message")
                data = err.get("data")
                row["_error_data"] = data if data is None or type(data) is str else dumps(data)
                for k in err.keys() - {"code", "message", "data"}:
                    row[f"error.{k}"] = err[k]
            elif err is not None:
                row["error"] = err
            row["_channel"], row["_subaccount"] = channel, sub
            rows.append(self._row(T.BEST_QUOTES, row))
        return rows

    def _spot_feed(self, channel: str, parts: list[str], data: Any) -> list[Row]:
        ts = data.get("timestamp")
        beside = _beside(data, "feeds")
        return [self._row(T.SPOT_FEED, {**feed, **beside, "_channel": channel,
                                        "_timestamp": ts, "_currency": cur})
                for cur, feed in (data.get("feeds") or {}).items()]


# -- helpers ------------------------------------------------------------------------------------

def classify(channel: str) -> tuple[str | None, list[str]]:
    """The family of a channel name (the key of the adapter's dispatch table) and its parts.

    Instrument names contain '-' but no '.', and private channels start with a numeric
    subaccount id or end in ``.rfqs``; see the channel list at
    https://docs.derive.xyz/reference/subscribe .
    """
    parts = channel.split(".")
    head, n = parts[0], len(parts)
    fam: str | None = None
    if head == "orderbook" and n >= 4:
        fam = "orderbook"
    elif head in ("ticker", "ticker_slim") and n >= 3:
        fam = head
    elif head == "trades" and n >= 2:
        if n in (3, 4) and parts[1] in INSTRUMENT_TYPES:
            fam = "trades_by_currency" if n == 3 else "trades_settled"
        else:
            fam = "trades"
    elif head == "spot_feed" and n == 2:
        fam = "spot_feed"
    elif channel == "auctions.watch":
        fam = "auctions"
    elif channel == "margin.watch":
        fam = "margin"
    elif head.isdigit() and n >= 2:
        rest = ".".join(parts[1:])
        if rest in _PRIVATE:
            fam = _PRIVATE[rest]
        elif n == 3 and parts[1] == "trades":  # {subaccount_id}.trades.{tx_status}
            fam = "own_trades"
    elif n == 2 and parts[1] == "rfqs":
        fam = "rfqs"
    return fam, parts


_PRIVATE = {"orders": "orders", "trades": "own_trades", "balances": "balances",
            "quotes": "quotes", "best.quotes": "best_quotes"}


def _beside(data: dict[str, Any], inner: str) -> dict[str, Any]:
    """Keys of a notification's ``data`` next to its payload (``timestamp`` aside) under a
    ``data.`` prefix: they reach the row's ``extra`` instead of vanishing."""
    return {f"data.{k}": v for k, v in data.items() if k not in (inner, "timestamp")}


def _elements(data: Any) -> list[Any]:
    """Notification and result arrays, one row per element. The v3 AsyncAPI describes some
    payloads as a single object; whether ``data`` is still an array there is not verified
    (001-derive.md), so a lone object counts as a one-element array."""
    if type(data) is list:
        return data
    if data is None:
        return []
    return [data]


def _levels(levels: Any) -> Any:
    """v2 ``[price, amount]`` pairs and v3 ``{price, amount}`` objects -> level structs."""
    if type(levels) is not list:
        return levels
    out = []
    for lv in levels:
        if type(lv) is list and len(lv) == 2:
            out.append({"price": lv[0], "amount": lv[1]})
        else:
            out.append(lv)
    return out


def _int_or_none(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _kind(msg: dict[str, Any]) -> str | None:
    m = msg.get("method")
    return str(m) if m is not None else ("response" if "id" in msg else None)


def _retry_after(data: Any) -> float:
    m = _RETRY_MS.search(str(data or ""))
    return float(m.group(1)) / 1000.0 if m else 1.0


def _status_code(text: str) -> str | None:
    m = _CODE_IN_TEXT.search(text)
    if m:
        return m.group(1)
    low = text.lower()
    for phrase, code in _STATUS_CODES:
        if phrase in low:
            return str(code)
    return None


# EIP-191 personal_sign with eth-keys, the key and signature library under eth-account:
# importing eth-account itself costs a second of CPU (its keystore module builds BLS
# constants), paid by every recorder and simulator process that signs or checks a login.
# tests/venues/derive/test_adapter.py checks these against eth-account.
def _personal_hash(text: str) -> bytes:
    """The digest ``personal_sign`` signs: EIP-191 version 0x45 of ``text``
    (https://eips.ethereum.org/EIPS/eip-191)."""
    from eth_utils import keccak

    msg = text.encode()
    return keccak(b"\x19Ethereum Signed Message:\n" + str(len(msg)).encode() + msg)


def _private_key(key: str) -> Any:
    from eth_keys import keys
    from eth_keys.exceptions import ValidationError

    try:
        return keys.PrivateKey(bytes.fromhex(key.removeprefix("0x")))
    except (ValidationError, ValueError, TypeError) as e:
        raise ValueError("not a private key (32 bytes, hex)") from e


def address_of(key: str) -> str:
    """The checksummed address of a private key (hex); ValueError if it is not one."""
    return str(_private_key(key).public_key.to_checksum_address())


def sign_login(key: str, timestamp: str) -> str:
    """EIP-191 ``personal_sign`` of the timestamp string (https://docs.derive.xyz/reference/
    authentication), as 0x-hex: r, s and v (27 or 28), as eth-account writes it."""
    sig = _private_key(key).sign_msg_hash(_personal_hash(timestamp))
    return "0x" + (sig.r.to_bytes(32, "big") + sig.s.to_bytes(32, "big")
                   + bytes([sig.v + 27])).hex()


def login_signer(timestamp: str, signature: str) -> str:
    """The checksummed address that signed ``timestamp`` (v as 0/1 or 27/28); ValueError
    for a signature of any wrong shape."""
    from eth_keys import keys

    try:
        raw = bytes.fromhex(signature.removeprefix("0x"))
        if len(raw) != 65:
            raise ValueError(f"{len(raw)} bytes, not 65")
        v = raw[64] - 27 if raw[64] >= 27 else raw[64]
        sig = keys.Signature(raw[:64] + bytes([v]))
        return str(sig.recover_public_key_from_msg_hash(_personal_hash(timestamp))
                   .to_checksum_address())
    except ValueError:
        raise
    except Exception as e:  # eth-keys' own errors for a bad v, r or s
        raise ValueError(f"not a signature: {e}") from e


def _check_key(key: str, env: str, where: str) -> None:
    try:
        _private_key(key)
    except ValueError:
        # Never echo the value: it is a private key.
        raise ConfigError(f"environment variable {env} (named by {where}) does not hold a "
                          "valid private key (32 bytes, hex)") from None


def make_adapter(venue: str, url: str | None, options: Mapping[str, Any], *,
                 offline: bool = False, sim: Mapping[str, Any] | None = None) -> DeriveAdapter:
    """Build the adapter. ``offline`` (rebuild, recovery) needs no settings or secrets: rows
    come from the frames and the self-describing request ids alone."""
    if offline:
        return DeriveAdapter(url or "", Settings())
    s = typed(Settings, options, f"[venues.{venue}]")
    key: str | None = None
    if sim is not None:
        # The simulator's own wallet and key (its overrides); never an environment variable.
        if sim.get("wallet") and sim.get("private_key"):
            s = replace(s, wallet=sim["wallet"],
                        private_key_env=s.private_key_env or "(simulator)")
            key = str(sim["private_key"])
    elif s.private_key_env:
        where = f"[venues.{venue}].private_key_env"
        key = secret(s.private_key_env, where)
        _check_key(key, s.private_key_env, where)
    return DeriveAdapter(url or "", s, key)
