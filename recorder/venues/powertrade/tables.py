"""Power.Trade tables: one per server message of the Market Proxy WebSocket, one per Feeds
message, and the REST entity summary.

Sources (see ``shared/venues/004-powertrade.md``): the Market Proxy "WebSocket API" overview
(https://api-docs-5180b.web.app/docs/web-socket-api, seed 004) and the JSON schemas of the
official clients (GitHub ``Power-Trade/market-proxy-clients``, ``json-schema/``); the Feeds
page (https://power-trade.github.io/api-docs-source/ws_feeds.html).

The Market Proxy sends **every value as a string** ("All values in request or response
messages are transmitted as string"). Each field declares a ``kind`` and the adapter converts
the string to a real type before the row reaches the lake:

- ``s`` string as sent; ``i`` integer; ``f`` float; ``b`` boolean ("true"/"false"/"1"/"0");
- ``us`` a timestamp from microseconds since the epoch (``server_utc_timestamp``,
  ``utc_timestamp``, ``timestamp``), stored as ``timestamp[us, UTC]`` (exact);
- ``x`` an exact decimal: a float64 column for research **and** ``<name>_text`` with the
  string exactly as sent (float64 keeps only ~15 significant digits);
- ``e`` a tradeable entity id: int64 for a single entity, and ``<name>_text`` exactly as sent,
  which also holds a multi-leg entity (``117@1/336@-1/1244@-1/1473@1``: entity@ratio per leg,
  RFQ books of market ``none``/``255``); the int is null then and ``legs`` has the parts;
- ``sl`` a list of strings; a :class:`Nested` field is a list of structs whose members are
  declared the same way (each struct also gets ``extra`` for undeclared members).

A value that does not convert (``"price": "abc"``) is left as sent, so the lake writer
quarantines the row in ``unhandled`` (``bad_value``) with its raw text instead of guessing.
Keys starting with ``_`` are set by the adapter, not the venue. Ids (order, trade, client
order, display order) stay exact strings: they are identifiers, not quantities, and the venue
does not promise they fit a signed 64-bit integer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from recorder.schema import Col, Maps, Table, extra_col, mapped

V = "powertrade"
F, INT, S, B = pa.float64(), pa.int64(), pa.string(), pa.bool_()
TS_US = pa.timestamp("us", tz="UTC")
RECEIPT = ("run_id", "conn_id", "recv_seq")


@dataclass(frozen=True)
class Nested:
    """A list of objects (book levels, symbols, positions...)."""

    fields: tuple[Fld, ...]

    @property
    def arrow(self) -> pa.DataType:
        members: list[tuple[str, pa.DataType]] = []
        for f in self.fields:
            members += [(c.wire or c.name, c.type) for c in f.columns(nested=True)]
        members.append(("extra", S))
        return pa.list_(pa.struct(members))


_ARROW = {"s": S, "i": INT, "f": F, "b": B, "us": TS_US, "x": F, "e": INT, "sl": pa.list_(S)}
_TEXT_DOC = {"x": "exactly as sent",
             "e": "exactly as sent; a multi-leg entity is entity@ratio/... (see legs)"}


@dataclass(frozen=True)
class Fld:
    """A field of a venue message: wire key, kind (see module doc), doc, lake column name."""

    wire: str
    kind: str | Nested
    doc: str = ""
    name: str | None = None

    def columns(self, nested: bool = False) -> list[Col]:
        name = self.name or self.wire
        if isinstance(self.kind, Nested):
            return [Col(name, self.kind.arrow, self.doc, self.wire)]
        cols = [Col(name, _ARROW[self.kind], self.doc, self.wire)]
        if self.kind in _TEXT_DOC:
            text_key = f"{self.wire}_text" if nested else f"_{self.wire}_text"
            cols.append(Col(f"{name}_text", S, f"{self.wire} {_TEXT_DOC[self.kind]}", text_key))
        return cols


#: table name -> its declared venue fields (the adapter converts values with these).
FIELDS: dict[str, tuple[Fld, ...]] = {}


def _entity(fields: Sequence[Fld]) -> bool:
    return any(f.kind == "e" or (isinstance(f.kind, Nested) and _entity(f.kind.fields))
               for f in fields)


def _t(msg: str, doc: str, fields: Sequence[Fld], key: tuple[str, ...], *,
       event_time: str | None = "server_utc_timestamp", unit: str = "us",
       added: Sequence[Col] = (), prefix: str = "") -> Table:
    columns: list[Col] = []
    for f in fields:
        columns += f.columns()
    columns += added
    columns.append(extra_col())
    # Version 2: entity ids as int + exact text, legs with entities (issue 11).
    version = 2 if _entity(fields) or any(c.name == "legs" for c in added) else 1
    t = Table(name=f"{V}_{prefix}{msg}", venue=V, doc=doc, columns=tuple(columns),
              dedup_key=key, event_time=event_time, event_time_unit=unit, version=version)
    FIELDS[t.name] = tuple(fields)
    return t


# --- shared fields -----------------------------------------------------------------------------

SUT = Fld("server_utc_timestamp", "us", "server time of the message (µs since epoch; ts_event)")
UTC_TS = Fld("utc_timestamp", "us", "time of the order/book event (µs since epoch)")
MID = Fld("market_id", "s", "'0' firm order book, 'none' (integer alias 255) indicative/RFQ "
          "book, '2' P2P book; kept as sent")
TEID = Fld("tradeable_entity_id", "e", "the venue's numeric instrument id; null for a "
           "multi-leg entity (RFQ), whose id is in tradeable_entity_id_text")
SYM = Fld("symbol", "s", "BTC-USD-PERPETUAL, BTC-20220902-17000P, PTF-USD; multi-leg RFQs "
          "sym1@ratio1/sym2@ratio2/...")
SIDE = Fld("side", "s", "buy | sell")
OID = Fld("order_id", "s", "exchange order id, exact as sent")
COID = Fld("client_order_id", "s", "the client's order id (1-32 bytes), echoed")
TAG = Fld("user_tag", "s", "the requester's tag (1-64 bytes), echoed")
PRICE = Fld("price", "x", "price, decimal")
QTY = Fld("quantity", "x", "quantity, decimal")
REASON = Fld("reason", "s", "venue text")

# A leg of a multi-leg entity: from the symbol (sym@ratio/...) and the entity id
# (id@ratio/..., market-proxy-clients protocol/server.py examples), or as order_accepted sends
# them (json-schema order-accepted.json: legs[]{ratio, symbol, tradeable_entity_id}).
LEG = Nested((Fld("symbol", "s"), Fld("tradeable_entity_id", "e"), Fld("ratio", "x")))
RFQ_COLS = (
    Col("rfq", B, "market_id is 'none' (or its alias '255'): an RFQ on the indicative book",
        "_rfq"),
    Col("legs", LEG.arrow, "a multi-leg entity's legs (symbol, entity, ratio) from "
        "sym@ratio/... and id@ratio/..., or as sent in legs[]; null for one leg", "_legs"),
)
REQ_COLS = (
    Col("request_type", S, "message name of the request this answers (matched by user_tag)",
        "_request_type"),
    Col("request", S, "the request as we sent it (JSON; the JWT redacted)", "_request"),
    Col("matched", B, "user_tag matched one of our pending requests", "_matched"),
)

LEVEL = Nested((Fld("price", "x"), Fld("quantity", "x"),
                Fld("order_id", "s", "schema 2023 spells it 'ordered'"),
                Fld("utc_timestamp", "us")))
SYMBOL_RULES = Nested((
    Fld("symbol", "s"), Fld("tradeable_entity_id", "e"), Fld("status", "s"),
    Fld("base_asset", "s"), Fld("quote_asset", "s"), Fld("minimum_quantity", "x"),
    Fld("maximum_quantity", "x"), Fld("minimum_value", "x"), Fld("maximum_value", "x"),
    Fld("quantity_step", "x"), Fld("price_step", "x"), Fld("tags", "sl")))
RESULT = Nested((Fld("client_order_id", "s"), Fld("order_state", "s")))
POSITION = Nested((
    Fld("symbol", "s"), Fld("deliverable_id", "i"), Fld("product_type", "s"),
    Fld("timestamp", "us"), Fld("side", "s"), Fld("size", "x"), Fld("average_entry_price", "x"),
    Fld("mark_price", "x"), Fld("upnl", "x")))
BALANCE = Nested((
    Fld("deliverable_id", "i"), Fld("symbol", "s"), Fld("cash_balance", "x"),
    Fld("available_balance", "x"), Fld("reserved_balance", "x"),
    Fld("withdrawable_balance", "x"), Fld("timestamp", "us")))
EXECUTION = Nested((
    Fld("tradeable_entity_id", "e"), Fld("trade_id", "s"), Fld("order_id", "s"),
    Fld("client_order_id", "s"), Fld("executed_price", "x"), Fld("executed_quantity", "x"),
    Fld("liquidity_flag", "s"), Fld("order_price", "x"), Fld("side", "s"),
    Fld("order_state", "s"), Fld("server_utc_timestamp", "us")))

# --- Market Proxy ------------------------------------------------------------------------------

COMMAND_RESPONSE = _t(
    "command_response", "Generic ack or error of a request, matched to our request by user_tag "
    "(responses may arrive out of order). error_code 0 = success.",
    (Fld("error_code", "i", "0 success; anything else failed (no public code list)"),
     Fld("error_text", "s", "venue text"), TAG),
    RECEIPT, event_time=None, added=REQ_COLS)

HEARTBEAT = _t(
    "heartbeat", "Server heartbeat, every 5 s while the client sends nothing; feeds the idle "
    "watchdog.",
    (SUT,), ("conn_id", "server_utc_timestamp"),
    added=(Col("field", S, "key that carried the time: server_utc_timestamp, or timestamp "
               "in the older schema", "_field"),))

ENTITIES_AND_RULES = _t(
    "entities_and_rules_response", "The tradeable entity list with trading rules (answer to "
    "entities_and_rules_request).",
    (SUT, TAG, Fld("symbols", SYMBOL_RULES, "one per tradeable entity")),
    ("server_utc_timestamp", "user_tag"), added=REQ_COLS[:1])

SNAPSHOT = _t(
    "snapshot", "Full book of one entity: after subscribe (market 0), and one per live RFQ "
    "(market none) after register_for_rfqs.",
    (SUT, MID, TEID, SYM, Fld("buy", LEVEL, "bids, best first"),
     Fld("sell", LEVEL, "asks, best first")),
    ("market_id", "tradeable_entity_id_text", "symbol", "server_utc_timestamp",
     "hash(buy, sell)"),
    added=RFQ_COLS)

BOOK_KEY = ("market_id", "tradeable_entity_id_text", "symbol", "order_id", "utc_timestamp")
ORDER_ADDED = _t(
    "order_added", "An order joined a book; with market_id 'none' it is a new RFQ (multi-leg "
    "symbols are sym@ratio/...).",
    (SUT, UTC_TS, MID, TEID, SYM, SIDE, OID, PRICE, QTY), BOOK_KEY, added=RFQ_COLS)
ORDER_DELETED = _t(
    "order_deleted", "An order left a book; with market_id 'none' an RFQ was removed.",
    (SUT, UTC_TS, MID, TEID, SYM, SIDE, OID), BOOK_KEY, added=RFQ_COLS)
ORDER_UPDATED = _t(
    "order_updated", "An order was amended; its id changes from old_order_id to new_order_id.",
    (SUT, UTC_TS, MID, TEID, SYM, SIDE, OID, Fld("old_order_id", "s"),
     Fld("new_order_id", "s"), PRICE, QTY),
    ("market_id", "tradeable_entity_id_text", "symbol", "old_order_id", "new_order_id",
     "utc_timestamp"), added=RFQ_COLS)
ORDER_EXECUTED = _t(
    "order_executed", "A resting order was (partly) executed: book-level execution.",
    (SUT, UTC_TS, MID, TEID, SYM, SIDE, OID, PRICE, QTY),
    (*BOOK_KEY, "quantity_text"), added=RFQ_COLS)
TRADE = _t(
    "trade", "A public trade.",
    (SUT, UTC_TS, MID, SYM, TEID, Fld("trade_id", "s", "unique within the entity"), PRICE, QTY,
     Fld("buy_display_order_id", "s"), Fld("sell_display_order_id", "s")),
    ("tradeable_entity_id_text", "trade_id"), added=RFQ_COLS[:1])

ORDER_ACCEPTED = _t(
    "order_accepted", "Own order accepted; on a multi-leg entity (an RFQ or a multi-leg "
    "order) with its legs.",
    (SUT, UTC_TS, MID, TEID, SYM, SIDE, Fld("type", "s", "LIMIT | MARKET"), OID, COID, QTY, PRICE,
     Fld("time_in_force", "s"), REASON),
    ("client_order_id", "order_id"), event_time="utc_timestamp", added=RFQ_COLS)
ORDER_REJECTED = _t(
    "order_rejected", "Own order rejected.",
    (SUT, UTC_TS, COID, SYM, PRICE, QTY, REASON), ("client_order_id", "utc_timestamp", "reason"),
    event_time="utc_timestamp")
EXECUTION_T = _t(
    "execution", "Own fill.",
    (SUT, UTC_TS, MID, TEID, SYM, Fld("trade_id", "s"), OID, COID,
     Fld("executed_price", "x"), Fld("executed_quantity", "x"),
     Fld("liquidity_flag", "s", "added | removed (maker | taker)"), PRICE, SIDE,
     Fld("order_state", "s", "e.g. partially_filled | filled")),
    ("trade_id", "order_id"))
CANCEL_ORDER = _t(
    "cancel_order", "Own order cancelled (response to cancel_order, or an expiry).",
    (SUT, UTC_TS, TEID, SYM, OID, COID, Fld("filled_quantity", "x"), REASON, TAG),
    ("client_order_id", "order_id", "utc_timestamp"))
CANCEL_ALL_ORDERS = _t(
    "cancel_all_orders", "Response to cancel_all_orders, one result per cancelled order.",
    (SUT, Fld("timestamp", "us", "request time echoed (µs)"), REASON, TAG,
     Fld("results", RESULT)), ("user_tag", "server_utc_timestamp"), added=REQ_COLS[:1])
REFRESH_INTEREST = _t(
    "refresh_interest", "Response to refresh_interest (an RFQ's life extended).",
    (SUT, OID, COID, TAG, REASON), ("user_tag", "server_utc_timestamp"), added=REQ_COLS[:1])
POSITIONS = _t(
    "positions_response", "Account positions (answer to positions; older name position_info).",
    (SUT, TAG, Fld("positions", POSITION)), ("user_tag", "server_utc_timestamp"),
    added=REQ_COLS[:1])
BALANCES = _t(
    "balances_response", "Account balances (answer to balances; the message key is not "
    "confirmed by the docs: balances_response and balances are both read).",
    (SUT, TAG, Fld("balances", BALANCE)), ("user_tag", "server_utc_timestamp"),
    added=REQ_COLS[:1])
TRADE_HISTORY = _t(
    "trade_history_response", "Own executions (answer to trade_history_request).",
    (SUT, TAG, Fld("executions", EXECUTION)), ("user_tag", "server_utc_timestamp"),
    added=REQ_COLS[:1])
BULK_ORDER = _t(
    "new_bulk_order_response", "Response to new_bulk_order (key not confirmed: "
    "new_bulk_order_response and bulk_order_response are both read).",
    (SUT, TAG, Fld("results", RESULT)), ("user_tag", "server_utc_timestamp"),
    added=REQ_COLS[:1])

# --- cross-venue views (recorder.schema.CROSS_VIEWS) -----------------------------------------

_SIDE = "CASE {c} WHEN 'buy' THEN 'buy' WHEN 'sell' THEN 'sell' ELSE 'unknown' END"
_BOOK_SIDE = "CASE side WHEN 'buy' THEN 'bid' WHEN 'sell' THEN 'ask' END"
# market_id "0" is the firm order book (order by order); "none" is the RFQ book: each
# indicative order is an RFQ (docs: order_added / order_deleted with market_id "none").
_FIRM, _RFQ = "market_id = '0'", "market_id = 'none'"


def _order_event(action: str, price: str | None, size: str | None) -> Maps:
    cols = {"instrument": "symbol", "side": _BOOK_SIDE, "is_snapshot": "false",
            "action": f"'{action}'", "order_id": "order_id"}
    cols.update({k: v for k, v in (("price", price), ("size", size)) if v})
    return Maps("book_updates", cols, where=_FIRM)


def _rfq_event(event: str, size: str | None = None) -> Maps:
    cols = {"rfq_id": "order_id", "event": f"'{event}'", "instrument": "symbol",
            "side": _SIDE.format(c="side")}
    if size:
        cols["size"] = size
    return Maps("rfq_events", cols, where=_RFQ)


SNAPSHOT = mapped(SNAPSHOT, *(Maps("book_updates", {
    "instrument": "symbol", "side": f"'{side}'", "price": "_lv.price", "size": "_lv.quantity",
    "is_snapshot": "true", "level": "_lv_i", "action": "'add'", "order_id": "_lv.order_id"},
    unnest=orders, where=_FIRM) for side, orders in (("bid", "buy"), ("ask", "sell"))),
    *(Maps("rfq_events", {
        "rfq_id": "_lv.order_id", "event": "'rfq_open'", "instrument": "symbol",
        "side": f"'{side}'", "size": "_lv.quantity"}, unnest=orders, where=_RFQ)
      for side, orders in (("buy", "buy"), ("sell", "sell"))))
ORDER_ADDED = mapped(ORDER_ADDED, _order_event("add", "price", "quantity"),
                     _rfq_event("rfq_added", "quantity"))
ORDER_DELETED = mapped(ORDER_DELETED, _order_event("delete", None, "0"),
                       _rfq_event("rfq_deleted"))
ORDER_EXECUTED = mapped(ORDER_EXECUTED, _order_event("execute", "price", "quantity"),
                        _rfq_event("rfq_executed", "quantity"))
# order_id is the new order; the one it replaces is old_order_id in powertrade_order_updated.
ORDER_UPDATED = mapped(ORDER_UPDATED, Maps("book_updates", {
    "instrument": "symbol", "side": _BOOK_SIDE, "is_snapshot": "false", "action": "'update'",
    "price": "price", "size": "quantity", "order_id": "new_order_id"}, where=_FIRM,
    note="order_id is the new order; the one it replaces is old_order_id"))
# The public trade carries no aggressor side (only both display order ids).
TRADE = mapped(TRADE, Maps("trades", {
    "instrument": "symbol", "price": "price", "size": "quantity", "side": "'unknown'",
    "trade_id": "trade_id"}, note="the public trade names no aggressor side"))
EXECUTION_T = mapped(EXECUTION_T, Maps("fills", {
    "instrument": "symbol", "side": _SIDE.format(c="side"), "price": "executed_price",
    "size": "executed_quantity",
    # liquidity_flag: the order "added" liquidity (maker) or "removed" it (taker)
    "liquidity": "CASE liquidity_flag WHEN 'added' THEN 'maker' WHEN 'removed' THEN 'taker' "
                 "ELSE liquidity_flag END",
    "trade_id": "trade_id", "order_id": "order_id", "status": "order_state"}))
POSITIONS = mapped(POSITIONS, Maps("positions", {
    "instrument": "_lv.symbol",
    "size": "CASE _lv.side WHEN 'sell' THEN -_lv.size ELSE _lv.size END",
    "entry_price": "_lv.average_entry_price", "mark_price": "_lv.mark_price",
    "unrealized_pnl": "_lv.upnl"}, unnest="positions"))

PROXY_TABLES = (COMMAND_RESPONSE, HEARTBEAT, ENTITIES_AND_RULES, SNAPSHOT, ORDER_ADDED,
                ORDER_DELETED, ORDER_UPDATED, ORDER_EXECUTED, TRADE, ORDER_ACCEPTED,
                ORDER_REJECTED, EXECUTION_T, CANCEL_ORDER, CANCEL_ALL_ORDERS, REFRESH_INTEREST,
                POSITIONS, BALANCES, TRADE_HISTORY, BULK_ORDER)

# --- Feeds (public, integer-scaled) ------------------------------------------------------------
# https://power-trade.github.io/api-docs-source/ws_feeds.html: prices and quantities are
# integers scaled by the entity's decimal places, which come from the REST entity summary.
# The adapter keeps the integer (``*_raw``) and the real value (raw / 10**decimals; null while
# the entity's decimals are unknown).

FEED_TS = Fld("timestamp", "i", "venue time as sent (an integer; ns in the session API, "
              "µs in some Feeds examples)", "timestamp_raw")
FEED_COLS_TIME = (Col("time_ns", INT, "timestamp normalised to ns (µs values, < 1e17, are "
                      "multiplied by 1000); ts_event", "_time_ns"),)
FEED_SCALE = (
    Col("symbol", S, "from the REST entity summary", "_symbol"),
    Col("price_decimals", INT, "price decimal places used to scale (summary)", "_price_dp"),
    Col("quantity_decimals", INT, "quantity decimal places used to scale (summary)", "_qty_dp"),
    Col("rte", B, "came as the rte_* variant (decimal values added by the venue)", "_rte"),
)


def _scaled(wire: str, doc: str, qty: bool = False) -> tuple[Fld, Col]:
    return (Fld(wire, "i", f"{doc}, integer as sent (scaled)", f"{wire}_raw"),
            Col(wire, F, f"{doc}, real value: raw / 10**{'quantity' if qty else 'price'}"
                "_decimals", f"_{wire}"))


#: feed table name -> (wire key of a scaled integer, scaled by quantity decimals?)
SCALED: dict[str, tuple[tuple[str, bool], ...]] = {}


def _feed(msg: str, doc: str, scaled: Sequence[tuple[Fld, Col]], more: Sequence[Fld],
          key: tuple[str, ...]) -> Table:
    fields = (FEED_TS, TEID, MID, *[f for f, _ in scaled], *more)
    SCALED[f"{V}_feed_{msg}"] = tuple((f.wire, "quantity" in f.wire) for f, _ in scaled)
    return _t(msg, doc, fields, key, event_time="time_ns", unit="ns", prefix="feed_",
              added=(*[c for _, c in scaled], *FEED_COLS_TIME, *FEED_SCALE))


FEED_KEY = ("tradeable_entity_id_text", "market_id", "timestamp_raw")
FEED_TOP_OF_BOOK = _feed(
    "top_of_book", "Feeds: best bid and offer per entity.",
    (_scaled("buy_price", "best bid price"), _scaled("buy_quantity", "best bid size", True),
     _scaled("sell_price", "best ask price"), _scaled("sell_quantity", "best ask size", True)),
    (), FEED_KEY)
FEED_REFERENCE_PRICE = _feed(
    "reference_price", "Feeds: reference (index/mark) price per entity.",
    (_scaled("price", "reference price"),), (Fld("price_type", "s", "kind of reference price"),),
    (*FEED_KEY, "price_type"))
FEED_LAST_TRADE_PRICE = _feed(
    "last_trade_price", "Feeds: last traded price per entity.",
    (_scaled("price", "last trade price"),), (Fld("price_type", "s", "kind of price"),),
    (*FEED_KEY, "price_type"))

ENTITY_SUMMARY = _t(
    "entity_summary", "REST tradeable_entity/all/summary: one row per entity per fetch; "
    "supplies the decimal places that scale Feeds prices.",
    (Fld("id", "i", "tradeable_entity_id"), SYM,
     Fld("price_decimal_places", "i", "inferred name (session API's tradeable_entity); "
         "price_decimals is read too"),
     Fld("quantity_decimal_places", "i", "inferred name; quantity_decimals is read too"),
     Fld("status", "s"), Fld("tags", "sl"), Fld("product_type", "s"),
     Fld("base_asset", "s"), Fld("quote_asset", "s")),
    ("id", "symbol", "price_decimal_places", "quantity_decimal_places"), event_time=None,
    prefix="rest_", added=(Col("fetch_tag", S, "tag of the fetch", "_tag"),))

FEED_TOP_OF_BOOK = mapped(FEED_TOP_OF_BOOK, Maps("top_of_book", {
    "instrument": "symbol", "bid_price": "buy_price", "bid_size": "buy_quantity",
    "ask_price": "sell_price", "ask_size": "sell_quantity"}))
FEED_REFERENCE_PRICE = mapped(FEED_REFERENCE_PRICE, Maps("tickers", {
    "instrument": "symbol", "index_price": "CASE WHEN price_type = 'index' THEN price END",
    "mark_price": "CASE WHEN price_type = 'mark' THEN price END"}))
FEED_LAST_TRADE_PRICE = mapped(FEED_LAST_TRADE_PRICE, Maps("tickers", {
    "instrument": "symbol", "last_price": "price"}))
FEED_TABLES = (FEED_TOP_OF_BOOK, FEED_REFERENCE_PRICE, FEED_LAST_TRADE_PRICE)
TABLES = (*PROXY_TABLES, *FEED_TABLES, ENTITY_SUMMARY)
