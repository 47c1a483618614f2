"""Native replay of Diffusal: record the simulator (five WS paths + REST), serve the recording
with the venue's own protocol (``serve_native``), record that replay with the recorder itself,
and compare the venue's frames per connection."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import orjson
import pytest

from recorder import journal as jr
from recorder.replay import serve_native
from recorder.sim import Recording
from recorder.venues.diffusal.server import SIM_TOKEN, DiffusalServer, RecordedRest, replay_path
from tests.e2e import Tally, run_scenario, run_with
from tests.venues.diffusal.e2e import config, labels
from tests.venues.replaying import record_native_replay

TOKEN_ENV = "DIFFUSAL_REPLAY_TOKEN"
SIM = {"seed": 7, "rate": 2.0, "heartbeat": 0.4, "series_every": 12, "settle_every": 25,
       "rfq_every": 6, "auction_ms": 700}


def _own_answer(data: bytes) -> bool:
    """Frames the replay server generates itself instead of replaying: control replies
    ({"result"} / {"error"}), the AUTH reply ({"status":"authenticated"}), and the socket
    greetings ({"type":"connected"} on /ws/rfq/stream and /ws/rfq/quotes, {"type":
    "auth_success"} on /ws/rfq/mm), which carry the replay's own clock."""
    msg = orjson.loads(data)
    if "stream" in msg and "data" in msg:
        return False
    return ("result" in msg or "error" in msg or msg.get("status") == "authenticated"
            or msg.get("type") in ("connected", "auth_success"))


def _per_conn(data_dir: Path, run: str) -> tuple[dict[str, list[bytes]], int]:
    """The venue's inbound frames per connection, in order, without the server's own answers;
    and how many inbound frames there were in all."""
    out: dict[str, list[bytes]] = {}
    total = 0
    for r in jr.read_run(data_dir, "diffusal", run):
        if r.kind == jr.KIND_IN:
            total += 1
            if not _own_answer(r.data):
                out.setdefault(r.conn, []).append(r.data)
    return out, total


def _opts(extra: dict | None = None) -> dict:
    return {"token_env": TOKEN_ENV, "mm": True, **(extra or {})}


def test_native_replay_round_trip_gives_the_same_frames_per_connection(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, SIM_TOKEN)
    first, second = tmp_path / "a" / "data", tmp_path / "b" / "data"

    async def record_sim() -> str:
        server = DiffusalServer(**SIM)
        await server.start()
        cfg = config(first, server.url, **_opts())

        seen = Tally(server, labels)

        def every_socket() -> bool:  # the five paths, a quotes socket, public data
            return all(server.conns(p) for p in ("/ws/public", "/ws/private", "/ws/rfq/stream",
                                                 "/ws/rfq/mm", "/ws/rfq/quotes")) \
                and len(server.conns("/ws/public")) >= 2 and seen()["@depth"] > 100

        def resynced(symbol: str) -> bool:  # and what else the test looks for
            return sum(f"/orderbook/{symbol}" in r.path for r in server.rest_ledger) > 1 \
                and all(seen()[k] for k in ("heartbeat", "quote", "@markets")) \
                and len(server.ledger) > 600

        def subscribed(symbol: str) -> bool:
            return any(f'"{symbol.lower()}@depth"' in t for _, t in server.received)

        async def scenario(stop: asyncio.Event) -> None:
            await server.until(every_socket, 30, "every socket and public data")
            for attempt in range(3):
                # a depth gap (the client resyncs over REST) on the newest subscribed series:
                # the oldest settle first, and a settled series is never resynced
                live = [s.symbol for s in server.synth.live() if subscribed(s.symbol)]
                gapped = server.gap(live[-1], count=2)
                try:
                    await server.until(lambda g=gapped: resynced(g), 10, "the resync")
                    break
                except TimeoutError:
                    if attempt == 2:
                        raise

        # in-flight frames and resyncs settle: every frame sent is journaled
        return (await run_scenario(cfg, server, scenario)).run_id

    run_a = asyncio.run(record_sim())
    run_b, published = record_native_replay(
        first, "diffusal", lambda url: config(second, url, **_opts()), speed=1.0, linger=0.3)
    a, total_a = _per_conn(first, run_a)
    b, _ = _per_conn(second, run_b)
    assert published["diffusal"] == total_a  # every inbound frame went through publish()
    # the five paths, two public sockets, a quotes socket per account RFQ were recorded
    assert {"public-0", "public-1", "private", "rfq-stream", "rfq-mm"} <= set(a)
    assert any(c.startswith("rfq-quotes-") for c in a)
    assert sum(map(len, a.values())) > 500
    for conn in sorted(set(a) | set(b)):
        assert b.get(conn, []) == a.get(conn, []), conn
    # what the data covered: snapshots and diffs, grouped streams, private snapshots, RFQ
    kinds = Counter()
    for frames in a.values():
        for f in frames:
            m = orjson.loads(f)
            d = m.get("data", m)
            kinds[(m.get("stream", "").rpartition("@")[2] or m.get("stream") or "rfq",
                   d.get("type"))] += 1
    assert kinds[("depth", "snapshot")] and kinds[("depth", "diff")] and kinds[("rfq", "quote")]
    assert kinds[("rfq", "heartbeat")] and kinds[("markets", "series_created")]
    # REST came from the recording: every body the replaying client got is a recorded body for
    # that path, hydration exactly as recorded. (The number of depth resyncs may differ: a
    # grouped stream's diff and a new instrument's snapshot come on different sockets, whose
    # interleaving follows the replaying client's own timing.)
    def rest(data_dir: Path, run: str) -> list[tuple[str, int, bytes]]:
        out = []
        for r in jr.read_run(data_dir, "diffusal", run):
            if r.kind == jr.KIND_REST:
                head, _, body = r.data.partition(b"\n")
                h = orjson.loads(head)
                out.append((h["tag"], h["status"], body))
        return out

    rest_a, rest_b = rest(first, run_a), rest(second, run_b)
    assert set(rest_b) <= set(rest_a)
    hydration = ("pairs", "markets", "contracts", "active-auctions")
    assert [x for x in rest_b if x[0] in hydration] == [x for x in rest_a if x[0] in hydration]
    resyncs = Counter(t for t, _, _ in rest_a if t.startswith("orderbook:"))
    assert any(n > 1 for n in resyncs.values())  # the gap's resync was in the recording
    assert Counter(t for t, _, _ in rest_b if t.startswith("orderbook:")).keys() == resyncs.keys()


