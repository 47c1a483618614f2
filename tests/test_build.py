"""The lake builder: the one path from journal to rows, attacked where it could break.

Ids that follow their rows whatever mix of raw and dict rows a batch holds; a frame built to
hurt (100k nested brackets) live and in a dead run's journal; two builders over one dead
run; a crash just after midnight; rebuild with a pruned journal.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import random
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from recorder import journal as jr
from recorder.build import Busy, RebuildRefused, RunBuilder, build, read_state, rebuild
from recorder.duck import connect
from recorder.lake import _Buffer, lake_files, to_arrow
from recorder.runs import lock_held, read_manifest, run_lock_path
from recorder.venues import CATALOGUE
from recorder.venues.mackinac import tables as T
from recorder.venues.mackinac.server import MackinacServer
from tests.conftest import RECORDER, ROOT, cli
from tests.e2e import run_with
from tests.test_crash_and_rebuild import _sim
from tests.venues.mackinac.e2e import config

T0 = 1_748_275_200_000_000_000  # 2025-05-26T16:00:00Z
MIDNIGHT = 1_748_304_000_000_000_000  # 2025-05-27T00:00:00Z
# 100k nested arrays around a 20-digit integer: the integer sends the frame to the stdlib
# parser (orjson would round it), whose recursion then fails (the fault campaign's frame).
DEEP = b"[" * 100_000 + b"12345678901234567890" + b"]" * 100_000


def _print(i: int, symbol: str = "ETH") -> dict:
    # price and time encode the frame's position, so a row with another frame's ids shows
    return {"type": "print", "exchange": "hl", "symbol": symbol, "price": 1000.0 + i,
            "size": 0.5, "side": 1, "time": 1748275200000 + i}


# --- ids follow their rows ------------------------------------------------------------------


def test_raw_and_dict_rows_mixed_in_one_batch_keep_their_ids() -> None:
    """A property over random interleavings: every row's (ts_recv, conn, seq, sub) is the one
    its own frame was received with (raw rows are parsed by Arrow, dict rows by pyarrow from
    Python; they are converted apart and must be put back in arrival order with their ids)."""
    for seed in range(200):
        rnd = random.Random(seed)
        n = rnd.randint(1, 40)
        buf = _Buffer()
        for i in range(n):
            frame = _print(i, rnd.choice(["ETH", "BTC"]))
            if rnd.random() < 0.5:
                buf.rows.append(orjson.dumps(frame))  # the adapter's raw fast path
            else:
                d = {k: v for k, v in frame.items() if k != "type"}
                buf.rows.append({**d, "_source": "live", "_legacy": False})
            buf.ts.append(T0 + i * 1000)
            buf.conn.append(f"c{i % 3}")
            buf.seq.append(i + 1)
            buf.sub.append(i % 2)
        out, bad = to_arrow(T.PRINT, buf, "mackinac", "run")
        assert bad == [] and out is not None and out.num_rows == n
        for row in out.to_pylist():
            i = int(row["price"] - 1000.0)
            assert row["recv_seq"] == i + 1, (seed, row)
            assert row["ts_recv"].timestamp() * 1e9 == pytest.approx(T0 + i * 1000, abs=1000)
            assert row["conn_id"] == f"c{i % 3}" and row["recv_sub"] == i % 2
            assert row["time_ms"] == 1748275200000 + i


def test_drops_with_history_every_lake_row_equals_its_journal_frame(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Live: after each drop the history reply's prints (dict rows) meet live prints (raw
    rows) in one batch. Every print row's symbol and time must be those of its own frame."""
    key = "mk_live_ids"
    monkeypatch.setenv("MACKINAC_TEST_IDS", key)

    async def main() -> tuple:
        server = MackinacServer(seed=3, api_keys={key: "super_admin"}, rate=4.0)
        await server.start()

        def sent_on(no: int) -> int:  # frames sent on the no-th session, 0 until it opens
            return len(server.ledger_for(no)) if no in server.connections() else 0

        async def scenario(stop: asyncio.Event) -> None:
            for i in range(3):
                await _until(lambda n=i + 1: sent_on(n) > 50)
                if i < 2:
                    server.drop()
            await server.stop()

        cfg = config(data_dir, server.url, ["hl:ETH", "hl:BTC", "uni:WETH/USDC"],
                     "MACKINAC_TEST_IDS", history=True)
        return await run_with(cfg, scenario)

    (result, _) = asyncio.run(main())
    assert result.exit_code == 0, result.reason
    frames = {(r.conn, r.seq): orjson.loads(r.data) for r in jr.read_run(
        data_dir, "mackinac", result.run_id) if r.kind == jr.KIND_IN}
    con = connect(data_dir, views={"mackinac_print"})
    rows = con.sql("SELECT conn_id, recv_seq, recv_sub, symbol, time_ms, source "
                   "FROM mackinac_print").fetchall()
    assert {r[5] for r in rows} == {"live", "history"}
    for conn, seq, sub, symbol, time_ms, source in rows:
        f = frames[(conn, seq)]
        if source == "history":
            f = f["prints"][sub]
        assert (symbol, time_ms) == (f.get("symbol", symbol), f["time"]), (conn, seq, sub)


