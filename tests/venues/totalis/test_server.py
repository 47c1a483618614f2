"""Tests of the Totalis simulator: the pure synth (lifecycle consistency across the SSE and WS
sides) and the aiohttp server over loopback (auth, ids, snapshot, resume, keep-alives, cuts,
per-request streams, the WebSocket grammar)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from recorder.sim import ManualClock
from recorder.sse import SseDecoder, parse_event
from recorder.venues.totalis.server import TotalisServer, serve
from recorder.venues.totalis.synth import Out, TotalisSynth, iso

T0 = 1_780_000_000_000
KEY = "api_test_simulator_key"
H = {"X-API-Key": KEY}


def run_synth(seed: int = 3, ms: int = 30_000, **kw: Any) -> tuple[TotalisSynth, list[Out]]:
    s = TotalisSynth(seed, **kw)
    out: list[Out] = []
    for t in range(T0, T0 + ms, 50):
        out += s.tick(t)
    return s, out


# --- the synth ---------------------------------------------------------------------------------

def test_iso_matches_the_stdlib() -> None:
    for ms in (0, T0, T0 + 999, 951_782_400_123, 4_102_444_799_999):
        d = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
        assert iso(ms) == d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def test_synth_is_deterministic() -> None:
    assert run_synth(7, 8000)[1] == run_synth(7, 8000)[1]
    assert run_synth(7, 8000)[1] != run_synth(8, 8000)[1]


def test_every_request_lives_and_ends_consistently_on_both_sides() -> None:
    synth, outs = run_synth(3, 40_000, won_absent=0.3)
    by: dict[str, list[Out]] = {}
    for o in outs:
        by.setdefault(o.target, []).append(o)
    created = [o.data["id"] for o in by["mm"] if o.event == "quote_request"]
    closed = {o.data["id"]: o.data for o in by["mm"] if o.event == "quote_request_expired"}
    assert len(created) > 60 and len(set(created)) == len(created)
    ended = [r for r in created if r in closed]
    assert len(ended) >= len(created) - len(synth.requests)
    won_seen: set[Any] = set()
    rfqs: dict[str, bool] = {}
    for rid in ended:
        stream = by[f"qr:{rid}"]
        assert stream[0].event == "best_quote" and stream[0].data["best_quote"] is None
        books = [o for o in stream if o.event == "best_quote"]
        assert [o.data["book_seq"] for o in books] == list(range(1, len(books) + 1))
        status, terminal = stream[-2], stream[-1]
        assert status.event == "status" and terminal.final and terminal.event == status.data[
            "status"]
        assert not any(o.final for o in stream[:-1])
        assert closed[rid]["reason"] == status.data["status"]
        if status.data["status"] == "committed":
            rfq = status.data["committed_rfq_id"]
            assert terminal.data == {"quote_request_id": rid, "rfq_id": rfq}
            best = books[-1].data["best_quote"]
            house = best["market_maker_id"] == synth.house
            if "won" in closed[rid]:
                assert closed[rid]["won"] is house
            won_seen.add(closed[rid].get("won", "absent"))
            rfqs[rfq] = house
        else:
            assert status.data["committed_rfq_id"] is None and closed[rid]["won"] is False
    assert won_seen == {True, False, "absent"}
    # WebSocket side: the house MM's wins, in both orders; positions for every RFQ
    ch = synth.quote_channel
    mm_quotes = by[ch]
    orders = set()
    for o in mm_quotes:
        if o.event in ("quote:accepted", "mm_quote:accepted"):
            rfq = o.data["rfq_id"]
            assert rfqs[rfq] is True
            pair = [x for x in mm_quotes if x.data.get("rfq_id") == rfq and x.event in (
                "quote:accepted", "mm_quote:accepted")]
            assert len(pair) == 2 and pair[0].data["quote_id"] == pair[1].data["quote_id"]
            orders.add(tuple(x.event for x in pair))
    assert len(orders) == 2  # either may come first
    rejected = [o for o in mm_quotes if o.event == "quote:rejected"]
    assert rejected and all(rfqs[o.data["rfq_id"]] is False for o in rejected)
    for rfq in rfqs:
        events = [o.event for o in by.get(f"ws:rfq:{rfq}", [])]
        if events:  # (the run may end before a position settles)
            assert events[0] == "position:created"
            ends = [i for i, e in enumerate(events) if e in ("position:settled",
                                                             "position:cancelled")]
            assert ends in ([], [len(events) - 1])
    settled = [o for t, os in by.items() if t.startswith("ws:rfq:") for o in os
               if o.event == "position:settled"]
    assert settled and all(len(o.data["tx_signature"]) == 88 for o in settled)
    # cashouts: one stream each, book then a single terminal status
    cos = [o.data["cashout_request_id"] for o in by["mm"] if o.event == "cashout_request"]
    assert cos
    for cid in cos:
        stream = by.get(f"co:{cid}", [])
        if stream and stream[-1].final:
            assert [o.event for o in stream[:-1]] == ["best_quote"] * (len(stream) - 1)
            assert stream[-1].data["status"] in ("committed", "declined", "expired", "cancelled")


def test_gap_every_skips_book_seq() -> None:
    _, outs = run_synth(3, 8000, gap_every=4)
    seqs: dict[str, list[int]] = {}
    for o in outs:
        if o.event == "best_quote" and o.target.startswith("qr:"):
            seqs.setdefault(o.target, []).append(o.data["book_seq"])
    jumps = sum(1 for s in seqs.values() for a, b in zip(s, s[1:], strict=False) if b > a + 1)
    assert jumps > 3
    assert all(b > a for s in seqs.values() for a, b in zip(s, s[1:], strict=False))


# --- the server -------------------------------------------------------------------------------
# On a manual clock: the market moves only when a test advances it, and a test then reads
# exactly what the server's ledger says it wrote to that connection; nothing waits for a
# fixed time.

Event = tuple[str, str, Any]  # (id, event, data)


@contextlib.asynccontextmanager
async def running(**opts: Any) -> AsyncIterator[TotalisServer]:
    srv = TotalisServer(**{"api_keys": [KEY], "keepalive": 0.2, "retry_ms": 50,
                           "clock": ManualClock(), **opts})
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


class Stream:
    """An SSE response being read, and the server session it is."""

    def __init__(self, resp: aiohttp.ClientResponse, srv: TotalisServer) -> None:
        self.resp, self.srv, self.no = resp, srv, srv.conns()[-1]
        self.dec = SseDecoder()

    def _events(self, chunk: bytes) -> list[Event]:
        return [(ev.id or "", ev.event, orjson.loads(ev.data)) for ev in map(
            parse_event, self.dec.feed(chunk)) if ev.data is not None]

    async def sent(self, seconds: float = 0.0) -> list[Event]:
        """Let ``seconds`` of the server's clock pass; the events it wrote meanwhile (every
        write is a block with fields or a keep-alive comment: read until all are in)."""
        await self.srv.advance(seconds)
        out: list[Event] = []
        while self.dec.blocks + self.dec.keepalives < len(self.srv.ledger_for(self.no)):
            out += self._events(await asyncio.wait_for(self.resp.content.readany(), 3.0))
        return out

    async def to_end(self) -> list[Event]:
        """Everything until the server ends the response (or the connection dies)."""
        out: list[Event] = []
        with contextlib.suppress(aiohttp.ClientError):
            while chunk := await asyncio.wait_for(self.resp.content.readany(), 3.0):
                out += self._events(chunk)
        return out


def test_auth_snapshot_ids_keepalive_and_retry() -> None:
    async def main() -> None:
        async with running(seed=2) as srv, aiohttp.ClientSession() as http:
            url = srv.url + "/v1/mm/quote-requests/stream"
            async with http.get(url) as r:
                assert r.status == 401
                assert (await r.json())["error"]["code"] == "UNAUTHORIZED"
            async with http.get(url, headers={"X-API-Key": "api_wrong"}) as r:
                assert r.status == 401
            await srv.advance(1.5)  # some requests are active now
            async with http.get(url, headers={"Authorization": f"Bearer {KEY}"}) as r:
                assert r.status == 200 and r.headers["Content-Type"] == "text/event-stream"
                s = Stream(r, srv)
                events = await s.sent(1.0)
            names = [e[1] for e in events]
            assert names[:2] == ["connected", "snapshot_begin"]
            k = names.index("snapshot_complete")
            snap = events[2:k]
            assert snap and {e[1] for e in snap} <= {"quote_request", "cashout_request"}
            assert events[k][2] == {"pages": 1, "total": len(snap)}
            assert events[0][2] == {"mm_id": srv.house_id}
            assert all(e[0] for e in events) and len({e[0] for e in events}) == len(events)
            assert s.dec.retry_ms == 50 and s.dec.keepalives == 5  # every 0.2 s for 1 s
            # the ledger saw the same, in the same order
            ledger = [(e["id"], e["event"]) for e in srv.sent_events("mm")]
            assert ledger == [(e[0], e[1]) for e in events]

    asyncio.run(main())


def test_resume_replays_exactly_what_followed_by_query_or_header() -> None:
    async def main() -> None:
        async with running(seed=4, rate=3.0) as srv, aiohttp.ClientSession() as http:
            url = srv.url + "/v1/mm/quote-requests/stream"
            async with http.get(url, headers=H) as r:
                first = await Stream(r, srv).sent(0.8)
            cut = first[-3]  # pretend the last two never arrived
            await srv.advance(0.5)
            for how in ("query", "header"):
                params = {"last_event_id": cut[0]} if how == "query" else None
                headers = dict(H, **({"Last-Event-ID": cut[0]} if how == "header" else {}))
                async with http.get(url, params=params, headers=headers) as r:
                    again = await Stream(r, srv).sent(0.5)
                assert again[0][1] == "connected" and again[1][1] != "snapshot_begin"
                log = [i for i, _, _ in srv.streams["mm"].log]
                after = log[log.index(cut[0]) + 1:]
                got = [e[0] for e in again[1:]]
                assert got == after and len(got) >= 2
                assert got[:2] == [first[-2][0], first[-1][0]]
            assert [r["mode"] for r in srv.requests_seen[-2:]] == ["replay", "replay"]
            # an unknown (or too old) id: a fresh snapshot
            async with http.get(url, params={"last_event_id": "1-0"}, headers=H) as r:
                fresh = await Stream(r, srv).sent()
            assert [e[1] for e in fresh[:2]] == ["connected", "snapshot_begin"]

    asyncio.run(main())


def test_cut_mid_event_then_resume_gets_it_whole() -> None:
    async def main() -> None:
        async with running(seed=6, rate=3.0) as srv, aiohttp.ClientSession() as http:
            url = srv.url + "/v1/mm/quote-requests/stream"
            async with http.get(url, headers=H) as r:
                s = Stream(r, srv)
                events = await s.sent(0.3)
                assert srv.drop(kind="mm", mid_frame=True) == 1
                # read while the cut happens: aiohttp raises the abort before handing over
                # bytes that were still unread
                reading = asyncio.create_task(s.to_end())
                await srv.advance(2.0)  # the next event is cut in half
                events += await reading
            assert s.dec.pending > 0  # half an event, never completed
            part = [parse_event(c.text.encode()).id for c in srv.cuts]
            assert len(part) == 1 and part[0] not in {e[0] for e in events}
            async with http.get(url, params={"last_event_id": s.dec.last_event_id},
                                headers=H) as r:
                again = await Stream(r, srv).sent()
            assert again[1][0] == part[0]

    asyncio.run(main())


def test_request_streams_fresh_replay_end_204_404_403() -> None:
    async def main() -> None:
        async with running(seed=8, rate=2.0) as srv, aiohttp.ClientSession() as http:
            await srv.advance(0.4)
            rid = next(iter(srv.synth.requests))
            url = f"{srv.url}/v1/quote-requests/{rid}/stream"
            async with http.get(url, headers=H) as r:
                assert r.status == 200
                s = Stream(r, srv)
                for _ in range(100):  # the request's life, until the server closes it
                    if srv.streams[f"qr:{rid}"].ended:
                        break
                    await srv.advance(0.5)
                events = await s.to_end()
            names = [e[1] for e in events]
            assert names[0] == "best_quote" and names[-2] == "status"
            assert names[-1] == events[-2][2]["status"]
            seqs = [e[2]["book_seq"] for e in events if e[1] == "best_quote"]
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
            # a fresh connection starts at the latest book, then the end, then closes
            async with http.get(url, headers=H) as r:
                again = await Stream(r, srv).to_end()
            assert [e[1] for e in again] == ["best_quote", names[-2], names[-1]]
            assert again[0][2]["book_seq"] == seqs[-1]
            # resuming from the last event: nothing more will come
            async with http.get(url, headers=dict(H, **{"Last-Event-ID": events[-1][0]})) as r:
                assert r.status == 204
            async with http.get(f"{srv.url}/v1/quote-requests/nope/stream", headers=H) as r:
                assert r.status == 404 and (await r.json())["error"]["code"] == "NOT_FOUND"
            async with http.get(f"{srv.url}/v1/cashout-requests/nope/stream", headers=H) as r:
                assert r.status == 404
        async with running(seed=8, forbid_request_streams=True) as srv, \
                aiohttp.ClientSession() as http:
            await srv.advance(0.3)
            rid = next(iter(srv.synth.requests))
            async with http.get(f"{srv.url}/v1/quote-requests/{rid}/stream", headers=H) as r:
                assert r.status == 403 and (await r.json())["error"]["code"] == "FORBIDDEN"

    asyncio.run(main())


async def ws_recv(ws: aiohttp.ClientWebSocketResponse, timeout: float = 2.0) -> dict[str, Any]:
    msg = await ws.receive(timeout=timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return orjson.loads(msg.data)


def test_ws_subscribe_before_auth_ignored_when_so_configured() -> None:
    async def main() -> None:
        async with running(seed=9, subscribe_before_auth="ignore") as srv, \
                aiohttp.ClientSession() as http:
            async with http.ws_connect(srv.ws_url) as ws:
                await ws.send_str('{"type":"subscribe","channel":"mm:quotes:x"}')
                await ws.send_str('{"type":"ping"}')
                assert (await ws_recv(ws))["type"] == "pong"  # no error frame before it

    asyncio.run(main())


def test_ws_grammar() -> None:
    before_auth = "reject"

    async def main() -> None:
        async with running(seed=9, rate=3.0, subscribe_before_auth=before_auth) as srv, \
                aiohttp.ClientSession() as http:
            async with http.ws_connect(srv.ws_url) as ws:
                await ws.send_str('{"type":"subscribe","channel":"mm:quotes:x"}')
                await ws.send_str('{"type":"ping"}')
                first = await ws_recv(ws)
                if before_auth == "reject":
                    assert first == {"type": "error", "message": "Not authenticated"}
                    first = await ws_recv(ws)
                assert first["type"] == "pong"
                dt.datetime.fromisoformat(first["timestamp"].replace("Z", "+00:00"))
                await ws.send_str(orjson.dumps({"type": "auth", "api_key": KEY}).decode())
                assert await ws_recv(ws) == {"type": "auth:success", "user_id": srv.house_id,
                                             "user_type": "market_maker"}
                await ws.send_str(orjson.dumps({"type": "subscribe", "channel":
                                                f"mm:quotes:{srv.house_id}"}).decode())
                await srv.until(lambda: len(srv.received) == 4, what="the subscribe")
                read = len(srv.ledger_for(1))
                for _ in range(100):  # until four quote events went out
                    if len(srv.ledger_for(1)) >= read + 4:
                        break
                    await srv.advance(0.5)
                got = [await ws_recv(ws) for _ in srv.ledger_for(1)[read:]]
                assert len(got) >= 4 and all(set(m) == {"type", "data"} for m in got)
                assert all(m["type"].startswith("quote:") or m["type"] == "mm_quote:accepted"
                           for m in got)
                await ws.send_str(orjson.dumps({"type": "unsubscribe", "channel":
                                                f"mm:quotes:{srv.house_id}"}).decode())
                await srv.until(lambda: len(srv.received) == 5, what="the unsubscribe")
                n = len(srv.ledger_for(1))
                await srv.advance(5.0)
                assert len(srv.ledger_for(1)) == n  # nothing after the unsubscribe
            async with http.ws_connect(srv.ws_url) as ws:
                await ws.send_str('{"type":"auth","api_key":"api_wrong"}')
                assert await ws_recv(ws) == {"type": "auth:error", "message": "Invalid API key"}
                msg = await ws.receive(timeout=2.0)
                assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4001
            assert orjson.loads(srv.received[-1][1]) == {"type": "auth", "api_key": "api_wrong"}

    asyncio.run(main())


def test_serve_prints_where_it_listens() -> None:
    async def main() -> str:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            task = asyncio.create_task(serve("127.0.0.1", 0, seed=1))
            for _ in range(200):
                if out.getvalue():
                    break
                await asyncio.sleep(0.01)  # a poll of the banner, not a wait for a time
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return out.getvalue()

    out = asyncio.run(main())
    assert out.startswith("totalis simulator listening on http://127.0.0.1:") and "/ws" in out
