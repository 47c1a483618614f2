"""End to end over loopback: Mackinac simulator -> recorder -> journal + lake -> DuckDB."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from recorder import journal as jr
from recorder.duck import lazy
from recorder.venues.mackinac import tables as T
from recorder.venues.mackinac.server import MackinacServer
from tests.e2e import Live, Tally, connect, run_scenario
from tests.venues.mackinac.e2e import compare_lake, config, frame_types, journal_sessions

KEY = "mk_live_test_e2e"
SYMBOLS = [
    "hl:ETH", "hl:BTC", "dydx:ETH-USD", "uni:WETH/USDC", "univ4:WETH/USDC", "gmx:BTC",
    "ostium:XAU/USD", "rates:all", "rates:PT-weETH-25JUN2026", "aave:USDC", "morpho:all",
    "lending:actions", "ammbook:WETH/USDC", "ammliquidity:WETH/USDC", "arbflag:WETH/USDC",
]


#: what the first session gets without a fault: market data of every kind, the rate-limited
#: subscribe's error, the history reply, the LP backfill, legacy prints without exchange
MARKET_TYPES = {t.name.removeprefix("mackinac_") for t in T.TABLES} - {
    "feed_stale", "feed_live", "server_closing"} | {"legacy_print"}


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MACKINAC_TEST_KEY", KEY)


def test_every_type_lake_equals_ledger_across_a_server_restart(data_dir: Path) -> None:
    async def main() -> tuple:
        server = MackinacServer(seed=7, api_keys={KEY: "super_admin"}, rate=3.0,
                                legacy_hl_every=5)
        await server.start()
        server.rate_limit(retry_after=1)  # the first subscribe is refused with a hint
        cfg = config(data_dir, server.url, SYMBOLS, "MACKINAC_TEST_KEY")

        sent = Tally(server, frame_types)

        def complete(conn: int, kinds: set[str]) -> bool:
            """Every key acked on session ``conn`` and every kind sent on it."""
            got = sent()
            return got[(conn, "subscribed")] >= len(SYMBOLS) and all(
                got[(conn, k)] for k in kinds)

        async def scenario(stop: asyncio.Event) -> None:
            # every type the market and the session make by themselves, on the first session
            await server.until(lambda: complete(1, MARKET_TYPES), 30, "every market type")
            server.stale("hl", True)
            server.stale("hl", False)
            server.server_closing(300)  # planned restart: reconnect after 300 ms
            await server.until(lambda: complete(2, {"snapshot"}), 30, "the second session")

        result = await run_scenario(cfg, server, scenario)
        return result, [server.ledger_for(1), server.ledger_for(2)]

    result, ledgers = asyncio.run(main())
    run = result.run_id
    # The journal holds exactly what the simulator sent, per connection, in order.
    sessions = journal_sessions(data_dir, run)
    assert [[f.decode() for f in s] for s in sessions[:2]] == ledgers
    frames = [orjson.loads(t) for t in ledgers[0] + ledgers[1]]
    con = connect(data_dir, "mackinac")
    counts = compare_lake(con, run, frames)
    # every one of the 20 message types was sent and landed in its own table
    assert set(counts) == {t.name for t in T.TABLES}
    legacy = con.sql(f"SELECT count(*) FROM mackinac_print WHERE run_id = '{run}' AND "
                     f"legacy_no_exchange").fetchall()[0][0]
    assert legacy == sum(1 for f in frames if f["type"] == "print" and "exchange" not in f)
    assert legacy > 0
    ev = con.sql(f"SELECT event, code, retry_after_s, gap_start, gap_end FROM session_events "
                 f"WHERE run_id = '{run}' ORDER BY recv_seq").fetchall()
    names = [e[0] for e in ev]
    assert names.count("auth_ok") == 2 and names.count("connected") >= 2
    assert ("rate_limited", "rate_limited", 1.0) in [e[:3] for e in ev]
    assert "feed_stale" in names and "feed_live" in names
    closing = [e for e in ev if e[0] == "server_closing"]
    assert closing and closing[0][2] == 0.3
    assert ("disconnected", "1012") in [e[:2] for e in ev]
    gap = next(e for e in ev if e[0] == "reconnected")
    assert gap[3] is not None and gap[4] is not None and gap[3] < gap[4]
    # subscribed acks: every key on both connections (the rate-limited one re-sent later)
    subs = con.sql(f"SELECT exchange || ':' || symbol AS k, count(*) FROM mackinac_subscribed "
                   f"WHERE run_id = '{run}' GROUP BY 1").fetchall()
    assert {k for k, _ in subs} == set(SYMBOLS)
    # the prints of one history reply are numbered 0..n-1 within their frame (recv_sub)
    subs = con.sql(f"SELECT recv_seq, list(recv_sub ORDER BY recv_sub) FROM mackinac_print "
                   f"WHERE run_id = '{run}' AND source = 'history' GROUP BY 1").fetchall()
    assert subs and all(s == list(range(len(s))) for _, s in subs)
    # the manifest
    m = orjson.loads((data_dir / "runs" / f"{run}.json").read_bytes())
    assert m["status"] == "complete" and m["reconnects"] == 1
    assert m["tables"]["mackinac_quote"] == counts["mackinac_quote"]
    conn = m["venues"]["mackinac"]["connections"]["feed"]
    assert conn["frames"] == len(frames) and conn["first_recv"] < conn["last_recv"]
    # Polars sees the same rows, with the hive date column
    lf = lazy("mackinac_quote", data_dir).collect()
    assert lf.height == counts["mackinac_quote"] and lf["date"].dtype.__class__.__name__ == "Date"
    # the api key never reaches the journal
    outs = [r.data for r in jr.read_run(data_dir, "mackinac", run) if r.kind == jr.KIND_OUT]
    assert any(b'"action":"auth"' in o for o in outs)
    assert not any(KEY.encode() in o for o in outs)


def test_drop_and_reconnect_records_gap_with_both_ends(data_dir: Path) -> None:
    async def main() -> tuple:
        server = MackinacServer(seed=3, api_keys={KEY: "api"}, rate=3.0)
        await server.start()
        cfg = config(data_dir, server.url, ["hl:ETH", "uni:WETH/USDC"], "MACKINAC_TEST_KEY")

        sent = Tally(server, frame_types)

        def ready(conn: int) -> bool:  # both keys acked, both history replies, live prints
            got = sent()
            return got[(conn, "subscribed")] == got[(conn, "snapshot")] == 2 and got[
                (conn, "print")] > 0 and len(server.ledger_for(conn)) > 10

        async def scenario(stop: asyncio.Event) -> None:
            await server.until(lambda: ready(1), 30, "the first session")
            server.drop()  # abrupt: TCP abort, no close frame
            await server.until(lambda: ready(2), 30, "the second session")

        result = await run_scenario(cfg, server, scenario)
        return result, [server.ledger_for(1), server.ledger_for(2)]

    result, ledgers = asyncio.run(main())
    sessions = journal_sessions(data_dir, result.run_id)
    assert len(sessions) == 2
    # what arrived before the abort is a prefix of what was sent; after it, everything
    first = [f.decode() for f in sessions[0]]
    assert first == ledgers[0][:len(first)] and len(first) > 10
    assert [f.decode() for f in sessions[1]] == ledgers[1]
    con = connect(data_dir, "mackinac")
    ev = con.sql("SELECT event, gap_start, gap_end FROM session_events WHERE event IN "
                 "('disconnected', 'reconnected', 'subscribed', 'auth_ok') "
                 "ORDER BY recv_seq").fetchall()
    names = [e[0] for e in ev]
    assert names.count("auth_ok") == 2 and names.count("subscribed") == 4
    i = names.index("disconnected")
    assert names[i + 1:].count("reconnected") == 1
    gap = next(e for e in ev if e[0] == "reconnected")
    assert gap[1] < gap[2]
    # history was asked for again after the reconnect (overlap handled by the _dedup view)
    n_snap = con.sql("SELECT count(*) FROM mackinac_snapshot").fetchall()[0][0]
    assert n_snap == 4
    total, dedup = con.sql("SELECT (SELECT count(*) FROM mackinac_print), "
                           "(SELECT count(*) FROM mackinac_print_dedup)").fetchall()[0]
    assert dedup < total


def test_auth_refused_is_recorded_and_the_connection_stops(data_dir: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MACKINAC_TEST_KEY", "mk_live_wrong")

    async def main() -> tuple:
        server = MackinacServer(seed=3, api_keys={KEY: "api"})
        await server.start()
        cfg = config(data_dir, server.url, ["hl:ETH"], "MACKINAC_TEST_KEY")

        async def scenario(stop: asyncio.Event) -> None:
            await server.until(lambda: server.conns() and not server.connections(), 30,
                               "the refused session to end")
            # A fixed time on purpose: nothing must happen in it. It is longer than any
            # backoff (backoff_max is 1 s here): a reconnect would be in it.
            await asyncio.sleep(1.5)

        result = await run_scenario(cfg, server, scenario, journal=False, exit_code=None)
        return result, len(server.ledger)

    result, sent = asyncio.run(main())
    con = connect(data_dir, "mackinac")
    ev = [e[0] for e in con.sql("SELECT event FROM session_events ORDER BY recv_seq").fetchall()]
    assert "auth_failed" in ev and "stopped" in ev
    assert ev.count("connected") == 1  # no reconnect loop with a refused key
    assert con.sql("SELECT code FROM mackinac_error").fetchall() == [("auth_failed",)]
    assert con.sql("SELECT count(*) FROM mackinac_quote").fetchall()[0][0] == 0
    assert sent == 1


def test_bad_input_never_crashes_or_escapes_the_lake(tmp_path: Path, data_dir: Path) -> None:
    async def main() -> tuple:
        server = MackinacServer(seed=5, api_keys={KEY: "api"}, rate=2.0)
        await server.start()
        cfg = config(data_dir, server.url, ["hl:ETH", "hl:../../etc/passwd"], "MACKINAC_TEST_KEY",
                     max_frame_bytes=64 * 1024)

        sent = Tally(server, frame_types)
        live = Live(data_dir, "mackinac")

        def second_session_journaled() -> bool:  # its ack and history reply, and the errors
            got = live().tables
            return got["mackinac_subscribed"] >= 2 and got["mackinac_snapshot"] >= 2 and got[
                "mackinac_error"] >= 2

        async def scenario(stop: asyncio.Event) -> None:
            # hl:ETH acked, the hostile key refused twice (subscribe and history)
            await server.until(lambda: sent()[(1, "subscribed")] and sent()[(1, "error")] == 2
                               and sent()[(1, "snapshot")], 30, "the first session")
            server.inject('{"type": "quote", "exchange": "hl", ')  # malformed
            server.inject('{"type": "brand_new_thing", "x": 1}')  # unknown type
            server.inject('[1, 2, 3]')  # not an object
            server.inject('{"type": "print", "exchange": "hl", "symbol": "../../etc/x", '
                                '"price": "NaN-ish", "size": 1, "side": 1, "time": 1}')
            server.inject('{"type": "quote", "exchange": "hl", "symbol": "../../../x", '
                                '"bids": [], "asks": [], "time": 1748275200000}')
            server.inject('{"type":"quote","pad":"' + "x" * 100_000 + '"}')  # oversized
            # the recorder reconnects after the oversized frame; hl:ETH only, with history
            await server.until(lambda: sent()[(2, "subscribed")] and sent()[(2, "snapshot")],
                               30, "the second session")
            # (not every frame sent is journaled: the oversized one is refused, and what
            # followed it on the first session was never read)
            await server.until(second_session_journaled, 30, "the second session journaled")

        return await run_scenario(cfg, server, scenario, journal=False)

    asyncio.run(main())
    con = connect(data_dir, "mackinac")
    reasons = dict(con.sql("SELECT reason, count(*) FROM unhandled GROUP BY 1").fetchall())
    assert reasons.get("malformed") == 1 and reasons.get("unknown_type") == 1
    assert reasons.get("unexpected_shape") == 1 and reasons.get("bad_value") == 1
    bad = con.sql("SELECT target_table, raw FROM unhandled WHERE reason = 'bad_value'").fetchall()[0]
    assert bad[0] == "mackinac_print" and "NaN-ish" in bad[1]
    assert con.sql("SELECT count(*) FROM mackinac_quote WHERE symbol = '../../../x'"
                   ).fetchall()[0][0] == 1
    ev = [e[0] for e in con.sql("SELECT event FROM session_events ORDER BY recv_seq").fetchall()]
    assert "frame_too_large" in ev and ev.count("connected") == 2  # reconnected after it
    # the hostile key is only data: the server refused its subscribe and its history request,
    # and the recorder dropped it instead of resubscribing it after the reconnect
    assert con.sql("SELECT code, count(*) FROM mackinac_error WHERE symbol = '../../etc/passwd' "
                   "GROUP BY 1").fetchall() == [("unknown_symbol", 2)]
    assert con.sql("SELECT exchange || ':' || symbol, count(*) FROM mackinac_subscribed "
                   "GROUP BY 1").fetchall() == [("hl:ETH", 2)]
    outside = [p for p in tmp_path.rglob("*") if not str(p).startswith(str(data_dir))]
    assert outside == []
    for p in data_dir.rglob("*"):
        assert p.resolve().is_relative_to(data_dir.resolve())
    for f in (data_dir / "lake").rglob("*.parquet"):
        pq.read_metadata(f)


def test_second_run_of_same_config_is_refused_while_first_records(data_dir: Path) -> None:
    from recorder.errors import LockedError
    from recorder.record import record

    async def main() -> str:
        server = MackinacServer(seed=1)
        await server.start()
        cfg = config(data_dir, server.url, ["hl:ETH"])
        # the first run ends in 120 s, outside a 60 s handover window: no successor yet
        cfg = dataclasses.replace(cfg, recorder=dataclasses.replace(cfg.recorder,
                                                                    handover=60.0))

        async def scenario(stop: asyncio.Event) -> None:
            # the first run holds its locks once it has connected
            await server.until(lambda: server.conns(), 30, "the first run connected")
            with pytest.raises(LockedError, match="already being recorded") as err:
                await record(cfg, 1, live_status=False, install_signals=False)
            scenario.msg = str(err.value)  # type: ignore[attr-defined]

        await run_scenario(cfg, server, scenario, journal=False)
        return scenario.msg  # type: ignore[attr-defined]

    msg = asyncio.run(main())
    assert f"pid {os.getpid()}" in msg
    # the refused run wrote no manifest of its own
    assert len(list((data_dir / "runs").glob("*.json"))) == 1


def test_anonymous_no_ack_session_records_three_symbols_and_the_limit_error(
        data_dir: Path) -> None:
    """The websocket page's variant: no `subscribed` acks (the next data frame confirms), and
    the free tier's 3-symbol cap refusing the 4th key, which is then not retried."""
    async def main() -> tuple:
        server = MackinacServer(seed=11, ack=False, rate=3.0)
        await server.start()
        cfg = config(data_dir, server.url, ["hl:ETH", "hl:BTC", "dydx:ETH-USD", "gmx:BTC"])

        quotes = Tally(server, lambda e: [(e.conn, m.get("exchange"), m.get("symbol"))
                                          for m in [orjson.loads(e.text)]
                                          if m.get("type") in ("quote", "error")])

        def confirmed(conn: int) -> bool:  # the next data frame is the confirmation
            return all(quotes()[(conn, *k.split(":"))] for k in ("hl:ETH", "hl:BTC",
                                                                  "dydx:ETH-USD"))

        async def scenario(stop: asyncio.Event) -> None:
            await server.until(lambda: confirmed(1) and quotes()[(1, "gmx", "BTC")], 30,
                               "three symbols and the limit error")
            server.drop(code=1011)
            await server.until(lambda: confirmed(2), 30, "the second session")

        result = await run_scenario(cfg, server, scenario)
        return result, [server.ledger_for(1), server.ledger_for(2)]

    result, ledgers = asyncio.run(main())
    con = connect(data_dir, "mackinac")
    frames = [orjson.loads(t) for t in ledgers[0] + ledgers[1]]
    counts = compare_lake(con, result.run_id, frames)
    assert "mackinac_subscribed" not in counts and counts["mackinac_quote"] > 0
    syms = {r[0] for r in con.sql("SELECT DISTINCT exchange || ':' || symbol "
                                  "FROM mackinac_quote").fetchall()}
    assert syms == {"hl:ETH", "hl:BTC", "dydx:ETH-USD"}
    errs = con.sql("SELECT code, \"limit\", exchange, symbol FROM mackinac_error").fetchall()
    assert errs == [("symbol_limit_reached", 3, "gmx", "BTC")]  # once: dropped, not retried


