"""The Power.Trade simulator speaks the documented protocol over real loopback sockets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import jwt
import orjson
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from recorder.sim import ManualClock
from recorder.venues.powertrade.server import PowerTradeServer
from recorder.venues.powertrade.synth import BY_ID, ENTITIES


def run(fn: Callable[[PowerTradeServer, aiohttp.ClientSession], Awaitable[Any]],
        **opts: Any) -> Any:
    async def main() -> Any:
        server = PowerTradeServer(**{"seed": 4, "reorder_ms": 0, "clock": ManualClock(),
                                     **opts})
        await server.start()
        try:
            async with aiohttp.ClientSession() as http:
                return await fn(server, http)
        finally:
            await server.stop()
    return asyncio.run(main())


def token(server: PowerTradeServer, exp_in: int = 30, key: str | None = None) -> str:
    sub, pem = server.credentials()
    now = int(time.time())
    return jwt.encode({"client": "api", "sub": key or sub, "iat": now - 5, "exp": now + exp_in,
                       "nonce": time.time_ns() // 1000, "uri": server.url},
                      load_pem_private_key(pem.encode(), None), algorithm="ES256")


class Peer:
    """A client WebSocket that counts the frames it has read, so that after the test moves
    the server's (manual) clock it reads exactly what the server handed to its socket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, server: PowerTradeServer,
                 no: int) -> None:
        self.ws, self.server, self.no, self.read = ws, server, no, 0

    async def send_str(self, text: str) -> None:
        await self.ws.send_str(text)

    async def receive(self, timeout: float | None = None) -> aiohttp.WSMessage:
        msg = await self.ws.receive(timeout)
        self.read += 1
        return msg

    async def close(self) -> None:
        await self.ws.close()


async def connect(server: PowerTradeServer, http: aiohttp.ClientSession, url: str) -> Peer:
    before = len(server.conns())
    ws = await http.ws_connect(url)
    await server.until(lambda: len(server.conns()) > before, what="the session")
    return Peer(ws, server, server.conns()[-1])


async def send(ws: aiohttp.ClientWebSocketResponse | Peer, name: str, **body: Any) -> None:
    await ws.send_str(orjson.dumps({name: body}).decode())


async def recv(ws: aiohttp.ClientWebSocketResponse | Peer, timeout: float = 2.0
               ) -> tuple[str, dict]:
    msg = await ws.receive(timeout)
    (name, body), = orjson.loads(msg.data).items()
    return name, body


async def collect(peer: Peer, seconds: float) -> list[tuple[str, dict]]:
    """Let ``seconds`` of the server's clock pass; what it sent ``peer`` meanwhile."""
    await peer.server.advance(seconds)
    return [await recv(peer) for _ in peer.server.ledger_for(peer.no)[peer.read:]]


async def heard(server: PowerTradeServer, n: int) -> None:
    """Wait until the server has received ``n`` client messages in all."""
    await server.until(lambda: len(server.received) >= n, what=f"{n} client messages")


async def login(server: PowerTradeServer, http: aiohttp.ClientSession) -> Peer:
    ws = await connect(server, http, server.url)
    asked = len(server.received)
    await send(ws, "authenticate", credentials_secret=token(server), user_tag="auth")
    await heard(server, asked + 1)
    await server.advance(server.reorder)  # answers wait that long to be shuffled
    assert await recv(ws) == ("command_response", {"error_code": "0",
                                                   "error_text": "authenticated",
                                                   "user_tag": "auth"})
    return ws


def all_strings(obj: Any) -> bool:
    if isinstance(obj, dict):
        return all(all_strings(v) for v in obj.values())
    if isinstance(obj, list):
        return all(all_strings(v) for v in obj)
    return isinstance(obj, str)


