"""DuckDB and Polars access to the lake.

``queries/views.sql`` is generated from the schema registry (``recorder views --write``; a test
keeps it equal): one view per table over its hive-partitioned files, and ``<table>_dedup``
applying the table's dedup key; then the views built on those (``gaps``). ``${lake}`` stands
for the lake folder. DuckDB and Polars read the ``date=YYYY-MM-DD`` folder as a DATE column
named ``date``.

Time in the views: the lake keeps nanoseconds (``TIMESTAMP(ns, UTC)``), which DuckDB reads as
``TIMESTAMPTZ_NS``, a type most of its functions refuse (``epoch_ms``, subtraction). So every
top-level time column ``c`` is a ``TIMESTAMPTZ`` in the views (microseconds, truncated, never
rounded up into the next bucket), and ``c_ns`` beside it is the exact BIGINT nanoseconds since
the epoch. Deduplication runs on the files' own values, before that conversion, so two rows a
few nanoseconds apart are never taken for one.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from recorder.catalogue import Catalogue
from recorder.schema import (
    CROSS_COMMON,
    CROSS_TAIL,
    CROSS_VIEWS,
    RECEIPT_ORDER,
    CrossView,
    Maps,
    Table,
    dedup_partition,
)
from recorder.venues import CATALOGUE

VIEWS_FILE = Path(__file__).resolve().parent.parent / "queries" / "views.sql"
_HEADER = """-- Generated from the schema registry (recorder/schema.py and recorder/venues/*/tables.py)
-- by `recorder views --write`; tests/test_views.py fails when this file and the registry
-- differ. ${lake} is the lake folder; recorder.duck.connect() substitutes it.
"""


def _glob(table: str) -> str:
    return f"${{lake}}/{table}/date=*/*.parquet"


def _source(t: Table) -> str:
    return (f"read_parquet('{_glob(t.name)}', hive_partitioning = true, "
            f"union_by_name = true)")


def time_columns(t: Table) -> list[str]:
    """The table's top-level time columns (timestamps of any unit)."""
    return [f.name for f in t.arrow_schema if pa.types.is_timestamp(f.type)]


def _select(t: Table) -> str:
    """The views' columns: each time column as TIMESTAMPTZ (µs, truncated: ``epoch_ns // 1000``
    floors every time after 1970) plus its exact ``*_ns``; ``date`` last."""
    cols = time_columns(t)
    if not cols:
        return "*"
    conv = ", ".join(f"make_timestamptz(epoch_ns({c}) // 1000) AS {c}" for c in cols)
    ns = ", ".join(f"epoch_ns({c}) AS {c}_ns" for c in cols)
    return f"* EXCLUDE (date) REPLACE ({conv}), {ns}, date"


# Compaction names its files compacted-<id>-<part>.parquet (recorder.compact); every other
# lake file is fresh (written by a builder, not compacted yet).
_FRESH_FILES = "SELECT file FROM glob('{glob}') WHERE NOT contains(file, '/compacted-')"


def dedup_sql(t: Table, source: str) -> str:
    """The first receipt of each dedup key (within a venue) of ``source``'s rows.

    Only keys seen more than once need ranking: a 64-bit hash of the key finds them (a
    superset: equal keys hash equal), and only those rows go through the window, on their
    exact key. Ranking every row (a sort of the whole table, wide rows and all) made a
    query over 10M prints several times slower than over the plain view.

    Compacted files are deduplicated already (``recorder compact``: within their day and
    against the day before). While the table has only those, the hashing is skipped: the
    guard lists file names (``glob``, no file is read), so ``T_dedup`` costs about what ``T``
    costs on a compacted lake. As soon as one fresh file exists (today's, a late run's, a
    rebuild's), every row is hashed and counted, compacted ones included, so a fresh copy of
    a compacted row is caught. Measured on 2M prints (bench/ohlcv.py's day, 156 files): before
    compaction 2.0 s against 1.4 s for hashing with no guard and 2.7-3.2 s for hashing only
    the fresh files' keys (which needs every row's file name and a semi-join of the compacted
    keys against all fresh ones); after it 0.2 s against 0.13 s for the plain view. The one
    thing the guard gives up: on a lake with no fresh file, a copy held by two compacted days
    more than a day apart stays twice."""
    key = ", ".join(dedup_partition(t))
    h = f"hash({key})"
    order = ", ".join(RECEIPT_ORDER)
    fresh = _FRESH_FILES.format(glob=_glob(t.name))
    return (f"WITH __cand AS (SELECT {h} AS __h FROM {source} "
            f"WHERE (SELECT count(*) FROM ({fresh})) > 0 GROUP BY ALL HAVING count(*) > 1) "
            f"SELECT * FROM {source} WHERE {h} NOT IN (SELECT __h FROM __cand) "
            f"UNION ALL (SELECT * FROM {source} WHERE {h} IN (SELECT __h FROM __cand) "
            f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {order}) = 1)")