def test_two_venues_in_one_run_share_the_common_tables(data_dir: Path) -> None:
    """Two config sections on the same adapter (an A/B pair) in one run: each venue writes
    its own files of session_events and unhandled, and one venue's end stops neither."""
    from recorder.config import Config, VenueConfig

    async def main() -> tuple:
        server = MackinacServer(seed=4, rate=3.0)
        await server.start()
        base = config(data_dir, server.url, ["hl:ETH"])
        a = base.venues[0]
        b = VenueConfig("mackinac_b", "mackinac", url=server.url, transport=a.transport,
                        options={"symbols": ["uni:WETH/USDC"], "history": False})
        cfg = Config(base.path, base.recorder, (a, b))

        sent = Tally(server, frame_types)
        lives = [Live(data_dir, "mackinac"), Live(data_dir, "mackinac_b", "mackinac")]

        async def scenario(stop: asyncio.Event) -> None:
            await server.until(lambda: sent()[(1, "quote")] and sent()[(2, "quote")], 30,
                               "quotes on both venues' sessions")
            server.inject("not json")  # an unhandled row from each venue
            await server.until(lambda: all(live().tables["unhandled"] for live in lives), 30,
                               "the unhandled row of each venue journaled")

        # (the ledger holds both venues' frames: each venue's journal was waited for above)
        return await run_scenario(cfg, server, scenario, journal=False)

    asyncio.run(main())
    con = connect(data_dir, "mackinac")
    assert sorted(con.sql("SELECT venue, count(*) FROM unhandled GROUP BY 1").fetchall()) == [
        ("mackinac", 1), ("mackinac_b", 1)]
    per_venue = dict(con.sql("SELECT venue, count(*) FROM session_events WHERE event = "
                             "'connected' GROUP BY 1").fetchall())
    assert per_venue == {"mackinac": 1, "mackinac_b": 1}
    assert {r[0] for r in con.sql("SELECT DISTINCT venue FROM mackinac_quote").fetchall()} == {
        "mackinac", "mackinac_b"}
    files = [p.name for p in (data_dir / "lake" / "session_events").rglob("*.parquet")]
    assert any("-mackinac-" in f for f in files) and any("-mackinac_b-" in f for f in files)
