"""Tests of the Mackinac simulator: the pure synth and the aiohttp server over loopback.

pytest-asyncio is not used: each test is ``def test_x(): asyncio.run(main())``. Protocol
references: https://mackinac.io/api/websocket/ and https://mackinac.io/api/messages/.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from recorder.sim import ManualClock
from recorder.venues.mackinac.server import MackinacServer, serve
from recorder.venues.mackinac.synth import MarketSynth

T0 = 1_780_000_000_000
ADDR = re.compile(r"^0x[0-9a-f]{40}$")
D_FIELDS = ("d_tickrate", "d_volumerate", "d_quoterate", "d_hawkes", "d_hawkesB", "d_hawkesA",
            "d_lobimb", "d_volumeimb", "d_bidqty", "d_askqty")
MAX = 16 * 1024 * 1024


def _sub(exchange: str, symbol: str, action: str = "subscribe", **extra: Any) -> str:
    return orjson.dumps({"action": action, "exchange": exchange, "symbol": symbol,
                         **extra}).decode()


@contextlib.asynccontextmanager
async def _server(**opts: Any) -> AsyncIterator[MackinacServer]:
    srv = MackinacServer(**opts)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def _recv(ws: aiohttp.ClientWebSocketResponse, timeout: float = 2.0) -> dict[str, Any]:
    msg = await ws.receive(timeout=timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return orjson.loads(msg.data)


async def _until(ws: aiohttp.ClientWebSocketResponse, pred: Callable[[dict[str, Any]], bool],
                 timeout: float = 3.0, seen: list[str] | None = None) -> dict[str, Any]:
    """Read frames until one satisfies ``pred``; every text read is appended to ``seen``."""
    deadline = time.monotonic() + timeout
    while True:
        msg = await ws.receive(timeout=max(0.01, deadline - time.monotonic()))
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        if seen is not None:
            seen.append(msg.data)
        frame = orjson.loads(msg.data)
        if pred(frame):
            return frame


async def _sent(ws: aiohttp.ClientWebSocketResponse, srv: MackinacServer, conn: int,
                skip: int = 0) -> list[dict[str, Any]]:
    """Read every frame the server has handed to session ``conn``'s socket, after the first
    ``skip`` (already read): after ``srv.advance()`` that is all the clock made due."""
    return [await _recv(ws) for _ in srv.ledger_for(conn)[skip:]]


async def _drain_to_close(ws: aiohttp.ClientWebSocketResponse,
                          seen: list[str]) -> aiohttp.WSMessage:
    """Read until the close frame; returns it (its ``data`` is the close code)."""
    while True:
        msg = await ws.receive(timeout=3.0)
        if msg.type != aiohttp.WSMsgType.TEXT:
            return msg
        seen.append(msg.data)


# ── synth (pure) ─────────────────────────────────────────────────────────────────────────


def _run_synth(seed: int, seconds: float = 5.0) -> dict[str, list[dict[str, Any]]]:
    synth = MarketSynth(seed)
    out: dict[str, list[dict[str, Any]]] = {k: [] for k in synth.keys()}
    for step in range(0, int(seconds * 1000), 50):
        for key in out:
            out[key].extend(synth.tick(key, T0 + step))
    return out


def test_synth_is_deterministic_and_emits_every_type_within_5s() -> None:
    a, b, c = _run_synth(7), _run_synth(7), _run_synth(8)
    assert orjson.dumps(a) == orjson.dumps(b)
    assert orjson.dumps(a) != orjson.dumps(c)
    types = {m["type"] for frames in a.values() for m in frames}
    assert types >= {"quote", "print", "funding", "depth", "liquidity", "spread", "rate_market",
                     "rate_depth", "lending_action", "rate_model_params", "ammbook", "arbflag"}
    for frames in a.values():
        for m in frames:
            assert isinstance(m["time"], int) and m["time"] >= T0


def test_synth_frame_shapes() -> None:
    out = _run_synth(1)
    hl_quote = next(m for m in out["hl:ETH"] if m["type"] == "quote")
    assert len(hl_quote["bids"]) == len(hl_quote["asks"]) == 20
    bids = [lv["price"] for lv in hl_quote["bids"]]
    asks = [lv["price"] for lv in hl_quote["asks"]]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks) and bids[0] < asks[0]

    hl_print = next(m for m in out["hl:ETH"] if m["type"] == "print")
    assert all(isinstance(hl_print[f], float) for f in D_FIELDS)
    assert "blockNumber" not in hl_print and "txIndex" not in hl_print
    assert -1.0 <= hl_print["d_lobimb"] <= 1.0 and hl_print["side"] in (0, 1, 2)
    dydx_print = next(m for m in out["dydx:ETH-USD"] if m["type"] == "print")
    assert isinstance(dydx_print["blockNumber"], int) and "txIndex" not in dydx_print
    assert all(f in dydx_print for f in D_FIELDS)
    funding = {m["exchange"]: m["intervalHrs"] for k in ("hl:ETH", "gmx:BTC", "ostium:XAU/USD")
               for m in out[k] if m["type"] == "funding"}
    assert funding == {"hl": 8, "gmx": 1, "ostium": 24}
    assert not [m for m in out["gmx:BTC"] if m["type"] == "print"]

    uni = out["uni:WETH/USDC"]
    swap = next(m for m in uni if m["type"] == "print")
    assert isinstance(swap["blockNumber"], int) and isinstance(swap["txIndex"], int)
    assert ADDR.match(swap["logSender"]) and isinstance(swap["tick"], int)
    assert not any(k.startswith("d_") for k in swap)
    quote = next(m for m in uni if m["type"] == "quote")
    assert {lv["fee"] for lv in quote["bids"]} == {100, 500, 3000}
    assert all(isinstance(lv["lastSwapMs"], int) for lv in quote["bids"] + quote["asks"])
    depth = next(m for m in uni if m["type"] == "depth")
    assert [i["usd"] for i in depth["impacts"]] == [1000, 10000, 100000, 1000000]
    assert all(i["buyPct"] >= 0 and i["sellPct"] >= 0 for i in depth["impacts"])
    spread = next(m for m in uni if m["type"] == "spread")
    assert spread["bidPool"]["price"] > spread["askPool"]["price"] and spread["spread"] > 0

    lps = [m for k in ("uni:WETH/USDC", "ammliquidity:WETH/USDC") for m in out[k]
           if m["type"] == "liquidity"]
    assert all(isinstance(m[f], str) and m[f].isdigit() for m in lps
               for f in ("amount", "amount0", "amount1"))
    assert any(int(m["amount"]) > 2**64 for m in lps)

    actions = out["lending:actions"]
    assert {m["action"] for m in actions} == {"supply", "withdraw", "borrow", "repay",
                                              "liquidate", "flashloan"}
    liq = next(m for m in actions if m["action"] == "liquidate")
    assert liq["collateralAmount"].isdigit() and ADDR.match(liq["liquidator"])
    assert all(ADDR.match(m["user"]) and m["amount"].isdigit() for m in actions)

    aave = {m["type"]: m for m in out["aave:USDC"]}
    assert aave["rate_market"]["ptPrice"] == 0.0 and aave["rate_market"]["expiry"] == 0
    assert 0 <= aave["rate_market"]["utilization"] <= 1 and "borrowApy" in aave["rate_market"]
    assert {"kink", "reserveFactor", "maxRate"} <= set(aave["rate_model_params"])
    morpho = next(m for m in out["morpho:all"] if m["type"] == "rate_model_params")
    assert {"targetUtil", "curveSteepness", "adjSpeed"} <= set(morpho)
    assert re.match(r"^0x[0-9a-f]{64}$", morpho["market"])
    depth_pt = next(m for m in out["rates:PT-weETH-25JUN2026"] if m["type"] == "rate_depth")
    assert [lv["sizeUsd"] for lv in depth_pt["levels"]] == [1000, 10000, 100000, 1000000]
    assert all(lv["sellRate"] >= lv["buyRate"] for lv in depth_pt["levels"])
    book = next(m for m in out["ammbook:WETH/USDC"] if "arbGap" in m)
    gap = book["arbGap"]
    assert gap["buyExchange"] != gap["sellExchange"] and gap["gapBps"] > 0
    flags = [m["status"] for m in out["arbflag:WETH/USDC"]]
    assert flags[:2] == ["open", "closed"]


def test_synth_history_and_lp_snapshot() -> None:
    synth = MarketSynth(3)
    emitted: list[dict[str, Any]] = []
    for step in range(0, 4000, 50):
        emitted += [m for m in synth.tick("hl:ETH", T0 + step) if m["type"] == "print"]
    assert len(emitted) > 3
    assert synth.history("hl:ETH") == emitted
    assert synth.history("hl:ETH", limit=2) == emitted[-2:]
    assert synth.history("gmx:BTC") == []
    snap = synth.ammliquidity_snapshot("ammliquidity:WETH/USDC", now_ms=T0)
    assert snap["type"] == "ammliquidity_snapshot" and snap["symbol"] == "WETH/USDC"
    times = [e["time"] for e in snap["events"]]
    assert snap["events"] and times == sorted(times) and times[-1] < T0
    frames = synth.firehose(2000, end_ms=T0)
    assert len(frames) == 2000 and max(orjson.loads(f)["time"] for f in frames) <= T0
    assert synth.history("hl:ETH") == emitted  # the firehose does not touch live state


# ── server over loopback ─────────────────────────────────────────────────────────────────


def test_auth_tiers_and_gates() -> None:
    async def main() -> None:
        keys = {"mk_test_sim": "api", "mk_admin": "super_admin"}
        async with _server(api_keys=keys) as srv, aiohttp.ClientSession() as http:
            async with http.ws_connect(srv.url, max_msg_size=MAX) as ws:
                await ws.send_str('{"action":"auth","key":"mk_test_sim"}')
                assert await _recv(ws) == {"type": "authed", "tier": "api", "symbolLimit": 100}
                await ws.send_str(_sub("arbflag", "WETH/USDC"))
                err = await _recv(ws)
                assert (err["type"], err["code"]) == ("error", "subscription_required")
                await ws.send_str(_sub("ammbook", "WETH/USDC"))
                assert await _recv(ws) == {"type": "subscribed", "exchange": "ammbook",
                                           "symbol": "WETH/USDC"}
            async with http.ws_connect(srv.url, max_msg_size=MAX) as ws:
                await ws.send_str('{"action":"auth","key":"mk_admin"}')
                assert await _recv(ws) == {"type": "authed", "tier": "super_admin",
                                           "symbolLimit": None}
                await ws.send_str(_sub("arbflag", "WETH/USDC"))
                assert (await _recv(ws))["type"] == "subscribed"
                flag = await _until(ws, lambda f: f["type"] == "arbflag")
                assert flag["status"] == "open" and "arbGap" in flag

    asyncio.run(main())


def test_auth_failed_then_close() -> None:
    async def main() -> None:
        async with _server() as srv, aiohttp.ClientSession() as http:
            async with http.ws_connect(srv.url) as ws:
                await ws.send_str('{"action":"auth","key":"mk_live_wrong"}')
                err = await _recv(ws)
                assert err == {"type": "error", "code": "auth_failed",
                               "message": "Invalid or revoked API key."}
                closing = await ws.receive(timeout=2.0)
                assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 4001
            assert srv.ledger_for(1) == [orjson.dumps(err).decode()]

    asyncio.run(main())


def test_anonymous_limits_and_errors() -> None:
    async def main() -> None:
        async with _server() as srv, aiohttp.ClientSession() as http:
            async with http.ws_connect(srv.url) as ws:
                for ex, sym in (("hl", "ETH"), ("gmx", "BTC"), ("vertex", "ETH")):
                    await ws.send_str(_sub(ex, sym))
                    ack = await _until(ws, lambda f: f["type"] in ("subscribed", "error"))
                    assert ack == {"type": "subscribed", "exchange": ex, "symbol": sym}
                await ws.send_str(_sub("hl", "ETH"))  # duplicate: acked, not counted
                ack = await _until(ws, lambda f: f["type"] in ("subscribed", "error"))
                assert ack["type"] == "subscribed"
                await ws.send_str(_sub("dydx", "ETH-USD"))
                err = await _until(ws, lambda f: f["type"] == "error")
                assert err["code"] == "symbol_limit_reached" and err["limit"] == 3
                assert (err["exchange"], err["symbol"]) == ("dydx", "ETH-USD")
                assert err["message"] == "Tier 'none' allows 3 symbols; you have 3."
                await ws.send_str(_sub("hl", "NOPE"))
                err = await _until(ws, lambda f: f["type"] == "error")
                assert (err["code"], err["symbol"]) == ("unknown_symbol", "NOPE")
                await ws.send_str(_sub("ammbook", "WETH/USDC"))
                err = await _until(ws, lambda f: f["type"] == "error")
                assert err["code"] == "subscription_required"
                await ws.send_str("{not json")
                err = await _until(ws, lambda f: f["type"] == "error")
                assert err["code"] == "internal_error"
                await ws.send_str('{"action":"subscribe","exchange":"hl"}')
                err = await _until(ws, lambda f: f["type"] == "error")
                assert err["code"] == "invalid_symbol"
                # Unsubscribe frees a slot.
                await ws.send_str(_sub("gmx", "BTC", action="unsubscribe"))
                await ws.send_str(_sub("dydx", "ETH-USD"))
                ack = await _until(ws, lambda f: f["type"] in ("subscribed", "error"))
                assert ack == {"type": "subscribed", "exchange": "dydx", "symbol": "ETH-USD"}

    asyncio.run(main())


def test_subscribe_ack_then_data_frames() -> None:
    async def main() -> None:
        # rate=2 halves every cadence, so a spread frame is due within 1 s.
        async with _server(rate=2.0, clock=ManualClock()) as srv, \
                aiohttp.ClientSession() as http:
            async with http.ws_connect(srv.url, max_msg_size=MAX) as ws, \
                    http.ws_connect(srv.url, max_msg_size=MAX) as pro:
                await pro.send_str('{"action":"auth","key":"mk_test_sim"}')
                await pro.send_str(_sub("uni", "WETH/USDC"))
                assert (await _recv(pro))["type"] == "authed"
                assert (await _recv(pro))["type"] == "subscribed"
                for ex, sym in (("hl", "ETH"), ("uni", "WETH/USDC"), ("lending", "actions")):
                    await ws.send_str(_sub(ex, sym))
                    assert (await _recv(ws))["type"] == "subscribed"
                await srv.advance(1.5)  # 30 ticks of the market, at once
                frames, pro_frames = await _sent(ws, srv, 1, 3), await _sent(pro, srv, 2, 2)
        acks = [(f["exchange"], f["symbol"]) for f in srv.ledger_for(1)[:3]
                for f in [orjson.loads(f)]]
        assert acks == [("hl", "ETH"), ("uni", "WETH/USDC"), ("lending", "actions")]
        by = {(f["type"], f.get("exchange")) for f in frames}
        assert {("quote", "hl"), ("print", "hl"), ("funding", "hl"), ("quote", "uni"),
                ("print", "uni")} <= by
        assert any(f["type"] == "lending_action" for f in frames)
        hl_quote = next(f for f in frames if f["type"] == "quote" and f["exchange"] == "hl")
        assert len(hl_quote["bids"]) == 20
        uni_print = next(f for f in frames if f["type"] == "print" and f["exchange"] == "uni")
        assert {"blockNumber", "txIndex", "logSender", "tick"} <= set(uni_print)
        assert all(isinstance(f["time"], int) for f in frames)
        # spread is professional+: the API-key session gets it, the anonymous one never.
        assert any(f["type"] == "spread" for f in pro_frames)
        assert not any(f["type"] == "spread" for f in frames)
        # Both sessions see the same uni stream (one global market).
        uni = [f for f in frames if f.get("exchange") == "uni" and f["type"] == "print"]
        pro_uni = [f for f in pro_frames if f["type"] == "print"]
        assert uni and uni[0] in pro_uni

    asyncio.run(main())


def test_no_ack_mode() -> None:
    async def main() -> None:
        async with _server(ack=False, clock=ManualClock()) as srv, \
                aiohttp.ClientSession() as http:
            async with http.ws_connect(srv.url, max_msg_size=MAX) as ws:
                await ws.send_str(_sub("hl", "ETH"))
                await srv.until(lambda: srv.received, what="the subscribe")
                await srv.advance(0.8)
                frames = await _sent(ws, srv, 1)
        assert frames, "the next data frame is the confirmation"
        assert frames[0]["type"] in ("funding", "quote", "print")
        assert not any(f["type"] == "subscribed" for f in frames)

    asyncio.run(main())


def test_history_snapshot_echoes_req_id_and_overlaps_live_prints() -> None:
    async def main() -> None:
        async with _server() as srv, aiohttp.ClientSession() as http:
            async with http.ws_connect(srv.url, max_msg_size=MAX) as ws:
                await ws.send_str(_sub("hl", "ETH"))
                await ws.send_str(_sub("hl", "ETH"))  # idempotent: a double stream would
                live: list[dict[str, Any]] = []  # make `live` differ from the snapshot
                while len(live) < 3:
                    f = await _until(ws, lambda f: f["type"] == "print")
                    live.append(f)
                await ws.send_str(_sub("hl", "ETH", action="history", limit=2, reqId="r-1"))
                seen: list[str] = []
                snap = await _until(ws, lambda f: f["type"] == "snapshot", seen=seen)
                live += [orjson.loads(t) for t in seen if orjson.loads(t)["type"] == "print"]
                assert snap["reqId"] == "r-1" and snap["exchange"] == "hl"
                assert snap["prints"] == live[-2:]
                await ws.send_str(_sub("hl", "ETH", action="history"))
                seen = []
                snap = await _until(ws, lambda f: f["type"] == "snapshot", seen=seen)
                live += [orjson.loads(t) for t in seen if orjson.loads(t)["type"] == "print"]
                assert "reqId" not in snap
                assert snap["prints"] == live  # everything buffered so far, oldest first
                await ws.send_str(_sub("gmx", "BTC", action="history", reqId=7))
                snap = await _until(ws, lambda f: f["type"] == "snapshot")
                assert snap["prints"] == [] and snap["reqId"] == 7

    asyncio.run(main())


def test_rate_limited_by_window_and_by_fault() -> None:
    async def main() -> None:
        async with _server(sub_limit_per_10s=3) as srv, aiohttp.ClientSession() as http:
            async with http.ws_connect(srv.url) as ws:
                for _ in range(3):
                    await ws.send_str(_sub("gmx", "BTC"))
                    ack = await _until(ws, lambda f: f["type"] in ("subscribed", "error"))
                    assert ack["type"] == "subscribed"
                await ws.send_str(_sub("vertex", "ETH"))
                err = await _until(ws, lambda f: f["type"] == "error")
                assert err["code"] == "rate_limited"
                assert isinstance(err["retryAfter"], int) and 1 <= err["retryAfter"] <= 10
            async with http.ws_connect(srv.url) as ws:
                srv.rate_limit(retry_after=5)
                await ws.send_str(_sub("gmx", "BTC"))
                err = await _until(ws, lambda f: f["type"] in ("subscribed", "error"))
                assert (err["code"], err["retryAfter"]) == ("rate_limited", 5)
                await ws.send_str(_sub("gmx", "BTC"))
                ack = await _until(ws, lambda f: f["type"] in ("subscribed", "error"))
                assert ack["type"] == "subscribed"

    asyncio.run(main())


def test_server_closing_then_close_and_ledger_matches_client(tmp_path: Path) -> None:
    ledger_file = tmp_path / "ledger.jsonl"

    async def main() -> None:
        async with _server(ledger_path=str(ledger_file)) as srv, \
                aiohttp.ClientSession() as http:
            async with http.ws_connect(srv.url, max_msg_size=MAX) as ws:
                received: list[str] = []
                await ws.send_str(_sub("hl", "ETH"))
                await ws.send_str(_sub("ammliquidity", "WETH/USDC"))
                await ws.send_str(_sub("rates", "PT-weETH-25JUN2026"))
                await _until(ws, lambda f: f["type"] == "print", seen=received)
                await ws.send_str(_sub("hl", "ETH", action="history", reqId="h"))
                await _until(ws, lambda f: f["type"] == "snapshot", seen=received)
                started = time.monotonic()
                srv.server_closing(reconnect_in_ms=300)
                notice = await _until(ws, lambda f: f["type"] == "server_closing",
                                      seen=received)
                assert notice == {"type": "server_closing", "reconnectIn": 300}
                closing = await _drain_to_close(ws, received)
                assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 1012
                assert time.monotonic() - started >= 0.25
            types = [orjson.loads(t)["type"] for t in received]
            assert types.index("ammliquidity_snapshot") < types.index("server_closing")
            assert srv.ledger_for(1) == received
            assert [(c, s) for c, s, _ in srv.ledger] == [
                (1, i) for i in range(1, len(received) + 1)]
            async with http.get(srv.url.replace("ws://", "http://").replace(
                    "/feed", "/_sim/ledger")) as resp:
                rows = (await resp.json())["frames"]
            assert [r["text"] for r in rows] == received
            # Still accepting connections after server_closing.
            async with http.ws_connect(srv.url) as ws:
                await ws.send_str('{"action":"auth","key":"mk_test_sim"}')
                assert (await _recv(ws))["type"] == "authed"
        lines = [orjson.loads(line) for line in ledger_file.read_bytes().splitlines()]
        assert [(r["conn"], r["text"]) for r in lines if r["conn"] == 1] == [
            (1, t) for t in received]

    asyncio.run(main())


def test_http_faults_ws_path_and_drop() -> None:
    async def main() -> None:
        async with _server() as srv, aiohttp.ClientSession() as http:
            base = srv.url.replace("ws://", "http://").replace("/feed", "")
            async with http.ws_connect(base.replace("http://", "ws://") + "/ws") as ws:
                await ws.send_str('{"action":"auth","key":"mk_test_sim"}')
                assert (await _recv(ws))["type"] == "authed"
                async with http.post(base + "/_sim/inject", json={"text": "{oops"}) as resp:
                    assert resp.status == 200
                msg = await ws.receive(timeout=2.0)
                assert msg.data == "{oops"
                async with http.post(base + "/_sim/stale",
                                     json={"exchange": "hl", "stale": True}) as resp:
                    assert resp.status == 200
                assert await _recv(ws) == {"type": "feed_stale", "exchange": "hl",
                                           "staleSec": 67.4}
                srv.stale("hl", False)
                assert await _recv(ws) == {"type": "feed_live", "exchange": "hl"}
                async with http.post(base + "/_sim/nope", json={}) as resp:
                    assert resp.status == 404
                async with http.post(base + "/_sim/drop", json={}) as resp:
                    assert resp.status == 200
                msg = await ws.receive(timeout=2.0)
                assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR,
                                    aiohttp.WSMsgType.CLOSE)
            async with http.ws_connect(srv.url) as ws:
                srv.drop(code=4000)
                msg = await ws.receive(timeout=2.0)
                assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4000
            async with http.ws_connect(srv.url) as ws:  # the server survived both drops
                await ws.send_str(_sub("gmx", "BTC"))
                assert (await _recv(ws))["type"] == "subscribed"

    asyncio.run(main())


def test_firehose_and_vanishing_client() -> None:
    async def main() -> None:
        async with _server(firehose=3000) as srv, aiohttp.ClientSession() as http:
            # A client that subscribes and vanishes mid-firehose must not hurt anyone.
            rude = await http.ws_connect(srv.url)
            await rude.send_str(_sub("gmx", "BTC"))
            await rude.receive(timeout=2.0)
            await rude.close()
            async with http.ws_connect(srv.url, max_msg_size=MAX) as ws:
                await ws.send_str(_sub("gmx", "BTC"))
                started = time.monotonic()
                texts = []
                for _ in range(3001):
                    msg = await ws.receive(timeout=2.0)
                    texts.append(msg.data)
                assert time.monotonic() - started < 3.0
                assert orjson.loads(texts[0])["type"] == "subscribed"
                kinds = {orjson.loads(t)["type"] for t in texts[1:]}
                assert {"quote", "print"} <= kinds
                assert srv.ledger_for(2)[:3001] == texts  # connection 2 in accept order
                # Paced frames keep coming after the burst.
                later = await _until(ws, lambda f: f.get("exchange") == "gmx", timeout=3.0)
                assert later["type"] in ("quote", "funding")

    asyncio.run(main())


def test_stop_is_fast_and_closes_clients() -> None:
    async def main() -> None:
        srv = MackinacServer()
        await srv.start()
        async with aiohttp.ClientSession() as http:
            a = await http.ws_connect(srv.url)
            b = await http.ws_connect(srv.url.replace("/feed", "/ws"))
            await a.send_str(_sub("hl", "ETH"))
            await a.receive(timeout=2.0)
            started = time.monotonic()
            await srv.stop()
            assert time.monotonic() - started < 1.0
            for ws in (a, b):
                msg = await _drain_to_close(ws, [])
                assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
                await ws.close()

    asyncio.run(main())


def test_serve_prints_url_and_serves() -> None:
    async def main() -> None:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            task = asyncio.create_task(serve("127.0.0.1", 0, seed=2, ack=True))
            for _ in range(100):
                if out.getvalue():
                    break
                await asyncio.sleep(0.02)  # a poll of the banner, not a wait for a time
        line = out.getvalue().strip()
        match = re.fullmatch(r"mackinac simulator listening on ws://127\.0\.0\.1:(\d+)/feed",
                             line)
        assert match, line
        try:
            async with aiohttp.ClientSession() as http, http.ws_connect(
                    f"ws://127.0.0.1:{match.group(1)}/feed") as ws:
                await ws.send_str(_sub("hl", "BTC"))
                assert await _recv(ws) == {"type": "subscribed", "exchange": "hl",
                                           "symbol": "BTC"}
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(main())
