-- Generated from the schema registry (recorder/schema.py and recorder/venues/*/tables.py)
-- by `recorder views --write`; tests/test_views.py fails when this file and the registry
-- differ. ${lake} is the lake folder; recorder.duck.connect() substitutes it.

-- session_events: Connection life as data: connects, auth results, subscribe acks, disconnects with code and reason, venue hints (server_closing, stale/live, rate limits), errors and gaps with both ends. Join it to know where the tape is incomplete.
CREATE OR REPLACE VIEW session_events AS SELECT * FROM read_parquet('${lake}/session_events/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW session_events_dedup AS SELECT * FROM session_events QUALIFY row_number() OVER (PARTITION BY venue, run_id, conn_id, recv_seq, recv_sub ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- unhandled: Frames no handler knows, frames that are not valid JSON, and rows whose values did not fit their column's type: counted and stored with the raw text, never dropped.
CREATE OR REPLACE VIEW unhandled AS SELECT * FROM read_parquet('${lake}/unhandled/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW unhandled_dedup AS SELECT * FROM unhandled QUALIFY row_number() OVER (PARTITION BY venue, run_id, conn_id, recv_seq, recv_sub ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- derive_auctions: auctions.watch: liquidation auctions, one row per element.
CREATE OR REPLACE VIEW derive_auctions AS SELECT * FROM read_parquet('${lake}/derive_auctions/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW derive_auctions_dedup AS SELECT * FROM derive_auctions QUALIFY row_number() OVER (PARTITION BY subaccount_id, timestamp, state ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- derive_balances: {subaccount_id}.balances: balance changes, one row per element. No natural key: the dedup key includes the receive time.
CREATE OR REPLACE VIEW derive_balances AS SELECT * FROM read_parquet('${lake}/derive_balances/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW derive_balances_dedup AS SELECT * FROM derive_balances QUALIFY row_number() OVER (PARTITION BY subaccount_id, name, update_type, previous_balance, new_balance, ts_recv ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- derive_best_quotes: {subaccount_id}.best.quotes: best quote per own RFQ (taker side); result fields flattened, error as error_* columns.
CREATE OR REPLACE VIEW derive_best_quotes AS SELECT * FROM read_parquet('${lake}/derive_best_quotes/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW derive_best_quotes_dedup AS SELECT * FROM derive_best_quotes QUALIFY row_number() OVER (PARTITION BY venue, run_id, conn_id, recv_seq, rfq_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- derive_currencies: public/get_all_currencies answers, one row per currency per refresh.
CREATE OR REPLACE VIEW derive_currencies AS SELECT * FROM read_parquet('${lake}/derive_currencies/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW derive_currencies_dedup AS SELECT * FROM derive_currencies QUALIFY row_number() OVER (PARTITION BY venue, run_id, conn_id, recv_seq, currency ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- derive_instruments: public/get_instruments answers (discovery), one row per instrument per refresh: listings and expiries are visible as rows appearing and disappearing.
CREATE OR REPLACE VIEW derive_instruments AS SELECT * FROM read_parquet('${lake}/derive_instruments/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW derive_instruments_dedup AS SELECT * FROM derive_instruments QUALIFY row_number() OVER (PARTITION BY venue, run_id, conn_id, recv_seq, instrument_name ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- derive_margin_watch: margin.watch: margin state of accounts, one row per element.
CREATE OR REPLACE VIEW derive_margin_watch AS SELECT * FROM read_parquet('${lake}/derive_margin_watch/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW derive_margin_watch_dedup AS SELECT * FROM derive_margin_watch QUALIFY row_number() OVER (PARTITION BY subaccount_id, valuation_timestamp ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- derive_orderbook: orderbook.{instrument}.{group}.{depth}: a full top-N snapshot per message (not a diff). A skipped publish_id is a session_events gap (expected/received).
CREATE OR REPLACE VIEW derive_orderbook AS SELECT * FROM read_parquet('${lake}/derive_orderbook/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW derive_orderbook_dedup AS SELECT * FROM derive_orderbook QUALIFY row_number() OVER (PARTITION BY instrument_name, price_group, depth, publish_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- derive_orders: {subaccount_id}.orders: own order updates, one row per element.
CREATE OR REPLACE VIEW derive_orders AS SELECT * FROM read_parquet('${lake}/derive_orders/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW derive_orders_dedup AS SELECT * FROM derive_orders QUALIFY row_number() OVER (PARTITION BY order_id, last_update_timestamp ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- derive_own_trades: {subaccount_id}.trades and {subaccount_id}.trades.{tx_status}: own fills; the same trade is re-emitted as tx_status (v3 batch_status) moves, each a row.
CREATE OR REPLACE VIEW derive_own_trades AS SELECT * FROM read_parquet('${lake}/derive_own_trades/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW derive_own_trades_dedup AS SELECT * FROM derive_own_trades QUALIFY row_number() OVER (PARTITION BY trade_id, coalesce(tx_status, batch_status) ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- derive_quotes: {subaccount_id}.quotes: own RFQ quotes (the send_quote result shape), one row per element.
CREATE OR REPLACE VIEW derive_quotes AS SELECT * FROM read_parquet('${lake}/derive_quotes/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW derive_quotes_dedup AS SELECT * FROM derive_quotes QUALIFY row_number() OVER (PARTITION BY quote_id, last_update_timestamp ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- derive_rfqs: {wallet}.rfqs: RFQs directed to the wallet (maker side), one row per element.
CREATE OR REPLACE VIEW derive_rfqs AS SELECT * FROM read_parquet('${lake}/derive_rfqs/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW derive_rfqs_dedup AS SELECT * FROM derive_rfqs QUALIFY row_number() OVER (PARTITION BY rfq_id, last_update_timestamp ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- derive_rpc: Every JSON-RPC response to a request of ours, matched by id: the method it answered, ok or the error (code, message, data).
CREATE OR REPLACE VIEW derive_rpc AS SELECT * FROM read_parquet('${lake}/derive_rpc/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW derive_rpc_dedup AS SELECT * FROM derive_rpc QUALIFY row_number() OVER (PARTITION BY venue, run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- derive_spot_feed: spot_feed.{currency}: one row per currency in data.feeds (v3 spot_feed.ALL carries several).
CREATE OR REPLACE VIEW derive_spot_feed AS SELECT * FROM read_parquet('${lake}/derive_spot_feed/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW derive_spot_feed_dedup AS SELECT * FROM derive_spot_feed QUALIFY row_number() OVER (PARTITION BY currency, timestamp ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- derive_ticker: ticker.{instrument}.{interval}: the full instrument ticker, flattened; nested option pricing, stats and instrument details are structs.
CREATE OR REPLACE VIEW derive_ticker AS SELECT * FROM read_parquet('${lake}/derive_ticker/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW derive_ticker_dedup AS SELECT * FROM derive_ticker QUALIFY row_number() OVER (PARTITION BY instrument_name, interval, timestamp ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- derive_ticker_slim: ticker_slim.{instrument}.{interval}: the slim ticker, its one-letter keys mapped to named columns (stats and option_pricing fields too).
CREATE OR REPLACE VIEW derive_ticker_slim AS SELECT * FROM read_parquet('${lake}/derive_ticker_slim/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW derive_ticker_slim_dedup AS SELECT * FROM derive_ticker_slim QUALIFY row_number() OVER (PARTITION BY instrument_name, interval, snapshot_ts ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- derive_trades: trades.{instrument}: public trades, one row per element of data.
CREATE OR REPLACE VIEW derive_trades AS SELECT * FROM read_parquet('${lake}/derive_trades/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW derive_trades_dedup AS SELECT * FROM derive_trades QUALIFY row_number() OVER (PARTITION BY trade_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- derive_trades_by_currency: trades.{instrument_type}.{currency}: public trades of every instrument of a type and currency.
CREATE OR REPLACE VIEW derive_trades_by_currency AS SELECT * FROM read_parquet('${lake}/derive_trades_by_currency/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW derive_trades_by_currency_dedup AS SELECT * FROM derive_trades_by_currency QUALIFY row_number() OVER (PARTITION BY trade_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- derive_trades_settled: trades.{instrument_type}.{currency}.{tx_status}: trades filtered by settlement status (v3: batch_status); each status change of a trade is its own row.
CREATE OR REPLACE VIEW derive_trades_settled AS SELECT * FROM read_parquet('${lake}/derive_trades_settled/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW derive_trades_settled_dedup AS SELECT * FROM derive_trades_settled QUALIFY row_number() OVER (PARTITION BY trade_id, coalesce(tx_status, batch_status) ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- diffusal_account_rfq: Private 'rfq': this account's RFQs; each new requestId gets quotes hydrated over REST, rfq.quotes.<id> on /ws/private and its own /ws/rfq/quotes socket. The channel carries several kinds of event: `type` tells them apart.
CREATE OR REPLACE VIEW diffusal_account_rfq AS SELECT * FROM read_parquet('${lake}/diffusal_account_rfq/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_account_rfq_dedup AS SELECT * FROM diffusal_account_rfq QUALIFY row_number() OVER (PARTITION BY request_id, type, status, updated_at ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- diffusal_auth: Private AUTH accepted: either the seed's {status: 'authenticated'} frame or the reference's {result: AuthSuccessResult, id} (its fields were not retrievable; kept as JSON).
CREATE OR REPLACE VIEW diffusal_auth AS SELECT * FROM read_parquet('${lake}/diffusal_auth/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_auth_dedup AS SELECT * FROM diffusal_auth QUALIFY row_number() OVER (PARTITION BY venue, run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- diffusal_collateral: Private 'collateral': balances per asset.
CREATE OR REPLACE VIEW diffusal_collateral AS SELECT * FROM read_parquet('${lake}/diffusal_collateral/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_collateral_dedup AS SELECT * FROM diffusal_collateral QUALIFY row_number() OVER (PARTITION BY asset, updated_at, balance ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- diffusal_depth: Order book: the snapshot a subscribe sends, then diffs with only the changed levels (size 0 removes a level); REST orderbook snapshots (source = 'rest') in the same table. Instrument and grouped (<underlying>@depth) streams both land here. Rebuild a book with queries/diffusal_book_at.sql.
CREATE OR REPLACE VIEW diffusal_depth AS SELECT * FROM read_parquet('${lake}/diffusal_depth/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_depth_dedup AS SELECT * FROM diffusal_depth QUALIFY row_number() OVER (PARTITION BY symbol, type, sequence ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- diffusal_error: An error reply {error:{code,msg}, id}: 4029 rate/subscription limits, rejected subscribes, AUTH failures (also in session_events).
CREATE OR REPLACE VIEW diffusal_error AS SELECT * FROM read_parquet('${lake}/diffusal_error/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_error_dedup AS SELECT * FROM diffusal_error QUALIFY row_number() OVER (PARTITION BY venue, run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- diffusal_fill: Private 'fill': recent fills snapshot, then each fill.
CREATE OR REPLACE VIEW diffusal_fill AS SELECT * FROM read_parquet('${lake}/diffusal_fill/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_fill_dedup AS SELECT * FROM diffusal_fill QUALIFY row_number() OVER (PARTITION BY fill_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- diffusal_index: Spot price and implied volatility per pair (inputs for client-side Black-Scholes).
CREATE OR REPLACE VIEW diffusal_index AS SELECT * FROM read_parquet('${lake}/diffusal_index/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_index_dedup AS SELECT * FROM diffusal_index QUALIFY row_number() OVER (PARTITION BY pair, timestamp_s, hash(spot_price, volatility) ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- diffusal_instrument: Instruments discovered over REST: GET /api/markets and /api/markets/contracts (endpoint says which). Fields beyond the symbol are inferred.
CREATE OR REPLACE VIEW diffusal_instrument AS SELECT * FROM read_parquet('${lake}/diffusal_instrument/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_instrument_dedup AS SELECT * FROM diffusal_instrument QUALIFY row_number() OVER (PARTITION BY venue, run_id, endpoint, symbol ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- diffusal_liquidation: Private 'liquidation'.
CREATE OR REPLACE VIEW diffusal_liquidation AS SELECT * FROM read_parquet('${lake}/diffusal_liquidation/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_liquidation_dedup AS SELECT * FROM diffusal_liquidation QUALIFY row_number() OVER (PARTITION BY liquidation_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- diffusal_markets: global@markets: series_created and series_settled. No venue time is sent.
CREATE OR REPLACE VIEW diffusal_markets AS SELECT * FROM read_parquet('${lake}/diffusal_markets/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_markets_dedup AS SELECT * FROM diffusal_markets QUALIFY row_number() OVER (PARTITION BY type, series_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- diffusal_order: Private 'order': open orders snapshot, then every order state change.
CREATE OR REPLACE VIEW diffusal_order AS SELECT * FROM read_parquet('${lake}/diffusal_order/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_order_dedup AS SELECT * FROM diffusal_order QUALIFY row_number() OVER (PARTITION BY order_id, status, filled_size, updated_at ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- diffusal_pair: GET /api/markets/pairs, once per run (and on refresh).
CREATE OR REPLACE VIEW diffusal_pair AS SELECT * FROM read_parquet('${lake}/diffusal_pair/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_pair_dedup AS SELECT * FROM diffusal_pair QUALIFY row_number() OVER (PARTITION BY venue, run_id, pair_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- diffusal_portfolio: Private 'portfolio': account-level margin summary.
CREATE OR REPLACE VIEW diffusal_portfolio AS SELECT * FROM read_parquet('${lake}/diffusal_portfolio/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_portfolio_dedup AS SELECT * FROM diffusal_portfolio QUALIFY row_number() OVER (PARTITION BY updated_at, equity, margin_used ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- diffusal_position: Private 'position': initial snapshot rows (is_snapshot) then updates.
CREATE OR REPLACE VIEW diffusal_position AS SELECT * FROM read_parquet('${lake}/diffusal_position/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_position_dedup AS SELECT * FROM diffusal_position QUALIFY row_number() OVER (PARTITION BY symbol, updated_at, size ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- diffusal_private_snapshot: One row per initial snapshot on /ws/private (a channel's, or a rfq.quotes.<id> stream's), even an empty one: the account's state at that moment is exactly the is_snapshot rows of the same receipt (same conn_id, recv_seq).
CREATE OR REPLACE VIEW diffusal_private_snapshot AS SELECT * FROM read_parquet('${lake}/diffusal_private_snapshot/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_private_snapshot_dedup AS SELECT * FROM diffusal_private_snapshot QUALIFY row_number() OVER (PARTITION BY venue, run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- diffusal_reply: A control reply {result, id}: SUBSCRIBE/UNSUBSCRIBE (result null) and LIST_SUBSCRIPTIONS (the channel list). method and params are what we sent with that id.
CREATE OR REPLACE VIEW diffusal_reply AS SELECT * FROM read_parquet('${lake}/diffusal_reply/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_reply_dedup AS SELECT * FROM diffusal_reply QUALIFY row_number() OVER (PARTITION BY venue, run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- diffusal_rest: One row per REST response (hydration, resyncs), failures included: which request, its HTTP status and how many items it held. The items themselves are rows of the stream tables with source = 'rest'.
CREATE OR REPLACE VIEW diffusal_rest AS SELECT * FROM read_parquet('${lake}/diffusal_rest/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_rest_dedup AS SELECT * FROM diffusal_rest QUALIFY row_number() OVER (PARTITION BY venue, run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- diffusal_rfq_auction: RFQ auction requests: rfq_request on /ws/rfq/stream, global@rfq and /ws/rfq/mm (source = 'mm'), the stream's initial snapshot (source = 'snapshot') and GET /api/rfq/active-auctions (source = 'rest'). Beyond requestId, taker, pairId and strike the fields are inferred.
CREATE OR REPLACE VIEW diffusal_rfq_auction AS SELECT * FROM read_parquet('${lake}/diffusal_rfq_auction/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_rfq_auction_dedup AS SELECT * FROM diffusal_rfq_auction QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- diffusal_rfq_auth_success: /ws/rfq/mm accepted our handshake credentials.
CREATE OR REPLACE VIEW diffusal_rfq_auth_success AS SELECT * FROM read_parquet('${lake}/diffusal_rfq_auth_success/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_rfq_auth_success_dedup AS SELECT * FROM diffusal_rfq_auth_success QUALIFY row_number() OVER (PARTITION BY venue, run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- diffusal_rfq_connected: 'connected' greeting of /ws/rfq/stream and /ws/rfq/quotes.
CREATE OR REPLACE VIEW diffusal_rfq_connected AS SELECT * FROM read_parquet('${lake}/diffusal_rfq_connected/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_rfq_connected_dedup AS SELECT * FROM diffusal_rfq_connected QUALIFY row_number() OVER (PARTITION BY venue, run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- diffusal_rfq_heartbeat: Application heartbeats of the three RFQ sockets (interval undocumented).
CREATE OR REPLACE VIEW diffusal_rfq_heartbeat AS SELECT * FROM read_parquet('${lake}/diffusal_rfq_heartbeat/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_rfq_heartbeat_dedup AS SELECT * FROM diffusal_rfq_heartbeat QUALIFY row_number() OVER (PARTITION BY venue, run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- diffusal_rfq_quote: Signed MMM quotes for a request: /ws/rfq/quotes 'quote' frames, private rfq.quotes.<requestId> and GET /api/rfq/quotes/:requestId (source = 'rest'). The EIP-712 quote fields are mmm, taker, seriesId, takerIsBuying, price (WAD) plus size, nonce and expiry (those names inferred).
CREATE OR REPLACE VIEW diffusal_rfq_quote AS SELECT * FROM read_parquet('${lake}/diffusal_rfq_quote/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_rfq_quote_dedup AS SELECT * FROM diffusal_rfq_quote QUALIFY row_number() OVER (PARTITION BY request_id, mmm, nonce, signature ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- diffusal_rfq_quote_rejected: /ws/rfq/mm: one of this MMM's quotes was rejected. Fields inferred.
CREATE OR REPLACE VIEW diffusal_rfq_quote_rejected AS SELECT * FROM read_parquet('${lake}/diffusal_rfq_quote_rejected/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_rfq_quote_rejected_dedup AS SELECT * FROM diffusal_rfq_quote_rejected QUALIFY row_number() OVER (PARTITION BY request_id, nonce, reason ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- diffusal_rfq_resolution: Auction resolved (once per requestId): /ws/rfq/stream, global@rfq and the taker's /ws/rfq/quotes. Fields inferred.
CREATE OR REPLACE VIEW diffusal_rfq_resolution AS SELECT * FROM read_parquet('${lake}/diffusal_rfq_resolution/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_rfq_resolution_dedup AS SELECT * FROM diffusal_rfq_resolution QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- diffusal_rfq_snapshot: The active-auction snapshot /ws/rfq/stream sends after connected; its auctions are in diffusal_rfq_auction with source = 'snapshot'. Shape inferred.
CREATE OR REPLACE VIEW diffusal_rfq_snapshot AS SELECT * FROM read_parquet('${lake}/diffusal_rfq_snapshot/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_rfq_snapshot_dedup AS SELECT * FROM diffusal_rfq_snapshot QUALIFY row_number() OVER (PARTITION BY venue, run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- diffusal_rfq_trade_filled: /ws/rfq/mm: a quote of this MMM was filled on-chain. Fields inferred.
CREATE OR REPLACE VIEW diffusal_rfq_trade_filled AS SELECT * FROM read_parquet('${lake}/diffusal_rfq_trade_filled/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_rfq_trade_filled_dedup AS SELECT * FROM diffusal_rfq_trade_filled QUALIFY row_number() OVER (PARTITION BY request_id, tx_hash ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- diffusal_ticker: Best bid/ask, index price and open interest per instrument (no mark price or Greeks: clients compute those from @index). ts_event is lastTradeAt, the only venue time the ticker carries.
CREATE OR REPLACE VIEW diffusal_ticker AS SELECT * FROM read_parquet('${lake}/diffusal_ticker/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_ticker_dedup AS SELECT * FROM diffusal_ticker QUALIFY row_number() OVER (PARTITION BY symbol, last_trade_at_s, hash(index_price, best_bid, best_ask, best_bid_size, best_ask_size, open_interest) ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- diffusal_trade: Executed trades. The same trade arrives on <symbol>@trade and <underlying>@trade; the dedup key ignores the stream, so the _dedup view keeps one.
CREATE OR REPLACE VIEW diffusal_trade AS SELECT * FROM read_parquet('${lake}/diffusal_trade/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW diffusal_trade_dedup AS SELECT * FROM diffusal_trade QUALIFY row_number() OVER (PARTITION BY symbol, trade_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- mackinac_ammbook: Consolidated NBBO across the Arbitrum AMMs (professional tier).
CREATE OR REPLACE VIEW mackinac_ammbook AS SELECT * FROM read_parquet('${lake}/mackinac_ammbook/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_ammbook_dedup AS SELECT * FROM mackinac_ammbook QUALIFY row_number() OVER (PARTITION BY symbol, time_ms, hash(bids, asks) ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- mackinac_ammliquidity_snapshot: One per ammliquidity subscribe; its events are in mackinac_liquidity with source = 'snapshot' (this row keeps the summary).
CREATE OR REPLACE VIEW mackinac_ammliquidity_snapshot AS SELECT * FROM read_parquet('${lake}/mackinac_ammliquidity_snapshot/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_ammliquidity_snapshot_dedup AS SELECT * FROM mackinac_ammliquidity_snapshot QUALIFY row_number() OVER (PARTITION BY venue, run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- mackinac_arbflag: Cross-venue arb gap edges (super_admin): open / closed.
CREATE OR REPLACE VIEW mackinac_arbflag AS SELECT * FROM read_parquet('${lake}/mackinac_arbflag/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_arbflag_dedup AS SELECT * FROM mackinac_arbflag QUALIFY row_number() OVER (PARTITION BY symbol, status, time_ms ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- mackinac_authed: API-key auth accepted.
CREATE OR REPLACE VIEW mackinac_authed AS SELECT * FROM read_parquet('${lake}/mackinac_authed/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_authed_dedup AS SELECT * FROM mackinac_authed QUALIFY row_number() OVER (PARTITION BY venue, run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- mackinac_depth: AMM tick liquidity and market-impact estimates, after Mint/Burn, throttled to 200 ms per symbol.
CREATE OR REPLACE VIEW mackinac_depth AS SELECT * FROM read_parquet('${lake}/mackinac_depth/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_depth_dedup AS SELECT * FROM mackinac_depth QUALIFY row_number() OVER (PARTITION BY exchange, symbol, time_ms ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- mackinac_error: An action was rejected.
CREATE OR REPLACE VIEW mackinac_error AS SELECT * FROM read_parquet('${lake}/mackinac_error/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_error_dedup AS SELECT * FROM mackinac_error QUALIFY row_number() OVER (PARTITION BY venue, run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- mackinac_feed_live: Upstream feed is live again.
CREATE OR REPLACE VIEW mackinac_feed_live AS SELECT * FROM read_parquet('${lake}/mackinac_feed_live/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_feed_live_dedup AS SELECT * FROM mackinac_feed_live QUALIFY row_number() OVER (PARTITION BY venue, run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- mackinac_feed_stale: Upstream feed went stale.
CREATE OR REPLACE VIEW mackinac_feed_stale AS SELECT * FROM read_parquet('${lake}/mackinac_feed_stale/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_feed_stale_dedup AS SELECT * FROM mackinac_feed_stale QUALIFY row_number() OVER (PARTITION BY venue, run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

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
CREATE OR REPLACE VIEW mackinac_server_closing_dedup AS SELECT * FROM mackinac_server_closing QUALIFY row_number() OVER (PARTITION BY venue, run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- mackinac_snapshot: Reply to a history request; its prints are in mackinac_print with source = 'history'.
CREATE OR REPLACE VIEW mackinac_snapshot AS SELECT * FROM read_parquet('${lake}/mackinac_snapshot/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_snapshot_dedup AS SELECT * FROM mackinac_snapshot QUALIFY row_number() OVER (PARTITION BY venue, run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- mackinac_spread: Same-venue cross-pool spread (uni, univ4; professional tier).
CREATE OR REPLACE VIEW mackinac_spread AS SELECT * FROM read_parquet('${lake}/mackinac_spread/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_spread_dedup AS SELECT * FROM mackinac_spread QUALIFY row_number() OVER (PARTITION BY exchange, symbol, time_ms ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- mackinac_subscribed: Subscribe ack (SDK >= 0.1.1; the websocket page says there is none, so its absence is fine).
CREATE OR REPLACE VIEW mackinac_subscribed AS SELECT * FROM read_parquet('${lake}/mackinac_subscribed/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW mackinac_subscribed_dedup AS SELECT * FROM mackinac_subscribed QUALIFY row_number() OVER (PARTITION BY venue, run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- powertrade_balances_response: Account balances (answer to balances; the message key is not confirmed by the docs: balances_response and balances are both read).
CREATE OR REPLACE VIEW powertrade_balances_response AS SELECT * FROM read_parquet('${lake}/powertrade_balances_response/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW powertrade_balances_response_dedup AS SELECT * FROM powertrade_balances_response QUALIFY row_number() OVER (PARTITION BY user_tag, server_utc_timestamp ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- powertrade_cancel_all_orders: Response to cancel_all_orders, one result per cancelled order.
CREATE OR REPLACE VIEW powertrade_cancel_all_orders AS SELECT * FROM read_parquet('${lake}/powertrade_cancel_all_orders/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW powertrade_cancel_all_orders_dedup AS SELECT * FROM powertrade_cancel_all_orders QUALIFY row_number() OVER (PARTITION BY user_tag, server_utc_timestamp ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- powertrade_cancel_order: Own order cancelled (response to cancel_order, or an expiry).
CREATE OR REPLACE VIEW powertrade_cancel_order AS SELECT * FROM read_parquet('${lake}/powertrade_cancel_order/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW powertrade_cancel_order_dedup AS SELECT * FROM powertrade_cancel_order QUALIFY row_number() OVER (PARTITION BY client_order_id, order_id, utc_timestamp ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- powertrade_command_response: Generic ack or error of a request, matched to our request by user_tag (responses may arrive out of order). error_code 0 = success.
CREATE OR REPLACE VIEW powertrade_command_response AS SELECT * FROM read_parquet('${lake}/powertrade_command_response/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW powertrade_command_response_dedup AS SELECT * FROM powertrade_command_response QUALIFY row_number() OVER (PARTITION BY venue, run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- powertrade_entities_and_rules_response: The tradeable entity list with trading rules (answer to entities_and_rules_request).
CREATE OR REPLACE VIEW powertrade_entities_and_rules_response AS SELECT * FROM read_parquet('${lake}/powertrade_entities_and_rules_response/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW powertrade_entities_and_rules_response_dedup AS SELECT * FROM powertrade_entities_and_rules_response QUALIFY row_number() OVER (PARTITION BY server_utc_timestamp, user_tag ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- powertrade_execution: Own fill.
CREATE OR REPLACE VIEW powertrade_execution AS SELECT * FROM read_parquet('${lake}/powertrade_execution/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW powertrade_execution_dedup AS SELECT * FROM powertrade_execution QUALIFY row_number() OVER (PARTITION BY trade_id, order_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- powertrade_feed_last_trade_price: Feeds: last traded price per entity.
CREATE OR REPLACE VIEW powertrade_feed_last_trade_price AS SELECT * FROM read_parquet('${lake}/powertrade_feed_last_trade_price/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW powertrade_feed_last_trade_price_dedup AS SELECT * FROM powertrade_feed_last_trade_price QUALIFY row_number() OVER (PARTITION BY tradeable_entity_id_text, market_id, timestamp_raw, price_type ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- powertrade_feed_reference_price: Feeds: reference (index/mark) price per entity.
CREATE OR REPLACE VIEW powertrade_feed_reference_price AS SELECT * FROM read_parquet('${lake}/powertrade_feed_reference_price/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW powertrade_feed_reference_price_dedup AS SELECT * FROM powertrade_feed_reference_price QUALIFY row_number() OVER (PARTITION BY tradeable_entity_id_text, market_id, timestamp_raw, price_type ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- powertrade_feed_top_of_book: Feeds: best bid and offer per entity.
CREATE OR REPLACE VIEW powertrade_feed_top_of_book AS SELECT * FROM read_parquet('${lake}/powertrade_feed_top_of_book/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW powertrade_feed_top_of_book_dedup AS SELECT * FROM powertrade_feed_top_of_book QUALIFY row_number() OVER (PARTITION BY tradeable_entity_id_text, market_id, timestamp_raw ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- powertrade_heartbeat: Server heartbeat, every 5 s while the client sends nothing; feeds the idle watchdog.
CREATE OR REPLACE VIEW powertrade_heartbeat AS SELECT * FROM read_parquet('${lake}/powertrade_heartbeat/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW powertrade_heartbeat_dedup AS SELECT * FROM powertrade_heartbeat QUALIFY row_number() OVER (PARTITION BY conn_id, server_utc_timestamp ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- powertrade_new_bulk_order_response: Response to new_bulk_order (key not confirmed: new_bulk_order_response and bulk_order_response are both read).
CREATE OR REPLACE VIEW powertrade_new_bulk_order_response AS SELECT * FROM read_parquet('${lake}/powertrade_new_bulk_order_response/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW powertrade_new_bulk_order_response_dedup AS SELECT * FROM powertrade_new_bulk_order_response QUALIFY row_number() OVER (PARTITION BY user_tag, server_utc_timestamp ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- powertrade_order_accepted: Own order accepted; on a multi-leg entity (an RFQ or a multi-leg order) with its legs.
CREATE OR REPLACE VIEW powertrade_order_accepted AS SELECT * FROM read_parquet('${lake}/powertrade_order_accepted/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW powertrade_order_accepted_dedup AS SELECT * FROM powertrade_order_accepted QUALIFY row_number() OVER (PARTITION BY client_order_id, order_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- powertrade_order_added: An order joined a book; with market_id 'none' it is a new RFQ (multi-leg symbols are sym@ratio/...).
CREATE OR REPLACE VIEW powertrade_order_added AS SELECT * FROM read_parquet('${lake}/powertrade_order_added/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW powertrade_order_added_dedup AS SELECT * FROM powertrade_order_added QUALIFY row_number() OVER (PARTITION BY market_id, tradeable_entity_id_text, symbol, order_id, utc_timestamp ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- powertrade_order_deleted: An order left a book; with market_id 'none' an RFQ was removed.
CREATE OR REPLACE VIEW powertrade_order_deleted AS SELECT * FROM read_parquet('${lake}/powertrade_order_deleted/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW powertrade_order_deleted_dedup AS SELECT * FROM powertrade_order_deleted QUALIFY row_number() OVER (PARTITION BY market_id, tradeable_entity_id_text, symbol, order_id, utc_timestamp ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- powertrade_order_executed: A resting order was (partly) executed: book-level execution.
CREATE OR REPLACE VIEW powertrade_order_executed AS SELECT * FROM read_parquet('${lake}/powertrade_order_executed/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW powertrade_order_executed_dedup AS SELECT * FROM powertrade_order_executed QUALIFY row_number() OVER (PARTITION BY market_id, tradeable_entity_id_text, symbol, order_id, utc_timestamp, quantity_text ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- powertrade_order_rejected: Own order rejected.
CREATE OR REPLACE VIEW powertrade_order_rejected AS SELECT * FROM read_parquet('${lake}/powertrade_order_rejected/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW powertrade_order_rejected_dedup AS SELECT * FROM powertrade_order_rejected QUALIFY row_number() OVER (PARTITION BY client_order_id, utc_timestamp, reason ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- powertrade_order_updated: An order was amended; its id changes from old_order_id to new_order_id.
CREATE OR REPLACE VIEW powertrade_order_updated AS SELECT * FROM read_parquet('${lake}/powertrade_order_updated/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW powertrade_order_updated_dedup AS SELECT * FROM powertrade_order_updated QUALIFY row_number() OVER (PARTITION BY market_id, tradeable_entity_id_text, symbol, old_order_id, new_order_id, utc_timestamp ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- powertrade_positions_response: Account positions (answer to positions; older name position_info).
CREATE OR REPLACE VIEW powertrade_positions_response AS SELECT * FROM read_parquet('${lake}/powertrade_positions_response/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW powertrade_positions_response_dedup AS SELECT * FROM powertrade_positions_response QUALIFY row_number() OVER (PARTITION BY user_tag, server_utc_timestamp ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- powertrade_refresh_interest: Response to refresh_interest (an RFQ's life extended).
CREATE OR REPLACE VIEW powertrade_refresh_interest AS SELECT * FROM read_parquet('${lake}/powertrade_refresh_interest/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW powertrade_refresh_interest_dedup AS SELECT * FROM powertrade_refresh_interest QUALIFY row_number() OVER (PARTITION BY user_tag, server_utc_timestamp ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- powertrade_rest_entity_summary: REST tradeable_entity/all/summary: one row per entity per fetch; supplies the decimal places that scale Feeds prices.
CREATE OR REPLACE VIEW powertrade_rest_entity_summary AS SELECT * FROM read_parquet('${lake}/powertrade_rest_entity_summary/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW powertrade_rest_entity_summary_dedup AS SELECT * FROM powertrade_rest_entity_summary QUALIFY row_number() OVER (PARTITION BY id, symbol, price_decimal_places, quantity_decimal_places ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- powertrade_snapshot: Full book of one entity: after subscribe (market 0), and one per live RFQ (market none) after register_for_rfqs.
CREATE OR REPLACE VIEW powertrade_snapshot AS SELECT * FROM read_parquet('${lake}/powertrade_snapshot/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW powertrade_snapshot_dedup AS SELECT * FROM powertrade_snapshot QUALIFY row_number() OVER (PARTITION BY market_id, tradeable_entity_id_text, symbol, server_utc_timestamp, hash(buy, sell) ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- powertrade_trade: A public trade.
CREATE OR REPLACE VIEW powertrade_trade AS SELECT * FROM read_parquet('${lake}/powertrade_trade/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW powertrade_trade_dedup AS SELECT * FROM powertrade_trade QUALIFY row_number() OVER (PARTITION BY tradeable_entity_id_text, trade_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- powertrade_trade_history_response: Own executions (answer to trade_history_request).
CREATE OR REPLACE VIEW powertrade_trade_history_response AS SELECT * FROM read_parquet('${lake}/powertrade_trade_history_response/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW powertrade_trade_history_response_dedup AS SELECT * FROM powertrade_trade_history_response QUALIFY row_number() OVER (PARTITION BY user_tag, server_utc_timestamp ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_auth_error: WS `auth:error`: the key was refused.
CREATE OR REPLACE VIEW totalis_auth_error AS SELECT * FROM read_parquet('${lake}/totalis_auth_error/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_auth_error_dedup AS SELECT * FROM totalis_auth_error QUALIFY row_number() OVER (PARTITION BY venue, run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_auth_success: WS `auth:success`.
CREATE OR REPLACE VIEW totalis_auth_success AS SELECT * FROM read_parquet('${lake}/totalis_auth_success/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_auth_success_dedup AS SELECT * FROM totalis_auth_success QUALIFY row_number() OVER (PARTITION BY venue, run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_cashout_best_quote: Cashout stream `best_quote`: the counterparty's buyback quote (null when none is live).
CREATE OR REPLACE VIEW totalis_cashout_best_quote AS SELECT * FROM read_parquet('${lake}/totalis_cashout_best_quote/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_cashout_best_quote_dedup AS SELECT * FROM totalis_cashout_best_quote QUALIFY row_number() OVER (PARTITION BY cashout_request_id, book_seq, sse_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_cashout_request: MM stream `cashout_request`: an early-cashout auction opened.
CREATE OR REPLACE VIEW totalis_cashout_request AS SELECT * FROM read_parquet('${lake}/totalis_cashout_request/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_cashout_request_dedup AS SELECT * FROM totalis_cashout_request QUALIFY row_number() OVER (PARTITION BY sse_id, cashout_request_id, version ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_cashout_status: Cashout stream `status`: terminal; the stream closes.
CREATE OR REPLACE VIEW totalis_cashout_status AS SELECT * FROM read_parquet('${lake}/totalis_cashout_status/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_cashout_status_dedup AS SELECT * FROM totalis_cashout_status QUALIFY row_number() OVER (PARTITION BY cashout_request_id, status, sse_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_connected: MM stream: first event of every connection, with the MM's id.
CREATE OR REPLACE VIEW totalis_connected AS SELECT * FROM read_parquet('${lake}/totalis_connected/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_connected_dedup AS SELECT * FROM totalis_connected QUALIFY row_number() OVER (PARTITION BY venue, run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_mm_quote_accepted: mm:quotes `mm_quote:accepted`: the accepted quote's details for the winning MM.
CREATE OR REPLACE VIEW totalis_mm_quote_accepted AS SELECT * FROM read_parquet('${lake}/totalis_mm_quote_accepted/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_mm_quote_accepted_dedup AS SELECT * FROM totalis_mm_quote_accepted QUALIFY row_number() OVER (PARTITION BY quote_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_pong: WS `pong`, the reply to our `ping`.
CREATE OR REPLACE VIEW totalis_pong AS SELECT * FROM read_parquet('${lake}/totalis_pong/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_pong_dedup AS SELECT * FROM totalis_pong QUALIFY row_number() OVER (PARTITION BY venue, run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_position_bought_back: rfq `position:bought_back`: an early cashout closed the position (also on the MM's mm:quotes and identity-only connections: dedup on tx_signature).
CREATE OR REPLACE VIEW totalis_position_bought_back AS SELECT * FROM read_parquet('${lake}/totalis_position_bought_back/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_position_bought_back_dedup AS SELECT * FROM totalis_position_bought_back QUALIFY row_number() OVER (PARTITION BY rfq_id, tx_signature ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_position_cancelled: rfq `position:cancelled`: collateral unlocked.
CREATE OR REPLACE VIEW totalis_position_cancelled AS SELECT * FROM read_parquet('${lake}/totalis_position_cancelled/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_position_cancelled_dedup AS SELECT * FROM totalis_position_cancelled QUALIFY row_number() OVER (PARTITION BY rfq_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_position_created: rfq `position:created`: vault position created.
CREATE OR REPLACE VIEW totalis_position_created AS SELECT * FROM read_parquet('${lake}/totalis_position_created/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_position_created_dedup AS SELECT * FROM totalis_position_created QUALIFY row_number() OVER (PARTITION BY rfq_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_position_error: rfq `position:error` (also copied to mm:quotes).
CREATE OR REPLACE VIEW totalis_position_error AS SELECT * FROM read_parquet('${lake}/totalis_position_error/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_position_error_dedup AS SELECT * FROM totalis_position_error QUALIFY row_number() OVER (PARTITION BY rfq_id, timestamp, error ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_position_failed: rfq `position:failed`: a creation attempt failed and will be retried (event catalog, 'Executed on-chain'). Fields inferred from position:error.
CREATE OR REPLACE VIEW totalis_position_failed AS SELECT * FROM read_parquet('${lake}/totalis_position_failed/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_position_failed_dedup AS SELECT * FROM totalis_position_failed QUALIFY row_number() OVER (PARTITION BY rfq_id, timestamp, error ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_position_settled: rfq `position:settled`.
CREATE OR REPLACE VIEW totalis_position_settled AS SELECT * FROM read_parquet('${lake}/totalis_position_settled/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_position_settled_dedup AS SELECT * FROM totalis_position_settled QUALIFY row_number() OVER (PARTITION BY rfq_id, tx_signature ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_qr_best_quote: Request stream `best_quote`: the book's best quote after each change (null when empty). A jump in book_seq is a gap in session_events.
CREATE OR REPLACE VIEW totalis_qr_best_quote AS SELECT * FROM read_parquet('${lake}/totalis_qr_best_quote/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_qr_best_quote_dedup AS SELECT * FROM totalis_qr_best_quote QUALIFY row_number() OVER (PARTITION BY quote_request_id, book_seq, sse_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_qr_cancelled: Request stream `cancelled`.
CREATE OR REPLACE VIEW totalis_qr_cancelled AS SELECT * FROM read_parquet('${lake}/totalis_qr_cancelled/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_qr_cancelled_dedup AS SELECT * FROM totalis_qr_cancelled QUALIFY row_number() OVER (PARTITION BY quote_request_id, sse_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_qr_committed: Request stream `committed`: the request became an RFQ.
CREATE OR REPLACE VIEW totalis_qr_committed AS SELECT * FROM read_parquet('${lake}/totalis_qr_committed/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_qr_committed_dedup AS SELECT * FROM totalis_qr_committed QUALIFY row_number() OVER (PARTITION BY quote_request_id, sse_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_qr_expired: Request stream `expired`: expires_at passed without a commit.
CREATE OR REPLACE VIEW totalis_qr_expired AS SELECT * FROM read_parquet('${lake}/totalis_qr_expired/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_qr_expired_dedup AS SELECT * FROM totalis_qr_expired QUALIFY row_number() OVER (PARTITION BY quote_request_id, sse_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_qr_status: Request stream `status`: the request left `active`; one terminal event follows and the stream closes.
CREATE OR REPLACE VIEW totalis_qr_status AS SELECT * FROM read_parquet('${lake}/totalis_qr_status/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_qr_status_dedup AS SELECT * FROM totalis_qr_status QUALIFY row_number() OVER (PARTITION BY quote_request_id, status, sse_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_quote_accepted: mm:quotes `quote:accepted`: a user committed our quote; confirm before the deadline. Joins mm_quote_accepted on quote_id (either may come first).
CREATE OR REPLACE VIEW totalis_quote_accepted AS SELECT * FROM read_parquet('${lake}/totalis_quote_accepted/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_quote_accepted_dedup AS SELECT * FROM totalis_quote_accepted QUALIFY row_number() OVER (PARTITION BY quote_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_quote_confirmed: mm:quotes `quote:confirmed`: vault settlement begins.
CREATE OR REPLACE VIEW totalis_quote_confirmed AS SELECT * FROM read_parquet('${lake}/totalis_quote_confirmed/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_quote_confirmed_dedup AS SELECT * FROM totalis_quote_confirmed QUALIFY row_number() OVER (PARTITION BY quote_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_quote_executed: mm:quotes `quote:executed`: on-chain position created.
CREATE OR REPLACE VIEW totalis_quote_executed AS SELECT * FROM read_parquet('${lake}/totalis_quote_executed/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_quote_executed_dedup AS SELECT * FROM totalis_quote_executed QUALIFY row_number() OVER (PARTITION BY quote_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_quote_expired: mm:quotes `quote:expired`: not confirmed in time.
CREATE OR REPLACE VIEW totalis_quote_expired AS SELECT * FROM read_parquet('${lake}/totalis_quote_expired/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_quote_expired_dedup AS SELECT * FROM totalis_quote_expired QUALIFY row_number() OVER (PARTITION BY quote_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_quote_rejected: mm:quotes `quote:rejected`: another quote was accepted.
CREATE OR REPLACE VIEW totalis_quote_rejected AS SELECT * FROM read_parquet('${lake}/totalis_quote_rejected/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_quote_rejected_dedup AS SELECT * FROM totalis_quote_rejected QUALIFY row_number() OVER (PARTITION BY quote_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_quote_request: MM stream `quote_request`: a new request, or an active one replayed by a snapshot (in_snapshot).
CREATE OR REPLACE VIEW totalis_quote_request AS SELECT * FROM read_parquet('${lake}/totalis_quote_request/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_quote_request_dedup AS SELECT * FROM totalis_quote_request QUALIFY row_number() OVER (PARTITION BY sse_id, quote_request_id, version, request_hash ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_quote_request_expired: MM stream `quote_request_expired` (underscore): the request closed.
CREATE OR REPLACE VIEW totalis_quote_request_expired AS SELECT * FROM read_parquet('${lake}/totalis_quote_request_expired/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_quote_request_expired_dedup AS SELECT * FROM totalis_quote_request_expired QUALIFY row_number() OVER (PARTITION BY sse_id, quote_request_id, reason ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_quote_request_updated: MM stream `quote_request:updated` (colon): the request moved to a new version and hash.
CREATE OR REPLACE VIEW totalis_quote_request_updated AS SELECT * FROM read_parquet('${lake}/totalis_quote_request_updated/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_quote_request_updated_dedup AS SELECT * FROM totalis_quote_request_updated QUALIFY row_number() OVER (PARTITION BY sse_id, quote_request_id, version, request_hash ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_quote_submitted: Legacy `quote:submitted` (rfqs:open): a maker quoted an open RFQ. Fields inferred from the MM quote objects.
CREATE OR REPLACE VIEW totalis_quote_submitted AS SELECT * FROM read_parquet('${lake}/totalis_quote_submitted/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_quote_submitted_dedup AS SELECT * FROM totalis_quote_submitted QUALIFY row_number() OVER (PARTITION BY quote_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_quote_withdrawn: mm:quotes `quote:withdrawn`: withdrawn by the MM (or written back when the MM missed the deadline).
CREATE OR REPLACE VIEW totalis_quote_withdrawn AS SELECT * FROM read_parquet('${lake}/totalis_quote_withdrawn/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_quote_withdrawn_dedup AS SELECT * FROM totalis_quote_withdrawn QUALIFY row_number() OVER (PARTITION BY quote_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_rfq_cancelled: rfq `rfq:cancelled`: the parlay was cancelled (pre- or post-commit); also on the legacy rfqs:open channel.
CREATE OR REPLACE VIEW totalis_rfq_cancelled AS SELECT * FROM read_parquet('${lake}/totalis_rfq_cancelled/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_rfq_cancelled_dedup AS SELECT * FROM totalis_rfq_cancelled QUALIFY row_number() OVER (PARTITION BY rfq_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_rfq_created: Legacy `rfq:created` (the removed rfqs:open channel: every open RFQ, for MMs). Its field list was not published; read with the request's fields (inferred).
CREATE OR REPLACE VIEW totalis_rfq_created AS SELECT * FROM read_parquet('${lake}/totalis_rfq_created/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_rfq_created_dedup AS SELECT * FROM totalis_rfq_created QUALIFY row_number() OVER (PARTITION BY rfq_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_rfq_expired: rfq `rfq:expired`: the whole parlay expired; also on the legacy rfqs:open channel.
CREATE OR REPLACE VIEW totalis_rfq_expired AS SELECT * FROM read_parquet('${lake}/totalis_rfq_expired/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_rfq_expired_dedup AS SELECT * FROM totalis_rfq_expired QUALIFY row_number() OVER (PARTITION BY rfq_id ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_rfq_status: rfq `rfq:status`: the RFQ moved to accepted | confirmed | executed | cancelled (event catalog); also on the legacy rfqs:open channel.
CREATE OR REPLACE VIEW totalis_rfq_status AS SELECT * FROM read_parquet('${lake}/totalis_rfq_status/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_rfq_status_dedup AS SELECT * FROM totalis_rfq_status QUALIFY row_number() OVER (PARTITION BY rfq_id, status ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_snapshot_begin: MM stream: start of the snapshot of active requests (on connect, and on a reconnect the server could not resume).
CREATE OR REPLACE VIEW totalis_snapshot_begin AS SELECT * FROM read_parquet('${lake}/totalis_snapshot_begin/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_snapshot_begin_dedup AS SELECT * FROM totalis_snapshot_begin QUALIFY row_number() OVER (PARTITION BY venue, run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_snapshot_complete: MM stream: end of the snapshot; live events follow.
CREATE OR REPLACE VIEW totalis_snapshot_complete AS SELECT * FROM read_parquet('${lake}/totalis_snapshot_complete/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_snapshot_complete_dedup AS SELECT * FROM totalis_snapshot_complete QUALIFY row_number() OVER (PARTITION BY venue, run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_vault_deposited: `vault:deposited` to the account's own connections (event catalog note). Fields from the funds.deposited webhook (inferred for the WebSocket).
CREATE OR REPLACE VIEW totalis_vault_deposited AS SELECT * FROM read_parquet('${lake}/totalis_vault_deposited/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_vault_deposited_dedup AS SELECT * FROM totalis_vault_deposited QUALIFY row_number() OVER (PARTITION BY occurred_at, amount_usdc, vault_balance ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_vault_withdrawn: `vault:withdrawn` to the account's own connections; fields from the funds.withdrawn webhook (inferred).
CREATE OR REPLACE VIEW totalis_vault_withdrawn AS SELECT * FROM read_parquet('${lake}/totalis_vault_withdrawn/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_vault_withdrawn_dedup AS SELECT * FROM totalis_vault_withdrawn QUALIFY row_number() OVER (PARTITION BY occurred_at, amount_usdc, vault_balance ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;

-- totalis_ws_error: WS `error` (not in the docs: the shape our simulator uses for a refused message, {type, message, code?}).
CREATE OR REPLACE VIEW totalis_ws_error AS SELECT * FROM read_parquet('${lake}/totalis_ws_error/date=*/*.parquet', hive_partitioning = true, union_by_name = true);
CREATE OR REPLACE VIEW totalis_ws_error_dedup AS SELECT * FROM totalis_ws_error QUALIFY row_number() OVER (PARTITION BY venue, run_id, conn_id, recv_seq ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;
