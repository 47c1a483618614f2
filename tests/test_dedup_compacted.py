"""The _dedup views take compacted files as deduplicated (compaction did it) and rank only the
keys that files written since (a late run, a rebuild) bring: the answer is still the first
receipt of every key, before compaction, after it, and with late copies on a compacted day."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench.ohlcv import DAY, build_day
from recorder.compact import compact_partition
from recorder.duck import connect
from recorder.schema import IDENTITY, RECEIPT_ORDER, dedup_partition
from recorder.venues import CATALOGUE

T = CATALOGUE.tables["mackinac_print"]
ID = ", ".join(IDENTITY)


def _reference(con) -> set[tuple]:  # type: ignore[no-untyped-def]
    """The first receipt of each key, ranking every row (the definition; on the exact
    nanoseconds: the view's ts_recv is truncated to µs)."""
    key = ", ".join(dedup_partition(T))
    order = ", ".join("ts_recv_ns" if c == "ts_recv" else c for c in RECEIPT_ORDER)
    sql = (f"SELECT {ID} FROM mackinac_print QUALIFY row_number() OVER (PARTITION BY {key} "
           f"ORDER BY {order}) = 1")
    return set(con.execute(sql).fetchall())


def _dedup(con) -> set[tuple]:  # type: ignore[no-untyped-def]
    rows = con.execute(f"SELECT {ID} FROM mackinac_print_dedup").fetchall()
    assert len(rows) == len(set(rows))
    return set(rows)


def test_dedup_before_and_after_compaction_and_with_late_copies(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # an hour per file (one file per run and hour, the A/B pair two): the day's default
    # 5-minute files (312 of them) cost half a minute to write and add nothing here
    made = build_day(data_dir, 30_000, flush_ns=600 * 10**9, file_ns=3600 * 10**9)
    assert made["duplicates"] > 0
    con = connect(data_dir, views={"mackinac_print"})
    want = _reference(con)
    assert _dedup(con) == want and len(want) < made["rows"]

    folder = data_dir / "lake" / T.name / f"date={DAY}"
    compact_partition(data_dir, T, DAY)
    files = sorted(folder.glob("*.parquet"))
    assert files and all(f.name.startswith("compacted-") for f in files)
    con = connect(data_dir, views={"mackinac_print"})
    assert _dedup(con) == want == set(con.execute(f"SELECT {ID} FROM mackinac_print"
                                                  ).fetchall())

    # A late run's file on the compacted day: copies of compacted prints received earlier
    # than the compacted copy (they become the first receipt) and later (they do not), and a
    # new print received twice.
    old = pq.read_table(files[0])
    n = old.num_rows
    early, late, new = old.slice(0, 5), old.slice(10, 5), old.slice(20, 1)
    ts = old.schema.field("ts_recv").type
    early = early.set_column(0, "ts_recv", pc.cast(pc.subtract(
        pc.cast(early["ts_recv"], pa.int64()), 1), ts))
    late = late.set_column(0, "ts_recv", pc.cast(pc.add(
        pc.cast(late["ts_recv"], pa.int64()), 1), ts))
    new = new.set_column(new.schema.get_field_index("tx_index"), "tx_index",
                         pa.array([10**9], pa.int64()))
    new = pa.concat_tables([new, new])
    add = pa.concat_tables([early, late, new])
    add = add.set_column(add.schema.get_field_index("run_id"), "run_id",
                         pa.repeat("late-run", add.num_rows))
    add = add.set_column(add.schema.get_field_index("recv_seq"), "recv_seq",
                         pa.array(range(add.num_rows), pa.int64()))
    pq.write_table(add, folder / "late-run-mackinac-00001.parquet")
    con = connect(data_dir, views={"mackinac_print"})
    got, want = _dedup(con), _reference(con)
    assert got == want
    late_ids = {r for r in got if r[1] == "late-run"}
    assert len(late_ids) == 5 + 1  # the five earlier copies and one of the new print
    assert con.execute("SELECT count(*) FROM mackinac_print_dedup").fetchall() == \
        [(len(want),)] and n > 20
