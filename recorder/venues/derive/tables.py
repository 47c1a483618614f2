"""Derive tables: one per channel family (public and private), plus the answers to our own
requests (instruments, currencies, every JSON-RPC response).

Sources of the shapes (see ``shared/venues/001-derive.md``): the v2 generated models of the
official SDK (derive-py before v3, ``derive_client/data_types/generated_models.py`` and
``channel_models.py``), the v3 AsyncAPI spec (``specs/subscriptions.json``, Derive v3 API
0.2.0) and the reference pages at https://docs.derive.xyz/reference/ .

Conventions:
- Money fields are decimal strings on the wire ("a string or JSON number is accepted", v3).
  Each is a float64 column for research plus ``<name>_text``, the value exactly as sent
  (nested structs: a ``<member>_text`` sibling); see :mod:`recorder.exact`. The
  adapter converts them from the schema (``shaper``).
- Timestamps are epoch milliseconds (int64) as sent ("timestamps are ms integers unless
  stated otherwise"); ``ts_event`` comes from the documented event time of each table. The
  exception is ``margin.watch`` ``valuation_timestamp``, whose unit is read per value.
- Keys starting with ``_`` are set by the adapter from the channel name or the request, not by
  the venue (``_channel`` on every data row).
- v2 and v3 share every table: v3-only fields (``batch_status``, ``op_uuid``, ``rfq_id`` on
  trades, ``signed_limit_price``, algo fields) are nullable columns, and ``nonce`` is a string
  column because v3 sends it as a string (v2 as an integer; both land exactly).
- Keys the tables do not declare land in ``extra`` as JSON, at any depth (nested ones under
  their path, ``option_pricing.x``), like every venue.
"""

from __future__ import annotations

import pyarrow as pa

from recorder.exact import decimals
from recorder.schema import Maps, Table, cols, extra_col, mapped

F, INT, S, B = pa.float64(), pa.int64(), pa.string(), pa.bool_()
V = "derive"

LEVEL = pa.struct([("price", F), ("amount", F)])
LEG_PRICED = pa.struct([("instrument_name", S), ("direction", S), ("amount", F), ("price", F)])
LEG_UNPRICED = pa.struct([("instrument_name", S), ("direction", S), ("amount", F)])
OPTION_PRICING = pa.struct([(n, F) for n in (
    "ask_iv", "bid_iv", "delta", "discount_factor", "forward_price", "gamma", "iv", "mark_price",
    "rho", "theta", "vega")])
STATS = pa.struct([("contract_volume", F), ("high", F), ("low", F), ("num_trades", F),
                   ("open_interest", F), ("percent_change", F), ("usd_change", F)])
ERC20_DETAILS = pa.struct([("decimals", INT), ("borrow_index", F), ("supply_index", F),
                           ("underlying_erc20_address", S)])
OPTION_DETAILS = pa.struct([("expiry", INT), ("index", S), ("option_type", S), ("strike", F),
                            ("settlement_price", F)])
PERP_DETAILS = pa.struct([("aggregate_funding", F), ("funding_rate", F), ("index", S),
                          ("max_rate_per_hour", F), ("min_rate_per_hour", F),
                          ("static_interest_rate", F)])
OI_STATS = pa.struct([("current_open_interest", F), ("interest_cap", F),
                      ("manager_currency", S)])

# ticker_slim: the venue's one-letter keys -> named fields (TickerSlimSchema and the v3
# AsyncAPI descriptions of DailyTradingStatistics and OptionPricing).
SLIM_STATS_NAMES = {"c": "contract_volume", "h": "high", "l": "low", "n": "num_trades",
                    "oi": "open_interest", "p": "percent_change", "pr": "premium_volume",
                    "v": "notional_volume"}
SLIM_PRICING_NAMES = {"ai": "ask_iv", "bi": "bid_iv", "d": "delta", "df": "discount_factor",
                      "f": "forward_price", "g": "gamma", "i": "iv", "m": "mark_price",
                      "r": "rho", "t": "theta", "v": "vega"}
