"""``recorder compact``: rewrite closed days of the lake into a few large, sorted,
deduplicated files per table, atomically for readers, with lineage kept.

A day ``D`` is *closed* when it is before today (UTC) and every run that can hold rows of it
has ended and is fully built: no run whose journal starts on or before ``D`` is still
recording, being built, or waiting for a builder (a crashed run is built first). Only closed
days are compacted, so the lake builder never has anything left to add to them.

Per table and day (``lake/<table>/date=D``):

1. The files of the folder are read with DuckDB, each row's table dedup key computed within its
   venue (:func:`recorder.schema.dedup_partition`), and every copy of a key but the first
   receipt (:data:`recorder.schema.RECEIPT_ORDER`) dropped; so is every row whose key the
   day before already holds (a history reply after midnight repeating prints recorded before
   it: the first receipt is in the day before). This is what the ``_dedup`` views give.
2. The rows are written, sorted by instrument (:func:`recorder.schema.cluster_columns`) then
   event time (``coalesce(ts_event, ts_recv)``) then the recording order, into
   ``compacted-<id>-<part>.parquet`` files (at most ``max_file_rows`` rows each; row groups
   cut where the instrument changes, so a query for one instrument reads its groups only, and
   replay streams each instrument's groups in order) inside a hidden staging folder next to
   the day's folder, fsynced.
3. Under the day's exclusive lock (:class:`recorder.lake.DateLock`: a live lake writer holds
   it shared while it has a file open in that day, so none can be writing there), the folder
   is checked to hold exactly the files that were read, and the staging folder is swapped for
   it with one ``renameat2(RENAME_EXCHANGE)``: readers see the old files or the new ones,
   never both and never neither. The old files are then deleted.

A ``kill -9`` at any instant leaves either the old folder or the new one visible, and at most a
hidden staging folder, which the next compaction removes. A compacted day whose folder holds
nothing new is left alone, so running compaction twice changes nothing.

Lineage: every compacted file's footer (``recorder.lineage``) has ``kind: "compacted"``, the
compaction id, its part number and rows, the compaction's ``rows_total``, and ``sources``: per
``(run_id, venue)`` its journal ranges (so recovery, ``verify`` and ``rebuild`` still know what
the day covers), ``rows`` (what the builder wrote), ``dropped`` (removed by deduplication in
all compactions so far) and ``dropped_earlier`` (of those, the copies of a key the day before
holds). ``verify`` checks a compacted day against the journal with these counts.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recorder import journal
from recorder.errors import ConfigError, LockedError, RecorderError, StorageError
from recorder.lake import (
    COMPACTED_PREFIX,
    LINEAGE_KEY,
    DateLock,
    exchange_dirs,
    fsync_dir,
    lineage_sources,
    merge_ranges,
    read_lineage,
)
from recorder.schema import (
    RECEIPT_ORDER,
    Table,
    cluster_columns,
    dedup_partition,
)
from recorder.venues import CATALOGUE

Log = Callable[[str], None]
STAGING_PREFIX = ".compact-"


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class CompactSettings:
    """How compacted files are cut. Row groups end where the instrument changes once they hold
    ``min_group_rows`` (small instruments share one), and always at ``max_group_rows``."""

    max_file_rows: int = 8_000_000
    max_group_rows: int = 131_072
    min_group_rows: int = 16_384
    memory_limit: str = "1GB"
    threads: int = 2


@dataclass
class PartitionResult:
    """What compaction did (or why not) to one table's day."""

    table: str
    date: str
    status: str  # compacted | already | skipped
    reason: str = ""
    files_before: int = 0
    files_after: int = 0
    rows_before: int = 0
    rows_after: int = 0
    dropped: int = 0
    dropped_earlier: int = 0
    seconds: float = 0.0


@dataclass
class CompactReport:
    partitions: list[PartitionResult] = field(default_factory=list)
    days_open: dict[str, str] = field(default_factory=dict)  # day -> why it is not closed
    removed_staging: int = 0

    @property
    def compacted(self) -> list[PartitionResult]:
        return [p for p in self.partitions if p.status == "compacted"]


