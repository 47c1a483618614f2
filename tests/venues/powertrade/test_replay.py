"""Native replay of Power.Trade: record a simulator run (Market Proxy, Feeds, REST summary),
serve it with :func:`recorder.replay.serve_native`, record the replay with the recorder itself,
and compare the venue's frames per connection."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from recorder import journal as jr
from recorder.venues.powertrade.server import SUMMARY_PATH, PowerTradeServer
from tests.e2e import run_scenario
from tests.venues.powertrade.e2e import config
from tests.venues.replaying import record_native_replay

KEY_ENV, SECRET_ENV = "PT_REPLAY_KEY", "PT_REPLAY_SECRET"
SYMBOLS = ["BTC-USD-PERPETUAL", "PTF-USD", "BTC-20221230-17000P"]
# The replay server's own answers, not recorded frames: every Market Proxy message with a
# user_tag (command_response to authenticate/subscribe/register_for_rfqs, and the answers to
# entities_and_rules_request, positions, balances, trade_history_request) and the heartbeat.
OWN = ("command_response", "heartbeat")


#: what the recording must hold: book data, RFQs, the account's own orders, and the answers
#: to the requests the replay server serves from the recording
WANTED = ("snapshot", "order_added", "order_deleted", "trade", "order_accepted",
          "entities_and_rules_response", "positions_response", "balances_response",
          "trade_history_response")


def options(proxy_url: str) -> dict[str, Any]:
    base = proxy_url.replace("ws://", "").rstrip("/")
    return {"api_key_env": KEY_ENV, "api_secret_env": SECRET_ENV, "symbols": SYMBOLS,
            "subscribe_types": ["snap_with_deltas", "snap_full_updates"],
            "intervals": [0, 500], "feeds_url": f"ws://{base}/v1/feeds",
            "summary_url": f"http://{base}{SUMMARY_PATH}"}


def is_own(frame: bytes) -> bool:
    (name, body), = orjson.loads(frame).items()
    return name in OWN or "user_tag" in body


def frames(data_dir: Path, run: str, conn: str, own: bool = False) -> list[bytes]:
    return [r.data for r in jr.read_run(data_dir, "powertrade", run)
            if r.kind == jr.KIND_IN and r.conn == conn and is_own(r.data) is own]


def rest_bodies(data_dir: Path, run: str) -> list[bytes]:
    return [r.data.partition(b"\n")[2] for r in jr.read_run(data_dir, "powertrade", run)
            if r.kind == jr.KIND_REST]


def test_native_replay_round_trip_gives_the_same_frames_per_connection(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "a" / "data", tmp_path / "b" / "data"
    creds: dict[str, str] = {}

    async def record_sim() -> str:
        server = PowerTradeServer(seed=11, rate=3.0, rfq_rate=10.0, account_rate=15.0,
                                  heartbeat=0.4)
        await server.start()
        key, pem = server.credentials()
        creds[key] = pem
        monkeypatch.setenv(KEY_ENV, key)
        monkeypatch.setenv(SECRET_ENV, pem)

        def recorded_enough() -> bool:
            got = {(server.kinds[e.conn], next(iter(orjson.loads(e.text))))
                   for e in server.ledger}
            rfq = [e.text for e in server.ledger if '"market_id":"none"' in e.text]
            return {("proxy", n) for n in WANTED} <= got and len(server.ledger_for(
                server.conns("feeds")[0])) > 40 and len(server.ledger_for(
                    server.conns("proxy")[0])) > 40 and any('"snapshot"' in t for t in rfq) \
                and any('"order_added"' in t for t in rfq)

        async def scenario(stop: asyncio.Event) -> None:
            await server.until(lambda: server.conns("feeds") and recorded_enough(), 30,
                               "every kind of frame, and some")

        cfg = config(first, server.url, options(server.url))
        return (await run_scenario(cfg, server, scenario)).run_id

    run_a = asyncio.run(record_sim())
    run_b, published = record_native_replay(
        first, "powertrade", lambda url: config(second, url, options(url)), speed=1.0,
        linger=0.5, server_options={"powertrade": {"key_pems": creds}})
    recorded_in = [r for r in jr.read_run(first, "powertrade", run_a) if r.kind == jr.KIND_IN]
    assert published["powertrade"] == len(recorded_in)
    for conn in ("proxy", "feeds"):
        a, b = frames(first, run_a, conn), frames(second, run_b, conn)
        assert len(a) > 30, conn
        assert b == a, conn
    names = {next(iter(orjson.loads(f))) for f in frames(second, run_b, "proxy")}
    assert {"snapshot", "order_added", "order_deleted", "trade", "order_accepted"} <= names
    rfq = [f for f in frames(second, run_b, "proxy") if b'"market_id":"none"' in f]
    assert any(b'"snapshot"' in f for f in rfq) and any(b'"order_added"' in f for f in rfq)
    # The replay server's own answers: the recorded bodies under the replaying client's tags.
    own_a = {next(iter(orjson.loads(f))): orjson.loads(f)
             for f in frames(first, run_a, "proxy", own=True)}
    own_b = {next(iter(orjson.loads(f))): orjson.loads(f)
             for f in frames(second, run_b, "proxy", own=True)}
    for name in ("entities_and_rules_response", "positions_response", "balances_response",
                 "trade_history_response"):
        assert own_b[name] == own_a[name], name
    assert own_b["command_response"]["command_response"]["error_code"] == "0"
    assert rest_bodies(second, run_b) == rest_bodies(first, run_a)[:1]


def test_replay_routing_follows_the_subscribe_grammar() -> None:
    """Which sessions a recorded frame goes to: by entity and subscription type, RFQ
    registration, Feeds type; the server's own answers and heartbeats go nowhere."""
    from recorder.venues.powertrade.server import _Conn

    srv = PowerTradeServer(replay=True, reorder_ms=0)
    deltas, full, once, rfq, anon = (_Conn(i, "proxy", None, key="k") for i in range(1, 6))
    anon.key = None
    feeds = _Conn(6, "feeds", None, feed_types={"top_of_book"})
    deltas.rsubs[("symbol", "PTF-USD")] = ["snap_with_deltas"]
    full.rsubs[("tradeable_entity_id", "1")] = ["snap_full_updates"]
    once.rsubs[("symbol", "PTF-USD")] = ["snap_only"]
    rfq.rfqs = True
    for c in (deltas, full, once, rfq, anon, feeds):
        srv._open[c.no] = c

    def to(name: str, conn: str = "proxy", **body: str) -> list[int]:
        return [c.no for c in srv.replay_targets(name, body, conn)]

    book = {"market_id": "0", "symbol": "PTF-USD", "tradeable_entity_id": "1"}
    assert to("snapshot", **book) == [1, 2, 3]
    assert to("snapshot", **book) == [1, 2]  # snap_only took its one snapshot
    assert to("order_added", **book) == [1] and to("trade", **book) == [1]
    assert to("order_added", **{**book, "symbol": "X", "tradeable_entity_id": "9"}) == []
    assert to("order_added", **{**book, "market_id": "none"}) == [4]
    assert to("snapshot", **{**book, "market_id": "none"}) == [4]
    assert to("order_accepted", client_order_id="web-1") == [1, 2, 3, 4]
    for own in (("command_response", {"error_code": "0", "user_tag": "t"}),
                ("heartbeat", {"server_utc_timestamp": "1"}),
                ("positions_response", {"user_tag": "p", "positions": []})):
        assert srv.replay_targets(own[0], own[1], "proxy") == []
    assert to("top_of_book", "feeds", tradeable_entity_id="1") == [6]
    assert to("reference_price", "feeds", tradeable_entity_id="1") == []
