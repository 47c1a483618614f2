"""Recovery and rebuild: the journal is the source of truth; the lake can always be redone.

- :func:`recover` runs at the start of every recording. A run that died (``kill -9``, power
  loss) may have journaled frames whose rows never reached a committed Parquet file. For each
  dead run, the whole run is re-normalized from its journal (adapter state needs the history),
  and a row is kept only if its journal position is not covered *for its table* by a
  committed file's lineage. So every journaled frame ends up in the lake exactly once.
- :func:`rebuild` re-normalizes every run touching a date (after a mapper fix) into a staging
  folder and swaps each table's ``date=`` folder in atomically.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from recorder import journal
from recorder.errors import RecorderError
from recorder.journal import SegmentReport, day
from recorder.lake import Coverage, LakeWriter, exchange_dirs, lake_files, read_lineage
from recorder.lake import stale_temp_files as temp_files
from recorder.normalize import Normalizer
from recorder.venues import VENUES
from recorder.venues import get as get_venue


@dataclass
class RunRecovery:
    venue: str
    run: str
    journal_records: int = 0
    rows_written: int = 0
    torn_bytes: int = 0
    temp_files_removed: int = 0
    tables: dict[str, int] = field(default_factory=dict)


def manifest_path(data_dir: Path, run: str) -> Path:
    return data_dir / "runs" / f"{run}.json"


def read_manifest(data_dir: Path, run: str) -> dict | None:
    p = manifest_path(data_dir, run)
    try:
        return orjson.loads(p.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None


def run_alive(data_dir: Path, run: str) -> bool:
    """A live recorder holds an exclusive lock on ``runs/<run>.lock`` for its whole life."""
    p = data_dir / "runs" / f"{run}.lock"
    if not p.exists():
        return False
    fd = os.open(p, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def adapter_name(data_dir: Path, venue: str, run: str) -> str:
    m = read_manifest(data_dir, run) or {}
    name = m.get("venues", {}).get(venue, {}).get("adapter", venue)
    if name not in VENUES:
        raise RecorderError(f"journal of {venue} in run {run}: unknown adapter {name!r}")
    return name


def coverage(data_dir: Path, run: str, venue: str) -> dict[str, Coverage]:
    """Per table: the journal positions its committed files of this run already hold."""
    ranges: dict[str, list[list[int]]] = {}
    for p in lake_files(data_dir, run=run):
        lin = read_lineage(p)
        if lin and lin.get("run_id") == run and lin.get("venue") == venue:
            ranges.setdefault(lin["table"], []).extend(lin["journal"])
    return {t: Coverage(r) for t, r in ranges.items()}


def normalize_run(data_dir: Path, venue: str, run: str, writer: LakeWriter, *,
                  skip: dict[str, Coverage] | None = None,
                  keep: Callable[[int], bool] | None = None,
                  reports: list[SegmentReport] | None = None) -> tuple[int, int]:
    """Feed one run's journal through a fresh adapter into ``writer``; returns
    ``(journal records read, rows written)``."""
    spec = get_venue(adapter_name(data_dir, venue, run))
    norm = Normalizer(spec.make_adapter(venue, None, {}, offline=True))
    empty = Coverage()
    n_rec = n_rows = 0
    for rec in journal.read_run(data_dir, venue, run, reports):
        n_rec += 1
        rows, _ = norm.process(rec.kind, rec.conn, rec.ts_recv, rec.data)
        writer.note(rec.segment, rec.index)
        pos = (rec.segment, rec.index)
        for sub, (table, row) in enumerate(rows):
            if skip is not None and pos in skip.get(table.name, empty):
                continue
            if keep is not None and not keep(rec.ts_recv):
                continue
            writer.add(table, row, rec.ts_recv, rec.conn, rec.seq, sub)
            n_rows += 1
        if writer.buffered >= 100_000:
            writer.write(*writer.take())
    writer.write(*writer.take())
    writer.commit_all()
    return n_rec, n_rows


def recover(data_dir: Path, log: Callable[[str], None] = lambda s: None) -> list[RunRecovery]:
    """Finish every dead run whose manifest does not say it completed."""
    done: list[RunRecovery] = []
    for (venue, run), _segs in journal.runs(data_dir).items():
        m = read_manifest(data_dir, run)
        if m and m.get("status") in ("complete", "recovered") and venue in m.get(
                "recovered_venues", m.get("venues", {})):
            continue
        if run_alive(data_dir, run):
            continue
        rep = RunRecovery(venue, run)
        for tmp in temp_files(data_dir, run):
            tmp.unlink(missing_ok=True)  # never committed: its rows are redone below
            rep.temp_files_removed += 1
        writer = LakeWriter(data_dir, venue, run, tag=f"rec{time.time_ns()}-")
        reports: list[SegmentReport] = []
        rep.journal_records, rep.rows_written = normalize_run(
            data_dir, venue, run, writer, skip=coverage(data_dir, run, venue), reports=reports)
        rep.torn_bytes = sum(r.torn_bytes for r in reports)
        rep.tables = dict(writer.rows_committed)
        _mark_recovered(data_dir, run, venue, rep)
        log(f"recovered {venue} run {run}: {rep.journal_records} journal records, "
            f"{rep.rows_written} rows were missing from the lake, "
            f"{rep.torn_bytes} torn bytes at the tail")
        done.append(rep)
    return done


def _mark_recovered(data_dir: Path, run: str, venue: str, rep: RunRecovery) -> None:
    from recorder.lake import atomic_write_bytes

    m = read_manifest(data_dir, run) or {"run_id": run, "venues": {venue: {"adapter": venue}}}
    if m.get("status") != "complete":
        m["status"] = "recovered"
    rv = m.setdefault("recovered_venues", {})
    rv[venue] = {"journal_records": rep.journal_records, "rows_added": rep.rows_written,
                 "torn_bytes": rep.torn_bytes, "at": dt.datetime.now(dt.UTC).isoformat()}
    atomic_write_bytes(manifest_path(data_dir, run), orjson.dumps(m, option=orjson.OPT_INDENT_2))


def rebuild(data_dir: Path, date: str, log: Callable[[str], None] = lambda s: None) -> dict[
        str, int]:
    """Re-normalize every run with journal on ``date`` (or the day before: a segment may cross
    midnight) and swap each table's ``date=`` folder for the new one."""
    try:
        d = dt.date.fromisoformat(date)
    except ValueError:
        raise RecorderError(f"--date wants YYYY-MM-DD, got {date!r}") from None
    prev = (d - dt.timedelta(days=1)).isoformat()
    found = {**journal.runs(data_dir, date=prev), **journal.runs(data_dir, date=date)}
    for (_venue, run) in found:
        if run_alive(data_dir, run):
            raise RecorderError(f"run {run} is still recording; rebuild {date} after it ends")
    lake_root = data_dir / "lake"
    staging = lake_root / f".rebuild-{time.time_ns()}"
    counts: dict[str, int] = {}
    try:
        for (venue, run) in sorted(found):
            writer = LakeWriter(data_dir, venue, run, root=staging)
            normalize_run(data_dir, venue, run, writer, keep=lambda ts: day(ts) == date)
            for t, n in writer.rows_committed.items():
                counts[t] = counts.get(t, 0) + n
        tables = {p.name for p in staging.glob("*") if p.is_dir()}
        tables |= {p.parent.name for p in lake_root.glob(f"*/date={date}")
                   if not p.parent.name.startswith(".")}
        for t in sorted(tables):
            new = staging / t / f"date={date}"
            new.mkdir(parents=True, exist_ok=True)
            live = lake_root / t / f"date={date}"
            if live.exists():
                exchange_dirs(new, live)  # readers see the old folder or the new, never none
            else:
                live.parent.mkdir(parents=True, exist_ok=True)
                os.rename(new, live)
            log(f"{t}: {counts.get(t, 0)} rows for {date}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return counts
