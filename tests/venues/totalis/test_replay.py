"""Native replay of Totalis: the simulator's server side in ``replay=True`` mode, fed by the
journal (SSE event blocks with their recorded ids, WebSocket frames routed by channel)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from recorder import journal as jr
from recorder.config import Config, RecorderSettings, TransportSettings, VenueConfig
from recorder.sim import ManualClock
from recorder.sse import SseDecoder, parse_event
from recorder.venues.totalis.server import TotalisServer
from tests.e2e import run_scenario
from tests.venues.replaying import record_native_replay

KEY = "api_test_replay"
KEY_ENV = "TOTALIS_REPLAY_KEY"


def _config(data_dir: Path, url: str) -> Config:
    ts = TransportSettings(backoff_initial=0.05, backoff_max=0.5)
    return Config(Path("test.toml"), RecorderSettings(
        data_dir=data_dir, lake_flush_seconds=0.5, lake_rotate_seconds=2.0,
        journal_flush_ms=50), (VenueConfig("totalis", "totalis", url=url, transport=ts,
                                           options={"api_key_env": KEY_ENV}),))


# The replay server's own answers, never replayed: the SSE `retry:` hint sent first on every
# connection (a block without data) and the WebSocket's replies to the recorder's own
# messages (auth result, pong, error).
_WS_OWN = {"auth:success", "auth:error", "pong", "error"}


def _own(conn: str, data: bytes) -> bool:
    if conn == "ws":
        return orjson.loads(data).get("type") in _WS_OWN
    return parse_event(data).data is None


def _venue_frames(data_dir: Path, run: str) -> tuple[dict[str, list[bytes]], int]:
    out: dict[str, list[bytes]] = {}
    own = 0
    for r in jr.read_run(data_dir, "totalis", run):
        if r.kind != jr.KIND_IN:
            continue
        if _own(r.conn, r.data):
            own += 1
        else:
            out.setdefault(r.conn, []).append(r.data)
    return out, own


def test_native_replay_round_trip_gives_the_same_frames_per_connection(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Record the simulator (with every SSE stream cut mid-event and the WebSocket dropped,
    so the recording holds resumes); serve it natively; record the replay: per connection
    (``mm``, every ``qr:<id>`` and ``co:<id>``, ``ws``) the venue's frames are the same bytes
    in the same order. Left out on both sides: ``retry:`` blocks and the WS auth:success /
    pong replies (each server's own answers; the replay server sends its own)."""
    monkeypatch.setenv(KEY_ENV, KEY)
    first, second = tmp_path / "a" / "data", tmp_path / "b" / "data"

    async def record_sim() -> str:
        server = TotalisServer(seed=7, rate=2.0, api_keys=[KEY], keepalive=0.5, retry_ms=100,
                               cashout_chance=0.7)
        await server.start()

        def recorded_enough() -> bool:
            ws = {m["type"] for m in server.ws_sent()}
            return ({"quote:accepted", "mm_quote:accepted", "position:created"} <= ws
                    and len(server.sent_events("mm")) > 20 and server.conns("qr:")
                    and server.conns("co:"))

        def resumed() -> bool:  # the MM stream's second life, the WebSocket's too
            return sum(e["event"] == "connected" for e in server.sent_events("mm")) >= 2 \
                and len(server.conns("ws")) >= 2

        async def scenario(stop: asyncio.Event) -> None:
            await server.until(recorded_enough, 30, "every kind of frame")
            server.drop(kind="ws", code=1011)
            server.drop(mid_frame=True)
            await server.until(resumed, 30, "the resumed streams")

        # the market stops, every frame sent is journaled: the recording is whole
        return (await run_scenario(_config(first, server.url), server, scenario)).run_id

    run_a = asyncio.run(record_sim())
    run_b, published = record_native_replay(
        first, "totalis", lambda url: _config(second, url), speed=2.0, linger=0.5,
        server_options={"totalis": {"api_keys": [KEY], "keepalive": 0.5}})
    a, own_a = _venue_frames(first, run_a)
    b, _ = _venue_frames(second, run_b)
    assert published["totalis"] == sum(map(len, a.values())) + own_a
    assert len(a["mm"]) > 20 and len(a["ws"]) > 5
    assert any(c.startswith("qr:") for c in a) and any(c.startswith("co:") for c in a)
    # the recording itself resumed (a second `connected` on the MM stream)
    assert sum(b'event: connected' in f for f in a["mm"]) >= 2
    assert b.keys() == a.keys()
    for conn in a:
        assert b[conn] == a[conn], conn
    types = {orjson.loads(f)["type"] for f in b["ws"]}
    assert {"quote:accepted", "mm_quote:accepted", "position:created"} <= types