def view_sql(t: Table) -> str:
    doc = t.doc.replace("\n", " ")
    sel = _select(t)
    return (
        f"-- {t.name}: {doc}\n"
        f"CREATE OR REPLACE VIEW {t.name} AS SELECT {sel} FROM {_source(t)};\n"
        f"CREATE OR REPLACE VIEW {t.name}_dedup AS SELECT {sel} FROM "
        f"({dedup_sql(t, _source(t))});\n"
    )


GAPS_SQL = """One row per hole in the tape: venue, run, connection (and channel for a sequence gap), cause, first and last instant (gap_start/gap_end TIMESTAMPTZ, exact *_ns), duration. Causes: disconnect, server_closing, idle_timeout and frame_too_large (a connection lost and made again: from the last frame before to the reconnect), sequence_gap (the venue's sequence jumped: expected/received; it ends at the resync when the venue has one, else it is an instant), stale_feed (feed_stale until feed_live), backpressure (our disk was behind: frames were read late, none lost), connect_failed (no connection yet: from the first failed attempt to the first connect), run_gap (the time between two runs of one config).
CREATE OR REPLACE VIEW gaps AS
WITH ev AS (
    SELECT *,
           max(CASE WHEN event = 'server_closing' THEN ts_recv_ns END) OVER w AS closing_ns,
           max(CASE WHEN event = 'idle_timeout' THEN ts_recv_ns END) OVER w AS idle_ns,
           max(CASE WHEN event = 'frame_too_large' THEN ts_recv_ns END) OVER w AS too_large_ns,
           last_value(CASE WHEN event = 'disconnected' THEN code END IGNORE NULLS) OVER w
               AS down_code,
           last_value(CASE WHEN event = 'disconnected' THEN reason END IGNORE NULLS) OVER w
               AS down_reason,
           -- the connect before this reconnect's own (a reconnect is the row right after
           -- its connected: both come from one journal record)
           max(CASE WHEN event = 'connected' THEN ts_recv_ns END) OVER p AS prev_connect_ns,
           min(CASE WHEN event = 'connected' THEN ts_recv_ns END) OVER c AS first_connect_ns,
           max(ts_recv_ns) OVER c AS conn_last_ns
    FROM session_events
    WINDOW w AS (PARTITION BY venue, run_id, conn_id ORDER BY recv_seq, recv_sub
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
           p AS (PARTITION BY venue, run_id, conn_id ORDER BY recv_seq, recv_sub
                 ROWS BETWEEN UNBOUNDED PRECEDING AND 2 PRECEDING),
           c AS (PARTITION BY venue, run_id, conn_id)
), ends AS (
    SELECT venue, run_id, conn_id, channel, event, ts_recv_ns FROM ev
    WHERE event IN ('resynced', 'feed_live', 'backpressure_end')
), raw AS (
    SELECT venue, run_id, conn_id, NULL::VARCHAR AS channel,
           -- what happened on the connection that was lost (since its connect) says why
           CASE WHEN closing_ns > coalesce(prev_connect_ns, 0) THEN 'server_closing'
                WHEN idle_ns > coalesce(prev_connect_ns, 0) THEN 'idle_timeout'
                WHEN too_large_ns > coalesce(prev_connect_ns, 0) THEN 'frame_too_large'
                ELSE 'disconnect' END AS cause,
           coalesce(gap_start_ns, ts_recv_ns) AS start_ns, coalesce(gap_end_ns, ts_recv_ns) AS end_ns,
           NULL::BIGINT AS expected, NULL::BIGINT AS received, down_code AS code,
           down_reason AS reason, event AS source_event
    FROM ev WHERE event = 'reconnected'
    UNION ALL
    SELECT g.venue, g.run_id, g.conn_id, g.channel, 'sequence_gap', g.ts_recv_ns,
           coalesce(r.ts_recv_ns, g.ts_recv_ns), g.expected, g.received, g.code, g.reason, g.event
    FROM ev g ASOF LEFT JOIN (SELECT * FROM ends WHERE event = 'resynced') r
        ON g.venue = r.venue AND g.run_id = r.run_id AND g.channel = r.channel
       AND r.ts_recv_ns >= g.ts_recv_ns
    WHERE g.event = 'gap'
    UNION ALL
    SELECT s.venue, s.run_id, s.conn_id, s.channel, 'stale_feed', s.ts_recv_ns,
           coalesce(l.ts_recv_ns, s.conn_last_ns), NULL, NULL, s.code, s.reason, s.event
    FROM ev s ASOF LEFT JOIN (SELECT * FROM ends WHERE event = 'feed_live') l
        ON s.venue = l.venue AND s.run_id = l.run_id AND s.conn_id = l.conn_id
       AND s.channel IS NOT DISTINCT FROM l.channel AND l.ts_recv_ns >= s.ts_recv_ns
    WHERE s.event = 'feed_stale'
    UNION ALL
    SELECT b.venue, b.run_id, b.conn_id, b.channel, 'backpressure', b.ts_recv_ns,
           coalesce(e.ts_recv_ns, b.conn_last_ns), NULL, NULL, b.code, b.reason, b.event
    FROM ev b ASOF LEFT JOIN (SELECT * FROM ends WHERE event = 'backpressure_end') e
        ON b.venue = e.venue AND b.run_id = e.run_id AND b.conn_id = e.conn_id
       AND e.ts_recv_ns >= b.ts_recv_ns
    WHERE b.event = 'backpressure'
    UNION ALL
    SELECT venue, run_id, conn_id, NULL, 'connect_failed', min(ts_recv_ns),
           coalesce(any_value(first_connect_ns), max(conn_last_ns)), NULL, NULL,
           arg_max(code, ts_recv_ns), arg_max(reason, ts_recv_ns), 'connect_failed'
    FROM ev
    WHERE event = 'connect_failed' AND (first_connect_ns IS NULL OR ts_recv_ns < first_connect_ns)
    GROUP BY venue, run_id, conn_id
    UNION ALL
    SELECT venue, run_id, conn_id, channel, 'run_gap', coalesce(gap_start_ns, ts_recv_ns),
           coalesce(gap_end_ns, ts_recv_ns), NULL, NULL, code, reason, event
    FROM ev WHERE event = 'run_gap'
)
SELECT venue, run_id, conn_id, channel, cause,
       make_timestamptz(start_ns // 1000) AS gap_start, make_timestamptz(end_ns // 1000) AS gap_end,
       start_ns AS gap_start_ns, end_ns AS gap_end_ns, (end_ns - start_ns) / 1e9 AS duration_s,
       expected, received, code, reason, source_event
FROM raw
ORDER BY gap_start_ns, venue, conn_id;
"""

