"""Diffusal tables: one per channel and message type, every documented field.

Sources: https://docs.diffusal.xyz/docs/api/websocket (seed 002), /docs/api/private-websocket
(only its top was retrievable), /reference/ws (generated AsyncAPI, partly retrieved); see
``shared/venues/002-diffusal.md``. Where the docs give no field list (private channels, RFQ
sockets, REST bodies) the columns are the reading the docs support best, marked *inferred*
in their doc; whatever else the venue sends lands in ``extra``, so nothing is lost either way.

Conventions:
- ``stream`` is the envelope's channel key exactly as sent (lower case,
  ``btc-82000-c-1736409600@depth``); ``symbol`` is the payload's instrument (upper case,
  ``BTC-82000-C-1736409600``). Both are kept: they differ in case, and on the grouped streams
  (``btc@depth``) the stream does not name the instrument at all.
- Prices and sizes arrive as decimal strings ("Numeric values follow the same precision model
  as REST endpoints"): float64 for research plus ``<name>_text``, the string exactly as sent
  (inside book levels ``price_text``/``size_text``); see :mod:`recorder.exact`.
- 1e18-scaled integers (strikes, WAD prices in signed RFQ quotes) keep their exact string, with
  a ``*_f`` float beside it already divided by 1e18.
- Timestamps keep their raw value and, where the docs' examples fix it, the unit in the
  column name (``timestamp_ms``, ``timestamp_s``): the examples mix units per channel (depth
  in ms; trade, ticker, index and markets in s), and ``ts_event`` is derived per table with
  that table's unit. Where no example fixes the unit (the RFQ sockets, the private channels)
  the raw column says nothing of a unit and the unit is read per value from its magnitude
  (``event_ms`` / ``event_ns``, :func:`recorder.exact.epoch_ns`).
- ``type``: kept as a column wherever a table can hold several values of it (depth, markets,
  RFQ auctions and resolutions, quotes, every private channel); the tables fed by exactly one
  RFQ message type drop it (``ignore_keys``), their name says it.
- ``source`` says where a row came from: ``ws`` (a live stream), ``snapshot`` (the initial
  snapshot a stream sends after subscribe/connect), ``rest`` (REST hydration), ``mm`` (the
  market-maker socket). Rows from REST share the table of their stream counterpart.
- Keys starting with ``_`` are wire names set by the adapter, not the venue.
"""

from __future__ import annotations

import pyarrow as pa

from recorder.exact import decimals
from recorder.schema import Maps, Table, by_receipt_when_null, cols, extra_col, mapped

F, INT, S, B = pa.float64(), pa.int64(), pa.string(), pa.bool_()
V = "diffusal"

LEVEL = pa.struct([("price", F), ("size", F)])

STREAM = ("stream", S, "channel key as sent (lower case); null for non-multiplexed frames",
          "_stream")
SOURCE = ("source", S, "ws | snapshot | rest | mm: where the row came from", "_source")
SYMBOL = ("symbol", S, "instrument, upper case: UNDERLYING-STRIKE-C|P-EXPIRYUNIX")
RECEIPT = ("run_id", "conn_id", "recv_seq")  # control frames: each receipt is distinct
SERIES = ("series_id", S, "option series id (0x bytes32)", "seriesId")
PAIR = ("pair_id", S, "pair id (0x bytes32)", "pairId")
STRIKE = ("strike", S, "strike, 1e18-scaled integer, exact string")
STRIKE_F = ("strike_f", F, "strike / 1e18 as a float", "_strike_f")
EXPIRY = ("expiry_s", INT, "expiry, unix seconds", "expiry")
IS_CALL = ("is_call", B, "call (true) or put", "isCall")
# Units fixed by the docs' own examples (https://docs.diffusal.xyz/docs/api/websocket,
# "Channel Payloads"): @trade/@index `timestamp` and @ticker `lastTradeAt` are seconds
# (1711612800), @depth `timestamp` is ms (1711612800000).
TS_S = ("timestamp_s", INT, "venue time, epoch seconds (raw; the docs' unit here)", "timestamp")
SNAP = ("is_snapshot", B, "row came from the channel's initial snapshot", "_snapshot")


