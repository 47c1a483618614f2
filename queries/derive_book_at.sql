-- A Derive order book at time T from the lake: the newest orderbook.{instrument}.{group}.{depth}
-- snapshot received at or before T (each message is the whole top-N book, so a skipped
-- publish_id loses nothing once the next one arrives). recorder.books.book_at(data, "derive",
-- instrument, t) gives the same book in Python, and top_series() the top-N after each update.
--
-- As a macro:   SELECT * FROM derive_book_at('ETH-PERP', TIMESTAMPTZ '2026-01-01 12:00:00+00');
-- Without a variable the final SELECT shows the most recently updated instrument's book now.
CREATE OR REPLACE MACRO derive_book_at(inst, t) AS TABLE
WITH snap AS (
    SELECT bids, asks, publish_id FROM derive_orderbook_dedup
    WHERE instrument_name = inst AND ts_recv_ns <= epoch_ns(CAST(t AS TIMESTAMPTZ))
    ORDER BY ts_recv_ns DESC, publish_id DESC LIMIT 1
), levels AS (
    SELECT 'bid' AS side, unnest(bids) AS l, publish_id FROM snap
    UNION ALL
    SELECT 'ask' AS side, unnest(asks) AS l, publish_id FROM snap
)
SELECT side, l.price AS price, sum(l.amount) AS size, any_value(publish_id) AS publish_id
FROM levels WHERE l.amount > 0 GROUP BY side, l.price
ORDER BY side DESC, CASE WHEN side = 'bid' THEN -price ELSE price END;

SELECT * FROM derive_book_at(
    coalesce(getvariable('book_instrument'),
             (SELECT instrument_name FROM derive_orderbook ORDER BY ts_recv_ns DESC LIMIT 1)),
    coalesce(getvariable('book_t')::TIMESTAMPTZ, now()));
