"""The Diffusal simulator speaks the documented protocol: a raw aiohttp client over loopback."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson

from recorder.venues.diffusal.server import SIM_API_KEY, SIM_TOKEN, DiffusalServer
from recorder.venues.diffusal.synth import ACCOUNT, DiffusalSynth
from tests.conftest import RECORDER, ROOT

Ws = aiohttp.ClientWebSocketResponse


@asynccontextmanager
async def sim(**opts: Any) -> AsyncIterator[tuple[DiffusalServer, aiohttp.ClientSession]]:
    server = DiffusalServer(**{"tick": 0.02, "rate": 3.0, **opts})
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            yield server, http
    finally:
        await server.stop()


async def recv(ws: Ws, timeout: float = 2.0) -> dict[str, Any]:
    msg = await ws.receive(timeout=timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return orjson.loads(msg.data)


async def until(ws: Ws, pred: Callable[[dict[str, Any]], bool], timeout: float = 3.0,
                ) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while True:
        m = await recv(ws, max(0.05, end - time.monotonic()))
        if pred(m):
            return m


async def call(ws: Ws, msg: dict[str, Any] | str) -> dict[str, Any]:
    """Send a control message; return its reply (data frames in between are skipped)."""
    await ws.send_str(msg if isinstance(msg, str) else orjson.dumps(msg).decode())
    return await until(ws, lambda m: "result" in m or "error" in m or "status" in m)


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(coro())


def test_public_control_plane_strict_frames_and_depth_snapshot_then_diffs() -> None:
    async def main() -> None:
        async with sim() as (server, http):
            ws = await http.ws_connect(server.url + "/ws/public")
            sym = server.synth.live()[0].symbol
            key = sym.lower()
            assert await call(ws, {"method": "SUBSCRIBE", "params": [f"{key}@depth"],
                                   "id": 1}) == {"result": None, "id": 1}
            snap = await recv(ws)
            assert snap["stream"] == f"{key}@depth" and snap["data"]["type"] == "snapshot"
            assert snap["data"]["symbol"] == sym  # upper case in the payload
            seq = snap["data"]["sequence"]
            for _ in range(3):
                d = await until(ws, lambda m: m.get("stream") == f"{key}@depth")
                assert d["data"]["type"] == "diff" and d["data"]["sequence"] == seq + 1
                assert len(str(d["data"]["timestamp"])) == 13  # ms
                seq += 1
            assert await call(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 2}) == {
                "result": [f"{key}@depth"], "id": 2}
            assert await call(ws, {"method": "UNSUBSCRIBE", "params": [f"{key}@depth"],
                                   "id": 3}) == {"result": None, "id": 3}
            assert await call(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 4}) == {
                "result": [], "id": 4}
            # strict: unknown properties, bad ids, unknown methods and channels
            bad = await call(ws, {"method": "SUBSCRIBE", "params": ["global@rfq"], "id": 5,
                                  "extra": 1})
            assert bad["error"]["code"] == 4000 and "extra" in bad["error"]["msg"]
            assert (await call(ws, {"method": "SUBSCRIBE", "params": ["global@rfq"],
                                    "id": "x"}))["error"]["code"] == 4000
            assert (await call(ws, {"method": "AUTH", "params": {"token": SIM_TOKEN},
                                    "id": 6}))["error"]["code"] == 4000
            assert (await call(ws, "{nope"))["error"]["code"] == 4000
            unknown = await call(ws, {"method": "SUBSCRIBE", "params": ["global@rfq",
                                                                        "doge@depth"], "id": 7})
            assert unknown == {"error": {"code": 4004, "msg": "unknown channel: doge@depth"},
                               "id": 7}
            # REST snapshot and stream share the sequence
            async with http.get(server.url.replace("ws://", "http://")
                                + f"/api/markets/orderbook/{sym}") as r:
                body = await r.json()
            assert body["symbol"] == sym and body["sequence"] >= seq and "type" not in body
            await ws.close()
            # the ledger holds exactly what went out, in order
            assert server.ledger_for(1)[0] == '{"result":null,"id":1}'
            assert orjson.loads(server.ledger_for(1)[1]) == snap
    run(main)


def test_caps_answer_4029_and_keep_the_connection() -> None:
    async def main() -> None:
        async with sim(max_subs=3, msgs_per_min=6) as (server, http):
            ws = await http.ws_connect(server.url + "/ws/public")
            assert (await call(ws, {"method": "SUBSCRIBE", "params": [
                "global@markets", "global@rfq"], "id": 1}))["result"] is None
            over = await call(ws, {"method": "SUBSCRIBE", "params": ["btc-usdt@index",
                                                                     "eth-usdt@index"], "id": 2})
            assert over["error"]["code"] == 4029 and "subscription" in over["error"]["msg"]
            # existing subscriptions unaffected
            assert (await call(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 3}))["result"] == [
                "global@markets", "global@rfq"]
            for i in range(3):
                await call(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 4 + i})
            limited = await call(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 9})
            assert limited == {"error": {"code": 4029, "msg": "rate limit exceeded: 300 "
                                         "messages/min"}, "id": 9}
            assert not ws.closed
            await ws.close()
    run(main)


def test_connections_over_the_minute_cap_are_closed_silently_and_4029_closes() -> None:
    async def main() -> None:
        async with sim(conns_per_min=2) as (server, http):
            a = await http.ws_connect(server.url + "/ws/rfq/stream")
            assert (await recv(a))["type"] == "connected"
            b = await http.ws_connect(server.url + "/ws/public")
            c = await http.ws_connect(server.url + "/ws/public")
            msg = await c.receive(timeout=2)
            assert msg.type == aiohttp.WSMsgType.CLOSE and msg.extra == ""
            assert [p for _, p in server.refused] == ["/ws/public"]
            server.close_4029("/ws/public")
            msg = await b.receive(timeout=2)
            assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4029
            await a.close()
    run(main)


def test_grouped_streams_duplicate_instrument_streams_with_documented_units() -> None:
    async def main() -> None:
        async with sim() as (server, http):
            ws = await http.ws_connect(server.url + "/ws/public")
            s = server.synth.live()[0]
            key = s.symbol.lower()
            await call(ws, {"method": "SUBSCRIBE", "params": [
                f"{key}@trade", "btc@trade", f"{key}@ticker", "btc-usdt@index"], "id": 1})
            seen: dict[str, list[dict[str, Any]]] = {}
            end = time.monotonic() + 4
            while time.monotonic() < end and not (
                    seen.get(f"{key}@trade") and seen.get(f"{key}@ticker")
                    and seen.get("btc-usdt@index")):
                m = await recv(ws)
                seen.setdefault(m["stream"], []).append(m["data"])
            inst = seen[f"{key}@trade"]
            grouped = [d for d in seen["btc@trade"] if d["symbol"] == s.symbol]
            assert inst and grouped[: len(inst)] == inst[: len(grouped)]
            assert {d["symbol"].split("-")[0] for d in seen["btc@trade"]} == {"BTC"}
            t = inst[0]
            assert len(str(t["timestamp"])) == 10 and isinstance(t["price"], str)  # seconds
            assert len(str(seen[f"{key}@ticker"][0]["lastTradeAt"])) in (1, 10)
            idx = seen["btc-usdt@index"][0]
            assert set(idx) == {"spotPrice", "volatility", "timestamp"}
            assert len(str(idx["timestamp"])) == 10
            await ws.close()
    run(main)


def test_private_auth_both_shapes_atomic_subscribe_and_snapshots() -> None:
    async def main() -> None:
        for reply in ("status", "result"):
            async with sim(auth_reply=reply) as (server, http):
                ws = await http.ws_connect(server.url + "/ws/private")
                early = await call(ws, {"method": "SUBSCRIBE", "params": ["order"], "id": 1})
                assert early["error"]["code"] == 4001
                wrong = await call(ws, {"method": "AUTH", "params": {"token": "x"}, "id": 2})
                assert wrong == {"error": {"code": 4001, "msg": "invalid or expired token"},
                                 "id": 2}
                assert not ws.closed
                both = await call(ws, {"method": "AUTH", "params": {"token": SIM_TOKEN},
                                       "authorization": f"Bearer {SIM_TOKEN}", "id": 3})
                assert both["error"]["code"] == 4000
                ok = await call(ws, {"method": "AUTH", "authorization": f"Bearer {SIM_TOKEN}",
                                     "id": 4})
                if reply == "status":
                    assert ok == {"status": "authenticated", "id": 4}
                else:
                    assert ok["id"] == 4 and ok["result"]["address"] == ACCOUNT
                # atomic: one public key rejects the whole request
                bad = await call(ws, {"method": "SUBSCRIBE", "params": ["order", "BTC@depth"],
                                      "id": 5})
                assert bad["error"] == {"code": 4004,
                                        "msg": "unknown private channel: BTC@depth"}
                assert (await call(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 6}))[
                    "result"] == []
                chans = ["position", "order", "fill", "collateral", "rfq", "liquidation",
                         "portfolio"]
                assert await call(ws, {"method": "SUBSCRIBE", "params": chans, "id": 7}) == {
                    "result": None, "id": 7}
                snaps = [await recv(ws) for _ in chans]
                assert [s["stream"] for s in snaps] == chans
                assert all(s["data"]["type"] == "snapshot" for s in snaps)
                by = {s["stream"]: s["data"]["items"] for s in snaps}
                assert by["collateral"] and by["portfolio"] and by["order"]
                await ws.close()
        # the first shape, and an API key
        async with sim() as (server, http):
            ws = await http.ws_connect(server.url + "/ws/private")
            assert await call(ws, {"method": "AUTH", "params": {"token": SIM_API_KEY},
                                   "id": 1}) == {"status": "authenticated", "id": 1}
            await ws.close()
    run(main)


def test_rfq_sockets_lifecycle_and_handshake_auth() -> None:
    async def main() -> None:
        async with sim(heartbeat=0.2, rfq_every=3, auction_ms=400) as (server, http):
            base = server.url
            stream = await http.ws_connect(base + "/ws/rfq/stream")
            assert (await recv(stream))["type"] == "connected"
            snap = await recv(stream)
            assert snap["type"] == "snapshot" and isinstance(snap["auctions"], list)
            req = await until(stream, lambda m: m["type"] == "rfq_request")
            assert {"requestId", "taker", "pairId", "strike", "timestamp"} <= set(req)
            assert len(req["strike"]) > 18 and int(req["strike"]) % 10**18 == 0
            await until(stream, lambda m: m["type"] == "heartbeat")
            res = await until(stream, lambda m: m["type"] == "auction_resolved"
                              and m["requestId"] == req["requestId"])
            assert res["status"] in ("filled", "expired")
            # the quotes socket: bearer and requestId at the handshake
            mine = await until(stream, lambda m: m["type"] == "rfq_request"
                               and m["taker"] == ACCOUNT)
            rid = mine["requestId"]
            for headers, query, status in (({}, rid, 401), (
                    {"Authorization": f"Bearer {SIM_TOKEN}"}, "nope", 404)):
                try:
                    await http.ws_connect(f"{base}/ws/rfq/quotes?requestId={query}",
                                          headers=headers)
                    raise AssertionError("handshake accepted")
                except aiohttp.WSServerHandshakeError as e:
                    assert e.status == status
            q = await http.ws_connect(f"{base}/ws/rfq/quotes?requestId={rid}",
                                      headers={"Authorization": f"Bearer {SIM_TOKEN}"})
            hello = await recv(q)
            assert (hello["type"], hello["requestId"], len(str(hello["timestamp"]))) == (
                "connected", rid, 13)
            end = await until(q, lambda m: m["type"] == "auction_resolved")
            assert end["requestId"] == rid
            # heartbeats go on on the other RFQ sockets, never on this one once its auction is
            # resolved (a client closes it then: one crossing the close would go unread)
            [qs] = [c for c in server.sessions("/ws/rfq/quotes") if c.request_id == rid]
            [ss] = server.sessions("/ws/rfq/stream")
            n0 = len(server.ledger)
            await server.until(lambda: sum(1 for e in server.ledger[n0:] if e.conn == ss.no
                                           and '"heartbeat"' in e.text) >= 2, 10,
                               "two more heartbeats on the stream socket")
            mine_sent = [e.text for e in server.ledger if e.conn == qs.no]
            after = mine_sent[[i for i, t in enumerate(mine_sent) if "auction_resolved" in t][0]:]
            assert not [t for t in after if '"heartbeat"' in t], after
            async with http.get(base.replace("ws://", "http://") + f"/api/rfq/quotes/{rid}",
                                headers={"Authorization": f"Bearer {SIM_TOKEN}"}) as r:
                assert r.status == 200 and all(x["requestId"] == rid for x in await r.json())
            async with http.get(base.replace("ws://", "http://") + f"/api/rfq/quotes/{rid}") \
                    as r:
                assert r.status == 401
            # the MM socket: API key at the handshake
            mm = await http.ws_connect(base + "/ws/rfq/mm", headers={"X-API-Key": SIM_API_KEY})
            assert (await recv(mm))["type"] == "auth_success"
            assert (await until(mm, lambda m: m["type"] == "rfq_request"))["requestId"]
            for ws in (stream, q, mm):
                await ws.close()
    run(main)


def test_markets_events_gap_injection_and_protocol_pings() -> None:
    async def main() -> None:
        async with sim(series_every=5, settle_every=8, ping=0.2) as (server, http):
            ws = await http.ws_connect(server.url + "/ws/public", autoping=False)
            s = server.synth.live()[-1]
            key = s.symbol.lower()
            await ws.send_str(orjson.dumps({"method": "SUBSCRIBE", "params": [
                "global@markets", f"{key}@depth"], "id": 1}).decode())
            kinds: set[str] = set()
            pinged = False
            seqs: list[int] = []
            end = time.monotonic() + 4
            while time.monotonic() < end and not (pinged and len(kinds) == 2 and
                                                  len(seqs) > 3):
                msg = await ws.receive(timeout=2)
                if msg.type == aiohttp.WSMsgType.PING:
                    pinged = True
                    await ws.pong(msg.data)
                    continue
                m = orjson.loads(msg.data)
                if m.get("stream") == "global@markets":
                    kinds.add(m["data"]["type"])
                    assert m["data"]["strike"].endswith("0" * 18)
                    if m["data"]["type"] == "series_settled":
                        assert int(m["data"]["settlementPrice"]) > 10**18
                elif m.get("stream") == f"{key}@depth":
                    seqs.append(m["data"]["sequence"])
                    if len(seqs) == 1:
                        # the gap after the first depth frame: set before it, a loaded
                        # machine could hide the diffs before the subscription's snapshot
                        server.gap(s.symbol, 2)
            assert pinged and kinds == {"series_created", "series_settled"}
            hidden = [q for sym, q in server.synth.hidden if sym == s.symbol]
            assert len(hidden) == 2 and hidden[0] + 1 == hidden[1]
            assert seqs[0] < hidden[0] and hidden[1] + 1 in seqs
            assert not set(hidden) & set(seqs)
            await ws.close()
            # a diff before the snapshot, when asked for
            server.diff_before_snapshot()
            ws = await http.ws_connect(server.url + "/ws/public")
            await call(ws, {"method": "SUBSCRIBE", "params": [f"{key}@depth"], "id": 1})
            first, second = await recv(ws), await recv(ws)
            assert (first["data"]["type"], second["data"]["type"]) == ("diff", "snapshot")
            assert first["data"]["sequence"] == second["data"]["sequence"]
            await ws.close()
    run(main)


def test_synth_is_deterministic_and_pure() -> None:
    a, b = DiffusalSynth(9, start_ms=1_700_000_000_000), DiffusalSynth(9, start_ms=1_700_000_000_000)
    assert [a.tick(1_700_000_000_000 + i * 100) for i in range(200)] == [
        b.tick(1_700_000_000_000 + i * 100) for i in range(200)]


def test_recorder_sim_cli_serves_diffusal() -> None:
    # port 0: the simulator binds a free port itself and says which
    p = subprocess.Popen([*RECORDER, "sim", "diffusal", "--port", "0", "--seed", "2",
                          "-o", "auth_reply=\"result\""], cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline() if p.stdout else ""
        m = re.search(r"listening on ws://127\.0\.0\.1:(\d+)", line)
        assert m is not None, line
        port = int(m.group(1))

        async def main() -> None:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/api/markets/pairs") as r:
                    pairs = await r.json()
                assert [x["symbol"] for x in pairs] == ["BTC-USDT", "ETH-USDT"]
                ws = await http.ws_connect(f"ws://127.0.0.1:{port}/ws/private")
                ok = await call(ws, {"method": "AUTH", "params": {"token": SIM_TOKEN}, "id": 1})
                assert ok["result"]["status"] == "authenticated"
                await ws.close()
        asyncio.run(main())
    finally:
        p.terminate()
        p.wait(timeout=5)