# --- the server on its own: resume, 404/204, keep-alives, WS routing --------------------------

def _block(ev_id: str, event: str, data: dict[str, Any]) -> bytes:
    return f"id: {ev_id}\nevent: {event}\ndata: {orjson.dumps(data).decode()}\n\n".encode()


async def _read_sse(session: aiohttp.ClientSession, url: str, n: int,
                    headers: dict[str, str] | None = None) -> tuple[int, list[bytes], int]:
    """Status, the first ``n`` event blocks (or all until the stream ends), keep-alives."""
    dec = SseDecoder()
    blocks: list[bytes] = []
    async with session.get(url, headers={"X-API-Key": KEY, **(headers or {})}) as resp:
        if resp.status != 200:
            return resp.status, [], 0
        try:
            async with asyncio.timeout(3.0):
                async for chunk in resp.content.iter_any():
                    blocks += [b for b in dec.feed(chunk) if parse_event(b).data is not None]
                    if len(blocks) >= n:
                        break
        except TimeoutError:
            pass
    return 200, blocks[:n], dec.keepalives


def test_replay_server_resume_request_streams_and_keepalives() -> None:
    async def main() -> None:
        srv = TotalisServer(replay=True, api_keys=[KEY], keepalive=0.1, clock=ManualClock())
        await srv.start()
        try:
            mm = [_block("1-0", "connected", {"mm_id": "did:privy:x"}),
                  _block("1-1", "snapshot_begin", {"page_size": 500}),
                  _block("1-2", "snapshot_complete", {"pages": 0, "total": 0}),
                  _block("2-0", "quote_request", {"id": "q1"}),
                  _block("3-0", "quote_request_expired", {"id": "q1", "reason": "expired"})]
            assert srv.publish(b"retry: 1000\n\n", "mm") == 0  # the server's own
            for raw in mm:
                srv.publish(raw, "mm")
            base = srv.url + "/v1/mm/quote-requests/stream"
            async with aiohttp.ClientSession() as s:
                st, got, _ = await _read_sse(s, base, 5)
                assert (st, got) == (200, mm)  # fresh: from the recorded connected
                st, got, _ = await _read_sse(s, base + "?last_event_id=1-2", 2)
                assert got == mm[3:]  # resume: no hole, no repeat
                st, got, _ = await _read_sse(s, base, 1, {"Last-Event-ID": "2-0"})
                assert got == mm[4:]  # and nothing else was sent (the clock stood still)
                assert srv.ledger_for(srv.conns()[-1]) == ["retry: 1000\n\n", mm[4].decode()]
                st, got, _ = await _read_sse(s, base + "?last_event_id=nope", 1)
                assert got == mm[:1]  # unknown id: as a fresh connection
                # the resumed client waits for what is still to come, then keep-alives flow
                opened = len(srv.conns())
                task = asyncio.create_task(_read_sse(s, base + "?last_event_id=3-0", 1))
                await srv.until(lambda: len(srv.conns()) > opened, what="the resume")
                await srv.advance(0.35)  # three keep-alives
                live = _block("4-0", "quote_request", {"id": "q2"})
                assert srv.publish(live, "mm") == 1
                st, got, keepalives = await task
                assert got == [live] and keepalives == 3
                # per-request streams: 404 unless the recording has the request
                qr = srv.url + "/v1/quote-requests/{}/stream"
                assert (await _read_sse(s, qr.format("zz"), 1))[0] == 404
                assert (await _read_sse(s, srv.url + "/v1/mm/quote-requests/stream", 1,
                                        {"X-API-Key": "bad"}))[0] == 401
                opened = len(srv.conns())
                task = asyncio.create_task(_read_sse(s, qr.format("q2"), 9))
                await srv.until(lambda: len(srv.conns()) > opened, what="the request stream")
                evs = [_block("5-0", "best_quote", {"book_seq": 1, "best_quote": None}),
                       _block("5-1", "status", {"status": "expired", "committed_rfq_id": None}),
                       _block("5-2", "expired", {"quote_request_id": "q2"})]
                for raw in evs:
                    srv.publish(raw, "qr:q2")
                st, got, _ = await task
                assert (st, got) == (200, evs)  # and the stream closed after `expired`
                st, got, _ = await _read_sse(s, qr.format("q2") + "?last_event_id=5-0", 9)
                assert got == evs[1:]
                assert (await _read_sse(s, qr.format("q2") + "?last_event_id=5-2", 1))[0] == 204
                # a duplicated recorded id resumes after its first copy (no hole)
                dup = [_block("6-0", "quote_request", {"id": "q3"}),
                       _block("6-1", "quote_request", {"id": "q4"}),
                       _block("6-0", "quote_request", {"id": "q5"})]
                for raw in dup:
                    srv.publish(raw, "mm")
                st, got, _ = await _read_sse(s, base + "?last_event_id=6-0", 2)
                assert got == dup[1:]
        finally:
            await srv.stop()

    asyncio.run(main())


