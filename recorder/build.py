"""The lake builder: the one code path that turns journal records into lake rows.

It follows the journal of a run while the run records (``recorder record`` starts it as a
separate process), finishes runs that died (``kill -9``, power loss, a builder that died),
and rebuilds a day into a fresh folder (``recorder rebuild``). All three go through
:func:`ingest`, whose guard turns any failure of parsing or of an adapter (``RecursionError``
from a frame built to hurt included) into an ``unhandled`` row with the raw frame.

Exactly once, by construction:
- a ``(venue, run)`` is built by one builder at a time: ``locks/build-<run>-<venue>.lock``
  is an exclusive ``flock`` taken without waiting (the kernel drops it when the holder dies);
- a builder that takes over a half-built run reads the lineage of that run's committed files
  (journal positions per ``(table, date)``), re-reads the whole journal (adapters need their
  history) and drops, per destination table and date, the rows those files already hold;
- ``build/<run>-<venue>.json`` says how far a builder got and, once it has read the journal to
  its end after the run ended, ``"complete": true``.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from recorder import journal
from recorder.catalogue import Catalogue
from recorder.errors import ConfigError, LockedError, RecorderError, StorageError
from recorder.journal import Record, RunTail, day
from recorder.lake import (
    DateLock,
    LakeWriter,
    atomic_write_bytes,
    coverage,
    exchange_dirs,
    lineage_sources,
    read_lineage,
    stale_temp_files,
    unmark_lake_pruned,
)
from recorder.normalize import Normalizer
from recorder.rows import unhandled
from recorder.runs import BUILDER_KEY, manifest_path, read_manifest, run_alive

if TYPE_CHECKING:
    from recorder.progress import Steps

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class BuildSettings:
    """How the builder cuts files. ``flush_seconds``: a row group at least this often while
    following a live run; ``batch_rows``: at most this many rows buffered (bounded memory)."""

    flush_seconds: float = 5.0
    rotate_seconds: float = 300.0
    max_rows: int = 200_000
    max_bytes: int = 128 << 20
    batch_rows: int = 50_000


class Busy(RecorderError):
    """Another builder holds this run; it will finish it."""

    fault = "user"
    retryable = True


def state_path(data_dir: Path, run: str, venue: str) -> Path:
    return data_dir / "build" / f"{run}-{venue}.json"


def read_state(data_dir: Path, run: str, venue: str) -> dict[str, Any] | None:
    try:
        return orjson.loads(state_path(data_dir, run, venue).read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None


def _claim(data_dir: Path, run: str, venue: str) -> int:
    """Take the build lock of ``(venue, run)`` without waiting; raise :class:`Busy`."""
    p = data_dir / "locks" / f"build-{run}-{venue}.lock"
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise Busy(f"{venue} run {run} is being built by another process") from None
    return fd


def adapter_name(data_dir: Path, venue: str, run: str) -> str:
    """The adapter a journal folder was recorded with (the run manifest maps config sections
    to adapters; a journal without a manifest is named after its adapter)."""
    m = read_manifest(data_dir, run) or {}
    return (m.get("venues", {}).get(venue) or {}).get("adapter", venue)


def ingest(norm: Normalizer, rec: Record, writer: LakeWriter) -> int:
    """One journal record -> rows in ``writer``. Never raises for what a frame holds."""
    try:
        rows, _ = norm.process(rec.kind, rec.conn, rec.ts_recv, rec.data)
    except Exception as e:  # noqa: BLE001 - RecursionError too: the frame is kept, not fatal
        rows = [unhandled("adapter_error", rec.data, error=f"{type(e).__name__}: "
                          f"{str(e)[:500]}")]
    writer.note(rec.segment, rec.index)
    pos = rec.segment << 32 | rec.index
    add = writer.add
    for sub, (table, row) in enumerate(rows):
        add(table, row, rec.ts_recv, rec.conn, rec.seq, sub, pos)
    return len(rows)


@dataclass
class Progress:
    """How far one builder got: journal records read, rows made, the last record's time."""

    records: int = 0
    rows: int = 0
    last_ts: int = 0


