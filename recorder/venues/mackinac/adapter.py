"""Mackinac client side, sans-I/O: frames in, typed rows and outgoing messages out.

Protocol: https://mackinac.io/api/websocket/ and https://mackinac.io/api/messages/, plus the
official SDK (mackinac-python 0.2.0, ``_ws.py``). Notes: ``shared/venues/003-mackinac.md``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa

from recorder.config import secret
from recorder.errors import ConfigError
from recorder.venues.base import (
    NO_ACTIONS,
    Action,
    BaseAdapter,
    ConnSpec,
    Reconnect,
    Row,
    Send,
    Stop,
    session,
    unhandled,
    with_extra,
)
from recorder.venues.base import JSONError as _JSONError
from recorder.venues.base import loads as _loads
from recorder.venues.mackinac import tables as T

CONN = "feed"
USER_AGENT = "tick-recorder/0.1 (+https://github.com/; market-data archival)"
KEY_RE = re.compile(r"^[a-z0-9]{1,16}:[^\s]{1,96}$")
_TYPE_FIRST = re.compile(rb'\s*\{\s*"type"\s*:\s*"([a-z_]{1,32})"\s*[,}]').match
# Types whose frames are rows as they are (no exact-integer fixes, no control effects).
RAW_TABLES = {t.name.removeprefix("mackinac_").encode(): t for t in (
    T.QUOTE, T.PRINT, T.FUNDING, T.RATE_MARKET, T.RATE_DEPTH, T.RATE_MODEL_PARAMS, T.AMMBOOK,
    T.ARBFLAG, T.SPREAD)}
# Market data: rows and nothing else (no actions, no session rows, no adapter state), so the
# collector need not parse them on the hot path (the lake builder does).
DATA_ONLY = frozenset(RAW_TABLES) | {b"depth", b"liquidity", b"lending_action",
                                     b"ammliquidity_snapshot"}
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
    keys: tuple[str, ...]
    api_key_env: str | None = None
    history: bool = True
    history_limit: int = 500

    @classmethod
    def parse(cls, venue: str, options: Mapping[str, Any]) -> Settings:
        where = f"[venues.{venue}]"
        known = {"symbols", "api_key_env", "history", "history_limit"}
        unknown = set(options) - known
        if unknown:
            raise ConfigError(f"{where}: unknown setting(s) {sorted(unknown)} (known: "
                              f"{sorted(known)})")
        keys = options.get("symbols", [])
        if not isinstance(keys, list) or not keys:
            raise ConfigError(f"{where}.symbols: a non-empty list of 'exchange:symbol' keys")
        for k in keys:
            if not isinstance(k, str) or not KEY_RE.match(k):
                raise ConfigError(f"{where}.symbols: {k!r} is not 'exchange:symbol'")
        limit = options.get("history_limit", 500)
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise ConfigError(f"{where}.history_limit: 1..1000 (the server caps at 1000)")
        env = options.get("api_key_env")
        if env is not None and not isinstance(env, str):
            raise ConfigError(f"{where}.api_key_env: the NAME of an environment variable")
        history = options.get("history", True)
        if not isinstance(history, bool):
            raise ConfigError(f"{where}.history: true or false, got {history!r}")
        return cls(tuple(dict.fromkeys(keys)), env, history, limit)


def _split(key: str) -> tuple[str, str]:
    ex, _, sym = key.partition(":")
    return ex, sym


class MackinacAdapter(BaseAdapter):
    def __init__(self, url: str, settings: Settings, api_key: str | None = None) -> None:
        self.url = url
        self.settings = settings
        self.api_key = api_key
        self.wanted: dict[str, None] = dict.fromkeys(settings.keys)  # ordered set
        self.dropped: dict[str, str] = {}
        self._req = 0
        self._handlers: dict[str, Callable[[dict[str, Any]], tuple[list[Row],
                                                                     Sequence[Action]]]] = {
            "quote": self._simple(T.QUOTE), "print": self._print,
            "funding": self._simple(T.FUNDING), "depth": self._depth,
            "liquidity": self._liquidity, "rate_market": self._simple(T.RATE_MARKET),
            "rate_depth": self._simple(T.RATE_DEPTH),
            "lending_action": self._exact(T.LENDING_ACTION, ("amount", "collateralAmount")),
            "rate_model_params": self._simple(T.RATE_MODEL_PARAMS),
            "ammbook": self._simple(T.AMMBOOK), "arbflag": self._simple(T.ARBFLAG),
            "spread": self._simple(T.SPREAD),
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

    def on_disconnected(self, conn: str) -> None:
        pass

    def _subscribe_all(self, conn: str) -> list[Action]:
        out: list[Action] = []
        for key in self.wanted:
            ex, sym = _split(key)
            out.append(Send(conn, orjson.dumps(
                {"action": "subscribe", "exchange": ex, "symbol": sym}).decode()))
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

    def on_frame(self, conn: str, data: bytes) -> tuple[list[Row], Sequence[Action]]:
        # Fast path: a data frame that maps onto its table as it is (the doc examples put
        # `type` first) is handed to the lake as raw bytes, parsed later by Arrow's C++ reader
        # off the event loop; the lake falls back to the dict path on anything unusual.
        m = _TYPE_FIRST(data)
        if m is not None:
            table = RAW_TABLES.get(m.group(1))
            if table is not None:
                return [(table, data)], NO_ACTIONS
        try:
            msg = _loads(data)
        except _JSONError as e:
            return [unhandled("malformed", data, error=str(e))], NO_ACTIONS
        if type(msg) is not dict:
            return [unhandled("unexpected_shape", data, error="not a JSON object")], NO_ACTIONS
        kind = msg.get("type")
        handler = self._handlers.get(kind) if type(kind) is str else None
        if handler is None:
            # msg_type stays null when the frame has no `type` at all (not the text "None").
            return [unhandled("unknown_type", data,
                              msg_type=None if kind is None else str(kind))], NO_ACTIONS
        try:
            return handler(msg)
        except (TypeError, AttributeError, KeyError, ValueError) as e:
            return [unhandled("unexpected_shape", data, msg_type=kind,
                              error=f"{type(e).__name__}: {e}")], NO_ACTIONS

    @staticmethod
    def _simple(table: Any) -> Callable[[dict[str, Any]], tuple[list[Row], Sequence[Action]]]:
        wire = table.wire_keys
        # Nested levels may hold undeclared members too: only flat tables skip the check.
        flat = not any(pa.types.is_nested(c.type) for c in table.columns)

        def handle(msg: dict[str, Any]) -> tuple[list[Row], Sequence[Action]]:
            if flat and msg.keys() <= wire:
                return [(table, msg)], NO_ACTIONS
            return [(table, with_extra(table, msg))], NO_ACTIONS
        return handle

    def _exact(self, table: Any, fields: tuple[str, ...]) -> Callable[..., Any]:
        simple = self._simple(table)

        def handle(msg: dict[str, Any]) -> tuple[list[Row], Sequence[Action]]:
            _strings(msg, fields)
            return simple(msg)
        return handle

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

    def _print(self, msg: dict[str, Any]) -> tuple[list[Row], Sequence[Action]]:
        return [self._print_row(msg, "live")], NO_ACTIONS

    def _depth(self, msg: dict[str, Any]) -> tuple[list[Row], Sequence[Action]]:
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

    def _ammliquidity_snapshot(self, msg: dict[str, Any]) -> tuple[list[Row], Sequence[Action]]:
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

    def _snapshot(self, msg: dict[str, Any]) -> tuple[list[Row], Sequence[Action]]:
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
    def _feed_stale(self, msg: dict[str, Any]) -> tuple[list[Row], Sequence[Action]]:
        return [(T.FEED_STALE, with_extra(T.FEED_STALE, msg)),
                session("feed_stale", channel=msg.get("exchange"),
                        reason=f"upstream stale for {msg.get('staleSec')}s")], NO_ACTIONS

    def _feed_live(self, msg: dict[str, Any]) -> tuple[list[Row], Sequence[Action]]:
        return [(T.FEED_LIVE, with_extra(T.FEED_LIVE, msg)),
                session("feed_live", channel=msg.get("exchange"))], NO_ACTIONS

    def _server_closing(self, msg: dict[str, Any]) -> tuple[list[Row], Sequence[Action]]:
        ms = msg.get("reconnectIn")
        # The SDK waits reconnectIn ms (default 5000) before reconnecting; we do the same
        # instead of our own backoff, so we come back as soon as the server is ready.
        after = (ms if isinstance(ms, int | float) else 5000) / 1000.0
        return [(T.SERVER_CLOSING, with_extra(T.SERVER_CLOSING, msg)),
                session("server_closing", retry_after_s=after,
                        reason=f"planned restart, reconnect in {after:g}s")], [
            Reconnect(CONN, after, "server_closing")]

    def _subscribed(self, msg: dict[str, Any]) -> tuple[list[Row], Sequence[Action]]:
        return [(T.SUBSCRIBED, with_extra(T.SUBSCRIBED, msg)),
                session("subscribed", channel=f"{msg.get('exchange')}:{msg.get('symbol')}")], \
            NO_ACTIONS

    def _authed(self, msg: dict[str, Any]) -> tuple[list[Row], Sequence[Action]]:
        rows = [(T.AUTHED, with_extra(T.AUTHED, msg)),
                session("auth_ok", reason=f"tier {msg.get('tier')}, symbol limit "
                        f"{msg.get('symbolLimit')}")]
        return rows, self._subscribe_all(CONN)

    def _error(self, msg: dict[str, Any]) -> tuple[list[Row], Sequence[Action]]:
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
            for key in keys:
                e, s = _split(key)
                actions.append(Send(CONN, orjson.dumps(
                    {"action": "subscribe", "exchange": e, "symbol": s}).decode(), delay=after))
        else:
            if code in DROP_KEY and channel in self.wanted:
                del self.wanted[channel]
                self.dropped[channel] = str(code)
            rows.append(session("error", code=None if code is None else str(code),
                                channel=channel,
                                reason=msg.get("message"),
                                detail={"limit": msg["limit"]} if "limit" in msg else None))
        return rows, actions


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
    s = Settings.parse(venue, options)
    key = None
    if sim and sim.get("api_key"):
        key = sim["api_key"]
    elif s.api_key_env:
        key = secret(s.api_key_env, f"[venues.{venue}].api_key_env")
    return MackinacAdapter(url or "", s, key)
