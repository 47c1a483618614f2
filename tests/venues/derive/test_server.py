"""The Derive simulator's protocol over real loopback sockets: JSON-RPC answers and errors,
login signature checks, subscribe/unsubscribe statuses, notifications, faults, the ledger."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson

from recorder.sim import ManualClock
from recorder.venues.derive.adapter import sign_login
from recorder.venues.derive.server import DEFAULT_SIGNER_KEY, DeriveServer
from recorder.venues.derive.synth import DeriveSynth, parse_channel

Msg = dict[str, Any]


class Client:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse, server: DeriveServer) -> None:
        self.ws = ws
        self.server = server
        self.n = 0
        self.notes: list[Msg] = []
        self.received: list[str] = []

    async def recv(self, timeout: float = 2.0) -> Msg:
        msg = await self.ws.receive(timeout=timeout)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        self.received.append(msg.data)
        return orjson.loads(msg.data)

    async def call(self, method: str, params: Any = None, rid: Any = None) -> Msg:
        self.n += 1
        rid = self.n if rid is None else rid
        body: Msg = {"id": rid, "method": method}
        if params is not None:
            body["params"] = params
        await self.ws.send_str(orjson.dumps(body).decode())
        while True:
            m = await self.recv()
            if m.get("method") == "subscription":
                self.notes.append(m)
            elif m.get("id") == rid:
                return m

    async def collect(self, seconds: float) -> list[Msg]:
        """Let ``seconds`` of the simulator's (manual) clock pass, then read everything it
        sent meanwhile: exactly what its ledger holds beyond what was read."""
        await self.server.advance(seconds)
        for _ in self.server.ledger_for(1)[len(self.received):]:
            m = await self.recv()
            if m.get("method") == "subscription":
                self.notes.append(m)
        return self.notes


def run(test: Callable[[DeriveServer, Client], Awaitable[None]], **opts: Any) -> DeriveServer:
    async def main() -> DeriveServer:
        server = DeriveServer(**{"churn_seconds": 0, "clock": ManualClock(), **opts})
        await server.start()
        try:
            async with aiohttp.ClientSession() as http, http.ws_connect(server.url) as ws:
                await test(server, Client(ws, server))
        finally:
            await server.stop()
        return server
    return asyncio.run(main())


def signed(ts: str, key: str = DEFAULT_SIGNER_KEY) -> str:
    return sign_login(key, ts)  # checked against eth-account in test_adapter.py


def test_discovery_methods_and_json_rpc_errors() -> None:
    async def t(server: DeriveServer, c: Client) -> None:
        now = (await c.call("public/get_time"))["result"]
        assert abs(now - time.time() * 1000) < 5000
        cur = (await c.call("public/get_all_currencies"))["result"]
        assert [x["currency"] for x in cur] == ["ETH", "BTC"]
        assert cur[0]["instrument_types"] == ["option", "perp", "erc20"]
        opts = (await c.call("public/get_instruments", {"currency": "ETH",
                                                        "instrument_type": "option",
                                                        "expired": False}))["result"]
        assert len(opts) == 12 and all(o["instrument_type"] == "option" for o in opts)
        assert opts[0]["option_details"]["option_type"] in ("C", "P")
        perp = (await c.call("public/get_instruments", {"currency": "BTC",
                                                        "instrument_type": "perp",
                                                        "expired": False}))["result"]
        assert [p["instrument_name"] for p in perp] == ["BTC-PERP"]
        bad = await c.call("public/get_instruments", {"currency": "ETH"})
        assert bad["error"]["code"] == -32602
        unknown = await c.call("public/get_instruments", {"currency": "DOGE",
                                                          "instrument_type": "perp",
                                                          "expired": False})
        assert unknown["error"] == {"code": 12002, "message": "Currency not found",
                                    "data": "DOGE"}
        assert (await c.call("private/order", {}))["error"]["code"] == -32601
        assert (await c.call("public/get_time", rid="str-id"))["id"] == "str-id"
        await c.ws.send_str("{not json")
        assert (await c.recv())["error"]["code"] == -32700
    run(t)


def test_login_checks_the_eip191_signature_against_the_wallet() -> None:
    async def t(server: DeriveServer, c: Client) -> None:
        ts = str((await c.call("public/get_time"))["result"])
        w = server.wallet
        other = "0x" + "42" * 32
        bad = await c.call("public/login", {"wallet": w, "timestamp": ts,
                                            "signature": signed(ts, other)})
        assert bad["error"]["code"] == 14014
        wrong_ts = await c.call("public/login", {"wallet": w, "timestamp": ts,
                                                 "signature": signed(str(int(ts) + 1))})
        assert wrong_ts["error"]["code"] == 14014  # signed another message
        garbage = await c.call("public/login", {"wallet": w, "timestamp": ts,
                                                "signature": "0xdeadbeef"})
        assert garbage["error"]["code"] == 14014
        old = str(int(ts) - 3_600_000)
        stale = await c.call("public/login", {"wallet": w, "timestamp": old,
                                              "signature": signed(old)})
        assert stale["error"]["data"] == "timestamp outside the accepted window"
        nobody = await c.call("public/login", {"wallet": "0x" + "0" * 40, "timestamp": ts,
                                               "signature": signed(ts)})
        assert nobody["error"]["code"] == 14000
        # refused so far: private channels fail with 14022
        sub = await c.call("subscribe", {"channels": ["30769.orders"]})
        assert sub["result"]["status"]["30769.orders"].startswith(
            "Private channel subscription failed (14022)")
        ok = await c.call("public/login", {"wallet": w.upper().replace("0X", "0x"),
                                           "timestamp": ts, "signature": signed(ts)})
        assert ok["result"] == [30769, 30770]
        sub = await c.call("subscribe", {"channels": ["30769.orders", "99.orders",
                                                      f"{w}.rfqs"]})
        st = sub["result"]["status"]
        assert st["30769.orders"] == "ok" and st[f"{w}.rfqs"] == "ok"
        assert "not your account" in st["99.orders"]
    run(t)


def test_session_keys_are_accepted_signers() -> None:
    session_key = "0x" + "33" * 32

    async def t(server: DeriveServer, c: Client) -> None:
        ts = str((await c.call("public/get_time"))["result"])
        ok = await c.call("public/login", {"wallet": server.wallet, "timestamp": ts,
                                           "signature": signed(ts, session_key)})
        assert ok["result"] == [1, 2]
    run(t, session_keys=[session_key], subaccounts=[1, 2])


def test_subscribe_statuses_unsubscribe_and_notifications() -> None:
    async def t(server: DeriveServer, c: Client) -> None:
        chans = ["orderbook.ETH-PERP.10.20", "ticker_slim.ETH-PERP.100", "trades.perp.ETH",
                 "spot_feed.ETH", "orderbook.ETH-PERP.7.20", "ticker.NOPE-PERP.100",
                 "bogus", "spot_feed.DOGE", "orderbook.ETH-PERP.10.20"]
        r = (await c.call("subscribe", {"channels": chans}))["result"]
        assert list(r["status"]) == chans[:-1]  # duplicates deduplicated
        assert [r["status"][ch] == "ok" for ch in chans[:-1]] == [
            True, True, True, True, False, False, False, False]
        assert r["status"]["bogus"] == "Invalid channel (13000)"
        assert r["current_subscriptions"] == sorted(chans[:4])
        notes = await c.collect(1.5)
        by = {}
        for n in notes:
            by.setdefault(n["params"]["channel"], []).append(n["params"]["data"])
        assert set(by) <= set(chans[:4]) and {"orderbook.ETH-PERP.10.20",
                                               "ticker_slim.ETH-PERP.100",
                                               "spot_feed.ETH"} <= set(by)
        ids = [d["publish_id"] for d in by["orderbook.ETH-PERP.10.20"]]
        assert ids == list(range(ids[0], ids[0] + len(ids)))  # +1 per publish
        book = by["orderbook.ETH-PERP.10.20"][0]
        assert isinstance(book["bids"][0], list) and len(book["bids"][0]) == 2  # v2 pairs
        slim = by["ticker_slim.ETH-PERP.100"][0]["instrument_ticker"]
        assert {"t", "b", "B", "a", "A", "M", "I", "f", "stats"} <= set(slim)
        un = (await c.call("unsubscribe", {"channels": ["trades.perp.ETH"]}))["result"]
        assert un == {"status": {"trades.perp.ETH": "ok"},
                      "current_subscriptions": sorted(set(chans[:4]) - {"trades.perp.ETH"})}
        everything = (await c.call("unsubscribe", {}))["result"]
        assert everything["current_subscriptions"] == []
        bad = await c.call("subscribe", {"channels": "orderbook.ETH-PERP.10.20"})
        assert bad["error"]["code"] == -32602
    run(t, rate=3.0)


def test_gap_listing_expiry_rate_limit_and_ledger() -> None:
    async def t(server: DeriveServer, c: Client) -> None:
        await c.call("subscribe", {"channels": ["orderbook.ETH-PERP.1.10"]})
        await c.collect(0.6)
        assert server.gap("ETH-PERP", 5) == 1
        notes = await c.collect(0.8)
        ids = [n["params"]["data"]["publish_id"] for n in notes]
        steps = [b - a for a, b in zip(ids, ids[1:], strict=False)]
        assert steps.count(6) == 1 and set(steps) <= {1, 6}
        name = server.list_instrument("ETH")
        listed = (await c.call("public/get_instruments", {"currency": "ETH",
                                                          "instrument_type": "option",
                                                          "expired": False}))["result"]
        assert name in [i["instrument_name"] for i in listed]
        assert (await c.call("subscribe", {"channels": [f"trades.{name}"]}))["result"][
            "status"][f"trades.{name}"] == "ok"
        server.expire_instrument(name)
        gone = (await c.call("public/get_instruments", {"currency": "ETH",
                                                        "instrument_type": "option",
                                                        "expired": False}))["result"]
        assert name not in [i["instrument_name"] for i in gone]
        kept = (await c.call("public/get_instruments", {"currency": "ETH",
                                                        "instrument_type": "option",
                                                        "expired": True}))["result"]
        assert name in [i["instrument_name"] for i in kept]
        st = (await c.call("subscribe", {"channels": [f"ticker.{name}.1000"]}))["result"]
        assert "unknown instrument" in st["status"][f"ticker.{name}.1000"]
        server.rate_limit(700)
        limited = await c.call("public/get_time")
        assert limited["error"] == {"code": -32000, "message": "Rate limit exceeded",
                                    "data": "Retry after 700 ms"}
        assert "result" in await c.call("public/get_time")
        await c.call("unsubscribe")  # nothing more is queued after its answer (one FIFO)
        assert server.ledger_for(1) == c.received  # exactly what the client got, in order
    run(t, rate=3.0)


def test_private_streams_and_v3_shapes() -> None:
    async def t(server: DeriveServer, c: Client) -> None:
        ts = str((await c.call("public/get_time"))["result"])
        await c.call("public/login", {"wallet": server.wallet, "timestamp": ts,
                                      "signature": signed(ts)})
        chans = ["30769.orders", "30769.trades", "30769.trades.Settled", "30769.balances",
                 "30769.quotes", "30770.best.quotes", f"{server.wallet}.rfqs",
                 "orderbook.BTC-PERP.1.10", "trades.perp.BTC.Settled",
                 "trades.perp.BTC.SettledError"]
        r = (await c.call("subscribe", {"channels": chans}))["result"]
        assert all(v == "ok" for v in r["status"].values()), r
        notes = await c.collect(2.5)
        got = {n["params"]["channel"] for n in notes}
        assert set(chans[:7]) <= got
        own = [d for n in notes if n["params"]["channel"] == "30769.trades"
               for d in n["params"]["data"]]
        assert [d["batch_status"] for d in own[:3]] == ["Executing", "Proving", "Settled"]
        assert len({d["op_uuid"] for d in own[:3]}) == 1 and "tx_status" not in own[0]
        quote = next(d for n in notes if n["params"]["channel"] == "30769.quotes"
                     for d in n["params"]["data"])
        assert isinstance(quote["nonce"], str) and quote["nonce"].isdigit()
        book = next(n["params"]["data"] for n in notes
                    if n["params"]["channel"] == "orderbook.BTC-PERP.1.10")
        assert set(book["bids"][0]) == {"price", "amount"}  # v3 level objects
        rfqs = [d["status"] for n in notes if n["params"]["channel"].endswith(".rfqs")
                for d in n["params"]["data"]]
        assert rfqs[0] == "open" and set(rfqs) - {"open"} <= {"filled", "expired"}
    server = run(t, variant="v3", currencies=("BTC",), rate=2.0)
    assert server.url.endswith("/v3/ws")


def test_synth_is_deterministic_and_churns() -> None:
    def trace(seed: int) -> list[Any]:
        s = DeriveSynth(seed, churn_ms=1000, start_ms=1_785_000_000_000)
        wanted = {"orderbook.ETH-PERP.1.10", "trades.perp.ETH", "spot_feed.ETH"}
        return [s.tick(1_785_000_000_000 + 100 * i, wanted) for i in range(40)]

    assert trace(4) == trace(4) and trace(4) != trace(5)
    s = DeriveSynth(1, churn_ms=1000, start_ms=0)
    before = {i.name for i in s.active("ETH", "option")}
    s.tick(0, set())
    s.tick(1000, set())
    after = {i.name for i in s.active("ETH", "option")}
    assert len(after - before) == 1 and len(before - after) == 1  # one listed, one expired
    assert parse_channel("orderbook.ETH-PERP.3.10") is None
    assert parse_channel("30769.trades.settled") == ("private", ("30769", "trades.status",
                                                                 "settled"))