# --- which days are closed ------------------------------------------------------------------


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def open_runs(data_dir: Path) -> dict[tuple[str, str], str]:
    """``(venue, run)`` -> the first day of its journal, for every run that may still add rows
    to the lake: recording, being built, or ended without a complete build."""
    from recorder.build import pending_runs
    from recorder.runs import run_being_written as _builder_alive

    out: dict[tuple[str, str], str] = {}
    pending = set(pending_runs(data_dir))
    for (venue, run), segs in journal.runs(data_dir).items():
        if (venue, run) in pending or _builder_alive(data_dir, run):
            out[(venue, run)] = min(p.parent.name.removeprefix("date=") for p in segs)
    return out


def closed_days(data_dir: Path, days: list[str], before: str | None = None) -> tuple[
        list[str], dict[str, str]]:
    """``days`` split into closed ones and, for the others, why not. ``before``: the first
    day that is never closed (default today, UTC: runs may still record into it)."""
    now = before or today()
    runs = open_runs(data_dir)
    closed, why = [], {}
    for d in sorted(days):
        if d >= now:
            why[d] = "today or later: runs may still record into it"
            continue
        blocking = sorted((first, v, r) for (v, r), first in runs.items() if first <= d)
        if blocking:
            first, v, r = blocking[0]
            why[d] = (f"{v} run {r} (journal from {first}) is still recording or not fully "
                      f"built" + (f", and {len(blocking) - 1} more" if len(blocking) > 1 else ""))
            continue
        closed.append(d)
    return closed, why


# --- SQL over one table's files ----------------------------------------------------------------


def sql_str(s: str) -> str:
    """``s`` as an SQL string literal."""
    return "'" + s.replace("'", "''") + "'"


def sql_list(paths: Iterable[Path]) -> str:
    """``paths`` as an SQL list of string literals (DuckDB's ``read_parquet([...])``)."""
    return "[" + ", ".join(sql_str(str(p)) for p in paths) + "]"


_TYPES: dict[Table, dict[str, str]] = {}


def duck_types(con: duckdb.DuckDBPyConnection, table: Table) -> dict[str, str]:
    """The DuckDB type of each lake column of ``table`` (asked once per process: compaction
    and verify ask it for every partition, twice)."""
    types = _TYPES.get(table)
    if types is None:
        name = f"__schema_{table.name}"
        con.register(name, table.arrow_schema.empty_table())
        try:
            types = {r[0]: r[1] for r in con.execute(f"DESCRIBE {name}").fetchall()}
        finally:
            con.unregister(name)
        _TYPES[table] = types
    return types


def file_columns(con: duckdb.DuckDBPyConnection, files: list[Path]) -> set[str]:
    """Every column any of ``files`` has."""
    rows = con.execute(f"DESCRIBE SELECT * FROM read_parquet({sql_list(files)}, "
                       f"union_by_name = true, hive_partitioning = false)").fetchall()
    return {r[0] for r in rows}


def projection(con: duckdb.DuckDBPyConnection, table: Table, files: list[Path],
               locate: bool = False, have: set[str] | None = None) -> str:
    """``SELECT`` of the table's lake columns over ``files``, in registry order; a column no
    file has yet (an older schema) is a typed NULL, so every key expression binds. With
    ``locate``, also ``__f`` and ``__r``: the file and row each row was read from. ``have``:
    :func:`file_columns` of ``files``, when the caller has it already (it reads every
    file's footer)."""
    have = file_columns(con, files) if have is None else have
    types = duck_types(con, table)
    cols = [f'"{n}"' if n in have else f'NULL::{types[n]} AS "{n}"'
            for n in table.arrow_schema.names]
    loc = ", filename = true, file_row_number = true" if locate else ""
    if locate:
        cols += ["filename AS __f", "file_row_number AS __r"]
    return (f"SELECT {', '.join(cols)} FROM read_parquet({sql_list(files)}, "
            f"union_by_name = true, hive_partitioning = false{loc})")


