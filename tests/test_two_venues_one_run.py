"""Venues of one run share tables (session_events, unhandled): their lake files must not
collide (each LakeWriter numbers its files from 1)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from recorder.lake import LakeWriter, lake_files
from recorder.schema import SESSION_EVENTS


def test_two_venues_write_the_same_table_in_one_run(data_dir: Path) -> None:
    writers = [LakeWriter(data_dir, v, "run-x") for v in ("mackinac", "totalis")]
    for n, w in enumerate(writers):
        for i in range(3 + n):
            w.add(SESSION_EVENTS, {"event": "connected", "url": w.venue}, 10**18 + i * 1000, "c", i)
        w.write(*w.take())
        w.commit_all()
    files = lake_files(data_dir, "session_events", "run-x")
    assert len(files) == 2
    rows = sorted(r["url"] for f in files for r in pq.read_table(f).to_pylist())
    assert rows == ["mackinac"] * 3 + ["totalis"] * 4
