-- A Mackinac book at time T from the lake: the newest quote of 'exchange:symbol' received at
-- or before T (every quote is the venue's whole book: CLOB depth, or one level per AMM fee
-- tier, which add up when they share a price). recorder.books does the same in Python.
--
-- As a macro:   SELECT * FROM mackinac_book_at('hl:ETH', TIMESTAMPTZ '2026-01-01 12:00:00+00');
-- Without a variable the final SELECT shows the most recently updated market's book now.
CREATE OR REPLACE MACRO mackinac_book_at(inst, t) AS TABLE
WITH q AS (
    SELECT bids, asks, time_ms FROM mackinac_quote_dedup
    WHERE exchange || ':' || symbol = inst AND ts_recv_ns <= epoch_ns(CAST(t AS TIMESTAMPTZ))
    ORDER BY ts_recv_ns DESC LIMIT 1
), levels AS (
    SELECT 'bid' AS side, unnest(bids) AS l, time_ms FROM q
    UNION ALL
    SELECT 'ask' AS side, unnest(asks) AS l, time_ms FROM q
)
SELECT side, l.price AS price, sum(l.size) AS size, any_value(time_ms) AS time_ms
FROM levels WHERE l.size > 0 GROUP BY side, l.price
ORDER BY side DESC, CASE WHEN side = 'bid' THEN -price ELSE price END;

SELECT * FROM mackinac_book_at(
    coalesce(getvariable('book_instrument'),
             (SELECT exchange || ':' || symbol FROM mackinac_quote ORDER BY ts_recv_ns DESC
              LIMIT 1)),
    coalesce(getvariable('book_t')::TIMESTAMPTZ, now()));
