"""The WebSocket loop (recorder.transport.ws) against a bare aiohttp server."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from recorder.actions import ConnSpec, Send
from recorder.config import TransportSettings
from recorder.transport.backoff import RateGate
from recorder.transport.ws import WsConnection


class _Link:
    paused = False  # the journal is never behind here

    async def resumed(self) -> None:
        return None

    def __init__(self, gate: RateGate) -> None:
        self.connect_gate = gate
        self.events: list[str] = []

    def frame(self, conn: str, data: bytes, ts_recv: int) -> None:
        pass

    def event(self, conn: str, ev: str, **fields: Any) -> None:
        self.events.append(ev)

    def sent(self, conn: str, send: Send, ts: int) -> None:
        pass


def test_connection_attempts_wait_for_the_venue_gate() -> None:
    async def main() -> tuple[list[float], list[str]]:
        accepted: list[float] = []

        async def handler(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            accepted.append(time.monotonic())
            await ws.send_str(orjson.dumps({"hi": 1}).decode())
            await ws.close(code=4029, message=b"rate limited")  # close at once, every time
            return ws

        app = web.Application()
        app.router.add_get("/ws", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        link = _Link(RateGate(3, 1.2))
        settings = TransportSettings(backoff_initial=0.01, backoff_max=0.02)
        stop = asyncio.Event()
        async with aiohttp.ClientSession() as http:
            conns = [WsConnection(ConnSpec(f"c{i}", f"ws://127.0.0.1:{port}/ws"), settings,
                                  link, http) for i in range(2)]
            tasks = [asyncio.create_task(c.run(stop)) for c in conns]
            # A fixed time on purpose: the window in which the gate must hold the sockets
            # (reconnecting every ~10 ms unchecked) to three connects.
            await asyncio.sleep(1.0)
            stop.set()
            await asyncio.gather(*tasks)
        await runner.cleanup()
        return accepted, link.events

    accepted, events = asyncio.run(main())
    # two sockets reconnecting every ~10 ms would connect dozens of times; the gate lets
    # three through in any 1.2 s
    assert len(accepted) == 3, accepted
    assert events.count("disconnected") == 3
