"""``recorder verify`` on a real lake: one short recording against the Mackinac simulator,
copied per test, then broken in one way per test."""

from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import os
import shutil
import time
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from recorder.lake import lake_files
from recorder.maintain import VerifyReport, format_report, verify
from recorder.venues.mackinac.server import MackinacServer
from tests.conftest import cli
from tests.e2e import run_with
from tests.venues.mackinac.e2e import config

# At most three keys: the simulator's anonymous limit, so no API key is needed.
SYMBOLS = ["hl:ETH", "uni:WETH/USDC", "rates:all"]


def _committed(data_dir: Path) -> int:
    return len(lake_files(data_dir)) if (data_dir / "lake").exists() else 0


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A finished run whose lake has several committed files (waited for, not slept for)."""
    data_dir = tmp_path_factory.mktemp("recorded") / "data"

    async def main_() -> str:
        server = MackinacServer(seed=11, rate=4.0)
        await server.start()
        cfg = config(data_dir, server.url, SYMBOLS)

        async def scenario(stop: asyncio.Event) -> None:
            deadline = time.monotonic() + 60
            while _committed(data_dir) < 4:  # files rotate every 2 s (tests/e2e.py)
                assert time.monotonic() < deadline, "the recorder committed no lake files"
                await asyncio.sleep(0.1)

        try:
            result, _ = await run_with(cfg, scenario)
        finally:
            await server.stop()
        assert result.exit_code == 0, result.reason
        return result.run_id

    run = asyncio.run(main_())
    return data_dir, run


@pytest.fixture
def lake(recorded: tuple[Path, str], tmp_path: Path) -> tuple[Path, str]:
    """A private copy of the recorded data dir."""
    src, run = recorded
    dst = tmp_path / "data"
    shutil.copytree(src, dst)
    return dst, run


def _show(rep: VerifyReport) -> str:
    return "\n".join(format_report(rep))


def _biggest(data_dir: Path) -> Path:
    return max(lake_files(data_dir), key=lambda p: p.stat().st_size)


def test_good_lake_passes(lake: tuple[Path, str]) -> None:
    data_dir, run = lake
    rep = verify(data_dir)
    assert rep.ok, _show(rep)
    assert rep.runs_verified == [("mackinac", run)]
    assert rep.rows and all(c.status == "ok" and c.rows > 0 for c in rep.rows), _show(rep)
    assert sum(c.files for c in rep.rows) == len(lake_files(data_dir))
    assert not list(data_dir.glob(".verify-*")), "scratch left behind"


def test_removed_file_means_missing_rows(lake: tuple[Path, str]) -> None:
    data_dir, _ = lake
    victim = _biggest(data_dir)
    table, part = victim.parent.parent.name, victim.parent.name
    victim.unlink()
    rep = verify(data_dir)
    assert not rep.ok
    [row] = [c for c in rep.rows if (c.table, f"date={c.date}") == (table, part)]
    assert row.status == "FAIL" and row.missing > 0 and row.extra == 0, _show(rep)
    assert any(f"lake/{table}/{part}" in p and "missing" in p for p in rep.problems)


def test_copied_file_means_duplicates(lake: tuple[Path, str]) -> None:
    data_dir, _ = lake
    src = _biggest(data_dir)
    rows = pq.read_metadata(src).num_rows
    shutil.copy(src, src.with_name("copy-" + src.name))
    rep = verify(data_dir)
    assert not rep.ok
    [row] = [c for c in rep.rows if c.table == src.parent.parent.name
             and f"date={c.date}" == src.parent.name]
    assert row.duplicates == rows and row.extra == rows and row.missing == 0, _show(rep)
    assert any("duplicate" in p for p in rep.problems)


def test_truncated_file_is_named(lake: tuple[Path, str]) -> None:
    data_dir, _ = lake
    victim = _biggest(data_dir)
    data = victim.read_bytes()
    victim.write_bytes(data[:-20])
    rep = verify(data_dir)
    assert not rep.ok
    assert any(victim.name in p and "unreadable" in p for p in rep.problems), _show(rep)


def test_hidden_temp_file_is_only_a_warning(lake: tuple[Path, str]) -> None:
    data_dir, run = lake
    folder = _biggest(data_dir).parent
    (folder / f".{run}-mackinac-09999.parquet.tmp").write_bytes(b"PAR1 half a file")
    rep = verify(data_dir)
    assert rep.ok, _show(rep)
    assert any("stale temporary file" in w and run in w for w in rep.warnings)


def test_files_readers_can_see_that_are_not_committed_fail(lake: tuple[Path, str]) -> None:
    data_dir, run = lake
    src = _biggest(data_dir)
    folder = src.parent
    (folder / f"{run}-mackinac-09999.parquet.tmp").write_bytes(b"PAR1 half a file")
    shutil.copy(src, folder / f".{src.name}")  # DuckDB's *.parquet glob reads hidden names
    rep = verify(data_dir)
    assert len(rep.problems) == 3, _show(rep)
    assert any(f"{run}-mackinac-09999.parquet.tmp: a file readers can see" in p
               for p in rep.problems)
    assert any(f".{src.name}: a .parquet file with a hidden name" in p for p in rep.problems)
    [row] = [c for c in rep.rows if c.table == folder.parent.name
             and f"date={c.date}" == folder.name]
    assert row.duplicates == pq.read_metadata(src).num_rows, _show(rep)


def test_running_manifest_of_a_dead_run_fails(lake: tuple[Path, str]) -> None:
    data_dir, run = lake
    path = data_dir / "runs" / f"{run}.json"
    m = orjson.loads(path.read_bytes())
    assert m["status"] == "complete"
    path.write_bytes(orjson.dumps({**m, "status": "running"}))
    rep = verify(data_dir)
    assert rep.problems == [f"run {run}: manifest says running but no process holds it "
                            f"(a crash); `recorder recover` finishes it"], _show(rep)


def test_a_live_builder_keeps_its_temp_files_and_running_manifest_fine(
        lake: tuple[Path, str]) -> None:
    data_dir, run = lake
    folder = _biggest(data_dir).parent
    (folder / f".{run}-mackinac-09999.parquet.tmp").write_bytes(b"PAR1 half a file")
    path = data_dir / "runs" / f"{run}.json"
    path.write_bytes(orjson.dumps({**orjson.loads(path.read_bytes()), "status": "running"}))
    lock = data_dir / "locks" / f"build-{run}-mackinac.lock"
    lock.parent.mkdir(exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a lake builder holds
        rep = verify(data_dir)
    finally:
        os.close(fd)
    assert rep.ok and rep.runs_verified == [], _show(rep)
    assert not any("stale" in w for w in rep.warnings), _show(rep)
    assert not verify(data_dir).ok  # the builder is gone: a running manifest is a crash


def test_pruned_journal_is_a_warning(lake: tuple[Path, str]) -> None:
    data_dir, run = lake
    shutil.rmtree(data_dir / "journal" / "mackinac")
    rep = verify(data_dir)
    assert rep.ok, _show(rep)
    assert rep.runs_verified == []
    assert any(f"run {run}" in w and "not verifiable (journal pruned)" in w
               for w in rep.warnings), _show(rep)
    # duplicates are still found without a journal, and rebuild is not offered as the fix
    src = _biggest(data_dir)
    shutil.copy(src, src.with_name("copy-" + src.name))
    rep = verify(data_dir)
    [problem] = rep.problems
    assert f"{pq.read_metadata(src).num_rows} duplicate row(s)" in problem, _show(rep)
    assert "would drop" in problem and "extra" not in problem


def test_date_and_venue_scope(lake: tuple[Path, str]) -> None:
    data_dir, _ = lake
    days = sorted({c.date for c in verify(data_dir).rows})
    rep = verify(data_dir, date=days[0], venue="mackinac")
    assert rep.ok and rep.rows and {c.date for c in rep.rows} == {days[0]}, _show(rep)
    # a removed file on another day does not fail this day
    other = (dt.date.fromisoformat(days[-1]) + dt.timedelta(days=2)).isoformat()
    _biggest(data_dir).unlink()
    rep = verify(data_dir, date=other)
    assert rep.ok and not rep.rows and rep.runs_verified == [], _show(rep)
    rep = verify(data_dir, venue="nowhere")
    assert rep.ok and not rep.rows and "nothing to verify" in rep.warnings[-1], _show(rep)


def test_cli(lake: tuple[Path, str]) -> None:
    data_dir, _ = lake
    r = cli(["verify", "--data-dir", str(data_dir)])
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["table", "date", "files", "rows", "missing", "extra",
                                "duplicates", "status"]
    assert lines[-1] == "verify: ok"
    _biggest(data_dir).unlink()
    r = cli(["verify", "--data-dir", str(data_dir)])
    assert r.returncode == 1 and r.stdout.splitlines()[-1] == "verify: 1 problem(s)", r.stdout
    assert any(line.endswith("FAIL") for line in r.stdout.splitlines())
    r = cli(["verify", "--data-dir", str(data_dir), "--date", "yesterday"])
    assert r.returncode == 2 and "--date wants a day as YYYY-MM-DD, got 'yesterday'" in r.stderr
    r = cli(["verify", "--data-dir", str(data_dir / "nope")])
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_live_run_is_not_compared_and_its_temp_files_are_fine(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"

    async def main_() -> tuple[VerifyReport, str]:
        server = MackinacServer(seed=12, rate=4.0)
        await server.start()
        cfg = config(data_dir, server.url, SYMBOLS)
        seen: list[VerifyReport] = []

        async def scenario(stop: asyncio.Event) -> None:
            deadline = time.monotonic() + 60
            while not (_committed(data_dir) and list((data_dir / "lake").rglob(".*.tmp"))):
                assert time.monotonic() < deadline, "no committed and open files together"
                await asyncio.sleep(0.05)
            seen.append(await asyncio.to_thread(verify, data_dir))

        try:
            result, _ = await run_with(cfg, scenario)
        finally:
            await server.stop()
        assert result.exit_code == 0, result.reason
        return seen[0], result.run_id

    rep, run = asyncio.run(main_())
    assert rep.ok, _show(rep)  # its manifest says running, and that is right
    assert rep.runs_verified == []
    assert any(f"run {run}: still recording or being built" in w for w in rep.warnings), _show(rep)
    assert not any("stale" in w for w in rep.warnings), _show(rep)
    after = verify(data_dir)
    assert after.ok and after.runs_verified == [("mackinac", run)], _show(after)