def test_replay_server_routes_ws_frames_by_channel() -> None:
    async def main() -> None:
        srv = TotalisServer(replay=True, api_keys=[KEY], house_id="did:privy:house")
        await srv.start()
        try:
            async with aiohttp.ClientSession() as s, \
                    s.ws_connect(srv.ws_url) as w1, s.ws_connect(srv.ws_url) as w2:
                auth = orjson.dumps({"type": "auth", "api_key": KEY}).decode()
                await w1.send_str(auth)
                await w2.send_str(auth)
                assert (await w1.receive_json())["type"] == "auth:success"
                assert (await w2.receive_json())["user_id"] == "did:privy:house"
                await w1.send_str('{"type":"subscribe","channel":"mm:quotes:did:privy:house"}')
                await w1.send_str('{"type":"subscribe","channel":"rfq:r1"}')
                await w2.send_str('{"type":"subscribe","channel":"rfq:r2"}')
                await w2.send_str('{"type":"ping"}')
                assert (await w2.receive_json())["type"] == "pong"  # its own, not replayed
                frames = [b'{"type":"auth:success","user_id":"did:privy:rec"}',
                          b'{"type":"quote:accepted","data":{"quote_id":"a","rfq_id":"r1"}}',
                          b'{"type":"position:created","data":{"rfq_id":"r2"}}',
                          b'{"type":"position:settled","data":{"rfq_id":"r1"}}',
                          b'{"type":"pong","timestamp":"2026-06-01T12:00:00.000Z"}',
                          b'{"type":"position:created","data":{"rfq_id":"r3"}}']
                assert [srv.publish(f, "ws") for f in frames] == [0, 1, 1, 1, 0, 0]
                got1 = [await w1.receive_str() for _ in range(2)]
                got2 = [await w2.receive_str()]
                assert got1 == [frames[1].decode(), frames[3].decode()]
                assert got2 == [frames[2].decode()]
        finally:
            await srv.stop()

    asyncio.run(main())
