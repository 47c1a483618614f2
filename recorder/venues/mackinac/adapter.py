"""Mackinac client side, sans-I/O: frames in, typed rows and outgoing messages out.

Protocol: https://mackinac.io/api/websocket/ and https://mackinac.io/api/messages/, plus the
official SDK (mackinac-python 0.2.0, ``_ws.py``). Notes: ``shared/venues/003-mackinac.md``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass
from typing import Any

import orjson

from recorder.actions import NO_ACTIONS, Action, ConnSpec, Reconnect, Send, Stop
from recorder.config import secret
from recorder.options import opt, typed
from recorder.rows import Row, session, with_extra
from recorder.schema import Table
from recorder.venues.base import BaseAdapter, Handler, Result, dispatch, json_object, one_row, plain
from recorder.venues.mackinac import tables as T

CONN = "feed"
USER_AGENT = "tick-recorder/0.1 (+https://github.com/; market-data archival)"
KEY_RE = re.compile(r"^[a-z0-9]{1,16}:[^\s]{1,96}$")
_TYPE_FIRST = re.compile(rb'\s*\{\s*"type"\s*:\s*"([a-z_]{1,32})"\s*[,}]').match
# Types whose frames are rows as they are (no exact-integer fixes, no control effects). A
# print also has to name its exchange: a legacy one without it is completed by the dict path
# (the lake fills only the constants `T.PRINT.raw_constants` declares).
RAW_TABLES = {t.name.removeprefix("mackinac_").encode(): t for t in (
    T.QUOTE, T.PRINT, T.FUNDING, T.RATE_MARKET, T.RATE_DEPTH, T.RATE_MODEL_PARAMS, T.AMMBOOK,
    T.ARBFLAG, T.SPREAD)}
# Market data: rows and nothing else (no actions, no session rows, no adapter state), so the
# collector need not parse them on the hot path (the lake builder does).
DATA_ONLY = frozenset(RAW_TABLES) | {b"depth", b"liquidity", b"lending_action",
                                     b"ammliquidity_snapshot"}
_EXCHANGE_KEY = b'"exchange":'
# Feeds whose keys carry no prints, so a history request would only draw an error.
NO_PRINTS = frozenset({"gmx", "vertex", "ammbook", "ammliquidity", "arbflag", "lending", "aave",
                       "compound", "morpho", "rates"})
FATAL_AUTH = frozenset({"auth_failed", "auth_error"})
# The key is unusable: drop it and do not resubscribe (SDK _ws.py; docs "Errors").
# symbol_limit_reached / free_tier_cap_reached: the SDK drops the key too, rather than retrying
# it on every reconnect; the refusal stays visible in session_events and mackinac_error.
DROP_KEY = frozenset({"invalid_symbol", "unknown_symbol", "subscription_required",
                      "symbol_limit_reached", "free_tier_cap_reached"})


@dataclass(frozen=True)
class Settings:
    """``[venues.<name>]`` of a Mackinac venue."""

    symbols: tuple[str, ...] = opt(MISSING, "a non-empty list of 'exchange:symbol' keys",
                                lambda v: bool(v) and all(KEY_RE.match(k) for k in v))
    api_key_env: str | None = opt(None, "the NAME of an environment variable")
    history: bool = opt(True, "true or false")
    history_limit: int = opt(500, "1..1000 (the server caps at 1000)",
                             lambda v: 1 <= v <= 1000)


def _split(key: str) -> tuple[str, str]:
    ex, _, sym = key.partition(":")
    return ex, sym


class MackinacAdapter(BaseAdapter):
    def __init__(self, url: str, settings: Settings, api_key: str | None = None) -> None:
        self.url = url
        self.settings = settings
        self.api_key = api_key
        self.wanted: dict[str, None] = dict.fromkeys(settings.symbols)  # ordered set
        self.dropped: dict[str, str] = {}
        self._req = 0
        self._handlers: dict[str, Handler] = {
            "quote": _simple(T.QUOTE), "print": self._print,
            "funding": _simple(T.FUNDING), "depth": self._depth,
            "liquidity": self._liquidity, "rate_market": _simple(T.RATE_MARKET),
            "rate_depth": _simple(T.RATE_DEPTH),
            "lending_action": _exact(T.LENDING_ACTION, ("amount", "collateralAmount")),
            "rate_model_params": _simple(T.RATE_MODEL_PARAMS),
            "ammbook": _simple(T.AMMBOOK), "arbflag": _simple(T.ARBFLAG),
            "spread": _simple(T.SPREAD),
            "ammliquidity_snapshot": self._ammliquidity_snapshot,
            "feed_stale": self._feed_stale, "feed_live": self._feed_live,
            "server_closing": self._server_closing, "subscribed": self._subscribed,
            "snapshot": self._snapshot, "authed": self._authed, "error": self._error,
        }

    # -- connection life ---------------------------------------------------------------------
    def connections(self) -> Sequence[ConnSpec]:
        # The docs ask for a descriptive User-Agent (https://mackinac.io/api/websocket/).
        return [ConnSpec(CONN, self.url, {"User-Agent": USER_AGENT})]

    def on_connected(self, conn: str) -> Sequence[Action]:
        if self.api_key:
            # Auth goes first, before any subscribe; we subscribe once `authed` arrives so the
            # session's tier (and symbol limit) applies to every key.
            return [Send(conn, orjson.dumps({"action": "auth", "key": self.api_key}).decode(),
                         paced=False, secret_keys=("key",))]
        return self._subscribe_all(conn)

    def _subscribe_all(self, conn: str) -> list[Action]:
        out: list[Action] = [_subscribe(conn, key) for key in self.wanted]
        if self.settings.history:
            # Since SDK 0.1.1 the print ring buffer is not pushed on subscribe; it must be asked
            # for, after every (re)connect, and it overlaps live prints (dedup in the views).
            # `limit` and `reqId` are inferred from the SDK model docstring; a server that
            # ignores them still answers with the default 500 prints.
            for key in self.wanted:
                ex, sym = _split(key)
                if ex in NO_PRINTS:
                    continue
                self._req += 1
                out.append(Send(conn, orjson.dumps({
                    "action": "history", "exchange": ex, "symbol": sym,
                    "limit": self.settings.history_limit, "reqId": f"h{self._req}"}).decode()))
        return out

    # -- frames ------------------------------------------------------------------------------
    def data_only(self, conn: str, data: bytes) -> bool:
        m = _TYPE_FIRST(data)
        return m is not None and m.group(1) in DATA_ONLY

    def on_frame(self, conn: str, data: bytes) -> Result:
        # Fast path: a data frame that maps onto its table as it is (the doc examples put
        # `type` first) is handed to the lake as raw bytes, parsed later by Arrow's C++ reader
        # off the event loop; the lake falls back to the dict path on anything unusual.
        m = _TYPE_FIRST(data)
        if m is not None:
            table = RAW_TABLES.get(m.group(1))
            if table is not None and (table is not T.PRINT or _EXCHANGE_KEY in data):
                return [(table, data)], NO_ACTIONS  # type: ignore[list-item]
        msg = json_object(data)
        if type(msg) is not dict:
            return msg
        return dispatch(self._handlers, msg.get("type"), data, msg)

    def _print_row(self, msg: dict[str, Any], source: str, req_id: str | None = None,
                   exchange: str | None = None) -> Row:
        if "exchange" not in msg:
            # Legacy HL prints carry no `exchange`; the SDK treats them as "hl". (Prints inside
            # a history reply take the reply's exchange instead: not legacy.)
            msg["exchange"] = exchange or "hl"
            msg["_legacy"] = exchange is None
        else:
            msg["_legacy"] = False
        msg["_source"] = source
        if req_id is not None:
            msg["_req_id"] = req_id
        if msg.keys() <= T.PRINT.wire_keys:
            return T.PRINT, msg
        return T.PRINT, with_extra(T.PRINT, msg)

    def _print(self, msg: dict[str, Any]) -> Result:
        return [self._print_row(msg, "live")], NO_ACTIONS

    def _depth(self, msg: dict[str, Any]) -> Result:
        # Tick liquidity is uint128-scale: kept as exact strings whether the venue sends
        # numbers or strings (the seed does not say which).
        for t in msg.get("ticks") or ():
            _strings(t, ("liquidityDelta", "cumLiquidity"))
        return [(T.DEPTH, with_extra(T.DEPTH, msg))], NO_ACTIONS

    def _liquidity(self, msg: dict[str, Any], source: str = "live") -> tuple[list[Row],
                                                                                Sequence[Action]]:
        _strings(msg, ("amount", "amount0", "amount1"))
        msg["_source"] = source
        return [(T.LIQUIDITY, with_extra(T.LIQUIDITY, msg))], NO_ACTIONS

    def _ammliquidity_snapshot(self, msg: dict[str, Any]) -> Result:
        events = msg.pop("events", None) or []
        rows: list[Row] = []
        times = []
        for ev in events:
            ev.setdefault("symbol", msg.get("symbol"))
            rows += self._liquidity(ev, "snapshot")[0]
            if isinstance(ev.get("time"), int):
                times.append(ev["time"])
        msg.update(_count=len(events), _first=min(times, default=None),
                   _last=max(times, default=None))
        rows.append((T.AMMLIQUIDITY_SNAPSHOT, with_extra(T.AMMLIQUIDITY_SNAPSHOT, msg)))
        return rows, NO_ACTIONS

    def _snapshot(self, msg: dict[str, Any]) -> Result:
        prints = msg.pop("prints", None) or []
        req = msg.get("reqId")
        req = None if req is None else str(req)
        msg["reqId"] = req
        rows = [self._print_row(p, "history", req, msg.get("exchange")) for p in prints]
        times = [p["time"] for p in prints if isinstance(p.get("time"), int)]
        msg.update(_count=len(prints), _first=min(times, default=None),
                   _last=max(times, default=None))
        rows.append((T.SNAPSHOT, with_extra(T.SNAPSHOT, msg)))
        return rows, NO_ACTIONS

    # -- control frames: a typed row each, plus session_events and actions ----------------------
    def _feed_stale(self, msg: dict[str, Any]) -> Result:
        return [(T.FEED_STALE, with_extra(T.FEED_STALE, msg)),
                session("feed_stale", channel=msg.get("exchange"),
                        reason=f"upstream stale for {msg.get('staleSec')}s")], NO_ACTIONS

    def _feed_live(self, msg: dict[str, Any]) -> Result:
        return [(T.FEED_LIVE, with_extra(T.FEED_LIVE, msg)),
                session("feed_live", channel=msg.get("exchange"))], NO_ACTIONS

    def _server_closing(self, msg: dict[str, Any]) -> Result:
        ms = msg.get("reconnectIn")
        # The SDK waits reconnectIn ms (default 5000) before reconnecting; we do the same
        # instead of our own backoff, so we come back as soon as the server is ready.
        after = (ms if isinstance(ms, int | float) else 5000) / 1000.0
        return [(T.SERVER_CLOSING, with_extra(T.SERVER_CLOSING, msg)),
                session("server_closing", retry_after_s=after,
                        reason=f"planned restart, reconnect in {after:g}s")], [
            Reconnect(CONN, after, "server_closing")]

    def _subscribed(self, msg: dict[str, Any]) -> Result:
        return [(T.SUBSCRIBED, with_extra(T.SUBSCRIBED, msg)),
                session("subscribed", channel=f"{msg.get('exchange')}:{msg.get('symbol')}")], \
            NO_ACTIONS

    def _authed(self, msg: dict[str, Any]) -> Result:
        rows = [(T.AUTHED, with_extra(T.AUTHED, msg)),
                session("auth_ok", reason=f"tier {msg.get('tier')}, symbol limit "
                        f"{msg.get('symbolLimit')}")]
        return rows, self._subscribe_all(CONN)

    def _error(self, msg: dict[str, Any]) -> Result:
        code = msg.get("code")
        ex, sym = msg.get("exchange"), msg.get("symbol")
        channel = f"{ex}:{sym}" if ex is not None and sym is not None else None
        rows: list[Row] = [(T.ERROR, with_extra(T.ERROR, msg))]
        actions: list[Action] = []
        if code in FATAL_AUTH:
            rows.append(session("auth_failed", code=code, reason=msg.get("message")))
            actions.append(Stop(CONN, f"credentials refused: {code}"))
        elif code == "rate_limited":
            after = msg.get("retryAfter")
            after = float(after) if isinstance(after, int | float) else 10.0
            rows.append(session("rate_limited", code=code, channel=channel,
                                retry_after_s=after, reason=msg.get("message")))
            # Resend after the hint: the one key named, or every key (the error may not say
            # which subscribe it refused; a repeated subscribe is idempotent).
            keys = [channel] if channel in self.wanted else list(self.wanted)
            actions += [_subscribe(CONN, key, after) for key in keys]
        else:
            if code in DROP_KEY and channel in self.wanted:
                del self.wanted[channel]
                self.dropped[channel] = str(code)
            rows.append(session("error", code=None if code is None else str(code),
                                channel=channel,
                                reason=msg.get("message"),
                                detail={"limit": msg["limit"]} if "limit" in msg else None))
        return rows, actions


def _subscribe(conn: str, key: str, delay: float = 0.0) -> Send:
    ex, sym = _split(key)
    return Send(conn, orjson.dumps({"action": "subscribe", "exchange": ex, "symbol": sym}).decode(),
                delay=delay)


def _simple(table: Table) -> Handler:
    return one_row(plain(table))


def _exact(table: Table, fields: tuple[str, ...]) -> Handler:
    row = plain(table)

    def handle(msg: dict[str, Any]) -> Result:
        _strings(msg, fields)
        return [row(msg)], NO_ACTIONS
    return handle


def _strings(obj: dict[str, Any], fields: tuple[str, ...]) -> None:
    """Exact on-chain integers as strings, whatever JSON type the venue used."""
    for f in fields:
        v = obj.get(f)
        if v is not None and type(v) is not str:
            obj[f] = str(v) if type(v) is int else repr(v)


def make_adapter(venue: str, url: str | None, options: Mapping[str, Any], *,
                 offline: bool = False, sim: Mapping[str, Any] | None = None) -> MackinacAdapter:
    """Build the adapter. ``offline`` (rebuild, recovery) needs no settings or secrets."""
    if offline:
        return MackinacAdapter(url or "", Settings(("offline:offline",), history=False))
    s = typed(Settings, options, f"[venues.{venue}]")
    key = None
    if sim and sim.get("api_key"):
        key = sim["api_key"]
    elif s.api_key_env:
        key = secret(s.api_key_env, f"[venues.{venue}].api_key_env")
    return MackinacAdapter(url or "", s, key)