def test_publish_routes_by_path_and_subscription_and_holds_snapshots(tmp_path: Path) -> None:
    """Unit level: conn_id picks the path, the envelope's stream the subscription; control
    frames and greetings are not replayed; a snapshot nobody was subscribed to waits for the
    next subscriber's ack."""
    async def main() -> None:
        import aiohttp

        srv = DiffusalServer(replay=True)
        await srv.start()
        try:
            async with aiohttp.ClientSession() as http:
                pub = await http.ws_connect(f"{srv.url}/ws/public")
                await pub.send_str('{"method":"SUBSCRIBE","params":["btc@trade"],"id":1}')
                assert orjson.loads((await pub.receive()).data) == {"result": None, "id": 1}
                assert srv.subscribed()
                trade = b'{"stream":"btc@trade","data":{"id":"t1","symbol":"BTC-1-C-2"}}'
                snap = b'{"stream":"eth@depth","data":{"type":"snapshot","symbol":"E"}}'
                assert srv.publish(trade, "public-3") == 1
                assert srv.publish(trade, "private") == 0  # not subscribed on /ws/private
                assert srv.publish(b'{"result":null,"id":9}', "public-0") == 0
                assert srv.publish(b'{"type":"connected","timestamp":1}', "rfq-stream") == 0
                assert srv.publish(snap, "public-0") == 0  # held
                assert (await pub.receive()).data.encode() == trade
                await pub.send_str('{"method":"SUBSCRIBE","params":["eth@depth"],"id":2}')
                assert orjson.loads((await pub.receive()).data) == {"result": None, "id": 2}
                assert (await pub.receive()).data.encode() == snap
                # /ws/rfq/quotes: frames published before the socket opens follow its greeting
                quote = b'{"type":"quote","requestId":"r1","mmm":"0x1"}'
                assert srv.publish(quote, "rfq-quotes-r1") == 0
                q = await http.ws_connect(f"{srv.url}/ws/rfq/quotes?requestId=r1",
                                          headers={"Authorization": f"Bearer {SIM_TOKEN}"})
                assert orjson.loads((await q.receive()).data)["type"] == "connected"
                assert (await q.receive()).data.encode() == quote
                assert srv.publish(b'{"type":"heartbeat","timestamp":5}', "rfq-quotes-r1") == 1
                assert (await q.receive()).data == '{"type":"heartbeat","timestamp":5}'
                # a heartbeat of a socket not open yet waits too, in its place among the
                # quotes (the venue's timer can fire right after the recorded connect)
                beat = b'{"type":"heartbeat","timestamp":6}'
                quote2 = b'{"type":"quote","requestId":"r2","mmm":"0x2"}'
                assert srv.publish(beat, "rfq-quotes-r2") == 0
                assert srv.publish(quote2, "rfq-quotes-r2") == 0
                q2 = await http.ws_connect(f"{srv.url}/ws/rfq/quotes?requestId=r2",
                                           headers={"Authorization": f"Bearer {SIM_TOKEN}"})
                assert orjson.loads((await q2.receive()).data)["type"] == "connected"
                assert [(await q2.receive(timeout=30)).data.encode() for _ in range(2)] == [beat, quote2]
                await q2.close()
                await srv.until(lambda: len(srv.sessions("/ws/rfq/quotes")) == 1, 30,
                                "r2's socket closed")
                # once its socket has been open, a heartbeat nobody takes is dropped
                assert srv.publish(beat, "rfq-quotes-r2") == 0
                assert ("/ws/rfq/quotes", "r2") not in srv._held
                await pub.close()
                await q.close()
        finally:
            await srv.stop()

    asyncio.run(asyncio.wait_for(main(), 60))  # a frame that never comes fails, not hangs
    assert replay_path("public-12") == ("/ws/public", None)
    assert replay_path("rfq-quotes-ab-cd") == ("/ws/rfq/quotes", "ab-cd")
    assert replay_path("nope") == (None, None)


