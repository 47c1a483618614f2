from __future__ import annotations

import os
from pathlib import Path

from recorder import journal as jr


def _write(data_dir: Path, n: int, flush_every: int = 10) -> jr.JournalWriter:
    w = jr.JournalWriter(data_dir, "v", "run1")
    for i in range(n):
        w.append(jr.KIND_IN, "c1" if i % 2 else "c2", 1_700_000_000_000_000_000 + i,
                 f'{{"i":{i}}}'.encode())
        if (i + 1) % flush_every == 0:
            w.write_batch(*w.take_batch(1_700_000_000_000_000_000 + i))
    return w


def test_round_trip_order_seq_and_positions(data_dir: Path) -> None:
    w = _write(data_dir, 95)
    w.close()
    recs = list(jr.read_run(data_dir, "v", "run1"))
    assert [r.data for r in recs] == [f'{{"i":{i}}}'.encode() for i in range(95)]
    assert [r.index for r in recs] == list(range(95))
    c1 = [r.seq for r in recs if r.conn == "c1"]
    assert c1 == list(range(1, 48))
    assert recs[7].ts_recv == 1_700_000_000_000_000_007
    [seg] = jr.segments(data_dir, "v")
    assert seg.name == "run1-000000.jnl.zst"
    assert seg.parent.name == "date=2023-11-14"


def test_torn_tail_is_detected_and_everything_before_is_read(data_dir: Path) -> None:
    w = _write(data_dir, 50)  # 5 complete zstd frames of 10 records
    w.close()
    [seg] = jr.segments(data_dir, "v")
    size = seg.stat().st_size
    with open(seg, "r+b") as f:  # a kill -9 in the middle of the last write
        f.truncate(size - 7)
    rep = jr.SegmentReport(seg)
    recs = list(jr.read_segment(seg, rep))
    assert len(recs) == 40
    assert recs[-1].data == b'{"i":39}'
    assert rep.torn_bytes > 0 and "torn" in (rep.error or "")


def test_garbage_tail_does_not_hide_earlier_records(data_dir: Path) -> None:
    w = _write(data_dir, 20)
    w.close()
    [seg] = jr.segments(data_dir, "v")
    with open(seg, "ab") as f:
        f.write(os.urandom(100))
    rep = jr.SegmentReport(seg)
    assert len(list(jr.read_segment(seg, rep))) == 20
    assert rep.torn_bytes == 100


def test_rotation_by_size_makes_new_segments_in_order(data_dir: Path) -> None:
    w = jr.JournalWriter(data_dir, "v", "run2", segment_bytes=2_000)
    payload = os.urandom(1500).hex().encode()  # incompressible
    for i in range(6):
        w.append(jr.KIND_IN, "c", 1_700_000_000_000_000_000 + i, payload + str(i).encode())
        w.write_batch(*w.take_batch(1_700_000_000_000_000_000 + i))
    w.close()
    segs = jr.segments(data_dir, "v", "run2")
    assert len(segs) >= 3
    recs = list(jr.read_run(data_dir, "v", "run2"))
    assert [r.data[-1:] for r in recs] == [str(i).encode() for i in range(6)]
    # a segment rotates once its compressed size would pass the limit: two records each here
    assert [(r.segment, r.index) for r in recs] == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
