"""Replay: history back into a strategy, in the order it was recorded.

- :func:`records` yields typed :class:`Record` objects for a time range, venues and tables,
  in recording order ``(ts_recv, venue, conn_id, recv_seq, recv_sub)`` across every table
  and venue, or in event-time order (``ts_event``, on-chain ties by block, tx, log, then the
  recording order). ``run_id`` breaks the last ties (two recorders of one venue), so the
  order is total and never depends on file names or on the order files were written.
  Recorded gaps (``session_events`` rows such as ``reconnected`` or ``gap``) come through in
  their place; ``Record.is_gap`` tells a strategy where the tape is incomplete.
- :func:`batches` gives the same selection per table as Arrow record batches;
  :func:`frames` as Polars data frames.
- :func:`paced` replays an iterator of records on the recorded clock, scaled by ``speed``.
- :func:`raw_frames` yields the journal's frames themselves, in journal order per run.

How :func:`records` keeps memory flat in range length and lake size: it never sorts a table.
A lake file is one writer's rows of one table and day in arrival order, one row group per
flush, so each row group is (almost always) already in order on its own; the files of
different runs, venues and tables overlap in time. The merge is a sweep over row groups:
each group's lowest possible key comes from its Parquet statistics (``ts_recv``, or
``ts_event`` in event order), and a group is opened only when the merge reaches that key,
then streamed batch by batch and dropped when done. Memory is the row groups that overlap
the current instant, whatever the range. Whether a group really is in order is checked, on
its key columns only, before any of its rows is emitted; one that is not (equal receive times
on two connections, a clock step, and in event order nearly every group) is sorted alone,
which costs one row group (one flush) of memory. ``date=`` folders are opened as the merge
reaches their day (they are the UTC day of ``ts_recv``); in event order every folder of the
range is indexed first (about 200 bytes per row group), since venue times ignore folders.

A compacted day (``recorder compact``) keeps what the merge relies on: its files hold rows of
their folder's day only, and every row group's statistics bound its rows. Its groups are
sorted by instrument and event time instead of receipt, so each spans the day: the merge
opens one group per instrument at the start of the day and sorts a group alone when its
receive order differs (memory: about one row group per instrument, 128k rows at most each).

On a recorded Mackinac lake (nested book levels) that is ~70 MiB above the ~80 MiB of the
imports, the same at 100k and 1M rows and for any range; about 30 MiB of it is what Arrow's
default allocator (mimalloc) keeps committed after frees. ``ARROW_DEFAULT_MEMORY_POOL=system``
in the environment before Python starts gives that back (pyarrow cannot switch it later).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import itertools
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recorder import journal as jr
from recorder.build import adapter_name
from recorder.catalogue import Catalogue
from recorder.errors import RecorderError
from recorder.schema import Table
from recorder.sim.recording import Recording
from recorder.venues import CATALOGUE

if TYPE_CHECKING:  # imported where used: records() needs neither (~30 MiB, ~0.3 s)
    import duckdb
    import polars as pl

GAP_EVENTS = frozenset({"reconnected", "gap", "run_gap", "disconnected", "idle_timeout",
                        "frame_too_large",
                        "connect_failed", "stopped"})
# The order of rows as received. venue comes before conn_id: two venues may both have a
# connection named "ws". run_id last: two recorders of one venue (A/B) never tie.
_ORDER_RECV = ("ts_recv", "venue", "conn_id", "recv_seq", "recv_sub", "run_id")
_CHAIN_TIES = ("block_number", "tx_index", "log_index")
_COMMON = ("ts_recv", "ts_event", "venue", "run_id", "conn_id", "recv_seq", "recv_sub")
_NS_PER_DAY = 86_400 * 1_000_000_000
_LOWEST = -(1 << 63)  # bound of a group without statistics: it is opened first
_CHECK_ROWS = 65_536  # rows per batch when checking a group's order (key columns only)
_PY_ROWS = 256  # rows per group turned into Python objects at a time (see _records)


class ReplayOrderError(RecorderError):
    """The lake breaks an invariant the ordered merge relies on: a file holds rows received
    before the first instant of its ``date=`` folder's day, so replay cannot emit them in
    order. The file was not written by the lake writer (or was moved)."""

    fault = "bug"


class ReplaySourceChanged(RecorderError):
    """A day's folder was swapped (compaction, rebuild) while the replay was inside it: the
    rows are all there, in other files; replaying again reads them."""

    fault = "user"
    retryable = True


@dataclass(frozen=True, slots=True)
class Record:
    """One typed row. ``data`` holds the table's own columns (timestamps as int ns)."""

    table: str
    venue: str
    ts_recv: int
    ts_event: int | None
    conn_id: str
    recv_seq: int
    recv_sub: int
    run_id: str
    data: dict[str, Any]

    @property
    def is_gap(self) -> bool:
        """True for a session event that marks the tape as incomplete around it."""
        return self.table == "session_events" and self.data.get("event") in GAP_EVENTS


