-- Generated from the schema registry (recorder/schema.py and recorder/venues/*/tables.py)
-- by `recorder views --write`; tests/test_views.py fails when this file and the registry
-- differ. ${lake} is the lake folder; recorder.duck.connect() substitutes it.

-- session_events: Connection life as data: connects, auth results, subscribe acks, disconnects with code and reason, venue hints (server_closing, stale/live, rate limits), errors and gaps with both ends. Join it to know where the tape is incomplete.
CREATE OR REPLACE VIEW session_events AS SELECT * FROM read_parquet('${lake}/session_events/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW session_events_dedup AS SELECT * FROM session_events QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq, event, channel ORDER BY ts_recv, run_id, recv_seq) = 1;

-- unhandled: Frames no handler knows, frames that are not valid JSON, and rows whose values did not fit their column's type: counted and stored with the raw text, never dropped.
CREATE OR REPLACE VIEW unhandled AS SELECT * FROM read_parquet('${lake}/unhandled/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW unhandled_dedup AS SELECT * FROM unhandled QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq, reason, raw ORDER BY ts_recv, run_id, recv_seq) = 1;

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

-- totalis_auth_error: WS `auth:error`: the key was refused.
CREATE OR REPLACE VIEW totalis_auth_error AS SELECT * FROM read_parquet('${lake}/totalis_auth_error/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_auth_error_dedup AS SELECT * FROM totalis_auth_error QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq) = 1;

-- totalis_auth_success: WS `auth:success`.
CREATE OR REPLACE VIEW totalis_auth_success AS SELECT * FROM read_parquet('${lake}/totalis_auth_success/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_auth_success_dedup AS SELECT * FROM totalis_auth_success QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq) = 1;

-- totalis_cashout_best_quote: Cashout stream `best_quote`: the counterparty's buyback quote (null when none is live).
CREATE OR REPLACE VIEW totalis_cashout_best_quote AS SELECT * FROM read_parquet('${lake}/totalis_cashout_best_quote/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_cashout_best_quote_dedup AS SELECT * FROM totalis_cashout_best_quote QUALIFY row_number() OVER (PARTITION BY cashout_request_id, book_seq, sse_id ORDER BY ts_recv, run_id, recv_seq) = 1;

-- totalis_cashout_request: MM stream `cashout_request`: an early-cashout auction opened.
CREATE OR REPLACE VIEW totalis_cashout_request AS SELECT * FROM read_parquet('${lake}/totalis_cashout_request/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_cashout_request_dedup AS SELECT * FROM totalis_cashout_request QUALIFY row_number() OVER (PARTITION BY sse_id, cashout_request_id, version ORDER BY ts_recv, run_id, recv_seq) = 1;

-- totalis_cashout_status: Cashout stream `status`: terminal; the stream closes.
CREATE OR REPLACE VIEW totalis_cashout_status AS SELECT * FROM read_parquet('${lake}/totalis_cashout_status/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_cashout_status_dedup AS SELECT * FROM totalis_cashout_status QUALIFY row_number() OVER (PARTITION BY cashout_request_id, status, sse_id ORDER BY ts_recv, run_id, recv_seq) = 1;

-- totalis_connected: MM stream: first event of every connection, with the MM's id.
CREATE OR REPLACE VIEW totalis_connected AS SELECT * FROM read_parquet('${lake}/totalis_connected/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_connected_dedup AS SELECT * FROM totalis_connected QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq) = 1;

-- totalis_mm_quote_accepted: mm:quotes `mm_quote:accepted`: the accepted quote's details for the winning MM.
CREATE OR REPLACE VIEW totalis_mm_quote_accepted AS SELECT * FROM read_parquet('${lake}/totalis_mm_quote_accepted/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_mm_quote_accepted_dedup AS SELECT * FROM totalis_mm_quote_accepted QUALIFY row_number() OVER (PARTITION BY quote_id ORDER BY ts_recv, run_id, recv_seq) = 1;

-- totalis_pong: WS `pong`, the reply to our `ping`.
CREATE OR REPLACE VIEW totalis_pong AS SELECT * FROM read_parquet('${lake}/totalis_pong/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_pong_dedup AS SELECT * FROM totalis_pong QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq) = 1;

-- totalis_position_cancelled: rfq `position:cancelled`: collateral unlocked.
CREATE OR REPLACE VIEW totalis_position_cancelled AS SELECT * FROM read_parquet('${lake}/totalis_position_cancelled/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_position_cancelled_dedup AS SELECT * FROM totalis_position_cancelled QUALIFY row_number() OVER (PARTITION BY rfq_id ORDER BY ts_recv, run_id, recv_seq) = 1;

-- totalis_position_created: rfq `position:created`: vault position created.
CREATE OR REPLACE VIEW totalis_position_created AS SELECT * FROM read_parquet('${lake}/totalis_position_created/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_position_created_dedup AS SELECT * FROM totalis_position_created QUALIFY row_number() OVER (PARTITION BY rfq_id ORDER BY ts_recv, run_id, recv_seq) = 1;

-- totalis_position_error: rfq `position:error` (also copied to mm:quotes).
CREATE OR REPLACE VIEW totalis_position_error AS SELECT * FROM read_parquet('${lake}/totalis_position_error/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_position_error_dedup AS SELECT * FROM totalis_position_error QUALIFY row_number() OVER (PARTITION BY rfq_id, timestamp, error ORDER BY ts_recv, run_id, recv_seq) = 1;

-- totalis_position_settled: rfq `position:settled`.
CREATE OR REPLACE VIEW totalis_position_settled AS SELECT * FROM read_parquet('${lake}/totalis_position_settled/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_position_settled_dedup AS SELECT * FROM totalis_position_settled QUALIFY row_number() OVER (PARTITION BY rfq_id, tx_signature ORDER BY ts_recv, run_id, recv_seq) = 1;

-- totalis_qr_best_quote: Request stream `best_quote`: the book's best quote after each change (null when empty). A jump in book_seq is a gap in session_events.
CREATE OR REPLACE VIEW totalis_qr_best_quote AS SELECT * FROM read_parquet('${lake}/totalis_qr_best_quote/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_qr_best_quote_dedup AS SELECT * FROM totalis_qr_best_quote QUALIFY row_number() OVER (PARTITION BY quote_request_id, book_seq, sse_id ORDER BY ts_recv, run_id, recv_seq) = 1;

-- totalis_qr_cancelled: Request stream `cancelled`.
CREATE OR REPLACE VIEW totalis_qr_cancelled AS SELECT * FROM read_parquet('${lake}/totalis_qr_cancelled/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_qr_cancelled_dedup AS SELECT * FROM totalis_qr_cancelled QUALIFY row_number() OVER (PARTITION BY quote_request_id, sse_id ORDER BY ts_recv, run_id, recv_seq) = 1;

-- totalis_qr_committed: Request stream `committed`: the request became an RFQ.
CREATE OR REPLACE VIEW totalis_qr_committed AS SELECT * FROM read_parquet('${lake}/totalis_qr_committed/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_qr_committed_dedup AS SELECT * FROM totalis_qr_committed QUALIFY row_number() OVER (PARTITION BY quote_request_id, sse_id ORDER BY ts_recv, run_id, recv_seq) = 1;

-- totalis_qr_expired: Request stream `expired`: expires_at passed without a commit.
CREATE OR REPLACE VIEW totalis_qr_expired AS SELECT * FROM read_parquet('${lake}/totalis_qr_expired/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_qr_expired_dedup AS SELECT * FROM totalis_qr_expired QUALIFY row_number() OVER (PARTITION BY quote_request_id, sse_id ORDER BY ts_recv, run_id, recv_seq) = 1;

-- totalis_qr_status: Request stream `status`: the request left `active`; one terminal event follows and the stream closes.
CREATE OR REPLACE VIEW totalis_qr_status AS SELECT * FROM read_parquet('${lake}/totalis_qr_status/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_qr_status_dedup AS SELECT * FROM totalis_qr_status QUALIFY row_number() OVER (PARTITION BY quote_request_id, status, sse_id ORDER BY ts_recv, run_id, recv_seq) = 1;

-- totalis_quote_accepted: mm:quotes `quote:accepted`: a user committed our quote; confirm before the deadline. Joins mm_quote_accepted on quote_id (either may come first).
CREATE OR REPLACE VIEW totalis_quote_accepted AS SELECT * FROM read_parquet('${lake}/totalis_quote_accepted/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_quote_accepted_dedup AS SELECT * FROM totalis_quote_accepted QUALIFY row_number() OVER (PARTITION BY quote_id ORDER BY ts_recv, run_id, recv_seq) = 1;

-- totalis_quote_confirmed: mm:quotes `quote:confirmed`: vault settlement begins.
CREATE OR REPLACE VIEW totalis_quote_confirmed AS SELECT * FROM read_parquet('${lake}/totalis_quote_confirmed/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_quote_confirmed_dedup AS SELECT * FROM totalis_quote_confirmed QUALIFY row_number() OVER (PARTITION BY quote_id ORDER BY ts_recv, run_id, recv_seq) = 1;

-- totalis_quote_executed: mm:quotes `quote:executed`: on-chain position created.
CREATE OR REPLACE VIEW totalis_quote_executed AS SELECT * FROM read_parquet('${lake}/totalis_quote_executed/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_quote_executed_dedup AS SELECT * FROM totalis_quote_executed QUALIFY row_number() OVER (PARTITION BY quote_id ORDER BY ts_recv, run_id, recv_seq) = 1;

-- totalis_quote_expired: mm:quotes `quote:expired`: not confirmed in time.
CREATE OR REPLACE VIEW totalis_quote_expired AS SELECT * FROM read_parquet('${lake}/totalis_quote_expired/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_quote_expired_dedup AS SELECT * FROM totalis_quote_expired QUALIFY row_number() OVER (PARTITION BY quote_id ORDER BY ts_recv, run_id, recv_seq) = 1;

-- totalis_quote_rejected: mm:quotes `quote:rejected`: another quote was accepted.
CREATE OR REPLACE VIEW totalis_quote_rejected AS SELECT * FROM read_parquet('${lake}/totalis_quote_rejected/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_quote_rejected_dedup AS SELECT * FROM totalis_quote_rejected QUALIFY row_number() OVER (PARTITION BY quote_id ORDER BY ts_recv, run_id, recv_seq) = 1;

-- totalis_quote_request: MM stream `quote_request`: a new request, or an active one replayed by a snapshot (in_snapshot).
CREATE OR REPLACE VIEW totalis_quote_request AS SELECT * FROM read_parquet('${lake}/totalis_quote_request/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_quote_request_dedup AS SELECT * FROM totalis_quote_request QUALIFY row_number() OVER (PARTITION BY sse_id, quote_request_id, version, request_hash ORDER BY ts_recv, run_id, recv_seq) = 1;

-- totalis_quote_request_expired: MM stream `quote_request_expired` (underscore): the request closed.
CREATE OR REPLACE VIEW totalis_quote_request_expired AS SELECT * FROM read_parquet('${lake}/totalis_quote_request_expired/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_quote_request_expired_dedup AS SELECT * FROM totalis_quote_request_expired QUALIFY row_number() OVER (PARTITION BY sse_id, quote_request_id, reason ORDER BY ts_recv, run_id, recv_seq) = 1;

-- totalis_quote_request_updated: MM stream `quote_request:updated` (colon): the request moved to a new version and hash.
CREATE OR REPLACE VIEW totalis_quote_request_updated AS SELECT * FROM read_parquet('${lake}/totalis_quote_request_updated/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_quote_request_updated_dedup AS SELECT * FROM totalis_quote_request_updated QUALIFY row_number() OVER (PARTITION BY sse_id, quote_request_id, version, request_hash ORDER BY ts_recv, run_id, recv_seq) = 1;

-- totalis_quote_withdrawn: mm:quotes `quote:withdrawn`: withdrawn by the MM (or written back when the MM missed the deadline).
CREATE OR REPLACE VIEW totalis_quote_withdrawn AS SELECT * FROM read_parquet('${lake}/totalis_quote_withdrawn/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_quote_withdrawn_dedup AS SELECT * FROM totalis_quote_withdrawn QUALIFY row_number() OVER (PARTITION BY quote_id ORDER BY ts_recv, run_id, recv_seq) = 1;

-- totalis_snapshot_begin: MM stream: start of the snapshot of active requests (on connect, and on a reconnect the server could not resume).
CREATE OR REPLACE VIEW totalis_snapshot_begin AS SELECT * FROM read_parquet('${lake}/totalis_snapshot_begin/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_snapshot_begin_dedup AS SELECT * FROM totalis_snapshot_begin QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq) = 1;

-- totalis_snapshot_complete: MM stream: end of the snapshot; live events follow.
CREATE OR REPLACE VIEW totalis_snapshot_complete AS SELECT * FROM read_parquet('${lake}/totalis_snapshot_complete/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_snapshot_complete_dedup AS SELECT * FROM totalis_snapshot_complete QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq) = 1;

-- totalis_ws_error: WS `error` (not in the docs: the shape our simulator uses for a refused message, {type, message, code?}).
CREATE OR REPLACE VIEW totalis_ws_error AS SELECT * FROM read_parquet('${lake}/totalis_ws_error/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_ws_error_dedup AS SELECT * FROM totalis_ws_error QUALIFY row_number() OVER (PARTITION BY run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq) = 1;