class RunBuilder:
    """Builds one venue's journal of one run. Holds the run's build lock from construction
    until :meth:`close`. With ``root`` (rebuild, verify) it writes a fresh lake there and
    neither looks at nor changes the live lake. ``catalogue`` gives the adapter the journal
    was recorded with."""

    def __init__(self, data_dir: Path, venue: str, run: str,
                 settings: BuildSettings | None = None, *, catalogue: Catalogue,
                 root: Path | None = None, keep_day: str | None = None,
                 lock: bool = True, durable: bool = True) -> None:
        self.data_dir, self.venue, self.run = data_dir, venue, run
        self.settings = s = settings or BuildSettings()
        self.keep_day = keep_day
        self._fd = _claim(data_dir, run, venue) if lock else None
        try:
            name = adapter_name(data_dir, venue, run)
            spec = catalogue.venues.get(name)
            if spec is None:
                raise RecorderError(f"journal of {venue} in run {run}: unknown adapter {name!r}")
            self.norm = Normalizer(spec.make_adapter(venue, None, {}, offline=True))
            skip = None
            self.removed_temp = 0
            if root is None:
                # Ours alone now (we hold the lock): a dead builder's unfinished files go,
                # and what its committed files hold is not written again.
                for tmp in stale_temp_files(data_dir, run, venue):
                    tmp.unlink(missing_ok=True)
                    self.removed_temp += 1
                skip = coverage(data_dir, run, venue)
            self.resumed = bool(skip)
            self.writer = LakeWriter(
                data_dir, venue, run, root=root, skip=skip,
                tag=f"{secrets.token_hex(3)}-" if (skip or self.removed_temp) else "",
                max_rows=s.max_rows, max_bytes=s.max_bytes, rotate_seconds=s.rotate_seconds,
                durable=durable)
        except BaseException:
            self.close()
            raise
        self.tail = RunTail(data_dir, venue, run)
        self.progress = Progress()
        self.complete = False
        self._last_flush = time.monotonic()

    def step(self, final: bool) -> int:
        """Read what the journal holds now and build it; returns the records read. With
        ``final`` (the run has ended), reaching the end completes the build."""
        recs = self.tail.poll(final=final)
        w, norm, keep_day = self.writer, self.norm, self.keep_day
        p = self.progress
        for rec in recs:
            if keep_day is None or day(rec.ts_recv) == keep_day:
                p.rows += ingest(norm, rec, w)
            else:  # rebuild of one day: adapters still see every record, in order
                try:
                    norm.process(rec.kind, rec.conn, rec.ts_recv, rec.data)
                except Exception:  # noqa: BLE001, S110 - only the rows of keep_day matter
                    pass
                w.note(rec.segment, rec.index)
            if w.buffered >= self.settings.batch_rows:
                self._flush()
        p.records += len(recs)
        if recs:
            p.last_ts = recs[-1].ts_recv
        now = time.monotonic()
        if w.buffered and (final or now - self._last_flush >= self.settings.flush_seconds):
            self._flush()
        elif not w.buffered and now - self._last_flush >= self.settings.flush_seconds:
            w.write({}, [])  # commits files that are due by age
            self._last_flush = now
        if final and not recs and self.tail.at_end:
            self._flush()
            w.commit_all()
            self.complete = True
        return len(recs)

    def _flush(self) -> None:
        self.writer.write(*self.writer.take())
        self._last_flush = time.monotonic()

    def state(self) -> dict[str, Any]:
        w, p = self.writer, self.progress
        return {"run_id": self.run, "venue": self.venue, "complete": self.complete,
                "records": p.records, "rows": p.rows, "last_ts": p.last_ts,
                "journal_records": self.tail.records, "torn_bytes": self.tail.torn_bytes,
                "journal_errors": self.tail.errors[-20:],
                "tables": dict(sorted(w.rows_committed.items())),
                "rows_skipped": w.rows_skipped, "resumed": self.resumed,
                "pid": os.getpid(), "updated_ns": time.time_ns()}

    def save_state(self) -> None:
        path = state_path(self.data_dir, self.run, self.venue)
        try:
            atomic_write_bytes(path, orjson.dumps(self.state(), option=orjson.OPT_INDENT_2))
        except OSError as e:
            raise StorageError(f"cannot write the builder's state {path}: "
                               f"{e.strerror or e}") from e

    def abort(self) -> None:
        self.writer.abort()
        self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def build_run_into(data_dir: Path, venue: str, run: str, root: Path,
                   keep_day: str | None = None, lock: bool = True, *,
                   catalogue: Catalogue,
                   on_step: Callable[[RunBuilder], None] | None = None,
                   durable: bool = True) -> RunBuilder:
    """Build a whole (ended) run into the lake folder ``root`` (rebuild, verify). ``lock``:
    hold the run's build lock meanwhile (rebuild must not race a builder finishing it).
    ``on_step`` sees the builder after each batch of records (progress). ``durable=False``:
    no fsync (a scratch lake, deleted after one read)."""
    b = RunBuilder(data_dir, venue, run, BuildSettings(flush_seconds=3600.0),
                   catalogue=catalogue, root=root, keep_day=keep_day, lock=lock,
                   durable=durable)
    try:
        while not b.complete:
            b.step(final=True)
            if on_step is not None:
                on_step(b)
    except BaseException:
        b.abort()
        raise
    b.close()
    return b


