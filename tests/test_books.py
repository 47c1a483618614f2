"""recorder.books: at the end of a simulator run, the book rebuilt from the lake equals the
simulator's own, for every venue with a book; the queries/ examples agree with it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from recorder.books import book_at, books_at, top_series
from recorder.duck import connect
from recorder.venues.derive.server import DeriveServer
from recorder.venues.diffusal.server import DiffusalServer
from recorder.venues.mackinac.server import MackinacServer
from recorder.venues.powertrade.server import PowerTradeServer
from tests.conftest import ROOT
from tests.e2e import Live, Tally, journaled, run_with
from tests.venues.derive.e2e import config as derive_config
from tests.venues.diffusal.e2e import config as diffusal_config
from tests.venues.mackinac.e2e import config as mackinac_config
from tests.venues.powertrade.e2e import config as powertrade_config

KEY_ENV, SECRET_ENV = "PT_BOOKS_KEY", "PT_BOOKS_SECRET"


def _levels(levels: list[Any], size: str = "size") -> dict[float, float]:
    out: dict[float, float] = {}
    for lv in levels:
        p, s = (lv[0], lv[1]) if isinstance(lv, list) else (lv["price"], lv[size])
        if float(s):
            out[float(p)] = out.get(float(p), 0.0) + float(s)
    return out


def _macro(name: str) -> str:
    """The macro definition of a queries/ example (the part before its demo SELECT)."""
    return (ROOT / "queries" / name).read_text().split(";\n\nSELECT")[0]


def _sql_book(con: Any, macro: str, instrument: str) -> dict[str, dict[float, float]]:
    con.execute(_macro(macro))
    fn = macro.removesuffix(".sql")
    rows = con.execute(f"SELECT side, price, size FROM {fn}(?, now())", [instrument]).fetchall()
    return {"bids": {p: s for side, p, s in rows if side == "bid"},
            "asks": {p: s for side, p, s in rows if side == "ask"}}


def test_diffusal_books_across_gaps_and_resyncs(data_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> tuple:
        server = DiffusalServer(seed=4, rate=2.0)
        await server.start()
        cfg = diffusal_config(data_dir, server.url)
        gapped: list[str] = []
        journal = Live(data_dir, "diffusal")
        sent = Tally(server, lambda e: [orjson.loads(e.text).get("stream")])

        def resynced(sym: str) -> bool:  # a gap on its book, then a resync from REST
            ev = [(e["event"], e.get("channel")) for e in journal().events]
            return ("gap", sym) in ev and ("resynced", sym) in ev[ev.index(("gap", sym)):]

        async def scenario(stop: asyncio.Event) -> None:
            live = [s.symbol for s in server.synth.live()]
            sym = live[len(live) // 2]
            await server.until(lambda: sent()[f"{sym.lower()}@depth"] >= 2, 30, "its book")
            gapped.append(server.gap(sym, count=2))  # hidden diffs
            await server.until(lambda: resynced(sym), 30, "the gap resynced")
            await server.until(lambda: sent()[f"{sym.lower()}@depth"] >= 6, 30, "more diffs")
            server.pause()  # the market stops: in-flight frames and resyncs settle
            await server.until(lambda: journaled(server, journal, "/ws/public"), 30,
                               "every public frame journaled")

        result, _ = await run_with(cfg, scenario)
        await server.stop()
        return result, server, gapped

    result, server, gapped = asyncio.run(main())
    assert result.exit_code == 0, result.reason
    books = books_at(data_dir, "diffusal")
    live = [s.symbol for s in server.synth.live()]
    assert set(live) <= set(books)
    for sym in live:
        want = server.book(sym)
        got = books[sym]
        assert got.complete and got.sequence == want["sequence"], sym
        assert (got.bids, got.asks) == (want["bids"], want["asks"]), sym
    # the hidden diffs were seen as a gap, and healed by the REST snapshot
    assert books[gapped[0]].gap_before >= 2
    # the SQL example agrees
    con = connect(data_dir, views={"diffusal_depth"})
    sql = _sql_book(con, "diffusal_book_at.sql", gapped[0])
    assert sql == {"bids": books[gapped[0]].bids, "asks": books[gapped[0]].asks}
    # a top-5 series: one row per update, the last one the final book's top
    rows = list(top_series(data_dir, "diffusal", gapped[0], n=5))
    assert rows and rows[-1]["bid_px_1"] == max(books[gapped[0]].bids)
    assert all(r["bid_px_1"] is None or r["ask_px_1"] is None or r["bid_px_1"] < r["ask_px_1"]
               for r in rows if r["complete"])
    # the book at an earlier instant is the one of that instant (fewer updates applied)
    mid = rows[len(rows) // 2]
    earlier = book_at(data_dir, "diffusal", gapped[0], mid["ts_recv_ns"])
    assert earlier.ts_recv_ns == mid["ts_recv_ns"]
    assert earlier.top(5)[0][0] == (mid["bid_px_1"], mid["bid_sz_1"])


def test_powertrade_books_from_snapshots_and_order_deltas(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    symbols = ["BTC-USD-PERPETUAL", "ETH-USD-PERPETUAL", "PTF-USD"]

    async def main() -> PowerTradeServer:
        server = PowerTradeServer(seed=9, rate=4.0, rfq_rate=0.0, account_rate=0.0,
                                  reorder_ms=0)
        await server.start()
        key, pem = server.credentials()
        monkeypatch.setenv(KEY_ENV, key)
        monkeypatch.setenv(SECRET_ENV, pem)
        cfg = powertrade_config(data_dir, server.url, {
            "api_key_env": KEY_ENV, "api_secret_env": SECRET_ENV, "symbols": symbols,
            "subscribe_types": ["snap_with_deltas"], "intervals": [0], "rfqs": False,
            "feeds_url": server.feeds_url, "summary_url": server.summary_url})

        journal = Live(data_dir, "powertrade")
        sent = Tally(server, lambda e: list(orjson.loads(e.text)))  # the envelope key

        async def scenario(stop: asyncio.Event) -> None:
            await server.until(lambda: sent()["snapshot"] >= len(symbols) and sent()[
                "order_added"] >= 10 and sent()["order_deleted"] >= 3, 30, "book activity")
            await server.stop()  # graceful: everything sent reaches the recorder
            await server.until(lambda: journaled(server, journal), 30, "all journaled")

        result, _ = await run_with(cfg, scenario)
        assert result.exit_code == 0, result.reason
        return server

    server = asyncio.run(main())
    books = books_at(data_dir, "powertrade")
    con = connect(data_dir, views={"powertrade_order_added", "powertrade_snapshot", "powertrade_order_deleted", "powertrade_order_executed", "powertrade_order_updated"})
    deltas = con.sql("SELECT count(*) FROM powertrade_order_added").fetchall()[0][0]
    assert deltas > 0
    con.execute(_macro("powertrade_book_at.sql"))
    by_symbol = {b.entity.symbol: b for b in server.synth.books.values()}
    for sym in symbols:  # the subscribed ones
        b = by_symbol[sym]
        want: dict[str, dict[float, float]] = {"buy": {}, "sell": {}}
        for o in b.orders.values():
            want[o.side][o.price] = round(want[o.side].get(o.price, 0.0) + o.qty, 8)
        want = {k: {p: q for p, q in v.items() if q > 0} for k, v in want.items()}
        got = books[sym]
        assert got.complete, sym
        assert {p: round(q, 8) for p, q in got.bids.items()} == want["buy"], sym
        assert {p: round(q, 8) for p, q in got.asks.items()} == want["sell"], sym
        rows = con.execute("SELECT side, price, size FROM powertrade_book_at(?, now())",
                           [sym]).fetchall()
        assert {p: round(s, 8) for side, p, s in rows if side == "bid"} == want["buy"], sym
        assert {p: round(s, 8) for side, p, s in rows if side == "ask"} == want["sell"], sym


def test_derive_books_are_the_last_snapshot(data_dir: Path) -> None:
    async def main() -> list[str]:
        server = DeriveServer(seed=6, rate=2.0, churn_seconds=0, currencies=("ETH",))
        await server.start()
        cfg = derive_config(data_dir, server.url, channels=["orderbook"])

        journal = Live(data_dir, "derive")

        def books() -> int:  # ETH-PERP order book snapshots sent
            return sum(1 for text in server.ledger_for(1) if '"orderbook.ETH-PERP.' in text)

        async def scenario(stop: asyncio.Event) -> None:
            await server.until(lambda: books() >= 3, 30, "ETH-PERP books")
            server.gap("ETH-PERP", 3)  # publish ids skipped: the next snapshot is whole
            n = books()
            await server.until(lambda: books() >= n + 3, 30, "books after the gap")
            await server.stop()
            await server.until(lambda: journaled(server, journal), 30, "all journaled")

        result, _ = await run_with(cfg, scenario)
        assert result.exit_code == 0, result.reason
        return server.ledger_for(1)

    ledger = asyncio.run(main())
    want: dict[str, Any] = {}
    for text in ledger:
        msg = orjson.loads(text)
        ch = (msg.get("params") or {}).get("channel", "")
        if msg.get("method") == "subscription" and ch.startswith("orderbook."):
            want[msg["params"]["data"]["instrument_name"]] = msg["params"]["data"]
    assert want
    books = books_at(data_dir, "derive")
    for name, data in want.items():
        got = books[name]
        assert got.sequence == data["publish_id"], name
        assert got.bids == _levels(data["bids"], "amount"), name
        assert got.asks == _levels(data["asks"], "amount"), name
    # across the skipped publish ids the series goes on, whole at every snapshot
    rows = list(top_series(data_dir, "derive", "ETH-PERP", n=3))
    jumps = [b["sequence"] - a["sequence"] for a, b in zip(rows, rows[1:], strict=False)]
    assert max(jumps) >= 4 and all(r["complete"] for r in rows)
    con = connect(data_dir, views={"gaps", "derive_orderbook"})
    assert con.sql("SELECT count(*) FROM gaps WHERE cause = 'sequence_gap' AND channel LIKE "
                   "'orderbook.ETH-PERP.%'").fetchall()[0][0] >= 1
    assert _sql_book(con, "derive_book_at.sql", "ETH-PERP") == {
        "bids": books["ETH-PERP"].bids, "asks": books["ETH-PERP"].asks}


def test_mackinac_books_are_the_last_quote(data_dir: Path) -> None:
    async def main() -> list[str]:
        server = MackinacServer(seed=8, rate=4.0)
        await server.start()
        cfg = mackinac_config(data_dir, server.url, ["hl:ETH", "uni:WETH/USDC", "rates:all"])

        journal = Live(data_dir, "mackinac")

        async def scenario(stop: asyncio.Event) -> None:
            await server.until(lambda: len(server.ledger_for(1)) >= 40, 30, "40 frames")
            await server.stop()
            await server.until(lambda: journaled(server, journal), 30, "all journaled")

        result, _ = await run_with(cfg, scenario)
        assert result.exit_code == 0, result.reason
        return server.ledger_for(1)

    ledger = asyncio.run(main())
    want = {}
    for text in ledger:
        msg = orjson.loads(text)
        if msg.get("type") == "quote":
            want[f"{msg['exchange']}:{msg['symbol']}"] = msg
    assert want
    books = books_at(data_dir, "mackinac")
    for name, msg in want.items():
        b = books[name]
        bids, asks = _levels(msg["bids"]), _levels(msg["asks"])
        assert (b.bids, b.asks) == (bids, asks), name
    con = connect(data_dir, views={"mackinac_quote"})
    name = sorted(want)[0]
    assert _sql_book(con, "mackinac_book_at.sql", name) == {"bids": books[name].bids,
                                                            "asks": books[name].asks}


def test_unknown_venue(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no book for venue"):
        books_at(tmp_path, "totalis")
    assert book_at(tmp_path, "derive", "ETH-PERP").complete is False
