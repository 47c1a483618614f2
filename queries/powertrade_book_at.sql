-- A Power.Trade firm order book (market_id '0') at time T from the lake: the newest snapshot
-- of the symbol received at or before T (every order, by id), then every order event after it
-- up to T: added orders join, deleted ones leave, an update replaces the old id by the new,
-- executions reduce an order's quantity; what is left, summed by price. A reconnect brings a
-- new snapshot, so the book is whole again from there. recorder.books does the same in Python.
--
-- As a macro:   SELECT * FROM powertrade_book_at('BTC-USD-PERPETUAL', TIMESTAMPTZ '...');
-- Without a variable the final SELECT shows the most recently updated symbol's book now.
CREATE OR REPLACE MACRO powertrade_book_at(sym, t) AS TABLE
WITH snap AS (
    SELECT ts_recv_ns, recv_seq, buy, sell FROM powertrade_snapshot_dedup
    WHERE symbol = sym AND market_id = '0'
      AND ts_recv_ns <= epoch_ns(CAST(t AS TIMESTAMPTZ))
    ORDER BY ts_recv_ns DESC, recv_seq DESC LIMIT 1
), ev AS (
    SELECT 'added' AS kind, side, order_id, NULL AS new_id, price, quantity, ts_recv_ns,
           recv_seq FROM powertrade_order_added_dedup WHERE symbol = sym AND market_id = '0'
    UNION ALL
    SELECT 'deleted', side, order_id, NULL, NULL, NULL, ts_recv_ns, recv_seq
    FROM powertrade_order_deleted_dedup WHERE symbol = sym AND market_id = '0'
    UNION ALL
    SELECT 'executed', side, order_id, NULL, price, quantity, ts_recv_ns, recv_seq
    FROM powertrade_order_executed_dedup WHERE symbol = sym AND market_id = '0'
    UNION ALL
    SELECT 'updated', side, old_order_id, new_order_id, price, quantity, ts_recv_ns, recv_seq
    FROM powertrade_order_updated_dedup WHERE symbol = sym AND market_id = '0'
), after AS (
    SELECT ev.* FROM ev, snap
    WHERE (ev.ts_recv_ns > snap.ts_recv_ns OR (ev.ts_recv_ns = snap.ts_recv_ns
                                               AND ev.recv_seq > snap.recv_seq))
      AND ev.ts_recv_ns <= epoch_ns(CAST(t AS TIMESTAMPTZ))
), born AS (
    SELECT 'buy' AS side, o.order_id, o.price, o.quantity FROM (SELECT unnest(buy) AS o FROM snap)
    UNION ALL
    SELECT 'sell', o.order_id, o.price, o.quantity FROM (SELECT unnest(sell) AS o FROM snap)
    UNION ALL
    SELECT side, order_id, price, quantity FROM after WHERE kind = 'added'
    UNION ALL
    SELECT side, new_id, price, quantity FROM after WHERE kind = 'updated'
), gone AS (
    SELECT order_id FROM after WHERE kind IN ('deleted', 'updated')
), done AS (
    SELECT order_id, sum(quantity) AS filled FROM after WHERE kind = 'executed' GROUP BY 1
), live AS (
    SELECT CASE b.side WHEN 'buy' THEN 'bid' ELSE 'ask' END AS book_side, b.price,
           b.quantity - coalesce(d.filled, 0) AS quantity
    FROM born b LEFT JOIN done d USING (order_id)
    WHERE b.order_id NOT IN (SELECT order_id FROM gone)
)
SELECT book_side AS side, price, sum(quantity) AS size, count(*) AS orders
FROM live WHERE quantity > 0 GROUP BY book_side, price
ORDER BY book_side DESC, CASE WHEN book_side = 'bid' THEN -price ELSE price END;

SELECT * FROM powertrade_book_at(
    coalesce(getvariable('book_symbol'),
             (SELECT symbol FROM powertrade_snapshot WHERE market_id = '0'
              ORDER BY ts_recv_ns DESC LIMIT 1)),
    coalesce(getvariable('book_t')::TIMESTAMPTZ, now()));
