-- Generated from the schema registry (recorder/schema.py and recorder/venues/*/tables.py)
-- by `recorder views --write`; tests/test_views.py fails when this file and the registry
-- differ. ${lake} is the lake folder; recorder.duck.connect() substitutes it.

-- session_events: Connection life as data: connects, auth results, subscribe acks, disconnects with code and reason, venue hints (server_closing, stale/live, rate limits), errors and gaps with both ends. Join it to know where the tape is incomplete.
CREATE OR REPLACE VIEW session_events AS SELECT * FROM read_parquet('${lake}/session_events/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW session_events_dedup AS SELECT * FROM session_events QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq, event, channel ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- unhandled: Frames no handler knows, frames that are not valid JSON, and rows whose values did not fit their column's type: counted and stored with the raw text, never dropped.
CREATE OR REPLACE VIEW unhandled AS SELECT * FROM read_parquet('${lake}/unhandled/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW unhandled_dedup AS SELECT * FROM unhandled QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq, reason, raw ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- mackinac_ammbook: Consolidated NBBO across the Arbitrum AMMs (professional tier).
CREATE OR REPLACE VIEW mackinac_ammbook AS SELECT * FROM read_parquet('${lake}/mackinac_ammbook/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_ammbook_dedup AS SELECT * FROM mackinac_ammbook QUALIFY row_number() OVER (PARTITION BY symbol, time_ms, hash(bids, asks) ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- mackinac_ammliquidity_snapshot: One per ammliquidity subscribe; its events are in mackinac_liquidity with source = 'snapshot' (this row keeps the summary).
CREATE OR REPLACE VIEW mackinac_ammliquidity_snapshot AS SELECT * FROM read_parquet('${lake}/mackinac_ammliquidity_snapshot/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_ammliquidity_snapshot_dedup AS SELECT * FROM mackinac_ammliquidity_snapshot QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- mackinac_arbflag: Cross-venue arb gap edges (super_admin): open / closed.
CREATE OR REPLACE VIEW mackinac_arbflag AS SELECT * FROM read_parquet('${lake}/mackinac_arbflag/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_arbflag_dedup AS SELECT * FROM mackinac_arbflag QUALIFY row_number() OVER (PARTITION BY symbol, status, time_ms ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- mackinac_authed: API-key auth accepted.
CREATE OR REPLACE VIEW mackinac_authed AS SELECT * FROM read_parquet('${lake}/mackinac_authed/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_authed_dedup AS SELECT * FROM mackinac_authed QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- mackinac_depth: AMM tick liquidity and market-impact estimates, after Mint/Burn, throttled to 200 ms per symbol.
CREATE OR REPLACE VIEW mackinac_depth AS SELECT * FROM read_parquet('${lake}/mackinac_depth/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_depth_dedup AS SELECT * FROM mackinac_depth QUALIFY row_number() OVER (PARTITION BY exchange, symbol, time_ms ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- mackinac_error: An action was rejected.
CREATE OR REPLACE VIEW mackinac_error AS SELECT * FROM read_parquet('${lake}/mackinac_error/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_error_dedup AS SELECT * FROM mackinac_error QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- mackinac_feed_live: Upstream feed is live again.
CREATE OR REPLACE VIEW mackinac_feed_live AS SELECT * FROM read_parquet('${lake}/mackinac_feed_live/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_feed_live_dedup AS SELECT * FROM mackinac_feed_live QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- mackinac_feed_stale: Upstream feed went stale.
CREATE OR REPLACE VIEW mackinac_feed_stale AS SELECT * FROM read_parquet('${lake}/mackinac_feed_stale/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_feed_stale_dedup AS SELECT * FROM mackinac_feed_stale QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- mackinac_funding: Perp funding, about every 60 s. rate_pct is annualised.
CREATE OR REPLACE VIEW mackinac_funding AS SELECT * FROM read_parquet('${lake}/mackinac_funding/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_funding_dedup AS SELECT * FROM mackinac_funding QUALIFY row_number() OVER (PARTITION BY exchange, symbol, time_ms ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- mackinac_lending_action: Aave/Compound/Morpho supply, withdraw, borrow, repay, liquidate, flashloan.
CREATE OR REPLACE VIEW mackinac_lending_action AS SELECT * FROM read_parquet('${lake}/mackinac_lending_action/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_lending_action_dedup AS SELECT * FROM mackinac_lending_action QUALIFY row_number() OVER (PARTITION BY exchange, chain, block_number, tx_index, log_sender, action, amount ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- mackinac_liquidity: LP Mint/Burn. Rows from an ammliquidity_snapshot have source = 'snapshot'.
CREATE OR REPLACE VIEW mackinac_liquidity AS SELECT * FROM read_parquet('${lake}/mackinac_liquidity/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_liquidity_dedup AS SELECT * FROM mackinac_liquidity QUALIFY row_number() OVER (PARTITION BY exchange, symbol, block_number, tx_index, action, tick_lower, tick_upper, amount ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- mackinac_print: One trade. Live prints and those replayed by a history request (source = 'history') share the table; the dedup key follows the SDK's _dedup_key.
CREATE OR REPLACE VIEW mackinac_print AS SELECT * FROM read_parquet('${lake}/mackinac_print/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_print_dedup AS SELECT * FROM mackinac_print QUALIFY row_number() OVER (PARTITION BY exchange, symbol, block_number, tx_index, CASE WHEN tx_index IS NULL THEN time_ms END, CASE WHEN tx_index IS NULL THEN price END, CASE WHEN tx_index IS NULL THEN size END, CASE WHEN tx_index IS NULL THEN side END ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- mackinac_quote: Book snapshot on every update: CLOB full depth (bids[0] best), AMM one level per fee tier (fee ppm, lastSwapMs), oracle perps one synthetic level.
CREATE OR REPLACE VIEW mackinac_quote AS SELECT * FROM read_parquet('${lake}/mackinac_quote/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_quote_dedup AS SELECT * FROM mackinac_quote QUALIFY row_number() OVER (PARTITION BY exchange, symbol, time_ms, hash(bids, asks) ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- mackinac_rate_depth: Pendle depth-at-size: APY quotes per USD size.
CREATE OR REPLACE VIEW mackinac_rate_depth AS SELECT * FROM read_parquet('${lake}/mackinac_rate_depth/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_rate_depth_dedup AS SELECT * FROM mackinac_rate_depth QUALIFY row_number() OVER (PARTITION BY exchange, symbol, time_ms ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- mackinac_rate_market: Yield-market snapshot (Pendle ~5 s, Spectra ~30 s) and lending markets (aave/compound/morpho, with zero sentinels in the PT fields).
CREATE OR REPLACE VIEW mackinac_rate_market AS SELECT * FROM read_parquet('${lake}/mackinac_rate_market/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_rate_market_dedup AS SELECT * FROM mackinac_rate_market QUALIFY row_number() OVER (PARTITION BY exchange, chain, address, time_ms ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- mackinac_rate_model_params: Interest-rate model parameters, hourly and only on change. Kinked curve (aave/compound) or Morpho adaptive curve.
CREATE OR REPLACE VIEW mackinac_rate_model_params AS SELECT * FROM read_parquet('${lake}/mackinac_rate_model_params/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_rate_model_params_dedup AS SELECT * FROM mackinac_rate_model_params QUALIFY row_number() OVER (PARTITION BY exchange, chain, market, time_ms ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- mackinac_server_closing: Planned restart notice; we reconnect after reconnectIn.
CREATE OR REPLACE VIEW mackinac_server_closing AS SELECT * FROM read_parquet('${lake}/mackinac_server_closing/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_server_closing_dedup AS SELECT * FROM mackinac_server_closing QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- mackinac_snapshot: Reply to a history request; its prints are in mackinac_print with source = 'history'.
CREATE OR REPLACE VIEW mackinac_snapshot AS SELECT * FROM read_parquet('${lake}/mackinac_snapshot/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_snapshot_dedup AS SELECT * FROM mackinac_snapshot QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- mackinac_spread: Same-venue cross-pool spread (uni, univ4; professional tier).
CREATE OR REPLACE VIEW mackinac_spread AS SELECT * FROM read_parquet('${lake}/mackinac_spread/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_spread_dedup AS SELECT * FROM mackinac_spread QUALIFY row_number() OVER (PARTITION BY exchange, symbol, time_ms ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- mackinac_subscribed: Subscribe ack (SDK >= 0.1.1; the websocket page says there is none, so its absence is fine).
CREATE OR REPLACE VIEW mackinac_subscribed AS SELECT * FROM read_parquet('${lake}/mackinac_subscribed/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_subscribed_dedup AS SELECT * FROM mackinac_subscribed QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;
