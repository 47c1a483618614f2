"""``recorder compact`` on real lakes: two recordings against the Mackinac simulator (history
replies repeat prints, so there are duplicates), and synthetic days (bench.ohlcv) for the
cases a short recording cannot make: midnight, a busy day, kill -9 mid-way."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.ohlcv import build_day
from recorder.build import RebuildRefused, build, rebuild, state_path
from recorder.compact import compact
from recorder.duck import connect
from recorder.lake import (
    COMPACTED_PREFIX,
    DateLock,
    LakeWriter,
    compacted_files,
    coverage,
    lake_files,
    read_lineage,
)
from recorder.maintain import VerifyReport, format_report, verify
from recorder.replay import records
from recorder.venues import CATALOGUE
from recorder.venues.mackinac.server import MackinacServer
from tests.conftest import RECORDER, ROOT, cli
from tests.e2e import run_with
from tests.venues.mackinac.e2e import config

SYMBOLS = ["hl:ETH", "uni:WETH/USDC", "rates:all"]
ID = "venue, run_id, conn_id, recv_seq, recv_sub"
TOMORROW = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=2)).isoformat()


def _show(rep: VerifyReport) -> str:
    return "\n".join(format_report(rep))


def _files(data_dir: Path) -> int:
    return len(lake_files(data_dir)) if (data_dir / "lake").exists() else 0


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two finished runs of one config: the second run's history reply repeats prints the
    first recorded live, and each run's own history overlaps its live prints."""
    data_dir = tmp_path_factory.mktemp("recorded") / "data"

    async def main_() -> None:
        server = MackinacServer(seed=11, rate=4.0)
        await server.start()
        cfg = config(data_dir, server.url, SYMBOLS)
        try:
            for _ in range(2):
                start = _files(data_dir)

                async def scenario(stop: asyncio.Event, start: int = start) -> None:
                    deadline = time.monotonic() + 60
                    while _files(data_dir) < start + 6:  # files rotate every 2 s
                        assert time.monotonic() < deadline, "no lake files committed"
                        await asyncio.sleep(0.1)

                result, _ = await run_with(cfg, scenario)
                assert result.exit_code == 0, result.reason
        finally:
            await server.stop()

    asyncio.run(main_())
    return data_dir


