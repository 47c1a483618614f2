"""Replay over hand-built lakes: the streaming merge gives exactly DuckDB's ORDER BY, reads
only the row groups it needs, and orders ties between venues the same way every time.

The lakes are written here with pyarrow, the way the lake writer lays them out: one file per
writer (run, venue), table and day, rows in arrival order, several row groups per file. The
files of different writers overlap in time. Memory itself is measured in
``bench/replay_rss.py``, never asserted here.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recorder import replay
from recorder.venues import CATALOGUE

T0 = 1_772_409_598_000_000_000  # 2026-03-01T23:59:58Z: the lake crosses midnight
MS = 1_000_000
DAY1, DAY2 = "2026-03-01", "2026-03-02"
MIDNIGHT = 1_772_409_600_000_000_000


def _day(ts: int) -> str:
    return DAY1 if ts < MIDNIGHT else DAY2


def write_lake(lake: Path, table: str, name: str, rows: list[dict[str, Any]],
               row_group: int = 40, file_rows: int = 120) -> None:
    """One writer's rows of one table, in the order given: a file per day and per
    ``file_rows``, a row group per ``row_group`` rows (as the lake writer's flushes)."""
    schema = CATALOGUE.tables[table].arrow_schema
    n = 0
    i = 0
    while i < len(rows):
        day = _day(rows[i]["ts_recv"])
        chunk = []
        while i < len(rows) and len(chunk) < file_rows and _day(rows[i]["ts_recv"]) == day:
            chunk.append(rows[i])
            i += 1
        n += 1
        folder = lake / table / f"date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        t = pa.Table.from_pylist(chunk, schema=schema)
        pq.write_table(t, folder / f"{name}-{n:05d}.parquet", row_group_size=row_group)


def _writer_rows(rnd: random.Random, run: str, venue: str, conns: list[str], offset: int,
                 n: int, disorder: bool) -> tuple[list[dict], list[dict]]:
    """Prints and session events of one writer, in arrival order. Every third tick falls on
    a grid shared by all writers (ties across venues on the same conn_id and recv_seq);
    ``disorder`` adds what makes a file not sorted by the key: two connections receiving at
    the same instant in the opposite order of the key, and a clock step back."""
    prints: list[dict] = []
    sessions: list[dict] = []
    seq = dict.fromkeys(conns, 0)
    for k in range(n):
        ts = T0 + k * 10 * MS + (0 if k % 3 == 0 else offset + rnd.randrange(1000))
        if disorder and 100 <= k < 105:
            ts -= 25 * MS  # the wall clock stepped back
        conn = conns[k % len(conns)]
        if disorder and k % 7 == 0 and len(conns) > 1:
            conn = conns[-1]  # "ws2" first, then "ws" at the same instant below
        seq[conn] += 1
        common = {"ts_recv": ts, "venue": venue, "run_id": run, "conn_id": conn,
                  "recv_seq": seq[conn], "recv_sub": 0}
        if k % 10 == 9:
            sessions.append({**common, "ts_event": None, "event": "feed_live"})
            continue
        history = k % 25 == 0  # an old print from a history reply: event time 2 s back
        time_ms = ts // MS - (2000 if history else rnd.randrange(30))
        if k % 11 == 0:
            time_ms = None  # no venue time: event order falls back to ts_recv
        subs = 3 if history else 1  # a history frame gives several rows
        for sub in range(subs):
            prints.append({**common, "recv_sub": sub,
                           "ts_event": None if time_ms is None else time_ms * MS,
                           "time_ms": time_ms, "exchange": "hl", "symbol": "ETH",
                           "price": round(2000 + rnd.random(), 4), "size": 1.0,
                           "block_number": rnd.randrange(5) if history else None,
                           "tx_index": rnd.randrange(3) if history else None})
        if disorder and k % 7 == 0 and len(conns) > 1:
            seq[conns[0]] += 1
            prints.append({**prints[-1], "conn_id": conns[0], "recv_seq": seq[conns[0]],
                           "recv_sub": 0})
    return prints, sessions


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("mem") / "data"
    rnd = random.Random(3)
    writers = [("r1", "mk_b", ["ws"], 1000, False), ("r1", "mk_a", ["ws", "ws2"], 2000, True),
               ("r2", "mk_a", ["ws"], 3000, False), ("r2", "mk_c", ["ws"], 4000, True)]
    for run, venue, conns, offset, disorder in writers:
        prints, sessions = _writer_rows(rnd, run, venue, conns, offset, 400, disorder)
        write_lake(data_dir / "lake", "mackinac_print", f"{run}-{venue}", prints)
        write_lake(data_dir / "lake", "session_events", f"{run}-{venue}", sessions,
                   row_group=8, file_rows=30)
    return data_dir


_RECV = "ts_recv, venue, conn_id, recv_seq, recv_sub, run_id"


def expected(data_dir: Path, order: str = "recv", where: str = "true") -> list[tuple]:
    """The selection as DuckDB orders it, one table at a time read by union_by_name."""
    lake = data_dir / "lake"
    cols = ("'{t}' AS t, epoch_ns(ts_recv) AS ts_recv, epoch_ns(ts_event) AS ts_event, "
            "venue, conn_id, recv_seq, recv_sub, run_id, {extra}")
    sql = " UNION ALL ".join(
        f"SELECT {cols.format(t=t, extra=extra)} FROM read_parquet("
        f"'{lake}/{t}/date=*/*.parquet') WHERE {where}"
        for t, extra in (("mackinac_print", "block_number, tx_index, price"),
                         ("session_events", "NULL AS block_number, NULL AS tx_index, "
                                            "NULL AS price")))
    if order == "recv":
        keys = _RECV
    else:
        # records() compares on-chain ties as a tuple: a table without them (session_events)
        # comes first among rows of one event time.
        keys = ("coalesce(ts_event, ts_recv), t <> 'session_events', "
                "coalesce(block_number, -1), coalesce(tx_index, -1), " + _RECV)
    return [tuple(r) for r in duckdb.sql(f"SELECT * FROM ({sql}) ORDER BY {keys}").fetchall()]


def got(recs: list[replay.Record]) -> list[tuple]:
    return [(r.table, r.ts_recv, r.ts_event, r.venue, r.conn_id, r.recv_seq, r.recv_sub,
             r.run_id, r.data.get("block_number"), r.data.get("tx_index"), r.data.get("price"))
            for r in recs]


def test_the_lake_is_what_the_merge_must_handle(lake: Path) -> None:
    """Guards the fixture: files overlap in time, some are not sorted by the key, two days."""
    files = sorted((lake / "lake" / "mackinac_print").glob("date=*/*.parquet"))
    assert {f.parent.name for f in files} == {f"date={DAY1}", f"date={DAY2}"}
    unsorted = 0
    for f in files:
        t = pq.read_table(f)
        keys = list(zip(*(t[c].cast(pa.int64()).to_pylist() if c == "ts_recv" else
                          t[c].to_pylist() for c in _RECV.split(", ")), strict=True))
        unsorted += keys != sorted(keys)
        assert pq.ParquetFile(f).metadata.num_row_groups >= 2 or len(keys) <= 40
    assert unsorted >= 2


@pytest.mark.parametrize("order", ["recv", "event"])
def test_records_are_exactly_duckdbs_order_by(lake: Path, order: str) -> None:
    want = expected(lake, order)
    assert len(want) > 1000
    assert got(list(replay.records(lake, order=order, batch_rows=16))) == want
    assert got(list(replay.records(lake, order=order))) == want


@pytest.mark.parametrize("order", ["recv", "event"])
def test_ranges_and_venues_are_duckdbs_too(lake: Path, order: str) -> None:
    start, end = T0 + 1_234 * MS + 17, MIDNIGHT + 1_111 * MS  # inside row groups, over midnight
    where = f"epoch_ns(ts_recv) >= {start} AND epoch_ns(ts_recv) < {end}"
    want = expected(lake, order, where)
    assert 100 < len(want) < len(expected(lake, order))
    assert got(list(replay.records(lake, start, end, order=order, batch_rows=8))) == want
    assert got(list(replay.records(lake, start=MIDNIGHT, order=order))) == expected(
        lake, order, f"epoch_ns(ts_recv) >= {MIDNIGHT}")
    both = ["mackinac_print", "session_events"]  # (without tables, venues pick tables too)
    assert got(list(replay.records(lake, venues=["mk_a", "mk_c"], end=end, tables=both,
                                   order=order))) == expected(
        lake, order, f"venue IN ('mk_a', 'mk_c') AND epoch_ns(ts_recv) < {end}")


class Reads:
    """Which footers and row groups of the lake replay touches (pyarrow patched)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.footers: list[Path] = []
        self.groups: set[tuple[str, int]] = set()
        read_metadata, iter_batches = pq.read_metadata, pq.ParquetFile.iter_batches
        read_row_group = pq.ParquetFile.read_row_group

        def meta(path: Any, *a: Any, **k: Any) -> pq.FileMetaData:
            self.footers.append(Path(path))
            return read_metadata(path, *a, **k)

        def batches(pf: pq.ParquetFile, *a: Any, row_groups: list[int] | None = None,
                    **k: Any) -> Any:
            groups = range(pf.num_row_groups) if row_groups is None else row_groups
            self.groups |= {(pf._path, i) for i in groups}
            return iter_batches(pf, *a, row_groups=row_groups, **k)

        def group(pf: pq.ParquetFile, i: int, *a: Any, **k: Any) -> pa.Table:
            self.groups.add((pf._path, i))
            return read_row_group(pf, i, *a, **k)

        monkeypatch.setattr(pq, "read_metadata", meta)
        monkeypatch.setattr(pq.ParquetFile, "iter_batches", batches)
        monkeypatch.setattr(pq.ParquetFile, "read_row_group", group)
        real_init = pq.ParquetFile.__init__

        def init(pf: pq.ParquetFile, source: Any, *a: Any, **k: Any) -> None:
            real_init(pf, source, *a, **k)
            pf._path = str(source)

        monkeypatch.setattr(pq.ParquetFile, "__init__", init)


def _span(path: str, i: int) -> tuple[int, int]:
    s = pq.read_metadata(path).row_group(i).column(0).statistics  # ts_recv is column 0
    return s.min_raw, s.max_raw


def test_row_groups_outside_the_range_are_never_read(lake: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    start, end = T0 + 800 * MS, T0 + 1_300 * MS
    reads = Reads(monkeypatch)
    recs = list(replay.records(lake, start, end))
    monkeypatch.undo()  # what follows reads footers itself
    assert recs and all(start <= r.ts_recv < end for r in recs)
    assert reads.groups and all(
        lo < end and hi >= start for lo, hi in (_span(p, i) for p, i in reads.groups))
    total = sum(pq.read_metadata(f).num_row_groups for f in (lake / "lake").rglob("*.parquet"))
    assert len(reads.groups) < total / 3
    # The next day's folder is not even listed for footers: its rows are all after `end`.
    assert reads.footers and all(p.parent.name == f"date={DAY1}" for p in reads.footers)


def test_row_groups_are_opened_as_the_merge_reaches_them(
        lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The merge is lazy: after the first records, only row groups that can hold rows up to
    the last of them have been read, and the second day's files are not open yet."""
    reads = Reads(monkeypatch)
    it = replay.records(lake)
    first = [next(it) for _ in range(50)]
    groups, footers = set(reads.groups), list(reads.footers)
    reach = first[-1].ts_recv
    assert groups and all(_span(p, i)[0] <= reach for p, i in groups)
    assert footers and all(p.parent.name == f"date={DAY1}" for p in footers)
    rest = list(it)
    assert len(first) + len(rest) == len(expected(lake))
    assert any(p.parent.name == f"date={DAY2}" for p in reads.footers)


def test_a_file_in_a_later_days_folder_than_its_rows_is_an_error(tmp_path: Path) -> None:
    """The merge opens a day's folder when it reaches that day; rows received earlier than
    that would come out of order, so replay says so instead."""
    lake = tmp_path / "data" / "lake"
    rows = [{"ts_recv": MIDNIGHT - (100 - k) * MS, "venue": "v", "run_id": "r",
             "conn_id": "ws", "recv_seq": k, "recv_sub": 0, "event": "feed_live"}
            for k in range(100)]
    write_lake(lake, "session_events", "r-v", rows[1::2])
    misplaced = lake / "session_events" / f"date={DAY2}"
    misplaced.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows[::2], schema=CATALOGUE.tables[
        "session_events"].arrow_schema), misplaced / "r-w-00001.parquet")
    with pytest.raises(replay.ReplayOrderError, match="before its folder's day"):
        list(replay.records(tmp_path / "data"))