SLIM_STATS = pa.struct([(n, INT if n == "num_trades" else F) for n in SLIM_STATS_NAMES.values()])
SLIM_PRICING = pa.struct([(n, F) for n in SLIM_PRICING_NAMES.values()])

CHANNEL = ("channel", S, "subscription channel the row arrived on", "_channel")
RECEIPT = ("run_id", "conn_id", "recv_seq")


def _t(name: str, doc: str, columns: tuple, key: tuple[str, ...],
       event_time: str | None = None, unit: str = "ms", version: int = 1) -> Table:
    # unit: ms, as the reference pages give Derive's times ("Creation timestamp in ms since
    # Unix epoch", https://docs.derive.xyz/reference/private-send_quote, seed 001; the channel
    # payloads alike, shared/venues/001-derive.md "timestamps are ms integers unless stated").
    declared = cols(*columns)
    # Every float column the venue sends is a decimal: it gets its exact text. A table that
    # gained texts is version 2 (issue 11).
    exact = decimals(declared)
    return Table(name=f"{V}_{name}", venue=V, doc=doc, columns=(*exact, extra_col()),
                 dedup_key=key, event_time=event_time, event_time_unit=unit,
                 version=max(version, 2 if exact != declared else 1))


ORDERBOOK = _t(
    "orderbook", "orderbook.{instrument}.{group}.{depth}: a full top-N snapshot per message "
    "(not a diff). A skipped publish_id is a session_events gap (expected/received).",
    (CHANNEL, ("instrument_name", S, ""),
     ("price_group", INT, "price-level aggregation from the channel name (1, 10, 100)",
      "_group"),
     ("depth", INT, "levels per side from the channel name (1, 10, 20, 100)", "_depth"),
     ("publish_id", INT, "incremented for each publish of this book"),
     ("timestamp", INT, "book time, epoch ms"),
     ("bids", pa.list_(LEVEL), "best first; v2 sends [price, amount] pairs, v3 objects"),
     ("asks", pa.list_(LEVEL), "best first")),
    ("instrument_name", "price_group", "depth", "publish_id"), "timestamp")

TICKER = _t(
    "ticker", "ticker.{instrument}.{interval}: the full instrument ticker, flattened; nested "
    "option pricing, stats and instrument details are structs.",
    (CHANNEL, ("interval", INT, "publish interval ms from the channel name", "_interval"),
     ("timestamp", INT, "publish time, epoch ms (data.timestamp)", "_timestamp"),
     ("ticker_timestamp", INT, "instrument_ticker.timestamp, epoch ms", "timestamp"),
     ("instrument_name", S, ""), ("instrument_type", S, "erc20|option|perp"),
     ("best_bid_price", F, ""), ("best_bid_amount", F, ""), ("best_ask_price", F, ""),
     ("best_ask_amount", F, ""), ("mark_price", F, ""), ("index_price", F, ""),
     ("min_price", F, "lowest price an order may have now"),
     ("max_price", F, "highest price an order may have now"),
     ("five_percent_bid_depth", F, ""), ("five_percent_ask_depth", F, ""),
     ("open_interest", pa.map_(S, pa.list_(OI_STATS)), "per margin manager"),
     ("stats", STATS, "24 h aggregate trading stats"),
     ("option_pricing", OPTION_PRICING, "options only"),
     ("option_details", OPTION_DETAILS, "options only"),
     ("perp_details", PERP_DETAILS, "perps only"), ("erc20_details", ERC20_DETAILS, "erc20 only"),
     ("amount_step", F, ""), ("minimum_amount", F, ""), ("maximum_amount", F, ""),
     ("tick_size", F, ""), ("base_fee", F, ""), ("maker_fee_rate", F, ""),
     ("taker_fee_rate", F, ""), ("mark_price_fee_rate_cap", F, ""),
     ("fifo_min_allocation", F, ""), ("pro_rata_amount_step", F, ""),
     ("pro_rata_fraction", F, ""), ("base_asset_address", S, ""),
     ("base_asset_sub_id", S, "exact uint256 id"), ("base_currency", S, ""),
     ("quote_currency", S, ""), ("is_active", B, ""), ("scheduled_activation", INT, "epoch s"),
     ("scheduled_deactivation", INT, "epoch s")),
    ("instrument_name", "interval", "timestamp"), "timestamp")

