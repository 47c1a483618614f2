"""End to end over loopback: Power.Trade simulator (Market Proxy, Feeds, REST summary) ->
recorder -> journal + lake -> DuckDB, compared with the simulator's ledger per table."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from recorder import journal as jr
from recorder.build import rebuild
from recorder.sim.driver import Sent
from recorder.venues import CATALOGUE
from recorder.venues.powertrade import tables as T
from recorder.venues.powertrade.server import PowerTradeServer
from recorder.venues.powertrade.synth import BY_ID
from tests.e2e import Tally, connect, run_scenario
from tests.venues.powertrade.e2e import check_row, config, journal_sessions, micros

KEY_ENV, SECRET_ENV = "PT_E2E_KEY", "PT_E2E_SECRET"
BY_KEY = {  # envelope key -> table (the simulator uses the first spelling of each)
    "command_response": T.COMMAND_RESPONSE, "heartbeat": T.HEARTBEAT,
    "entities_and_rules_response": T.ENTITIES_AND_RULES, "snapshot": T.SNAPSHOT,
    "order_added": T.ORDER_ADDED, "order_deleted": T.ORDER_DELETED,
    "order_updated": T.ORDER_UPDATED, "order_executed": T.ORDER_EXECUTED, "trade": T.TRADE,
    "order_accepted": T.ORDER_ACCEPTED, "order_rejected": T.ORDER_REJECTED,
    "execution": T.EXECUTION_T, "cancel_order": T.CANCEL_ORDER,
    "positions_response": T.POSITIONS, "balances_response": T.BALANCES,
    "trade_history_response": T.TRADE_HISTORY,
    "top_of_book": T.FEED_TOP_OF_BOOK, "reference_price": T.FEED_REFERENCE_PRICE,
    "last_trade_price": T.FEED_LAST_TRADE_PRICE,
}
ADAPTER_KEYS = frozenset({"_rfq", "_legs", "_request_type", "_request", "_matched", "_field"})


def options(**more: Any) -> dict[str, Any]:
    return {"api_key_env": KEY_ENV, "api_secret_env": SECRET_ENV, **more}


def use_keys(monkeypatch: pytest.MonkeyPatch, server: PowerTradeServer) -> None:
    key, pem = server.credentials()
    monkeypatch.setenv(KEY_ENV, key)
    monkeypatch.setenv(SECRET_ENV, pem)


def lake_rows(con: Any, table: str, run: str, conn: str) -> list[dict[str, Any]]:
    return con.sql(f"SELECT * FROM {table} WHERE run_id = '{run}' AND conn_id = '{conn}' "
                   f"ORDER BY recv_seq").pl().to_dicts()


def compare(con: Any, run: str, conn: str, texts: list[str]) -> dict[str, int]:
    """Every frame the simulator sent on ``conn`` is a row of its table, field by field."""
    want: dict[str, list[dict[str, Any]]] = {}
    for text in texts:
        (key, body), = orjson.loads(text).items()
        want.setdefault(BY_KEY[key].name, []).append(body)
    counts = {}
    for name, bodies in want.items():
        table = next(t for t in T.TABLES if t.name == name)
        got = lake_rows(con, name, run, conn)
        assert len(got) == len(bodies), f"{name}: {len(got)} rows, {len(bodies)} frames"
        for body, row in zip(bodies, got, strict=True):
            check_row(table, body, row, ADAPTER_KEYS)
            if "_rfq" in table.wire_keys:
                assert row["rfq"] is (body.get("market_id") in ("none", "255"))
            if name == T.FEED_TOP_OF_BOOK.name:
                e = BY_ID[int(body["tradeable_entity_id"])]
                assert row["symbol"] == e.symbol
                for side in ("buy", "sell"):
                    raw = body[f"{side}_price"]
                    assert row[f"{side}_price"] == (None if raw == "none"
                                                    else int(raw) / 10**e.price_dp)
                    assert row[f"{side}_quantity"] == int(body[f"{side}_quantity"]) / 10**e.qty_dp
                assert row["time_ns"] == int(body["timestamp"])
            elif name in (T.FEED_REFERENCE_PRICE.name, T.FEED_LAST_TRADE_PRICE.name):
                e = BY_ID[int(body["tradeable_entity_id"])]
                assert row["price"] == int(body["price"]) / 10**e.price_dp
        counts[name] = len(got)
    return counts


def message_kinds(server: PowerTradeServer, entry: Sent) -> list[tuple[str, str]]:
    """(socket kind, message name) of a ledgered frame; an RFQ order_added also counts as
    ("rfq", order_id), to see one sent twice."""
    (name, body), = orjson.loads(entry.text).items()
    out = [(server.kinds[entry.conn], name)]
    if name == "order_added" and body.get("market_id") == "none":
        out.append(("rfq", body.get("order_id")))
    return out


def test_every_table_lake_equals_ledger_with_matched_out_of_order_responses(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> tuple:
        server = PowerTradeServer(seed=7, rate=3.0, rfq_rate=10.0, account_rate=15.0,
                                  heartbeat=0.3, reorder_ms=40)
        await server.start()
        use_keys(monkeypatch, server)
        cfg = config(data_dir, server.url, options(
            symbols=["BTC-USD-PERPETUAL", "PTF-USD", "BTC-20221230-17000P", "NOPE-USD"],
            subscribe_types=["snap_with_deltas", "snap_full_updates"], intervals=[0, 500],
            feeds_url=server.feeds_url, summary_url=server.summary_url))

        sent = Tally(server, lambda e: message_kinds(server, e))
        proxy = ("command_response", "heartbeat", "entities_and_rules_response", "snapshot",
                 "order_added", "order_deleted", "order_updated", "order_executed", "trade",
                 "order_accepted", "execution", "positions_response", "balances_response",
                 "trade_history_response")
        feeds = ("top_of_book", "reference_price", "last_trade_price")

        def every_kind() -> bool:
            got = sent()
            return all(got[("proxy", n)] for n in proxy) and all(got[("feeds", n)]
                                                                 for n in feeds)

        async def scenario(stop: asyncio.Event) -> None:
            await server.until(every_kind, 30, "every kind of message on both sockets")
            server.duplicate_next_rfq()
            await server.until(lambda: any(n > 1 for k, n in sent().items() if k[0] == "rfq"),
                               30, "the duplicated RFQ")

        result = await run_scenario(cfg, server, scenario)
        return result, server

    result, server = asyncio.run(main())
    run = result.run_id
    (proxy_no,), (feeds_no,) = server.conns("proxy"), server.conns("feeds")
    proxy_sent, feeds_sent = server.ledger_for(proxy_no), server.ledger_for(feeds_no)
    # The journal holds exactly what the simulator sent, per connection, in order.
    assert [[f.decode() for f in s] for s in journal_sessions(data_dir, run, "proxy")] == [
        proxy_sent]
    assert [[f.decode() for f in s] for s in journal_sessions(data_dir, run, "feeds")] == [
        feeds_sent]
    con = connect(data_dir, "powertrade")
    counts = compare(con, run, "proxy", proxy_sent)
    counts.update(compare(con, run, "feeds", feeds_sent))
    must = {t.name for t in (
        T.COMMAND_RESPONSE, T.HEARTBEAT, T.ENTITIES_AND_RULES, T.SNAPSHOT, T.ORDER_ADDED,
        T.ORDER_DELETED, T.ORDER_UPDATED, T.ORDER_EXECUTED, T.TRADE, T.ORDER_ACCEPTED,
        T.EXECUTION_T, T.POSITIONS, T.BALANCES, T.TRADE_HISTORY, T.FEED_TOP_OF_BOOK,
        T.FEED_REFERENCE_PRICE, T.FEED_LAST_TRADE_PRICE)}
    assert must <= set(counts), must - set(counts)
    # nothing undeclared, nothing unhandled
    assert con.sql(f"SELECT count(*) FROM unhandled WHERE run_id = '{run}'").fetchall() == [(0,)]

    # The REST summary: one row per entity per fetch, equal to what the server answered.
    (answered_summary,) = server.rest_ledger
    body = answered_summary.body
    summary = lake_rows(con, T.ENTITY_SUMMARY.name, run, "rest")
    for item, row in zip(orjson.loads(body), summary, strict=True):
        check_row(T.ENTITY_SUMMARY, item, row, frozenset({"_tag"}))

    # RFQs: snapshots per live RFQ book (market none), multi-leg ones split into legs, and
    # the duplicated order_added is recorded twice (dedup is the view's job).
    rfq_added = con.sql(f"SELECT order_id, legs FROM powertrade_order_added WHERE run_id = "
                        f"'{run}' AND rfq").fetchall()
    assert rfq_added and any(legs for _, legs in rfq_added)
    ids = [o for o, _ in rfq_added]
    assert len(ids) > len(set(ids))
    n_dedup = con.sql("SELECT count(*) FROM powertrade_order_added_dedup WHERE rfq").fetchall()
    assert n_dedup == [(len(set(ids)),)]
    assert con.sql(f"SELECT count(*) FROM powertrade_snapshot WHERE run_id = '{run}' AND "
                   f"market_id = 'none' AND rfq").fetchall()[0][0] >= 1

    # Out of order: the server answered in another order than it was asked, yet every
    # command_response row names the very request that carried its user_tag.
    asked = [next(iter(orjson.loads(t).values()))["user_tag"] for n, t in server.received
             if n == proxy_no]
    answered = [orjson.loads(t)["command_response"]["user_tag"] for t in proxy_sent
                if t.startswith('{"command_response"')]
    pos = {tag: i for i, tag in enumerate(asked)}
    assert [pos[t] for t in answered] != sorted(pos[t] for t in answered)
    rows = con.sql(f"SELECT user_tag, request_type, request, matched, error_code FROM "
                   f"powertrade_command_response WHERE run_id = '{run}'").fetchall()
    sent = {next(iter(orjson.loads(r.data).values()))["user_tag"]: orjson.loads(r.data)
            for r in jr.read_run(data_dir, "powertrade", run)
            if r.kind == jr.KIND_OUT and r.conn == "proxy"}
    assert len(rows) == len(answered)
    for tag, rtype, request, matched, _code in rows:
        assert matched and sent[tag] == {rtype: orjson.loads(request)}
    # the secret never reaches the journal; its request row is redacted too
    assert sent["authenticate-1"]["authenticate"]["credentials_secret"] == "***"

    # session_events: auth, one subscribed per accepted subscription, the error with its request
    ev = con.sql(f"SELECT event, code, channel, detail FROM session_events WHERE run_id = "
                 f"'{run}' AND conn_id = 'proxy' ORDER BY recv_seq").fetchall()
    names = [e[0] for e in ev]
    assert names.count("auth_ok") == 1
    subscribed = sorted(e[2] for e in ev if e[0] == "subscribed")
    assert subscribed == sorted(["rfqs"] + [f"{s}/{t}/{i}" for s in (
        "BTC-USD-PERPETUAL", "PTF-USD", "BTC-20221230-17000P") for t in (
        "snap_with_deltas", "snap_full_updates") for i in (0, 500)])
    errors = [e for e in ev if e[0] == "error"]
    assert {e[2] for e in errors} == {f"NOPE-USD/{t}/{i}" for t in (
        "snap_with_deltas", "snap_full_updates") for i in (0, 500)}
    detail = orjson.loads(errors[0][3])
    assert errors[0][1] == "13" and detail["request"]["symbol"] == "NOPE-USD"
    assert detail["request_type"] == "subscribe" and detail["matched"] is True
    # heartbeats, typed, with ts_event from server_utc_timestamp
    hb = con.sql(f"SELECT server_utc_timestamp, ts_event FROM powertrade_heartbeat WHERE "
                 f"run_id = '{run}'").fetchall()
    assert hb and all(micros(a) * 1000 == micros(b) * 1000 for a, b in hb)
    m = orjson.loads((data_dir / "runs" / f"{run}.json").read_bytes())
    assert m["status"] == "complete"
    assert m["tables"]["powertrade_trade"] == counts["powertrade_trade"]

    # Rebuilt from the journal (REST answer included), the lake is the same, row for row.
    # (a connection's views bind the files there were: a new one after the rebuild)
    def snapshot_lake(c: Any) -> dict[str, list]:
        return {t.name: c.sql(f"SELECT * EXCLUDE (date) FROM {t.name} ORDER BY conn_id, "
                              f"recv_seq").fetchall() for t in T.TABLES}
    before = snapshot_lake(con)
    days = {p.name.removeprefix("date=") for p in (data_dir / "lake").glob("*/date=*")}
    for d in sorted(days):
        rebuild(data_dir, d, catalogue=CATALOGUE)
    after = snapshot_lake(connect(data_dir, "powertrade"))
    for k in before:
        for a, b in zip(before[k], after[k], strict=True):
            assert a == b, (k, [(x, y) for x, y in zip(a, b, strict=True) if x != y])


def test_heartbeat_loss_leads_to_a_reconnect_recorded_in_session_events(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> tuple:
        # Only heartbeats flow: no subscriptions accepted, no RFQs, no account activity.
        server = PowerTradeServer(seed=2, heartbeat=0.25, account_rate=0.0, reorder_ms=0)
        await server.start()
        use_keys(monkeypatch, server)
        cfg = config(data_dir, server.url, options(symbols=["NOPE-USD"], rfqs=False,
                                                   account=False), idle_timeout=1.0)

        beats = Tally(server, lambda e: [e.conn] if e.text.startswith('{"heartbeat"') else [])

        async def scenario(stop: asyncio.Event) -> None:
            # heartbeats alone keep the 1 s watchdog quiet: 6 of them is 1.5 s
            await server.until(lambda: beats()[1] >= 6, 30, "six heartbeats")
            server.silence(3.0)  # the dead link: no heartbeat, no data
            await server.until(lambda: beats()[2] >= 2, 30, "the reconnected session")

        result = await run_scenario(cfg, server, scenario)
        return result, server

    result, server = asyncio.run(main())
    run = result.run_id
    con = connect(data_dir, "powertrade")
    ev = con.sql(f"SELECT event, reason, gap_start, gap_end FROM session_events WHERE run_id = "
                 f"'{run}' ORDER BY ts_recv, recv_seq").fetchall()
    names = [e[0] for e in ev]
    assert names.count("idle_timeout") == 1, names
    i = names.index("idle_timeout")
    assert names[i:].index("disconnected") < names[i:].index("reconnected")
    assert names.count("auth_ok") == 2 and names.count("connected") == 2
    gap = next(e for e in ev if e[0] == "reconnected")
    assert gap[2] is not None and gap[3] is not None and 1.0 <= (gap[3] - gap[2]
                                                                 ).total_seconds() < 3.0
    hb = con.sql(f"SELECT count(*) FROM powertrade_heartbeat WHERE run_id = '{run}' AND "
                 f"ts_recv < (SELECT min(ts_recv) FROM session_events WHERE event = "
                 f"'idle_timeout' AND run_id = '{run}')").fetchall()[0][0]
    assert hb >= 5  # the heartbeats that kept the first connection alive
    assert len(server.conns("proxy")) == 2
    m = orjson.loads((data_dir / "runs" / f"{run}.json").read_bytes())
    assert m["reconnects"] == 1 and m["gaps"] == 1


def test_refused_jwt_is_recorded_and_the_proxy_stops(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> tuple:
        server = PowerTradeServer(seed=2, reorder_ms=0)
        other = PowerTradeServer(seed=2)  # same key id, another key pair: a bad signature
        await server.start()
        use_keys(monkeypatch, other)
        cfg = config(data_dir, server.url, options(symbols=["PTF-USD"]))

        async def scenario(stop: asyncio.Event) -> None:
            await server.until(lambda: server.conns() and not server.connections(), 30,
                               "the refused session to end")
            # A fixed time on purpose: nothing must happen in it. It is longer than any
            # backoff (backoff_max is 1 s here): a reconnect would be in it.
            await asyncio.sleep(1.2)

        result = await run_scenario(cfg, server, scenario, journal=False, exit_code=None)
        return result, server

    result, server = asyncio.run(main())
    con = connect(data_dir, "powertrade")
    ev = [e for e in con.sql("SELECT event, code FROM session_events ORDER BY recv_seq"
                             ).fetchall()]
    assert ("auth_failed", "2") in ev and ("stopped", None) in ev
    assert [e[0] for e in ev].count("connected") == 1  # no reconnect loop with a bad key
    assert len(server.received) == 1  # only the authenticate request was ever sent


def test_two_venues_of_one_run_keep_separate_files_of_shared_tables(data_dir: Path) -> None:
    from recorder.lake import LakeWriter, lake_files
    from recorder.rows import session

    for venue in ("mackinac", "powertrade"):
        w = LakeWriter(data_dir, venue, "run-x")
        table, row = session("connected", url=f"ws://{venue}")
        w.add(table, row, 1_700_000_000_000_000_000, "c", 1)
        w.write(*w.take())
        w.commit_all()
    files = lake_files(data_dir, "session_events", "run-x")
    assert len(files) == 2
    con = connect(data_dir, "powertrade")
    assert sorted(con.sql("SELECT url FROM session_events").fetchall()) == [
        ("ws://mackinac",), ("ws://powertrade",)]
