"""The cross-venue views (trades, book_updates, top_of_book, tickers, funding, rfq_events,
quote_events, fills, positions): declared once in the registry, generated into
queries/views.sql, and checked here against a recording of all five simulated venues."""

from __future__ import annotations

import asyncio
import dataclasses
import io
from pathlib import Path

import duckdb
import pytest

from recorder.config import load
from recorder.duck import connect, mappings, views_named
from recorder.record import record
from recorder.schema import CROSS_COMMON, CROSS_TAIL, CROSS_VIEWS
from recorder.venues import CATALOGUE

SIM_TOML = Path(__file__).resolve().parent.parent / "conf" / "sim.toml"
ALL = {"mackinac", "derive", "diffusal", "powertrade", "totalis"}
# Which venues have each concept (and so must appear in the view).
EXPECTED: dict[str, set[str]] = {
    "trades": {"mackinac", "derive", "diffusal", "powertrade"},
    "book_updates": {"mackinac", "derive", "diffusal", "powertrade"},
    "top_of_book": {"mackinac", "derive", "diffusal", "powertrade"},
    "tickers": {"derive", "diffusal", "powertrade"},
    "funding": {"mackinac", "derive"},
    "rfq_events": {"totalis", "derive", "diffusal", "powertrade"},
    "quote_events": {"totalis", "derive", "diffusal"},
    "fills": {"derive", "diffusal", "powertrade"},
    "positions": {"derive", "diffusal", "powertrade", "totalis"},
}


def _venues(con, view: str) -> set[str]:  # type: ignore[no-untyped-def]
    return {v for (v,) in con.execute(f"SELECT DISTINCT venue FROM {view}").fetchall()}


def _all_there(data_dir: Path) -> bool:
    # first the files (cheap): each expected venue has a file of a table its views read
    have = {p.parent.parent.name for p in (data_dir / "lake").glob("*/date=*/*.parquet")}
    if not all({t.venue for t, _ in mappings(CATALOGUE, v) if t.name in have} >= want
               for v, want in EXPECTED.items()):
        return False
    con = connect(data_dir, views=set(EXPECTED))
    try:
        return all(_venues(con, v) >= want for v, want in EXPECTED.items())
    finally:
        con.close()


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """conf/sim.toml (every venue's simulator) recorded until each cross view has rows from
    every venue expected in it (or 120 s), with files committed every second."""
    data_dir = tmp_path_factory.mktemp("cross") / "data"
    cfg = load(SIM_TOML, data_dir=data_dir)
    # Power.Trade's account trades now and then (a fill came seconds after every other
    # concept): here it trades ten times as often, so the recording can end sooner
    venues = tuple(dataclasses.replace(v, sim={**v.sim, "account_rate": 10.0})
                   if v.adapter == "powertrade" else v for v in cfg.venues)
    cfg = dataclasses.replace(cfg, venues=venues, recorder=dataclasses.replace(
        cfg.recorder, lake_flush_seconds=0.5, lake_rotate_seconds=1.0, journal_flush_ms=50,
        metrics_file="off"))

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(record(cfg, 300, out=io.StringIO(), live_status=False,
                                          install_signals=False, stop=stop))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        try:
            while loop.time() < deadline and not task.done():
                if await asyncio.to_thread(_all_there, data_dir):
                    break
                await asyncio.sleep(0.5)
        finally:
            stop.set()
        result = await task
        assert result.exit_code == 0, result.reason

    asyncio.run(main())
    return data_dir


@pytest.fixture(scope="module")
def con(lake: Path) -> duckdb.DuckDBPyConnection:
    """One connection with the cross-venue views for the tests that only read them."""
    return connect(lake, views=set(EXPECTED))


def test_every_view_is_declared_once_and_each_venue_with_the_concept_maps_onto_it() -> None:
    assert [v.name for v in CROSS_VIEWS] == list(EXPECTED)
    for view, want in EXPECTED.items():
        venues = {t.venue for t, _ in mappings(CATALOGUE, view)}
        assert venues == want, view


def test_cross_views_have_the_declared_columns_and_types_on_an_empty_lake(
        tmp_path: Path) -> None:
    con = connect(tmp_path)
    for view in CROSS_VIEWS:
        got = con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {view.name})").fetchall()
        want = [(n, t) for n, t, _ in (*CROSS_COMMON, *view.columns, *CROSS_TAIL)]
        norm = {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}
        assert got == [(n, norm.get(t, t)) for n, t in want], view.name
        assert con.execute(f"SELECT count(*) FROM {view.name}").fetchone() == (0,)


def test_each_cross_view_has_rows_from_every_venue_expected(con: duckdb.DuckDBPyConnection) -> None:
    for view, want in EXPECTED.items():
        got = _venues(con, view)
        assert got == want, (view, got)
        assert got <= ALL
        # source_table names the venue table, and the venue owns it
        for venue, table in con.execute(f"SELECT DISTINCT venue, source_table FROM {view}"
                                    ).fetchall():
            assert CATALOGUE.tables[table].venue == venue, (view, table)