TICKER_SLIM = _t(
    "ticker_slim", "ticker_slim.{instrument}.{interval}: the slim ticker, its one-letter keys "
    "mapped to named columns (stats and option_pricing fields too).",
    (CHANNEL, ("instrument_name", S, "from the channel name", "_instrument"),
     ("interval", INT, "publish interval ms from the channel name", "_interval"),
     ("timestamp", INT, "publish time, epoch ms (data.timestamp)", "_timestamp"),
     ("snapshot_ts", INT, "t: snapshot time, epoch ms", "t"),
     ("best_bid_price", F, "b", "b"), ("best_bid_amount", F, "B", "B"),
     ("best_ask_price", F, "a", "a"), ("best_ask_amount", F, "A", "A"),
     ("mark_price", F, "M", "M"), ("index_price", F, "I", "I"),
     ("funding_rate", F, "f: hourly funding rate (perps)", "f"),
     ("min_price", F, "minp", "minp"), ("max_price", F, "maxp", "maxp"),
     ("stats", SLIM_STATS, "stats{c,h,l,n,oi,p,pr,v} with named fields"),
     ("option_pricing", SLIM_PRICING, "option_pricing{ai,bi,d,df,f,g,i,m,r,t,v} named")),
    ("instrument_name", "interval", "snapshot_ts"), "timestamp")

# Public trades. trades.{instrument} and trades.{type}.{currency} carry TradePublicResponse;
# the .{tx_status} channel carries TradeSettledPublicResponse (wallet, fees, tx_hash...). In
# v3 every public trade is the PublicTrade schema (a superset). One column set serves all.
_TRADE = (
    ("trade_id", S, "unique; the same trade appears on several trade channels"),
    ("instrument_name", S, ""), ("direction", S, "buy|sell (taker side)"),
    ("trade_price", F, ""), ("trade_amount", F, ""), ("mark_price", F, ""),
    ("index_price", F, ""), ("timestamp", INT, "epoch ms"),
    ("quote_id", S, "set when the trade came from an RFQ quote"), ("rfq_id", S, "v3"),
    ("subaccount_id", INT, "settled channel"), ("wallet", S, "settled channel"),
    ("liquidity_role", S, "maker|taker (settled channel)"), ("trade_fee", F, ""),
    ("extra_fee", F, ""), ("expected_rebate", F, ""), ("realized_pnl", F, ""),
    ("realized_pnl_excl_fees", F, ""), ("tx_hash", S, ""),
    ("tx_status", S, "v2: requested|pending|settled|reverted|ignored|timed_out"),
    ("batch_status", S, "v3: Batching|Executing|Proving|Settling|Settled or ...Error"),
    ("op_uuid", S, "v3 operation id"))
_BY_CCY = (("instrument_type", S, "from the channel name", "_type"),
           ("currency", S, "from the channel name", "_currency"))

TRADES = _t("trades", "trades.{instrument}: public trades, one row per element of data.",
            (CHANNEL, *_TRADE), ("trade_id",), "timestamp")
TRADES_BY_CURRENCY = _t(
    "trades_by_currency", "trades.{instrument_type}.{currency}: public trades of every "
    "instrument of a type and currency.", (CHANNEL, *_BY_CCY, *_TRADE), ("trade_id",),
    "timestamp")
TRADES_SETTLED = _t(
    "trades_settled", "trades.{instrument_type}.{currency}.{tx_status}: trades filtered by "
    "settlement status (v3: batch_status); each status change of a trade is its own row.",
    (CHANNEL, *_BY_CCY,
     ("status_filter", S, "the channel's tx_status / batch_status segment", "_status"), *_TRADE),
    ("trade_id", "coalesce(tx_status, batch_status)"), "timestamp")

SPOT_FEED = _t(
    "spot_feed", "spot_feed.{currency}: one row per currency in data.feeds (v3 spot_feed.ALL "
    "carries several).",
    (CHANNEL, ("timestamp", INT, "publish time, epoch ms", "_timestamp"),
     ("currency", S, "key of data.feeds", "_currency"), ("price", F, ""), ("confidence", F, ""),
     ("price_prev_daily", F, ""), ("confidence_prev_daily", F, ""),
     ("timestamp_prev_daily", INT, "epoch ms")),
    ("currency", "timestamp"), "timestamp")