def _mark_crashed(data_dir: Path, run: str, venue: str | None,
                  st: dict[str, Any] | None) -> bool:
    """A run whose recorder died keeps a 'running' manifest: say it crashed, and what the
    builder that finished it found. Only for dead runs (no recorder writes the manifest
    then); a lock serialises builders finishing other venues of the same run. Returns
    whether the manifest said running (or crashed) before."""
    (data_dir / "locks").mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / "locks" / f"manifest-{run}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if run_alive(data_dir, run):
            return False
        m = read_manifest(data_dir, run) or {"run_id": run, "status": "running"}
        if m.get("status") not in ("running", "crashed"):
            return False
        m["status"] = "crashed"
        if venue is not None and st is not None:
            m.setdefault("finished_by_builder", {})[venue] = {
                "journal_records": st["journal_records"],
                "rows_added": st["rows"] - st["rows_skipped"], "torn_bytes": st["torn_bytes"],
                "at": dt.datetime.now(dt.UTC).isoformat(), "builder_pid": os.getpid()}
        atomic_write_bytes(manifest_path(data_dir, run),
                           orjson.dumps(m, option=orjson.OPT_INDENT_2))
        return True
    finally:
        os.close(fd)


def _finish_manifests(data_dir: Path, final: set[str], log: Log) -> None:
    """Runs that died before their journal had anything (or whose every venue is built):
    nothing to build, but the manifest must not say running for ever."""
    for p in (data_dir / "runs").glob("*.json"):
        run = p.stem
        if run in final or p.name.startswith("."):
            continue
        m = read_manifest(data_dir, run)
        if m is None or m.get("status") != "running":
            if m is not None:
                final.add(run)
            continue
        if run_alive(data_dir, run):
            continue
        venues = list(m.get("venues") or {})
        if any(journal.segments(data_dir, v, run) and not (
                read_state(data_dir, run, v) or {}).get("complete") for v in venues):
            continue  # a builder will finish it (and mark it)
        if _mark_crashed(data_dir, run, None, None):
            log(f"run {run}: its recorder died; manifest marked crashed")
        final.add(run)