def test_a_connection_with_the_views_a_query_names_answers_as_one_with_all(lake: Path) -> None:
    sql = ("SELECT venue, count(*), round(sum(size), 6) FROM trades GROUP BY ALL UNION ALL "
           "SELECT 'gaps', count(*), NULL FROM gaps ORDER BY ALL")
    assert views_named(sql) == {"trades", "gaps"}
    assert views_named("SHOW TABLES") == set()
    few = connect(lake, views=views_named(sql))
    assert few.sql(sql).fetchall() == connect(lake).sql(sql).fetchall()
    # trades and what it reads (every trade table's views), gaps and session_events'
    names = {n for (n,) in few.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal"
                                   ).fetchall()}
    trade_tables = {t.name for t, _ in mappings(CATALOGUE, "trades")}
    assert names == {"trades", "gaps", "session_events", "session_events_dedup",
                     *trade_tables, *(f"{t}_dedup" for t in trade_tables)}


def test_trades_are_sane_and_counted_once(con: duckdb.DuckDBPyConnection) -> None:
    bad = con.execute("SELECT venue, count(*) FROM trades WHERE price IS NULL OR size IS NULL OR "
                  "price <= 0 OR size <= 0 OR instrument IS NULL OR ts_event IS NULL OR "
                  "side NOT IN ('buy', 'sell', 'unknown') OR side IS NULL GROUP BY 1").fetchall()
    assert bad == []
    # venues that say who was the aggressor have both sides
    for venue in ("mackinac", "derive", "diffusal"):
        sides = {s for (s,) in con.execute("SELECT DISTINCT side FROM trades WHERE venue = ?",
                                       [venue]).fetchall()}
        assert {"buy", "sell"} <= sides, venue
    # on-chain Mackinac prints keep their block and transaction
    assert con.execute("SELECT count(*) FROM trades WHERE venue = 'mackinac' AND instrument LIKE "
                   "'uni:%' AND (block_number IS NULL OR tx_index IS NULL)").fetchone() == (0,)
    # each print once: the grouped Diffusal streams and history replies repeat prints
    for venue, table in (("diffusal", "diffusal_trade"), ("mackinac", "mackinac_print"),
                         ("powertrade", "powertrade_trade")):
        n = con.execute(f"SELECT count(*) FROM {table}_dedup").fetchone()
        assert con.execute("SELECT count(*) FROM trades WHERE venue = ?", [venue]
                       ).fetchone() == n
    # Derive sends a print on several channels: one row per trade id
    assert con.execute("SELECT count(*) - count(DISTINCT trade_id) FROM trades WHERE venue = "
                   "'derive'").fetchone() == (0,)


def test_book_updates_and_top_of_book_are_sane(con: duckdb.DuckDBPyConnection) -> None:
    assert con.execute("SELECT count(*) FROM book_updates WHERE side NOT IN ('bid', 'ask') OR "
                   "size < 0 OR (price IS NULL AND action <> 'delete') OR instrument IS NULL"
                   ).fetchone() == (0,)
    # Diffusal has snapshots and diffs, with their sequence; Derive's snapshots carry
    # publish_id; Power.Trade's order events name their order
    kinds = con.execute("SELECT DISTINCT is_snapshot FROM book_updates WHERE venue = 'diffusal' "
                    "AND sequence IS NOT NULL").fetchall()
    assert sorted(kinds) == [(False,), (True,)]
    assert con.execute("SELECT count(*) FROM book_updates WHERE venue = 'derive' AND sequence IS "
                   "NULL").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM book_updates WHERE venue = 'powertrade' AND "
                   "order_id IS NULL").fetchone() == (0,)
    # one row per level: a Derive message's levels add up to its bids and asks
    want = con.execute("SELECT sum(len(bids) + len(asks)) FROM derive_orderbook_dedup").fetchone()
    assert con.execute("SELECT count(*) FROM book_updates WHERE venue = 'derive'").fetchone() == want
    # best bid under best ask, nearly always (an AMM consolidation can cross: an arb gap)
    n, ok = con.execute("SELECT count(*), count_if(bid_price <= ask_price) FROM top_of_book WHERE "
                    "bid_price IS NOT NULL AND ask_price IS NOT NULL").fetchone()
    assert n > 0 and ok / n > 0.9, (ok, n)
    assert con.execute("SELECT count(*) FROM top_of_book WHERE source_table <> 'mackinac_ammbook' "
                   "AND bid_price > ask_price AND venue <> 'mackinac'").fetchone() == (0,)


def test_tickers_funding_rfqs_quotes_fills_positions_are_sane(con: duckdb.DuckDBPyConnection) -> None:
    assert con.execute("SELECT count(*) FROM tickers WHERE venue = 'derive' AND iv > 0 AND "
                   "delta IS NOT NULL").fetchone()[0] > 0
    assert con.execute("SELECT count(*) FROM tickers WHERE index_price <= 0").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM funding WHERE rate IS NULL OR rate_period NOT IN "
                   "('year', 'hour')").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM rfq_events WHERE rfq_id IS NULL OR event IS NULL"
                   ).fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM quote_events WHERE rfq_id IS NULL OR event IS NULL OR "
                   "quote_id IS NULL").fetchone() == (0,)
    # quotes answer requests the rfq_events view knows
    joined = {v for (v,) in con.execute("SELECT DISTINCT q.venue FROM quote_events q JOIN "
                                    "rfq_events r USING (venue, rfq_id)").fetchall()}
    assert {"totalis", "diffusal", "derive"} <= joined, joined
    assert con.execute("SELECT count(*) FROM fills WHERE side NOT IN ('buy', 'sell') OR price IS "
                   "NULL OR size IS NULL OR instrument IS NULL").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM positions WHERE instrument IS NULL").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM positions WHERE venue <> 'totalis' AND size IS NULL"
                   ).fetchone() == (0,)