def _t(name: str, doc: str, columns: tuple, key: tuple[str, ...],
       event_time: str | None = None, unit: str = "ms", one_type: bool = False,
       version: int = 1) -> Table:
    declared = cols(*columns)
    # Every float column the venue sends is a decimal string: it gets its exact text (the
    # derived *_f columns, keys starting with _, do not). Such a table is version 2.
    exact = decimals(declared)
    return Table(name=f"{V}_{name}", venue=V, doc=doc, columns=(*exact, extra_col()),
                 dedup_key=key, event_time=event_time, event_time_unit=unit,
                 version=max(version, 2 if exact != declared else 1),
                 # Fed by exactly one RFQ message type: the table name says it.
                 ignore_keys=frozenset({"type"}) if one_type else frozenset())


# --- /ws/public market data -------------------------------------------------------------------

DEPTH = _t(
    "depth", "Order book: the snapshot a subscribe sends, then diffs with only the changed "
    "levels (size 0 removes a level); REST orderbook snapshots (source = 'rest') in the same "
    "table. Instrument and grouped (<underlying>@depth) streams both land here. Rebuild a book "
    "with queries/diffusal_book_at.sql.",
    (STREAM, ("type", S, "snapshot | diff"), SYMBOL,
     ("bids", pa.list_(LEVEL), "snapshot: every level; diff: changed levels"),
     ("asks", pa.list_(LEVEL), "as bids"),
     ("sequence", INT, "per-symbol sequence; diffs follow +1"),
     ("timestamp_ms", INT, "venue time, epoch ms (raw; depth is in ms)", "timestamp"), SOURCE),
    # The key is (symbol, sequence); `type` is added because a snapshot taken right
    # after diff N carries sequence N too, and both rows are real.
    ("symbol", "type", "sequence"), event_time="timestamp_ms", unit="ms")

TICKER = _t(
    "ticker", "Best bid/ask, index price and open interest per instrument (no mark price or "
    "Greeks: clients compute those from @index). ts_event is lastTradeAt, the only venue time "
    "the ticker carries.",
    (STREAM, SYMBOL, ("index_price", F, "", "indexPrice"), ("best_bid", F, "", "bestBid"),
     ("best_ask", F, "", "bestAsk"), ("best_bid_size", F, "", "bestBidSize"),
     ("best_ask_size", F, "", "bestAskSize"), ("open_interest", F, "", "openInterest"),
     ("last_trade_at_s", INT, "last trade time, epoch seconds (raw; the docs' unit)",
      "lastTradeAt"), SOURCE),
    ("symbol", "last_trade_at_s", "hash(index_price, best_bid, best_ask, best_bid_size, "
     "best_ask_size, open_interest)"), event_time="last_trade_at_s", unit="s")

TRADE = _t(
    "trade", "Executed trades. The same trade arrives on <symbol>@trade and <underlying>@trade; "
    "the dedup key ignores the stream, so the _dedup view keeps one.",
    (STREAM, ("trade_id", S, "venue trade id", "id"), SYMBOL, ("price", F, ""), ("size", F, ""),
     ("side", S, "buy | sell (taker side)"), TS_S, SOURCE),
    ("symbol", "trade_id"), event_time="timestamp_s", unit="s")

INDEX = _t(
    "index", "Spot price and implied volatility per pair (inputs for client-side "
    "Black-Scholes).",
    (STREAM, ("pair", S, "pair symbol from the stream key (eth-usdt); the payload has none",
              "_pair"),
     ("spot_price", F, "", "spotPrice"), ("volatility", F, "implied vol, decimal fraction"),
     TS_S),
    ("pair", "timestamp_s", "hash(spot_price, volatility)"), event_time="timestamp_s", unit="s")

