"""``recorder prune``: the journal goes only where the lake holds its rows, the lake only where
the journal can give them back, and neither when it would be the last copy."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import time
from pathlib import Path

import pytest

from recorder import journal as jr
from recorder.build import rebuild
from recorder.compact import compact
from recorder.lake import lake_files
from recorder.maintain import format_report, verify
from recorder.prune import lake_pruned, prune
from recorder.venues import CATALOGUE
from recorder.venues.mackinac.server import MackinacServer
from tests.conftest import cli
from tests.e2e import run_with
from tests.venues.mackinac.e2e import config

AFTER = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=2)).isoformat()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("prune") / "data"

    async def main_() -> None:
        server = MackinacServer(seed=13, rate=4.0)
        await server.start()
        cfg = config(data_dir, server.url, ["hl:ETH", "uni:WETH/USDC", "rates:all"])

        async def scenario(stop: asyncio.Event) -> None:
            deadline = time.monotonic() + 60
            while len(lake_files(data_dir)) < 6 if (data_dir / "lake").exists() else True:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)

        try:
            result, _ = await run_with(cfg, scenario)
        finally:
            await server.stop()
        assert result.exit_code == 0, result.reason

    asyncio.run(main_())
    return data_dir


@pytest.fixture
def lake(recorded: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "data"
    shutil.copytree(recorded, dst)
    return dst


def test_journal_goes_once_the_lake_holds_every_row(lake: Path) -> None:
    compact(lake, closed_before=AFTER)  # copies dropped by dedup keep their key: fine
    size = sum(p.stat().st_size for p in jr.segments(lake))
    dry = prune(lake, journal_before=AFTER, dry_run=True)
    assert len(dry.journal_removed) == 1 and jr.segments(lake)
    rep = prune(lake, journal_before=AFTER)
    assert [r[:2] for r in rep.journal_removed] == [r[:2] for r in dry.journal_removed]
    assert rep.freed_bytes == size > 0 and not jr.segments(lake)
    assert rep.lines()[-1].startswith("prune: freed ")
    v = verify(lake)  # the lake's rows are now unverifiable, never missing
    assert v.ok and any("not verifiable (journal pruned)" in w for w in v.warnings), \
        "\n".join(format_report(v))


def test_journal_stays_when_the_lake_lacks_rows(lake: Path) -> None:
    victim = max(lake_files(lake), key=lambda p: p.stat().st_size)
    victim.unlink()
    rep = prune(lake, journal_before=AFTER)
    assert not rep.journal_removed and jr.segments(lake)
    [(_, _, why)] = rep.journal_kept
    assert "the lake lacks" in why and "last copy" in why


def test_journal_of_a_day_before_the_cutoff_only(lake: Path) -> None:
    today = dt.datetime.now(dt.UTC).date().isoformat()
    rep = prune(lake, journal_before=today)
    assert not rep.journal_removed and not rep.journal_kept and jr.segments(lake)


def test_lake_goes_where_the_journal_gives_it_back_and_rebuild_restores_it(lake: Path) -> None:
    day = sorted(p.name[5:] for p in (lake / "lake").glob("*/date=*"))[0]
    rows_before = len(lake_files(lake))
    rep = prune(lake, lake_before=AFTER)
    assert [d for d, *_ in rep.lake_removed] == [day] and not lake_files(lake)
    assert lake_pruned(lake) == {day}
    v = verify(lake)  # the day is known to be pruned: no rows reported missing
    assert v.ok and any("removed from the lake by `recorder prune" in w for w in v.warnings)
    # the journal is then the last copy: it stays
    rep = prune(lake, journal_before=AFTER)
    assert not rep.journal_removed and "pruned from the lake" in rep.journal_kept[0][2]
    rebuild(lake, day, catalogue=CATALOGUE)
    assert lake_pruned(lake) == set() and len(lake_files(lake)) >= 1
    assert verify(lake).ok and rows_before


def test_lake_stays_where_it_is_the_last_copy(lake: Path) -> None:
    prune(lake, journal_before=AFTER)
    rep = prune(lake, lake_before=AFTER)
    assert not rep.lake_removed and lake_files(lake)
    assert "the lake is the last copy" in rep.lake_kept[0][1]


def test_cli(lake: Path) -> None:
    r = cli(["prune", "--data-dir", str(lake)])
    assert r.returncode == 2 and "--journal-before" in r.stderr
    r = cli(["prune", "--data-dir", str(lake), "--journal-before", "x"])
    assert r.returncode == 2 and "YYYY-MM-DD" in r.stderr
    r = cli(["prune", "--data-dir", str(lake), "--journal-before", AFTER, "--dry-run"])
    assert r.returncode == 0 and "journal would remove" in r.stdout and "would free" in r.stdout