def pending_runs(data_dir: Path, known: set[tuple[str, str]] | None = None,
                 run: str | None = None) -> list[tuple[str, str]]:
    """``(venue, run)`` pairs with journal whose build is not complete (of one run, when
    given). ``known`` caches the complete ones between calls."""
    known = set() if known is None else known
    out = []
    keys = journal.runs(data_dir) if run is None else {
        (p.parent.parent.name, run): None for p in journal.segments(data_dir, None, run)}
    for key in keys:
        if key in known:
            continue
        venue, run = key
        st = read_state(data_dir, run, venue)
        if st and st.get("complete"):
            known.add(key)
            continue
        m = read_manifest(data_dir, run)
        if m and BUILDER_KEY not in m and m.get("status") in ("complete", "recovered"):
            known.add(key)  # an older recorder built this run's lake itself
            continue
        out.append(key)
    return out


def build(data_dir: Path, settings: BuildSettings | None = None, *, catalogue: Catalogue,
          follow: str | None = None, log: Log = _quiet, poll_seconds: float = 0.05,
          progress: Steps | None = None) -> list[dict[str, Any]]:
    """Finish every dead run that no builder holds, and follow the run ``follow`` (live)
    until it ends and is fully built. Returns the final state of each run built.
    ``progress`` counts the dead runs taken on and finished."""
    settings = settings or BuildSettings()
    builders: dict[tuple[str, str], RunBuilder] = {}
    final: set[tuple[str, str]] = set()  # runs known to have ended: read to the end
    idle: set[tuple[str, str]] = set()  # last step read nothing
    done: list[dict[str, Any]] = []
    skipped: set[tuple[str, str]] = set()
    known: set[tuple[str, str]] = set()
    final_manifests: set[str] = set()
    last_full = last_scan = -1e9
    last_save = 0.0
    swept = False  # a full scan made after the followed run ended
    try:
        while True:
            now = time.monotonic()
            # A full scan (every journal folder, every manifest) at start and now and then
            # for runs that die meanwhile; in between, only the followed run's folders.
            full = now - last_full >= 30.0
            if full or now - last_scan >= (1.0 if builders else 0.2):
                last_scan = now
                # Read before the scan: once the followed run has ended, its journal folders
                # are all there, so a scan after it finds every venue to finish.
                ended = follow is None or not run_alive(data_dir, follow)
                if ended and not swept:
                    # One more full scan before leaving: a dead run whose own builder was
                    # still dying at our start (a kill -9 lands when an fsync returns) is
                    # finished now, not by the next run.
                    full = swept = True
                if full:
                    last_full = now
                    candidates = pending_runs(data_dir, known)
                else:
                    candidates = pending_runs(data_dir, known, follow) if follow else []
                for key in candidates:
                    venue, run = key
                    if key in builders or key in skipped:
                        continue
                    if run != follow and run_alive(data_dir, run):
                        continue  # a live run of another recorder: its own builder follows it
                    try:
                        builders[key] = RunBuilder(data_dir, venue, run, settings,
                                                   catalogue=catalogue)
                    except Busy:
                        continue
                    except RecorderError as e:
                        log(f"cannot build {venue} run {run}: {e.one_line()}")
                        skipped.add(key)
                        continue
                    if run != follow:
                        final.add(key)
                        if progress is not None:
                            progress.set_total((progress.total or 0) + 1)
                    idle.add(key)
                if full or ended:
                    _finish_manifests(data_dir, final_manifests, log)
                if not builders and ended:
                    break
            progressed = 0
            for key, b in list(builders.items()):
                venue, run = key
                if key not in final and key in idle and not run_alive(data_dir, run):
                    final.add(key)  # checked before reading: nothing is appended after this
                n = b.step(final=key in final)
                progressed += n
                (idle.discard if n else idle.add)(key)
                if not b.complete:
                    continue
                b.save_state()
                b.close()
                del builders[key]
                st = b.state()
                done.append(st)
                crashed = _mark_crashed(data_dir, run, venue, b.state())
                if progress is not None and run != follow:
                    progress.advance(note=f"{venue} {run}")
                if run != follow or crashed:
                    log(f"recovered {venue} run {run}: {st['journal_records']} journal "
                        f"records, {st['rows'] - st['rows_skipped']} rows were missing "
                        f"from the lake, {st['torn_bytes']} torn bytes at the tail")
            if time.monotonic() - last_save >= 1.0:
                last_save = time.monotonic()
                for b in builders.values():
                    b.save_state()
            if not progressed:
                time.sleep(poll_seconds)
    finally:
        # Stopped early (signal, disk error): committed files stay, the rest is redone by
        # the next builder from the journal.
        for b in builders.values():
            b.abort()
    return done


