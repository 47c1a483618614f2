-- Generated from the schema registry (recorder/schema.py and recorder/venues/*/tables.py)
-- by `recorder views --write`; tests/test_views.py fails when this file and the registry
-- differ. ${lake} is the lake folder; recorder.duck.connect() substitutes it.

-- session_events: Connection life as data: connects, auth results, subscribe acks, disconnects with code and reason, venue hints (server_closing, stale/live, rate limits), errors and gaps with both ends. Join it to know where the tape is incomplete.
CREATE OR REPLACE VIEW session_events AS SELECT * FROM read_parquet('${lake}/session_events/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW session_events_dedup AS SELECT * FROM session_events QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq, event, channel ORDER BY ts_recv, run_id, recv_seq) = 1;

-- unhandled: Frames no handler knows, frames that are not valid JSON, and rows whose values did not fit their column's type: counted and stored with the raw text, never dropped.
CREATE OR REPLACE VIEW unhandled AS SELECT * FROM read_parquet('${lake}/unhandled/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW unhandled_dedup AS SELECT * FROM unhandled QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq, reason, raw ORDER BY ts_recv, run_id, recv_seq) = 1;

-- diffusal_account_rfq: Private 'rfq': this account's RFQs; each new requestId gets quotes hydrated over REST, rfq.quotes.<id> on /ws/private and its own /ws/rfq/quotes socket.
CREATE OR REPLACE VIEW diffusal_account_rfq AS SELECT * FROM read_parquet('${lake}/diffusal_account_rfq/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_account_rfq_dedup AS SELECT * FROM diffusal_account_rfq QUALIFY row_number() OVER (PARTITION BY request_id, status, updated_at_ms ORDER BY ts_recv, run_id, recv_seq) = 1;

-- diffusal_auth: Private AUTH accepted: either the seed's {status: 'authenticated'} frame or the reference's {result: AuthSuccessResult, id} (its fields were not retrievable; kept as JSON).
CREATE OR REPLACE VIEW diffusal_auth AS SELECT * FROM read_parquet('${lake}/diffusal_auth/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_auth_dedup AS SELECT * FROM diffusal_auth QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq) = 1;

-- diffusal_collateral: Private 'collateral': balances per asset.
CREATE OR REPLACE VIEW diffusal_collateral AS SELECT * FROM read_parquet('${lake}/diffusal_collateral/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_collateral_dedup AS SELECT * FROM diffusal_collateral QUALIFY row_number() OVER (PARTITION BY asset, updated_at_ms, balance ORDER BY ts_recv, run_id, recv_seq) = 1;

-- diffusal_depth: Order book: the snapshot a subscribe sends, then diffs with only the changed levels (size 0 removes a level); REST orderbook snapshots (source = 'rest') in the same table. Instrument and grouped (<underlying>@depth) streams both land here. Rebuild a book with queries/diffusal_book_at.sql.
CREATE OR REPLACE VIEW diffusal_depth AS SELECT * FROM read_parquet('${lake}/diffusal_depth/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_depth_dedup AS SELECT * FROM diffusal_depth QUALIFY row_number() OVER (PARTITION BY symbol, type, sequence ORDER BY ts_recv, run_id, recv_seq) = 1;

-- diffusal_error: An error reply {error:{code,msg}, id}: 4029 rate/subscription limits, rejected subscribes, AUTH failures (also in session_events).
CREATE OR REPLACE VIEW diffusal_error AS SELECT * FROM read_parquet('${lake}/diffusal_error/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_error_dedup AS SELECT * FROM diffusal_error QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq) = 1;

-- diffusal_fill: Private 'fill': recent fills snapshot, then each fill.
CREATE OR REPLACE VIEW diffusal_fill AS SELECT * FROM read_parquet('${lake}/diffusal_fill/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_fill_dedup AS SELECT * FROM diffusal_fill QUALIFY row_number() OVER (PARTITION BY fill_id ORDER BY ts_recv, run_id, recv_seq) = 1;

-- diffusal_index: Spot price and implied volatility per pair (inputs for client-side Black-Scholes).
CREATE OR REPLACE VIEW diffusal_index AS SELECT * FROM read_parquet('${lake}/diffusal_index/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_index_dedup AS SELECT * FROM diffusal_index QUALIFY row_number() OVER (PARTITION BY pair, timestamp_s, hash(spot_price, volatility) ORDER BY ts_recv, run_id, recv_seq) = 1;

-- diffusal_instrument: Instruments discovered over REST: GET /api/markets and /api/markets/contracts (endpoint says which). Fields beyond the symbol are inferred.
CREATE OR REPLACE VIEW diffusal_instrument AS SELECT * FROM read_parquet('${lake}/diffusal_instrument/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_instrument_dedup AS SELECT * FROM diffusal_instrument QUALIFY row_number() OVER (PARTITION BY run_id, endpoint, symbol ORDER BY ts_recv, run_id, recv_seq) = 1;

-- diffusal_liquidation: Private 'liquidation'.
CREATE OR REPLACE VIEW diffusal_liquidation AS SELECT * FROM read_parquet('${lake}/diffusal_liquidation/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_liquidation_dedup AS SELECT * FROM diffusal_liquidation QUALIFY row_number() OVER (PARTITION BY liquidation_id ORDER BY ts_recv, run_id, recv_seq) = 1;

-- diffusal_markets: global@markets: series_created and series_settled. No venue time is sent.
CREATE OR REPLACE VIEW diffusal_markets AS SELECT * FROM read_parquet('${lake}/diffusal_markets/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_markets_dedup AS SELECT * FROM diffusal_markets QUALIFY row_number() OVER (PARTITION BY type, series_id ORDER BY ts_recv, run_id, recv_seq) = 1;

-- diffusal_order: Private 'order': open orders snapshot, then every order state change.
CREATE OR REPLACE VIEW diffusal_order AS SELECT * FROM read_parquet('${lake}/diffusal_order/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_order_dedup AS SELECT * FROM diffusal_order QUALIFY row_number() OVER (PARTITION BY order_id, status, filled_size, updated_at_ms ORDER BY ts_recv, run_id, recv_seq) = 1;

-- diffusal_pair: GET /api/markets/pairs, once per run (and on refresh).
CREATE OR REPLACE VIEW diffusal_pair AS SELECT * FROM read_parquet('${lake}/diffusal_pair/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_pair_dedup AS SELECT * FROM diffusal_pair QUALIFY row_number() OVER (PARTITION BY run_id, pair_id ORDER BY ts_recv, run_id, recv_seq) = 1;

-- diffusal_portfolio: Private 'portfolio': account-level margin summary.
CREATE OR REPLACE VIEW diffusal_portfolio AS SELECT * FROM read_parquet('${lake}/diffusal_portfolio/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_portfolio_dedup AS SELECT * FROM diffusal_portfolio QUALIFY row_number() OVER (PARTITION BY updated_at_ms, equity, margin_used ORDER BY ts_recv, run_id, recv_seq) = 1;

-- diffusal_position: Private 'position': initial snapshot rows (is_snapshot) then updates.
CREATE OR REPLACE VIEW diffusal_position AS SELECT * FROM read_parquet('${lake}/diffusal_position/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_position_dedup AS SELECT * FROM diffusal_position QUALIFY row_number() OVER (PARTITION BY symbol, updated_at_ms, size ORDER BY ts_recv, run_id, recv_seq) = 1;

-- diffusal_private_snapshot: One row per initial snapshot on /ws/private (a channel's, or a rfq.quotes.<id> stream's), even an empty one: the account's state at that moment is exactly the is_snapshot rows of the same receipt (same conn_id, recv_seq).
CREATE OR REPLACE VIEW diffusal_private_snapshot AS SELECT * FROM read_parquet('${lake}/diffusal_private_snapshot/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_private_snapshot_dedup AS SELECT * FROM diffusal_private_snapshot QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq) = 1;

-- diffusal_reply: A control reply {result, id}: SUBSCRIBE/UNSUBSCRIBE (result null) and LIST_SUBSCRIPTIONS (the channel list). method and params are what we sent with that id.
CREATE OR REPLACE VIEW diffusal_reply AS SELECT * FROM read_parquet('${lake}/diffusal_reply/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_reply_dedup AS SELECT * FROM diffusal_reply QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq) = 1;

-- diffusal_rest: One row per REST response (hydration, resyncs), failures included: which request, its HTTP status and how many items it held. The items themselves are rows of the stream tables with source = 'rest'.
CREATE OR REPLACE VIEW diffusal_rest AS SELECT * FROM read_parquet('${lake}/diffusal_rest/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_rest_dedup AS SELECT * FROM diffusal_rest QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq) = 1;

-- diffusal_rfq_auction: RFQ auction requests: rfq_request on /ws/rfq/stream, global@rfq and /ws/rfq/mm (source = 'mm'), the stream's initial snapshot (source = 'snapshot') and GET /api/rfq/active-auctions (source = 'rest'). Beyond requestId, taker, pairId and strike the fields are inferred.
CREATE OR REPLACE VIEW diffusal_rfq_auction AS SELECT * FROM read_parquet('${lake}/diffusal_rfq_auction/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_rfq_auction_dedup AS SELECT * FROM diffusal_rfq_auction QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY ts_recv, run_id, recv_seq) = 1;

-- diffusal_rfq_auth_success: /ws/rfq/mm accepted our handshake credentials.
CREATE OR REPLACE VIEW diffusal_rfq_auth_success AS SELECT * FROM read_parquet('${lake}/diffusal_rfq_auth_success/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_rfq_auth_success_dedup AS SELECT * FROM diffusal_rfq_auth_success QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq) = 1;

-- diffusal_rfq_connected: 'connected' greeting of /ws/rfq/stream and /ws/rfq/quotes.
CREATE OR REPLACE VIEW diffusal_rfq_connected AS SELECT * FROM read_parquet('${lake}/diffusal_rfq_connected/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_rfq_connected_dedup AS SELECT * FROM diffusal_rfq_connected QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq) = 1;

-- diffusal_rfq_heartbeat: Application heartbeats of the three RFQ sockets (interval undocumented).
CREATE OR REPLACE VIEW diffusal_rfq_heartbeat AS SELECT * FROM read_parquet('${lake}/diffusal_rfq_heartbeat/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_rfq_heartbeat_dedup AS SELECT * FROM diffusal_rfq_heartbeat QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq) = 1;

-- diffusal_rfq_quote: Signed MMM quotes for a request: /ws/rfq/quotes 'quote' frames, private rfq.quotes.<requestId> and GET /api/rfq/quotes/:requestId (source = 'rest'). The EIP-712 quote fields are mmm, taker, seriesId, takerIsBuying, price (WAD) plus size, nonce and expiry (those names inferred).
CREATE OR REPLACE VIEW diffusal_rfq_quote AS SELECT * FROM read_parquet('${lake}/diffusal_rfq_quote/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_rfq_quote_dedup AS SELECT * FROM diffusal_rfq_quote QUALIFY row_number() OVER (PARTITION BY request_id, mmm, nonce, signature ORDER BY ts_recv, run_id, recv_seq) = 1;

-- diffusal_rfq_quote_rejected: /ws/rfq/mm: one of this MMM's quotes was rejected. Fields inferred.
CREATE OR REPLACE VIEW diffusal_rfq_quote_rejected AS SELECT * FROM read_parquet('${lake}/diffusal_rfq_quote_rejected/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_rfq_quote_rejected_dedup AS SELECT * FROM diffusal_rfq_quote_rejected QUALIFY row_number() OVER (PARTITION BY request_id, nonce, reason ORDER BY ts_recv, run_id, recv_seq) = 1;

-- diffusal_rfq_resolution: Auction resolved (once per requestId): /ws/rfq/stream, global@rfq and the taker's /ws/rfq/quotes. Fields inferred.
CREATE OR REPLACE VIEW diffusal_rfq_resolution AS SELECT * FROM read_parquet('${lake}/diffusal_rfq_resolution/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_rfq_resolution_dedup AS SELECT * FROM diffusal_rfq_resolution QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY ts_recv, run_id, recv_seq) = 1;

-- diffusal_rfq_snapshot: The active-auction snapshot /ws/rfq/stream sends after connected; its auctions are in diffusal_rfq_auction with source = 'snapshot'. Shape inferred.
CREATE OR REPLACE VIEW diffusal_rfq_snapshot AS SELECT * FROM read_parquet('${lake}/diffusal_rfq_snapshot/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_rfq_snapshot_dedup AS SELECT * FROM diffusal_rfq_snapshot QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq) = 1;

-- diffusal_rfq_trade_filled: /ws/rfq/mm: a quote of this MMM was filled on-chain. Fields inferred.
CREATE OR REPLACE VIEW diffusal_rfq_trade_filled AS SELECT * FROM read_parquet('${lake}/diffusal_rfq_trade_filled/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_rfq_trade_filled_dedup AS SELECT * FROM diffusal_rfq_trade_filled QUALIFY row_number() OVER (PARTITION BY request_id, tx_hash ORDER BY ts_recv, run_id, recv_seq) = 1;

-- diffusal_ticker: Best bid/ask, index price and open interest per instrument (no mark price or Greeks: clients compute those from @index). ts_event is lastTradeAt, the only venue time the ticker carries.
CREATE OR REPLACE VIEW diffusal_ticker AS SELECT * FROM read_parquet('${lake}/diffusal_ticker/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_ticker_dedup AS SELECT * FROM diffusal_ticker QUALIFY row_number() OVER (PARTITION BY symbol, last_trade_at_s, hash(index_price, best_bid, best_ask, best_bid_size, best_ask_size, open_interest) ORDER BY ts_recv, run_id, recv_seq) = 1;

-- diffusal_trade: Executed trades. The same trade arrives on <symbol>@trade and <underlying>@trade; the dedup key ignores the stream, so the _dedup view keeps one.
CREATE OR REPLACE VIEW diffusal_trade AS SELECT * FROM read_parquet('${lake}/diffusal_trade/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_trade_dedup AS SELECT * FROM diffusal_trade QUALIFY row_number() OVER (PARTITION BY symbol, trade_id ORDER BY ts_recv, run_id, recv_seq) = 1;

-- mackinac_ammbook: Consolidated NBBO across the Arbitrum AMMs (professional tier).
CREATE OR REPLACE VIEW mackinac_ammbook AS SELECT * FROM read_parquet('${lake}/mackinac_ammbook/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_ammbook_dedup AS SELECT * FROM mackinac_ammbook QUALIFY row_number() OVER (PARTITION BY symbol, time_ms, hash(bids, asks) ORDER BY ts_recv, run_id, recv_seq) = 1;

-- mackinac_ammliquidity_snapshot: One per ammliquidity subscribe; its events are in mackinac_liquidity with source = 'snapshot' (this row keeps the summary).
CREATE OR REPLACE VIEW mackinac_ammliquidity_snapshot AS SELECT * FROM read_parquet('${lake}/mackinac_ammliquidity_snapshot/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_ammliquidity_snapshot_dedup AS SELECT * FROM mackinac_ammliquidity_snapshot QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq) = 1;

-- mackinac_arbflag: Cross-venue arb gap edges (super_admin): open / closed.
CREATE OR REPLACE VIEW mackinac_arbflag AS SELECT * FROM read_parquet('${lake}/mackinac_arbflag/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_arbflag_dedup AS SELECT * FROM mackinac_arbflag QUALIFY row_number() OVER (PARTITION BY symbol, status, time_ms ORDER BY ts_recv, run_id, recv_seq) = 1;

-- mackinac_authed: API-key auth accepted.
CREATE OR REPLACE VIEW mackinac_authed AS SELECT * FROM read_parquet('${lake}/mackinac_authed/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_authed_dedup AS SELECT * FROM mackinac_authed QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq) = 1;

-- mackinac_depth: AMM tick liquidity and market-impact estimates, after Mint/Burn, throttled to 200 ms per symbol.
CREATE OR REPLACE VIEW mackinac_depth AS SELECT * FROM read_parquet('${lake}/mackinac_depth/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_depth_dedup AS SELECT * FROM mackinac_depth QUALIFY row_number() OVER (PARTITION BY exchange, symbol, time_ms ORDER BY ts_recv, run_id, recv_seq) = 1;

-- mackinac_error: An action was rejected.
CREATE OR REPLACE VIEW mackinac_error AS SELECT * FROM read_parquet('${lake}/mackinac_error/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_error_dedup AS SELECT * FROM mackinac_error QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq) = 1;

-- mackinac_feed_live: Upstream feed is live again.
CREATE OR REPLACE VIEW mackinac_feed_live AS SELECT * FROM read_parquet('${lake}/mackinac_feed_live/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_feed_live_dedup AS SELECT * FROM mackinac_feed_live QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq) = 1;

-- mackinac_feed_stale: Upstream feed went stale.
CREATE OR REPLACE VIEW mackinac_feed_stale AS SELECT * FROM read_parquet('${lake}/mackinac_feed_stale/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_feed_stale_dedup AS SELECT * FROM mackinac_feed_stale QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq) = 1;

-- mackinac_funding: Perp funding, about every 60 s. rate_pct is annualised.
CREATE OR REPLACE VIEW mackinac_funding AS SELECT * FROM read_parquet('${lake}/mackinac_funding/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_funding_dedup AS SELECT * FROM mackinac_funding QUALIFY row_number() OVER (PARTITION BY exchange, symbol, time_ms ORDER BY ts_recv, run_id, recv_seq) = 1;

-- mackinac_lending_action: Aave/Compound/Morpho supply, withdraw, borrow, repay, liquidate, flashloan.
CREATE OR REPLACE VIEW mackinac_lending_action AS SELECT * FROM read_parquet('${lake}/mackinac_lending_action/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_lending_action_dedup AS SELECT * FROM mackinac_lending_action QUALIFY row_number() OVER (PARTITION BY exchange, chain, block_number, tx_index, log_sender, action, amount ORDER BY ts_recv, run_id, recv_seq) = 1;

-- mackinac_liquidity: LP Mint/Burn. Rows from an ammliquidity_snapshot have source = 'snapshot'.
CREATE OR REPLACE VIEW mackinac_liquidity AS SELECT * FROM read_parquet('${lake}/mackinac_liquidity/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_liquidity_dedup AS SELECT * FROM mackinac_liquidity QUALIFY row_number() OVER (PARTITION BY exchange, symbol, block_number, tx_index, action, tick_lower, tick_upper, amount ORDER BY ts_recv, run_id, recv_seq) = 1;

-- mackinac_print: One trade. Live prints and those replayed by a history request (source = 'history') share the table; the dedup key follows the SDK's _dedup_key.
CREATE OR REPLACE VIEW mackinac_print AS SELECT * FROM read_parquet('${lake}/mackinac_print/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_print_dedup AS SELECT * FROM mackinac_print QUALIFY row_number() OVER (PARTITION BY exchange, symbol, block_number, tx_index, CASE WHEN tx_index IS NULL THEN time_ms END, CASE WHEN tx_index IS NULL THEN price END, CASE WHEN tx_index IS NULL THEN size END, CASE WHEN tx_index IS NULL THEN side END ORDER BY ts_recv, run_id, recv_seq) = 1;

-- mackinac_quote: Book snapshot on every update: CLOB full depth (bids[0] best), AMM one level per fee tier (fee ppm, lastSwapMs), oracle perps one synthetic level.
CREATE OR REPLACE VIEW mackinac_quote AS SELECT * FROM read_parquet('${lake}/mackinac_quote/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_quote_dedup AS SELECT * FROM mackinac_quote QUALIFY row_number() OVER (PARTITION BY exchange, symbol, time_ms, hash(bids, asks) ORDER BY ts_recv, run_id, recv_seq) = 1;

-- mackinac_rate_depth: Pendle depth-at-size: APY quotes per USD size.
CREATE OR REPLACE VIEW mackinac_rate_depth AS SELECT * FROM read_parquet('${lake}/mackinac_rate_depth/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_rate_depth_dedup AS SELECT * FROM mackinac_rate_depth QUALIFY row_number() OVER (PARTITION BY exchange, symbol, time_ms ORDER BY ts_recv, run_id, recv_seq) = 1;

-- mackinac_rate_market: Yield-market snapshot (Pendle ~5 s, Spectra ~30 s) and lending markets (aave/compound/morpho, with zero sentinels in the PT fields).
CREATE OR REPLACE VIEW mackinac_rate_market AS SELECT * FROM read_parquet('${lake}/mackinac_rate_market/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_rate_market_dedup AS SELECT * FROM mackinac_rate_market QUALIFY row_number() OVER (PARTITION BY exchange, chain, address, time_ms ORDER BY ts_recv, run_id, recv_seq) = 1;

-- mackinac_rate_model_params: Interest-rate model parameters, hourly and only on change. Kinked curve (aave/compound) or Morpho adaptive curve.
CREATE OR REPLACE VIEW mackinac_rate_model_params AS SELECT * FROM read_parquet('${lake}/mackinac_rate_model_params/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_rate_model_params_dedup AS SELECT * FROM mackinac_rate_model_params QUALIFY row_number() OVER (PARTITION BY exchange, chain, market, time_ms ORDER BY ts_recv, run_id, recv_seq) = 1;

-- mackinac_server_closing: Planned restart notice; we reconnect after reconnectIn.
CREATE OR REPLACE VIEW mackinac_server_closing AS SELECT * FROM read_parquet('${lake}/mackinac_server_closing/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_server_closing_dedup AS SELECT * FROM mackinac_server_closing QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq) = 1;

-- mackinac_snapshot: Reply to a history request; its prints are in mackinac_print with source = 'history'.
CREATE OR REPLACE VIEW mackinac_snapshot AS SELECT * FROM read_parquet('${lake}/mackinac_snapshot/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_snapshot_dedup AS SELECT * FROM mackinac_snapshot QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq) = 1;

-- mackinac_spread: Same-venue cross-pool spread (uni, univ4; professional tier).
CREATE OR REPLACE VIEW mackinac_spread AS SELECT * FROM read_parquet('${lake}/mackinac_spread/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_spread_dedup AS SELECT * FROM mackinac_spread QUALIFY row_number() OVER (PARTITION BY exchange, symbol, time_ms ORDER BY ts_recv, run_id, recv_seq) = 1;

-- mackinac_subscribed: Subscribe ack (SDK >= 0.1.1; the websocket page says there is none, so its absence is fine).
CREATE OR REPLACE VIEW mackinac_subscribed AS SELECT * FROM read_parquet('${lake}/mackinac_subscribed/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_subscribed_dedup AS SELECT * FROM mackinac_subscribed QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq) = 1;