def test_non_string_values_and_malformed_requests_are_refused() -> None:
    async def body(server: PowerTradeServer, http: aiohttp.ClientSession) -> list:
        ws = await http.ws_connect(server.url)
        await ws.send_str('{"authenticate": {"credentials_secret": "x", "user_tag": "t1", '
                          '"n": 5}}')
        await ws.send_str('{"subscribe": {"user_tag": "t2", "interval": 500}}')
        await ws.send_str('{"balances": {"user_tag": "t3", "flag": true}}')
        await ws.send_str('{"a": {}, "b": {}}')
        await ws.send_str("not json")
        await ws.send_str('{"positions": {"user_tag": ""}}')
        await ws.send_str('{"new_order": {"user_tag": "t4", "legs": [{"sym": "A", "ratio": 1}]}}')
        return [await recv(ws) for _ in range(7)]

    got = run(body)
    assert [(b["error_code"], b["user_tag"]) for _, b in got] == [
        ("11", "t1"), ("11", "t2"), ("11", "t3"), ("10", ""), ("10", ""), ("10", ""),
        ("11", "t4")]
    assert got[0][1]["error_text"] == "value of n must be a string"
    assert got[6][1]["error_text"] == "value of legs[0].ratio must be a string"


def test_jwt_is_verified_and_requests_before_auth_are_refused() -> None:
    async def body(server: PowerTradeServer, http: aiohttp.ClientSession) -> list:
        ws = await http.ws_connect(server.url)
        other = PowerTradeServer(seed=4)  # same key id, another key pair
        out = []
        await send(ws, "balances", user_tag="b0")
        out.append(await recv(ws))
        for tag, tok in (("bad-sig", token(other)), ("expired", token(server, exp_in=-60)),
                         ("unknown", token(server, key="nobody")), ("garbage", "a.b.c"),
                         ("good", token(server))):
            await send(ws, "authenticate", credentials_secret=tok, user_tag=tag)
            out.append(await recv(ws))
        await send(ws, "balances", user_tag="b1")
        out.append(await recv(ws))
        return out

    got = run(body)
    assert [(b["user_tag"], b.get("error_code")) for _, b in got] == [
        ("b0", "1"), ("bad-sig", "2"), ("expired", "2"), ("unknown", "2"), ("garbage", "2"),
        ("good", "0"), ("b1", None)]
    assert "Signature" in got[1][1]["error_text"] and "expired" in got[2][1]["error_text"]
    assert got[6][0] == "balances_response" and all_strings(got[6][1])


def test_expiry_checks_can_be_turned_off() -> None:
    async def body(server: PowerTradeServer, http: aiohttp.ClientSession) -> tuple:
        ws = await http.ws_connect(server.url)
        await send(ws, "authenticate", credentials_secret=token(server, exp_in=-600),
                   user_tag="old")
        return await recv(ws)

    assert run(body, check_exp=False)[1]["error_code"] == "0"


def test_answers_are_shuffled_but_each_echoes_its_user_tag() -> None:
    async def body(server: PowerTradeServer, http: aiohttp.ClientSession) -> list:
        ws = await login(server, http)
        for i in range(8):
            await send(ws, "positions", user_tag=f"r{i}")
        await heard(server, 9)  # all eight within reorder_ms of each other
        return [b["user_tag"] for _, b in await collect(ws, 0.05)]

    tags = run(body, reorder_ms=50, account_rate=0.0)
    assert sorted(tags) == [f"r{i}" for i in range(8)] and tags != sorted(tags)
    in_order = run(body, reorder_ms=0, account_rate=0.0)
    assert in_order == [f"r{i}" for i in range(8)]


