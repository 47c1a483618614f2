"""End to end over loopback: Derive simulator -> recorder -> journal + lake, compared with the
simulator's ledger table by table, field by field."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from recorder.venues import CATALOGUE
from recorder.venues.derive import tables as T
from recorder.venues.derive.server import DEFAULT_SIGNER_KEY, DeriveServer
from tests.e2e import Tally, connect, run_scenario
from tests.venues.derive.e2e import (
    channels_of,
    compare_lake,
    config,
    journal_sessions,
    outbound,
    tables_of,
)

ENV = "DERIVE_E2E_KEY"
PRIVATE = {"derive_orders", "derive_own_trades", "derive_balances", "derive_quotes",
           "derive_best_quotes", "derive_rfqs"}


def _events(run: str, data_dir: Path, con: object = None) -> list[tuple]:
    con = con or connect(data_dir, "derive")  # (a connection costs about a CPU second: share one)
    return con.sql(f"SELECT event, code, channel, reason, expected, received FROM "
                   f"session_events WHERE run_id = '{run}' ORDER BY recv_seq").fetchall()


def test_every_channel_lake_equals_ledger_with_gap_listing_and_login(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, DEFAULT_SIGNER_KEY)

    async def main() -> tuple:
        server = DeriveServer(seed=11, rate=2.0, churn_seconds=0)
        await server.start()
        # One currency and a refresh every 2 s keep the requests (about 11 at connect, 4 per
        # refresh) inside the venue's paced budget of 25 per 5 s.
        cfg = config(data_dir, server.url, wallet=server.wallet, private_key_env=ENV,
                     currencies=["ETH"], refresh_seconds=2.0, ticker_interval=100, orderbook_depth=10,
                     own_statuses=["settled"])
        listed: list[str] = []
        expired: list[str] = []
        gapped_at = 0

        tables, channels = Tally(server, tables_of), Tally(server, channels_of)
        book = (1, "orderbook.ETH-PERP.1.10")

        def unsubscribed(name: str) -> bool:
            return any('"unsubscribe"' in t and name in t for _, t in server.received)

        def done() -> bool:
            return (all(tables()[(1, t.name)] for t in T.TABLES)
                    and channels()[(1, f"ticker_slim.{listed[0]}.100")] > 0
                    and channels()[book] > gapped_at + 1 and unsubscribed(expired[0]))

        async def scenario(stop: asyncio.Event) -> None:
            nonlocal gapped_at
            await server.until(lambda: channels()[book], 30, "the ETH-PERP book")
            listed.append(server.list_instrument("ETH"))  # a listing mid-run
            expired.append(sorted(i.name for i in server.synth.active("ETH", "option"))[0])
            server.expire_instrument(expired[0])  # and an expiry
            gapped_at = channels()[book]
            assert server.gap("ETH-PERP", 3) == 1  # the next ETH-PERP book skips 3 ids
            # every table has rows; the next refresh subscribed the listing and dropped the
            # expired one; books came after the gap
            await server.until(done, 30, "every table, the listing, the expiry, the gap")

        result = await run_scenario(cfg, server, scenario)
        return result, server.ledger_for(1), listed[0], expired[0]

    result, ledger, new_name, gone = asyncio.run(main())
    run = result.run_id
    # the journal holds exactly what the simulator sent, in order
    sessions = journal_sessions(data_dir, run)
    assert len(sessions) == 1 and [f.decode() for f in sessions[0]] == ledger
    frames = [orjson.loads(t) for t in ledger]
    counts = compare_lake(data_dir, run, frames)
    # every table, public and private, received rows
    assert {n for n, c in counts.items() if c == 0} == set(), counts
    con = connect(data_dir, "derive")
    ev = _events(run, data_dir, con)
    # login accepted, then the private channels of both subaccounts and the wallet's RFQs
    assert [e[0] for e in ev].count("auth_ok") == 1
    subscribed = {e[2] for e in ev if e[0] == "subscribed"}
    assert {"30769.orders", "30770.best.quotes", "30769.trades.settled"} <= subscribed
    # the publish_id gap, with both ends
    gaps = [e for e in ev if e[0] == "gap"]
    assert [(g[2], g[5] - g[4]) for g in gaps] == [("orderbook.ETH-PERP.1.10", 3)]
    books = [f["params"]["data"]["publish_id"] for f in frames if f.get("params", {}).get(
        "channel") == "orderbook.ETH-PERP.1.10"]
    assert any(b - a == 4 for a, b in zip(books, books[1:], strict=False))
    # the listing that appeared mid-run: discovered by the refresh, subscribed, recorded
    assert {f"orderbook.{new_name}.1.10", f"ticker.{new_name}.100",
            f"ticker_slim.{new_name}.100", f"trades.{new_name}"} <= subscribed
    # the expired one: dropped by the same refresh
    assert {f"orderbook.{gone}.1.10", f"trades.{gone}"} <= {
        e[2] for e in ev if e[0] == "unsubscribed"}
    assert con.sql(f"SELECT count(*) FROM derive_instruments WHERE instrument_name = "
                   f"'{new_name}'").fetchall()[0][0] >= 1
    assert con.sql(f"SELECT count(*) FROM derive_ticker_slim WHERE instrument_name = "
                   f"'{new_name}'").fetchall()[0][0] >= 1
    # views work; own trades show each status as its own row, deduplicated by (id, status)
    statuses = dict(con.sql("SELECT tx_status, count(*) FROM derive_own_trades_dedup "
                            "WHERE status_filter IS NULL GROUP BY 1").fetchall())
    assert {"requested", "pending", "settled"} <= set(statuses)
    # the signature of the login never reaches the journal
    logins = [o for o in outbound(data_dir, run) if b"public/login" in o]
    assert len(logins) == 1 and b'"signature":"***"' in logins[0]
    m = orjson.loads((data_dir / "runs" / f"{run}.json").read_bytes())
    assert m["status"] == "complete" and m["tables"]["derive_orderbook"] == counts[
        "derive_orderbook"]


def test_login_refused_with_a_bad_signature_leaves_private_channels_absent(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "0x" + "42" * 32)  # a valid key, but not the wallet's signer

    async def main() -> tuple:
        server = DeriveServer(seed=5, rate=2.0, churn_seconds=0, currencies=("ETH",))
        await server.start()
        cfg = config(data_dir, server.url, wallet=server.wallet, private_key_env=ENV,
                     channels=["orderbook", "trades", "spot_feed"])

        tables = Tally(server, tables_of)

        async def scenario(stop: asyncio.Event) -> None:
            await server.until(lambda: tables()[(1, "derive_orderbook")]
                               and tables()[(1, "derive_spot_feed")], 30, "public data")

        result = await run_scenario(cfg, server, scenario)
        return result, server.ledger_for(1)

    result, ledger = asyncio.run(main())
    run = result.run_id
    frames = [orjson.loads(t) for t in ledger]
    counts = compare_lake(data_dir, run, frames)
    con = connect(data_dir, "derive")
    ev = _events(run, data_dir, con)
    refused = [e for e in ev if e[0] == "auth_failed"]
    assert [(e[1], e[3]) for e in refused] == [
        ("14014", "Signature invalid for message or transaction")]
    assert "auth_ok" not in [e[0] for e in ev]
    assert all(counts[t] == 0 for t in PRIVATE), counts
    assert counts["derive_orderbook"] > 0 and counts["derive_spot_feed"] > 0
    # no private channel was even asked for
    subs = b" ".join(o for o in outbound(data_dir, run) if b'"subscribe"' in o)
    assert b".orders" not in subs and b".rfqs" not in subs
    rpc = con.sql("SELECT error_code FROM derive_rpc WHERE method = 'public/login'"
                  ).fetchall()
    assert rpc == [(14014,)]


def test_v3_variant_records_v3_shapes(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, DEFAULT_SIGNER_KEY)

    async def main() -> tuple:
        server = DeriveServer(seed=3, rate=2.0, variant="v3", churn_seconds=0,
                              currencies=("BTC",))
        await server.start()
        assert server.url.endswith("/v3/ws")
        cfg = config(data_dir, server.url, variant="v3", wallet=server.wallet,
                     private_key_env=ENV, channels=["orderbook", "trades_settled"],
                     private_channels=["trades", "quotes"])

        tables = Tally(server, tables_of)
        wanted = ("derive_orderbook", "derive_own_trades", T.QUOTES.name, T.TRADES_SETTLED.name)

        async def scenario(stop: asyncio.Event) -> None:
            await server.until(lambda: all(tables()[(1, t)] for t in wanted), 30,
                               "v3 books, own trades, quotes, settled trades")

        result = await run_scenario(cfg, server, scenario)
        return result, server.ledger_for(1)

    result, ledger = asyncio.run(main())
    frames = [orjson.loads(t) for t in ledger]
    books = [f for f in frames if f.get("params", {}).get("channel", "").startswith("orderbook")]
    assert books and isinstance(books[0]["params"]["data"]["bids"][0], dict)  # v3 objects
    counts = compare_lake(data_dir, result.run_id, frames)
    assert counts["derive_orderbook"] > 0 and counts["derive_own_trades"] > 0
    con = connect(data_dir, "derive")
    own = con.sql("SELECT count(*), count(batch_status), count(op_uuid), count(tx_status) "
                  "FROM derive_own_trades").fetchall()[0]
    assert own[0] == own[1] == own[2] > 0 and own[3] == 0
    nonces = con.sql("SELECT nonce FROM derive_quotes LIMIT 1").fetchall()
    assert nonces and nonces[0][0].isdigit()
    assert {t for t, n in counts.items() if n} >= {T.QUOTES.name, T.TRADES_SETTLED.name}


def test_reconnect_logs_in_and_subscribes_again(data_dir: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, DEFAULT_SIGNER_KEY)

    async def main() -> tuple:
        server = DeriveServer(seed=8, rate=2.0, churn_seconds=0, currencies=("ETH",))
        await server.start()
        cfg = config(data_dir, server.url, wallet=server.wallet, private_key_env=ENV,
                     channels=["orderbook"], private_channels=["orders"])

        channels = Tally(server, channels_of)

        def flowing(conn: int) -> bool:  # logged in and subscribed: public and private data
            return channels()[(conn, "orderbook.ETH-PERP.1.10")] > 0 and any(
                n and c == conn and ch.endswith(".orders") for (c, ch), n in channels().items())

        async def scenario(stop: asyncio.Event) -> None:
            await server.until(lambda: flowing(1), 30, "the first session's data")
            server.drop()  # abrupt: no close frame
            await server.until(lambda: flowing(2), 30, "the second session's data")

        result = await run_scenario(cfg, server, scenario)
        return result, server.ledger_for(1), server.ledger_for(2)

    result, first, second = asyncio.run(main())
    sessions = journal_sessions(data_dir, result.run_id)
    assert len(sessions) == 2
    got = [f.decode() for f in sessions[0]]
    assert got == first[:len(got)] and [f.decode() for f in sessions[1]] == second
    ev = _events(result.run_id, data_dir)
    names = [e[0] for e in ev]
    assert names.count("auth_ok") == 2 and names.count("reconnected") == 1
    i = names.index("reconnected")
    assert "orderbook.ETH-PERP.1.10" in {e[2] for e in ev[i:] if e[0] == "subscribed"}
    assert "30769.orders" in {e[2] for e in ev[i:] if e[0] == "subscribed"}
    # no gap is reported across the reconnect: publish_id counters restart per connection
    assert "gap" not in names
    compare_lake(data_dir, result.run_id, [orjson.loads(t) for t in got + second])


def test_rebuild_from_the_journal_gives_the_same_lake(data_dir: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The offline adapter has no settings and no key; rows still come out identical because
    answers are understood from their self-describing ids."""
    from recorder.build import rebuild

    monkeypatch.setenv(ENV, DEFAULT_SIGNER_KEY)

    async def main() -> tuple:
        server = DeriveServer(seed=9, rate=2.0, churn_seconds=0, currencies=("ETH",))
        await server.start()
        cfg = config(data_dir, server.url, wallet=server.wallet, private_key_env=ENV,
                     channels=["orderbook", "ticker_slim", "trades_settled"],
                     private_channels=["quotes", "best_quotes"])

        channels = Tally(server, channels_of)
        book = (1, "orderbook.ETH-PERP.1.10")

        async def scenario(stop: asyncio.Event) -> None:
            await server.until(lambda: channels()[book], 30, "the ETH-PERP book")
            gapped_at = channels()[book]
            server.gap("ETH-PERP", 2)
            await server.until(lambda: channels()[book] > gapped_at + 1, 30, "the gap")

        result = await run_scenario(cfg, server, scenario)
        return result, server.ledger_for(1)

    result, ledger = asyncio.run(main())
    frames = [orjson.loads(t) for t in ledger]
    live = compare_lake(data_dir, result.run_id, frames)
    events_live = _events(result.run_id, data_dir)
    dates = {p.name.removeprefix("date=") for p in (data_dir / "lake").glob("*/date=*")}
    for d in sorted(dates):
        rebuild(data_dir, d, catalogue=CATALOGUE)
    assert compare_lake(data_dir, result.run_id, frames) == live
    # (rows of one frame share a recv_seq, so compare as multisets)
    assert sorted(map(repr, _events(result.run_id, data_dir))) == sorted(map(repr, events_live))
    assert {e[0] for e in events_live} >= {"auth_ok", "subscribed", "gap"}
