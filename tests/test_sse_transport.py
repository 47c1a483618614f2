"""The shared SSE loop over real loopback sockets, against small aiohttp servers written here:
resume by query parameter and header, the server's retry hint, partial events at a drop,
keep-alives and the idle watchdog, final and transient HTTP refusals, Stop and Send."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from recorder.actions import ConnSpec, Send, Stop
from recorder.config import TransportSettings
from recorder.transport import TRANSPORTS
from recorder.transport.sse import SseConnection

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeLink:
    paused = False  # the journal is never behind here

    async def resumed(self) -> None:
        return None

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.times: list[tuple[str, float]] = []
        self.on_frame: Callable[[bytes], None] | None = None

    def frame(self, conn: str, data: bytes, ts_recv: int) -> None:
        assert isinstance(ts_recv, int) and ts_recv > 1_700_000_000 * 10**9
        self.frames.append(data)
        if self.on_frame is not None:
            self.on_frame(data)

    def event(self, conn: str, ev: str, **fields: Any) -> None:
        self.events.append((ev, fields))
        self.times.append((ev, time.monotonic()))

    def sent(self, conn: str, send: Send, ts: int) -> None:
        raise AssertionError("nothing is ever sent on SSE")

    def names(self) -> list[str]:
        return [e for e, _ in self.events]


async def serve(handler: Handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_get("/stream", handler)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/stream"


async def open_stream(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                       "Cache-Control": "no-cache"})
    await resp.prepare(request)
    return resp


def settings(**kw: Any) -> TransportSettings:
    return TransportSettings(**{"backoff_initial": 0.05, "backoff_max": 0.2,
                                "idle_timeout": 5.0, "connect_timeout": 2.0, **kw})


async def run_conn(url: str, link: FakeLink, until: Callable[[], object] | None = None,
                   timeout: float = 15.0, **kw: Any) -> SseConnection:
    """Run a connection until it ends by itself, or until ``until()`` holds (then stop it);
    TimeoutError after ``timeout`` seconds (a loaded machine is slow, never this slow)."""
    async with aiohttp.ClientSession() as http:
        conn = SseConnection(ConnSpec("s", url, {"X-API-Key": "k1"}, kind="sse"),
                             settings(**kw), link, http)
        stop = asyncio.Event()
        task = asyncio.create_task(conn.run(stop))
        deadline = time.monotonic() + timeout
        while not task.done() and not (until is not None and until()):
            if time.monotonic() > deadline:
                stop.set()
                raise TimeoutError("the connection neither ended nor met the condition")
            await asyncio.wait({task}, timeout=0.01)  # a poll of the condition
        if not task.done():
            stop.set()
            await asyncio.wait_for(task, 5)
        return conn


def test_registered_as_sse() -> None:
    assert TRANSPORTS["sse"] is SseConnection


def test_resume_after_drop_mid_event_with_query_and_header_and_retry_hint() -> None:
    seen: list[dict[str, Any]] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append({"q": request.query.get("last_event_id"),
                     "h": request.headers.get("Last-Event-ID"),
                     "key": request.headers.get("X-API-Key"),
                     "accept": request.headers.get("Accept"), "t": time.monotonic()})
        resp = await open_stream(request)
        if len(seen) == 1:
            await resp.write(b"retry: 300\n\n: keepalive\n\nid: e1\nevent: a\ndata: 1\n\n"
                             b"id: e2\nevent: a\ndata: 2\n\n")
            await resp.write(b"id: e3\nevent: a\nda")  # cut mid-event
            await asyncio.sleep(0.1)  # I/O, not a wait for the client: let the bytes leave
            assert request.transport is not None
            request.transport.abort()
            return resp
        last = int(seen[-1]["q"][1:])
        for n in range(last + 1, 5):
            await resp.write(f"id: e{n}\nevent: a\ndata: {n}\n\n".encode())
        await resp.write(b"data: no id\n\n")
        await asyncio.sleep(0.2)  # the server's behaviour: a stream open a while, then over
        return resp  # clean end of stream

    async def main() -> tuple[FakeLink, SseConnection]:
        runner, url = await serve(handler)
        link = FakeLink()
        try:
            # the third request made, and the second connection's end seen
            conn = await run_conn(url, link, lambda: len(seen) >= 3 and len(link.events) >= 5)
        finally:
            await runner.cleanup()
        return link, conn

    link, conn = asyncio.run(main())
    assert link.frames[:6] == [b"retry: 300\n\n", b"id: e1\nevent: a\ndata: 1\n\n",
                               b"id: e2\nevent: a\ndata: 2\n\n", b"id: e3\nevent: a\ndata: 3\n\n",
                               b"id: e4\nevent: a\ndata: 4\n\n", b"data: no id\n\n"]
    assert seen[0]["q"] is None and seen[0]["h"] is None
    assert seen[0]["key"] == "k1" and seen[0]["accept"] == "text/event-stream"
    assert (seen[1]["q"], seen[1]["h"]) == ("e2", "e2")  # the partial e3 never counted
    # the event without an id did not reset the cursor: the third request resumes from e4
    assert len(seen) >= 3 and (seen[2]["q"], seen[2]["h"]) == ("e4", "e4")
    assert 0.3 <= seen[1]["t"] - seen[0]["t"] - 0.1 < 0.6  # waited the server's retry: 300 ms
    names = link.names()
    assert names[:5] == ["connected", "disconnected", "connected", "resumed", "disconnected"]
    cut = link.events[1][1]["reason"]
    assert "bytes of an unfinished event discarded" in cut
    assert link.events[3][1]["reason"] == "last_event_id=e2"
    assert conn.decoder.keepalives >= 1 and conn.status.reconnects >= 1
    assert conn.status.frames == len(link.frames)


def test_keepalives_feed_the_idle_watchdog_then_silence_reconnects() -> None:
    calls: list[float] = []

    # (the sleeps here are the server's pacing, what the test is about: the client's watchdog
    # must count keep-alives, then see the silence)
    async def handler(request: web.Request) -> web.StreamResponse:
        calls.append(time.monotonic())
        resp = await open_stream(request)
        if len(calls) == 1:
            for _ in range(12):  # 1.2 s of keep-alives, longer than idle_timeout
                await resp.write(b": keepalive\n\n")
                await asyncio.sleep(0.1)
            await asyncio.sleep(5)  # then silence
        else:
            await resp.write(b"data: back\n\n")
            await asyncio.sleep(5)
        return resp

    async def main() -> FakeLink:
        runner, url = await serve(handler)
        link = FakeLink()
        try:
            # the second connection up and its frame read
            await run_conn(url, link, lambda: len(link.events) >= 4 and link.frames,
                           idle_timeout=0.6)
        finally:
            await runner.cleanup()
        return link

    link = asyncio.run(main())
    names = link.names()
    assert names[:4] == ["connected", "idle_timeout", "disconnected", "connected"]
    first_idle = next(t for e, t in link.times if e == "idle_timeout")
    # no idle timeout while comments flowed (1.2 s), one soon after they stopped
    assert 1.7 <= first_idle - link.times[0][1] < 2.8
    # the second connection idles out in turn (its server went quiet too) and comes back
    assert link.frames and set(link.frames) == {b"data: back\n\n"}
    assert link.events[2][1]["reason"] == "idle timeout"


def test_final_http_refusals_stop_and_transient_ones_retry() -> None:
    calls: list[float] = []

    async def main(status: int, body: bytes, headers: dict[str, str] | None = None,
                   calls_wanted: int | None = None) -> tuple[FakeLink, int]:
        """Serve ``status`` until the connection stops by itself (a final refusal) or the
        server has had ``calls_wanted`` requests (a transient one, retried)."""
        calls.clear()

        async def handler(request: web.Request) -> web.StreamResponse:
            calls.append(time.monotonic())
            return web.Response(status=status, body=body, headers=headers,
                                content_type="application/json" if body else None)

        runner, url = await serve(handler)
        link = FakeLink()
        try:
            await run_conn(url, link, None if calls_wanted is None else
                           lambda: len(calls) >= calls_wanted)
        finally:
            await runner.cleanup()
        return link, len(calls)

    err = b'{"error":{"code":"UNAUTHORIZED","message":"Missing or invalid API key."}}'
    # final refusals: the connection stops by itself after one request
    link, n = asyncio.run(main(401, err))
    assert n == 1 and link.names() == ["connect_failed", "stopped"]
    fields = link.events[0][1]
    assert fields["code"] == 401 and "UNAUTHORIZED" in fields["reason"]
    link, n = asyncio.run(main(404, b'{"error":{"code":"NOT_FOUND"}}'))
    assert n == 1 and link.names() == ["connect_failed", "stopped"]
    link, n = asyncio.run(main(204, b""))
    assert n == 1 and "ended the stream" in link.events[-1][1]["reason"]
    link, n = asyncio.run(main(200, b"{}"))  # JSON, not text/event-stream
    assert n == 1 and "not an event stream" in link.events[0][1]["reason"]
    # transient ones: retried (until stopped here)
    link, n = asyncio.run(main(503, b'{"error":{"code":"SERVICE_UNAVAILABLE"}}', calls_wanted=3))
    assert n >= 3 and "stopped" not in link.names()
    link, n = asyncio.run(main(429, b"{}", {"Retry-After": "1"}, calls_wanted=2))
    assert calls[1] - calls[0] >= 1.0  # waited the full second the server asked for


def test_stop_reads_what_follows_briefly_and_never_reconnects() -> None:
    calls = [0]

    async def handler(request: web.Request) -> web.StreamResponse:
        calls[0] += 1
        resp = await open_stream(request)
        await resp.write(b"event: status\ndata: {\"status\":\"committed\"}\n\n")
        await asyncio.sleep(0.2)  # on purpose: this event comes after the Stop, in the grace
        await resp.write(b"event: committed\ndata: {}\n\n")
        await asyncio.sleep(10)  # a server that forgets to close
        return resp

    async def main() -> tuple[FakeLink, float]:
        runner, url = await serve(handler)
        link = FakeLink()
        t0 = time.monotonic()
        try:
            async with aiohttp.ClientSession() as http:
                conn = SseConnection(ConnSpec("s", url, kind="sse"), settings(), link, http)
                link.on_frame = lambda data: conn.submit(Stop("s", "request ended")) \
                    if data.startswith(b"event: status") else None
                conn.submit(Send("s", "{}"))
                await asyncio.wait_for(conn.run(asyncio.Event()), 5)
        finally:
            await runner.cleanup()
        return link, time.monotonic() - t0

    link, took = asyncio.run(main())
    assert calls[0] == 1
    assert link.frames == [b'event: status\ndata: {"status":"committed"}\n\n',
                           b"event: committed\ndata: {}\n\n"]
    assert link.names() == ["error", "connected", "disconnected", "stopped"]
    assert "one-way" in link.events[0][1]["reason"] or "server-to-client" in \
        link.events[0][1]["reason"]
    assert link.events[-1][1]["reason"] == "request ended"
    assert 1.9 < took < 3.5  # the 2 s grace, not the server's 10 s