@pytest.fixture
def lake(recorded: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "data"
    shutil.copytree(recorded, dst)
    return dst


def _ids(con: duckdb.DuckDBPyConnection, view: str) -> list[tuple]:
    return sorted(con.sql(f"SELECT {ID} FROM {view}").fetchall())


def _id_table(con: duckdb.DuckDBPyConnection, view: str) -> pa.Table:
    """What :func:`_ids` gives, as a sorted Arrow table (a busy day's identities as Python
    tuples cost seconds to make and sort)."""
    t = con.sql(f"SELECT {ID} FROM {view}").to_arrow_table()
    return t.sort_by([(c, "ascending") for c in t.column_names])


def _day(data_dir: Path) -> str:
    [folder] = sorted((data_dir / "lake" / "mackinac_print").glob("date=*"))
    return folder.name.removeprefix("date=")


def test_compaction_dedups_sorts_keeps_lineage_and_verify_passes(lake: Path) -> None:
    tables = sorted(p.name for p in (lake / "lake").iterdir() if any(p.glob("date=*/*.parquet")))
    con = connect(lake, views={f"{t}_dedup" for t in tables})
    dedup_before = {t: _ids(con, f"{t}_dedup") for t in tables}
    plain_before = {t: _ids(con, t) for t in tables}
    assert len(plain_before["mackinac_print"]) > len(dedup_before["mackinac_print"]), \
        "the recording should hold duplicate prints (history replies)"
    files_before = _files(lake)

    rep = compact(lake, closed_before=TOMORROW)

    assert {p.status for p in rep.partitions} == {"compacted"}
    assert len(lake_files(lake)) == len(tables) < files_before
    con = connect(lake, views={f"{t}_dedup" for t in tables})
    for t in tables:
        # the plain view now gives the deduplicated answer, and the _dedup view the same
        assert _ids(con, t) == dedup_before[t], t
        assert _ids(con, f"{t}_dedup") == dedup_before[t], t
    # sorted by instrument, then event time, then the recording order
    [f] = compacted_files(lake, "mackinac_print")
    t = pq.read_table(f)
    t = t.set_column(0, "ts_recv", t["ts_recv"].cast("int64")).set_column(
        1, "ts_event", t["ts_event"].cast("int64"))
    rows = t.to_pylist()
    key = [(r["exchange"], r["symbol"], r["ts_event"] or r["ts_recv"], r["ts_recv"], r["venue"],
            r["conn_id"], r["recv_seq"], r["recv_sub"], r["run_id"]) for r in rows]
    assert key == sorted(key)
    # lineage: every source run, its journal ranges, and what dedup dropped of it
    lin = read_lineage(f)
    assert lin["kind"] == "compacted" and lin["part"] == 1 and lin["rows"] == len(rows)
    runs = sorted(p.stem for p in (lake / "runs").glob("*.json"))
    assert sorted(s["run_id"] for s in lin["sources"]) == runs
    assert all(s["journal"] and s["venue"] == "mackinac" for s in lin["sources"])
    dropped = len(plain_before["mackinac_print"]) - len(rows)
    assert sum(s["dropped"] for s in lin["sources"]) == dropped > 0
    assert sum(s["rows"] - s["dropped"] for s in lin["sources"]) == len(rows)
    # verify compares the compacted day with the journal: the copies are accounted for
    v = verify(lake)
    assert v.ok, _show(v)
    [pc] = [c for c in v.rows if c.table == "mackinac_print"]
    assert pc.deduplicated == dropped and pc.missing == 0
    # no staging or scratch left behind (the run's DuckDB spill folder included), and no
    # temporary file visible
    assert not list((lake / "lake").glob("*/.compact-*"))
    assert not [p for p in (lake / "lake").rglob("*") if p.name.startswith(".")]
    assert not list(lake.glob(".compact-*"))


def test_running_twice_changes_nothing(lake: Path) -> None:
    compact(lake, closed_before=TOMORROW)
    # a killed run's DuckDB spill folder: the next run removes it
    (lake / ".compact-tmp-killed" / "duckdb_temp_storage").mkdir(parents=True)
    before = {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in lake_files(lake)}
    rep = compact(lake, closed_before=TOMORROW)
    assert {p.status for p in rep.partitions} == {"already"}
    assert {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in lake_files(lake)} == before
    assert not list(lake.glob(".compact-*"))


def test_verify_catches_a_missing_or_copied_compacted_file(lake: Path) -> None:
    compact(lake, closed_before=TOMORROW)
    [f] = compacted_files(lake, "mackinac_print")
    rows = pq.read_metadata(f).num_rows
    copy = f.with_name(f"{COMPACTED_PREFIX}copy.parquet")
    shutil.copy(f, copy)
    rep = verify(lake)
    assert not rep.ok
    [row] = [c for c in rep.rows if c.table == "mackinac_print"]
    assert row.duplicates == rows, _show(rep)
    assert any("more than once" in p for p in rep.problems), _show(rep)
    copy.unlink()
    f.unlink()
    rep = verify(lake)
    [row] = [c for c in rep.rows if c.table == "mackinac_print"]
    assert row.missing > 0 and row.status == "FAIL", _show(rep)


def test_verify_catches_a_missing_part(small_day: Path, tmp_path: Path) -> None:
    """A day cut into several compacted files: one gone is named as an incomplete compaction
    even without a journal to compare with."""
    data_dir = tmp_path / "data"
    shutil.copytree(small_day, data_dir)
    from recorder.compact import CompactSettings

    compact(data_dir, table="mackinac_print",
            settings=CompactSettings(max_file_rows=5_000, max_group_rows=1_000,
                                     min_group_rows=500))
    parts = compacted_files(data_dir, "mackinac_print")
    assert len(parts) > 2
    assert verify(data_dir).ok
    parts[1].unlink()
    rep = verify(data_dir)
    assert any("is incomplete" in p and "a compacted file is missing" in p
               for p in rep.problems), _show(rep)


def test_rebuild_and_recovery_read_compacted_lineage(lake: Path) -> None:
    runs = sorted(p.stem for p in (lake / "runs").glob("*.json"))
    cov_before = {r: coverage(lake, r, "mackinac") for r in runs}
    compact(lake, closed_before=TOMORROW)
    for r in runs:  # the same journal positions are known to be in the lake
        after = coverage(lake, r, "mackinac")
        assert after.keys() == cov_before[r].keys()
        for k, c in after.items():
            assert c._by_seg == cov_before[r][k]._by_seg, (r, k)
    # a builder that takes a run over again (its state lost) adds nothing: the compacted
    # lineage covers every record, the copies dedup dropped included
    rows = {t: pq.read_metadata(f).num_rows for f in lake_files(lake)
            for t in [f.parent.parent.name]}
    state_path(lake, runs[0], "mackinac").unlink()
    done = build(lake, catalogue=CATALOGUE)
    assert [d["rows"] - d["rows_skipped"] for d in done] == [0]
    assert {t: pq.read_metadata(f).num_rows for f in lake_files(lake)
            for t in [f.parent.parent.name]} == rows
    assert verify(lake).ok
    # rebuild refuses when a compacted file's source journal is gone...
    day = _day(lake)
    kept = lake / "kept-journal"
    shutil.move(lake / "journal", kept)
    with pytest.raises(RebuildRefused, match="journal of mackinac run"):
        rebuild(lake, day, catalogue=CATALOGUE)
    shutil.move(kept, lake / "journal")
    # ...and redoes the day from the journal when it is there (uncompacted again)
    rebuild(lake, day, catalogue=CATALOGUE)
    assert not compacted_files(lake) and verify(lake).ok


def test_open_days_are_not_compacted(lake: Path) -> None:
    # today: runs may still record into it
    rep = compact(lake)
    assert not rep.partitions and "today" in next(iter(rep.days_open.values()))
    # a run whose build is not complete holds every day from its first
    runs = sorted(p.stem for p in (lake / "runs").glob("*.json"))
    state = state_path(lake, runs[1], "mackinac")
    st = orjson.loads(state.read_bytes())
    state.write_bytes(orjson.dumps({**st, "complete": False}))
    rep = compact(lake, closed_before=TOMORROW)
    assert not rep.partitions
    assert runs[1] in next(iter(rep.days_open.values()))


def test_replay_of_a_compacted_day_is_the_deduplicated_recording(lake: Path) -> None:
    con = connect(lake, views={"mackinac_print_dedup"})
    keep = set(con.sql(f"SELECT {ID} FROM mackinac_print_dedup").fetchall())

    def seq(data_dir: Path) -> list[tuple]:
        return [(r.table, r.venue, r.run_id, r.conn_id, r.recv_seq, r.recv_sub)
                for r in records(data_dir)]

    before = [r for r in seq(lake) if r[0] != "mackinac_print" or r[1:] in keep]
    compact(lake, closed_before=TOMORROW)
    assert seq(lake) == before


# --- synthetic days ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def busy_day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One synthetic day of 300k prints in 100 builder files (plus A/B and history copies),
    a row group per 5 minutes: a compaction of it lasts long enough to be killed mid-way."""
    data_dir = tmp_path_factory.mktemp("busy") / "data"
    build_day(data_dir, 300_000, flush_ns=300_000_000_000, file_ns=900_000_000_000)
    return data_dir


@pytest.fixture(scope="module")
def small_day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One synthetic day of 20k prints in 26 builder files (24 hourly runs, two A/B copies;
    history copies), a row group per 10 minutes: for what does not need a long compaction
    (each row group costs the writer and the compaction time, not the size)."""
    data_dir = tmp_path_factory.mktemp("small") / "data"
    build_day(data_dir, 20_000, flush_ns=600_000_000_000, file_ns=3_600_000_000_000)
    return data_dir


def test_copies_received_after_midnight_are_dropped_in_the_next_day(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    build_day(data_dir, 20_000, days=2, flush_ns=3_600_000_000_000,
              file_ns=3_600_000_000_000)
    con = connect(data_dir, views={"mackinac_print_dedup"})
    want = _ids(con, "mackinac_print_dedup")
    rep = compact(data_dir, table="mackinac_print")
    [d1, d2] = [p for p in rep.partitions if p.table == "mackinac_print"]
    assert d1.dropped_earlier == 0 and d2.dropped_earlier > 0
    con = connect(data_dir, views={"mackinac_print"})
    assert _ids(con, "mackinac_print") == want
    lin = read_lineage(compacted_files(data_dir, "mackinac_print", d2.date)[0])
    assert sum(s["dropped_earlier"] for s in lin["sources"]) == d2.dropped_earlier


def _counts(data_dir: Path) -> tuple[int, int]:
    """(rows, distinct identities) a reader sees in mackinac_print now."""
    con = duckdb.connect()
    glob = str(data_dir / "lake" / "mackinac_print" / "date=*" / "*.parquet")
    return con.execute(f"SELECT count(*), count(DISTINCT ({ID})) FROM read_parquet(?)",
                       [glob]).fetchall()[0]


def _visible_state(folder: Path) -> str:
    names = [p.name for p in folder.glob("*.parquet")]
    compacted = [n for n in names if n.startswith(COMPACTED_PREFIX)]
    assert not compacted or len(compacted) == len(names), f"old and new files mixed: {names}"
    return "new" if compacted else "old"


def _compact_proc(data_dir: Path) -> subprocess.Popen:
    return subprocess.Popen([*RECORDER, "compact", "--data-dir", str(data_dir), "--table",
                             "mackinac_print"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _until(cond: Callable[[], bool], proc: subprocess.Popen, limit: float = 120.0) -> bool:
    """Poll ``cond`` until it holds (True) or ``proc`` has ended (False)."""
    deadline = time.monotonic() + limit
    while not cond():
        if proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, "condition never reached"
        time.sleep(0.002)
    return True


def test_kill_9_at_any_instant_loses_nothing_and_shows_no_half_state(busy_day: Path,
                                                                       tmp_path: Path) -> None:
    """Compactions of one data dir killed one after another, each at a later moment: after
    each kill readers see the old day whole or the new day whole, and the next compaction
    clears what the killed one left and goes on from there; the last kill's leftovers are
    cleared by a compaction that finishes the job."""
    data_dir = tmp_path / "data"
    shutil.copytree(busy_day, data_dir)
    folder = data_dir / "lake" / "mackinac_print" / f"date={_day(data_dir)}"
    total, distinct = _counts(busy_day)
    want = _id_table(connect(busy_day, views={"mackinac_print_dedup"}), "mackinac_print_dedup")
    left: set[Path] = set()  # staging and DuckDB spill folders the last killed one left

    def staging() -> list[Path]:  # the running compaction's
        return [p for p in folder.parent.glob(".compact-*") if p not in left]

    def engine_open() -> bool:  # its DuckDB (and spill folder) made, no staging yet
        return bool([p for p in data_dir.glob(".compact-tmp-*") if p not in left]) \
            and not staging()

    # the moments to die at: the run's DuckDB open; staging made; a compacted file written
    # in staging; swapped in, old files not yet deleted
    moments: list[tuple[str, Callable[[], bool]]] = [
        ("engine open", engine_open),
        ("staging created", lambda: bool(staging())),
        ("part written", lambda: any(list(s.glob(f"{COMPACTED_PREFIX}*")) for s in staging())),
        ("swapped", lambda: _visible_state(folder) == "new" and bool(staging())),
    ]
    killed = []
    for name, cond in moments:
        proc = _compact_proc(data_dir)
        try:
            if _until(cond, proc):
                proc.send_signal(signal.SIGKILL)
                killed.append(name)
                # it had begun by clearing what the compaction killed before it left
                assert not [p for p in left if p.exists()], name
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
        # readers see the old day whole or the new day whole
        state = _visible_state(folder)
        rows, ids = _counts(data_dir)
        if state == "old":
            assert (rows, ids) == (total, distinct), name
        else:
            assert rows == ids == want.num_rows, name
        if killed[-1:] != [name]:  # it ran past the moment and finished: start afresh
            assert state == "new" and not staging(), name
            assert _id_table(connect(data_dir, views={"mackinac_print"}), "mackinac_print").equals(want), name
            shutil.rmtree(data_dir)
            shutil.copytree(busy_day, data_dir)
        left = set(folder.parent.glob(".compact-*")) | set(data_dir.glob(".compact-tmp-*"))
    # and the next compaction finishes the job from there
    rep = compact(data_dir, table="mackinac_print")
    assert rep.removed_staging == len([p for p in left if p.parent == folder.parent]) <= 1
    assert _visible_state(folder) == "new"
    assert _id_table(connect(data_dir, views={"mackinac_print"}), "mackinac_print").equals(want)
    assert not list(folder.parent.glob(".compact-*"))
    assert not list(data_dir.glob(".compact-*"))
    print(f"killed at: {killed}")
    assert len(killed) >= 2, f"the compaction ran past most moments before a kill: {killed}"


def test_readers_never_see_rows_missing_or_doubled(small_day: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(small_day, data_dir)
    total, _ = _counts(data_dir)
    [(after,)] = connect(data_dir, views={"mackinac_print_dedup"}).sql(
        "SELECT count(*) FROM mackinac_print_dedup").fetchall()
    seen: list[tuple[int, int]] = []
    errors: list[str] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            try:
                seen.append(_counts(data_dir))
            except duckdb.IOException as e:
                # a query that lists the old files and opens them after the swap fails
                # (never a wrong answer); a reader retries
                errors.append(str(e))

    t = threading.Thread(target=reader)
    t.start()
    try:
        while len(seen) < 3:
            time.sleep(0.01)
        rep = compact(data_dir, table="mackinac_print")
        n = len(seen)
        while len(seen) < n + 3:
            time.sleep(0.01)
    finally:
        done.set()
        t.join(60)
    assert rep.compacted
    # every answer is the whole old day or the whole new one (identities are unique in both)
    assert set(seen) <= {(total, total), (after, after)}, set(seen)
    assert seen[0] == (total, total) and seen[-1] == (after, after)


def test_a_builder_with_a_file_open_in_the_day_blocks_the_swap(
        small_day: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A late run's builder writing into the day: compaction never swaps the folder away
    under it (its open file would be lost) and never hides a file it committed meanwhile."""
    import recorder.compact

    data_dir = tmp_path / "data"
    shutil.copytree(small_day, data_dir)
    day = _day(data_dir)
    t0 = int(dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC).timestamp()) * 10**9
    table = CATALOGUE.tables["mackinac_print"]
    late = "20260302T120000Z-late-000001"

    def late_writer(first: int, n: int, tag: str) -> LakeWriter:
        w = LakeWriter(data_dir, "mackinac", late, rotate_seconds=3600, tag=tag)
        for i in range(first, first + n):
            w.add(table, {"exchange": "hl", "symbol": "ETH", "price": 1.0 + i, "size": 1.0,
                          "side": 1, "time": t0 // 10**6 + 43_200_000 + i},
                  t0 + 43_200 * 10**9 + i, "feed", i, 0, i)
            w.note(0, i)
        w.write(*w.take())
        return w

    # 1. the file is still open when compaction wants to swap: the day is skipped
    w = late_writer(0, 5, "a-")
    rep = compact(data_dir, table="mackinac_print")
    [p] = rep.partitions
    assert p.status == "skipped" and "a lake builder has a file open" in p.reason
    w.commit_all()
    # 2. a late file is committed while compaction works, after it listed the folder: here
    # at the last instant before the swap (no race to win: the instant is chosen, not hoped
    # for), the swap is refused
    folder = data_dir / "lake" / "mackinac_print" / f"date={day}"
    swap = recorder.compact._swap
    commits: list[int] = []

    def commit_then_swap(*args: object) -> None:
        assert list(folder.parent.glob(".compact-*")), "compaction is under way"
        late_writer(5, 3, "b-").commit_all()
        commits.append(1)
        swap(*args)

    monkeypatch.setattr(recorder.compact, "_swap", commit_then_swap)
    rep = compact(data_dir, table="mackinac_print")
    monkeypatch.undo()
    [p] = rep.partitions
    assert commits and p.status == "skipped", (commits, p)
    assert "the folder changed while it was being compacted" in p.reason, p.reason
    assert _visible_state(folder) == "old"
    # 3. the next compaction takes every committed file, the late ones too
    rep = compact(data_dir, table="mackinac_print")
    assert rep.compacted
    con = connect(data_dir, views={"mackinac_print"})
    assert con.sql(f"SELECT count(*) FROM mackinac_print WHERE run_id = '{late}'"
                   ).fetchall()[0][0] == 8


def test_the_lock_is_the_one_builders_take(tmp_path: Path) -> None:
    """Shared holders (live writers) coexist; the exclusive taker (compaction, rebuild) waits
    for none and fails fast while one holds it."""
    a = DateLock(tmp_path, "2026-03-02", exclusive=False)
    b = DateLock(tmp_path, "2026-03-02", exclusive=False)
    with pytest.raises(BlockingIOError):
        DateLock(tmp_path, "2026-03-02", exclusive=True, wait=False)
    a.release()
    b.release()
    DateLock(tmp_path, "2026-03-02", exclusive=True, wait=False).release()


def test_cli(small_day: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(small_day, data_dir)
    r = cli(["compact", "--data-dir", str(data_dir)])
    assert r.returncode == 0, r.stderr
    assert "compacted 2 table-day(s)" in r.stdout.splitlines()[-1]
    r = cli(["compact", "--data-dir", str(data_dir)])
    assert "compacted 0 table-day(s)" in r.stdout and "2 already compacted" in r.stdout
    r = cli(["compact", "--data-dir", str(data_dir), "--table", "nope"])
    assert r.returncode == 2 and "unknown table" in r.stderr


def test_every_registry_table_round_trips_through_compaction(tmp_path: Path) -> None:
    """The lake schema of every table comes back exactly (types, nested levels, time zones)
    from DuckDB's output: one row per table, every column null but the common ones."""
    from recorder.compact import compact_partition, engine

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    day = "2026-03-02"
    t0 = int(dt.datetime(2026, 3, 2, tzinfo=dt.UTC).timestamp()) * 10**9
    with engine(None, data_dir) as db:  # one database for the run, as `compact` has
        for t in CATALOGUE.tables.values():
            folder = data_dir / "lake" / t.name / f"date={day}"
            folder.mkdir(parents=True)
            cols = {"ts_recv": pa.array([t0], pa.int64()).cast(t.arrow_schema.field(0).type),
                    "venue": pa.array(["v"]), "run_id": pa.array(["r"]), "conn_id": pa.array(["c"]),
                    "recv_seq": pa.array([1], pa.int64()), "recv_sub": pa.array([0], pa.int32())}
            tbl = pa.Table.from_arrays([cols.get(f.name, pa.nulls(1, f.type))
                                        for f in t.arrow_schema], schema=t.arrow_schema)
            with pq.ParquetWriter(folder / "r-v-00001.parquet", t.arrow_schema) as w:
                w.write_table(tbl)
                w.add_key_value_metadata({b"recorder.lineage": orjson.dumps(
                    {"run_id": "r", "venue": "v", "table": t.name, "date": day, "rows": 1,
                     "journal": [[0, 0, 0]]})})
            res = compact_partition(data_dir, CATALOGUE.tables[t.name], day, db=db)
            assert res.status == "compacted", (t.name, res.reason)
            [f] = compacted_files(data_dir, t.name)
            assert pq.read_schema(f).remove_metadata().equals(
                t.arrow_schema.remove_metadata()), t.name


def test_compaction_leaves_the_day_alone_when_a_file_is_not_ours(small_day: Path,
                                                                 tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(small_day, data_dir)
    folder = data_dir / "lake" / "mackinac_print" / f"date={_day(data_dir)}"
    src = sorted(folder.glob("*.parquet"))[0]
    t = pq.read_table(src)
    pq.write_table(t, folder / "foreign.parquet")  # no lineage
    [p] = compact(data_dir, table="mackinac_print").partitions
    assert p.status == "skipped" and "no lineage" in p.reason
    assert os.path.exists(folder / "foreign.parquet")


def test_record_compacts_yesterday_when_asked(tmp_path: Path) -> None:
    """``compact_yesterday = true``: the run ends by compacting yesterday's closed day."""
    import dataclasses

    data_dir = tmp_path / "data"
    yesterday = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
    build_day(data_dir, 5_000, flush_ns=3_600_000_000_000, file_ns=3_600_000_000_000,
              first_day=yesterday)
    folder = data_dir / "lake" / "mackinac_print" / f"date={yesterday}"
    assert _visible_state(folder) == "old"

    async def main_() -> str:
        server = MackinacServer(seed=5, rate=4.0)
        await server.start()
        cfg = config(data_dir, server.url, SYMBOLS)
        cfg = dataclasses.replace(cfg, recorder=dataclasses.replace(
            cfg.recorder, compact_yesterday=True))
        start = _files(data_dir)

        async def scenario(stop: asyncio.Event) -> None:
            deadline = time.monotonic() + 60
            while _files(data_dir) < start + 2:
                assert time.monotonic() < deadline, "no lake files committed"
                await asyncio.sleep(0.1)

        try:
            result, out = await run_with(cfg, scenario)
        finally:
            await server.stop()
        assert result.exit_code == 0, result.reason
        return out

    out = asyncio.run(main_())
    assert "compact: 2 table(s) of yesterday compacted" in out, out
    assert _visible_state(folder) == "new"
    today = data_dir / "lake" / "mackinac_print" / f"date={dt.datetime.now(dt.UTC).date()}"
    assert _visible_state(today) == "old"  # today is never compacted