# Views over the table views, in this order (each may use those before it). The first line
# of each is its documentation (the comment the generated file shows above it).
DERIVED_VIEWS: dict[str, str] = {"gaps": GAPS_SQL}


def _mapped_select(t: Table, m: Maps, view: CrossView) -> str:
    """One venue table's rows in ``view``'s shape: every column cast to its declared type,
    those the mapping does not name NULL.

    It reads the table's ``_dedup`` view: a cross-venue question (volume per venue, every
    RFQ's life) must count a print once however many recorders, history replies or grouped
    streams delivered it. On compacted days that view costs nothing more than the plain
    one (compacted files are skipped by the dedup, see :func:`dedup_sql`), and before
    compaction the plain view would be wrong."""
    given = dict(m.columns)
    ev = given.get("ts_event_ns")
    out = ["venue", f"'{t.name}' AS source_table",
           "ts_event" if ev is None else f"make_timestamptz(({ev}) // 1000) AS ts_event",
           "ts_event_ns" if ev is None else f"CAST({ev} AS BIGINT) AS ts_event_ns",
           "ts_recv", "ts_recv_ns"]
    for name, typ, _ in view.columns:
        expr = given.get(name)
        out.append(f"CAST({expr} AS {typ}) AS {name}" if expr is not None
                   else f"NULL::{typ} AS {name}")
    out += [n for n, _, _ in CROSS_TAIL]
    src = f"{t.name}_dedup AS src"
    if m.unnest:
        src = (f"(SELECT *, unnest({m.unnest}) AS _lv, generate_subscripts({m.unnest}, 1) "
               f"AS _lv_i FROM {t.name}_dedup) AS src")
    where = f"\n    WHERE {m.where}" if m.where else ""
    return f"SELECT {', '.join(out)}\n    FROM {src}{where}"