def key_exprs(table: Table) -> list[str]:
    return list(dedup_partition(table))


def sort_exprs(table: Table) -> list[str]:
    """Compacted files' order: instrument, event time, then the recording order."""
    return [f'"{c}"' for c in cluster_columns(table)] + ["coalesce(ts_event, ts_recv)",
                                                         *RECEIPT_ORDER]


def key_hash_sql(table: Table) -> str:
    """One 64-bit hash of a row's dedup partition (``verify`` compares keys with it)."""
    return "hash(" + ", ".join(f"({e})" for e in key_exprs(table)) + ")"


# --- writing parts ----------------------------------------------------------------------------


class _Parts:
    """Streams sorted batches into ``compacted-<id>-<part>.parquet`` files under ``folder``,
    cutting row groups where the instrument changes (past ``min_group_rows``) and at
    ``max_group_rows``, and files at ``max_file_rows`` (on a group boundary)."""

    def __init__(self, folder: Path, cid: str, table: Table, settings: CompactSettings,
                 lineage: dict[str, Any]) -> None:
        self.folder, self.cid, self.table, self.s = folder, cid, table, settings
        self.lineage = lineage
        self.cluster = list(cluster_columns(table))
        self.paths: list[tuple[Path, int]] = []
        self._writer: pq.ParquetWriter | None = None
        self._path: Path | None = None
        self._file_rows = 0
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._last_key: tuple | None = None

    def _breaks(self, t: pa.Table) -> list[int]:
        """Row offsets in ``t`` where the instrument differs from the row before."""
        if not self.cluster or t.num_rows == 0:
            return []
        n = t.num_rows
        change = None
        for c in self.cluster:
            a = t[c]
            x, y = a.slice(0, n - 1), a.slice(1)
            ne = pc.fill_null(pc.not_equal(x, y), False)
            ne = pc.or_(ne, pc.xor(pc.is_null(x), pc.is_null(y)))
            change = ne if change is None else pc.or_(change, ne)
        out = [i + 1 for i, v in enumerate(change.to_pylist()) if v] if change is not None \
            else []
        first = tuple(t[c][0].as_py() for c in self.cluster)
        if self._last_key is not None and first != self._last_key:
            out.insert(0, 0)
        self._last_key = tuple(t[c][n - 1].as_py() for c in self.cluster)
        return out

    def add(self, t: pa.Table) -> None:
        at = 0
        for b in [*self._breaks(t), t.num_rows]:
            while b > at:
                take = min(b - at, self.s.max_group_rows - self._pending_rows)
                self._pending.append(t.slice(at, take))
                self._pending_rows += take
                at += take
                if self._pending_rows >= self.s.max_group_rows:
                    self._flush_group()
            if b < t.num_rows and self._pending_rows >= self.s.min_group_rows:
                self._flush_group()  # the instrument changes here

    def _flush_group(self) -> None:
        if not self._pending_rows:
            return
        group = pa.concat_tables(self._pending)
        self._pending, self._pending_rows = [], 0
        if self._writer is not None and self._file_rows + group.num_rows > self.s.max_file_rows:
            self._close_file()
        if self._writer is None:
            self._path = self.folder / f"{COMPACTED_PREFIX}{self.cid}-{len(self.paths) + 1:04d}" \
                                       f".parquet"
            self._writer = pq.ParquetWriter(self._path, self.table.arrow_schema,
                                            compression="zstd", compression_level=3)
            self._file_rows = 0
        self._writer.write_table(group, row_group_size=group.num_rows)
        self._file_rows += group.num_rows

    def _close_file(self) -> None:
        assert self._writer is not None and self._path is not None
        lin = {**self.lineage, "part": len(self.paths) + 1, "rows": self._file_rows,
               "committed_ns": time.time_ns()}
        self._writer.add_key_value_metadata({LINEAGE_KEY: orjson.dumps(lin)})
        self._writer.close()
        with open(self._path, "rb+") as fh:
            os.fsync(fh.fileno())
        self.paths.append((self._path, self._file_rows))
        self._writer, self._path = None, None

    def close(self) -> list[tuple[Path, int]]:
        self._flush_group()
        if self._writer is not None:
            self._close_file()
        return self.paths

    def abort(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:  # noqa: BLE001 - the staging folder is thrown away anyway
                pass


# --- one partition ------------------------------------------------------------------------------


def _visible(folder: Path) -> list[Path]:
    """The files readers see in a ``date=`` folder (DuckDB's ``*.parquet`` glob matches hidden
    names too, so they count)."""
    return sorted(p for p in folder.glob("*.parquet") if p.is_file())


def _already_compacted(lineages: list[dict[str, Any]]) -> bool:
    """Every file is a part of one compaction, and all its parts are there."""
    if not lineages or any(lin.get("kind") != "compacted" for lin in lineages):
        return False
    cids = {lin.get("compaction") for lin in lineages}
    if len(cids) != 1:
        return False
    return sum(lin.get("rows", 0) for lin in lineages) == lineages[0].get("rows_total")


def _sources(files: list[Path], lineages: list[dict[str, Any]]) -> dict[tuple[str, str],
                                                                        dict[str, Any]]:
    """Per ``(venue, run)``: journal ranges, rows the builders wrote, rows dropped so far."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for p, lin in zip(files, lineages, strict=True):
        compacted = lin.get("kind") == "compacted"
        for src in lineage_sources(lin):
            key = (str(src.get("venue")), str(src.get("run_id")))
            s = out.setdefault(key, {"run_id": key[1], "venue": key[0], "journal": [],
                                     "rows": 0, "dropped": 0, "dropped_earlier": 0})
            s["journal"].extend(src.get("journal") or [])
            if compacted:
                s["rows"] += int(src.get("rows", 0))
                s["dropped"] += int(src.get("dropped", 0))
                s["dropped_earlier"] += int(src.get("dropped_earlier", 0))
            else:
                s["rows"] += pq.read_metadata(p).num_rows
    for s in out.values():
        s["journal"] = merge_ranges(s["journal"])
    return out


ENGINE_PREFIX = ".compact-tmp-"


@contextmanager
def engine(settings: CompactSettings | None, scratch_in: Path) -> Iterator[
        duckdb.DuckDBPyConnection]:
    """The DuckDB database a compaction run's partitions share: in memory, spilling to a
    folder of its own made in ``scratch_in`` (on the lake's disk) past ``memory_limit``;
    removed at the end. Each partition works on a cursor of it, with temp tables of its own:
    opening and closing a database costs 25-35 ms of CPU, a cursor under 1 ms, and a day
    has a partition per table (a hundred)."""
    s = settings or CompactSettings()
    scratch = Path(tempfile.mkdtemp(prefix=ENGINE_PREFIX, dir=scratch_in))
    try:
        con = duckdb.connect(":memory:", config={
            "memory_limit": s.memory_limit, "threads": s.threads,
            "temp_directory": str(scratch)})
        try:
            con.execute("SET enable_progress_bar = false")
            yield con
        finally:
            con.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def compact_partition(data_dir: Path, table: Table, date: str,
                      settings: CompactSettings | None = None,
                      db: duckdb.DuckDBPyConnection | None = None) -> PartitionResult:
    """Compact ``lake/<table>/date=<date>`` (the caller has checked the day is closed and holds
    the compaction lock). ``db``: the run's :func:`engine` (else one of its own)."""
    s = settings or CompactSettings()
    t0 = time.perf_counter()
    lake = data_dir / "lake"
    folder = lake / table.name / f"date={date}"
    res = PartitionResult(table.name, date, "skipped")
    files = _visible(folder)
    res.files_before = res.files_after = len(files)
    if not files:
        res.reason = "no files"
        return res
    lineages = []
    for p in files:
        try:
            lin = read_lineage(p)
        except Exception as e:  # noqa: BLE001 - verify names the file; we leave it alone
            res.reason = f"{p.name} is unreadable ({type(e).__name__}); see `recorder verify`"
            return res
        if not lin or lin.get("table") != table.name:
            res.reason = f"{p.name} has no lineage of this table (not written by the recorder)"
            return res
        lineages.append(lin)
    if _already_compacted(lineages):
        res.status, res.reason = "already", "compacted, nothing new"
        res.rows_before = res.rows_after = sum(lin.get("rows", 0) for lin in lineages)
        return res
    sources = _sources(files, lineages)
    cid = f"{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"
    staging = lake / table.name / f"{STAGING_PREFIX}{date}-{cid}"
    staging.mkdir(parents=True)
    parts: _Parts | None = None
    try:
        with ExitStack() as stack:
            if db is None:
                db = stack.enter_context(engine(s, staging))
            con = db.cursor()  # its temp tables (cand, dropped) go with it
            stack.callback(con.close)
            con.execute("SET enable_progress_bar = false")  # a setting of each connection
            have = file_columns(con, files)
            extra = have - set(table.arrow_schema.names)
            if extra:
                res.reason = (f"files hold columns the registry does not know ({sorted(extra)})"
                              f"; compaction would drop them")
                return res
            in_rows = {(str(v), str(r)): int(n) for v, r, n in con.execute(
                f"SELECT venue, run_id, count(*) FROM ({projection(con, table, files, have=have)}) "
                f"GROUP BY ALL").fetchall()}
            unknown = sorted(set(in_rows) - set(sources))
            if unknown:
                res.reason = (f"rows of {unknown[0][0]} run {unknown[0][1]} that no file's "
                              f"lineage names; see `recorder verify`")
                return res
            drops = _mark_drops(con, table, date, files, lake, have)
            res.rows_before = sum(in_rows.values())
            for key, src in sources.items():
                dup, earlier = drops.get(key, (0, 0))
                src["dropped_earlier"] += earlier
                # what the builders wrote, less what this and earlier compactions dropped
                src["dropped"] = src["rows"] - (in_rows.get(key, 0) - dup - earlier)
            res.rows_after = res.rows_before - sum(d + e for d, e in drops.values())
            res.dropped_earlier = sum(e for _, e in drops.values())
            lineage = {
                "kind": "compacted", "table": table.name, "date": date, "compaction": cid,
                "rows_total": res.rows_after, "inputs": len(files),
                "sources": [sources[k] for k in sorted(sources)],
                "sort": sort_exprs(table), "dedup_key": list(key_exprs(table)),
                "schema_version": table.version,
                "normalizer_version": max(int(lin.get("normalizer_version", 0))
                                          for lin in lineages),
            }
            parts = _Parts(staging, cid, table, s, lineage)
            cols = ", ".join(f'"{n}"' for n in table.arrow_schema.names)
            rel = con.sql(f"SELECT {cols} FROM ({projection(con, table, files, True, have)}) "
                          f"s ANTI JOIN dropped d USING (__f, __r) ORDER BY "
                          f"{', '.join(sort_exprs(table))}")
            reader = (getattr(rel, "to_arrow_reader", None) or rel.fetch_arrow_reader)(65_536)
            for batch in reader:
                parts.add(_conform(pa.Table.from_batches([batch]), table.arrow_schema))
            written = parts.close()
        if sum(n for _, n in written) != res.rows_after:
            raise StorageError(f"compaction of {table.name} {date} wrote "
                               f"{sum(n for _, n in written)} rows, expected {res.rows_after}")
        fsync_dir(staging)
        _swap(data_dir, folder, staging, files, date)
        res.status = "compacted"
        res.files_after = len(written)
        res.dropped = res.rows_before - res.rows_after
        return res
    except OSError as e:
        raise StorageError(f"compact {table.name} {date}: {e}") from e
    finally:
        if parts is not None:
            parts.abort()
        # After a swap it holds the old files; otherwise the unused new ones.
        shutil.rmtree(staging, ignore_errors=True)
        res.seconds = round(time.perf_counter() - t0, 3)


def _mark_drops(con: duckdb.DuckDBPyConnection, table: Table, date: str,
                files: list[Path], lake: Path, have: set[str] | None = None,
                ) -> dict[tuple[str, str], tuple[int, int]]:
    """Table ``dropped`` in ``con``: the location ``(__f, __r)`` (file, row) of every row of
    ``files`` that is not the first receipt of its key, or whose key the day before holds.
    Returns per ``(venue, run)``: (copies dropped within the day, copies of the day before).

    Only keys seen more than once (by a 64-bit hash, a superset) are ranked, on their exact
    values: ranking every row of a day (a window over wide rows) is what made the ``_dedup``
    views slow, and most keys are unique."""
    keys = key_exprs(table)
    named = ", ".join(f"({e}) AS __k{i}" for i, e in enumerate(keys))
    part = ", ".join(f"__k{i}" for i in range(len(keys)))
    order = ", ".join(RECEIPT_ORDER)
    src = projection(con, table, files, True, have)
    con.execute(f"""CREATE TEMP TABLE cand AS SELECT __h FROM (
        SELECT hash({part}) AS __h FROM (SELECT {named} FROM ({src}))) GROUP BY __h
        HAVING count(*) > 1""")
    con.execute(f"""CREATE TEMP TABLE dropped AS
        SELECT __f, __r, venue, run_id, false AS earlier FROM (
            SELECT __f, __r, venue, run_id,
                   row_number() OVER (PARTITION BY {part} ORDER BY {order}) AS __rn
            FROM (SELECT *, {named} FROM ({src}))
            WHERE hash({part}) IN (SELECT __h FROM cand))
        WHERE __rn > 1""")
    prev_day = (dt.date.fromisoformat(date) - dt.timedelta(days=1)).isoformat()
    prev_files = _visible(lake / table.name / f"date={prev_day}")
    if prev_files:
        on = " AND ".join(f"p.__k{i} IS NOT DISTINCT FROM k.__k{i}" for i in range(len(keys)))
        con.execute(f"""CREATE TEMP TABLE prevk AS SELECT DISTINCT {part} FROM (
            SELECT {named} FROM ({projection(con, table, prev_files)}))""")
        # A row of the day that is a copy of one the day before: the first receipt is there.
        con.execute(f"""INSERT INTO dropped
            SELECT __f, __r, venue, run_id, true FROM (SELECT *, {named} FROM ({src})) k
            WHERE EXISTS (SELECT 1 FROM prevk p WHERE {on})""")
        con.execute("""CREATE TEMP TABLE dropped2 AS SELECT __f, __r, any_value(venue) AS venue,
            any_value(run_id) AS run_id, bool_or(earlier) AS earlier FROM dropped
            GROUP BY __f, __r""")
        con.execute("DROP TABLE dropped")
        con.execute("ALTER TABLE dropped2 RENAME TO dropped")
    rows = con.execute("SELECT venue, run_id, count(*) FILTER (NOT earlier), "
                       "count(*) FILTER (earlier) FROM dropped GROUP BY ALL").fetchall()
    return {(str(v), str(r)): (int(d), int(e)) for v, r, d, e in rows}


def _conform(t: pa.Table, schema: pa.Schema) -> pa.Table:
    """DuckDB's Arrow output as the lake schema exactly (field metadata, time zone names and
    nested field nullability differ; values do not)."""
    if t.schema.equals(schema, check_metadata=False):
        return t.replace_schema_metadata(schema.metadata).cast(schema)
    return t.cast(schema)


def _swap(data_dir: Path, folder: Path, staging: Path, inputs: list[Path], date: str) -> None:
    """Swap the staging folder in for ``folder`` under the day's exclusive lock, provided the
    folder still holds exactly ``inputs`` (a builder of a late run could have committed a
    file since they were read: then nothing is swapped)."""
    try:
        lock = DateLock(data_dir, date, exclusive=True, wait=False)
    except BlockingIOError:
        raise LockedError(f"day {date}: a lake builder has a file open in it (or a rebuild "
                          f"is swapping it); compact again later") from None
    with lock:
        now = _visible(folder)
        tmp = sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))
        if now != inputs or tmp:
            raise LockedError(f"{folder.parent.name} {date}: the folder changed while it was "
                              f"being compacted ({len(now)} files now, {len(inputs)} read, "
                              f"{len(tmp)} being written); compact again")
        exchange_dirs(staging, folder)
        fsync_dir(folder.parent)