def test_recorded_rest_serves_the_kth_response_per_path(tmp_path: Path) -> None:
    w = jr.JournalWriter(tmp_path, "diffusal", "run1")
    for i, (url, status) in enumerate([("http://h/api/markets", 200),
                                       ("http://h/api/markets/orderbook/X", 200),
                                       ("http://h/api/markets/orderbook/X", 429),
                                       ("http://h/api/rfq/active-auctions", 0)]):
        head = orjson.dumps({"tag": "t", "status": status, "url": url})
        w.append(jr.KIND_REST, "rest", 1_000 + i, head + b"\n" + f"[{i}]".encode())
    w.close()
    rest = RecordedRest(Recording(tmp_path, "diffusal"))
    assert rest.next("/api/markets") == (200, "[0]")
    assert rest.next("/api/markets") == (200, "[0]")  # the last one, once they run out
    assert rest.next("/api/markets/orderbook/X") == (200, "[1]")
    assert rest.next("/api/markets/orderbook/X") == (429, "[2]")
    assert rest.next("/api/rfq/active-auctions") is None  # transport failures are left out


def test_a_venue_recorded_under_another_section_name_replays_its_rest_answers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``[venues.dx] adapter = "diffusal"`` journals under ``dx``: the replay command hands
    the replay server that journal, so it answers REST with what ``dx`` recorded (it used to
    look for a ``diffusal`` folder and fall back to its idle synthetic state, silently)."""
    import aiohttp

    from recorder.config import Config, RecorderSettings, TransportSettings, VenueConfig

    monkeypatch.setenv(TOKEN_ENV, SIM_TOKEN)
    data_dir = tmp_path / "data"

    async def record_sim() -> None:
        server = DiffusalServer(seed=7, rate=2.0, series_every=2)
        await server.start()
        listed = len(server.synth.series)  # let the market list a series an idle one lacks
        await server.until(lambda: len(server.synth.series) > listed, what="a new series")
        cfg = Config(Path("test.toml"), RecorderSettings(
            data_dir=data_dir, lake_flush_seconds=0.5, journal_flush_ms=50), (VenueConfig(
                "dx", "diffusal", url=server.url, transport=TransportSettings(),
                options=_opts()),))

        async def scenario(stop: asyncio.Event) -> None:
            await server.until(lambda: {"/api/markets", "/api/markets/pairs"} <= {
                r.path for r in server.rest_ledger}, what="the REST hydration")

        result, _ = await run_with(cfg, scenario)
        await server.stop()
        assert result.exit_code == 0, result.reason

    async def ask_replay() -> tuple[bytes, bytes]:
        stop = asyncio.Event()
        urls: dict[str, str] = {}
        ready = asyncio.Event()
        serving = asyncio.create_task(serve_native(
            data_dir, ["dx"], stop=stop, on_ready=lambda u: (urls.update(u), ready.set())))
        await ready.wait()
        base = urls["dx"].replace("ws://", "http://")
        synthetic = DiffusalServer(seed=1)  # what an idle replay server would answer
        await synthetic.start()
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{base}/api/markets") as r:
                    replayed = await r.read()
                async with http.get(f"{synthetic.base_url('http')}/api/markets") as r:
                    idle = await r.read()
        finally:
            stop.set()
            await serving
            await synthetic.stop()
        return replayed, idle

    asyncio.run(record_sim())
    assert (data_dir / "journal" / "dx").is_dir() and not (data_dir / "journal" /
                                                           "diffusal").exists()
    recorded = [rest.body for _, rest in Recording(data_dir, "dx").rest()
                if rest.url.endswith("/api/markets")]
    replayed, idle = asyncio.run(ask_replay())
    assert recorded and replayed == recorded[0]
    assert replayed != idle  # the answer can only have come from the recording
