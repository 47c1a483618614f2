"""``recorder prune``: retention that never removes the last copy of a row.

- ``--journal-before D`` removes the journal of runs whose every segment is in a ``date=``
  folder before ``D``, and only once ``recorder verify``, run on those runs, shows the lake
  holds every row their journal yields (a row compaction dropped as a copy has its key kept).
  A run still recording or being built, one whose lake misses rows, one that cannot be
  rebuilt from its journal, or one with rows in a day pruned from the lake, keeps its journal.
  A run's segments go together: a run continuing past ``D`` keeps all of them (a partly
  pruned journal could not be verified any more). While a run's journal is removed its build
  lock is held, so no builder or rebuild reads it meanwhile.
- ``--lake-before D`` removes the lake's days before ``D`` whose every row the journal can give
  back (``recorder rebuild --date`` restores them): verify must show no lake row the journal
  does not yield, and every file's lineage must name journal that is still there. Each
  table's folder of the day is renamed away under the day's exclusive lock (readers see the
  day or nothing), then deleted. The day is listed in ``prune/lake.json`` first, so ``verify``
  does not report its rows as missing.

Both at once: the journal is pruned first (against the lake as it is), then the lake's days
whose journal is still there; so a day never loses both copies.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from recorder import journal
from recorder.errors import ConfigError
from recorder.lake import (
    DateLock,
    lake_pruned,
    read_pruned_days,
    write_pruned_days,
)

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass
class PruneReport:
    journal_removed: list[tuple[str, str, int, int]] = field(default_factory=list)
    # (venue, run, segments, bytes)
    journal_kept: list[tuple[str, str, str]] = field(default_factory=list)  # venue, run, why
    lake_removed: list[tuple[str, int, int]] = field(default_factory=list)  # day, files, bytes
    lake_kept: list[tuple[str, str]] = field(default_factory=list)  # day, why
    dry_run: bool = False

    @property
    def freed_bytes(self) -> int:
        return sum(b for *_, b in self.journal_removed) + sum(b for *_, b in self.lake_removed)

    def lines(self) -> list[str]:
        verb = "would remove" if self.dry_run else "removed"
        out = [f"journal {verb}: {v} run {r}: {n} segment(s), {_size(b)}"
               for v, r, n, b in self.journal_removed]
        out += [f"journal kept: {v} run {r}: {why}" for v, r, why in self.journal_kept]
        out += [f"lake {verb}: {d}: {n} file(s), {_size(b)}" for d, n, b in self.lake_removed]
        out += [f"lake kept: {d}: {why}" for d, why in self.lake_kept]
        out.append(f"prune: {'would free' if self.dry_run else 'freed'} "
                   f"{_size(self.freed_bytes)} ({len(self.journal_removed)} journal run(s), "
                   f"{len(self.lake_removed)} lake day(s))")
        return out


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def _day(text: str, flag: str) -> str:
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise ConfigError(f"{flag} wants a day as YYYY-MM-DD, got {text!r}") from None


def prune(data_dir: Path, journal_before: str | None = None, lake_before: str | None = None,
          dry_run: bool = False, log: Log = _quiet) -> PruneReport:
    data_dir = Path(data_dir)
    if journal_before is None and lake_before is None:
        raise ConfigError("give --journal-before DATE and/or --lake-before DATE")
    if not data_dir.is_dir():
        raise ConfigError(f"data dir {data_dir} does not exist")
    rep = PruneReport(dry_run=dry_run)
    for stale in (data_dir / "lake").glob("*/.pruned-*"):  # a prune killed after its rename
        shutil.rmtree(stale, ignore_errors=True)
    if journal_before is not None:
        _prune_journal(data_dir, _day(journal_before, "--journal-before"), rep, dry_run, log)
    if lake_before is not None:
        _prune_lake(data_dir, _day(lake_before, "--lake-before"), rep, dry_run, log)
    return rep


def _prune_journal(data_dir: Path, before: str, rep: PruneReport, dry_run: bool,
                   log: Log) -> None:
    from recorder.build import Busy, _claim, pending_runs
    from recorder.maintain import _builder_alive, _run_dates, verify

    runs = journal.runs(data_dir)
    pending = set(pending_runs(data_dir))
    pruned_days = lake_pruned(data_dir)
    candidates: dict[tuple[str, str], list[Path]] = {}
    for key, segs in sorted(runs.items()):
        days = {p.parent.name.removeprefix("date=") for p in segs}
        if min(days) >= before:
            continue
        v, r = key
        if max(days) >= before:
            rep.journal_kept.append((v, r, f"the run continues on or after {before} (its "
                                           f"segments go together)"))
        elif _builder_alive(data_dir, r) or key in pending:
            rep.journal_kept.append((v, r, "still recording, or not fully built into the "
                                           "lake"))
        elif _run_dates(data_dir, {key}) & pruned_days:
            rep.journal_kept.append((v, r, "it has rows in a day pruned from the lake: the "
                                           "journal is their last copy"))
        else:
            candidates[key] = segs
    if not candidates:
        return
    log(f"verifying {len(candidates)} run(s) against the lake before removing their "
        f"journal...")
    vr = verify(data_dir, runs=set(candidates))
    verified = set(vr.runs_verified)
    for key, segs in sorted(candidates.items()):
        v, r = key
        if key not in verified:
            rep.journal_kept.append((v, r, "could not be rebuilt from its journal to compare "
                                           "(see `recorder verify`)"))
            continue
        if vr.missing_by_run.get(key):
            rep.journal_kept.append((v, r, f"the lake lacks {vr.missing_by_run[key]} of its "
                                           f"rows: the journal is their last copy (`recorder "
                                           f"verify`, `recorder rebuild`)"))
            continue
        # The run's build lock while its segments go: a rebuild reading them holds it (then
        # the journal stays), and none can start reading a half-removed journal.
        try:
            fd = _claim(data_dir, r, v)
        except Busy:
            rep.journal_kept.append((v, r, "a lake builder or a rebuild holds it"))
            continue
        try:
            size = sum(p.stat().st_size for p in segs if p.exists())
            if not dry_run:
                for p in segs:
                    p.unlink(missing_ok=True)
                for folder in {p.parent for p in segs}:
                    try:
                        folder.rmdir()  # only when empty
                    except OSError:
                        pass
        finally:
            os.close(fd)
        rep.journal_removed.append((v, r, len(segs), size))
        log(f"journal {'would be ' if dry_run else ''}removed: {v} run {r}")


def _prune_lake(data_dir: Path, before: str, rep: PruneReport, dry_run: bool,
                log: Log) -> None:
    from recorder.build import _unrebuildable
    from recorder.maintain import verify

    lake = data_dir / "lake"
    days = sorted({p.name.removeprefix("date=") for p in lake.glob("*/date=*")
                   if not p.parent.name.startswith(".") and p.is_dir()})
    marks = read_pruned_days(data_dir)
    for d in days:
        if d >= before:
            continue
        try:
            prev = (dt.date.fromisoformat(d) - dt.timedelta(days=1)).isoformat()
        except ValueError:
            continue
        found = {**journal.runs(data_dir, date=prev), **journal.runs(data_dir, date=d)}
        found = {key: journal.segments(data_dir, key[0], key[1]) for key in found}
        lost = _unrebuildable(data_dir, d, found)
        if lost:
            t, why = sorted(lost.items())[0]
            rep.lake_kept.append((d, f"the lake is the last copy of rows of {t} ({why[0]})"))
            continue
        vr = verify(data_dir, date=d)
        extra = sum(c.extra + c.unverifiable for c in vr.rows)
        if extra or any(c.unreadable for c in vr.rows):
            rep.lake_kept.append((d, f"{extra} lake row(s) the journal does not give back, or "
                                     f"unreadable files (see `recorder verify --date {d}`)"))
            continue
        folders = sorted(p for p in lake.glob(f"*/date={d}") if not p.parent.name.startswith("."))
        files = [f for folder in folders for f in folder.rglob("*") if f.is_file()]
        size = sum(f.stat().st_size for f in files)
        if not dry_run:
            try:
                lock = DateLock(data_dir, d, exclusive=True, wait=False)
            except BlockingIOError:
                rep.lake_kept.append((d, "a builder, compaction or rebuild is using the day"))
                continue
            with lock:
                marks[d] = {"at": dt.datetime.now(dt.UTC).isoformat(), "files": len(files),
                            "bytes": size, "tables": [f.parent.name for f in folders]}
                write_pruned_days(data_dir, marks)
                gone = []
                for folder in folders:
                    hidden = folder.parent / f".pruned-{d}-{time.time_ns()}"
                    os.rename(folder, hidden)  # readers see the day's table, or none of it
                    gone.append(hidden)
            for g in gone:
                shutil.rmtree(g, ignore_errors=True)
        rep.lake_removed.append((d, len(files), size))
        log(f"lake {'would be ' if dry_run else ''}removed: {d}")