def _ns(value: int | str | None) -> int | None:
    """Accept int ns or an ISO-8601 time (``2026-11-22T10:00:00Z``)."""
    if value is None or isinstance(value, int):
        return value
    t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000


def _select(data_dir: Path, venues: Iterable[str] | None,
            tables: Iterable[str] | None) -> list[Table]:
    reg = CATALOGUE.tables
    wanted = set(tables) if tables else None
    out = []
    for t in reg.values():
        if wanted is not None and t.name not in wanted:
            continue
        if venues and t.venue != "*" and t.venue not in set(venues) and wanted is None:
            continue
        if any((data_dir / "lake" / t.name).glob("date=*/*.parquet")):
            out.append(t)
    if wanted is not None:
        unknown = wanted - set(reg)
        if unknown:
            raise ValueError(f"unknown table(s): {sorted(unknown)}")
    return out


def _chain(t: Table) -> list[str]:
    names = {c.name for c in t.columns}
    return [c for c in _CHAIN_TIES if c in names]


# --- batches and frames: one table through DuckDB --------------------------------------------


def _query(t: Table, lake: Path, start: int | None, end: int | None,
           venues: Iterable[str] | None, order: str) -> tuple[str, list[Any]]:
    ts_cols = [f.name for f in t.arrow_schema if pa.types.is_timestamp(f.type)]
    replace = ", ".join(f"epoch_ns({c}) AS {c}" for c in ts_cols)
    where, params = ["true"], []
    if start is not None:
        where.append("epoch_ns(ts_recv) >= ?")
        params.append(start)
    if end is not None:
        where.append("epoch_ns(ts_recv) < ?")
        params.append(end)
    if venues:
        where.append("venue IN (SELECT unnest(?))")
        params.append(list(venues))
    if order == "recv":
        keys = list(_ORDER_RECV)
    else:
        # The same key as records(): a missing chain tie sorts first, as -1.
        keys = ["coalesce(ts_event, ts_recv)"] + [
            f"coalesce({c}, -1)" for c in _chain(t)] + list(_ORDER_RECV)
    glob = str(lake / t.name / "date=*" / "*.parquet").replace("'", "''")
    sql = (f"SELECT * EXCLUDE (date) REPLACE ({replace}) FROM read_parquet('{glob}', "
           f"hive_partitioning = true, union_by_name = true) WHERE {' AND '.join(where)} "
           f"ORDER BY {', '.join(keys)}")
    return sql, params


def _reader(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any],
            batch_rows: int) -> pa.RecordBatchReader:
    """A streaming reader over a query (DuckDB 2 calls it to_arrow_reader, 1.x
    fetch_arrow_reader)."""
    rel = con.sql(sql, params=params)
    fn = getattr(rel, "to_arrow_reader", None) or rel.fetch_arrow_reader
    return fn(batch_rows)


def _connect(memory_limit: str) -> duckdb.DuckDBPyConnection:
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET preserve_insertion_order = false")
    return con


def batches(data_dir: str | Path, table: str, start: int | str | None = None,
            end: int | str | None = None, venues: Iterable[str] | None = None,
            order: str = "recv", batch_rows: int = 8192,
            memory_limit: str = "512MB") -> Iterator[pa.RecordBatch]:
    """One table's rows in the range, sorted, as Arrow record batches (timestamps as int ns).
    One DuckDB query; its sort spills to disk beyond ``memory_limit``."""
    data_dir = Path(data_dir)
    if order not in ("recv", "event"):
        raise ValueError("order is 'recv' or 'event'")
    [t] = _select(data_dir, venues, [table]) or [None]
    if t is None:
        return
    sql, params = _query(t, data_dir / "lake", _ns(start), _ns(end), venues, order)
    con = _connect(memory_limit)
    yield from _reader(con, sql, params, batch_rows)