# --- the command -------------------------------------------------------------------------------


def _lake_days(data_dir: Path, tables: list[str] | None) -> dict[str, list[str]]:
    """day -> tables with a ``date=`` folder of that day."""
    out: dict[str, list[str]] = {}
    lake = data_dir / "lake"
    for folder in sorted(lake.glob("*/date=*")):
        t = folder.parent.name
        if t.startswith(".") or not folder.is_dir() or (tables and t not in tables):
            continue
        d = folder.name.removeprefix("date=")
        try:
            dt.date.fromisoformat(d)
        except ValueError:
            continue
        out.setdefault(d, []).append(t)
    return out


def remove_staging(data_dir: Path) -> int:
    """Hidden staging folders a killed compaction left (the caller holds the compaction
    lock, so none is in use): before the swap they hold unused new files, after it the old
    ones; either way the visible folder is complete."""
    n = 0
    for p in (data_dir / "lake").glob(f"*/{STAGING_PREFIX}*"):
        shutil.rmtree(p, ignore_errors=True)
        n += 1
    for p in data_dir.glob(f"{ENGINE_PREFIX}*"):  # a killed run's engine's spill files
        shutil.rmtree(p, ignore_errors=True)
    return n


def _compact_lock(data_dir: Path) -> int:
    path = data_dir / "locks" / "compact.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LockedError("another `recorder compact` is running on this data dir") from None
    return fd