async def _until(cond, limit: float = 60.0) -> None:  # noqa: ANN001
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not cond():
        assert loop.time() < end, "condition not reached"
        await asyncio.sleep(0.02)


# --- a frame built to hurt ------------------------------------------------------------------


def _dead_run(data_dir: Path, run: str, frames: list[tuple[int, bytes]],
              conn: str = "feed") -> None:
    """A journal as a recorder that died would leave it (no manifest, no lake)."""
    w = jr.JournalWriter(data_dir, "mackinac", run)
    w.append(jr.KIND_META, conn, frames[0][0] - 1, b'{"ev":"connected","url":"ws://x"}')
    for ts, data in frames:
        w.append(jr.KIND_IN, conn, ts, data)
    w.close()


def _identities(data_dir: Path) -> Counter:
    got: Counter = Counter()
    for f in lake_files(data_dir):
        t = pq.read_table(f, columns=["venue", "run_id", "conn_id", "recv_seq", "recv_sub"])
        for row in zip(*(t[c].to_pylist() for c in t.column_names), strict=True):
            got[(f.parent.parent.name, *row)] += 1
    return got


def test_a_100k_deep_frame_in_a_dead_runs_journal_becomes_a_row_not_a_crash(
        data_dir: Path) -> None:
    deep_print = b'{"type":"print","exchange":"hl","symbol":' + DEEP + b'}'
    _dead_run(data_dir, "dead-deep", [
        (T0 + 1, orjson.dumps(_print(1))), (T0 + 2, DEEP), (T0 + 3, deep_print),
        (T0 + 4, orjson.dumps(_print(4)))])
    done = build(data_dir, catalogue=CATALOGUE)
    assert [d["complete"] for d in done] == [True]
    con = connect(data_dir, views={"mackinac_print", "unhandled"})
    assert con.sql("SELECT count(*) FROM mackinac_print").fetchall() == [(2,)]
    bad = con.sql("SELECT recv_seq, reason FROM unhandled ORDER BY recv_seq").fetchall()
    assert [s for s, _ in bad] == [3, 4] and all(r for _, r in bad)
    raw = con.sql("SELECT length(raw) FROM unhandled ORDER BY recv_seq").fetchall()
    assert raw[0][0] == len(DEEP)  # the frame itself is kept
    # and a later run (its builder finds nothing left) is not stopped by it
    assert build(data_dir, catalogue=CATALOGUE) == []