MARKETS = _t(
    "markets", "global@markets: series_created and series_settled. No venue time is sent.",
    (STREAM, ("type", S, "series_created | series_settled"), SERIES, PAIR, EXPIRY, STRIKE,
     STRIKE_F, IS_CALL,
     ("settlement_price", S, "series_settled only, exact string as sent", "settlementPrice"),
     ("settlement_price_f", F, "settlement price as a float (divided by 1e18 when sent as a "
      "scaled integer like the strike; inferred)", "_settlement_price_f"),
     ("derived_symbol", S, "instrument symbol built from pair, strike, put/call and expiry",
      "_symbol")),
    ("type", "series_id"))

# --- control plane (public and private) -------------------------------------------------------

REPLY = _t(
    "reply", "A control reply {result, id}: SUBSCRIBE/UNSUBSCRIBE (result null) and "
    "LIST_SUBSCRIPTIONS (the channel list). method and params are what we sent with that id.",
    (("request_id", INT, "echoed id", "id"), ("result", S, "the result, as JSON"),
     ("method", S, "our request's method", "_method"),
     ("params", S, "our request's params, as JSON", "_params")), RECEIPT)

ERROR = _t(
    "error", "An error reply {error:{code,msg}, id}: 4029 rate/subscription limits, rejected "
    "subscribes, AUTH failures (also in session_events).",
    (("request_id", INT, "echoed id", "id"), ("code", INT, "venue error code", "_code"),
     ("msg", S, "venue text", "_msg"), ("method", S, "our request's method", "_method"),
     ("params", S, "our request's params, as JSON", "_params")), RECEIPT)

AUTH = _t(
    "auth", "Private AUTH accepted: either the seed's {status: 'authenticated'} frame or the "
    "reference's {result: AuthSuccessResult, id} (its fields were not retrievable; kept as "
    "JSON).",
    (("request_id", INT, "echoed id", "id"), ("status", S, "'authenticated'"),
     ("result", S, "AuthSuccessResult as JSON, when sent that way", "_result"),
     ("shape", S, "status | result: which documented reply shape arrived", "_shape")), RECEIPT)

# --- REST discovery ---------------------------------------------------------------------------

PAIR_T = _t(
    "pair", "GET /api/markets/pairs, once per run (and on refresh).",
    (PAIR, ("symbol", S, "pair symbol (BTC-USDT)"), ("underlying", S, ""), ("quote", S, "")),
    ("run_id", "pair_id"))

INSTRUMENT = _t(
    "instrument", "Instruments discovered over REST: GET /api/markets and "
    "/api/markets/contracts (endpoint says which). Fields beyond the symbol are inferred.",
    (("endpoint", S, "markets | contracts", "_endpoint"), SYMBOL, SERIES, PAIR,
     ("underlying", S, ""), STRIKE, STRIKE_F, EXPIRY, IS_CALL, ("status", S, "")),
    ("run_id", "endpoint", "symbol"))

REST_RESPONSE = _t(
    "rest", "One row per REST response (hydration, resyncs), failures included: which "
    "request, its HTTP status and how many items it held. The items themselves are rows of "
    "the stream tables with source = 'rest'.",
    (("tag", S, "pairs | markets | contracts | orderbook:<symbol> | active-auctions | "
      "quotes:<requestId>", "_tag"), ("status", INT, "HTTP status; 0 = no answer", "_status"),
     ("item_count", INT, "rows the body held (1 for an orderbook)", "_count"),
     ("error", S, "failure text (first 500 characters of the body)", "_error")), RECEIPT)

# --- RFQ --------------------------------------------------------------------------------------

_RFQ_TS = ("timestamp_ms", INT, "venue time as sent (unit inferred: the reference types it "
           "only as number; event_ms reads each value's unit from its magnitude)", "timestamp")