# --- rebuild ---------------------------------------------------------------------------------


class RebuildRefused(RecorderError):
    """The lake holds rows the journal no longer has; rebuilding would delete them."""

    fault = "user"


def _unrebuildable(data_dir: Path, date: str, found: dict[tuple[str, str], list[Path]]) -> dict[
        str, list[str]]:
    """Per table of ``date``: why some of its files could not be redone from the journal."""
    segs = {key: {journal.parse_name(p)[1] for p in paths}
            for key, paths in found.items()}
    out: dict[str, list[str]] = {}
    for folder in sorted((data_dir / "lake").glob(f"*/date={date}")):
        if folder.parent.name.startswith("."):
            continue
        for f in sorted(folder.glob("*.parquet")):
            try:
                lin = read_lineage(f)
            except Exception as e:  # noqa: BLE001 - unreadable: the journal must redo it
                lin, why = None, f"unreadable ({type(e).__name__})"
            else:
                why = "no lineage"
            if lin is not None:
                # A compacted file holds the rows of many runs: each must be redoable.
                why = ""
                for src in lineage_sources(lin):
                    key = (src.get("venue"), src.get("run_id"))
                    have = segs.get(key)  # type: ignore[arg-type]
                    if have is None:
                        why = f"journal of {key[0]} run {key[1]} is gone"
                    elif any(r[0] not in have for r in src.get("journal", [])):
                        why = f"journal of {key[0]} run {key[1]} was partly pruned"
                    if why:
                        break
                if not why:
                    continue
            if why.startswith("unreadable"):
                continue  # a broken file holds nothing a reader can have: rebuild mends it
            out.setdefault(folder.parent.name, []).append(why)
    return out


def rebuild(data_dir: Path, date: str, log: Log = _quiet, force: bool = False, *,
            catalogue: Catalogue, progress: Steps | None = None) -> dict[str, int]:
    """Re-normalize every run with journal on ``date`` (or the day before: a segment may cross
    midnight) into a fresh folder and swap each table's ``date=`` folder for the new one.
    Refuses (:class:`RebuildRefused`) when the lake holds rows for ``date`` that the journal
    cannot give back, unless ``force``."""
    try:
        d = dt.date.fromisoformat(date)
    except ValueError:
        raise ConfigError(f"--date wants YYYY-MM-DD, got {date!r}") from None
    date = d.isoformat()
    prev = (d - dt.timedelta(days=1)).isoformat()
    found = {**journal.runs(data_dir, date=prev), **journal.runs(data_dir, date=date)}
    # a run's segments across every date folder (lineage may name a segment of another day)
    found = {key: journal.segments(data_dir, key[0], key[1]) for key in found}
    for (_venue, run) in found:
        if run_alive(data_dir, run):
            raise LockedError(f"run {run} is still recording; rebuild {date} after it ends")
    # Every run's build lock for the whole rebuild: no builder finishes one of them into the
    # live lake meanwhile, and `recorder prune` cannot remove a journal being read.
    claims: list[int] = []
    try:
        for (venue, run) in sorted(found):
            try:
                claims.append(_claim(data_dir, run, venue))
            except Busy as e:
                raise LockedError(f"rebuild {date}: {e}; try again when it is done") from None
        # Read after the claims: a prune that got there first has finished by now.
        found = {key: journal.segments(data_dir, key[0], key[1]) for key in found}
        return _rebuild_claimed(data_dir, date, found, log, force, catalogue, progress)
    finally:
        for fd in claims:
            os.close(fd)