def test_a_100k_deep_frame_live_is_recorded_and_the_run_goes_on(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "mk_live_deep"
    monkeypatch.setenv("MACKINAC_TEST_DEEP", key)

    async def main() -> tuple:
        server = MackinacServer(seed=4, api_keys={key: "super_admin"}, rate=4.0)
        await server.start()

        async def scenario(stop: asyncio.Event) -> None:
            await _until(lambda: len(server.ledger_for(1)) > 20)
            server.inject(DEEP.decode())
            n = len(server.ledger_for(1))
            await _until(lambda: len(server.ledger_for(1)) > n + 20)
            await server.stop()

        cfg = config(data_dir, server.url, ["hl:ETH"], "MACKINAC_TEST_DEEP", history=False)
        return await run_with(cfg, scenario)

    result, _ = asyncio.run(main())
    assert result.exit_code == 0, result.reason
    assert result.manifest["lake"]["status"] == "complete"
    con = connect(data_dir, views={"mackinac_quote", "unhandled"})
    [(n,)] = con.sql("SELECT count(*) FROM unhandled WHERE length(raw) = "
                     f"{len(DEEP)}").fetchall()
    assert n == 1
    [(after,)] = con.sql("SELECT count(*) FROM mackinac_quote WHERE recv_seq > (SELECT "
                         "recv_seq FROM unhandled WHERE length(raw) > 100000)").fetchall()
    assert after > 0  # frames after it were recorded and built


# --- exactly once -----------------------------------------------------------------------------


def test_two_builders_started_together_build_a_dead_run_exactly_once(data_dir: Path) -> None:
    frames = [(T0 + i, orjson.dumps(_print(i))) for i in range(30_000)]
    _dead_run(data_dir, "dead-ab", frames)
    procs = [subprocess.Popen([*RECORDER, "build", "--data-dir", str(data_dir),
                               "--max-rows", "2000"], cwd=ROOT, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    ids = _identities(data_dir)
    assert ids and max(ids.values()) == 1
    assert sum(1 for k in ids if k[0] == "mackinac_print") == 30_000
    assert read_state(data_dir, "dead-ab", "mackinac")["complete"]
    assert read_manifest(data_dir, "dead-ab")["status"] == "crashed"


def test_a_dead_run_freed_while_a_run_records_is_finished_before_its_builder_leaves(
        data_dir: Path) -> None:
    """A restart while the dead run's own builder is still dying (a kill -9 lands when the
    fsync it is in returns): the new run's builder finds the dead run taken at its start,
    and finishes it before it leaves (not the next run, maybe an hour later)."""
    _dead_run(data_dir, "dead-late", [(T0 + i, orjson.dumps(_print(i))) for i in range(500)])
    _dead_run(data_dir, "live", [(T0 + i, orjson.dumps(_print(i, "BTC"))) for i in range(10)])
    lock = run_lock_path(data_dir, "live")
    lock.parent.mkdir(parents=True, exist_ok=True)
    live = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(live, fcntl.LOCK_EX)  # run "live" is recording
    dying = RunBuilder(data_dir, "mackinac", "dead-late", catalogue=CATALOGUE)
    logs: list[str] = []
    follower = threading.Thread(target=build, args=(data_dir,), kwargs={
        "catalogue": CATALOGUE, "follow": "live", "log": logs.append})
    follower.start()
    try:
        # its first scan (a full one) found the dead run taken and took the live one
        deadline = time.monotonic() + 60
        while not lock_held(data_dir / "locks" / "build-live-mackinac.lock"):
            assert time.monotonic() < deadline, "the builder never took the live run"
            time.sleep(0.02)
        dying.abort()  # the dead run's builder is gone at last
    finally:
        os.close(live)  # the live run ends
        follower.join(60)
    assert not follower.is_alive()
    assert any(line.startswith("recovered mackinac run dead-late") for line in logs), logs
    ids = _identities(data_dir)
    assert max(ids.values()) == 1
    assert sum(1 for k in ids if k[0] == "mackinac_print" and k[2] == "dead-late") == 500
    assert read_state(data_dir, "dead-late", "mackinac")["complete"]


def test_one_builder_at_a_time_per_run(data_dir: Path) -> None:
    _dead_run(data_dir, "dead-lock", [(T0, orjson.dumps(_print(0)))])
    first = RunBuilder(data_dir, "mackinac", "dead-lock", catalogue=CATALOGUE)
    try:
        with pytest.raises(Busy):
            RunBuilder(data_dir, "mackinac", "dead-lock", catalogue=CATALOGUE)
    finally:
        first.abort()
    RunBuilder(data_dir, "mackinac", "dead-lock", catalogue=CATALOGUE).abort()  # free again once released


def test_a_crash_just_after_midnight_loses_nothing_and_doubles_nothing(data_dir: Path) -> None:
    """One flush straddles midnight: two files (one per date) claim the same journal window.
    The older commits, the builder dies before the newer does; the next builder must still
    write the newer's rows, once."""
    frames = [(MIDNIGHT - 50 + i, orjson.dumps(_print(i))) for i in range(100)]
    _dead_run(data_dir, "dead-midnight", frames)
    b = RunBuilder(data_dir, "mackinac", "dead-midnight", catalogue=CATALOGUE)
    b.step(final=True)  # reads and writes everything: both dates' files are open
    keys = sorted(b.writer._files)
    assert ("mackinac_print", "2025-05-26") in keys and ("mackinac_print", "2025-05-27") in keys
    b.writer._commit(("mackinac_print", "2025-05-26"))
    b.close()  # dies here: the 2025-05-27 file was never committed
    assert build(data_dir, catalogue=CATALOGUE)[0]["complete"]
    ids = _identities(data_dir)
    prints = [k for k in ids if k[0] == "mackinac_print"]
    assert len(prints) == 100 and max(ids.values()) == 1


# --- rebuild -----------------------------------------------------------------------------------


def _prints(data_dir: Path) -> int:
    """Rows of mackinac_print in the lake (what its view counts: its committed files)."""
    return sum(pq.read_metadata(f).num_rows for f in lake_files(data_dir, "mackinac_print"))


def test_rebuild_refuses_to_delete_what_the_journal_no_longer_has(data_dir: Path) -> None:
    _dead_run(data_dir, "run-a", [(T0 + i, orjson.dumps(_print(i))) for i in range(10)])
    build(data_dir, catalogue=CATALOGUE)
    assert _prints(data_dir) == 10
    for seg in jr.segments(data_dir, "mackinac", "run-a"):
        seg.unlink()  # pruned
    with pytest.raises(RebuildRefused, match="mackinac_print"):
        rebuild(data_dir, "2025-05-26", catalogue=CATALOGUE)
    assert _prints(data_dir) == 10
    r = cli(["rebuild", "--data-dir", str(data_dir), "--date", "2025-05-26"])
    assert r.returncode == 2 and "--force" in r.stderr and len(r.stderr.splitlines()) == 1, \
        r.stdout + r.stderr
    rebuild(data_dir, "2025-05-26", force=True, catalogue=CATALOGUE)
    assert _prints(data_dir) == 0


def test_rebuild_bad_date_is_the_users_error(data_dir: Path) -> None:
    r = cli(["rebuild", "--data-dir", str(data_dir), "--date", "28-11-2026"])
    assert r.returncode == 2 and "user error" in r.stderr and "YYYY-MM-DD" in r.stderr, \
        r.stdout + r.stderr


def test_two_recorders_starting_together_over_a_dead_run_build_it_once(
        tmp_path: Path) -> None:
    """A/B recorders (two configs, one data dir) start at the same instant while a dead
    run's journal waits: each starts a builder, one of them finishes the dead run."""
    data_dir = tmp_path / "data"
    _dead_run(data_dir, "dead-2rec", [(T0 + i, orjson.dumps(_print(i))) for i in range(20_000)])
    sim, port = _sim()
    confs = []
    for name in ("a", "b"):
        c = tmp_path / f"{name}.toml"
        c.write_text(f"""
[recorder]
data_dir = "{data_dir}"
[venues.mackinac]
url = "ws://127.0.0.1:{port}/feed"
api_key_env = "MACKINAC_API_KEY"
symbols = ["hl:ETH"]
""")
        confs.append(c)
    env = {**os.environ, "MACKINAC_API_KEY": "mk_live_crash"}
    try:
        procs = [subprocess.Popen([*RECORDER, "record", "--config", str(c), "--duration", "2s",
                                   "--quiet"], cwd=ROOT, env=env, stderr=subprocess.PIPE,
                                  text=True) for c in confs]
        outs = [p.communicate(timeout=300)[1] for p in procs]
    finally:
        sim.kill()
        sim.wait(10)
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sum("recovered mackinac run dead-2rec" in o for o in outs) == 1, outs
    ids = _identities(data_dir)
    assert max(ids.values()) == 1
    dead = [k for k in ids if k[0] == "mackinac_print" and k[2] == "dead-2rec"]
    assert len(dead) == 20_000
    assert json.loads((data_dir / "runs" / "dead-2rec.json").read_text())["status"] == "crashed"