def test_heartbeats_every_interval_only_while_the_client_is_idle() -> None:
    async def body(server: PowerTradeServer, http: aiohttp.ClientSession) -> tuple:
        idle = await login(server, http)
        busy = await login(server, http)
        for i in range(12):  # the busy client says something every 80 ms
            await send(busy, "heartbeat", timestamp=str(time.time_ns() // 1000))
            await heard(server, 3 + i)
            await server.advance(0.08)
        return await collect(idle, 0.04), await collect(busy, 0.0)

    idle, busy = run(body, heartbeat=0.2, account_rate=0.0)
    beats = [b for n, b in idle if n == "heartbeat"]
    assert 3 <= len(beats) <= 6 and [n for n, _ in idle] == ["heartbeat"] * len(beats)
    stamps = [int(b["server_utc_timestamp"]) for b in beats]
    assert stamps == sorted(stamps) and abs(stamps[0] / 1e6 - time.time()) < 5
    assert busy == []  # a client that talks is not idle: no heartbeat


def test_entities_subscribe_snapshot_deltas_full_updates_and_unknown_symbol() -> None:
    async def body(server: PowerTradeServer, http: aiohttp.ClientSession) -> tuple:
        ws = await login(server, http)
        await send(ws, "entities_and_rules_request", user_tag="e")
        rules = await recv(ws)
        await send(ws, "subscribe", market_id="0", symbol="BTC-USD-PERPETUAL",
                   type="snap_with_deltas", interval="0", user_tag="s1")
        await send(ws, "subscribe", market_id="0", tradeable_entity_id="46",
                   type="snap_full_updates", interval="250", user_tag="s2")
        await send(ws, "subscribe", market_id="0", symbol="NOPE", type="snap_only",
                   interval="0", user_tag="s3")
        await heard(server, 5)
        return rules, await collect(ws, 1.2)

    rules, got = run(body, rate=4.0, account_rate=0.0)
    name, r = rules
    assert name == "entities_and_rules_response" and r["user_tag"] == "e" and all_strings(r)
    assert [s["symbol"] for s in r["symbols"]] == [e.symbol for e in ENTITIES]
    assert r["symbols"][0]["tags"] == ["BTC", "future", "perpetual"]
    assert [(n, b["user_tag"], b["error_code"]) for n, b in got[:5]
            if n == "command_response"] == [("command_response", "s1", "0"),
                                            ("command_response", "s2", "0"),
                                            ("command_response", "s3", "13")]
    snaps = [b for n, b in got if n == "snapshot"]
    btc = [s for s in snaps if s["tradeable_entity_id"] == "4"]
    ptf = [s for s in snaps if s["tradeable_entity_id"] == "46"]
    assert len(btc) == 1 and 3 <= len(ptf) <= 6  # full snapshot every 250 ms
    bids = [float(lv["price"]) for lv in btc[0]["buy"]]
    asks = [float(lv["price"]) for lv in btc[0]["sell"]]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks) and bids[0] < asks[0]
    deltas = [(n, b) for n, b in got if n in ("order_added", "order_deleted", "order_updated",
                                              "order_executed", "trade")]
    assert deltas and {b["tradeable_entity_id"] for _, b in deltas} == {"4"}
    assert all(b["market_id"] == "0" and all_strings(b) for _, b in deltas)
    assert {n for n, _ in deltas} >= {"order_added"}


def test_rfq_stream_only_after_register_with_multi_leg_symbols() -> None:
    async def body(server: PowerTradeServer, http: aiohttp.ClientSession) -> tuple:
        ws = await login(server, http)
        before = await collect(ws, 0.4)
        await send(ws, "register_for_rfqs", user_tag="rfq")
        await heard(server, 2)
        after = await collect(ws, 2.0)
        await send(ws, "deregister_for_rfqs", user_tag="unrfq")
        await heard(server, 3)
        # the RFQ stream and the answer are independent: a frame of the last tick may still
        # have been on its way to the socket, so it can come before the answer
        while (got := await recv(ws))[1].get("user_tag") != "unrfq":
            after.append(got)
        assert got == ("command_response", {
            "error_code": "0", "error_text": "success", "user_tag": "unrfq"})
        later = await collect(ws, 0.5)
        return before, after, later

    before, after, later = run(body, rfq_rate=25.0, account_rate=0.0)
    assert before == [] and later == []
    assert after[0] == ("command_response", {"error_code": "0", "error_text": "success",
                                             "user_tag": "rfq"})
    snaps = [b for n, b in after if n == "snapshot"]
    assert snaps and all(s["market_id"] == "none" for s in snaps)
    adds = [b for n, b in after if n == "order_added"]
    assert adds and all(b["market_id"] == "none" for b in adds)
    assert any("@" in b["symbol"] for b in adds + snaps)  # multi-leg a@1/b@-1
    assert {n for n, _ in after[1:]} <= {"snapshot", "order_added", "order_deleted"}


def test_orders_bulk_cancel_all_and_refresh_interest() -> None:
    async def body(server: PowerTradeServer, http: aiohttp.ClientSession) -> list:
        ws = await login(server, http)
        common = {"market_id": "0", "type": "LIMIT", "time_in_force": "GTC"}
        await send(ws, "new_order", symbol="BTC-USD-PERPETUAL", side="buy", price="16900.0",
                   quantity="0.1", client_order_id="c1", user_tag="o1", **common)
        await send(ws, "new_order", symbol="BTC-USD-PERPETUAL", side="sideways",
                   quantity="0.1", client_order_id="c2", user_tag="o2", **common)
        await send(ws, "new_order", symbol="PTF-USD", side="sell", price="0.2",
                   quantity="99999999", client_order_id="c3", user_tag="o3", **common)
        await send(ws, "new_bulk_order", user_tag="bulk", orders=[
            {"symbol": "ETH-USD-PERPETUAL", "side": "buy", "price": "1200", "quantity": "1",
             "client_order_id": "b1", **common},
            {"symbol": "NOPE", "side": "buy", "price": "1", "quantity": "1",
             "client_order_id": "b2", **common}])
        await send(ws, "refresh_interest", client_order_id="rfq-1", user_tag="ri")
        await heard(server, 6)
        got = await collect(ws, 0.2)
        await send(ws, "cancel_all_orders", user_tag="ca", timestamp="1670144009000000")
        await heard(server, 7)
        return got + await collect(ws, 0.6)

    got = run(body, account_rate=0.0)
    names = [n for n, _ in got]
    assert all(all_strings(b) for _, b in got)
    acc = [b for n, b in got if n == "order_accepted"]
    assert {b["client_order_id"] for b in acc} == {"c1", "b1"}
    assert ("command_response", "12") in [(n, b.get("error_code")) for n, b in got
                                          if b.get("user_tag") == "o2"]
    rej = [b for n, b in got if n == "order_rejected"]
    assert {(b["client_order_id"], b["reason"]) for b in rej} == {
        ("c3", "invalid quantity"), ("b2", "unknown symbol")}
    bulk = next(b for n, b in got if n == "new_bulk_order_response")
    assert bulk["results"] == [{"client_order_id": "b1", "order_state": "accepted"},
                               {"client_order_id": "b2", "order_state": "rejected"}]
    assert next(b for n, b in got if n == "refresh_interest")["client_order_id"] == "rfq-1"
    ca = next(b for n, b in got if n == "cancel_all_orders")
    fills = {b["client_order_id"]: b["order_state"] for n, b in got if n == "execution"}
    open_after = {"c1", "b1"} - {c for c, s in fills.items() if s == "filled"}
    assert {r["client_order_id"] for r in ca["results"]} == open_after
    assert names.index("order_accepted") < names.index("cancel_all_orders")


def test_feeds_filter_scaled_integers_summary_and_ledger() -> None:
    async def body(server: PowerTradeServer, http: aiohttp.ClientSession) -> tuple:
        async with http.get(server.summary_url) as r:
            summary = await r.json()
        ws = await connect(server, http,
                           server.feeds_url + "?type[]=reference_price&type[]=bogus")
        got = await collect(ws, 1.2)
        await ws.close()
        return summary, got, server.ledger_for(server.conns("feeds")[0])

    summary, got, ledger = run(body)
    assert [(s["id"], s["price_decimal_places"], s["quantity_decimal_places"])
            for s in summary] == [(str(e.id), str(e.price_dp), str(e.qty_dp)) for e in ENTITIES]
    assert got and {n for n, _ in got} == {"reference_price"}
    for _, b in got:
        e = BY_ID[int(b["tradeable_entity_id"])]
        assert int(b["price"]) == round(e.mid * 10**e.price_dp) and b["price"].isdigit()
        assert len(b["timestamp"]) == 19  # ns
    assert [orjson.loads(t) for t in ledger] == [{n: b} for n, b in got]


def test_faults_inject_fail_next_and_drop() -> None:
    async def body(server: PowerTradeServer, http: aiohttp.ClientSession) -> tuple:
        ws = await login(server, http)
        server.fail_next("positions", "7", "account busy")
        await send(ws, "positions", user_tag="p1")
        failed = await recv(ws)
        await send(ws, "positions", user_tag="p2")
        ok = await recv(ws)
        server.inject('{"surprise": {"x": "1"}}')
        injected = await recv(ws)
        async with http.post(server.url.replace("ws://", "http://") + "_sim/drop") as r:
            assert (await r.json()) == {"ok": True, "result": 1}  # one session dropped
        closed = await ws.receive(2.0)
        return failed, ok, injected, closed.type

    failed, ok, injected, closed = run(body, account_rate=0.0)
    assert failed == ("command_response", {"error_code": "7", "error_text": "account busy",
                                           "user_tag": "p1"})
    assert ok[0] == "positions_response" and ok[1]["user_tag"] == "p2"
    assert injected == ("surprise", {"x": "1"})
    assert closed in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR,
                      aiohttp.WSMsgType.CLOSE)
