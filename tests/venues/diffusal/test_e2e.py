"""End to end over loopback: Diffusal simulator (five WS paths + REST) -> recorder -> journal
+ lake -> DuckDB, compared with the simulator's ledger and its own books."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from pathlib import Path

import orjson
import pytest

from recorder import journal as jr
from recorder.build import rebuild
from recorder.venues import CATALOGUE
from recorder.venues.diffusal import tables as T
from recorder.venues.diffusal.server import SIM_TOKEN, DiffusalServer
from tests.conftest import ROOT
from tests.e2e import Live, Tally, connect, run_scenario
from tests.venues.diffusal.e2e import compare_lake, config, journal, labels, match_ledger

BOOK_SQL = (ROOT / "queries" / "diffusal_book_at.sql").read_text()
TOKEN_ENV = "DIFFUSAL_E2E_TOKEN"


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, SIM_TOKEN)


def _book_at(con: object, symbol: str, t: dt.datetime) -> dict:
    con.execute(BOOK_SQL.split(";\n\nSELECT")[0])  # the macro
    rows = con.execute("SELECT side, price, size, complete FROM diffusal_book_at(?, ?)",
                       [symbol, t]).fetchall()
    assert all(r[3] for r in rows), (symbol, "book not complete")
    return {"bids": {p: s for side, p, s, _ in rows if side == "bid"},
            "asks": {p: s for side, p, s, _ in rows if side == "ask"}}


def test_every_endpoint_lake_equals_ledger_gaps_resynced_and_books_rebuilt(
        data_dir: Path) -> None:
    async def main() -> tuple:
        server = DiffusalServer(seed=7, rate=2.0, heartbeat=0.4, auth_reply="result",
                                series_every=12, settle_every=25, rfq_every=6, auction_ms=700)
        await server.start()
        cfg = config(data_dir, server.url, token_env=TOKEN_ENV, mm=True,
                     auth_shape="authorization")
        gapped: list[str] = []
        live = Live(data_dir, "diffusal", keep=("diffusal_markets",))
        # every table gets rows but those of rare events (errors are the other tests' subject)
        want = {t.name for t in T.TABLES} - {
            "diffusal_error", "diffusal_rfq_quote_rejected", "diffusal_liquidation"}

        def resynced(sym: str) -> bool:  # a gap on its book, then a resync from REST
            ev = [(e["event"], e.get("channel")) for e in live().events]
            return ("gap", sym) in ev and ("resynced", sym) in ev[ev.index(("gap", sym)):]

        def subscribed() -> Counter[str]:  # channels subscribed (net) per public socket
            n: Counter[str] = Counter()
            for e in live().events:
                if e["event"] in ("subscribed", "unsubscribed") and e["conn_id"].startswith(
                        "public-"):
                    n["all"] += 1 if e["event"] == "subscribed" else -1
            return n

        def everything() -> bool:  # what the assertions below need from the recording
            j = live()
            # a series created before the pairs' REST answer has no symbol in its row (the
            # adapter asks /api/contracts for it instead)
            created = [m["_symbol"].lower() for m in j.kept["diffusal_markets"]
                       if m.get("type") == "series_created" and m.get("_symbol")]
            channels = {e.get("channel") for e in j.events if e["event"] == "subscribed"}
            return (want <= set(j.tables) and bool(created) and all(
                f"{c}@{k}" in channels for c in created for k in ("depth", "trade", "ticker"))
                and any(e["event"] == "unsubscribed" for e in j.events)
                and subscribed()["all"] > 50)

        depth = Tally(server, lambda e: [m["stream"] for m in [orjson.loads(e.text)]
                                         if str(m.get("stream")).endswith("@depth")])

        def middle() -> list[str]:  # instruments in the middle of the list: the oldest
            live_now = [s.symbol for s in server.synth.live()]  # ones get settled
            return live_now[len(live_now) // 2:len(live_now) // 2 + 2]

        def hydrated(sym: str) -> bool:  # its REST snapshot (the hydration) was answered
            return any(r.path == f"/api/markets/orderbook/{sym}" for r in server.rest_ledger)

        async def scenario(stop: asyncio.Event) -> None:
            # Streamed and hydrated: a hydration snapshot taken after a gap below would carry
            # its hidden diffs, and the gap row then start after them (the recorder staggers
            # hydrations 100 ms apart, so on a loaded machine they come late).
            await server.until(lambda: all(depth()[f"{s.lower()}@depth"] and hydrated(s)
                                           for s in middle()),
                               30, "the books of the instruments to gap")
            first, second = middle()
            gapped.append(server.gap(first))  # applied, never sent
            # A fixed time here on purpose: the second gap starts while the first one's
            # resync is under way, as this test was written (a REST snapshot taken later can
            # carry the second gap's first hidden diff, and the gap row then starts after it).
            await asyncio.sleep(0.8)
            gapped.append(server.gap(second, count=3))
            await server.until(lambda: all(resynced(s) for s in gapped), 30,
                               "both gaps resynced")
            await server.until(everything, 60, "every table, new and settled series")

        # the market stops: in-flight frames and resyncs settle, every public frame journaled
        result = await run_scenario(cfg, server, scenario, journal=live, path="/ws/public")
        return result, server, gapped

    result, server, gapped = asyncio.run(main())
    run = result.run_id
    sessions, rest, sent = journal(data_dir, run)
    # The journal holds exactly what the simulator sent, per connection, in order...
    frames = match_ledger(server, sessions)
    # ...and every REST response it served (concurrent requests: compared as a multiset).
    assert Counter((f.path, f.text.decode()) for f in rest) == Counter(
        (p, b) for p, st, b in server.rest_ledger)
    con = connect(data_dir, "diffusal")
    counts = compare_lake(con, run, frames + rest, sent, server)
    # every table got rows, but those of rare events (errors are the other tests' subject)
    empty = {t.name for t in T.TABLES if not counts[t.name]}
    assert empty <= {"diffusal_error", "diffusal_rfq_quote_rejected", "diffusal_liquidation"}, \
        empty
    # the five paths, several public sockets, a quotes socket per account RFQ
    conns = {c for c, ss in sessions.items() if ss}
    assert {"public-0", "public-1", "private", "rfq-stream", "rfq-mm"} <= conns
    assert any(c.startswith("rfq-quotes-") for c in conns)
    assert all(p.startswith(("/ws/public", "/ws/private", "/ws/rfq/")) for p in
               server.paths.values())
    # the cap: no socket ever held more than 50 subscriptions (settled series freed theirs,
    # new ones took the slots), and the server refused nothing
    subs = con.sql(f"SELECT conn_id, count(*) FILTER (event = 'subscribed') - count(*) FILTER "
                   f"(event = 'unsubscribed') FROM session_events WHERE run_id = '{run}' AND "
                   "conn_id LIKE 'public-%' GROUP BY 1").fetchall()
    assert subs and all(n <= 50 for _, n in subs) and sum(n for _, n in subs) > 50
    assert counts["diffusal_error"] == 0
    assert con.sql("SELECT count(*) FROM session_events WHERE event = 'unsubscribed'"
                   ).fetchall()[0][0] > 0
    # new series got subscribed as they appeared
    created = con.sql("SELECT derived_symbol FROM diffusal_markets WHERE type = "
                      "'series_created' AND derived_symbol IS NOT NULL").fetchall()
    assert created
    for (sym,) in created:
        key = sym.lower()
        n = con.sql(f"SELECT count(*) FROM session_events WHERE event = 'subscribed' AND "
                    f"channel IN ('{key}@depth', '{key}@trade', '{key}@ticker')").fetchall()
        assert n[0][0] == 3, sym
    # units: ts_event is one unit whatever the channel sent
    assert con.sql("SELECT count(*) FROM diffusal_depth WHERE epoch_ms(ts_event::TIMESTAMPTZ) != "
                   "timestamp_ms").fetchall()[0][0] == 0
    assert con.sql("SELECT count(*) FROM diffusal_trade WHERE epoch_ms(ts_event::TIMESTAMPTZ) != "
                   "timestamp_s * 1000").fetchall()[0][0] == 0
    assert con.sql("SELECT count(*) FROM diffusal_index WHERE epoch_ms(ts_event::TIMESTAMPTZ) != "
                   "timestamp_s * 1000").fetchall()[0][0] == 0
    # the same trade on the grouped and the instrument stream: one row after dedup
    total, dedup = con.sql("SELECT (SELECT count(*) FROM diffusal_trade), "
                           "(SELECT count(*) FROM diffusal_trade_dedup)").fetchall()[0]
    # (the ledger is the oracle, not the synth's count: a trade before the recorder's first
    # subscribe went to nobody)
    traded = {m["data"]["id"] for e in server.ledger
              if server.paths[e.conn] == "/ws/public" and '@trade"' in e.text
              for m in [orjson.loads(e.text)] if m.get("stream", "").endswith("@trade")}
    assert dedup < total and dedup == len(traded)
    # REST rows are marked, in the stream tables
    assert con.sql("SELECT count(*) FROM diffusal_depth WHERE source = 'rest'").fetchall()[0][0] \
        == sum(1 for f in rest if f.tag and f.tag.startswith("orderbook:"))
    # both auth shapes on the wire: the authorization one was sent, secrets redacted
    outs = [r.data for r in jr.read_run(data_dir, "diffusal", run) if r.kind == jr.KIND_OUT]
    auth = [orjson.loads(o) for o in outs if b'"AUTH"' in o]
    assert auth and all(a == {"method": "AUTH", "authorization": "***", "id": a["id"]}
                        for a in auth)
    assert not any(SIM_TOKEN.encode() in o for o in outs)
    # gaps: each hidden diff was reported with both ends, then resynchronised from REST
    ev = con.sql("SELECT event, channel, expected, received, recv_seq FROM session_events "
                 "WHERE event IN ('gap', 'resynced') ORDER BY ts_recv, recv_seq").fetchall()
    hidden = server.synth.hidden
    assert {s for s, _ in hidden} == set(gapped) and len(hidden) == 4
    for sym in set(gapped):
        seqs = sorted(q for s, q in hidden if s == sym)
        gaps = [(e[2], e[3]) for e in ev if e[0] == "gap" and e[1] == sym]
        assert (seqs[0], seqs[-1] + 1) in gaps, (sym, gaps, seqs)
    for i, e in enumerate(ev):
        if e[0] == "gap":
            assert any(x[0] == "resynced" and x[1] == e[1] for x in ev[i + 1:]), e
    # the books rebuilt from the lake equal the simulator's own, for every live instrument
    now = dt.datetime.now(dt.UTC)
    live = [s.symbol for s in server.synth.live()]
    assert set(gapped) <= set(live)
    for sym in live:
        want = server.book(sym)
        got = _book_at(con, sym, now)
        assert got == {"bids": want["bids"], "asks": want["asks"]}, sym
    # the lake rebuilt from the journal equals the one written live (on_sent correlation too)
    before = {t.name: con.sql(f"SELECT * EXCLUDE (date) FROM {t.name} ORDER BY conn_id, "
                              f"recv_seq").fetchall() for t in T.TABLES}
    rebuild(data_dir, dt.datetime.now(dt.UTC).date().isoformat(), catalogue=CATALOGUE)
    con2 = connect(data_dir, "diffusal")
    for t in T.TABLES:
        after = con2.sql(f"SELECT * EXCLUDE (date) FROM {t.name} ORDER BY conn_id, recv_seq"
                         ).fetchall()
        assert sorted(map(repr, after)) == sorted(map(repr, before[t.name])), t.name


def test_4029_frames_and_closes_are_handled_without_a_storm(data_dir: Path) -> None:
    async def main() -> tuple:
        # The server's subscription cap is below the documented 50: the recorder learns it.
        server = DiffusalServer(seed=3, rate=2.0, max_subs=20)
        await server.start()
        cfg = config(data_dir, server.url)

        live = Live(data_dir, "diffusal")

        def events(name: str) -> list[dict]:
            return [e for e in live().events if e["event"] == name]

        def limited(why: str) -> bool:
            return any(why in (e.get("reason") or "") for e in events("rate_limited"))

        def all_back() -> bool:  # every public socket subscribed again since it last connected
            last: dict[str, str] = {}
            for e in live().events:
                if e["conn_id"].startswith("public-") and e["event"] in (
                        "connected", "subscribed", "disconnected"):
                    last[e["conn_id"]] = e["event"]
            return bool(last) and set(last.values()) == {"subscribed"}

        def flowing(since: int) -> bool:  # market data journaled after ``since`` rows
            return live().tables["diffusal_depth"] > since

        async def scenario(stop: asyncio.Event) -> None:
            # the recorder has learnt the server's cap and its sockets are up
            await server.until(lambda: limited("subscription limit") and all_back(), 30,
                               "the cap learnt")
            server.rate_limit(2)  # two control messages over the messages/min cap
            server.close_4029()  # the server closes every public socket with 4029
            await server.until(lambda: limited("messages/min") and events("reconnected")
                               and all_back(), 30, "reconnected after the 4029 closes")
            server.storm(1.5)  # for 1.5 s every new connection is closed with 4029
            server.close_4029()
            await server.until(lambda: len(events("reconnected")) >= 8
                               and server.clock.monotonic() > server._storm_until
                               and all_back(), 60, "the storm over, every socket back")
            depth = live().tables["diffusal_depth"]
            await server.until(lambda: flowing(depth), 30, "data flowing again")

        result = await run_scenario(cfg, server, scenario, journal=live, path="/ws/public")
        return result, server

    result, server = asyncio.run(main())
    con = connect(data_dir, "diffusal")
    ev = con.sql("SELECT event, code, conn_id, reason, retry_after_s FROM session_events "
                 "ORDER BY ts_recv").fetchall()
    names = Counter(e[0] for e in ev)
    # 4029 error frames: recorded with the retry delay; the subscribe was sent again
    limited = [e for e in ev if e[0] == "rate_limited"]
    assert any("messages/min" in e[3] for e in limited)
    assert any("subscription limit" in e[3] for e in limited)
    assert all(e[1] == "4029" and e[4] > 0 for e in limited)
    errors = Counter(c for c, _, m in con.sql("SELECT code, msg, method FROM diffusal_error"
                                                ).fetchall() if m == "SUBSCRIBE")
    # (4004: a series settled while we were away; its channels are refused, then dropped)
    assert errors[4029] >= 3 and set(errors) <= {4029, 4004}
    # 4029 closes: recorded, reconnected with backoff, never more than the venue allows:
    # the storm of closes is paced by the venue-wide gate (50 attempts a minute), so the
    # server's 60/min cap never silently refused a connection
    assert any(e[0] == "disconnected" and e[1] == "4029" for e in ev)
    assert names["reconnected"] >= 8
    assert server.refused == []
    assert len(server.accepted_at) <= 50
    # after the storm every public socket is back, subscribed, and data flows again
    subs = dict(con.sql("SELECT conn_id, count(DISTINCT channel) FROM session_events WHERE "
                        "event = 'subscribed' GROUP BY 1").fetchall())
    assert subs and all(n <= 20 for n in subs.values())
    total_channels = con.sql("SELECT count(DISTINCT channel) FROM session_events WHERE "
                             "event = 'subscribed'").fetchall()[0][0]
    assert total_channels > 40
    # ... and data flowed again after the last of them connected
    late = con.sql("SELECT count(*) FROM diffusal_depth WHERE ts_recv > (SELECT max(ts_recv) "
                   "FROM session_events WHERE event = 'connected' AND conn_id LIKE 'public-%')"
                   ).fetchall()[0][0]
    assert late > 0


def test_auth_refused_is_recorded_and_public_keeps_recording(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, "not-the-token")

    async def main() -> tuple:
        server = DiffusalServer(seed=5, rate=2.0)
        await server.start()
        cfg = config(data_dir, server.url, token_env=TOKEN_ENV)

        seen = Tally(server, labels)

        def done() -> bool:  # public data of every kind; the private socket over
            return all(seen()[k] for k in ("@depth", "@trade", "@ticker", "@index",
                                           "rfq_request")) and server.conns("/ws/private") \
                and not server.sessions("/ws/private")

        live = Live(data_dir, "diffusal")

        async def scenario(stop: asyncio.Event) -> None:
            await server.until(done, 30, "public data and the refused private socket")

        # what was sent reaches the journal before the run ends
        result = await run_scenario(cfg, server, scenario, journal=live, path="/ws/public")
        return result, server

    result, server = asyncio.run(main())
    con = connect(data_dir, "diffusal")
    ev = con.sql("SELECT event, code, reason FROM session_events WHERE conn_id = 'private' "
                 "ORDER BY recv_seq").fetchall()
    assert [e[0] for e in ev] == ["connected", "auth_failed", "disconnected", "stopped"]
    assert ev[1][1] == "4001" and "AUTH refused" in ev[1][2] and "invalid" in ev[1][2]
    assert con.sql("SELECT code, method FROM diffusal_error").fetchall() == [(4001, "AUTH")]
    for table in ("position", "order", "fill", "collateral", "portfolio", "auth"):
        assert con.sql(f"SELECT count(*) FROM diffusal_{table}").fetchall()[0][0] == 0
    for table in ("depth", "trade", "ticker", "index", "rfq_auction"):
        assert con.sql(f"SELECT count(*) FROM diffusal_{table}").fetchall()[0][0] > 0, table
    m = orjson.loads((data_dir / "runs" / f"{result.run_id}.json").read_bytes())
    # a connection stopped for good leaves the run; its counts stay in ended_connections
    assert "private" not in m["venues"]["diffusal"]["connections"]
    assert m["venues"]["diffusal"]["ended_connections"]["count"] >= 1
    assert any("auth_failed" in e for e in m["venues"]["diffusal"]["errors"])
