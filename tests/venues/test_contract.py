"""What every venue of the catalogue must do, parametrized over ``CATALOGUE`` so that a new
venue is covered the day it is registered. Its test folder declares what these tests need in
``tests/venues/<venue>/contract.py`` (see ``tests/venues/corpus.py``):

- every table it declares has a fixture frame that yields rows of it;
- every fixture frame parses through its adapter without an ``unhandled`` row;
- a message of a type nobody handles lands in ``unhandled`` with reason ``unknown_type``;
- recording its simulator as ``conf/sim.toml`` configures it yields rows in every table it
  declares, but those it lists in ``NOT_SIMULATED`` (with why; each is produced by a fault in
  one of its end-to-end tests);
- its replay server starts without a recording (``replay serve`` asks a throwaway one its
  URL).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import pytest

from recorder import config as config_mod
from recorder.schema import UNHANDLED
from recorder.venues import CATALOGUE
from tests.conftest import ROOT
from tests.e2e import Live, run_with
from tests.venues.corpus import VENUES, contract, corpus, fixtures


@pytest.mark.parametrize("venue", VENUES)
def test_the_venue_has_its_test_folder(venue: str) -> None:
    assert (fixtures(venue) / "SOURCES.md").is_file()
    c = contract(venue)
    tables = {t.name for t in CATALOGUE.venues[venue].tables}
    assert set(c.NOT_SIMULATED) <= tables, "NOT_SIMULATED names a table the venue lacks"
    assert all(why.strip() for why in c.NOT_SIMULATED.values())
    assert c.UNKNOWN


@pytest.mark.parametrize("venue", VENUES)
def test_every_fixture_parses_and_every_table_has_one(venue: str) -> None:
    seen: set[str] = set()
    for frame in corpus(venue):
        rows = frame.rows()
        bad = [r for t, r in rows if t is UNHANDLED]
        assert rows and bad == [], f"{venue}/{frame.name}[{frame.index}] unhandled: {bad}"
        seen |= {t.name for t, _ in rows}
    missing = {t.name for t in CATALOGUE.venues[venue].tables} - seen
    assert not missing, f"no fixture of {venue} yields rows of {sorted(missing)}"


@pytest.mark.parametrize("venue", VENUES)
def test_an_unknown_message_type_is_unhandled(venue: str) -> None:
    spec = CATALOGUE.venues[venue]
    for conn, data in contract(venue).UNKNOWN:
        ad = spec.make_adapter(venue, None, {}, offline=True)
        rows, actions = ad.on_frame(conn, data)
        assert [(t.name, r["reason"]) for t, r in rows] == [("unhandled", "unknown_type")], data
        assert rows[0][1]["raw"] == data.decode()
        assert list(actions) == []


def test_every_registered_venue_has_a_section_in_each_conf() -> None:
    for name in ("sim.toml", "live.toml"):
        cfg = config_mod.load(ROOT / "conf" / name, data_dir="/nonexistent")
        assert {v.adapter for v in cfg.venues} >= set(VENUES), name


@pytest.mark.parametrize("venue", VENUES)
def test_the_simulator_yields_every_table(venue: str, data_dir: Path) -> None:
    """A recording of the venue as ``conf/sim.toml`` configures it (on its contract's ``SIM``
    and ``OPTIONS``) until its journal yields rows of each declared table but those of
    ``NOT_SIMULATED``; then the lake (the run's manifest) must hold rows in each."""
    c = contract(venue)
    cfg = config_mod.select(config_mod.load(ROOT / "conf" / "sim.toml", data_dir=data_dir),
                            [venue])
    (v,) = cfg.venues
    fast = dataclasses.replace(v.transport, backoff_initial=0.2, backoff_max=1.0)
    cfg = dataclasses.replace(
        cfg, recorder=dataclasses.replace(cfg.recorder, lake_flush_seconds=0.3,
                                          lake_rotate_seconds=1.0, journal_flush_ms=50),
        venues=(dataclasses.replace(v, sim={**v.sim, **c.SIM}, transport=fast,
                                    options={**v.options, **c.OPTIONS}),))
    want = {t.name for t in CATALOGUE.venues[venue].tables} - set(c.NOT_SIMULATED)
    live = Live(data_dir, v.name, v.adapter)

    async def scenario(stop: asyncio.Event) -> None:
        deadline = time.monotonic() + 60
        while not want <= set(live().tables) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # a poll of the journal, not a wait for a time

    result, _ = asyncio.run(run_with(cfg, scenario))
    assert result.exit_code == 0, result.reason
    rows = result.manifest["tables"]
    assert sorted(t for t in want if not rows.get(t)) == [], f"{venue}: tables without rows"


@pytest.mark.parametrize("venue", VENUES)
def test_the_replay_server_starts_without_a_recording(venue: str) -> None:
    spec = CATALOGUE.venues[venue]
    assert spec.replay_server is not None, f"{venue} has no native replay"

    async def main() -> str:
        srv = spec.replay_server()
        await srv.start("127.0.0.1", 0)
        try:
            return str(srv.url)
        finally:
            await srv.stop()

    assert asyncio.run(main()).startswith(("ws://", "http://"))