AUCTIONS = _t(
    "auctions", "auctions.watch: liquidation auctions, one row per element.",
    (CHANNEL, ("subaccount_id", INT, "subaccount being auctioned"),
     ("state", S, "ongoing|ended"), ("timestamp", INT, "epoch ms"),
     ("details", pa.struct([
         ("estimated_bid_price", F), ("estimated_discount_pnl", F), ("estimated_mtm", F),
         ("estimated_percent_bid", F), ("last_seen_trade_id", INT), ("margin_type", S),
         ("min_cash_transfer", F), ("min_price_limit", F),
         ("subaccount_balances", pa.map_(S, F)), ("currency", S)]),
      "null once ended. subaccount_balances: 'balance per asset name, as a decimal string' "
      "(v3 AsyncAPI AuctionDetails); v3 may send the whole map as a JSON string, read the "
      "same")),
    ("subaccount_id", "timestamp", "state"), "timestamp")

_COLLATERAL = pa.struct([("asset_name", S), ("asset_type", S), ("amount", F),
                         ("initial_margin", F), ("maintenance_margin", F), ("mark_price", F),
                         ("mark_value", F)])
_POSITION = pa.struct([("instrument_name", S), ("instrument_type", S), ("amount", F),
                       ("delta", F), ("gamma", F), ("theta", F), ("vega", F),
                       ("index_price", F), ("mark_price", F), ("mark_value", F),
                       ("initial_margin", F), ("maintenance_margin", F),
                       ("liquidation_price", F)])
MARGIN_WATCH = _t(
    "margin_watch", "margin.watch: margin state of accounts, one row per element.",
    (CHANNEL, ("subaccount_id", INT, ""), ("currency", S, ""), ("margin_type", S, "PM|SM|PM2"),
     ("initial_margin", F, ""), ("maintenance_margin", F, ""), ("subaccount_value", F, ""),
     ("valuation_timestamp", INT, "as sent; its unit is read per value (valuation_ns)"),
     ("valuation_ns", INT, "valuation_timestamp as ns since the epoch, the unit read from its "
      "magnitude (s, ms, us or ns); ts_event", "_valuation_ns"),
     ("collaterals", pa.list_(_COLLATERAL), ""), ("positions", pa.list_(_POSITION), "")),
    # valuation_timestamp: unlike the other Derive times its unit is stated nowhere. The v3
    # AsyncAPI (derive-py specs/subscriptions.json, MarginWatchResult) types it only as int64,
    # and the documented frames issue 11's corpus holds carry epoch *seconds*, which read as
    # ms land in 1970. So the unit is read per value from its magnitude (exact.epoch_ns).
    ("subaccount_id", "valuation_timestamp"), "valuation_ns", unit="ns", version=3)

# --- private channels (after public/login) ---------------------------------------------------

SUBACCOUNT = ("subaccount_id", INT, "")
ORDERS = _t(
    "orders", "{subaccount_id}.orders: own order updates, one row per element.",
    (CHANNEL, SUBACCOUNT, ("order_id", S, ""), ("instrument_name", S, ""),
     ("direction", S, ""), ("order_type", S, "limit|market"),
     ("time_in_force", S, "gtc|post_only|fok|ioc"),
     ("order_status", S, "open|filled|rejected|cancelled|expired|untriggered|algo_active"),
     ("amount", F, ""), ("filled_amount", F, ""), ("limit_price", F, ""),
     ("average_price", F, ""), ("order_fee", F, ""), ("max_fee", F, ""), ("extra_fee", F, ""),
     ("nonce", S, "exact: v2 sends an integer, v3 a string"), ("signer", S, ""),
     ("signature", S, ""), ("signature_expiry_sec", INT, ""), ("label", S, ""),
     ("mmp", B, ""), ("is_transfer", B, ""), ("cancel_reason", S, ""),
     ("creation_timestamp", INT, "epoch ms"), ("last_update_timestamp", INT, "epoch ms"),
     ("quote_id", S, ""), ("replaced_order_id", S, ""), ("trigger_price", F, ""),
     ("trigger_price_type", S, ""), ("trigger_type", S, ""),
     ("trigger_reject_message", S, ""), ("signed_limit_price", F, "v3"),
     ("algo_type", S, "v3"), ("algo_duration_sec", INT, "v3"), ("algo_num_slices", INT, "v3"),
     ("algo_slices_completed", INT, "v3")),
    ("order_id", "last_update_timestamp"), "last_update_timestamp")

