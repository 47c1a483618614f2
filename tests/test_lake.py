from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from recorder.lake import Coverage, LakeWriter, lake_files, merge_ranges, read_lineage
from recorder.schema import SESSION_EVENTS, UNHANDLED
from recorder.venues.mackinac import tables as T

T0 = 1_748_275_200_000_000_000  # 2025-05-26T16:00:00Z


def _print(i: int) -> dict:
    return {"exchange": "hl", "symbol": "ETH", "price": 3500.0 + i, "size": 0.5, "side": 1,
            "time": 1748275200000 + i, "_source": "live"}


def test_files_appear_atomically_with_lineage(data_dir: Path) -> None:
    w = LakeWriter(data_dir, "mackinac", "runA", rotate_seconds=3600)
    for i in range(10):
        w.note(0, i)
        w.add(T.PRINT, _print(i), T0 + i, "feed", i + 1)
    w.write(*w.take())
    # written but not committed: only a hidden temporary file, invisible to *.parquet globs
    assert lake_files(data_dir) == []
    hidden = list((data_dir / "lake").rglob(".*.tmp"))
    assert len(hidden) == 1
    for i in range(10, 15):
        w.note(0, i)
        w.add(T.PRINT, _print(i), T0 + i, "feed", i + 1)
    w.write(*w.take())
    w.commit_all()
    [f] = lake_files(data_dir)
    assert f.parent.name == "date=2025-05-26" and f.parent.parent.name == "mackinac_print"
    assert list((data_dir / "lake").rglob("*.tmp")) == []
    t = pq.read_table(f)
    assert t.num_rows == 15
    meta = pq.ParquetFile(f).metadata
    assert meta.num_row_groups == 2  # one row group per flush
    # plain-encoded zstd pages, no dictionary page per column chunk (small row groups write
    # faster and smaller without them; see LakeWriter._append)
    chunks = [meta.row_group(g).column(c) for g in range(2) for c in range(meta.num_columns)]
    assert all(c.compression == "ZSTD" and not c.has_dictionary_page for c in chunks)
    assert t["price"].to_pylist()[14] == 3514.0
    assert t["recv_seq"].to_pylist() == list(range(1, 16))
    assert t["ts_event"].cast("int64").to_pylist()[3] == (1748275200000 + 3) * 1_000_000
    lin = read_lineage(f)
    assert lin["journal"] == [[0, 0, 14]] and lin["rows"] == 15 and lin["table"] == "mackinac_print"
    assert w.rows_committed == {"mackinac_print": 15}


def test_bad_values_are_quarantined_not_lost(data_dir: Path) -> None:
    w = LakeWriter(data_dir, "mackinac", "runB")
    rows = [_print(0), {**_print(1), "price": "abc"}, _print(2)]
    for i, r in enumerate(rows):
        w.note(0, i)
        w.add(T.PRINT, r, T0 + i, "feed", i + 1)
    w.write(*w.take())
    w.commit_all()
    good = pq.read_table(lake_files(data_dir, "mackinac_print")[0])
    assert good["price"].to_pylist() == [3500.0, 3502.0]
    bad = pq.read_table(lake_files(data_dir, UNHANDLED.name)[0]).drop(["ts_recv", "ts_event"])
    bad = bad.to_pylist()
    assert len(bad) == 1
    assert bad[0]["reason"] == "bad_value" and bad[0]["target_table"] == "mackinac_print"
    assert '"price":"abc"' in bad[0]["raw"] and bad[0]["recv_seq"] == 2


def test_rotation_by_rows(data_dir: Path) -> None:
    w = LakeWriter(data_dir, "mackinac", "runC", max_rows=10)
    for batch in range(3):
        for i in range(batch * 6, batch * 6 + 6):
            w.note(0, i)
            w.add(T.PRINT, _print(i), T0 + i, "feed", i + 1)
        w.write(*w.take())
    w.commit_all()
    files = lake_files(data_dir, "mackinac_print")
    assert [pq.read_metadata(f).num_rows for f in files] == [12, 6]
    assert [read_lineage(f)["journal"] for f in files] == [[[0, 0, 11]], [[0, 12, 17]]]


