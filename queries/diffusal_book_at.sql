-- Rebuild a Diffusal order book at time T from the lake: the newest snapshot at or before T
-- (a stream snapshot or a REST one, source = 'rest'), then every diff after its sequence up
-- to T, last write per price winning, size 0 removing the level. Rows received twice (the
-- instrument and the grouped <underlying>@depth stream, or two recorders) count once.
--
-- T is compared with ts_event (the venue's time, depth sends it in ms). `complete` is false
-- when the diffs after the snapshot are not a gapless run of sequences (a recorded gap that
-- was not yet resynchronised at T): the book is then a best effort, see session_events.
--
-- As a macro:   SELECT * FROM diffusal_book_at('BTC-82000-C-1736409600', TIMESTAMPTZ '...');
-- From the CLI: recorder query "SET VARIABLE book_symbol = 'BTC-82000-C-1736409600';
--               SET VARIABLE book_t = TIMESTAMPTZ '2026-01-01 12:00:00+00'; $(cat queries/diffusal_book_at.sql)"
-- Without variables the final SELECT shows the most recently updated symbol's book now.
CREATE OR REPLACE MACRO diffusal_book_at(sym, t) AS TABLE
WITH d AS (
    SELECT type, sequence, bids, asks
    FROM diffusal_depth
    WHERE symbol = sym AND CAST(ts_event AS TIMESTAMPTZ) <= CAST(t AS TIMESTAMPTZ)
    QUALIFY row_number() OVER (PARTITION BY type, sequence ORDER BY ts_recv, run_id, recv_seq) = 1
), snap AS (
    SELECT sequence AS snap_seq, bids, asks FROM d WHERE type = 'snapshot'
    ORDER BY sequence DESC LIMIT 1
), diffs AS (
    SELECT d.sequence, d.bids, d.asks FROM d, snap
    WHERE d.type = 'diff' AND d.sequence > snap.snap_seq
), levels AS (
    SELECT 'bid' AS side, l.price, l.size, seq FROM (
        SELECT snap_seq AS seq, unnest(bids) AS l FROM snap
        UNION ALL SELECT sequence, unnest(bids) FROM diffs)
    UNION ALL
    SELECT 'ask' AS side, l.price, l.size, seq FROM (
        SELECT snap_seq AS seq, unnest(asks) AS l FROM snap
        UNION ALL SELECT sequence, unnest(asks) FROM diffs)
), latest AS (
    SELECT side, price, arg_max(size, seq) AS size FROM levels GROUP BY side, price
), meta AS (
    SELECT (SELECT snap_seq FROM snap) AS snapshot_sequence,
           coalesce((SELECT max(sequence) FROM diffs), (SELECT snap_seq FROM snap))
               AS last_sequence,
           (SELECT count(*) FROM diffs) AS diffs_applied
)
SELECT side, price, size, snapshot_sequence, last_sequence,
       diffs_applied = last_sequence - snapshot_sequence AS complete
FROM latest, meta
WHERE size > 0
ORDER BY side DESC, CASE WHEN side = 'bid' THEN -price ELSE price END;

SELECT * FROM diffusal_book_at(
    coalesce(getvariable('book_symbol'),
             (SELECT symbol FROM diffusal_depth ORDER BY ts_event DESC LIMIT 1)),
    coalesce(getvariable('book_t')::TIMESTAMPTZ, now()));
