"""Mackinac tables: one per server message ``type`` (20), every documented field.

Source of the shapes: https://mackinac.io/api/messages/ (seed 003) and the SDK models
(mackinac-python 0.2.0, ``models/messages.py``); see ``shared/venues/003-mackinac.md``.
Top-level names become snake_case columns (``time`` -> ``time_ms`` to carry its unit); fields
inside nested levels keep the venue's names (``bids[1].lastSwapMs``). uint128/uint256 amounts
are exact decimal strings. Keys starting with ``_`` are set by the adapter, not the venue.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from recorder.schema import (
    NO_NATURAL_KEY,
    Maps,
    Table,
    by_receipt_when_null,
    cols,
    extra_col,
    mapped,
)

F, INT, S, B = pa.float64(), pa.int64(), pa.string(), pa.bool_()
V = "mackinac"

LEVEL = pa.struct([("price", F), ("size", F), ("fee", INT), ("lastSwapMs", INT)])
IMPACT = pa.struct([("usd", F), ("buyPrice", F), ("sellPrice", F), ("buyPct", F),
                    ("sellPct", F)])
TICK = pa.struct([("tick", INT), ("price", F), ("liquidityDelta", S), ("cumLiquidity", S)])
RATE_LEVEL = pa.struct([("sizeUsd", F), ("buyRate", F), ("sellRate", F), ("spreadBps", F)])
BOOK_LEVEL = pa.struct([("exchange", S), ("price", F), ("size", F), ("feeBps", F), ("time", INT),
                        ("impacts", pa.list_(IMPACT))])
ARB_GAP = pa.struct([("buyExchange", S), ("sellExchange", S), ("gapBps", F), ("gapUsd", F)])
POOL = pa.struct([("fee", INT), ("price", F), ("lastSwapMs", INT)])

TIME = ("time_ms", INT, "server time, epoch ms (also in ts_event)", "time")
EXCHANGE = ("exchange", S, "venue id: hl, dydx, uni, univ4, univ4chain, sushi, pancake, gmx, "
            "vertex, ostium, pendle, spectra, aave, compound, morpho")
SYMBOL = ("symbol", S, "canonical symbol as the venue spells it")
BLOCK = ("block_number", INT, "on-chain block", "blockNumber")
TXI = ("tx_index", INT, "transaction index in the block", "txIndex")
RECEIPT = ("run_id", "conn_id", "recv_seq")  # connection-level frames: each receipt is distinct

D_STATS = [(f"d_{n.lower()}", F, doc, f"d_{n}") for n, doc in (
    ("tickrate", "trades/s over the last 1 s"), ("volumerate", "contracts/s over the last 1 s"),
    ("quoterate", "L2 updates/s over the last 1 s"), ("hawkes", "Hawkes intensity, all sides"),
    ("hawkesB", "Hawkes intensity, bid-side prints"),
    ("hawkesA", "Hawkes intensity, ask-side prints"),
    ("lobimb", "LOB imbalance of the top 10 levels, -1..+1"),
    ("volumeimb", "buy volume - sell volume over the last 1 s"),
    ("bidqty", "total bid quantity in the L2 snapshot"),
    ("askqty", "total ask quantity in the L2 snapshot"))]


def _t(name: str, doc: str, columns: tuple, key: tuple[str, ...], event_time: bool = True,
       raw_constants: tuple[tuple[str, Any], ...] = ()) -> Table:
    # One table per `type` (https://mackinac.io/api/messages/): the table names the value, so
    # the discriminator is the one key a Mackinac table may drop (schema.Table.ignore_keys).
    return Table(name=f"{V}_{name}", venue=V, doc=doc, columns=(*cols(*columns), extra_col()),
                 dedup_key=key, event_time="time_ms" if event_time else None,
                 raw_constants=raw_constants, ignore_keys=frozenset({"type"}))


QUOTE = _t("quote", "Book snapshot on every update: CLOB full depth (bids[0] best), AMM one "
           "level per fee tier (fee ppm, lastSwapMs), oracle perps one synthetic level.",
           (EXCHANGE, SYMBOL, ("bids", pa.list_(LEVEL), "descending by price"),
            ("asks", pa.list_(LEVEL), "ascending by price"), TIME),
           ("exchange", "symbol", "time_ms", "hash(bids, asks)"))

PRINT = _t("print", "One trade. Live prints and those replayed by a history request (source = "
           "'history') share the table; the dedup key follows the SDK's _dedup_key.",
           (EXCHANGE, SYMBOL, ("price", F, "execution price, human units"),
            ("size", F, "base-token units"),
            ("side", INT, "0 bid hit (sell), 1 ask lift (buy), 2 unknown; Pendle/Spectra: 1 = "
             "bought PT"), TIME, ("tick", INT, "pool tick at the swap (AMM/yield)"), BLOCK, TXI,
            ("log_sender", S, "router/aggregator that submitted the swap", "logSender"),
            *D_STATS,
            ("source", S, "live | history (reply to our history request)", "_source"),
            ("req_id", S, "reqId of the history request", "_req_id"),
            ("legacy_no_exchange", B, "legacy HL frame without exchange (filled as hl)",
             "_legacy")),
           # SDK _dedup_key: AMM/Ostium/Pendle/Spectra (block, txIndex); dYdX adds time, price,
           # size, side (no txIndex); HL (no block) time, price, size, side.
           ("exchange", "symbol", "block_number", "tx_index",
            "CASE WHEN tx_index IS NULL THEN time_ms END",
            "CASE WHEN tx_index IS NULL THEN price END",
            "CASE WHEN tx_index IS NULL THEN size END",
            "CASE WHEN tx_index IS NULL THEN side END"),
           # A raw print (the adapter's fast path) is a live one that names its exchange: a
           # legacy print without `exchange` takes the dict path, which fills it.
           raw_constants=(("_source", "live"), ("_legacy", False)))

FUNDING = _t("funding", "Perp funding, about every 60 s. rate_pct is annualised.",
             (EXCHANGE, SYMBOL, ("rate_pct", F, "annualised %, signed", "ratePct"),
              ("interval_hrs", F, "native payment interval: hl/dydx 8, gmx/vertex 1, ostium 24",
               "intervalHrs"), TIME),
             ("exchange", "symbol", "time_ms"))

DEPTH = _t("depth", "AMM tick liquidity and market-impact estimates, after Mint/Burn, "
           "throttled to 200 ms per symbol.",
           (EXCHANGE, SYMBOL, ("current_tick", INT, "active pool tick", "currentTick"),
            ("ticks", pa.list_(TICK), "tick boundaries near currentTick; liquidity values kept "
             "as exact strings"),
            ("impacts", pa.list_(IMPACT), "impact at $1k/$10k/$100k/$1M; empty until ticks"),
            TIME),
           ("exchange", "symbol", "time_ms"))

LIQUIDITY = _t("liquidity", "LP Mint/Burn. Rows from an ammliquidity_snapshot have source = "
               "'snapshot'.",
               (EXCHANGE, SYMBOL, ("fee_tier", INT, "pool fee, ppm", "feeTier"),
                ("action", S, "mint | burn"), ("tick_lower", INT, "int24", "tickLower"),
                ("tick_upper", INT, "int24", "tickUpper"),
                ("amount", S, "raw uint128 liquidity delta, exact"),
                ("amount0", S, "raw token0 amount, smallest units, exact"),
                ("amount1", S, "raw token1 amount, smallest units, exact"),
                ("amount_usd", F, "estimated USD notional; may be 0", "amountUsd"),
                ("owner", S, "LP position owner"), BLOCK, TXI, TIME,
                ("source", S, "live | snapshot", "_source")),
               ("exchange", "symbol", "block_number", "tx_index", "action", "tick_lower",
                "tick_upper", "amount"))

RATE_MARKET = _t("rate_market", "Yield-market snapshot (Pendle ~5 s, Spectra ~30 s) and lending "
                 "markets (aave/compound/morpho, with zero sentinels in the PT fields).",
                 (EXCHANGE, ("chain", S, "arbitrum|base|ethereum|unichain|hyperevm"),
                  ("address", S, "market key per chain (Morpho: 32-byte id)"), SYMBOL,
                  ("underlying_apy", F, "decimal fraction", "underlyingApy"),
                  ("implied_apy", F, "decimal fraction", "impliedApy"),
                  ("lp_apy", F, "decimal fraction", "lpApy"),
                  ("pt_price", F, "Pendle USD; Spectra fraction of IBT", "ptPrice"),
                  ("yt_price", F, "USD", "ytPrice"),
                  ("expiry_ms", INT, "PT maturity, epoch ms", "expiry"),
                  ("days_to_expiry", F, "", "daysToExpiry"), ("tvl", F, "Pendle USD"),
                  ("volume24h", F, ""), ("trading_fee_rate", F, "", "tradingFeeRate"), TIME,
                  ("asset", S, "lending only"), ("borrow_apy", F, "lending only", "borrowApy"),
                  ("utilization", F, "lending only"), ("available", F, "lending only"),
                  ("rate_at_target", F, "lending only", "rateAtTarget")),
                 ("exchange", "chain", "address", "time_ms"))

RATE_DEPTH = _t("rate_depth", "Pendle depth-at-size: APY quotes per USD size.",
                (EXCHANGE, SYMBOL, ("mid_rate", F, "mid APY", "midRate"),
                 ("underlying_rate", F, "", "underlyingRate"), ("pt_price", F, "", "ptPrice"),
                 ("pool_fee_bps", F, "", "poolFeeBps"), ("tvl", F, ""),
                 ("days_to_expiry", F, "", "daysToExpiry"),
                 ("levels", pa.list_(RATE_LEVEL), "ascending by sizeUsd"), TIME),
                ("exchange", "symbol", "time_ms"))

LENDING_ACTION = _t("lending_action", "Aave/Compound/Morpho supply, withdraw, borrow, repay, "
                    "liquidate, flashloan.",
                    (EXCHANGE, ("chain", S, ""), ("asset", S, ""), ("market", S, ""),
                     ("action", S, "supply|withdraw|borrow|repay|liquidate|flashloan"),
                     ("user", S, ""), ("amount", S, "raw uint256, exact"), BLOCK, TXI,
                     ("log_sender", S, "", "logSender"), TIME,
                     ("on_behalf_of", S, "", "onBehalfOf"),
                     ("amount_usd", F, "", "amountUsd"), ("rate_at_time", F, "", "rateAtTime"),
                     ("collateral_asset", S, "liquidations", "collateralAsset"),
                     ("collateral_amount", S, "liquidations, exact", "collateralAmount"),
                     ("liquidator", S, "liquidations")),
                    # documented resubscribe key (blockNumber, txIndex, logSender); chain and
                    # exchange added because block numbers repeat across chains.
                    ("exchange", "chain", "block_number", "tx_index", "log_sender", "action",
                     "amount"))

RATE_MODEL_PARAMS = _t("rate_model_params", "Interest-rate model parameters, hourly and only on "
                       "change. Kinked curve (aave/compound) or Morpho adaptive curve.",
                       (EXCHANGE, ("chain", S, ""), ("market", S, ""), ("asset", S, ""),
                        ("irm_address", S, "", "irmAddress"), TIME,
                        ("base_rate", F, "", "baseRate"), ("slope1", F, ""), ("slope2", F, ""),
                        ("kink", F, ""), ("reserve_factor", F, "", "reserveFactor"),
                        ("max_rate", F, "", "maxRate"), ("target_util", F, "", "targetUtil"),
                        ("curve_steepness", F, "", "curveSteepness"),
                        ("adj_speed", F, "", "adjSpeed")),
                       ("exchange", "chain", "market", "time_ms"))

AMMBOOK = _t("ammbook", "Consolidated NBBO across the Arbitrum AMMs (professional tier).",
             (SYMBOL, ("bids", pa.list_(BOOK_LEVEL), "one per venue, descending"),
              ("asks", pa.list_(BOOK_LEVEL), "one per venue, ascending"),
              ("mid_price", F, "", "midPrice"), ("spread_bps", F, "", "spreadBps"),
              ("arb_gap", ARB_GAP, "present when a cross-venue gap exists", "arbGap"), TIME),
             ("symbol", "time_ms", "hash(bids, asks)"))

AMMLIQUIDITY_SNAPSHOT = _t(
    "ammliquidity_snapshot", "One per ammliquidity subscribe; its events are in "
    "mackinac_liquidity with source = 'snapshot' (this row keeps the summary).",
    (SYMBOL, ("event_count", INT, "liquidity events in the snapshot", "_count"),
     ("first_time_ms", INT, "oldest event time", "_first"),
     ("last_time_ms", INT, "newest event time", "_last")),
    # The same snapshot received by two recorders is one row; an empty one (no times) stays
    # per receipt.
    ("symbol", "first_time_ms", "last_time_ms", "event_count",
     *by_receipt_when_null("last_time_ms")), event_time=False)

ARBFLAG = _t("arbflag", "Cross-venue arb gap edges (super_admin): open / closed.",
             (SYMBOL, ("status", S, "open | closed"), ("arb_gap", ARB_GAP, "", "arbGap"), TIME),
             ("symbol", "status", "time_ms"))

SPREAD = _t("spread", "Same-venue cross-pool spread (uni, univ4; professional tier).",
            (EXCHANGE, SYMBOL, ("bid_pool", POOL, "", "bidPool"), ("ask_pool", POOL, "", "askPool"),
             ("spread", F, ""), ("spread_pct", F, "", "spreadPct"),
             ("depth_between", F, "", "depthBetween"), TIME),
            ("exchange", "symbol", "time_ms"))

FEED_STALE = _t("feed_stale", "Upstream feed went stale." + NO_NATURAL_KEY,
                (EXCHANGE, ("stale_sec", F, "seconds since the last upstream update",
                            "staleSec")), RECEIPT, event_time=False)
FEED_LIVE = _t("feed_live", "Upstream feed is live again." + NO_NATURAL_KEY, (EXCHANGE,), RECEIPT,
               event_time=False)
SERVER_CLOSING = _t("server_closing", "Planned restart notice; we reconnect after reconnectIn."
                    + NO_NATURAL_KEY,
                    (("reconnect_in_ms", INT, "", "reconnectIn"),), RECEIPT, event_time=False)
SUBSCRIBED = _t("subscribed", "Subscribe ack (SDK >= 0.1.1; the websocket page says there is "
                "none, so its absence is fine).", (EXCHANGE, SYMBOL), RECEIPT, event_time=False)
SNAPSHOT = _t("snapshot", "Reply to a history request; its prints are in mackinac_print with "
              "source = 'history'.",
              (EXCHANGE, SYMBOL, ("req_id", S, "echo of our reqId", "reqId"),
               ("print_count", INT, "", "_count"), ("first_time_ms", INT, "", "_first"),
               ("last_time_ms", INT, "", "_last")), RECEIPT, event_time=False)
AUTHED = _t("authed", "API-key auth accepted.",
            (("tier", S, "none|professional|api|super_admin"),
             ("symbol_limit", INT, "null = unlimited (super_admin)", "symbolLimit")),
            RECEIPT, event_time=False)
ERROR = _t("error", "An action was rejected.",
           (("code", S, "auth_failed, auth_error, subscription_required, symbol_limit_reached, "
             "free_tier_cap_reached, invalid_symbol, unknown_symbol, rate_limited, "
             "internal_error"), ("message", S, ""),
            ("retry_after_s", F, "on rate_limited", "retryAfter"), EXCHANGE, SYMBOL,
            ("limit", INT, "symbol limit, on *_limit_* codes")), RECEIPT, event_time=False)

# --- cross-venue views (recorder.schema.CROSS_VIEWS) -----------------------------------------

_INSTR = "exchange || ':' || symbol"  # one book and one tape per (exchange, symbol)
# An AMM book holds one level per fee tier, not sorted: the best is the max bid / min ask.
_BEST = ("{agg}([l.price FOR l IN {side}])",
         "list_sum([l.size FOR l IN {side} IF l.price = {agg}([x.price FOR x IN {side}])])")


def _levels(instrument: str) -> tuple[Maps, ...]:
    return tuple(Maps("book_updates", {
        "instrument": instrument, "side": f"'{side}'", "price": "_lv.price",
        "size": "_lv.size", "is_snapshot": "true", "level": "_lv_i", "action": "'set'"},
        unnest=levels) for side, levels in (("bid", "bids"), ("ask", "asks")))


def _top(instrument: str, note: str = "") -> Maps:
    cols = {"instrument": instrument}
    for side, levels, agg in (("bid", "bids", "list_max"), ("ask", "asks", "list_min")):
        cols[f"{side}_price"] = _BEST[0].format(agg=agg, side=levels)
        cols[f"{side}_size"] = _BEST[1].format(agg=agg, side=levels)
    return Maps("top_of_book", cols, note=note)


QUOTE = mapped(QUOTE, *_levels(_INSTR), _top(_INSTR))
PRINT = mapped(PRINT, Maps("trades", {
    "instrument": _INSTR, "price": "price", "size": "size",
    # https://mackinac.io/api/messages/: 0 bid hit (a sell), 1 ask lift (a buy), 2 unknown;
    # Pendle/Spectra 1 = bought PT (a buy of the PT).
    "side": "CASE side WHEN 1 THEN 'buy' WHEN 0 THEN 'sell' ELSE 'unknown' END",
    "block_number": "block_number", "tx_index": "tx_index"}))
FUNDING = mapped(FUNDING, Maps("funding", {
    "instrument": _INSTR, "rate": "rate_pct / 100", "rate_period": "'year'",
    "interval_hours": "interval_hrs"}))
AMMBOOK = mapped(AMMBOOK, *_levels("'ammbook:' || symbol"), _top(
    "'ammbook:' || symbol", note="consolidated across AMMs: a bid above the ask is an arb gap"))

TABLES = (QUOTE, PRINT, FUNDING, DEPTH, LIQUIDITY, RATE_MARKET, RATE_DEPTH, LENDING_ACTION,
          RATE_MODEL_PARAMS, AMMBOOK, AMMLIQUIDITY_SNAPSHOT, ARBFLAG, SPREAD, FEED_STALE,
          FEED_LIVE, SERVER_CLOSING, SUBSCRIBED, SNAPSHOT, AUTHED, ERROR)
