"""``recorder compact`` and ``recorder rebuild`` with ``--config C`` on a bucket: the same
work as on a data dir, committed by a record.

Object storage has no rename, so the folder swap of :mod:`recorder.compact` becomes a commit
record, as in table formats (Delta's log, Iceberg's snapshots), reduced to what this lake
needs: per table and day, the compactor

1. lists the files readers see (:func:`recorder.remote.visible`), downloads them (and the
   day before's, for the cross-midnight duplicates) into a private work folder and runs
   :func:`recorder.compact.compact_partition` there: same dedup, sort, row groups, lineage;
2. uploads the ``compacted-<id>-<part>.parquet`` outputs (hidden from readers: no record
   names them yet);
3. PUTs ``lake/_compactions/<id>.json`` (table, day, the exact input files, the outputs):
   one atomic PUT is the switch; readers listing after it see the outputs instead of the
   inputs;
4. deletes inputs only ``grace`` seconds after their record was committed (so a reader that
   listed before the switch still finds its files), and outputs no record names (a killed
   compactor's) once they are that old.

``rebuild`` does the same for a whole day: the runs' journal from the bucket and the day's
visible files into a work folder, :func:`recorder.build.rebuild` there (same refusal where
the journal is gone), the new files uploaded as ``rebuilt-<id>-<file>``, and one record whose
inputs are every visible file of the day, all tables at once. It refuses a day with a run
whose final manifest is not in the bucket yet (still recording, or still uploading).

Files a recorder uploads into the day meanwhile are not inputs: they stay visible beside the
outputs (no row missing, none doubled); the next compaction takes them. A kill at any instant
leaves either no record (inputs visible, orphan outputs hidden, collected later) or a record
whose outputs are all in the bucket.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from recorder.compact import (
    CompactReport,
    CompactSettings,
    PartitionResult,
    compact_partition,
    engine,
)
from recorder.errors import ConfigError
from recorder.remote import (
    COMPACTIONS,
    Remote,
    RemoteError,
    compaction_id,
    read_commits,
    visible,
    winners,
)
from recorder.venues import CATALOGUE

Log = Callable[[str], None]


def _by_day(vis: dict[str, dict[str, int]]) -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    for table, files in vis.items():
        for rel in files:
            out.setdefault((table, rel.split("/")[2].removeprefix("date=")), []).append(rel)
    return {k: sorted(v) for k, v in out.items()}


def compact_remote(url: str, work: Path, date: str | None = None, table: str | None = None,
                   settings: CompactSettings | None = None, log: Log = lambda s: None,
                   closed_before: str | None = None, grace: float = 600.0) -> CompactReport:
    """Compact the bucket's days before ``closed_before`` (default today, UTC), or only
    ``date`` (any day: files arriving later stay beside the outputs), then collect what
    committed compactions replaced ``grace`` seconds ago."""
    from recorder.config import parse_day

    date = parse_day(date)
    reg = CATALOGUE.tables
    if table is not None and table not in reg:
        raise ConfigError(f"unknown table {table!r}")
    remote = Remote.parse(url)
    fs = remote.fs()
    limit = closed_before or dt.datetime.now(dt.UTC).date().isoformat()
    rep = CompactReport()
    commits = read_commits(remote, fs)
    by_day = _by_day(visible(remote, fs, with_commits=commits))
    work.mkdir(parents=True, exist_ok=True)
    with engine(settings, work) as db:  # one database for every partition
        for (name, d), files in sorted(by_day.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            if (table and name != table) or (date and d != date) or (not date and d >= limit):
                continue
            if name not in reg:
                rep.partitions.append(PartitionResult(name, d, "skipped",
                                                      "not a table of the registry"))
                continue
            cids = {compaction_id(rel.rsplit("/", 1)[-1]) for rel in files}
            if len(cids) == 1 and None not in cids:
                r = PartitionResult(name, d, "already", "compacted, nothing new")
                r.files_before = r.files_after = len(files)
                rep.partitions.append(r)
                continue
            r = _one(remote, fs, work, reg[name], d, files, by_day, settings, db)
            rep.partitions.append(r)
            if r.status == "compacted":
                log(f"{name} {d}: {r.files_before} -> {r.files_after} files, {r.rows_before} -> "
                    f"{r.rows_after} rows ({r.dropped} duplicates dropped), {r.seconds:.1f} s")
            elif r.status == "skipped":
                log(f"{name} {d}: skipped: {r.reason}")
    freed = collect_garbage(remote, fs, grace)
    if freed:
        log(f"removed {freed} file(s) that compactions replaced more than {grace:g} s ago")
    return rep


def _one(remote: Remote, fs: Any, work: Path, table: Any, d: str, files: list[str],
         by_day: dict[tuple[str, str], list[str]],
         settings: CompactSettings | None, db: Any = None) -> PartitionResult:
    root = Path(tempfile.mkdtemp(prefix="compact-", dir=work))
    try:
        for rel in files:
            remote.get(fs, rel, root / rel)
        prev = (dt.date.fromisoformat(d) - dt.timedelta(days=1)).isoformat()
        for rel in by_day.get((table.name, prev), []):
            remote.get(fs, rel, root / rel)  # what the day before holds (dedup across midnight)
        res = compact_partition(root, table, d, settings, db)
        if res.status != "compacted":
            return res
        folder = root / "lake" / table.name / f"date={d}"
        outputs = sorted(folder.glob("compacted-*.parquet"))
        cid = compaction_id(outputs[0].name)
        rels = [f"lake/{table.name}/date={d}/{p.name}" for p in outputs]
        for p, rel in zip(outputs, rels, strict=True):
            remote.put(fs, p, rel)
        record = {"compaction": cid, "table": table.name, "date": d, "inputs": files,
                  "outputs": rels, "rows_before": res.rows_before, "rows_after": res.rows_after,
                  "committed_ns": time.time_ns()}
        _put_bytes(remote, fs, f"{COMPACTIONS}/{cid}.json", orjson.dumps(record))
        return res
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _put_bytes(remote: Remote, fs: Any, rel: str, data: bytes) -> None:
    try:
        fs.pipe_file(remote.path(rel), data)
        if int(fs.info(remote.path(rel), refresh=True).get("size", -1)) != len(data):
            raise RemoteError(f"upload {rel}: size differs")
    except RemoteError:
        raise
    except Exception as e:  # noqa: BLE001
        raise RemoteError(f"upload {rel}: {type(e).__name__}: {str(e)[:300]}") from e


def collect_garbage(remote: Remote, fs: Any, grace: float) -> int:
    """Delete inputs of winning compactions committed ``grace`` seconds ago or more, outputs
    no winning record names once that old (a killed or losing compactor's), and records
    nothing is left of. Returns the files removed."""
    now = time.time_ns()
    commits = read_commits(remote, fs)
    win = winners(commits)
    listing = remote.listing("lake")
    removed = 0

    def rm(rel: str) -> None:
        nonlocal removed
        try:
            fs.rm_file(remote.path(rel))
            removed += 1
        except FileNotFoundError:
            pass

    old = {cid for cid, rec in commits.items() if now - rec.get("committed_ns", now) >= grace * 1e9}
    for cid in old & set(win):
        for rel in commits[cid].get("inputs", []):
            if rel in listing:
                rm(rel)
    named = {rel for rec in win.values() for rel in rec.get("outputs", [])}
    for rel in listing:
        name = rel.rsplit("/", 1)[-1]
        cid = compaction_id(name)
        if cid is None or rel in named:
            continue
        if cid in commits and cid not in old:
            continue  # a loser, still within grace
        if cid not in commits:
            try:
                modified = fs.info(remote.path(rel)).get("LastModified")
            except FileNotFoundError:
                continue
            if modified is not None and (time.time() - modified.timestamp()) < grace:
                continue  # a compactor may be uploading it now
        rm(rel)
    listing = remote.listing("lake")
    for cid in old:
        rec = commits[cid]
        if not any(rel in listing for rel in rec.get("inputs", []) + rec.get("outputs", [])):
            rm(f"{COMPACTIONS}/{cid}.json")
    return removed


def rebuild_remote(url: str, work: Path, date: str, force: bool = False,
                   log: Log = lambda s: None) -> dict[str, int]:
    """Re-normalize ``date`` from the bucket's journal (on any machine) and switch the
    bucket's day to the result with one commit record."""
    import secrets

    from recorder import journal
    from recorder.build import rebuild
    from recorder.errors import LockedError

    try:
        d = dt.date.fromisoformat(date)
    except ValueError:
        raise ConfigError(f"--date wants YYYY-MM-DD, got {date!r}") from None
    date, prev = d.isoformat(), (d - dt.timedelta(days=1)).isoformat()
    remote = Remote.parse(url)
    fs = remote.fs()
    commits = read_commits(remote, fs)
    day_files = sorted(rel for files in visible(remote, fs, with_commits=commits).values()
                       for rel in files if rel.split("/")[2] == f"date={date}")
    work.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="rebuild-", dir=work))
    try:
        segs = remote.listing("journal")
        runs = {journal.parse_name(Path(rel))[0] for rel in segs
                if rel.split("/")[2] in (f"date={date}", f"date={prev}")}
        manifests = remote.listing("runs")
        for run in sorted(runs):
            if f"runs/{run}.json" not in manifests:
                raise LockedError(f"rebuild {date}: run {run} has no final manifest in the "
                                  f"bucket (still recording, or still uploading); try later")
            remote.get(fs, f"runs/{run}.json", root / "runs" / f"{run}.json")
        for rel in segs:
            if journal.parse_name(Path(rel))[0] in runs:
                remote.get(fs, rel, root / rel)
        for rel in day_files:
            remote.get(fs, rel, root / rel)
        counts = rebuild(root, date, log, force, catalogue=CATALOGUE)
        cid = f"{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"
        outputs = []
        for p in sorted((root / "lake").glob(f"*/date={date}/*.parquet")):
            if p.name.startswith(".") or p.parent.parent.name.startswith("."):
                continue
            rel = f"lake/{p.parent.parent.name}/date={date}/rebuilt-{cid}-{p.name}"
            remote.put(fs, p, rel)
            outputs.append(rel)
        record = {"compaction": cid, "kind": "rebuild", "table": "*", "date": date,
                  "inputs": day_files, "outputs": outputs, "committed_ns": time.time_ns()}
        _put_bytes(remote, fs, f"{COMPACTIONS}/{cid}.json", orjson.dumps(record))
        return counts
    finally:
        shutil.rmtree(root, ignore_errors=True)