def _venue_tie_lake(data_dir: Path, venues_in_write_order: list[str]) -> None:
    """Two venues of one run, both with a connection named "ws": rows with the same ts_recv,
    conn_id, recv_seq and recv_sub, one file per venue, written in the given order (a name
    that sorts first for the first one written)."""
    for n, venue in enumerate(venues_in_write_order):
        rows = [{"ts_recv": T0 + k * MS, "venue": venue, "run_id": "r1", "conn_id": "ws",
                 "recv_seq": k, "recv_sub": 0, "event": f"e{k}"} for k in range(5)]
        write_lake(data_dir / "lake", "session_events", f"{n}-r1-{venue}", rows)


def test_ties_between_venues_are_in_venue_order_whatever_the_files(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "data", tmp_path / "b" / "data"
    _venue_tie_lake(a, ["zeta", "alpha"])
    _venue_tie_lake(b, ["alpha", "zeta"])
    want = [(k, v) for k in range(5) for v in ("alpha", "zeta")]
    for data_dir in (a, b, a, b):  # every call, both write orders
        for order in ("recv", "event"):
            recs = list(replay.records(data_dir, order=order))
            assert [(r.recv_seq, r.venue) for r in recs] == want
            assert [r.data["event"] for r in recs] == [f"e{k}" for k, _ in want]
    for data_dir in (a, b):  # the DuckDB path of batches() orders them the same way
        bs = list(replay.batches(data_dir, "session_events"))
        assert [(s, v) for b_ in bs for s, v in zip(
            b_.column("recv_seq").to_pylist(), b_.column("venue").to_pylist(),
            strict=True)] == want
