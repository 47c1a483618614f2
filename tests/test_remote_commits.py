"""Which compaction commits count (pure functions; the bucket tests are in test_remote.py)."""

from __future__ import annotations

from recorder.remote import Remote, compaction_id, winners


def test_compaction_ids_come_from_the_names() -> None:
    assert compaction_id("compacted-20261128T221500Z-a1b2c3-0001.parquet") == \
        "20261128T221500Z-a1b2c3"
    assert compaction_id("rebuilt-20261128T221500Z-a1b2c3-20261128T1-vm-x-mackinac-00001"
                         ".parquet") == "20261128T221500Z-a1b2c3"
    assert compaction_id("20261128T221240Z-vm-7daf5f-mackinac-00001.parquet") is None


def test_of_two_compactions_of_the_same_files_the_first_committed_wins() -> None:
    a = {"compaction": "a", "inputs": ["f1", "f2"], "committed_ns": 2}
    b = {"compaction": "b", "inputs": ["f1", "f2"], "committed_ns": 1}  # committed first
    later = {"compaction": "c", "inputs": ["b-out", "f3"], "committed_ns": 3}  # takes b's
    assert set(winners({"a": a, "b": b, "c": later})) == {"b", "c"}
    # a loser's inputs are not replaced by it: a file only it took stays visible
    loser = {"compaction": "d", "inputs": ["f1", "f4"], "committed_ns": 5}
    assert set(winners({"b": b, "d": loser})) == {"b"}


def test_remote_urls() -> None:
    r = Remote.parse("s3://tick-lake/prod/eu/")
    assert (r.bucket, r.prefix, r.url) == ("tick-lake", "prod/eu", "s3://tick-lake/prod/eu")
    assert r.path("lake/t/date=2026-01-01/f.parquet") == "tick-lake/prod/eu/lake/t/date=2026-01-01/f.parquet"
    assert r.rel("s3://tick-lake/prod/eu/runs/x.json") == "runs/x.json"
    assert Remote.parse("s3://lake").path("runs") == "lake/runs"
