"""Time in SQL, the gaps view and the coverage report, on a real recording with a stale feed,
a planned server restart and a dropped connection (Mackinac simulator)."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import duckdb
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from recorder import duck
from recorder.duck import connect
from recorder.lake import lake_files
from recorder.report import gather
from recorder.venues import CATALOGUE
from recorder.venues.mackinac.server import MackinacServer
from tests.conftest import cli
from tests.e2e import run_with
from tests.venues.mackinac.e2e import config


@pytest.fixture(scope="module")
def gappy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    data_dir = tmp_path_factory.mktemp("gappy") / "data"

    async def main_() -> str:
        server = MackinacServer(seed=3, rate=4.0)
        await server.start()
        cfg = config(data_dir, server.url, ["hl:ETH", "uni:WETH/USDC", "rates:all"])

        async def scenario(stop: asyncio.Event) -> None:
            # fixed times on purpose: the report needs hours with rows, gaps between them, and
            # several files per table (rotation is by time)
            await asyncio.sleep(1.5)
            server.stale("hl", True)
            await asyncio.sleep(0.4)
            server.stale("hl", False)
            await asyncio.sleep(0.5)
            server.server_closing(300)
            await asyncio.sleep(1.5)
            server.drop()
            await asyncio.sleep(1.5)
            # compaction must have files to merge: the builder (at a low priority, lagging on
            # a loaded machine) has rotated a table at least once
            await server.until(lambda: any(n >= 2 for n in Counter(
                f.parent.parent.name for f in lake_files(data_dir)).values()), 60,
                "a table in two files")

        try:
            result, _ = await run_with(cfg, scenario)
        finally:
            await server.stop()
        assert result.exit_code == 0, result.reason
        return result.run_id

    return data_dir, asyncio.run(main_())


def test_time_columns_work_with_duckdb_functions_and_keep_nanoseconds(
        gappy: tuple[Path, str]) -> None:
    data_dir, _ = gappy
    con = connect(data_dir)
    # what failed on TIMESTAMPTZ_NS columns now works
    row = con.sql("SELECT epoch_ms(ts_recv), gap_end - gap_start, time_bucket(INTERVAL 1 minute, "
                  "ts_recv), date_trunc('second', ts_recv), epoch(gap_end) - epoch(gap_start) "
                  "FROM session_events WHERE event = 'reconnected' LIMIT 1").fetchall()
    assert row and row[0][1].total_seconds() > 0
    types = dict(con.sql("SELECT column_name, column_type FROM (DESCRIBE session_events)"
                         ).fetchall())
    assert types["ts_recv"] == "TIMESTAMP WITH TIME ZONE" and types["ts_recv_ns"] == "BIGINT"
    assert types["gap_start"] == "TIMESTAMP WITH TIME ZONE" and types["gap_end_ns"] == "BIGINT"
    # *_ns is the lake's exact value, the TIMESTAMPTZ its truncation to the microsecond
    raw = pq.read_table(lake_files(data_dir, "mackinac_quote"), columns=["ts_recv"])
    want = sorted(pc.cast(raw["ts_recv"], "int64").to_pylist())
    got = con.sql("SELECT ts_recv_ns, epoch_us(ts_recv) FROM mackinac_quote ORDER BY 1"
                  ).fetchall()
    assert [g[0] for g in got] == want
    assert all(us == ns // 1000 for ns, us in got)
    assert any(ns % 1000 for ns, _ in got)  # real nanoseconds, not zeros
    # the _dedup views carry the same columns
    assert con.sql("SELECT * FROM mackinac_quote_dedup LIMIT 0").columns == \
        con.sql("SELECT * FROM mackinac_quote LIMIT 0").columns


def test_gaps_view_has_one_row_per_hole_with_its_cause(gappy: tuple[Path, str]) -> None:
    data_dir, run = gappy
    con = connect(data_dir)
    gaps = con.sql("SELECT cause, venue, run_id, conn_id, channel, gap_start, gap_end, "
                   "duration_s, code FROM gaps ORDER BY gap_start_ns").fetchall()
    assert [g[0] for g in gaps] == ["stale_feed", "server_closing", "disconnect"], gaps
    assert all(g[1] == "mackinac" and g[2] == run and g[3] == "feed" for g in gaps)
    stale, closing, drop = gaps
    assert stale[4] == "hl" and 0.2 < stale[7] < 5
    assert closing[8] == "1012" and drop[8] is not None
    assert all(g[5] <= g[6] and g[7] >= 0 for g in gaps)
    # the reconnect gaps are the reconnected rows' own gap_start/gap_end
    ends = con.sql("SELECT gap_start_ns, gap_end_ns FROM session_events WHERE event = "
                   "'reconnected' ORDER BY 1").fetchall()
    assert con.sql("SELECT gap_start_ns, gap_end_ns FROM gaps WHERE cause IN ('disconnect', "
                   "'server_closing') ORDER BY 1").fetchall() == ends


def test_gaps_view_on_an_empty_lake(tmp_path: Path) -> None:
    con = connect(tmp_path)
    assert con.sql("SELECT * FROM gaps").fetchall() == []


def test_report_page_holds_its_pictures_and_tables(gappy: tuple[Path, str],
                                                   tmp_path: Path) -> None:
    data_dir, _ = gappy
    data = gather(data_dir)
    assert data.hourly and len(data.gaps) == 3 and data.rows_per_table and data.lag
    assert data.files and data.files[0][1] == data.files[0][2]  # nothing compacted yet
    out = tmp_path / "report.html"
    r = cli(["report", "--data-dir", str(data_dir), "-o", str(out)])
    assert r.returncode == 0, r.stderr
    page = out.read_text()
    assert page.count('<img class="chart"') == 5
    assert len(re.findall(r'src="data:image/png;base64,[A-Za-z0-9+/=]{200,}"', page)) == 5
    for text in ("server_closing", "stale_feed", "mackinac_quote", "Lake lag"):
        assert text in page
    assert "http://" not in page and "https://" not in page  # self-contained
    r = cli(["report", "--data-dir", str(data_dir), "-o", str(out),
             "--from", "1999-01-01", "--to", "1999-01-02"])
    assert r.returncode == 0 and "nothing in range" in out.read_text()
    r = cli(["report", "--data-dir", str(data_dir), "--from", "soon"])
    assert r.returncode == 2 and "--from wants a day" in r.stderr


def test_report_shows_files_before_and_after_compaction(gappy: tuple[Path, str],
                                                         tmp_path: Path) -> None:
    import datetime as dt

    from recorder.compact import compact

    data_dir = tmp_path / "data"
    shutil.copytree(gappy[0], data_dir)
    before = len(lake_files(data_dir))
    compact(data_dir, closed_before=(dt.date.today() + dt.timedelta(days=2)).isoformat())
    [(_, b, n)] = gather(data_dir).files
    # The report counts what was there and what is there now: each table in one file (the
    # recording waited for a table in two files, so there were more).
    tables = {p.parent.parent.name for p in lake_files(data_dir)}
    assert b == before and n == len(lake_files(data_dir)) == len(tables) < before


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="no chromium on this machine (Debian: apt-get install chromium)")
def test_report_loads_in_a_headless_browser(gappy: tuple[Path, str], tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    cli(["report", "--data-dir", str(gappy[0]), "-o", str(out)])
    r = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                        "--virtual-time-budget=5000", "--enable-logging=stderr", "--v=0",
                        "--dump-dom", out.as_uri()], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    # the page's own script counts the charts that decoded, once it has loaded
    assert 'data-charts-loaded="5/5"' in r.stdout, r.stdout[:500]
    assert "Uncaught" not in r.stderr


def test_views_file_is_what_duckdb_runs(tmp_path: Path) -> None:
    """Every statement of queries/views.sql binds, each table's over an empty table of its
    shape (connect() binds less on an empty lake: an empty table's ``_dedup`` is its plain
    view, a cross-venue view leaves out tables without files)."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA __empty")
    for name, stmts in duck._statements(duck.VIEWS_FILE.read_text()):
        t = CATALOGUE.tables.get(name)
        if t is not None:
            con.execute(f"CREATE TABLE __empty.{name} ({duck._columns_ddl(t)}, date DATE)")
            stmts = stmts.replace(duck._source(t), f"__empty.{name}").replace(
                f"glob('{duck._glob(name)}')", "(SELECT ''::VARCHAR AS file WHERE false)")
        con.execute(stmts.replace("${lake}", str(tmp_path)))
    bound = {n for (n,) in con.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal"
                                   ).fetchall()}
    con = connect(tmp_path)
    names = {n for (n,) in con.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal"
                                   ).fetchall()}
    assert names == bound and "gaps" in names and "mackinac_print_dedup" in names
    assert {"trades", "rfq_events"} <= names
    with pytest.raises(duckdb.Error):
        con.sql("SELECT epoch_ms(ts_recv_ns::TIMESTAMPTZ_NS) FROM mackinac_print")
