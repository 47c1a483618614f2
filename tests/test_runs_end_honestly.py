"""Runs end honestly: refused keys, a handshake that never comes, a full disk, two venues
whose connections share a name. Every manifest ends final, exit codes say what happened."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest

from recorder import config as config_mod
from recorder import journal as jr
from recorder.collect import VenueRun
from recorder.duck import connect
from recorder.record import RunResult, record
from recorder.venues.mackinac.server import MackinacServer
from tests.conftest import RECORDER, ROOT
from tests.e2e import run_with
from tests.test_crash_and_rebuild import _sim
from tests.venues.mackinac.e2e import config


async def _until(cond, limit: float = 60.0) -> None:  # noqa: ANN001
    end = time.monotonic() + limit
    while not cond():
        assert time.monotonic() < end, "condition not reached"
        await asyncio.sleep(0.02)


def test_every_key_refused_exits_nonzero_with_a_final_manifest(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MACKINAC_TEST_BAD", "mk_live_not_a_key")

    async def main() -> RunResult:
        server = MackinacServer(seed=1, api_keys={"mk_live_the_key": "super_admin"})
        await server.start()
        try:
            cfg = config(data_dir, server.url, ["hl:ETH"], "MACKINAC_TEST_BAD")
            result, _ = await run_with(cfg, lambda stop: stop.wait())
        finally:
            await server.stop()
        return result

    result = asyncio.run(main())
    assert result.exit_code == 2, result.reason
    assert "refused" in result.reason
    m = json.loads((data_dir / "runs" / f"{result.run_id}.json").read_text())
    assert m["status"] == "failed" and m["exit"]["code"] == 2
    con = connect(data_dir, views={"session_events_dedup"})
    assert con.sql("SELECT count(*) FROM session_events WHERE event = 'auth_failed'"
                   ).fetchall() == [(1,)]


def test_a_handshake_that_never_comes_is_bounded_by_connect_timeout(data_dir: Path) -> None:
    async def main() -> tuple[RunResult, int]:
        # accepts TCP, never answers the HTTP upgrade
        held: list[asyncio.StreamWriter] = []

        async def mute(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            held.append(w)

        server = await asyncio.start_server(mute, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        cfg = config(data_dir, f"ws://127.0.0.1:{port}/feed", ["hl:ETH"], history=False,
                     connect_timeout=0.5)
        runs: list[VenueRun] = []
        stop = asyncio.Event()
        task = asyncio.create_task(record(cfg, 120, live_status=False, install_signals=False,
                                          stop=stop, on_start=runs.extend))
        await _until(lambda: bool(runs) and runs[0].events.get("connect_failed", 0) >= 2)
        stop.set()
        result = await task
        server.close()
        for w in held:
            w.close()
        return result, len(held)

    result, accepted = asyncio.run(main())
    assert accepted >= 2  # it did connect, twice: the handshake is what timed out
    assert result.exit_code == 1 and "no venue could be reached" in result.reason
    con = connect(data_dir, views={"session_events_dedup"})
    rows = con.sql("SELECT event, reason FROM session_events").fetchall()
    failed = [r for r in rows if r[0] == "connect_failed"]
    assert len(failed) >= 2 and all("no handshake within 0.5s" in r[1] for r in failed)
    assert "connected" not in {r[0] for r in rows}


def test_two_venues_whose_connections_share_a_name_keep_every_connection_event(
        data_dir: Path) -> None:
    """Derive and Totalis both call their WebSocket `ws`; a row's identity has its venue."""
    base = config_mod.load(ROOT / "conf" / "sim.toml", data_dir)
    cfg = replace(base, recorder=replace(base.recorder, lake_flush_seconds=0.5),
                  venues=tuple(v for v in base.venues if v.name in ("derive", "totalis")))

    async def main() -> RunResult:
        runs: list[VenueRun] = []
        stop = asyncio.Event()
        task = asyncio.create_task(record(cfg, 120, live_status=False, install_signals=False,
                                          stop=stop, on_start=runs.extend))
        await _until(lambda: len(runs) == 2 and all(
            "ws" in r.conns and r.conns["ws"].status.frames > 5 for r in runs))
        stop.set()
        return await task

    result = asyncio.run(main())
    assert result.exit_code == 0, result.reason
    con = connect(data_dir, views={"session_events_dedup"})
    raw = con.sql("SELECT venue, count(*) FROM session_events WHERE conn_id = 'ws' AND "
                  "event = 'connected' GROUP BY venue ORDER BY venue").fetchall()
    dedup = con.sql("SELECT venue, count(*) FROM session_events_dedup WHERE conn_id = 'ws' "
                    "AND event = 'connected' GROUP BY venue ORDER BY venue").fetchall()
    assert raw == dedup and [v for v, _ in raw] == ["derive", "totalis"]
    seqs = con.sql("SELECT DISTINCT recv_seq FROM session_events WHERE conn_id = 'ws' AND "
                   "event = 'connected'").fetchall()
    assert len(seqs) == 1  # the same (run, conn, seq) in both venues: only venue tells apart
    every = con.sql("SELECT count(*) FROM session_events").fetchall()
    assert every == con.sql("SELECT count(*) FROM session_events_dedup").fetchall()
    # replay's recording order breaks ties on the venue too: the same order on every call
    from recorder import replay

    def order() -> list[tuple]:
        return [(r.ts_recv, r.venue, r.conn_id, r.recv_seq, r.recv_sub)
                for r in replay.records(data_dir, tables=["session_events"])]

    first = order()
    assert first == order() == sorted(first) and len(first) == every[0][0]


@pytest.fixture
def small_disk(tmp_path: Path):  # noqa: ANN201
    """A 256 KiB tmpfs (needs root, as in CI); skipped elsewhere, saying why. (512 KiB took
    twice as long to fill: 8-26 s.)"""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a small filesystem needs root to mount a tmpfs")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_full_disk_ends_the_run_with_one_line_and_a_readable_journal(
        small_disk: Path, tmp_path: Path) -> None:
    sim, port = _sim()
    data_dir = small_disk / "data"
    conf = tmp_path / "full.toml"
    conf.write_text(f"""
[recorder]
data_dir = "{data_dir}"
journal_flush_ms = 50
lake_flush_seconds = "300ms"
[venues.mackinac]
url = "ws://127.0.0.1:{port}/feed"
api_key_env = "MACKINAC_API_KEY"
symbols = ["hl:ETH", "hl:BTC", "dydx:ETH-USD", "uni:WETH/USDC", "rates:all", "aave:USDC"]
""")
    env = {**os.environ, "MACKINAC_API_KEY": "mk_live_crash"}
    try:
        r = subprocess.run([*RECORDER, "record", "--config", str(conf), "--duration", "10m",
                            "--quiet"], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=600)
    finally:
        sim.kill()
        sim.wait(10)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert "journal" in last and "No space left on device" in last, r.stderr
    [manifest] = (data_dir / "runs").glob("*.json")
    m = json.loads(manifest.read_text())
    assert m["status"] == "failed" and "No space left" in m["exit"]["reason"]
    # what the journal holds up to the failure reads back
    n = sum(1 for _ in jr.read_run(data_dir, "mackinac", manifest.stem))
    assert n > 100