def mappings(catalogue: Catalogue, view: str) -> list[tuple[Table, Maps]]:
    """(table, mapping) of every venue table mapping onto ``view``, in catalogue order."""
    return [(t, m) for t in catalogue.tables.values() for m in t.maps if m.view == view]


def cross_view_sql(view: CrossView, catalogue: Catalogue = CATALOGUE) -> str:
    parts = [_mapped_select(t, m, view) for t, m in mappings(catalogue, view.name)]
    if not parts:  # no venue has it: an empty view of the right shape
        cols = [*CROSS_COMMON, *view.columns, *CROSS_TAIL]
        parts = ["SELECT " + ", ".join(f"NULL::{typ} AS {n}" for n, typ, _ in cols) +
                 " WHERE false"]
    doc = view.doc.replace("\n", " ")
    return (f"-- {view.name}: {doc}\n"
            f"CREATE OR REPLACE VIEW {view.name} AS\n" + "\nUNION ALL ".join(parts) + ";\n")


def render_views() -> str:
    tables = sorted(CATALOGUE.tables.values(), key=lambda t: (t.venue != "*", t.name))
    derived = [f"-- {name}: {sql.strip()}\n" for name, sql in DERIVED_VIEWS.items()]
    cross = [cross_view_sql(v) for v in CROSS_VIEWS]
    return _HEADER + "\n" + "\n".join([*(view_sql(t) for t in tables), *derived, *cross])


_BLOCK = re.compile(r"^-- ([a-z0-9_]+): .*$", re.M)


def _statements(sql: str) -> list[tuple[str, str]]:
    """(table name, its statements) per view block of views.sql."""
    heads = list(_BLOCK.finditer(sql))
    out = []
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(sql)
        out.append((m.group(1), sql[m.end():end].strip()))
    return out