_RFQ_EV = ("event_ms", INT, "timestamp normalised to ms (s, ms, us or ns read by magnitude)",
           "_event_ms")
_TYPE = ("type", S, "the payload's type as sent (several kinds share this table)")

RFQ_AUCTION = _t(
    "rfq_auction", "RFQ auction requests: rfq_request on /ws/rfq/stream, global@rfq and "
    "/ws/rfq/mm (source = 'mm'), the stream's initial snapshot (source = 'snapshot') and GET "
    "/api/rfq/active-auctions (source = 'rest'). Beyond requestId, taker, pairId and strike "
    "the fields are inferred.",
    (STREAM, ("type", S, "rfq_request (or the venue's alias)"),
     ("request_id", S, "", "requestId"), ("taker", S, "taker address"), PAIR, SERIES, SYMBOL,
     STRIKE, STRIKE_F, EXPIRY, IS_CALL, ("size", F, "contracts"),
     ("taker_is_buying", B, "", "takerIsBuying"),
     ("auction_ends_at_ms", INT, "epoch ms", "auctionEndsAt"), _RFQ_TS, _RFQ_EV, SOURCE),
    ("request_id",), event_time="event_ms")

RFQ_RESOLUTION = _t(
    "rfq_resolution", "Auction resolved (once per requestId): /ws/rfq/stream, global@rfq and "
    "the taker's /ws/rfq/quotes. Fields inferred.",
    (STREAM, ("type", S, "auction_resolved (or the venue's alias)"),
     ("request_id", S, "", "requestId"), ("status", S, "filled | expired | no_quotes"),
     ("winner", S, "winning mmm address"), ("price", S, "winning premium, WAD, exact"),
     ("price_f", F, "price / 1e18", "_price_f"), ("quote_count", INT, "", "quoteCount"),
     _RFQ_TS, _RFQ_EV, SOURCE),
    ("request_id",), event_time="event_ms")

RFQ_QUOTE = _t(
    "rfq_quote", "Signed MMM quotes for a request: /ws/rfq/quotes 'quote' frames, private "
    "rfq.quotes.<requestId> and GET /api/rfq/quotes/:requestId (source = 'rest'). The EIP-712 "
    "quote fields are mmm, taker, seriesId, takerIsBuying, price (WAD) plus size, nonce and "
    "expiry (those names inferred).",
    (STREAM, _TYPE, ("request_id", S, "", "requestId"),
     ("mmm", S, "quote signer (market maker)"),
     ("taker", S, "taker, or the zero address for anyone"), SERIES,
     ("taker_is_buying", B, "", "takerIsBuying"),
     ("price", S, "premium per contract, WAD 1e18, exact"),
     ("price_f", F, "price / 1e18", "_price_f"), ("size", S, "WAD 1e18, exact"),
     ("size_f", F, "size / 1e18", "_size_f"), ("nonce", S, "MMM on-chain nonce, exact"),
     ("expiry_s", INT, "quote expiry, unix seconds", "expiry"), ("signature", S, ""),
     _RFQ_TS, _RFQ_EV, SOURCE),
    ("request_id", "mmm", "nonce", "signature"), event_time="event_ms", version=2)

# A socket's own messages with the venue's time: one per (connection, time), so the copy a
# second recorder's socket of the same name received is absorbed; without a time, per receipt.
_CONN_TIME = ("conn_id", "event_ms", *by_receipt_when_null("event_ms"))

RFQ_SNAPSHOT = _t(
    "rfq_snapshot", "The active-auction snapshot /ws/rfq/stream sends after connected; its "
    "auctions are in diffusal_rfq_auction with source = 'snapshot'. Shape inferred.",
    (("auction_count", INT, "", "_count"), _RFQ_TS, _RFQ_EV), _CONN_TIME, event_time="event_ms",
    one_type=True)