OWN_TRADES = _t(
    "own_trades", "{subaccount_id}.trades and {subaccount_id}.trades.{tx_status}: own fills; "
    "the same trade is re-emitted as tx_status (v3 batch_status) moves, each a row.",
    (CHANNEL, ("status_filter", S, "the channel's status segment, if any", "_status"),
     SUBACCOUNT, ("trade_id", S, ""), ("order_id", S, ""), ("instrument_name", S, ""),
     ("direction", S, ""), ("trade_price", F, ""), ("trade_amount", F, ""),
     ("trade_fee", F, ""), ("extra_fee", F, ""), ("expected_rebate", F, ""),
     ("liquidity_role", S, "maker|taker"), ("mark_price", F, ""), ("index_price", F, ""),
     ("realized_pnl", F, ""), ("realized_pnl_excl_fees", F, ""), ("is_transfer", B, ""),
     ("label", S, ""), ("timestamp", INT, "epoch ms"),
     ("transaction_id", S, "v2 (v3: op_uuid)"), ("tx_status", S, "v2 (v3: batch_status)"),
     ("tx_hash", S, ""), ("quote_id", S, ""), ("rfq_id", S, ""), ("op_uuid", S, "v3"),
     ("batch_status", S, "v3"), ("wallet", S, "")),
    ("trade_id", "coalesce(tx_status, batch_status)"), "timestamp")

BALANCES = _t(
    "balances", "{subaccount_id}.balances: balance changes, one row per element. No natural "
    "key (no time, no id; the same change can happen twice): the dedup key includes the "
    "receive time, so copies two overlapping recorders both received both stay in _dedup.",
    (CHANNEL, ("subaccount_id", INT, "from the channel name", "_subaccount"), ("name", S, "asset"),
     ("previous_balance", F, ""), ("new_balance", F, ""),
     ("update_type", S, "trade|asset_deposit|...|double_revert")),
    ("subaccount_id", "name", "update_type", "previous_balance", "new_balance", "ts_recv"))

_QUOTE = (
    ("quote_id", S, ""), ("rfq_id", S, ""), SUBACCOUNT, ("direction", S, "buy|sell"),
    ("legs", pa.list_(LEG_PRICED), "priced legs"), ("legs_hash", S, ""),
    ("status", S, "open|filled|cancelled|expired"), ("cancel_reason", S, ""),
    ("fee", F, ""), ("extra_fee", F, ""), ("fill_pct", F, ""), ("max_fee", F, ""),
    ("nonce", S, "exact: ms timestamp + up to 6 random digits (v3: a string)"),
    ("signer", S, ""), ("signature", S, ""),
    ("signature_expiry_sec", INT, "quote counts as expired 300 s before it"),
    ("liquidity_role", S, ""), ("mmp", B, ""), ("is_transfer", B, ""), ("label", S, ""),
    ("creation_timestamp", INT, "epoch ms"), ("last_update_timestamp", INT, "epoch ms"),
    ("tx_hash", S, ""), ("tx_status", S, "v2"), ("batch_status", S, "v3"), ("wallet", S, ""))
QUOTES = _t("quotes", "{subaccount_id}.quotes: own RFQ quotes (the send_quote result shape), "
            "one row per element.", (CHANNEL, *_QUOTE),
            ("quote_id", "last_update_timestamp"), "last_update_timestamp")

