"""Tables whose rows once were keyed by their receipt now use the venue's own time or event
id where the payload has one, so the _dedup views absorb two overlapping recorders (A/B, a
cron handover); a row without that value still stays per receipt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from recorder.duck import connect
from recorder.lake import LakeWriter
from recorder.schema import Table
from recorder.venues import CATALOGUE

T0 = 1_790_000_000_000_000_000
MS = T0 // 1_000_000

# table, conn_id, the row (lake column names), venue
CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("diffusal_rfq_heartbeat", "rfq-stream", {"timestamp_ms": MS, "event_ms": MS}, "diffusal"),
    ("diffusal_rfq_connected", "rfq-stream", {"timestamp_ms": MS, "event_ms": MS}, "diffusal"),
    ("diffusal_rfq_snapshot", "rfq-stream", {"auction_count": 2, "timestamp_ms": MS,
                                             "event_ms": MS}, "diffusal"),
    ("diffusal_private_snapshot", "private", {"stream": "position", "item_count": 2,
                                              "timestamp": MS, "event_ns": T0}, "diffusal"),
    ("totalis_snapshot_begin", "mm", {"page_size": 500, "sse_id": "1790000000000-1"},
     "totalis"),
    ("totalis_snapshot_complete", "mm", {"pages": 1, "total": 3, "sse_id": "1790000000000-2"},
     "totalis"),
    ("totalis_connected", "mm", {"mm_id": "did:privy:x", "sse_id": "1790000000000-0"},
     "totalis"),
    ("mackinac_ammliquidity_snapshot", "feed", {"symbol": "WETH/USDC", "event_count": 12,
                                                "first_time_ms": MS - 5000,
                                                "last_time_ms": MS}, "mackinac"),
]


def _wire(t: Table, row: dict[str, Any]) -> dict[str, Any]:
    keys = {c.name: c.key for c in t.columns}
    return {keys[k]: v for k, v in row.items()}


def _write(data_dir: Path, venue: str, run: str, t: Table, rows: list[tuple[dict, str, int]],
           ts: int) -> None:
    w = LakeWriter(data_dir, venue, run)
    for i, (row, conn, seq) in enumerate(rows):
        w.add(t, _wire(t, row), ts + i, conn, seq)
    w.write(*w.take())
    w.commit_all()


@pytest.mark.parametrize(("name", "conn", "row", "venue"), CASES, ids=[c[0] for c in CASES])
def test_two_recorders_copies_are_one_row_in_dedup(data_dir: Path, name: str, conn: str,
                                                   row: dict[str, Any], venue: str) -> None:
    t = CATALOGUE.tables[name]
    assert "recv_seq" not in t.dedup_key
    # run A and run B received the same message at slightly different times and positions
    _write(data_dir, venue, "run-a", t, [(row, conn, 7)], T0 + 1000)
    _write(data_dir, venue, "run-b", t, [(row, conn, 3)], T0 + 5000)
    con = connect(data_dir, views={name})
    assert con.execute(f"SELECT count(*) FROM {name}").fetchall() == [(2,)]
    # the first receipt stays
    assert con.execute(f"SELECT run_id FROM {name}_dedup").fetchall() == [("run-a",)]


@pytest.mark.parametrize(("name", "conn", "row", "venue"), CASES, ids=[c[0] for c in CASES])
def test_rows_without_the_venue_value_stay_per_receipt(data_dir: Path, name: str, conn: str,
                                                       row: dict[str, Any], venue: str) -> None:
    t = CATALOGUE.tables[name]
    blank = {k: (None if k in ("timestamp_ms", "event_ms", "event_ns", "timestamp", "sse_id",
                               "first_time_ms", "last_time_ms") else v)
             for k, v in row.items()}
    _write(data_dir, venue, "run-a", t, [(blank, conn, 1), (blank, conn, 2)], T0)
    _write(data_dir, venue, "run-b", t, [(blank, conn, 1)], T0 + 5000)
    con = connect(data_dir, views={name})
    assert con.execute(f"SELECT count(*) FROM {name}_dedup").fetchall() == [(3,)]


def test_tables_without_a_natural_key_say_so() -> None:
    for name in ("mackinac_feed_stale", "mackinac_feed_live", "mackinac_server_closing",
                 "derive_balances", "derive_best_quotes"):
        t = CATALOGUE.tables[name]
        assert "recv_seq" in t.dedup_key or "ts_recv" in t.dedup_key, name
        assert "receipt" in t.doc or "receive time" in t.doc, name