RFQ_CONNECTED = _t(
    "rfq_connected", "'connected' greeting of /ws/rfq/stream and /ws/rfq/quotes.",
    (("request_id", S, "quotes socket: the request it follows", "requestId"), _RFQ_TS,
     _RFQ_EV), _CONN_TIME, event_time="event_ms", one_type=True)

RFQ_HEARTBEAT = _t(
    "rfq_heartbeat", "Application heartbeats of the three RFQ sockets (interval undocumented).",
    (_RFQ_TS, _RFQ_EV), _CONN_TIME, event_time="event_ms", one_type=True)

RFQ_AUTH_SUCCESS = _t(
    "rfq_auth_success", "/ws/rfq/mm accepted our handshake credentials.",
    (("address", S, "MMM address (inferred)"), _RFQ_TS, _RFQ_EV), RECEIPT,
    event_time="event_ms", one_type=True)

RFQ_QUOTE_REJECTED = _t(
    "rfq_quote_rejected", "/ws/rfq/mm: one of this MMM's quotes was rejected. Fields inferred.",
    (("request_id", S, "", "requestId"), ("reason", S, ""), ("nonce", S, "exact"), _RFQ_TS,
     _RFQ_EV), ("request_id", "nonce", "reason"), event_time="event_ms", one_type=True)

RFQ_TRADE_FILLED = _t(
    "rfq_trade_filled", "/ws/rfq/mm: a quote of this MMM was filled on-chain. Fields inferred.",
    (("request_id", S, "", "requestId"), ("mmm", S, ""), ("taker", S, ""), SERIES,
     ("price", S, "WAD, exact"), ("price_f", F, "price / 1e18", "_price_f"),
     ("size", S, "WAD, exact"), ("size_f", F, "size / 1e18", "_size_f"),
     ("tx_hash", S, "", "txHash"), _RFQ_TS, _RFQ_EV), ("request_id", "tx_hash"),
    event_time="event_ms", one_type=True)

# --- /ws/private account channels (payloads inferred: the schema page was not retrievable) -----

# Every private table keeps the payload's `type` (the rfq channel carries several kinds of
# event) and reads its time unit per value: no example fixes it for these channels (the
# private-websocket page's schemas were not retrievable, 002-diffusal.md), and the public
# examples mix seconds and ms, so a fill's `timestamp` sent in seconds must not become 1970.
_UPD = ("updated_at", INT, "updatedAt as sent (unit undocumented: see event_ns)", "updatedAt")
_CREATED = ("created_at", INT, "createdAt as sent (unit undocumented)", "createdAt")
_TS = ("timestamp", INT, "as sent (unit undocumented: see event_ns)", "timestamp")
_EV = ("event_ns", INT, "the row's venue time (updatedAt, else timestamp) in ns since the "
       "epoch, the unit read from its magnitude (s, ms, us or ns); ts_event", "_event_ns")
_PRIV = dict(event_time="event_ns", unit="ns", version=2)

POSITION = _t(
    "position", "Private 'position': initial snapshot rows (is_snapshot) then updates.",
    (STREAM, SNAP, _TYPE, SYMBOL, SERIES, ("size", F, "signed contracts"),
     ("entry_price", F, "", "entryPrice"), ("realized_pnl", F, "", "realizedPnl"),
     ("unrealized_pnl", F, "", "unrealizedPnl"), _UPD, _EV),
    ("symbol", "updated_at", "size"), **_PRIV)

ORDER = _t(
    "order", "Private 'order': open orders snapshot, then every order state change.",
    (STREAM, SNAP, _TYPE, ("order_id", S, "", "orderId"), SYMBOL, ("side", S, "buy | sell"),
     ("price", F, ""), ("size", F, ""), ("filled_size", F, "", "filledSize"),
     ("status", S, "open | partially_filled | filled | cancelled"), _CREATED, _UPD, _EV),
    ("order_id", "status", "filled_size", "updated_at"), **_PRIV)