def _lake(data_dir: str | Path, remote: str | None) -> tuple[
        str, dict[str, list[str]] | None, set[str], object | None]:
    """Where the views read: a folder (globbed), or, on a bucket, each table's explicit list
    of visible files (:func:`recorder.remote.visible`: a compaction replaces files by one
    commit record, so a glob would see both); the tables with files; and the fsspec
    filesystem DuckDB reads a bucket through."""
    if not remote:
        lake = (Path(data_dir) / "lake").resolve()
        have = {p.parent.parent.name for p in lake.glob("*/date=*/*.parquet")}
        return str(lake), None, have, None
    from recorder.remote import Remote, visible

    r = Remote.parse(remote)
    seen = visible(r, r.fs())
    files = {t: sorted(r.uri(rel) for rel in v) for t, v in seen.items()}
    known = {rel: size for v in seen.values() for rel, size in v.items()}
    return r.uri("lake"), files, set(files), r.duckdb_fs(known)


_MEMBER_OF = re.compile(r"\bFROM \(?(?:SELECT \*, .*? FROM )?([a-z0-9_]+)_dedup\b")


def _without_empty_members(stmts: str, have: set[str]) -> str:
    """A cross-venue view without the SELECTs of tables that have no file (they add no row,
    and binding each costs its ``_dedup`` view's bind again); the first is kept when none
    has a file, for the view's shape."""
    head, sep, rest = stmts.partition(" AS\n")
    parts = rest.rstrip(";\n").split("\nUNION ALL ")
    keep = [p for p in parts if (m := _MEMBER_OF.search(p)) is None or m.group(1) in have]
    return head + sep + "\nUNION ALL ".join(keep or parts[:1]) + ";"


@functools.cache
def _ddl() -> dict[str, str]:
    """Per registry table, ``"col" TYPE, ...``: the DuckDB column list of its Arrow schema
    (as DuckDB maps it when it reads the table's files). Made once per process, on a
    connection of its own that nothing else uses (a connection is not for two threads)."""
    con = duckdb.connect()
    try:
        out = {}
        for name, table in CATALOGUE.tables.items():
            rel = con.from_arrow(table.arrow_schema.empty_table())
            out[name] = ", ".join('"' + c.replace('"', '""') + f'" {t}' for c, t in zip(
                rel.columns, rel.types, strict=True))
        return out
    finally:
        con.close()


def _columns_ddl(table: Table) -> str:
    return _ddl()[table.name]


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def views_named(sql: str) -> set[str]:
    """The views ``sql`` names (a superset: any word that is a view's name); empty when it
    names none (``SHOW TABLES``, ``information_schema``: then it wants them all)."""
    blocks = {name for name, _ in _statements(_views_sql())}
    return {w for w in (m.group(0).lower() for m in _WORD.finditer(sql))
            if w in blocks or w.removesuffix("_dedup") in blocks}


def _needed(blocks: dict[str, str], wanted: set[str]) -> set[str]:
    """The view blocks ``wanted`` needs: theirs, and those of every view they read (a
    cross-venue view reads its tables' ``_dedup`` views, ``gaps`` reads ``session_events``)."""
    out: set[str] = set()
    todo = list(wanted)
    while todo:
        name = todo.pop().lower()
        block = name if name in blocks else name.removesuffix("_dedup")
        if block in blocks and block not in out:
            out.add(block)
            todo.extend(m.group(0) for m in _WORD.finditer(blocks[block]))
    return out


def _views_sql() -> str:
    return VIEWS_FILE.read_text() if VIEWS_FILE.exists() else render_views()