def _rebuild_claimed(data_dir: Path, date: str, found: dict[tuple[str, str], list[Path]],
                     log: Log, force: bool, catalogue: Catalogue,
                     progress: Steps | None) -> dict[str, int]:
    lost = _unrebuildable(data_dir, date, found)
    if lost and not force:
        what = "; ".join(f"{t} ({len(w)} file(s): {w[0]})" for t, w in sorted(lost.items()))
        raise RebuildRefused(f"rebuild {date} would delete rows the journal no longer has: "
                             f"{what}; pass --force to rebuild anyway")
    lake_root = data_dir / "lake"
    staging = lake_root / f".rebuild-{time.time_ns()}"
    counts: dict[str, int] = {}
    try:
        if progress is not None:
            progress.set_total(len(found))

        def stepped(b: RunBuilder) -> None:
            if progress is not None:
                progress.update(note=f"{b.venue} {b.run}: {b.progress.records:,} records")

        for (venue, run) in sorted(found):
            b = build_run_into(data_dir, venue, run, staging, keep_day=date,
                               catalogue=catalogue, on_step=stepped, lock=False)
            if progress is not None:
                progress.advance(note=f"{venue} {run}")
            for t, n in b.writer.rows_committed.items():
                counts[t] = counts.get(t, 0) + n
        # The swap, under the day's exclusive lock: no builder has a file open in the day
        # (it would be swapped away under it) and no compaction swaps it at the same time.
        try:
            lock = DateLock(data_dir, date, exclusive=True, wait=False)
        except BlockingIOError:
            raise LockedError(f"rebuild {date}: a lake builder has a file open in that day, "
                              f"or a compaction is swapping it; try again") from None
        with lock:
            tables = {p.name for p in staging.glob("*") if p.is_dir()}
            tables |= {p.parent.name for p in lake_root.glob(f"*/date={date}")
                       if not p.parent.name.startswith(".")}
            for t in sorted(tables):
                new = staging / t / f"date={date}"
                new.mkdir(parents=True, exist_ok=True)
                live = lake_root / t / f"date={date}"
                if live.exists():
                    exchange_dirs(new, live)  # readers see the old folder or the new
                else:
                    live.parent.mkdir(parents=True, exist_ok=True)
                    os.rename(new, live)
                log(f"{t}: {counts.get(t, 0)} rows for {date}")
        _unmark_pruned(data_dir, date)
    except OSError as e:
        raise StorageError(f"rebuild {date}: {e}") from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return counts


def _unmark_pruned(data_dir: Path, date: str) -> None:
    """A rebuilt day is in the lake again (``recorder prune --lake-before`` marked it gone)."""
    unmark_lake_pruned(data_dir, date)




def lower_priority() -> None:
    """Nice 19, and the same for this process's autogroup: with the kernel's autogroup
    scheduling (on by default), a process in a session of its own competes with the whole
    recorder as an equal whatever its nice value, and took CPU from the hot path (make bench
    measured 12-15 us of builder CPU per recorded frame, against the recorder's 10)."""
    try:
        os.nice(19)
    except OSError:
        pass
    try:
        Path("/proc/self/autogroup").write_text("19")
    except OSError:
        pass  # no autogroup here (or not allowed): nice alone then


def main_build(data_dir: Path, settings: BuildSettings, follow: str | None, *,
               catalogue: Catalogue, background: bool = False) -> int:
    """``recorder build``: exit 0 when done, 1 on a disk error (one line, no traceback)."""
    def log(s: str) -> None:
        print(s, file=sys.stderr, flush=True)

    if background:
        lower_priority()

    try:
        done = build(data_dir, settings, catalogue=catalogue, follow=follow, log=log)
    except StorageError as e:
        log(f"recorder build: {e.one_line()}")
        return 1
    except OSError as e:  # the disk, wherever it failed: one line, no traceback
        log(f"recorder build: {StorageError(str(e)).one_line()}")
        return 1
    except KeyboardInterrupt:
        return 130
    if follow is None:
        log(f"built {len(done)} venue run(s)")
    return 0