def test_rows_split_by_date_of_receipt(data_dir: Path) -> None:
    w = LakeWriter(data_dir, "mackinac", "runD")
    midnight = 1_748_304_000_000_000_000  # 2025-05-27T00:00:00Z
    w.note(0, 0)
    w.add(T.PRINT, _print(0), midnight - 1, "feed", 1)
    w.note(0, 1)
    w.add(T.PRINT, _print(1), midnight, "feed", 2)
    w.write(*w.take())
    w.commit_all()
    assert [f.parent.name for f in lake_files(data_dir)] == ["date=2025-05-26", "date=2025-05-27"]


def test_coverage_ranges() -> None:
    assert merge_ranges([[0, 5, 9], [0, 0, 4], [1, 0, 3], [0, 12, 14]]) == [
        [0, 0, 9], [0, 12, 14], [1, 0, 3]]
    c = Coverage([[0, 0, 9], [0, 12, 14], [1, 0, 3]])
    assert (0, 9) in c and (0, 12) in c and (1, 3) in c
    assert (0, 10) not in c and (1, 4) not in c and (2, 0) not in c


def test_two_venues_of_one_run_never_share_a_file_name(data_dir: Path) -> None:
    """session_events and unhandled are written by every venue's writer of a run; each
    numbers its files from 1, so the venue must be part of the name (or the second writer
    would open the first one's temporary file)."""
    from recorder.schema import SESSION_EVENTS

    writers = [LakeWriter(data_dir, v, "runA") for v in ("mackinac", "derive")]
    for w in writers:
        w.note(0, 0)
        w.add(SESSION_EVENTS, {"event": "connected", "reason": w.venue}, T0, "c", 1)
        w.write(*w.take())
    for w in writers:
        w.commit_all()
    files = lake_files(data_dir, "session_events", "runA")
    assert sorted(f.name for f in files) == ["runA-derive-00001.parquet",
                                             "runA-mackinac-00001.parquet"]
    assert sorted(pq.read_table(f)["reason"][0].as_py() for f in files) == ["derive",
                                                                             "mackinac"]


def test_raw_frames_larger_than_a_reader_block_convert_exactly() -> None:
    """Mackinac full books exceed 1 MB; the raw fast path must still parse them whole."""
    import orjson

    from recorder.lake import _Buffer, to_arrow

    levels = [{"price": 3500.0 - i * 0.01, "size": 1.0 + i} for i in range(40_000)]
    big = orjson.dumps({"type": "quote", "exchange": "hl", "symbol": "ETH", "bids": levels,
                        "asks": [], "time": 1748275200000})
    small = orjson.dumps({"type": "quote", "exchange": "hl", "symbol": "BTC", "bids": [],
                          "asks": [{"price": 1.0, "size": 2.0}], "time": 1748275200001})
    assert len(big) > 1 << 20
    buf = _Buffer([small, big, small], [T0, T0 + 1, T0 + 2], ["feed"] * 3, [1, 2, 3])
    out, bad = to_arrow(T.QUOTE, buf, "mackinac", "runE")
    assert bad == [] and out is not None
    assert out["symbol"].to_pylist() == ["BTC", "ETH", "BTC"]
    bids = out["bids"][1].as_py()
    assert len(bids) == 40_000 and bids[39_999] == {"price": 3500.0 - 39_999 * 0.01,
                                                   "size": 40_000.0, "fee": None,
                                                   "lastSwapMs": None}


def test_venues_of_one_run_write_a_shared_table_side_by_side(data_dir: Path) -> None:
    """Venues of one run share tables (session_events, unhandled): each LakeWriter numbers its
    files from 1, so the venue is in the file name and they never collide."""
    writers = [LakeWriter(data_dir, v, "run-x") for v in ("mackinac", "totalis")]
    for n, w in enumerate(writers):
        for i in range(3 + n):
            w.add(SESSION_EVENTS, {"event": "connected", "url": w.venue}, 10**18 + i * 1000, "c", i)
        w.write(*w.take())
        w.commit_all()
    files = lake_files(data_dir, "session_events", "run-x")
    assert [f.name for f in files] == ["run-x-mackinac-00001.parquet",
                                       "run-x-totalis-00001.parquet"]
    rows = sorted(r["url"] for f in files for r in pq.read_table(f).to_pylist())
    assert rows == ["mackinac"] * 3 + ["totalis"] * 4