FILL = _t(
    "fill", "Private 'fill': recent fills snapshot, then each fill.",
    (STREAM, SNAP, _TYPE, ("fill_id", S, "", "fillId"), ("order_id", S, "", "orderId"), SYMBOL,
     ("side", S, ""), ("price", F, ""), ("size", F, ""), ("fee", F, ""),
     ("liquidity", S, "maker | taker"), ("tx_hash", S, "", "txHash"), _TS, _EV),
    ("fill_id",), **_PRIV)

COLLATERAL = _t(
    "collateral", "Private 'collateral': balances per asset.",
    (STREAM, SNAP, _TYPE, ("asset", S, ""), ("balance", F, ""), ("available", F, ""),
     ("locked", F, ""), _UPD, _EV),
    ("asset", "updated_at", "balance"), **_PRIV)

ACCOUNT_RFQ = _t(
    "account_rfq", "Private 'rfq': this account's RFQs; each new requestId gets quotes "
    "hydrated over REST, rfq.quotes.<id> on /ws/private and its own /ws/rfq/quotes socket. "
    "The channel carries several kinds of event: `type` tells them apart.",
    (STREAM, SNAP, _TYPE, ("request_id", S, "", "requestId"),
     ("status", S, "open | filled | expired"), SERIES, SYMBOL, ("size", F, ""),
     ("taker_is_buying", B, "", "takerIsBuying"), _CREATED, _UPD, _EV),
    ("request_id", "type", "status", "updated_at"), **_PRIV)

LIQUIDATION = _t(
    "liquidation", "Private 'liquidation'.",
    (STREAM, SNAP, _TYPE, ("liquidation_id", S, "", "liquidationId"), SYMBOL, ("size", F, ""),
     ("price", F, ""), ("penalty", F, ""), _TS, _EV),
    ("liquidation_id",), **_PRIV)

PORTFOLIO = _t(
    "portfolio", "Private 'portfolio': account-level margin summary.",
    (STREAM, SNAP, _TYPE, ("equity", F, ""), ("margin_used", F, "", "marginUsed"),
     ("available_margin", F, "", "availableMargin"),
     ("unrealized_pnl", F, "", "unrealizedPnl"), _UPD, _EV),
    ("updated_at", "equity", "margin_used"), **_PRIV)

PRIVATE_SNAPSHOT = _t(
    "private_snapshot", "One row per initial snapshot on /ws/private (a channel's, or a "
    "rfq.quotes.<id> stream's), even an empty one: the account's state at that moment is "
    "exactly the is_snapshot rows of the same receipt (same conn_id, recv_seq).",
    (STREAM, ("item_count", INT, "rows the snapshot held", "_count"), _TS, _EV),
    ("conn_id", "stream", "event_ns", *by_receipt_when_null("event_ns")), one_type=True,
    **_PRIV)

# --- cross-venue views (recorder.schema.CROSS_VIEWS) -----------------------------------------

_SIDE = "CASE {c} WHEN 'buy' THEN 'buy' WHEN 'sell' THEN 'sell' ELSE 'unknown' END"
_TAKER = "CASE taker_is_buying WHEN true THEN 'buy' WHEN false THEN 'sell' ELSE 'unknown' END"
# Snapshots (stream or REST) and diffs ordered by `sequence`; a diff level of size 0 removes it.
DEPTH = mapped(DEPTH, *(Maps("book_updates", {
    "instrument": "symbol", "side": f"'{side}'", "price": "_lv.price", "size": "_lv.size",
    "is_snapshot": "type = 'snapshot'", "sequence": "sequence", "level": "_lv_i",
    "action": "'set'"}, unnest=levels) for side, levels in (("bid", "bids"), ("ask", "asks"))))