def frames(data_dir: str | Path, tables: Iterable[str], start: int | str | None = None,
           end: int | str | None = None, venues: Iterable[str] | None = None,
           order: str = "recv") -> dict[str, pl.DataFrame]:
    """The selection per table as Polars frames (for vectorized research)."""
    import polars as pl

    out = {}
    for name in tables:
        bs = list(batches(data_dir, name, start, end, venues, order))
        if bs:
            out[name] = pl.from_arrow(pa.Table.from_batches(bs))
    return out


# --- records: a sweep over row groups ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Range:
    """What :func:`records` selects, on every table alike."""

    start: int | None
    end: int | None
    venues: frozenset[str] | None
    order: str


@dataclass(frozen=True, slots=True)
class _Day:
    """A ``date=`` folder of one table, not yet indexed."""

    table: Table
    folder: Path


@dataclass(frozen=True, slots=True)
class _Group:
    """A row group that may hold rows of the range."""

    table: Table
    path: Path
    index: int


def _unit_ns(t: pa.DataType) -> int:
    return {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}[t.unit]


def _ints(a: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A timestamp column as int64 ns (what DuckDB's ``epoch_ns`` gave)."""
    if a.type.unit != "ns":
        a = a.cast(pa.timestamp("ns", tz=a.type.tz))
    return a.cast(pa.int64())


def _days(lake: Path, t: Table, rng: _Range) -> list[tuple[int, _Day]]:
    """The table's ``date=`` folders that can hold rows of the range, each with the first
    instant of its day: no row in it was received earlier (the lake writer partitions by
    the UTC day of ``ts_recv``). A folder whose name is not a date gets the lowest bound."""
    out = []
    for folder in sorted((lake / t.name).glob("date=*")):
        try:
            d = dt.date.fromisoformat(folder.name.removeprefix("date="))
        except ValueError:
            out.append((_LOWEST, _Day(t, folder)))
            continue
        lo = int(dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC).timestamp()) * 1_000_000_000
        if rng.start is not None and lo + _NS_PER_DAY <= rng.start:
            continue
        if rng.end is not None and lo >= rng.end:
            continue
        out.append((lo, _Day(t, folder)))
    return out


def _bound(rg: pq.RowGroupMetaData, cols: dict[str, tuple[int, int]],
           rng: _Range) -> int | None:
    """The lowest first order-key element any row of the group can have, from its
    statistics; None when the statistics prove no row is in the range (it is never read)."""
    def stats(name: str) -> pq.Statistics | None:
        j = cols.get(name)
        s = rg.column(j[0]).statistics if j is not None else None
        return s if s is not None and s.has_min_max else None

    recv = stats("ts_recv")
    factor = cols["ts_recv"][1] if "ts_recv" in cols else 1
    lo_r = recv.min_raw * factor if recv is not None else None
    if recv is not None:
        if rng.start is not None and recv.max_raw * factor < rng.start:
            return None
        if rng.end is not None and lo_r >= rng.end:
            return None
    if rng.venues is not None:
        v = stats("venue")
        if v is not None:
            lo_v, hi_v = (x.decode() if isinstance(x, bytes) else x for x in (v.min, v.max))
            if not any(lo_v <= name <= hi_v for name in rng.venues):
                return None
    if lo_r is None:
        return _LOWEST
    if rng.order == "recv":
        return lo_r
    if "ts_event" not in cols:  # an older file without it: every row falls back to ts_recv
        return lo_r
    s = rg.column(cols["ts_event"][0]).statistics
    if s is None or not s.has_null_count:
        return _LOWEST
    if s.null_count == rg.num_rows:
        return lo_r
    if not s.has_min_max:
        return _LOWEST
    lo_e = s.min_raw * cols["ts_event"][1]
    return min(lo_e, lo_r) if s.null_count else lo_e


def _groups(day: _Day, rng: _Range) -> Iterator[tuple[int, _Group]]:
    """The day's row groups that may hold rows of the range, with their bounds; only the
    files' footers are read."""
    for path in sorted(day.folder.glob("*.parquet")):
        md = pq.read_metadata(path)
        schema = md.schema.to_arrow_schema()
        cols = {}
        for j in range(md.num_columns):
            name = md.schema.column(j).path
            if name in ("ts_recv", "ts_event", "venue"):
                typ = schema.field(name).type
                cols[name] = (j, _unit_ns(typ) if pa.types.is_timestamp(typ) else 1)
        for i in range(md.num_row_groups):
            rg = md.row_group(i)
            if rg.num_rows == 0:
                continue
            lo = _bound(rg, cols, rng)
            if lo is not None:
                yield lo, _Group(day.table, path, i)


class _Files:
    """Open Parquet files, each closed after the last of its groups the merge wanted: files
    are opened once (not once per row group) and only while the merge is inside them."""

    def __init__(self) -> None:
        self._open: dict[Path, list[Any]] = {}  # path -> [ParquetFile | None, groups left]

    def expect(self, path: Path) -> None:
        self._open.setdefault(path, [None, 0])[1] += 1

    def get(self, path: Path) -> pq.ParquetFile:
        entry = self._open[path]
        if entry[0] is None:
            # No pre-buffering: it reads a row group's column chunks ahead on Arrow's I/O
            # threads and caches them while the group is read, 10-20 MiB more at peak on a
            # recorded lake (the chunks of every open group) and no faster on local files.
            try:
                entry[0] = pq.ParquetFile(path, pre_buffer=False)
            except FileNotFoundError:
                # Files are immutable, but a day's folder can be swapped for a new one (a
                # compaction or a rebuild) while a long replay is inside it.
                raise ReplaySourceChanged(
                    f"{path} is gone: its day was compacted or rebuilt during the replay; "
                    f"replay again", path=str(path)) from None
        return entry[0]

    def done(self, path: Path) -> None:
        entry = self._open[path]
        entry[1] -= 1
        if entry[1] == 0:
            del self._open[path]
            if entry[0] is not None:
                entry[0].close()

    def close(self) -> None:
        for pf, _ in self._open.values():
            if pf is not None:
                pf.close()
        self._open.clear()


def _key_arrays(b: pa.RecordBatch | pa.Table, chain: list[str], order: str) -> list[Any]:
    """The order key as columns, exactly as :func:`_records` builds it per row."""
    recv = [_ints(b.column("ts_recv"))] + [b.column(c) for c in _ORDER_RECV[1:]]
    if order == "recv":
        return recv
    names = b.schema.names
    ev = pc.coalesce(_ints(b.column("ts_event")), recv[0]) if "ts_event" in names else recv[0]
    # A chain column missing from an older file is -1 on every row: no effect on the order.
    ties = [pc.fill_null(b.column(c), -1) for c in chain if c in names]
    return [ev, *ties, *recv]


def _in_order(keys: list[Any]) -> bool:
    """Whether rows are nondecreasing in the lexicographic order of ``keys``: each row is
    strictly below its successor on some key column and equal on the ones before, or equal on
    all. Vectorized, one comparison per column; stops at the first column with no tie left."""
    n = len(keys[0])
    if n < 2:
        return True
    ahead = tied = None
    for k in keys:
        a, b = k.slice(0, n - 1), k.slice(1)
        lt, eq = pc.less(a, b), pc.equal(a, b)
        if ahead is None:
            ahead, tied = lt, eq
        else:
            ahead, tied = pc.or_(ahead, pc.and_(tied, lt)), pc.and_(tied, eq)
        if not pc.any(tied).as_py():
            break
    return bool(pc.all(pc.or_(ahead, tied)).as_py())


def _row_key(keys: list[Any], i: int) -> tuple:
    return tuple(k[i].as_py() for k in keys)


def _mask(b: pa.RecordBatch | pa.Table, rng: _Range) -> Any:
    """Rows of the range (None: all of them)."""
    conds = []
    if rng.start is not None or rng.end is not None:
        ts = _ints(b.column("ts_recv"))
        if rng.start is not None:
            conds.append(pc.greater_equal(ts, rng.start))
        if rng.end is not None:
            conds.append(pc.less(ts, rng.end))
    if rng.venues is not None:
        conds.append(pc.is_in(b.column("venue"),
                              value_set=pa.array(sorted(rng.venues), pa.string())))
    if not conds:
        return None
    m = conds[0]
    for c in conds[1:]:
        m = pc.and_(m, c)
    return m


def _filtered(b: Any, rng: _Range) -> Any:
    m = _mask(b, rng)
    return b if m is None or pc.all(m).as_py() else b.filter(m)


def _records(b: pa.RecordBatch, t: Table, chain: list[str],
             order: str) -> Iterator[tuple[tuple, Record]]:
    """(order key, Record) per row of a batch. Timestamp columns become int ns; a column of
    the table that an older file lacks is None (as DuckDB's union_by_name gave).

    Rows become Python objects ``_PY_ROWS`` at a time, not a batch at a time: every open row
    group holds its pending rows, and a row with nested levels (book sides as lists of
    structs) weighs kilobytes as Python objects against tens of bytes in Arrow."""
    b = pa.RecordBatch.from_arrays(
        [_ints(c) if pa.types.is_timestamp(c.type) else c for c in b.columns],
        names=b.schema.names)
    own = [c.name for c in t.columns]
    for at in range(0, b.num_rows, _PY_ROWS):
        part = b.slice(at, _PY_ROWS)
        n = part.num_rows
        cols = dict(zip(part.schema.names, (c.to_pylist() for c in part.columns),
                        strict=True))
        none = [None] * n  # shared by every missing column: only read
        common = zip(*(cols.get(c, none) for c in _COMMON), strict=True)
        values = zip(*(cols.get(c, none) for c in own), strict=True) if own else [()] * n
        for (ts, ev, venue, run, conn, seq, sub), vals in zip(common, values, strict=True):
            data = dict(zip(own, vals, strict=True))
            rec = Record(t.name, venue, ts, ev, conn, seq, sub, run, data)
            if order == "recv":
                key: tuple = (ts, venue, conn, seq, sub, run)
            else:
                ties = tuple(-1 if data[c] is None else data[c] for c in chain)
                key = (ts if ev is None else ev, ties, ts, venue, conn, seq, sub, run)
            yield key, rec


def _group_rows(g: _Group, files: _Files, rng: _Range,
                batch_rows: int) -> Iterator[tuple[tuple, Record]]:
    """One row group's rows of the range, in order. A first pass over its key columns checks
    the order (bounded by a check batch); then it streams batch by batch, or, when it is not
    in order, is read and sorted alone (bounded by the row group)."""
    try:
        pf = files.get(g.path)
        present = set(pf.schema_arrow.names)
        chain = _chain(g.table)
        wanted = [c for c in (*_COMMON, *(c.name for c in g.table.columns)) if c in present]
        key_cols = [c for c in (*_COMMON, *chain) if c in present]
        in_order, last = True, None
        for kb in pf.iter_batches(batch_size=_CHECK_ROWS, row_groups=[g.index],
                                  columns=key_cols, use_threads=False):
            kb = _filtered(kb, rng)
            if kb.num_rows == 0:
                continue
            keys = _key_arrays(kb, chain, rng.order)
            if not _in_order(keys) or last is not None and _row_key(keys, 0) < last:
                in_order = False
                break
            last = _row_key(keys, kb.num_rows - 1)
        if in_order:
            for b in pf.iter_batches(batch_size=batch_rows, row_groups=[g.index],
                                     columns=wanted, use_threads=False):
                b = _filtered(b, rng)
                if b.num_rows:
                    yield from _records(b, g.table, chain, rng.order)
            return
        tbl = _filtered(pf.read_row_group(g.index, columns=wanted, use_threads=False), rng)
        keys = _key_arrays(tbl, chain, rng.order)
        by = pa.table({f"k{i}": k for i, k in enumerate(keys)})
        # Arrow's sort is stable, and its order on each column (ints, UTF-8 bytes) is
        # Python's on the values _records puts in the key.
        tbl = tbl.take(pc.sort_indices(by, sort_keys=[(f"k{i}", "ascending")
                                                      for i in range(len(keys))]))
        del by, keys
        for b in tbl.to_batches(max_chunksize=batch_rows):
            yield from _records(b, g.table, chain, rng.order)
    finally:
        files.done(g.path)


def _sweep(days: list[tuple[int, _Day]], rng: _Range,
           batch_rows: int) -> Iterator[Record]:
    """Merge the row groups of ``days`` in key order, opening each only when needed.

    ``pending`` holds folders and row groups by the lowest first key element they can hold;
    ``active`` holds one cursor per open row group, by its next key. Before a record is
    emitted, everything pending whose bound is at or below its key's first element has been
    opened, so nothing not yet open can come before it."""
    tick = itertools.count()  # unique second element: heap entries never compare further
    pending: list[tuple[int, int, _Day | _Group]] = [(lo, next(tick), d) for lo, d in days]
    heapq.heapify(pending)
    active: list[tuple[tuple, int, Record, Iterator[tuple[tuple, Record]]]] = []
    files = _Files()
    # mimalloc, Arrow's default allocator, keeps freed memory committed (~40 MiB on a recorded
    # lake); given back as each row group ends. The others are left to their own policy.
    pool = pa.default_memory_pool()
    release = pool.release_unused if pool.backend_name == "mimalloc" else None
    last: int | None = None  # first key element of the last record emitted
    try:
        while True:
            while pending and (not active or pending[0][0] <= active[0][0][0]):
                _, _, item = heapq.heappop(pending)
                if isinstance(item, _Day):
                    for lo, g in _groups(item, rng):
                        if last is not None and lo < last:
                            raise ReplayOrderError(
                                f"{g.path} holds rows received before its folder's day",
                                path=str(g.path))
                        files.expect(g.path)
                        heapq.heappush(pending, (lo, next(tick), g))
                    continue
                rows = _group_rows(item, files, rng, batch_rows)
                first = next(rows, None)
                if first is not None:
                    heapq.heappush(active, (first[0], next(tick), first[1], rows))
            if not active:
                return
            key, n, rec, rows = active[0]
            last = key[0]
            yield rec
            nxt = next(rows, None)
            if nxt is None:
                heapq.heappop(active)
                if release is not None:  # the group's buffers are free now
                    release()
            else:
                heapq.heapreplace(active, (nxt[0], n, nxt[1], rows))
    finally:
        for *_, rows in active:
            rows.close()
        files.close()


def records(data_dir: str | Path, start: int | str | None = None, end: int | str | None = None,
            venues: Iterable[str] | None = None, tables: Iterable[str] | None = None,
            order: str = "recv", batch_rows: int = 4096,
            memory_limit: str = "512MB") -> Iterator[Record]:
    """Typed records across tables and venues, merged in recording (or event) order.

    ``start``/``end`` are ns since the epoch or ISO-8601 strings, on ``ts_recv`` (end
    exclusive). ``tables`` defaults to every table of the chosen venues plus the shared
    ``session_events`` (gaps) and ``unhandled``. Memory is bounded by the row groups that
    overlap in time, not by the range or the lake (see the module's docstring);
    ``memory_limit`` is kept for compatibility and unused (no DuckDB sort any more)."""
    data_dir = Path(data_dir)
    if order not in ("recv", "event"):
        raise ValueError("order is 'recv' or 'event'")
    venues = list(venues) if venues else None  # read twice below: not a one-shot iterator
    chosen = _select(data_dir, venues, tables)
    rng = _Range(_ns(start), _ns(end), frozenset(venues) if venues else None, order)
    days = [d for t in chosen for d in _days(data_dir / "lake", t, rng)]
    if order == "event":
        # Venue times ignore the folders: index every group of the range before the first
        # record (a group holds its bound and three references, not rows).
        days = [(_LOWEST, d) for _, d in days]
    yield from _sweep(days, rng, batch_rows)


async def paced(source: Iterable[Record], speed: float = 1.0,
                start_at: int | None = None) -> AsyncIterator[Record]:
    """Yield records on the recorded clock: the gap between two records' ``ts_recv`` becomes
    a sleep of gap/``speed`` seconds (``speed`` 0 = as fast as possible). Records before
    ``start_at`` (ns) are skipped without waiting."""
    if speed < 0:
        raise ValueError("speed must be >= 0")
    t0_wall: float | None = None
    t0_rec = 0
    for rec in source:
        if start_at is not None and rec.ts_recv < start_at:
            continue
        if speed > 0:
            if t0_wall is None:
                t0_wall, t0_rec = time.monotonic(), rec.ts_recv
            due = t0_wall + (rec.ts_recv - t0_rec) / 1e9 / speed
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        else:
            await asyncio.sleep(0)  # stay cooperative
        yield rec


def raw_frames(data_dir: str | Path, venue: str, start: int | str | None = None,
               end: int | str | None = None, run: str | None = None,
               kinds: Iterable[int] = (jr.KIND_IN,)) -> Iterator[jr.Record]:
    """The journal's records of one venue, per run in journal order, filtered by ts_recv."""
    data_dir = Path(data_dir)
    lo, hi = _ns(start), _ns(end)
    wanted = set(kinds)
    for (v, r), _ in sorted(jr.runs(data_dir, venue).items()):
        if run is not None and r != run or v != venue:
            continue
        for rec in jr.read_run(data_dir, v, r):
            if rec.kind not in wanted:
                continue
            if lo is not None and rec.ts_recv < lo or hi is not None and rec.ts_recv >= hi:
                continue
            yield rec


# --- native replay: the venue's own server side, fed by the journal ----------------------------


def _adapter_of(data_dir: Path, venue: str) -> str:
    """A venue is a config section name; its runs' manifests say which adapter it used."""
    found = sorted(jr.runs(data_dir, venue))
    if not found:
        raise ValueError(f"no journal for venue {venue!r} under {data_dir}")
    return adapter_name(data_dir, venue, found[-1][1])


class Clock:
    """One recorded clock shared by every venue of a native replay: recorded time ``t`` is due
    at ``start_wall + (t - start_rec) / speed``; ``speed`` 0 means no waiting at all."""

    def __init__(self, speed: float) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.speed = speed
        self._t0: tuple[float, int] | None = None

    async def until(self, ts_rec: int) -> None:
        if self.speed == 0:
            await asyncio.sleep(0)
            return
        if self._t0 is None:
            self._t0 = (time.monotonic(), ts_rec)
        wall, rec = self._t0
        delay = wall + (ts_rec - rec) / 1e9 / self.speed - time.monotonic()
        await asyncio.sleep(max(0.0, delay))


async def serve_native(data_dir: str | Path, venues: Iterable[str],
                       start: int | str | None = None, end: int | str | None = None,
                       speed: float = 1.0, host: str = "127.0.0.1",
                       ports: dict[str, int] | None = None,
                       server_options: dict[str, dict[str, Any]] | None = None,
                       on_ready: Any = None, stop: asyncio.Event | None = None,
                       wait_for_subscriber: bool = True, linger: float = 1.0,
                       catalogue: Catalogue = CATALOGUE) -> dict[str, int]:
    """Serve the recorded frames of ``venues`` on loopback with each venue's own protocol.

    A venue is a config section name: its journal folder, whatever adapter recorded it. Each
    venue's server side (the simulator's, with ``replay=True``) gets its
    :class:`~recorder.sim.Recording` (that folder's journal from ``start`` to ``end``) as
    ``recording=``, for the answers it serves from it (REST bodies, a catalogue), and handles
    auth and subscriptions itself; recorded frames are published on one shared clock from the
    moment the first client has subscribed (so it misses nothing). ``on_ready({venue: url})``
    is called once all servers listen. ``catalogue`` gives each venue's server side. Returns
    the frames published per venue."""

    data_dir = Path(data_dir)
    venues = list(venues)
    stop = stop or asyncio.Event()
    recordings = {v: Recording(data_dir, v, _ns(start), _ns(end)) for v in venues}
    servers: dict[str, Any] = {}
    try:
        for v in venues:
            name = _adapter_of(data_dir, v)
            spec = catalogue.venues.get(name)
            if spec is None:
                raise ValueError(f"journal of {v}: unknown adapter {name!r}")
            if spec.replay_server is None:
                raise ValueError(f"venue {v} has no native replay yet")
            opts = dict((server_options or {}).get(v, {}))
            opts.setdefault("recording", recordings[v])
            srv = spec.replay_server(**opts)
            await srv.start(host, (ports or {}).get(v, 0))
            servers[v] = srv
        if on_ready is not None:
            on_ready({v: s.url for v, s in servers.items()})
        if wait_for_subscriber:
            while not stop.is_set() and not any(s.subscribed() for s in servers.values()):
                await asyncio.sleep(0.02)
        clock = Clock(speed)
        published = dict.fromkeys(venues, 0)

        def tagged(i: int, v: str) -> Iterator[tuple[tuple[int, int, int], str, jr.Record]]:
            # A function, not a nested generator expression: those would read i and v late
            # and label every frame with the last venue.
            for rec in recordings[v].records():
                yield (rec.ts_recv, i, rec.seq), v, rec

        merged = heapq.merge(*[tagged(i, v) for i, v in enumerate(venues)],
                             key=lambda x: x[0])
        for _, v, rec in merged:
            if stop.is_set():
                break
            await clock.until(rec.ts_recv)
            servers[v].publish(rec.data, rec.conn)
            published[v] += 1
        if not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=linger)
            except TimeoutError:
                pass
        return published
    finally:
        for s in servers.values():
            await s.stop()