_PUBLIC_QUOTE = pa.struct([
    ("quote_id", S), ("rfq_id", S), ("subaccount_id", INT), ("wallet", S), ("direction", S),
    ("legs", pa.list_(LEG_PRICED)), ("legs_hash", S), ("status", S), ("cancel_reason", S),
    ("fill_pct", F), ("liquidity_role", S), ("creation_timestamp", INT),
    ("last_update_timestamp", INT), ("tx_hash", S), ("tx_status", S)])
BEST_QUOTES = _t(
    "best_quotes", "{subaccount_id}.best.quotes: best quote per own RFQ (taker side); result "
    "fields flattened, error as error_* columns. No natural key (no time, and the estimates "
    "change with the book while the best quote stays): keyed by the receipt, so copies two "
    "overlapping recorders both received both stay in the _dedup view.",
    (CHANNEL, ("subaccount_id", INT, "from the channel name", "_subaccount"), ("rfq_id", S, ""),
     ("direction", S, ""), ("estimated_fee", F, ""), ("estimated_realized_pnl", F, ""),
     ("estimated_realized_pnl_excl_fees", F, ""), ("estimated_total_cost", F, ""),
     ("filled_pct", F, ""), ("is_valid", B, ""), ("invalid_reason", S, ""),
     ("pre_initial_margin", F, ""), ("post_initial_margin", F, ""),
     ("suggested_max_fee", F, ""), ("orderbook_total_cost", F, ""),
     ("down_liquidation_price", F, ""), ("up_liquidation_price", F, ""),
     ("post_liquidation_price", F, ""), ("best_quote", _PUBLIC_QUOTE, "the public quote"),
     ("error_code", INT, "", "_error_code"), ("error_message", S, "", "_error_message"),
     ("error_data", S, "", "_error_data")),
    (*RECEIPT, "rfq_id"))

RFQS = _t(
    "rfqs", "{wallet}.rfqs: RFQs directed to the wallet (maker side), one row per element.",
    (CHANNEL, ("rfq_id", S, ""), SUBACCOUNT, ("wallet", S, "taker wallet"),
     ("status", S, "open|filled|cancelled|expired"), ("legs", pa.list_(LEG_UNPRICED), ""),
     ("valid_until", INT, "epoch ms"), ("creation_timestamp", INT, "epoch ms"),
     ("last_update_timestamp", INT, "epoch ms"), ("cancel_reason", S, ""),
     ("filled_pct", F, ""), ("partial_fill_step", F, ""), ("total_cost", F, ""),
     ("filled_direction", S, ""), ("preferred_direction", S, ""),
     ("reducing_direction", S, ""), ("fill_rate", F, ""), ("recent_fill_rate", F, ""),
     ("label", S, ""), ("counterparties", pa.list_(S), ""), ("ask_total_cost", F, ""),
     ("bid_total_cost", F, ""), ("mark_total_cost", F, ""), ("max_total_cost", F, ""),
     ("min_total_cost", F, "")),
    ("rfq_id", "last_update_timestamp"), "last_update_timestamp")

# --- answers to our own requests -------------------------------------------------------------

INSTRUMENTS = _t(
    "instruments", "public/get_instruments answers (discovery), one row per instrument per "
    "refresh: listings and expiries are visible as rows appearing and disappearing.",
    (("request_currency", S, "currency asked for", "_currency"),
     ("request_type", S, "instrument_type asked for", "_type"),
     ("instrument_name", S, ""), ("instrument_type", S, ""), ("base_currency", S, ""),
     ("quote_currency", S, ""), ("is_active", B, ""), ("tick_size", F, ""),
     ("amount_step", F, ""), ("minimum_amount", F, ""), ("maximum_amount", F, ""),
     ("base_fee", F, ""), ("maker_fee_rate", F, ""), ("taker_fee_rate", F, ""),
     ("mark_price_fee_rate_cap", F, ""), ("fifo_min_allocation", F, ""),
     ("pro_rata_amount_step", F, ""), ("pro_rata_fraction", F, ""),
     ("base_asset_address", S, ""), ("base_asset_sub_id", S, "exact"),
     ("scheduled_activation", INT, "epoch s"), ("scheduled_deactivation", INT, "epoch s"),
     ("option_details", OPTION_DETAILS, ""), ("perp_details", PERP_DETAILS, ""),
     ("erc20_details", ERC20_DETAILS, "")),
    (*RECEIPT, "instrument_name"))