TICKER = mapped(TICKER, Maps("top_of_book", {
    "instrument": "symbol", "bid_price": "best_bid", "bid_size": "best_bid_size",
    "ask_price": "best_ask", "ask_size": "best_ask_size"}), Maps("tickers", {
        "instrument": "symbol", "index_price": "index_price", "open_interest": "open_interest"}))
TRADE = mapped(TRADE, Maps("trades", {
    "instrument": "symbol", "price": "price", "size": "size",
    "side": _SIDE.format(c="side"), "trade_id": "trade_id"}))
INDEX = mapped(INDEX, Maps("tickers", {"instrument": "pair", "index_price": "spot_price",
                                       "iv": "volatility"},
                           note="iv: the pair's volatility, as the index stream sends it"))
RFQ_AUCTION = mapped(RFQ_AUCTION, Maps("rfq_events", {
    "rfq_id": "request_id", "event": "type", "status": "'open'", "instrument": "symbol",
    "side": _TAKER, "size": "size"}))
RFQ_RESOLUTION = mapped(RFQ_RESOLUTION, Maps("rfq_events", {
    "rfq_id": "request_id", "event": "type", "status": "status", "price": "price_f"}))
RFQ_TRADE_FILLED = mapped(RFQ_TRADE_FILLED, Maps("rfq_events", {
    "rfq_id": "request_id", "event": "'trade_filled'", "status": "'filled'", "price": "price_f",
    "size": "size_f", "tx_hash": "tx_hash"}))
ACCOUNT_RFQ = mapped(ACCOUNT_RFQ, Maps("rfq_events", {
    "rfq_id": "request_id", "event": "'account_' || type", "status": "status",
    "instrument": "symbol", "side": _TAKER, "size": "size"}))
RFQ_QUOTE = mapped(RFQ_QUOTE, Maps("quote_events", {
    # a quote has no id of its own: the MM's signed nonce names it
    "quote_id": "nonce", "rfq_id": "request_id", "event": "'quote'", "status": "'open'",
    "side": "CASE taker_is_buying WHEN true THEN 'sell' WHEN false THEN 'buy' ELSE 'unknown' END",
    "price": "price_f", "size": "size_f", "maker": "mmm"}))
RFQ_QUOTE_REJECTED = mapped(RFQ_QUOTE_REJECTED, Maps("quote_events", {
    "quote_id": "nonce", "rfq_id": "request_id", "event": "'quote_rejected'",
    "status": "'rejected: ' || coalesce(reason, '')"}))
FILL = mapped(FILL, Maps("fills", {
    "instrument": "symbol", "side": _SIDE.format(c="side"), "price": "price", "size": "size",
    "fee": "fee", "liquidity": "liquidity", "trade_id": "fill_id", "order_id": "order_id",
    "tx_hash": "tx_hash"}))
POSITION = mapped(POSITION, Maps("positions", {
    "instrument": "symbol", "size": "size", "entry_price": "entry_price",
    "unrealized_pnl": "unrealized_pnl", "realized_pnl": "realized_pnl"}))

TABLES = (DEPTH, TICKER, TRADE, INDEX, MARKETS, REPLY, ERROR, AUTH, PAIR_T, INSTRUMENT,
          REST_RESPONSE,
          RFQ_AUCTION, RFQ_RESOLUTION, RFQ_QUOTE, RFQ_SNAPSHOT, RFQ_CONNECTED, RFQ_HEARTBEAT,
          RFQ_AUTH_SUCCESS, RFQ_QUOTE_REJECTED, RFQ_TRADE_FILLED, POSITION, ORDER, FILL,
          COLLATERAL, ACCOUNT_RFQ, LIQUIDATION, PORTFOLIO, PRIVATE_SNAPSHOT)

#: private channel -> table
PRIVATE_TABLES: dict[str, Table] = {
    "position": POSITION, "order": ORDER, "fill": FILL, "collateral": COLLATERAL,
    "rfq": ACCOUNT_RFQ, "liquidation": LIQUIDATION, "portfolio": PORTFOLIO,
}
