"""In-process replay of a recorded simulator run: order, gaps, ranges, batches, pacing, cat."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import orjson
import pytest

from recorder import journal as jr
from recorder import replay
from recorder.duck import connect
from recorder.venues.mackinac.server import MackinacServer
from tests.conftest import RECORDER, ROOT
from tests.e2e import Tally, run_scenario
from tests.venues.mackinac.e2e import config, frame_types


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, list[list[str]]]:
    data_dir = tmp_path_factory.mktemp("replay") / "data"

    async def main() -> tuple:
        server = MackinacServer(seed=21, rate=3.0, api_keys={"mk_live_r": "super_admin"})
        await server.start()
        cfg = config(data_dir, server.url, ["hl:ETH", "uni:WETH/USDC", "rates:all"])

        async def scenario(stop: asyncio.Event) -> None:
            # fixed times on purpose: the tests read several lake flushes (0.5 s) and
            # rotations (2 s), which only time makes
            await asyncio.sleep(1.5)
            server.drop()
            await asyncio.sleep(1.5)

        result = await run_scenario(cfg, server, scenario)
        return result, [server.ledger_for(1), server.ledger_for(2)]

    result, ledgers = asyncio.run(main())
    return data_dir, result.run_id, ledgers


def test_records_come_in_recording_order_with_the_gap_in_its_place(recorded: tuple) -> None:
    data_dir, run, ledgers = recorded
    recs = list(replay.records(data_dir))
    keys = [(r.ts_recv, r.conn_id, r.recv_seq, r.recv_sub) for r in recs]
    assert keys == sorted(keys)
    con = connect(data_dir, views={"mackinac_quote", "mackinac_print", "session_events", "mackinac_funding"})
    total = sum(n for (n,) in con.sql(
        "SELECT count(*) FROM mackinac_quote UNION ALL SELECT count(*) FROM mackinac_print "
        "UNION ALL SELECT count(*) FROM session_events UNION ALL SELECT count(*) FROM "
        "mackinac_funding").fetchall())
    assert len([r for r in recs if r.table in ("mackinac_quote", "mackinac_print",
                                               "session_events", "mackinac_funding")]) == total
    # the venue frames, in replay order, are the journal's inbound frames in order
    inbound = [r.seq for r in jr.read_run(data_dir, "mackinac", run) if r.kind == jr.KIND_IN]
    seen: list[int] = []
    for r in recs:
        if r.table != "session_events" and (not seen or seen[-1] != r.recv_seq):
            seen.append(r.recv_seq)
    assert seen == [s for s in inbound if s in set(seen)]
    assert len(seen) >= len(inbound) - 2  # every data frame (acks/pongs excepted) has rows
    # content: the first quote replayed is the first quote the simulator sent
    first_quote = next(orjson.loads(t) for t in ledgers[0] if '"type":"quote"' in t)
    q = next(r for r in recs if r.table == "mackinac_quote")
    assert (q.data["symbol"], q.data["time_ms"]) == (first_quote["symbol"], first_quote["time"])
    assert q.data["bids"][0]["price"] == first_quote["bids"][0]["price"]
    # the drop is a gap record between the last frame of the first socket and the second's
    gap = next(r for r in recs if r.is_gap and r.data["event"] == "reconnected")
    i = recs.index(gap)
    assert gap.data["gap_start"] < gap.data["gap_end"] == gap.ts_recv
    before = [r for r in recs[:i] if r.table == "mackinac_quote"]
    after = [r for r in recs[i:] if r.table == "mackinac_quote"]
    assert before and after and before[-1].ts_recv <= gap.data["gap_start"] <= after[0].ts_recv


def test_range_venue_and_table_selection(recorded: tuple) -> None:
    data_dir, _, _ = recorded
    everything = list(replay.records(data_dir, tables=["mackinac_quote"]))
    mid = everything[len(everything) // 2].ts_recv
    tail = list(replay.records(data_dir, start=mid, tables=["mackinac_quote"]))
    head = list(replay.records(data_dir, end=mid, tables=["mackinac_quote"]))
    assert len(head) + len(tail) == len(everything) and tail[0].ts_recv >= mid
    assert {r.table for r in replay.records(data_dir, venues=["mackinac"])} >= {
        "mackinac_quote", "session_events"}
    assert list(replay.records(data_dir, venues=["nope"], tables=["mackinac_quote"])) == []
    with pytest.raises(ValueError, match="unknown table"):
        list(replay.records(data_dir, tables=["no_such_table"]))


def test_event_order_and_batches(recorded: tuple) -> None:
    data_dir, _, _ = recorded
    ev = [r for r in replay.records(data_dir, tables=["mackinac_quote", "mackinac_print"],
                                    order="event")]
    times = [r.ts_event for r in ev]
    assert times == sorted(times) and None not in times
    bs = list(replay.batches(data_dir, "mackinac_print", batch_rows=16))
    assert len(bs) > 1 and sum(b.num_rows for b in bs) == len(
        [r for r in ev if r.table == "mackinac_print"])
    seqs = [s for b in bs for s in b.column("recv_seq").to_pylist()]
    ts = [s for b in bs for s in b.column("ts_recv").to_pylist()]
    assert ts == sorted(ts) and len(seqs) == len(ts)
    df = replay.frames(data_dir, ["mackinac_quote"])["mackinac_quote"]
    assert df.height == len([r for r in ev if r.table == "mackinac_quote"])


def test_pacing_follows_the_recorded_clock(recorded: tuple,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir, _, _ = recorded
    recs = list(replay.records(data_dir, tables=["mackinac_quote"]))[:40]
    span = (recs[-1].ts_recv - recs[0].ts_recv) / 1e9
    clock = {"now": 0.0}
    slept: list[float] = []

    async def fake_sleep(d: float) -> None:  # a virtual clock: no timing on this machine
        slept.append(d)
        clock["now"] += d

    monkeypatch.setattr(replay.time, "monotonic", lambda: clock["now"])
    monkeypatch.setattr(replay.asyncio, "sleep", fake_sleep)

    async def run(speed: float) -> list[replay.Record]:
        return [r async for r in replay.paced(recs, speed=speed)]

    assert asyncio.run(run(10.0)) == recs
    assert clock["now"] == pytest.approx(span / 10, rel=1e-6)
    slept.clear()
    clock["now"] = 0.0
    assert asyncio.run(run(0)) == recs and clock["now"] == 0.0  # as fast as possible
    late = recs[10].ts_recv
    out = asyncio.run(_collect(replay.paced(recs, speed=0, start_at=late)))
    assert out == [r for r in recs if r.ts_recv >= late]


async def _collect(it) -> list:  # type: ignore[no-untyped-def]
    return [r async for r in it]


def test_replay_cat_records_and_raw_frames(recorded: tuple) -> None:
    data_dir, _, ledgers = recorded
    r = subprocess.run([*RECORDER, "replay", "cat", "--data-dir", str(data_dir), "--table",
                        "mackinac_print"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = [orjson.loads(x) for x in r.stdout.splitlines()]
    assert len(lines) == len(list(replay.records(data_dir, tables=["mackinac_print"])))
    assert {x["table"] for x in lines} == {"mackinac_print"} and "price" in lines[0]
    r = subprocess.run([*RECORDER, "replay", "cat", "--data-dir", str(data_dir), "--raw",
                        "--venue", "mackinac"], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert [orjson.loads(x)["frame"] for x in r.stdout.splitlines()] == ledgers[0] + ledgers[1]


def test_examples_run_against_a_recording(recorded: tuple) -> None:
    """Both examples work: the in-process strategy over the lake, the plain venue client
    against the native replay of the same recording."""
    import sys

    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import inprocess_strategy
        import native_client
    finally:
        sys.path.pop(0)
    from recorder.replay import serve_native

    data_dir, _, _ = recorded
    out = asyncio.run(inprocess_strategy.run(data_dir, "hl:ETH"))
    con = connect(data_dir, views={"mackinac_quote"})
    n = con.sql("SELECT count(*) FROM mackinac_quote WHERE exchange = 'hl' AND symbol = 'ETH' "
                "AND len(bids) > 0 AND len(asks) > 0").fetchall()[0][0]
    assert out["quotes"] == n and out["gaps"] >= 1 and out["signals"] >= 1

    async def native() -> dict[str, int]:
        urls: dict[str, str] = {}
        ready = asyncio.Event()
        task = asyncio.create_task(serve_native(
            data_dir, ["mackinac"], speed=20.0, linger=0.2,
            on_ready=lambda u: (urls.update(u), ready.set())))
        await ready.wait()
        counts = await native_client.run(urls["mackinac"], "hl:ETH", seconds=2.0)
        await task
        return counts

    counts = asyncio.run(native())
    n_frames = con.sql("SELECT count(DISTINCT recv_seq) FROM mackinac_quote WHERE exchange = "
                       "'hl' AND symbol = 'ETH'").fetchall()[0][0]
    assert counts.get("authed") == 1 and counts.get("subscribed") == 1
    assert 0 < counts.get("quote", 0) <= n_frames


def test_several_venues_replay_on_one_shared_clock(tmp_path: Path) -> None:
    """Two venues recorded in one run (an A/B pair of Mackinac sections) are served together:
    every recorded frame of both is published once, merged in recorded time order, and each
    venue's section name finds its adapter through the run manifest."""
    from recorder.config import Config, VenueConfig
    from recorder.replay import serve_native

    data_dir = tmp_path / "data"

    async def record_two() -> str:
        server = MackinacServer(seed=8, rate=3.0)
        await server.start()
        base = config(data_dir, server.url, ["hl:ETH"], history=False)
        b = VenueConfig("mackinac_b", "mackinac", url=server.url,
                        transport=base.venues[0].transport,
                        options={"symbols": ["uni:WETH/USDC"], "history": False})
        cfg = Config(base.path, base.recorder, (base.venues[0], b))

        sent = Tally(server, frame_types)

        async def scenario(stop: asyncio.Event) -> None:
            await server.until(lambda: sent()[(1, "quote")] and sent()[(2, "quote")], 30,
                               "quotes for both venues")

        # (two venues: the journal of the first alone is not every frame sent)
        return (await run_scenario(cfg, server, scenario, journal=False,
                                   exit_code=None)).run_id

    asyncio.run(record_two())
    published: list[tuple[str, bytes]] = []

    async def serve() -> dict[str, int]:
        from recorder.venues.mackinac.server import MackinacServer as Server

        original = Server.publish

        def spy(self: Server, data: bytes, conn_id: str | None = None) -> int:
            published.append((self.venue_label, data))
            return original(self, data, conn_id)

        def label(urls: dict[str, str]) -> None:
            pass

        Server.publish = spy  # type: ignore[method-assign]
        try:
            servers: list[Server] = []
            orig_init = Server.__init__

            def init(self: Server, *a: object, **k: object) -> None:
                orig_init(self, *a, **k)  # type: ignore[arg-type]
                self.venue_label = ("mackinac", "mackinac_b")[len(servers)]
                servers.append(self)

            Server.__init__ = init  # type: ignore[method-assign]
            try:
                return await serve_native(data_dir, ["mackinac", "mackinac_b"], speed=0,
                                          wait_for_subscriber=False, linger=0, on_ready=label)
            finally:
                Server.__init__ = orig_init  # type: ignore[method-assign]
        finally:
            Server.publish = original  # type: ignore[method-assign]

    counts = asyncio.run(serve())
    expected = sorted(
        ((r.ts_recv, i, r.seq), v, r.data) for i, v in enumerate(("mackinac", "mackinac_b"))
        for r in replay.raw_frames(data_dir, v))
    assert counts == {"mackinac": sum(1 for e in expected if e[1] == "mackinac"),
                      "mackinac_b": sum(1 for e in expected if e[1] == "mackinac_b")}
    assert published == [(v, d) for _, v, d in expected]
    assert {v for v, _ in published} == {"mackinac", "mackinac_b"}