CURRENCIES = _t(
    "currencies", "public/get_all_currencies answers, one row per currency per refresh.",
    (("currency", S, ""), ("instrument_types", pa.list_(S), "erc20|option|perp"),
     ("market_type", S, ""), ("spot_price", F, ""), ("spot_price_24h", F, ""),
     ("borrow_apy", F, ""), ("supply_apy", F, ""), ("total_borrow", F, ""),
     ("total_supply", F, ""), ("srm_im_discount", F, ""), ("srm_mm_discount", F, ""),
     ("managers", pa.list_(pa.struct([("address", S), ("margin_type", S), ("currency", S)])),
      ""),
     ("protocol_asset_addresses", pa.struct([("option", S), ("perp", S), ("spot", S),
                                             ("underlying_erc20", S)]), ""),
     ("pm2_collateral_discounts", pa.list_(pa.struct([
         ("im_discount", F), ("manager_currency", S), ("mm_discount", F)])), ""),
     ("asset_cap_and_supply_per_manager", S, "nested caps, as JSON"),
     ("erc20_details", S, "as JSON")),
    (*RECEIPT, "currency"))

RPC = _t(
    "rpc", "Every JSON-RPC response to a request of ours, matched by id: the method it "
    "answered, ok or the error (code, message, data).",
    (("id", S, "our request id: method tag : connection generation : number [: args]"),
     ("method", S, "the request's method", "_method"), ("ok", B, "result (true) or error",
                                                         "_ok"),
     ("error_code", INT, "", "_code"), ("error_message", S, "", "_message"),
     ("error_data", S, "", "_data"),
     ("result_count", INT, "elements in a list result", "_count"),
     ("result", S, "the result as JSON (omitted for instruments and currencies, which have "
      "their own tables)", "_result")),
    RECEIPT)

# --- cross-venue views (recorder.schema.CROSS_VIEWS) -----------------------------------------

_SIDE = "CASE {c} WHEN 'buy' THEN 'buy' WHEN 'sell' THEN 'sell' ELSE 'unknown' END"
_LEGS = "array_to_string([l.instrument_name || ' ' || l.direction FOR l IN legs], ' / ')"
# A full top-N snapshot per message (orderbook.{instrument}.{group}.{depth}), best first.
ORDERBOOK = mapped(ORDERBOOK, *(Maps("book_updates", {
    "instrument": "instrument_name", "side": f"'{side}'", "price": "_lv.price",
    "size": "_lv.amount", "is_snapshot": "true", "sequence": "publish_id", "level": "_lv_i",
    "action": "'set'"}, unnest=levels) for side, levels in (("bid", "bids"), ("ask", "asks"))),
    Maps("top_of_book", {"instrument": "instrument_name", "bid_price": "bids[1].price",
                         "bid_size": "bids[1].amount", "ask_price": "asks[1].price",
                         "ask_size": "asks[1].amount"}))
_TICK = {"instrument": "instrument_name", "mark_price": "mark_price",
         "index_price": "index_price", "open_interest": "stats.open_interest",
         **{g: f"option_pricing.{g}" for g in ("iv", "bid_iv", "ask_iv", "delta", "gamma", "vega",
                                                "theta", "rho")}}
_TOP = {"instrument": "instrument_name", "bid_price": "best_bid_price",
        "bid_size": "best_bid_amount", "ask_price": "best_ask_price",
        "ask_size": "best_ask_amount"}
# ticker and ticker_slim carry the same update (one `timestamp`) when both are subscribed: the
# slim one counts only where the full one is missing, so each update is in a view once.
_NOT_FULL = ("NOT EXISTS (SELECT 1 FROM derive_ticker_dedup f WHERE f.instrument_name = "
             "src.instrument_name AND f.timestamp = src.timestamp)")
TICKER = mapped(TICKER, Maps("tickers", _TICK), Maps("top_of_book", _TOP),
                Maps("funding", {"instrument": "instrument_name",
                                 "rate": "perp_details.funding_rate", "rate_period": "'hour'"},
                     where="perp_details.funding_rate IS NOT NULL"))
