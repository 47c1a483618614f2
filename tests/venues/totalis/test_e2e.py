"""End to end over loopback: Totalis simulator (three SSE streams + WebSocket) -> recorder ->
journal + lake -> DuckDB, compared with the simulator's ledgers table by table."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from recorder import journal as jr
from recorder.build import build_run_into
from recorder.sim.driver import Sent
from recorder.sse import parse_event
from recorder.venues import CATALOGUE
from recorder.venues.totalis.server import TotalisServer
from tests.e2e import Live, Tally, connect, run_scenario
from tests.venues.totalis.e2e import (
    KEY_ENV,
    compare_sse,
    compare_ws,
    config,
    journal,
    sse_blocks,
    ws_sessions,
)

KEY = "api_test_e2e"


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


#: (stream kind, event) the core tables are made of
CORE = [("mm", e) for e in ("connected", "snapshot_begin", "snapshot_complete", "quote_request",
                            "quote_request:updated", "quote_request_expired",
                            "cashout_request")] + [
    ("qr", "best_quote"), ("qr", "status"), ("qr", "committed"), ("co", "best_quote"),
    ("co", "status")] + [("ws", t) for t in (
        "auth:success", "pong", "quote:accepted", "mm_quote:accepted", "quote:confirmed",
        "quote:executed", "quote:rejected", "position:created", "position:settled")]


class Kinds:
    """What a ledgered frame is, for a Tally: (stream kind, event) of an SSE event,
    ("ws", type) of a WebSocket frame; also "gap" for a best_quote whose book_seq skips, and
    ("created" | "accepted", rfq_id) for position:created / quote:accepted."""

    def __init__(self, server: TotalisServer) -> None:
        self.server = server
        self.last_seq: dict[str, int] = {}

    def __call__(self, entry: Sent) -> list[Any]:
        stream = self.server.kinds[entry.conn]
        if stream == "ws":
            msg = orjson.loads(entry.text)
            out: list[Any] = [("ws", msg.get("type"))]
            rfq = (msg.get("data") or {}).get("rfq_id")
            if msg.get("type") in ("position:created", "quote:accepted"):
                out.append((msg["type"].partition(":")[2], rfq))
            return out
        ev = parse_event(entry.text.encode())
        if ev.data is None:
            return []
        out = [(stream[:2], ev.event)]
        if ev.event == "best_quote" and stream.startswith("qr:"):
            seq = orjson.loads(ev.data)["book_seq"]
            if seq > self.last_seq.get(stream, seq - 1) + 1:
                out.append("gap")
            self.last_seq[stream] = max(seq, self.last_seq.get(stream, 0))
        return out


def test_lake_equals_ledger_per_table_across_drops(data_dir: Path) -> None:
    async def main() -> tuple:
        server = TotalisServer(seed=11, rate=1.5, api_keys=[KEY], keepalive=0.3, retry_ms=100,
                               gap_every=9, won_absent=0.6, cashout_chance=0.6)
        await server.start()
        cfg = config(data_dir, server, ping_interval=1.0, idle_timeout=3.0)

        sent = Tally(server, Kinds(server))

        def everything() -> bool:  # every kind the core tables need, a book_seq gap
            return all(sent()[k] for k in CORE) and sent()["gap"] > 0

        def resumed() -> bool:  # three cut events, the MM stream resumed after its cut
            mm_cut = any(server.kinds[c.conn] == "mm" for c in server.cuts)
            return len(server.cuts) >= 3 and mm_cut and any(
                r["mode"] == "replay" and r["path"].endswith("/mm/quote-requests/stream")
                for r in server.requests_seen)

        async def scenario(stop: asyncio.Event) -> None:
            await server.until(everything, 30, "every kind of event")
            server.drop(kind="ws", code=1011)  # the WebSocket closed at once
            server.drop(mid_frame=True)  # every SSE stream cut in the middle of its next event
            await server.until(resumed, 30, "the cuts and the MM stream's resume")

        # (the market stops; every frame sent, a lifecycle under way included, is journaled)
        result = await run_scenario(cfg, server, scenario)
        return result, server

    result, server = asyncio.run(main())
    run = result.run_id
    records = journal(data_dir, run)
    # The journal holds exactly the complete event blocks the simulator wrote, per stream, in
    # order: no keep-alive, no half of a cut event.
    blocks = sse_blocks(records)
    sent: dict[str, list[bytes]] = {}
    for e in server.ledger:
        stream = server.kinds[e.conn]
        if stream != "ws" and not e.text.startswith(":"):  # events and the retry hint
            sent.setdefault(stream, []).append(e.text.encode())
    assert blocks == sent
    assert len(server.cuts) >= 3
    con = connect(data_dir, "totalis")
    counts = compare_sse(con, run, server)
    ws_sent = [t for no in server.conns("ws") for t in server.ledger_for(no)]
    assert ws_sessions(records) == [server.ledger_for(no) for no in server.conns("ws")]
    counts.update(compare_ws(con, run, ws_sent))
    hit = {name for name, n in counts.items() if n}
    core = {"totalis_connected", "totalis_snapshot_begin", "totalis_snapshot_complete",
            "totalis_quote_request", "totalis_quote_request_updated",
            "totalis_quote_request_expired", "totalis_cashout_request", "totalis_qr_best_quote",
            "totalis_qr_status", "totalis_qr_committed", "totalis_cashout_best_quote",
            "totalis_cashout_status", "totalis_auth_success", "totalis_pong",
            "totalis_quote_accepted", "totalis_mm_quote_accepted", "totalis_quote_confirmed",
            "totalis_quote_executed", "totalis_quote_rejected", "totalis_position_created",
            "totalis_position_settled"}
    assert core <= hit, sorted(core - hit)
    # won absent stays null; false stays false
    won = dict(con.sql(f"SELECT coalesce(won::VARCHAR, 'null'), count(*) FROM "
                       f"totalis_quote_request_expired WHERE run_id = '{run}' AND reason = "
                       f"'committed' GROUP BY 1").fetchall())
    sent_won = [orjson.loads(e["data"]).get("won", "null") for e in server.sent_events("mm")
                if e["event"] == "quote_request_expired"
                and orjson.loads(e["data"])["reason"] == "committed"]
    assert won.get("null", 0) == sent_won.count("null") > 0
    # book_seq gaps the simulator made are session_events with both ends
    gaps = con.sql(f"SELECT conn_id, expected, received FROM session_events WHERE run_id = "
                   f"'{run}' AND event = 'gap'").fetchall()
    made = []
    last: dict[str, int] = {}
    for e in server.sent_events():
        if e["event"] == "best_quote":
            seq = orjson.loads(e["data"])["book_seq"]
            if e["stream"] in last and seq > last[e["stream"]] + 1:
                made.append((e["stream"], last[e["stream"]] + 1, seq))
            last[e["stream"]] = max(seq, last.get(e["stream"], 0))
    assert sorted(gaps) == sorted(made) and made
    # connects, drops and resumes are in session_events for the MM stream
    ev = [e[0] for e in con.sql(f"SELECT event FROM session_events WHERE run_id = '{run}' AND "
                                f"conn_id = 'mm' ORDER BY recv_seq").fetchall()]
    assert ev[:2] == ["connected", "retry_hint"]
    i = ev.index("disconnected")
    assert ev[i + 1:i + 4] == ["connected", "reconnected", "resumed"]
    # the cut stream resumed by the documented query parameter and the standard header
    resumes = [r for r in server.requests_seen if r["resume"]]
    assert resumes and all(r["query"] == r["header"] for r in resumes)
    assert any(r["mode"] == "replay" and r["path"].endswith("/mm/quote-requests/stream")
               for r in resumes)
    # the API key never reaches the journal; the auth message is there, redacted
    outs = [r.data for r in records if r.kind == jr.KIND_OUT]
    assert any(b'"type":"auth"' in o for o in outs) and not any(KEY.encode() in o for o in outs)
    assert con.sql(f"SELECT count(*) FROM unhandled WHERE run_id = '{run}'").fetchall() == [(0,)]
    m = orjson.loads((data_dir / "runs" / f"{run}.json").read_bytes())
    assert m["status"] == "complete" and m["tables"]["totalis_qr_best_quote"] == counts[
        "totalis_qr_best_quote"]
    # a rebuild from the journal (offline adapter, no sockets) gives the same rows per table
    rebuilt = build_run_into(data_dir, "totalis", run, data_dir.parent / "rebuilt",
                             catalogue=CATALOGUE)
    assert rebuilt.writer.rows_committed == m["tables"]


def test_dropped_many_times_mid_event_every_event_id_once(data_dir: Path) -> None:
    async def main() -> tuple:
        # every SSE connection is cut in the middle of its 13th event, over and over (requests
        # arrive three times as fast: the cuts this waits for come sooner, 6.5 s -> 5 s)
        server = TotalisServer(seed=5, rate=3.0, api_keys=[KEY], keepalive=0.5, retry_ms=50,
                               drop_every=12, request_interval_ms=500)
        await server.start()
        cfg = config(data_dir, server, websocket=False)

        def mm_cuts() -> int:
            return sum(server.kinds[c.conn] == "mm" for c in server.cuts)

        events = Tally(server, lambda e: [] if e.text.startswith((":", "retry:")) else [
            (server.kinds[e.conn], parse_event(e.text.encode()).id)])

        def enough() -> bool:  # 8 cuts of the MM stream, one of another, 120+ events
            return mm_cuts() >= 8 and len(server.cuts) > mm_cuts() and sum(
                events().values()) > 120

        def resent() -> bool:  # every cut event was sent whole later, on its stream
            got = events()
            return all(got[(server.kinds[c.conn], parse_event(c.text.encode()).id)]
                       for c in server.cuts)

        async def scenario(stop: asyncio.Event) -> None:
            # Every open stream is cut in the middle of its next event, again once the MM
            # stream is back and every cut event so far was sent whole again.
            while not enough():
                n = mm_cuts()
                server.drop(mid_frame=True)
                await server.until(lambda n=n: mm_cuts() > n and server.sessions("mm")
                                   and resent(), 30, "the MM stream cut and back")
            server.pause()
            await server.until(resent, 30, "every cut event resent whole")

        result = await run_scenario(cfg, server, scenario)
        return result, server

    result, server = asyncio.run(main())
    run = result.run_id
    con = connect(data_dir, "totalis")
    cuts = [{"stream": server.kinds[c.conn], "id": parse_event(c.text.encode()).id}
            for c in server.cuts]
    mm_cuts = [e for e in cuts if e["stream"] == "mm"]
    assert len(mm_cuts) >= 8 and len(cuts) > len(mm_cuts)
    counts = compare_sse(con, run, server)  # exactly once each, field by field
    assert sum(counts.values()) > 100
    # every id of every table, all streams together: no id twice on one stream
    ids = con.sql(f"""
        SELECT conn_id, sse_id, count(*) AS n FROM (
          {" UNION ALL ".join(f"SELECT conn_id, sse_id FROM {t} WHERE run_id = '{run}'"
                              for t in counts)})
        GROUP BY 1, 2 HAVING n > 1""").fetchall()
    assert ids == []
    # the live MM log, from the first snapshot on, is all in the lake: no hole
    first_live = next(i for i, e in enumerate(server.sent_events("mm"))
                      if e["event"] == "snapshot_complete")
    live = {e["id"] for e in server.sent_events("mm")[first_live + 1:]
            if e["event"] != "connected"}
    log_ids = {i for i, _, _ in server.streams["mm"].log}
    assert live <= log_ids
    start = min(live)
    expected_live = {i for i in log_ids if tuple(map(int, i.split("-"))) >= tuple(
        map(int, start.split("-")))}
    recorded = {r[0] for t in counts for r in con.sql(
        f"SELECT sse_id FROM {t} WHERE run_id = '{run}' AND conn_id = 'mm'").fetchall()}
    assert expected_live <= recorded
    # every cut event arrived whole later, exactly once (its id is in the lake)
    assert {(e["stream"], e["id"]) for e in cuts} <= {
        r for t in counts for r in con.sql(
            f"SELECT conn_id, sse_id FROM {t} WHERE run_id = '{run}'").fetchall()}
    ev = con.sql(f"SELECT event, count(*) FROM session_events WHERE run_id = '{run}' AND "
                 f"conn_id = 'mm' GROUP BY 1").fetchall()
    ev = dict(ev)
    assert ev["resumed"] >= len(mm_cuts) and ev["disconnected"] >= len(mm_cuts)
    reasons = [r[0] for r in con.sql(
        f"SELECT reason FROM session_events WHERE run_id = '{run}' AND event = 'disconnected' "
        f"AND reason LIKE '%unfinished event discarded%'").fetchall()]
    assert len(reasons) >= len(mm_cuts)
    assert con.sql(f"SELECT count(*) FROM unhandled WHERE run_id = '{run}'").fetchall() == [(0,)]


@pytest.mark.parametrize("kind", ["qr", "co"])
def test_request_stream_cut_in_its_terminal_event_is_resumed_until_it_arrives(
        data_dir: Path, kind: str) -> None:
    """A per-request stream cut in the middle of its terminal event (a quote request's
    ``committed``/``cancelled``/``expired``, right after its ``status`` arrived whole; a
    cashout request's ``status``): the half event is discarded, so the stream must be resumed
    from the last whole event's id until the terminal event arrives whole, and that event
    reaches the lake. (A quote request's stream used to be stopped at its ``status``: the cut
    terminal event was lost, never retried.)"""
    async def main() -> tuple:
        # requests three times as fast: a cashout reaches its status sooner (7.7 s -> 4 s)
        server = TotalisServer(seed=5, rate=3.0, api_keys=[KEY], keepalive=0.5, retry_ms=50,
                               request_interval_ms=400, cashout_chance=0.9)
        await server.start()
        cfg = config(data_dir, server, websocket=False)
        live = Live(data_dir, "totalis")

        def cut() -> Sent | None:
            return next((c for c in server.cuts if server.kinds[c.conn].startswith(kind)),
                        None)

        def settled() -> bool:  # the cut event was sent whole later, or the stream gave up
            c = cut()
            assert c is not None
            stream, ev_id = server.kinds[c.conn], parse_event(c.text.encode()).id
            return any(e.conn != c.conn and server.kinds[e.conn] == stream
                       and parse_event(e.text.encode()).id == ev_id for e in server.ledger
                       ) or any(e["conn_id"] == stream and e["event"] == "stopped"
                                for e in live().events)

        async def scenario(stop: asyncio.Event) -> None:
            server.cut_terminal(kind)
            await server.until(lambda: cut() is not None, 60, "a terminal event cut")
            await server.until(settled, 30, "the cut stream resumed or stopped")

        result = await run_scenario(cfg, server, scenario, journal=live)
        return result, server

    result, server = asyncio.run(main())
    run = result.run_id
    (c,) = server.cuts
    stream = server.kinds[c.conn]
    ev = parse_event(c.text.encode())
    sent = [e for e in server.sent_events(stream) if e["conn"] == c.conn]
    if kind == "qr":
        assert ev.event in ("committed", "cancelled", "expired")
        assert sent[-1]["event"] == "status"
        table, path = f"totalis_qr_{ev.event}", f"/v1/quote-requests/{stream[3:]}/stream"
    else:
        assert ev.event == "status"
        table, path = "totalis_cashout_status", f"/v1/cashout-requests/{stream[3:]}/stream"
    con = connect(data_dir, "totalis")
    # the terminal event is in the lake, once, under the id the server gave it
    rows = con.sql(f"SELECT sse_id FROM {table} WHERE run_id = '{run}' AND "
                   f"conn_id = '{stream}'").fetchall()
    assert rows == [(ev.id,)], f"{stream}: {ev.event} {ev.id} cut, lake has {rows}"
    # resumed from the last whole event, by query parameter and header
    resumes = [r for r in server.requests_seen if r["path"] == path and r["resume"]]
    assert resumes[0]["resume"] == sent[-1]["id"] == resumes[0]["header"]
    assert resumes[0]["status"] == 200 and resumes[0]["mode"] == "replay"
    # the cut and the resume are visible; the stream stops only after the terminal event
    events = [r[0] for r in con.sql(
        f"SELECT event FROM session_events WHERE run_id = '{run}' AND conn_id = '{stream}' "
        f"ORDER BY recv_seq").fetchall()]
    i = events.index("disconnected")
    assert events[i + 1:i + 3] == ["connected", "reconnected"] and "resumed" in events[i:]
    assert events[-2:] == ["disconnected", "stopped"]
    reasons = [r[0] for r in con.sql(
        f"SELECT reason FROM session_events WHERE run_id = '{run}' AND conn_id = '{stream}' "
        f"AND event = 'disconnected' ORDER BY recv_seq").fetchall()]
    assert "unfinished event discarded" in reasons[0]
    compare_sse(con, run, server)  # every whole event exactly once, field by field
    assert con.sql(f"SELECT count(*) FROM unhandled WHERE run_id = '{run}'").fetchall() == [(0,)]


@pytest.mark.parametrize("quote_channel", ["user_id", "mm_id"])
def test_rfq_subscriptions_follow_the_sse_side(data_dir: Path, quote_channel: str) -> None:
    async def main() -> tuple:
        # the SSE `connected` id differs from the WS user_id (as in older docs); quote events
        # go to the channel named by one or the other: both are subscribed, both work
        server = TotalisServer(seed=21, rate=1.5, api_keys=[KEY], keepalive=0.5, retry_ms=100,
                               mm_id="mm-uuid-1234", quote_channel=quote_channel,
                               subscribe_before_auth="reject")
        await server.start()
        cfg = config(data_dir, server)

        sent = Tally(server, Kinds(server))

        def enough() -> bool:  # commits, ended positions, our accepted quotes, others' wins
            got = sent()
            return got[("qr", "committed")] >= 3 and got[("ws", "quote:accepted")] and (
                got[("ws", "position:settled")] or got[("ws", "position:cancelled")]) and (
                {k[1] for k in got if k[0] == "created"}
                - {k[1] for k in got if k[0] == "accepted"})

        def unsubscribed() -> bool:  # every RFQ whose position ended was unsubscribed
            ended = {f"rfq:{m['data']['rfq_id']}" for e in server.ledger
                     if '"position:settled"' in e.text or '"position:cancelled"' in e.text
                     for m in [orjson.loads(e.text)]}
            asked = {m.get("channel") for _, text in server.received if "unsubscribe" in text
                     for m in [orjson.loads(text)] if m.get("type") == "unsubscribe"}
            return ended <= asked

        async def scenario(stop: asyncio.Event) -> None:
            await server.until(enough, 30, "commits, positions and quotes")
            server.pause()
            await server.until(unsubscribed, 30, "the ended RFQs unsubscribed")

        result = await run_scenario(cfg, server, scenario)
        return result, server

    result, server = asyncio.run(main())
    run = result.run_id
    con = connect(data_dir, "totalis")
    records = journal(data_dir, run)
    # what the recorder sent on the WS, in order, with the receive order of everything else
    order: list[tuple[str, str, str]] = []  # (what, channel or rfq, conn)
    for r in records:
        if r.conn == "ws" and r.kind == jr.KIND_OUT:
            msg = orjson.loads(r.data)
            if msg["type"] in ("subscribe", "unsubscribe"):
                order.append((msg["type"], msg["channel"], "ws"))
        elif r.kind == jr.KIND_IN and r.conn.startswith("qr:"):
            text = r.data.decode()
            if "event: committed" in text:
                data = orjson.loads(text.split("data: ", 1)[1])
                order.append(("committed", f"rfq:{data['rfq_id']}", r.conn))
        elif r.kind == jr.KIND_IN and r.conn == "ws":
            msg = orjson.loads(r.data)
            if msg["type"] in ("position:settled", "position:cancelled"):
                order.append(("terminal", f"rfq:{msg['data']['rfq_id']}", "ws"))
    subs = [c for w, c, _ in order if w == "subscribe"]
    assert "mm:quotes:did:privy:cmsimhouse0001" in subs and "mm:quotes:mm-uuid-1234" in subs
    committed = [c for w, c, _ in order if w == "committed"]
    assert len(committed) >= 3
    # every RFQ the SSE side committed was subscribed, once, after it was seen
    rfq_subs = [c for c in subs if c.startswith("rfq:")]
    assert len(rfq_subs) == len(set(rfq_subs)) and set(committed) <= set(rfq_subs)
    for ch in committed:
        assert order.index(("committed", ch, next(
            cn for w, c, cn in order if w == "committed" and c == ch))) < order.index(
            ("subscribe", ch, "ws"))
    # ... and dropped right after its terminal position event, never re-subscribed
    ended = [c for w, c, _ in order if w == "terminal"]
    assert ended
    for ch in ended:
        t = order.index(("terminal", ch, "ws"))
        assert ("unsubscribe", ch, "ws") in order[t:t + 2]
        assert ("subscribe", ch, "ws") not in order[t:]
    unsubs = {c for w, c, _ in order if w == "unsubscribe"}
    assert unsubs == set(ended)
    # the simulator agrees: it saw the same commands, and sent nothing for an RFQ after it
    ws_conns = set(server.conns("ws"))
    cmds = [(m["type"], m.get("channel")) for no, t in server.received if no in ws_conns
            for m in [orjson.loads(t)]]
    assert [c for c in cmds if c[0] in ("subscribe", "unsubscribe")] == [
        (w, c) for w, c, _ in order if w in ("subscribe", "unsubscribe")]
    assert ("auth", None) == cmds[0]
    # our quote events reached us whichever id names the channel
    n = con.sql(f"SELECT count(*) FROM totalis_quote_accepted WHERE run_id = '{run}'"
                ).fetchall()[0][0]
    sent = sum(1 for m in server.ws_sent() if m["type"] == "quote:accepted")
    assert n == sent > 0
    # position events for RFQs other MMs won arrive too: the rfq channel is not ours alone
    won_by_others = con.sql(
        f"SELECT count(*) FROM totalis_position_created p WHERE run_id = '{run}' AND NOT EXISTS "
        f"(SELECT 1 FROM totalis_quote_accepted q WHERE q.rfq_id = p.rfq_id)").fetchall()[0][0]
    assert won_by_others > 0
