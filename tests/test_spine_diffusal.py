"""Regression tests for the spine changes the Diffusal venue needed: lake files of two venues
in one run, the normalizer's on_sent hook, and the venue-wide connection gate in the WS loop."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pyarrow.parquet as pq
from aiohttp import web

from recorder.actions import ConnSpec, Send
from recorder.config import TransportSettings
from recorder.journal import KIND_OUT
from recorder.lake import LakeWriter, lake_files
from recorder.normalize import Normalizer
from recorder.schema import SESSION_EVENTS
from recorder.transport.backoff import RateGate
from recorder.transport.ws import WsConnection
from recorder.venues.diffusal.adapter import make_adapter


def test_two_venues_of_one_run_write_shared_tables_side_by_side(data_dir: Path) -> None:
    for venue in ("mackinac", "diffusal"):
        w = LakeWriter(data_dir, venue, "run-x")
        w.add(SESSION_EVENTS, {"event": "connected", "url": venue}, 1_700_000_000 * 10**9,
              "c", 1)
        w.write(*w.take())
        w.commit_all()
    files = lake_files(data_dir, "session_events", "run-x")
    assert [f.name for f in files] == ["run-x-diffusal-00001.parquet",
                                       "run-x-mackinac-00001.parquet"]
    assert sorted(pq.read_table(f)["url"][0].as_py() for f in files) == [
        "diffusal", "mackinac"]


def test_normalizer_hands_our_sent_messages_to_the_adapter() -> None:
    ad = make_adapter("diffusal", None, {}, offline=True)
    norm = Normalizer(ad)
    rows, actions = norm.process(KIND_OUT, "public-0", 1,
                                 b'{"method":"SUBSCRIBE","params":["global@rfq"],"id":41}')
    assert (rows, list(actions)) == ([], [])
    assert ad.pending[41] == ("public-0", "SUBSCRIBE", ["global@rfq"])
    # a redacted AUTH is still recognised, and its reply is read as the AUTH answer
    norm.process(KIND_OUT, "private", 2, b'{"method":"AUTH","params":"***","id":42}')
    rows, _ = ad.on_frame("private", b'{"result":{"status":"authenticated"},"id":42}')
    assert [t.name for t, _ in rows] == ["diffusal_auth", "session_events"]


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