_SLIM = "only the updates derive_ticker lacks (both carry each one when both are subscribed)"
TICKER_SLIM = mapped(
    TICKER_SLIM, Maps("tickers", _TICK, where=_NOT_FULL, note=_SLIM),
    Maps("top_of_book", _TOP, where=_NOT_FULL, note=_SLIM),
    Maps("funding", {"instrument": "instrument_name", "rate": "funding_rate",
                     "rate_period": "'hour'"},
         where=f"funding_rate IS NOT NULL AND {_NOT_FULL}", note=_SLIM))
_TRADE = {"instrument": "instrument_name", "price": "trade_price", "size": "trade_amount",
          # the taker's direction (docs: `direction` of the trade)
          "side": _SIDE.format(c="direction"), "trade_id": "trade_id", "tx_hash": "tx_hash"}
TRADES = mapped(TRADES, Maps("trades", _TRADE))
# The same prints by currency: only those trades.{instrument} did not bring (a config may
# subscribe either). trades.{type}.{currency}.{status} repeats them per settlement status:
# not mapped (fills has our own settlement states).
TRADES_BY_CURRENCY = mapped(TRADES_BY_CURRENCY, Maps("trades", _TRADE, where=(
    "trade_id NOT IN (SELECT trade_id FROM derive_trades_dedup)"), note=(
        "the prints trades.{instrument} did not bring; trades.{type}.{currency}.{status} (the "
        "same prints per settlement status) is not mapped")))
SPOT_FEED = mapped(SPOT_FEED, Maps("tickers", {"instrument": "currency",
                                               "index_price": "price"}))
RFQS = mapped(RFQS, Maps("rfq_events", {
    "rfq_id": "rfq_id", "event": "'rfq'", "status": "status", "instrument": _LEGS,
    "side": _SIDE.format(c="filled_direction"), "price": "total_cost"}))
QUOTES = mapped(QUOTES, Maps("quote_events", {
    "quote_id": "quote_id", "rfq_id": "rfq_id", "event": "'quote'", "status": "status",
    "side": _SIDE.format(c="direction"),
    "price": "CASE WHEN len(legs) = 1 THEN legs[1].price END",
    "size": "CASE WHEN len(legs) = 1 THEN legs[1].amount END",
    "maker": "CAST(subaccount_id AS VARCHAR)"}))
BEST_QUOTES = mapped(BEST_QUOTES, Maps("quote_events", {
    "quote_id": "best_quote.quote_id", "rfq_id": "rfq_id", "event": "'best_quote'",
    "status": "best_quote.status", "side": _SIDE.format(c="best_quote.direction"),
    "price": "CASE WHEN len(best_quote.legs) = 1 THEN best_quote.legs[1].price END",
    "size": "CASE WHEN len(best_quote.legs) = 1 THEN best_quote.legs[1].amount END",
    "maker": "CAST(best_quote.subaccount_id AS VARCHAR)"}, where="best_quote IS NOT NULL"))
OWN_TRADES = mapped(OWN_TRADES, Maps("fills", {
    "instrument": "instrument_name", "side": _SIDE.format(c="direction"),
    "price": "trade_price", "size": "trade_amount", "fee": "trade_fee",
    "liquidity": "liquidity_role", "trade_id": "trade_id", "order_id": "order_id",
    "status": "coalesce(tx_status, batch_status)", "tx_hash": "tx_hash"}))
MARGIN_WATCH = mapped(MARGIN_WATCH, Maps("positions", {
    "instrument": "_lv.instrument_name", "size": "_lv.amount", "mark_price": "_lv.mark_price",
    "account": "CAST(subaccount_id AS VARCHAR)"}, unnest="positions"))

TABLES = (ORDERBOOK, TICKER, TICKER_SLIM, TRADES, TRADES_BY_CURRENCY, TRADES_SETTLED, SPOT_FEED,
          AUCTIONS, MARGIN_WATCH, ORDERS, OWN_TRADES, BALANCES, QUOTES, BEST_QUOTES, RFQS,
          INSTRUMENTS, CURRENCIES, RPC)
