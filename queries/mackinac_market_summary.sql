-- Per market: quote updates, median top-of-book spread in bps, prints (deduplicated across the
-- live stream and history replies), traded size and VWAP. Runs on any slice of the lake.
WITH tob AS (
    SELECT exchange, symbol,
           bids[1].price AS bid, asks[1].price AS ask
    FROM mackinac_quote
    WHERE len(bids) > 0 AND len(asks) > 0
), q AS (
    SELECT exchange, symbol, count(*) AS quotes,
           round(median((ask - bid) / ((ask + bid) / 2) * 1e4), 2) AS med_spread_bps
    FROM tob GROUP BY ALL
), p AS (
    SELECT exchange, symbol, count(*) AS prints, round(sum(size), 4) AS volume,
           round(sum(price * size) / nullif(sum(size), 0), 4) AS vwap
    FROM mackinac_print_dedup GROUP BY ALL
)
SELECT coalesce(q.exchange, p.exchange) AS exchange, coalesce(q.symbol, p.symbol) AS symbol,
       q.quotes, q.med_spread_bps, p.prints, p.volume, p.vwap
FROM q FULL OUTER JOIN p ON q.exchange = p.exchange AND q.symbol = p.symbol
ORDER BY exchange, symbol;
