"""Lake maintenance: ``verify`` (compaction and pruning will live here too).

:func:`verify` answers "is the lake exactly what the journal says, and can every reader read
it?" after an incident or in a test. It checks, within the scope given (a date, a venue):

- every visible Parquet file opens and reads fully (every row group, every column);
- readers see no temporary file: a visible name not ending in ``.parquet``, or a ``.parquet``
  with a hidden name, is a failure; a hidden ``.<name>.parquet.tmp`` is a builder's work in
  progress, fine while its run's builder lives and a warning (stale) once it is gone;
- no row identity ``(venue, run_id, conn_id, recv_seq, recv_sub)`` is in a table twice;
- completeness: each run whose journal is present is rebuilt from its journal into a scratch
  folder with the one journal -> rows path (:func:`_build_scratch`), and its identities per
  ``(table, date)`` are compared with the lake's rows of that venue and run, both ways
  (``EXCEPT ALL``): rows the journal yields but the lake lacks are *missing*, lake rows the
  journal does not yield (or yields fewer times) are *extra*. A duplicated row of a verifiable
  run is therefore counted both as a duplicate and as extra;
- lake rows of a run whose journal is gone cannot be checked: a warning, not a failure;
- a compacted day (``recorder compact``): its files' lineage names every source run; a row the
  journal yields that the lake lacks is *deduplicated*, not missing, when it is a source's,
  the lake still holds its key (that day or the day before), and the number of such rows of
  each source is what the lineage says compaction dropped. Every part of a compaction must be
  there (their rows add up to the compaction's ``rows_total``);
- days removed by ``recorder prune --lake-before`` (``prune/lake.json``) are not compared with
  the journal (a warning: ``recorder rebuild`` restores them);
- manifests are final (``complete``, ``failed``, ``crashed``, ``recovered``) unless the run is
  still alive.

Nothing in the lake is changed. Scratch work (the rebuilt rows and a DuckDB database of
identities, so memory stays bounded) goes to a hidden folder in the data dir, or the system
temp dir when the data dir is read-only, and is removed at the end.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from recorder import journal
from recorder.build import build_run_into
from recorder.compact import key_hash_sql, projection, sql_list, sql_str
from recorder.config import parse_day as parse_date
from recorder.errors import ConfigError, RecorderError
from recorder.lake import lake_pruned, read_lineage
from recorder.runs import FINAL as FINAL_STATUSES
from recorder.runs import manifest_path
from recorder.runs import run_being_written as _builder_alive
from recorder.schema import IDENTITY
from recorder.venues import CATALOGUE

if TYPE_CHECKING:
    from recorder.progress import Steps

_ID = ", ".join(IDENTITY)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TMP_SUFFIX = ".parquet.tmp"


@dataclass
class PartitionCheck:
    """One ``(table, date)`` of the lake (or of the journal's rebuild, when the lake lacks it).

    ``rows`` counts the lake's rows in scope; ``missing``/``extra`` compare them with the rows
    the journal yields (only runs whose journal is present); ``duplicates`` counts rows that
    repeat an identity already present (a row stored three times counts 2); ``unreadable``
    counts files that do not read fully; ``unverifiable`` counts rows whose run's journal is
    gone."""

    table: str
    date: str
    files: int = 0
    rows: int = 0
    missing: int = 0
    extra: int = 0
    duplicates: int = 0
    unreadable: int = 0
    unverifiable: int = 0
    deduplicated: int = 0  # journal rows compaction dropped as copies (their key is kept)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.duplicates or self.unreadable)

    @property
    def status(self) -> str:
        return "ok" if self.ok else "FAIL"


@dataclass
class VerifyReport:
    rows: list[PartitionCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # failures, one line each
    warnings: list[str] = field(default_factory=list)  # worth knowing, not failures
    runs_verified: list[tuple[str, str]] = field(default_factory=list)  # (venue, run)
    # journal rows the lake lacks, per (venue, run) (what `prune` must not delete)
    missing_by_run: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def _build_scratch(data_dir: Path, venue: str, run: str, root: Path) -> None:
    """Rebuild one venue's run from its journal into the lake layout under ``root``, with the
    one journal -> rows path the lake is built with."""
    # No build lock: verify only reads the journal and writes its own scratch folder, so it
    # never makes a real builder of the same run wait or give up.
    build_run_into(data_dir, venue, run, root, lock=False, catalogue=CATALOGUE, durable=False)


def _rel(data_dir: Path, p: Path) -> str:
    try:
        return str(p.relative_to(data_dir))
    except ValueError:
        return str(p)


def _read_fully(path: Path) -> str | None:
    """None when every row group and column reads; else why not."""
    try:
        with pq.ParquetFile(path, memory_map=False) as f:
            for i in range(f.num_row_groups):
                f.read_row_group(i)
    except (pa.ArrowException, OSError, ValueError) as e:
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return None


@dataclass
class _Lake:
    """What the walk of the lake found, within scope."""

    partitions: dict[tuple[str, str], list[Path]] = field(default_factory=dict)  # readable
    unreadable: dict[tuple[str, str], int] = field(default_factory=dict)
    # compacted files' lineage and row counts, per partition
    compacted: dict[tuple[str, str], list[tuple[Path, dict, int]]] = field(
        default_factory=dict)


def _temp_run(name: str, known_runs: Iterable[str]) -> str | None:
    """The run a hidden temp file ``.<run>-<venue>-<n>.parquet.tmp`` belongs to."""
    for run in sorted(known_runs, key=len, reverse=True):
        if name.startswith(f".{run}-"):
            return run
    return None


def _walk_lake(data_dir: Path, dates: set[str] | None, rep: VerifyReport,
               known_runs: set[str]) -> _Lake:
    lake = data_dir / "lake"
    found = _Lake()
    if not lake.is_dir():
        return found
    for dirpath, dirnames, filenames in os.walk(lake):
        here = Path(dirpath)
        # Hidden folders (a rebuild's staging) are invisible to readers' globs.
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        depth = len(here.relative_to(lake).parts)
        if depth == 1 and dates is not None:
            dirnames[:] = [d for d in dirnames if d.removeprefix("date=") in dates]
        if depth == 1:
            for d in dirnames:
                if d.startswith("date=") and not _valid_day(d[5:]):
                    rep.problems.append(
                        f"{_rel(data_dir, here / d)}: not a date=YYYY-MM-DD folder, yet the "
                        f"views read every date=* folder; move it out of the lake")
        in_partition = depth == 2 and here.name.startswith("date=") and _valid_day(
            here.name[5:])
        if dates is not None and depth < 2 and filenames:
            continue  # files above the partitions belong to no date
        for name in sorted(filenames):
            p = here / name
            where = _rel(data_dir, p)
            if name.startswith(".") and name.endswith(".parquet"):
                # DuckDB's and Polars' *.parquet globs match hidden names: the views read it,
                # so it is also read and counted below.
                rep.problems.append(
                    f"{where}: a .parquet file with a hidden name, which no builder commits; "
                    f"the views read it all the same (*.parquet matches it); move it out of "
                    f"the lake")
            elif name.startswith("."):
                if name.endswith(_TMP_SUFFIX):
                    run = _temp_run(name, known_runs)
                    if run is None or not _builder_alive(data_dir, run):
                        who = f"run {run}" if run else "an unknown run"
                        rep.warnings.append(
                            f"{where}: stale temporary file of {who}, whose builder is not "
                            f"running (never committed; recovery redoes its rows; safe to "
                            f"delete)")
                continue
            if not name.endswith(".parquet"):
                rep.problems.append(
                    f"{where}: a file readers can see that is not a committed .parquet (a "
                    f"temporary or stray file); move it out of the lake")
                continue
            err = _read_fully(p)
            key = (here.parent.name, here.name[5:])
            if err is not None:
                rep.problems.append(
                    f"{where}: unreadable Parquet file ({err}); it is not a complete file: "
                    f"move it out of the lake (while its run's journal is present, `recorder "
                    f"rebuild --date {key[1] if in_partition else 'YYYY-MM-DD'}` redoes its "
                    f"rows)")
                if in_partition:
                    found.unreadable[key] = found.unreadable.get(key, 0) + 1
                continue
            if not in_partition:
                rep.warnings.append(
                    f"{where}: outside a <table>/date=YYYY-MM-DD folder, so no view reads it")
                continue
            found.partitions.setdefault(key, []).append(p)
            try:
                lin = read_lineage(p)
            except Exception:  # noqa: BLE001 - it read fully above; a bad footer is no lineage
                lin = None
            if lin and lin.get("kind") == "compacted":
                found.compacted.setdefault(key, []).append(
                    (p, lin, pq.read_metadata(p).num_rows))
    return found


def _valid_day(text: str) -> bool:
    if not _DATE.fullmatch(text):
        return False
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _journal_runs(data_dir: Path, date: str | None, venue: str | None,
                  runs: set[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    """(venue, run) pairs whose journal can hold rows of ``date`` (its day or the day before:
    a segment may cross midnight), or every run when no date is given; only ``runs`` when
    given."""
    if date is None:
        found = set(journal.runs(data_dir, venue))
    else:
        prev = (dt.date.fromisoformat(date) - dt.timedelta(days=1)).isoformat()
        found = {*journal.runs(data_dir, venue, prev), *journal.runs(data_dir, venue, date)}
    return sorted(found if runs is None else found & runs)


def _run_dates(data_dir: Path, runs: set[tuple[str, str]]) -> set[str]:
    """The days the lake can hold rows of ``runs``: their journal's date folders and the day
    after each."""
    out: set[str] = set()
    for venue, run in runs:
        for p in journal.segments(data_dir, venue, run):
            d = dt.date.fromisoformat(p.parent.name.removeprefix("date="))
            out |= {d.isoformat(), (d + dt.timedelta(days=1)).isoformat()}
    return out


def _scratch_dir(data_dir: Path) -> Path:
    try:
        return Path(tempfile.mkdtemp(prefix=".verify-", dir=data_dir))
    except OSError:  # a read-only data dir (a backup) can still be verified
        return Path(tempfile.mkdtemp(prefix="recorder-verify-"))


def _known_runs(data_dir: Path) -> set[str]:
    runs_dir = data_dir / "runs"
    found = {run for _, run in journal.runs(data_dir)}
    if runs_dir.is_dir():
        found |= {p.stem for p in runs_dir.iterdir()
                  if p.suffix in (".json", ".lock") and not p.name.startswith(".")}
    return found


def verify(data_dir: Path, date: str | None = None, venue: str | None = None,
           progress: Steps | None = None,
           runs: set[tuple[str, str]] | None = None) -> VerifyReport:
    """Check the lake under ``data_dir`` against its journal and manifests (see the module
    docstring). ``date`` (``YYYY-MM-DD``) limits the check to the lake's ``date=`` partition of
    that day and the runs with journal on it or the day before; ``venue`` to rows whose
    ``venue`` column is that venue and to its journal; ``runs`` (``(venue, run)`` pairs, what
    ``prune`` checks) to those runs' journals and the days they can have rows in. Raises
    :class:`ConfigError` for a bad date or a data dir that does not exist; everything found in
    the data is in the report."""
    date = parse_date(date)
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise ConfigError(f"data dir {data_dir} does not exist")
    rep = VerifyReport()
    known = _known_runs(data_dir)
    dates = {date} if date is not None else None
    if runs is not None:
        run_days = _run_dates(data_dir, runs)
        dates = run_days if dates is None else dates & run_days
    found = _walk_lake(data_dir, dates, rep, known)
    scratch = _scratch_dir(data_dir)
    try:
        # In memory, spilling to the scratch dir past DuckDB's memory limit: a database file
        # would commit (fsync) its log at each of the thousand small statements a lake of a
        # hundred partitions takes (a 5-venue demo lake: 12 s -> see the README)
        con = duckdb.connect(":memory:")
        try:
            con.execute(f"SET temp_directory = {sql_str(str(scratch / 'spill'))}")
            con.execute("SET preserve_insertion_order = false")
            con.execute("SET enable_progress_bar = false")
            lake_runs = _compare(con, data_dir, date, venue, found, scratch, rep, progress,
                                 runs)
        finally:
            con.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    in_scope = {run for _, run in _journal_runs(data_dir, date, venue, runs)} | lake_runs
    if date is None and venue is None and runs is None:
        in_scope |= {p.stem for p in (data_dir / "runs").glob("*.json")
                     if not p.name.startswith(".")}
    _check_manifests(data_dir, sorted(in_scope), rep)
    if not rep.rows and not rep.problems:
        rep.warnings.append("nothing to verify: no lake rows and no journal in scope")
    return rep


def _key_hash(con: duckdb.DuckDBPyConnection, table: str, files: list[Path]) -> tuple[str, str]:
    """(SELECT over ``files`` with the table's columns, filename as ``__f``; the hash of a
    row's dedup key over it) for a registry table; for others a NULL key."""
    t = CATALOGUE.tables.get(table)
    if t is None:
        return (f"SELECT *, filename AS __f FROM read_parquet({sql_list(files)}, "
                f"union_by_name = true, hive_partitioning = false, filename = true)",
                "NULL::UBIGINT")
    src = projection(con, t, files, locate=True)
    return src, key_hash_sql(t)


def _compare(con: duckdb.DuckDBPyConnection, data_dir: Path, date: str | None,
             venue: str | None, found: _Lake, scratch: Path, rep: VerifyReport,
             progress: Steps | None = None,
             runs: set[tuple[str, str]] | None = None) -> set[str]:
    """Duplicates and completeness per partition; returns the runs seen in the lake."""
    con.execute("CREATE TABLE expected (tbl VARCHAR, date VARCHAR, venue VARCHAR, "
                "run_id VARCHAR, conn_id VARCHAR, recv_seq BIGINT, recv_sub INTEGER, "
                "dk UBIGINT)")
    con.execute("CREATE TABLE checked (venue VARCHAR, run_id VARCHAR)")  # journal compared
    con.execute("CREATE TABLE skipped (venue VARCHAR, run_id VARCHAR)")  # alive or unbuildable
    pruned_days = lake_pruned(data_dir)
    todo = _journal_runs(data_dir, date, venue, runs)
    if progress is not None:
        progress.set_total(len(todo))
    for v, run in todo:
        if progress is not None:
            progress.advance(note=f"{v} {run}")
        if _builder_alive(data_dir, run):
            rep.warnings.append(f"venue {v} run {run}: still recording or being built; its "
                                f"rows are not compared with its journal (verify again after "
                                f"it ends)")
            con.execute("INSERT INTO skipped VALUES (?, ?)", [v, run])
            continue
        root = scratch / "lake"
        try:
            _build_scratch(data_dir, v, run, root)
        except (RecorderError, OSError, ValueError) as e:  # ValueError: a bad JSON record
            rep.problems.append(f"venue {v} run {run}: cannot rebuild its rows from the "
                                f"journal, so they are not compared: {type(e).__name__}: {e}")
            con.execute("INSERT INTO skipped VALUES (?, ?)", [v, run])
            shutil.rmtree(root, ignore_errors=True)
            continue
        for part in sorted(root.glob("*/date=*")):
            d = part.name[5:]
            if date is not None and d != date or d in pruned_days:
                continue
            files = sorted(part.glob("*.parquet"))
            if files:
                src, dk = _key_hash(con, part.parent.name, files)
                con.execute(f"INSERT INTO expected SELECT ?, ?, {_ID}, {dk} FROM ({src})",
                            [part.parent.name, d])
        con.execute("INSERT INTO checked VALUES (?, ?)", [v, run])
        rep.runs_verified.append((v, run))
        shutil.rmtree(root, ignore_errors=True)
    for d in sorted(pruned_days):
        if date is None or d == date:
            rep.warnings.append(f"day {d} was removed from the lake by `recorder prune "
                                f"--lake-before`; not compared with the journal (`recorder "
                                f"rebuild --date {d}` restores it)")
    # Clustered by day, so each day's scans below skip the other days' row groups.
    con.execute("CREATE TABLE expected_by_part AS SELECT * FROM expected ORDER BY date, tbl")
    con.execute("DROP TABLE expected")
    con.execute("ALTER TABLE expected_by_part RENAME TO expected")
    keys = set(found.partitions) | set(found.unreadable)
    keys |= {(t, d) for t, d in con.execute("SELECT DISTINCT tbl, date FROM expected").fetchall()}
    lake_runs: set[str] = set()
    pruned: dict[tuple[str, str], int] = {}
    run_filter = ""
    if runs is not None:
        con.execute("CREATE TABLE scope (venue VARCHAR, run_id VARCHAR)")
        con.executemany("INSERT INTO scope VALUES (?, ?)", [list(r) for r in sorted(runs)])
        run_filter = " AND (venue, run_id) IN (SELECT venue, run_id FROM scope)"
    days: dict[str, list[str]] = {}
    for table, d in sorted(keys):
        days.setdefault(d, []).append(table)
    # A day at a time: its partitions' rows read into one table, then compared with a handful
    # of queries grouped by table (per partition, they were ten statements each: a 5-venue
    # demo lake of 102 partitions took 6 s of CPU to verify, most of it statement overhead),
    # while what is held at once stays one day, as compaction's.
    for d, tables in sorted(days.items()):
        lake_runs |= _compare_day(con, data_dir, d, tables, venue, runs, run_filter, found,
                                  rep, pruned)
    for (v, run), n in sorted(pruned.items()):
        rep.warnings.append(f"venue {v} run {run}: {n} lake row(s) not verifiable (journal "
                            f"pruned)")
    return lake_runs


def _compare_day(con: duckdb.DuckDBPyConnection, data_dir: Path, d: str, tables: list[str],
                 venue: str | None, runs: set[tuple[str, str]] | None, run_filter: str,
                 found: _Lake, rep: VerifyReport, pruned: dict[tuple[str, str], int]
                 ) -> set[str]:
    """Compare day ``d``'s partitions of ``tables`` with ``expected``: their checks go to
    ``rep`` (in ``tables``' order), the rows whose journal is pruned to ``pruned``; returns
    the runs seen in them."""
    con.execute("DROP TABLE IF EXISTS lk_day")
    con.execute("CREATE TABLE lk_day (tbl VARCHAR, filename VARCHAR, venue VARCHAR, "
                "run_id VARCHAR, conn_id VARCHAR, recv_seq BIGINT, recv_sub INTEGER, "
                "dk UBIGINT)")
    read: list[str] = []  # the tables whose partition DuckDB read (or that has no file)
    for table in tables:
        files = found.partitions.get((table, d), [])
        if files:
            where = "WHERE true" + (" AND venue = ?" if venue is not None else "") + run_filter
            try:
                src, dk = _key_hash(con, table, files)
                con.execute(f"INSERT INTO lk_day SELECT ?, __f, {_ID}, {dk} FROM ({src}) "
                            f"{where}", [table, *([venue] if venue is not None else [])])
            except duckdb.Error as e:
                check = PartitionCheck(table, d,
                                       unreadable=found.unreadable.get((table, d), 0))
                rep.problems.append(f"lake/{table}/date={d}: DuckDB cannot read its files "
                                    f"(pyarrow could): {str(e).splitlines()[0]}")
                check.unreadable += len(files)
                rep.rows.append(check)
                continue
        read.append(table)
    params = {"d": d}
    exp = f"SELECT tbl, {_ID} FROM expected WHERE date = $d"
    got = (f"SELECT tbl, {_ID} FROM lk_day WHERE (venue, run_id) IN (SELECT venue, run_id "
           f"FROM checked)")
    sizes = {str(t): (int(n), int(f)) for t, n, f in con.execute(
        "SELECT tbl, count(*), count(DISTINCT filename) FROM lk_day GROUP BY ALL").fetchall()}
    dups = {str(t): int(n) for t, n in con.execute(
        f"SELECT tbl, sum(n - 1) FROM (SELECT tbl, count(*) AS n FROM lk_day "
        f"GROUP BY tbl, {_ID} HAVING count(*) > 1) GROUP BY ALL").fetchall()}
    con.execute("DROP TABLE IF EXISTS miss_day")
    con.execute(f"CREATE TABLE miss_day AS SELECT m.*, e.dk FROM ({exp} EXCEPT ALL {got}) m "
                f"JOIN (SELECT * FROM expected WHERE date = $d) e USING (tbl, {_ID})", params)

    def by_table(sql: str, args: dict[str, str] | None = None
                 ) -> dict[str, list[tuple[str, str, int]]]:
        out: dict[str, list[tuple[str, str, int]]] = {}
        for t, v, r, n in con.execute(sql, args).fetchall():
            out.setdefault(str(t), []).append((str(v), str(r), int(n)))
        return out

    extra_by = by_table(f"SELECT tbl, venue, run_id, count(*) FROM ({got} EXCEPT ALL {exp}) "
                        f"GROUP BY ALL ORDER BY ALL", params)
    unverifiable_by = by_table(
        "SELECT tbl, venue, run_id, count(*) FROM lk_day WHERE (venue, run_id) NOT IN (SELECT "
        "venue, run_id FROM checked UNION ALL SELECT venue, run_id FROM skipped) "
        "GROUP BY ALL ORDER BY ALL")
    lake_runs = {str(r) for (r,) in con.execute("SELECT DISTINCT run_id FROM lk_day").fetchall()}
    missing_by = by_table("SELECT tbl, venue, run_id, count(*) FROM miss_day GROUP BY ALL "
                          "ORDER BY ALL")
    for table in read:
        files = found.partitions.get((table, d), [])
        check = PartitionCheck(table, d, unreadable=found.unreadable.get((table, d), 0))
        check.rows, nfiles = sizes.get(table, (0, 0))
        check.files = (nfiles if venue is not None or runs is not None else len(files)) \
            + check.unreadable
        check.duplicates = dups.get(table, 0)
        missing = missing_by.get(table, [])
        comp = found.compacted.get((table, d), [])
        if comp:
            # what the compaction's lineage says it dropped is not missing: worked out on
            # this partition's own tables
            con.execute("DROP TABLE IF EXISTS miss")
            con.execute("CREATE TABLE miss AS SELECT * EXCLUDE (tbl) FROM miss_day "
                        "WHERE tbl = ?", [table])
            _check_compacted(con, data_dir, table, d, comp, found, check, rep)
            missing = [(str(v), str(r), int(n)) for v, r, n in con.execute(
                "SELECT venue, run_id, count(*) FROM miss GROUP BY ALL ORDER BY ALL"
            ).fetchall()]
        extra = extra_by.get(table, [])
        check.missing = sum(n for _, _, n in missing)
        check.extra = sum(n for _, _, n in extra)
        for v, r, n in missing:
            rep.missing_by_run[(v, r)] = rep.missing_by_run.get((v, r), 0) + n
        for v, run, n in unverifiable_by.get(table, []):
            pruned[(v, run)] = pruned.get((v, run), 0) + n
            check.unverifiable += n
        if (venue is not None or runs is not None) and not (
                check.rows or check.missing or check.unreadable):
            continue  # only other venues' (runs') rows here
        rep.rows.append(check)
        found_here = []
        if check.missing:
            found_here.append(f"{check.missing} row(s) the journal yields are missing from "
                              f"the lake ({_by_run(missing)})")
        if check.duplicates:
            found_here.append(f"{check.duplicates} duplicate row(s) (same {_ID})")
        if check.extra:
            found_here.append(f"{check.extra} lake row(s) the journal does not yield, or "
                              f"yields fewer times ({_by_run(extra)})")
        if found_here:
            # rebuild replaces the whole date folder with what the journal yields
            fix = (f"`recorder rebuild --date {d}` rewrites the day from the journal"
                   if not check.unverifiable else
                   f"`recorder rebuild --date {d}` would drop the {check.unverifiable} row(s) "
                   f"whose journal is pruned, so repair the files by hand")
            rep.problems.append(f"lake/{table}/date={d}: " + "; ".join(found_here) + f"; {fix}")
    return lake_runs


def _check_compacted(con: duckdb.DuckDBPyConnection, data_dir: Path, table: str, d: str,
                     comp: list[tuple[Path, dict, int]], found: _Lake, check: PartitionCheck,
                     rep: VerifyReport) -> None:
    """A compacted day: every part present, and the journal rows the lake lacks are exactly
    the copies its lineage says compaction dropped (removed from ``miss``)."""
    where = f"lake/{table}/date={d}"
    by_cid: dict[str, list[tuple[Path, dict, int]]] = {}
    for item in comp:
        by_cid.setdefault(str(item[1].get("compaction")), []).append(item)
    if len(by_cid) > 1:
        rep.problems.append(f"{where}: files of {len(by_cid)} compactions "
                            f"({', '.join(sorted(by_cid))}); one compaction replaces all the "
                            f"files of a day, so the others are stray copies")
    sources: dict[tuple[str, str], dict] = {}
    for cid, items in sorted(by_cid.items()):
        for p, lin, n in items:
            if n != lin.get("rows"):
                rep.problems.append(f"{where}: {p.name} holds {n} rows, its lineage says "
                                    f"{lin.get('rows')}")
        parts = sorted(int(lin.get("part", 0)) for _, lin, _ in items)
        total = items[0][1].get("rows_total")
        have = sum(lin.get("rows", 0) for _, lin, _ in items)
        if len(set(parts)) != len(parts):
            rep.problems.append(f"{where}: compaction {cid} has part(s) more than once "
                                f"({parts}); a copy of a compacted file")
        elif have != total:
            rep.problems.append(f"{where}: compaction {cid} is incomplete: its parts here "
                                f"hold {have} rows of {total} (a compacted file is missing)")
        for src in items[0][1].get("sources", []):
            sources[(str(src.get("venue")), str(src.get("run_id")))] = src
    checked = {(str(v), str(r)) for v, r in con.execute(
        "SELECT venue, run_id FROM checked").fetchall()}
    # Only sources whose journal was rebuilt can be compared (a pruned or live one cannot).
    sources = {k: v for k, v in sources.items() if k in checked}
    if not sources:
        return
    con.execute("DROP TABLE IF EXISTS csrc")
    con.execute("CREATE TABLE csrc (venue VARCHAR, run_id VARCHAR)")
    con.executemany("INSERT INTO csrc VALUES (?, ?)", [list(k) for k in sorted(sources)])
    held = f"SELECT dk FROM lk_day WHERE tbl = {sql_str(table)}"
    prev = (dt.date.fromisoformat(d) - dt.timedelta(days=1)).isoformat()
    prev_files = found.partitions.get((table, prev))
    if prev_files is None:  # outside the scope walked: look at the day before directly
        folder = data_dir / "lake" / table / f"date={prev}"
        prev_files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if prev_files and any(int(s.get("dropped_earlier", 0)) for s in sources.values()):
        src, dk = _key_hash(con, table, prev_files)
        held += f" UNION ALL SELECT {dk} FROM ({src})"
    con.execute("ALTER TABLE miss ADD COLUMN dedup BOOLEAN DEFAULT false")
    con.execute(f"UPDATE miss SET dedup = true WHERE (venue, run_id) IN (SELECT venue, run_id "
                f"FROM csrc) AND dk IN ({held})")
    got = dict(((str(v), str(r)), int(n)) for v, r, n in con.execute(
        "SELECT venue, run_id, count(*) FROM miss WHERE dedup GROUP BY ALL").fetchall())
    for key, src in sorted(sources.items()):
        want, earlier = int(src.get("dropped", 0)), int(src.get("dropped_earlier", 0))
        n = got.get(key, 0)
        if n < want and earlier and not prev_files:
            # The day before is gone from the lake (pruned): the copies of its rows that
            # compaction dropped have no kept key to match any more.
            allow = min(want - n, earlier)
            con.execute("UPDATE miss SET dedup = true WHERE rowid IN (SELECT rowid FROM miss "
                        "WHERE NOT dedup AND venue = ? AND run_id = ? LIMIT ?)",
                        [key[0], key[1], allow])
            rep.warnings.append(f"{where}: {allow} row(s) of {key[0]} run {key[1]} were "
                                f"dropped by compaction as copies of rows of {prev}, which is "
                                f"no longer in the lake")
            n += allow
        if n != want and (n or want):
            rep.problems.append(f"{where}: {n} row(s) of {key[0]} run {key[1]} the journal "
                                f"yields are missing while the lake holds their key, but its "
                                f"compaction lineage says {want} were dropped as copies")
    check.deduplicated = int(con.execute("SELECT count(*) FROM miss WHERE dedup").fetchone()[0])
    con.execute("DELETE FROM miss WHERE dedup")


def _by_run(counts: list[tuple[str, str, int]]) -> str:
    shown = ", ".join(f"{v} run {r}: {n}" for v, r, n in counts[:5])
    return shown + (f", and {len(counts) - 5} more runs" if len(counts) > 5 else "")


def _check_manifests(data_dir: Path, runs: list[str], rep: VerifyReport) -> None:
    for run in runs:
        path = manifest_path(data_dir, run)
        where = _rel(data_dir, path)
        alive = _builder_alive(data_dir, run)
        try:
            m = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            if not alive:
                rep.problems.append(f"run {run}: no manifest ({where}); `recorder recover` "
                                    f"writes one for a run whose journal is present")
            continue
        except (OSError, orjson.JSONDecodeError) as e:
            rep.problems.append(f"run {run}: manifest {where} is unreadable: {e}")
            continue
        status = m.get("status") if isinstance(m, dict) else None
        if status in FINAL_STATUSES or alive:
            continue
        if status == "running":
            rep.problems.append(f"run {run}: manifest says running but no process holds it "
                                f"(a crash); `recorder recover` finishes it")
        else:
            rep.problems.append(f"run {run}: manifest {where} has status {status!r}, not one "
                                f"of {sorted(FINAL_STATUSES)}")


def format_report(rep: VerifyReport) -> list[str]:
    """The lines ``recorder verify`` prints: the partition table, one line per finding, and a
    last line ``verify: ok`` or ``verify: N problem(s)``."""
    head = ("table", "date", "files", "rows", "missing", "extra", "duplicates", "status")
    body = [(c.table, c.date, str(c.files), str(c.rows), str(c.missing), str(c.extra),
             str(c.duplicates), c.status)
            for c in sorted(rep.rows, key=lambda c: (c.table, c.date))]  # checked day by day
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = []
    if body:
        for r in [head, *body]:
            cells = [r[i].ljust(widths[i]) if i < 2 else r[i].rjust(widths[i])
                     for i in range(len(head) - 1)]
            lines.append("  ".join([*cells, r[-1]]).rstrip())
    lines += [f"FAIL: {p}" for p in rep.problems]
    lines += [f"warning: {w}" for w in rep.warnings]
    lines.append("verify: ok" if rep.ok else f"verify: {len(rep.problems)} problem(s)")
    return lines
