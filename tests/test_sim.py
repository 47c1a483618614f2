"""The simulator driver (``recorder.sim``): the fault vocabulary every venue answers to, the
ledger's one rule (a frame is in it once handed to the socket), the manual clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
import pytest

from recorder.sim import ManualClock
from recorder.sim.driver import Simulator
from recorder.venues import CATALOGUE
from recorder.venues.derive.server import DeriveServer
from recorder.venues.diffusal.server import DiffusalServer
from recorder.venues.mackinac.server import MackinacServer
from recorder.venues.powertrade.server import PowerTradeServer
from recorder.venues.totalis.server import TotalisServer

#: every venue's simulator, and the URL of one of its WebSocket endpoints
VENUES: dict[str, tuple[Callable[..., Simulator[Any]], Callable[[Any], str]]] = {
    "mackinac": (MackinacServer, lambda s: s.url),
    "derive": (DeriveServer, lambda s: s.url),
    "powertrade": (PowerTradeServer, lambda s: s.url),
    "diffusal": (DiffusalServer, lambda s: s.url + "/ws/public"),
    "totalis": (TotalisServer, lambda s: s.ws_url),
}


def test_every_registered_venue_is_here() -> None:
    assert set(VENUES) == set(CATALOGUE.venues), "a venue's simulator is missing from VENUES"


async def _text(ws: aiohttp.ClientWebSocketResponse) -> str:
    msg = await ws.receive(timeout=3.0)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return msg.data


@pytest.mark.parametrize("venue", sorted(VENUES))
def test_every_venue_answers_the_same_drop_and_inject(venue: str) -> None:
    """``POST /_sim/inject {"text": ...}`` and ``POST /_sim/drop``: a stable interface, the
    same on every venue; the injected text is ledgered like any frame."""
    make, ws_url = VENUES[venue]

    async def main() -> None:
        # a clock nobody advances: no market frame comes between the ones the test sends
        server = make(clock=ManualClock())
        await server.start()
        control = server.base_url("http", "/_sim")
        try:
            async with aiohttp.ClientSession() as http:
                ws = await http.ws_connect(ws_url(server))
                await server.until(lambda: server.connections(), what="the session")
                (no,) = server.connections()
                skip = len(server.ledger_for(no))  # a greeting, on some venues
                async with http.post(f"{control}/inject", json={"text": "{oops"}) as r:
                    assert await r.json() == {"ok": True, "result": 1}
                for _ in range(skip):
                    await _text(ws)
                assert await _text(ws) == "{oops"
                assert server.ledger_for(no)[skip:] == ["{oops"]
                async with http.get(f"{control}/ledger") as r:
                    assert [f["text"] for f in (await r.json())["frames"]][skip:] == ["{oops"]
                async with http.post(f"{control}/drop", json={}) as r:
                    assert await r.json() == {"ok": True, "result": 1}
                msg = await ws.receive(timeout=3.0)
                assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR,
                                    aiohttp.WSMsgType.CLOSE)
                await server.until(lambda: not server.connections(), what="the drop")
                server.inject("after the drop")  # nobody to send it to: not ledgered
                assert "after the drop" not in server.ledger_for(no)
                async with http.post(f"{control}/nope", json={}) as r:
                    assert r.status == 404 and "drop" in (await r.json())["error"]
                async with http.post(f"{control}/inject", json={"txt": "x"}) as r:
                    assert r.status == 400  # a wrong argument name
                again = await http.ws_connect(ws_url(server))  # still serving
                await again.close()
                await ws.close()
        finally:
            await server.stop()

    asyncio.run(main())


def test_a_frame_cut_mid_way_is_not_in_the_ledger_and_the_client_never_completes_it() -> None:
    async def main() -> None:
        server = MackinacServer(clock=ManualClock())
        await server.start()
        try:
            async with aiohttp.ClientSession() as http:
                ws = await http.ws_connect(server.url)
                await server.until(lambda: server.connections(), what="the session")
                server.inject("whole")
                assert await _text(ws) == "whole"
                assert server.drop(mid_frame=True) == 1
                server.inject('{"long":"' + "x" * 4000 + '"}')  # its first half goes out
                msg = await ws.receive(timeout=3.0)
                assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
                assert server.ledger_for(1) == ["whole"]
                assert [(c.conn, c.seq, c.text[:9]) for c in server.cuts] == [
                    (1, 2, '{"long":"')]
        finally:
            await server.stop()

    asyncio.run(main())


def test_pause_stops_the_market_not_the_answers() -> None:
    async def main() -> None:
        server = MackinacServer(clock=ManualClock())
        await server.start()
        try:
            async with aiohttp.ClientSession() as http:
                ws = await http.ws_connect(server.url)
                async with http.post(server.base_url("http", "/_sim/pause"), json={}) as r:
                    assert r.status == 200 and server.paused
                await ws.send_str('{"action":"subscribe","exchange":"hl","symbol":"ETH"}')
                assert orjson.loads(await _text(ws))["type"] == "subscribed"  # answered
                await server.advance(1.0)
                assert len(server.ledger_for(1)) == 1  # no market frame while paused
                server.pause(False)
                await server.advance(1.0)
                assert len(server.ledger_for(1)) > 1
        finally:
            await server.stop()

    asyncio.run(main())


def test_a_venue_fault_over_http_returns_its_result() -> None:
    async def main() -> None:
        server = DeriveServer(clock=ManualClock())
        await server.start()
        try:
            async with aiohttp.ClientSession() as http, http.post(
                    server.base_url("http", "/_sim/list_instrument"),
                    json={"currency": "BTC"}) as r:
                listed = (await r.json())["result"]
            assert listed.startswith("BTC-") and listed in server.synth.instruments
        finally:
            await server.stop()

    asyncio.run(main())


def test_the_ledger_file_holds_what_was_ledgered(tmp_path: Any) -> None:
    path = tmp_path / "ledger.jsonl"

    async def main() -> list[str]:
        server = MackinacServer(clock=ManualClock(), ledger_path=str(path))
        await server.start()
        try:
            async with aiohttp.ClientSession() as http:
                ws = await http.ws_connect(server.url.replace("/feed", "/ws"))
                await ws.send_str('{"action":"subscribe","exchange":"hl","symbol":"ETH"}')
                await server.advance(0.2)
                return server.ledger_for(1)
        finally:
            await server.stop()

    sent = asyncio.run(main())
    rows = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert len(sent) > 1 and [(r["conn"], r["path"], r["text"]) for r in rows] == [
        (1, "/ws", t) for t in sent]
    assert [r["seq"] for r in rows] == list(range(1, len(sent) + 1))


def test_manual_clock_runs_each_timer_at_its_time_in_order() -> None:
    async def main() -> list[tuple[str, int]]:
        clock = ManualClock(start_ns=1_000_000_000_000)
        seen: list[tuple[str, int]] = []

        def at(name: str) -> Callable[[], None]:
            return lambda: seen.append((name, clock.now_ms()))

        clock.every(0.3, at("tick"))
        clock.call_later(0.5, at("once"))
        cancelled = clock.call_later(0.4, at("never"))
        cancelled.cancel()
        await clock.advance(0.6)
        assert clock.now_ms() == 1_000_600
        await clock.advance(0.3)  # the tick due at exactly 0.9 runs
        return seen

    assert asyncio.run(main()) == [("tick", 1_000_300), ("once", 1_000_500),
                                   ("tick", 1_000_600), ("tick", 1_000_900)]