def compact(data_dir: Path, date: str | None = None, table: str | None = None,
            settings: CompactSettings | None = None, log: Log = _quiet,
            closed_before: str | None = None) -> CompactReport:
    """Compact every closed day (or only ``date``) of every table (or only ``table``).
    ``closed_before``: days from this one on are never compacted (default today, UTC; a
    test compacting what it has just recorded passes tomorrow)."""
    from recorder.config import parse_day as parse_date

    data_dir = Path(data_dir)
    date = parse_date(date)
    reg = CATALOGUE.tables
    if table is not None and table not in reg:
        raise ConfigError(f"unknown table {table!r}")
    if not (data_dir / "lake").is_dir():
        return CompactReport()
    rep = CompactReport()
    fd = _compact_lock(data_dir)
    try:
        rep.removed_staging = remove_staging(data_dir)
        days = _lake_days(data_dir, [table] if table else None)
        if date is not None:
            days = {date: days[date]} if date in days else {}
        closed, rep.days_open = closed_days(data_dir, list(days), closed_before)
        for d, why in sorted(rep.days_open.items()):
            log(f"{d}: not compacted: {why}")
        with engine(settings, data_dir) as db:
            for d in closed:
                for name in sorted(days[d]):
                    if name not in reg:
                        rep.partitions.append(PartitionResult(name, d, "skipped",
                                                              "not a table of the registry"))
                        continue
                    try:
                        r = compact_partition(data_dir, reg[name], d, settings, db)
                    except LockedError as e:
                        r = PartitionResult(name, d, "skipped", str(e))
                    rep.partitions.append(r)
                    if r.status == "compacted":
                        log(f"{name} {d}: {r.files_before} -> {r.files_after} files, "
                            f"{r.rows_before} -> {r.rows_after} rows ({r.dropped} duplicates "
                            f"dropped), {r.seconds:.1f} s")
                    elif r.status == "skipped":
                        log(f"{name} {d}: skipped: {r.reason}")
    finally:
        os.close(fd)
    return rep


def compact_yesterday(data_dir: Path, log: Log = _quiet) -> CompactReport | None:
    """What ``record`` runs at the end when ``compact_yesterday`` is set: compact yesterday's
    day if it is closed. Never raises for what it finds (a second compaction running, a busy
    day): the next run tries again."""
    d = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
    try:
        return compact(data_dir, d, log=log)
    except RecorderError as e:
        log(f"compact {d}: {e.one_line()}")
        return None
