"""Native replay of Mackinac: record a simulator run, serve it with
:func:`recorder.replay.serve_native`, record the replay with the recorder itself, and compare
the venue's frames. (``tests/test_replay.py`` tests the replay module itself, on a Mackinac
recording.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from recorder import journal as jr
from recorder.venues.mackinac.server import MackinacServer
from tests.e2e import Tally, run_scenario
from tests.venues.mackinac.e2e import config, frame_types
from tests.venues.replaying import record_native_replay


def test_native_replay_round_trip_gives_the_same_frames_per_connection(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Record a simulator run; serve it with native replay; record the replay with the
    recorder itself: the venue's frames are the same, in the same order (receive times and
    the replay server's own connection replies aside)."""
    symbols = ["hl:ETH", "dydx:ETH-USD", "uni:WETH/USDC", "rates:all", "lending:actions",
               "ammbook:WETH/USDC", "ammliquidity:WETH/USDC", "aave:USDC"]
    first, second = tmp_path / "a" / "data", tmp_path / "b" / "data"
    monkeypatch.setenv("MACKINAC_REPLAY_KEY", "mk_live_r")

    async def record_sim() -> str:
        server = MackinacServer(seed=5, rate=3.0, api_keys={"mk_live_r": "super_admin"})
        await server.start()
        cfg = config(first, server.url, symbols, "MACKINAC_REPLAY_KEY", history=False)

        sent = Tally(server, frame_types)
        wanted = ("quote", "print", "rate_market", "lending_action", "ammbook",
                  "ammliquidity_snapshot")

        async def scenario(stop: asyncio.Event) -> None:
            await server.until(lambda: all(sent()[(1, t)] for t in wanted) and len(
                server.ledger) > 120, 30, "every kind of frame, and some")
            server.stale("hl", True)
            server.stale("hl", False)

        return (await run_scenario(cfg, server, scenario, exit_code=None)).run_id

    run_a = asyncio.run(record_sim())
    run_b, published = record_native_replay(
        first, "mackinac", lambda url: config(second, url, symbols, "MACKINAC_REPLAY_KEY",
                                              history=False),
        speed=4.0, linger=0.5, exit_code=None,
        server_options={"mackinac": {"api_keys": {"mk_live_r": "super_admin"}}})
    control = (b'"type":"subscribed"', b'"type":"authed"')

    def venue_frames(data_dir: Path, run: str) -> list[bytes]:
        return [r.data for r in jr.read_run(data_dir, "mackinac", run)
                if r.kind == jr.KIND_IN and not any(c in r.data for c in control)]

    a, b = venue_frames(first, run_a), venue_frames(second, run_b)
    assert len(a) > 100 and published["mackinac"] == len(a) + sum(
        1 for r in jr.read_run(first, "mackinac", run_a)
        if r.kind == jr.KIND_IN and any(c in r.data for c in control))
    assert b == a
    types = {orjson.loads(f)["type"] for f in b}
    assert {"quote", "print", "rate_market", "lending_action", "ammbook", "feed_stale",
            "feed_live", "ammliquidity_snapshot"} <= types