def connect(data_dir: str | Path = "data", database: str = ":memory:", *,
            remote: str | None = None, views: set[str] | None = None
            ) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with every view. Tables without files yet get an empty view of
    the right shape, so queries work on a fresh lake too (and ``SHOW TABLES`` lists only
    the views: the empty ones live in a schema of their own). With ``remote``
    (``s3://bucket/prefix``, credentials from the AWS_* variables) the views read the
    bucket's lake through an fsspec filesystem registered with DuckDB.

    ``views`` (names, e.g. :func:`views_named` of a query) creates only those views and the
    ones they read. Each view binds over its files' footers, so a connection with all of
    them costs about a second on a small lake and grows with the lake; ``recorder query``
    asks for the views its SQL names."""
    lake, files, have, fs = _lake(data_dir, remote)
    con = duckdb.connect(database)
    # Each file's footer is read once per connection, not once per view that binds over it
    # and per query (locally DuckDB still checks each file's modification time; 156 files:
    # connect 1.7 s -> 1.2 s)
    con.execute("SET parquet_metadata_cache = true")
    if fs is not None:
        con.register_filesystem(fs)
        # A lake file's name is never reused for other bytes in the bucket: no need to ask
        # the bucket whether a footer is still current
        con.execute("SET validate_external_file_cache = 'NO_VALIDATION'")
    registry = CATALOGUE.tables
    cross = {v.name for v in CROSS_VIEWS}
    blocks = _statements(_views_sql())
    only = None if views is None else _needed(dict(blocks), views)
    script = ["CREATE SCHEMA IF NOT EXISTS __empty;"]
    for name, stmts in blocks:
        if only is not None and name not in only:
            continue
        table = registry.get(name)
        files_glob = f"glob('{_glob(name)}')"
        if table is not None and name not in have:
            # No file yet: the same view over an empty table of the right shape, kept in a
            # schema of its own so that SHOW TABLES lists only the views; with no row to
            # deduplicate, ``_dedup`` is the plain view (a cheaper bind)
            script.append(f"CREATE OR REPLACE TABLE __empty.{name} ({_columns_ddl(table)}, "
                          f"date DATE);")
            plain = stmts[:stmts.index(f"CREATE OR REPLACE VIEW {name}_dedup AS")]
            stmts = plain.replace(_source(table), f"__empty.{name}") + (
                f"\nCREATE OR REPLACE VIEW {name}_dedup AS SELECT * FROM {name};")
        elif table is None and name in cross:
            stmts = _without_empty_members(stmts, have)
        elif files is not None and name in files:
            listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files[name])
            # the _dedup guard's listing first (the visible files, not a glob)
            stmts = stmts.replace(files_glob, f"(SELECT unnest([{listed}]) AS file)")
            stmts = stmts.replace(f"'{_glob(name)}'", f"[{listed}]")
        script.append(stmts.replace("${lake}", lake.replace("'", "''")))
    # one script: binding ~400 views statement by statement from Python cost twice as much
    con.execute("\n".join(script))
    return con


def lazy(table: str, data_dir: str | Path = "data", *,
         remote: str | None = None) -> pl.LazyFrame:
    """A Polars lazy frame over one table (hive ``date`` column included); an empty frame of
    the table's shape while it has no files, as :func:`connect` gives an empty view. With
    ``remote`` it scans the bucket (Polars' own object store, ``storage_options`` from the
    AWS_* variables)."""
    if remote:
        from recorder.remote import Remote, visible

        r = Remote.parse(remote)
        files = sorted(r.uri(rel) for rel in visible(r, r.fs()).get(table, {}))
        if files:
            return pl.scan_parquet(files, hive_partitioning=True,
                                   storage_options=r.storage_options())
    else:
        folder = Path(data_dir) / "lake" / table
        if any(folder.glob("date=*/*.parquet")):
            return pl.scan_parquet(str(folder / "date=*" / "*.parquet"), hive_partitioning=True)
    t = CATALOGUE.tables.get(table)
    if t is None:
        raise ValueError(f"unknown table {table!r}")
    empty = pl.from_arrow(t.arrow_schema.empty_table())
    assert isinstance(empty, pl.DataFrame)
    return empty.with_columns(pl.lit(None, dtype=pl.Date).alias("date")).lazy()


def tables_with_rows(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int]]:
    names = sorted(CATALOGUE.tables)
    sql = " UNION ALL ".join(f"SELECT '{n}' AS t, count(*) AS n FROM {n}" for n in names)
    return [(t, int(n)) for t, n in con.sql(sql).fetchall() if n]
