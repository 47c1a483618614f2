"""Golden tests for the Mackinac adapter: fixture frames -> adapter rows -> lake Arrow tables.

Fixtures: ``tests/venues/mackinac/fixtures/<type>.json``, one JSON list of frames per server message
type. JSON has no comments, so their provenance is written here.

Verbatim examples from the "Message Types" page (seed 003, https://mackinac.io/api/messages/):
quote[0] (CLOB), quote[1] (AMM with fee), funding[0], depth[0] (its ``impacts``; the page elides
``ticks`` as ``[...]``, so the two ticks are built from the field list), liquidity[0],
rate_market[0], ammbook[0], feed_stale[0], feed_live[0], server_closing[0], authed[0] and
error[0]. error[1] (auth_failed) copies the text given in shared/venues/003-mackinac.md.

Every other frame is built from the field tables of that page, of 003-mackinac.md, and of the
SDK's Pydantic models (mackinac-python 0.2.0, ``models/messages.py``); values are invented but
typed as documented. Deliberate choices:
- quote[2] (oracle single level) carries two undocumented fields (``spreadModel``,
  ``oracleRound``) and print[5] one (``pool``): they exist to exercise the ``extra`` column.
- print[1] is the legacy HL print without ``exchange``; print[2] is dYdX (blockNumber, no
  txIndex); snapshot[0] mixes prints with and without ``exchange``.
- depth[1] gives tick liquidity as JSON numbers (int64, uint64 max, and a float) instead of
  strings; the SDK model types them as float.
- rate_market[2] is an Aave lending row with ``rateAtTarget`` (the SDK says that field is
  Morpho-only; the brief asked for it on the Aave row), rate_market[3] a Morpho row.
- error.json holds one frame per documented code; symbol_limit_reached appears twice (the doc
  example without ``limit`` and a frame with ``limit``, ``exchange``, ``symbol``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recorder.actions import ConnSpec, Reconnect, Send, Stop
from recorder.errors import ConfigError
from recorder.lake import LakeWriter, _Buffer, to_arrow
from recorder.rows import Row
from recorder.schema import COMMON_NAMES, EXTRA, SESSION_EVENTS, UNHANDLED, Table
from recorder.venues import CATALOGUE
from recorder.venues.mackinac import tables as T
from recorder.venues.mackinac.adapter import USER_AGENT, MackinacAdapter, make_adapter

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TYPES = ("quote", "print", "funding", "depth", "liquidity", "rate_market", "rate_depth",
         "lending_action", "rate_model_params", "ammbook", "ammliquidity_snapshot", "arbflag",
         "spread", "feed_stale", "feed_live", "server_closing", "subscribed", "snapshot",
         "authed", "error")
SYMBOLS = ["hl:ETH", "uni:WETH/USDC"]
TS_RECV = 1_748_275_200_987_654_321  # ns
RUN = "run-1"
T0 = 1748275200000  # the docs' example time, ms


def load(name: str) -> list[dict[str, Any]]:
    frames = orjson.loads((FIXTURES / f"{name}.json").read_bytes())
    assert isinstance(frames, list) and frames and all(type(f) is dict for f in frames)
    return frames


def new_adapter(symbols: Sequence[str] = SYMBOLS, **options: Any) -> MackinacAdapter:
    return make_adapter("mackinac", "ws://x", {"symbols": list(symbols), **options})


def feed(frame: dict[str, Any] | bytes, ad: MackinacAdapter | None = None) -> tuple[
        list[Row], list[Any]]:
    ad = ad or new_adapter()
    data = frame if isinstance(frame, bytes) else orjson.dumps(frame)
    rows, actions = ad.on_frame("feed", data)
    return rows, list(actions)


def _plain(t: pa.Table) -> list[dict[str, Any]]:
    """Rows as dicts; timestamps as int ns (datetime would drop the nanoseconds)."""
    cols = {n: c.cast(pa.int64()) if pa.types.is_timestamp(c.type) else c
            for n, c in zip(t.column_names, t.columns, strict=True)}
    return pa.table(cols).to_pylist()


def lake(rows: list[Row]) -> dict[str, list[dict[str, Any]]]:
    """Group rows per table, convert each with ``to_arrow``; assert nothing is quarantined."""
    grouped: dict[str, tuple[Table, list[dict[str, Any]], list[int]]] = {}
    for sub, (table, row) in enumerate(rows):  # as the pipeline numbers a frame's rows
        g = grouped.setdefault(table.name, (table, [], []))
        g[1].append(row)
        g[2].append(sub)
    out: dict[str, list[dict[str, Any]]] = {}
    for name, (table, rs, subs) in grouped.items():
        buf = _Buffer(rs, [TS_RECV] * len(rs), ["feed"] * len(rs), list(range(len(rs))), subs)
        t, bad = to_arrow(table, buf, "mackinac", RUN)
        assert bad == [], (name, bad)
        assert t is not None and t.schema == table.arrow_schema
        out[name] = _plain(t)
    return out


def own(row: dict[str, Any]) -> dict[str, Any]:
    """The table's own columns (the pipeline-filled common ones checked elsewhere)."""
    return {k: v for k, v in row.items()
            if k not in COMMON_NAMES}


def one(tables: dict[str, list[dict[str, Any]]], name: str) -> dict[str, Any]:
    rows = tables[name]
    assert len(rows) == 1, rows
    return rows[0]


def subscribe(ex: str, sym: str, delay: float = 0.0) -> Send:
    return Send("feed", orjson.dumps({"action": "subscribe", "exchange": ex, "symbol": sym})
                .decode(), delay=delay)


def history(ex: str, sym: str, req: str, limit: int = 500) -> Send:
    return Send("feed", orjson.dumps({"action": "history", "exchange": ex, "symbol": sym,
                                      "limit": limit, "reqId": req}).decode())


# --- 1. every fixture frame, generically: schema-driven round trip ----------------------------

ALL_FRAMES = [(name, i) for name in TYPES for i in range(len(load(name)))]
# Frames that carry undeclared fields on purpose (see the module docstring).
EXPECTED_EXTRA = {("quote", 2): {"oracleRound": 18446744073709, "spreadModel": "oracle-mid"},
                  ("print", 5): {"pool": "0xf3eb87c1f6020982173c908e7eb31aa66c1f0296"}}
# Venue fields the adapter fills in: the legacy HL print has no `exchange` (SDK: treat as hl).
FILLED = {("print", 1): {"exchange": "hl"}}


def _expect(value: Any, typ: pa.DataType) -> Any:
    """What the lake should hold for a wire value of a column of Arrow type ``typ``."""
    if value is None:
        return None
    if pa.types.is_struct(typ):
        return {typ.field(i).name: _expect(value.get(typ.field(i).name), typ.field(i).type)
                for i in range(typ.num_fields)}
    if pa.types.is_list(typ):
        return [_expect(v, typ.value_type) for v in value]
    if pa.types.is_floating(typ):
        assert type(value) in (int, float), value
        return float(value)
    if pa.types.is_integer(typ):
        assert type(value) is int, value
        return value
    if pa.types.is_string(typ):
        # exact on-chain integers sent as JSON numbers become their decimal text
        return value if type(value) is str else str(value) if type(value) is int else repr(value)
    return value


def _same(got: Any, want: Any) -> bool:
    """Equal, and of the same Python type all the way down (3 != 3.0, '1' != 1)."""
    if type(got) is not type(want):
        return False
    if isinstance(want, dict):
        return got.keys() == want.keys() and all(_same(got[k], want[k]) for k in want)
    if isinstance(want, list):
        return len(got) == len(want) and all(_same(g, w) for g, w in zip(got, want, strict=True))
    return got == want


@pytest.mark.parametrize(("name", "index"), ALL_FRAMES, ids=[f"{n}-{i}" for n, i in ALL_FRAMES])
def test_fixture_frame_round_trip(name: str, index: int) -> None:
    frame = load(name)[index]
    rows, _ = feed(frame)
    frame = {**frame, **FILLED.get((name, index), {})}
    assert all(t is not UNHANDLED for t, _ in rows)
    tables = lake(rows)
    table = CATALOGUE.tables[f"mackinac_{name}"]
    row = one(tables, table.name)
    # common columns, filled from the buffer and the venue's time
    assert (row["ts_recv"], row["venue"], row["run_id"], row["conn_id"]) == (
        TS_RECV, "mackinac", RUN, "feed")
    assert row["ts_event"] == (frame["time"] * 1_000_000 if table.event_time else None)
    # every column that maps a venue field holds that field's value, typed; absent -> null
    for col in table.columns:
        if col.key.startswith("_") or col.name == EXTRA:
            continue  # set by the adapter; checked in the per-type tests below
        want = _expect(frame.get(col.key), col.type)
        assert _same(row[col.name], want), (col.name, row[col.name], want)
    # undeclared fields -> `extra` as JSON (sorted keys), and only those
    extra = EXPECTED_EXTRA.get((name, index))
    assert row[EXTRA] == (None if extra is None else orjson.dumps(extra).decode())
    if extra is not None:
        assert orjson.loads(row[EXTRA]) == extra


# --- 1b. golden values per type -----------------------------------------------------------------

def test_quote_clob_amm_oracle() -> None:
    clob, amm, oracle = (one(lake(feed(f)[0]), "mackinac_quote") for f in load("quote"))
    assert own(clob) == {
        "exchange": "hl", "symbol": "ETH",
        "bids": [{"price": 3499.5, "size": 12.4, "fee": None, "lastSwapMs": None},
                 {"price": 3499.0, "size": 31.1, "fee": None, "lastSwapMs": None}],
        "asks": [{"price": 3500.5, "size": 8.7, "fee": None, "lastSwapMs": None}],
        "time_ms": T0, "extra": None}
    assert clob["ts_event"] == 1_748_275_200_000_000_000
    assert amm["bids"] == [{"price": 3499.12, "size": 5.2, "fee": 500, "lastSwapMs": 1100}]
    assert amm["asks"] == [{"price": 3500.88, "size": 5.2, "fee": 500, "lastSwapMs": 1100}]
    assert type(amm["bids"][0]["fee"]) is int
    assert oracle["bids"] == [{"price": 3312.4, "size": 1.0, "fee": None, "lastSwapMs": None}]
    assert type(oracle["bids"][0]["size"]) is float
    assert oracle["extra"] == '{"oracleRound":18446744073709,"spreadModel":"oracle-mid"}'
    assert oracle["ts_event"] == 1_748_275_200_500_000_000


def test_print_variants() -> None:
    hl, legacy, dydx, amm, pendle, extra = (one(lake(feed(f)[0]), "mackinac_print")
                                            for f in load("print"))
    assert own(hl) == {
        "exchange": "hl", "symbol": "ETH", "price": 3500.5, "size": 0.42, "side": 1,
        "time_ms": 1748275200123, "tick": None, "block_number": None, "tx_index": None,
        "log_sender": None, "d_tickrate": 12.0, "d_volumerate": 5.25, "d_quoterate": 48.0,
        "d_hawkes": 3.75, "d_hawkesb": 1.5, "d_hawkesa": 2.25, "d_lobimb": -0.125,
        "d_volumeimb": -1.5, "d_bidqty": 812.5, "d_askqty": 640.25, "source": "live",
        "req_id": None, "legacy_no_exchange": False, "extra": None}
    assert hl["ts_event"] == 1_748_275_200_123_000_000
    # legacy HL frame without `exchange`: filled as hl and flagged
    assert (legacy["exchange"], legacy["legacy_no_exchange"], legacy["side"]) == ("hl", True, 0)
    assert legacy["extra"] is None and legacy["d_hawkes"] is None
    # dYdX: block but no txIndex, d_* present
    assert (dydx["block_number"], dydx["tx_index"], dydx["d_hawkesb"], dydx["d_lobimb"]) == (
        31245678, None, 0.5, 0.3)
    assert own(amm) == {
        "exchange": "uni", "symbol": "WETH/USDC", "price": 3500.12, "size": 1.25, "side": 1,
        "time_ms": 1748275200400, "tick": 196234, "block_number": 290845001, "tx_index": 17,
        "log_sender": "0x6131b5fae19ea4f9d964eac0408e4408b66337b5",
        **{c: None for c in ("d_tickrate", "d_volumerate", "d_quoterate", "d_hawkes",
                             "d_hawkesb", "d_hawkesa", "d_lobimb", "d_volumeimb", "d_bidqty",
                             "d_askqty")},
        "source": "live", "req_id": None, "legacy_no_exchange": False, "extra": None}
    assert (pendle["exchange"], pendle["tick"], pendle["block_number"], pendle["tx_index"],
            pendle["price"]) == ("pendle", -54123, 22567890, 3, 0.985)
    assert (extra["side"], extra["size"], type(extra["size"])) == (2, 2.0, float)


def test_funding() -> None:
    rows = [one(lake(feed(f)[0]), "mackinac_funding") for f in load("funding")]
    assert [own(r) for r in rows] == [
        {"exchange": "hl", "symbol": "ETH", "rate_pct": 10.95, "interval_hrs": 8.0,
         "time_ms": T0, "extra": None},
        {"exchange": "gmx", "symbol": "BTC", "rate_pct": -3.2, "interval_hrs": 1.0,
         "time_ms": 1748275260000, "extra": None},
        {"exchange": "ostium", "symbol": "XAU/USD", "rate_pct": 0.0, "interval_hrs": 24.0,
         "time_ms": 1748275320000, "extra": None}]
    assert [r["ts_event"] for r in rows] == [T0 * 10**6, 1748275260000 * 10**6,
                                             1748275320000 * 10**6]


def test_depth_ticks_as_strings_numbers_and_empty() -> None:
    strings, numbers, empty = (one(lake(feed(f)[0]), "mackinac_depth") for f in load("depth"))
    assert strings["current_tick"] == 196234
    assert strings["ticks"] == [
        {"tick": 196200, "price": 3488.21, "liquidityDelta": "1250000000000000000000",
         "cumLiquidity": "98765432109876543210000"},
        {"tick": 196260, "price": 3509.19,
         "liquidityDelta": "-340282366920938463463374607431768211455", "cumLiquidity": "0"}]
    assert strings["impacts"][0] == {"usd": 1000.0, "buyPrice": 3500.35, "sellPrice": 3499.65,
                                     "buyPct": 0.02, "sellPct": 0.02}
    assert strings["impacts"][3] == {"usd": 1000000.0, "buyPrice": 3540.0,
                                     "sellPrice": 3460.0, "buyPct": 1.13, "sellPct": 1.13}
    assert [i["usd"] for i in strings["impacts"]] == [1e3, 1e4, 1e5, 1e6]
    # JSON numbers become exact decimal strings (uint64 max included); a float keeps its repr
    assert numbers["current_tick"] == -196234
    assert numbers["ticks"] == [
        {"tick": -196240, "price": 3500.1, "liquidityDelta": "-1250000000000000",
         "cumLiquidity": "18446744073709551615"},
        {"tick": -196180, "price": 3521.2, "liquidityDelta": "1.5e+20", "cumLiquidity": "0"}]
    assert (empty["ticks"], empty["impacts"], empty["exchange"]) == ([], [], "pancake")
    assert empty["ts_event"] == 1748275200400 * 10**6


def test_liquidity_uint128_strings() -> None:
    doc, burn, bare = (one(lake(feed(f)[0]), "mackinac_liquidity") for f in load("liquidity"))
    assert own(doc) == {
        "exchange": "uni", "symbol": "WETH/USDC", "fee_tier": 500, "action": "mint",
        "tick_lower": 195000, "tick_upper": 197000, "amount": "12500000000000000000",
        "amount0": "3570000000000000000", "amount1": "12500000000", "amount_usd": 25000.0,
        "owner": "0xabc...", "block_number": 290845001, "tx_index": 17, "time_ms": T0,
        "source": "live", "extra": None}
    assert burn["amount"] == "340282366920938463463374607431768211455"  # 2**128 - 1
    assert int(burn["amount"]) == 2**128 - 1 and int(burn["amount1"]) == 2**64 + 1
    assert burn["amount0"] == str(2**256 - 1)
    assert (burn["action"], burn["tick_lower"], burn["tick_upper"], burn["amount_usd"]) == (
        "burn", -887220, 887220, 0.0)
    assert burn["owner"] == "0xc36442b4a4522e871399cd717abdd847ab11fe88"
    assert (bare["owner"], bare["block_number"], bare["tx_index"], bare["amount"]) == (
        None, None, None, "1")


def test_liquidity_amounts_sent_as_numbers_become_strings() -> None:
    frame = {**load("liquidity")[0], "amount": 12500000000000000000, "amount0": 0}
    row = one(lake(feed(frame)[0]), "mackinac_liquidity")
    assert (row["amount"], row["amount0"], row["amount1"]) == (
        "12500000000000000000", "0", "12500000000")


def test_rate_market_yield_and_lending() -> None:
    pendle, spectra, aave, morpho = (one(lake(feed(f)[0]), "mackinac_rate_market")
                                     for f in load("rate_market"))
    assert own(pendle) == {
        "exchange": "pendle", "chain": "ethereum", "address": "0xabc...",
        "symbol": "PT-weETH-25JUN2026", "underlying_apy": 0.031, "implied_apy": 0.058,
        "lp_apy": 0.012, "pt_price": 0.985, "yt_price": 0.015, "expiry_ms": 1751155200000,
        "days_to_expiry": 28.5, "tvl": 12500000.0, "volume24h": 450000.0,
        "trading_fee_rate": None, "time_ms": T0, "asset": None, "borrow_apy": None,
        "utilization": None, "available": None, "rate_at_target": None, "extra": None}
    assert (spectra["exchange"], spectra["chain"], spectra["lp_apy"], spectra["volume24h"],
            spectra["tvl"], spectra["trading_fee_rate"]) == (
        "spectra", "base", 0.0, 0.0, 842.75, 0.0005)
    assert spectra["ts_event"] == 1748275230000 * 10**6
    assert (aave["asset"], aave["borrow_apy"], aave["utilization"], aave["available"],
            aave["rate_at_target"], aave["underlying_apy"]) == (
        "USDC", 0.0561, 0.8125, 47062500.25, 0.04, 0.0412)
    # lending rows carry zero sentinels in the PT fields
    assert (aave["expiry_ms"], aave["pt_price"], aave["implied_apy"]) == (0, 0.0, 0.0)
    assert type(aave["expiry_ms"]) is int
    assert morpho["address"] == (
        "0x9103c3b4e834476c9a62ea009ba2c884ee42e94e6e314a26f04d312434191836")
    assert (morpho["symbol"], morpho["rate_at_target"], morpho["available"]) == (
        "USDC/cbBTC", 0.0588, 31050000.0)


def test_rate_depth() -> None:
    full, empty = (one(lake(feed(f)[0]), "mackinac_rate_depth") for f in load("rate_depth"))
    assert own(full) == {
        "exchange": "pendle", "symbol": "PT-weETH-25JUN2026", "mid_rate": 0.058,
        "underlying_rate": 0.031, "pt_price": 0.985, "pool_fee_bps": 8.5, "tvl": 12500000.0,
        "days_to_expiry": 28.5,
        "levels": [
            {"sizeUsd": 10000.0, "buyRate": 0.0579, "sellRate": 0.0581, "spreadBps": 2.0},
            {"sizeUsd": 100000.0, "buyRate": 0.0571, "sellRate": 0.0589, "spreadBps": 18.0},
            {"sizeUsd": 1000000.0, "buyRate": 0.0502, "sellRate": 0.0655, "spreadBps": 153.0}],
        "time_ms": T0, "extra": None}
    assert (empty["levels"], empty["pool_fee_bps"], empty["days_to_expiry"]) == ([], 3.0, 0.75)


def test_lending_action() -> None:
    liq, supply, borrow = (one(lake(feed(f)[0]), "mackinac_lending_action")
                           for f in load("lending_action"))
    assert own(liq) == {
        "exchange": "aave", "chain": "arbitrum", "asset": "USDC",
        "market": "0x724dc807b04555b71ed48a6896b6f41593b8c637", "action": "liquidate",
        "user": "0x5a52e96bacdabb82fd05763e25335261b270efcb", "amount": str(2**256 - 1),
        "block_number": 290845001, "tx_index": 17,
        "log_sender": "0x794a61358d6845594f94dc1db02a252b5b4814ad", "time_ms": T0,
        "on_behalf_of": None, "amount_usd": 15230.75, "rate_at_time": None,
        "collateral_asset": "WETH", "collateral_amount": "4350000000000000000",
        "liquidator": "0x1f2f10d1c40777ae1da742455c65828ff36df387", "extra": None}
    # supply without any optional field
    assert (supply["action"], supply["amount"], supply["amount_usd"], supply["on_behalf_of"],
            supply["collateral_amount"], supply["liquidator"]) == (
        "supply", "1000000", None, None, None, None)
    assert (borrow["rate_at_time"], borrow["on_behalf_of"], borrow["tx_index"]) == (
        0.0219, "0x9a8b7c6d5e4f30211203f4e5d6c7b8a9f0e1d2c3", 0)


def test_lending_amounts_sent_as_numbers_become_strings() -> None:
    frame = {**load("lending_action")[0], "amount": 1000000, "collateralAmount": 2**63 - 1}
    row = one(lake(feed(frame)[0]), "mackinac_lending_action")
    assert (row["amount"], row["collateral_amount"]) == ("1000000", "9223372036854775807")


def test_rate_model_params_kinked_and_morpho() -> None:
    aave, comp, morpho = (one(lake(feed(f)[0]), "mackinac_rate_model_params")
                          for f in load("rate_model_params"))
    assert own(aave) == {
        "exchange": "aave", "chain": "arbitrum",
        "market": "0x724dc807b04555b71ed48a6896b6f41593b8c637", "asset": "USDC",
        "irm_address": "0x429f16dbc1f4f3e2b1e3a5c7a0b0e8f4c2d6e8a1", "time_ms": T0,
        "base_rate": 0.0, "slope1": 0.06, "slope2": 0.6, "kink": 0.92, "reserve_factor": 0.1,
        "max_rate": 0.66, "target_util": None, "curve_steepness": None, "adj_speed": None,
        "extra": None}
    assert (comp["base_rate"], comp["slope2"], comp["reserve_factor"], comp["max_rate"]) == (
        0.01, 3.4, None, None)
    assert (morpho["target_util"], morpho["curve_steepness"], morpho["adj_speed"],
            morpho["kink"], morpho["base_rate"]) == (0.9, 4.0, 50.0, None, None)


def test_ammbook_with_and_without_arb_gap() -> None:
    doc, gap, impacts = (one(lake(feed(f)[0]), "mackinac_ammbook") for f in load("ammbook"))
    assert own(doc) == {
        "symbol": "WETH/USDC",
        "bids": [{"exchange": "univ4", "price": 3500.18, "size": 4.1, "feeBps": 3.0,
                  "time": 1748275200001, "impacts": None},
                 {"exchange": "uni", "price": 3500.15, "size": 3.9, "feeBps": 5.0,
                  "time": 1748275200001, "impacts": None}],
        "asks": [{"exchange": "sushi", "price": 3500.22, "size": 3.5, "feeBps": 5.0,
                  "time": 1748275200000, "impacts": None},
                 {"exchange": "uni", "price": 3500.3, "size": 4.0, "feeBps": 5.0,
                  "time": 1748275200001, "impacts": None}],
        "mid_price": 3500.2, "spread_bps": 0.11, "arb_gap": None, "time_ms": 1748275200001,
        "extra": None}
    assert doc["ts_event"] == 1748275200001 * 10**6
    assert gap["arb_gap"] == {"buyExchange": "uni", "sellExchange": "pancake", "gapBps": 6.0,
                              "gapUsd": 4.2}
    assert gap["spread_bps"] == -6.0
    assert impacts["bids"] == [{
        "exchange": "uni", "price": 104000.5, "size": 0.3, "feeBps": None, "time": None,
        "impacts": [{"usd": 1000.0, "buyPrice": 104010.0, "sellPrice": 103990.0,
                     "buyPct": 0.01, "sellPct": 0.01}]}]
    assert impacts["asks"] == [] and impacts["arb_gap"] is None


def test_arbflag_open_closed() -> None:
    opened, closed = (one(lake(feed(f)[0]), "mackinac_arbflag") for f in load("arbflag"))
    assert own(opened) == {
        "symbol": "WETH/USDC", "status": "open",
        "arb_gap": {"buyExchange": "uni", "sellExchange": "pancake", "gapBps": 6.0,
                    "gapUsd": 4.2},
        "time_ms": 1748275200900, "extra": None}
    assert own(closed) == {"symbol": "WETH/USDC", "status": "closed", "arb_gap": None,
                           "time_ms": 1748275202100, "extra": None}


def test_spread() -> None:
    uni, v4 = (one(lake(feed(f)[0]), "mackinac_spread") for f in load("spread"))
    assert own(uni) == {
        "exchange": "uni", "symbol": "WETH/USDC",
        "bid_pool": {"fee": 500, "price": 3500.9, "lastSwapMs": 1748275199000},
        "ask_pool": {"fee": 3000, "price": 3500.1, "lastSwapMs": 1748275195000},
        "spread": 0.8, "spread_pct": 0.0228565, "depth_between": 12.5, "time_ms": T0,
        "extra": None}
    assert (v4["exchange"], v4["depth_between"], v4["bid_pool"]["fee"]) == ("univ4", None, 100)


# --- 2. session effects and actions ------------------------------------------------------------

def _session(tables: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    row = one(tables, SESSION_EVENTS.name)
    assert row["ts_event"] is None and row["ts_recv"] == TS_RECV
    return {k: v for k, v in own(row).items() if v is not None}


def test_authed_subscribes_and_requests_history() -> None:
    keys = ["hl:ETH", "uni:WETH/USDC", "gmx:BTC", "vertex:ETH", "ammbook:WETH/USDC",
            "ammliquidity:WETH/USDC", "arbflag:WETH/USDC", "dydx:ETH-USD"]
    ad = new_adapter(keys)
    rows, actions = feed(load("authed")[0], ad)
    tables = lake(rows)
    assert own(one(tables, "mackinac_authed")) == {"tier": "api", "symbol_limit": 100,
                                                   "extra": None}
    assert _session(tables) == {"event": "auth_ok", "reason": "tier api, symbol limit 100"}
    assert actions == [
        *(subscribe(*k.split(":", 1)) for k in keys),
        history("hl", "ETH", "h1"), history("uni", "WETH/USDC", "h2"),
        history("dydx", "ETH-USD", "h3")]
    assert all(a.paced and a.delay == 0 and a.secret_keys == () for a in actions)


def test_authed_super_admin_unlimited() -> None:
    rows, actions = feed(load("authed")[1])
    tables = lake(rows)
    assert own(one(tables, "mackinac_authed")) == {"tier": "super_admin", "symbol_limit": None,
                                                   "extra": None}
    assert _session(tables)["event"] == "auth_ok"
    assert [orjson.loads(a.text)["action"] for a in actions] == [
        "subscribe", "subscribe", "history", "history"]


@pytest.mark.parametrize("index", [1, 2], ids=["auth_failed", "auth_error"])
def test_auth_failure_stops(index: int) -> None:
    frame = load("error")[index]
    rows, actions = feed(frame)
    tables = lake(rows)
    assert _session(tables) == {"event": "auth_failed", "code": frame["code"],
                                "reason": frame["message"]}
    assert one(tables, "mackinac_error")["code"] == frame["code"]
    assert actions == [Stop("feed", f"credentials refused: {frame['code']}")]


@pytest.mark.parametrize(("index", "after"), [(0, 5.0), (1, 1.5)])
def test_server_closing_reconnects_after_hint(index: int, after: float) -> None:
    rows, actions = feed(load("server_closing")[index])
    tables = lake(rows)
    assert actions == [Reconnect("feed", after, "server_closing")]
    assert one(tables, "mackinac_server_closing")["reconnect_in_ms"] == int(after * 1000)
    assert _session(tables) == {"event": "server_closing", "retry_after_s": after,
                                "reason": f"planned restart, reconnect in {after:g}s"}


def test_server_closing_without_hint_uses_sdk_default() -> None:
    rows, actions = feed({"type": "server_closing"})
    assert actions == [Reconnect("feed", 5.0, "server_closing")]
    assert one(lake(rows), "mackinac_server_closing")["reconnect_in_ms"] is None


def test_rate_limited_resubscribes_every_key_after_retry_after() -> None:
    frame = load("error")[8]
    rows, actions = feed(frame)
    tables = lake(rows)
    assert _session(tables) == {"event": "rate_limited", "code": "rate_limited",
                                "reason": "Too many subscribe actions.", "retry_after_s": 7.0}
    assert one(tables, "mackinac_error")["retry_after_s"] == 7.0
    assert actions == [subscribe("hl", "ETH", delay=7.0), subscribe("uni", "WETH/USDC", 7.0)]


def test_rate_limited_naming_a_key_resubscribes_only_that_key() -> None:
    frame = {**load("error")[8], "exchange": "uni", "symbol": "WETH/USDC", "retryAfter": 2.5}
    rows, actions = feed(frame)
    assert _session(lake(rows))["channel"] == "uni:WETH/USDC"
    assert actions == [subscribe("uni", "WETH/USDC", delay=2.5)]


@pytest.mark.parametrize("index", [3, 4, 6, 7],
                         ids=["subscription_required", "symbol_limit_reached", "invalid_symbol",
                              "unknown_symbol"])
def test_rejected_key_is_dropped_and_not_resubscribed(index: int) -> None:
    frame = load("error")[index]
    bad_key = f"{frame['exchange']}:{frame['symbol']}"
    ad = new_adapter(["hl:ETH", bad_key])
    rows, actions = feed(frame, ad)
    assert actions == []
    expected = {"event": "error", "code": frame["code"], "reason": frame["message"],
                "channel": bad_key}
    if "limit" in frame:
        expected["detail"] = f'{{"limit":{frame["limit"]}}}'
    assert _session(lake(rows)) == expected
    assert ad.dropped == {bad_key: frame["code"]}
    assert ad.on_connected("feed") == [subscribe("hl", "ETH"), history("hl", "ETH", "h1")]


def test_errors_that_keep_the_key() -> None:
    ad = new_adapter(["hl:ETH", "hl:BTC"])
    errors = load("error")
    for i in (0, 5, 9):  # no key named (0, 5), or not about a key (9)
        rows, actions = feed(errors[i], ad)
        assert actions == []
        session = _session(lake(rows))
        assert (session["event"], session["code"]) == ("error", errors[i]["code"])
    assert ad.dropped == {}
    assert list(ad.wanted) == ["hl:ETH", "hl:BTC"]


def test_error_rows_for_every_code() -> None:
    got = [own(one(lake(feed(f)[0]), "mackinac_error")) for f in load("error")]
    base = {"retry_after_s": None, "exchange": None, "symbol": None, "limit": None,
            "extra": None}
    assert got == [
        {**base, "code": "symbol_limit_reached",
         "message": "Tier 'none' allows 3 symbols; you have 3."},
        {**base, "code": "auth_failed", "message": "Invalid or revoked API key."},
        {**base, "code": "auth_error", "message": "Auth failed: internal error"},
        {**base, "code": "subscription_required",
         "message": "ammbook requires professional tier.", "exchange": "ammbook",
         "symbol": "WETH/USDC"},
        {**base, "code": "symbol_limit_reached",
         "message": "Tier 'api' allows 100 symbols; you have 100.", "limit": 100,
         "exchange": "hl", "symbol": "BTC"},
        {**base, "code": "free_tier_cap_reached", "message": "Free tier allows 3 symbols.",
         "limit": 3},
        {**base, "code": "invalid_symbol", "message": "Malformed symbol.", "exchange": "uni",
         "symbol": "WETH//USDC"},
        {**base, "code": "unknown_symbol", "message": "Unknown symbol hl:NOPE.",
         "exchange": "hl", "symbol": "NOPE"},
        {**base, "code": "rate_limited", "message": "Too many subscribe actions.",
         "retry_after_s": 7.0},
        {**base, "code": "internal_error", "message": "Internal server error."}]


def test_limit_errors_keep_the_limit_in_session_detail() -> None:
    errors = load("error")
    assert _session(lake(feed(errors[4])[0]))["detail"] == '{"limit":100}'
    assert _session(lake(feed(errors[5])[0]))["detail"] == '{"limit":3}'
    assert "detail" not in _session(lake(feed(errors[0])[0]))


def test_error_without_code_has_null_code() -> None:
    rows, actions = feed({"type": "error", "message": "?"})
    assert actions == []
    session = _session(lake(rows))
    assert session == {"event": "error", "reason": "?"}  # no "None" string as code


def test_subscribed_ack() -> None:
    for frame, channel in zip(load("subscribed"), ["hl:ETH", "uni:WETH/USDC"], strict=True):
        rows, actions = feed(frame)
        tables = lake(rows)
        assert actions == []
        assert own(one(tables, "mackinac_subscribed")) == {
            "exchange": frame["exchange"], "symbol": frame["symbol"], "extra": None}
        assert _session(tables) == {"event": "subscribed", "channel": channel}


def test_feed_stale_and_live() -> None:
    stale = [lake(feed(f)[0]) for f in load("feed_stale")]
    assert [_session(t) for t in stale] == [
        {"event": "feed_stale", "channel": "hl", "reason": "upstream stale for 67.4s"},
        {"event": "feed_stale", "channel": "pendle", "reason": "upstream stale for 300s"}]
    assert [own(one(t, "mackinac_feed_stale")) for t in stale] == [
        {"exchange": "hl", "stale_sec": 67.4, "extra": None},
        {"exchange": "pendle", "stale_sec": 300.0, "extra": None}]
    live = [lake(feed(f)[0]) for f in load("feed_live")]
    assert [_session(t) for t in live] == [{"event": "feed_live", "channel": "hl"},
                                           {"event": "feed_live", "channel": "pendle"}]
    assert one(live[0], "mackinac_feed_live")["ts_event"] is None


# --- 3. history snapshot and LP backfill ------------------------------------------------------

def test_history_snapshot_prints_and_summary() -> None:
    rows, actions = feed(load("snapshot")[0])
    assert actions == []
    tables = lake(rows)
    assert set(tables) == {"mackinac_print", "mackinac_snapshot"}
    prints = tables["mackinac_print"]
    assert [(p["source"], p["req_id"], p["exchange"], p["symbol"]) for p in prints] == [
        ("history", "h1", "hl", "ETH")] * 3
    assert [(p["time_ms"], p["price"], p["size"], p["side"]) for p in prints] == [
        (1748275100000, 3498.5, 0.1, 0), (1748275150000, 3499.0, 0.2, 1),
        (1748275199000, 3499.5, 0.3, 2)]
    assert [p["ts_event"] for p in prints] == [1748275100000 * 10**6, 1748275150000 * 10**6,
                                               1748275199000 * 10**6]
    assert (prints[0]["d_tickrate"], prints[0]["d_hawkesb"], prints[0]["d_hawkes"]) == (
        4.0, 0.5, None)
    # the print without `exchange` takes the envelope's, so it is not a guessed legacy "hl"
    assert [p["legacy_no_exchange"] for p in prints] == [False, False, False]
    assert all(p["extra"] is None for p in prints)
    summary = one(tables, "mackinac_snapshot")
    assert own(summary) == {"exchange": "hl", "symbol": "ETH", "req_id": "h1",
                            "print_count": 3, "first_time_ms": 1748275100000,
                            "last_time_ms": 1748275199000, "extra": None}
    assert summary["ts_event"] is None


def test_empty_history_snapshot_without_req_id() -> None:
    rows, _ = feed(load("snapshot")[1])
    tables = lake(rows)
    assert set(tables) == {"mackinac_snapshot"}
    assert own(one(tables, "mackinac_snapshot")) == {
        "exchange": "uni", "symbol": "WETH/USDC", "req_id": None, "print_count": 0,
        "first_time_ms": None, "last_time_ms": None, "extra": None}


def test_snapshot_numeric_req_id_is_kept_as_text() -> None:
    frame = {**load("snapshot")[0], "reqId": 7}
    tables = lake(feed(frame)[0])
    assert one(tables, "mackinac_snapshot")["req_id"] == "7"
    assert {p["req_id"] for p in tables["mackinac_print"]} == {"7"}


def test_ammliquidity_snapshot_events_go_to_liquidity() -> None:
    rows, actions = feed(load("ammliquidity_snapshot")[0])
    assert actions == []
    tables = lake(rows)
    events = tables["mackinac_liquidity"]
    assert [(e["source"], e["exchange"], e["action"], e["amount"], e["block_number"],
             e["tx_index"], e["time_ms"]) for e in events] == [
        ("snapshot", "uni", "mint", "12500000000000000000", 290844001, 5, 1748275100000),
        ("snapshot", "sushi", "burn", "340282366920938463463374607431768211455", 290844500, 9,
         1748275150000)]
    assert (events[0]["owner"], events[1]["owner"]) == (
        "0xc36442b4a4522e871399cd717abdd847ab11fe88", None)
    assert all(e["extra"] is None and e["symbol"] == "WETH/USDC" for e in events)
    assert own(one(tables, "mackinac_ammliquidity_snapshot")) == {
        "symbol": "WETH/USDC", "event_count": 2, "first_time_ms": 1748275100000,
        "last_time_ms": 1748275150000, "extra": None}

    empty = lake(feed(load("ammliquidity_snapshot")[1])[0])
    assert set(empty) == {"mackinac_ammliquidity_snapshot"}
    assert own(one(empty, "mackinac_ammliquidity_snapshot")) == {
        "symbol": "WBTC/USDC", "event_count": 0, "first_time_ms": None, "last_time_ms": None,
        "extra": None}


def test_ammliquidity_event_without_symbol_takes_the_envelope_symbol() -> None:
    event = {k: v for k, v in load("liquidity")[2].items() if k != "symbol"}
    frame = {"type": "ammliquidity_snapshot", "symbol": "WETH/USDC", "events": [event]}
    tables = lake(feed(frame)[0])
    row = one(tables, "mackinac_liquidity")
    assert (row["symbol"], row["exchange"], row["source"], row["extra"]) == (
        "WETH/USDC", "pancake", "snapshot", None)
    assert one(tables, "mackinac_ammliquidity_snapshot")["first_time_ms"] == 1748275200200


def test_live_liquidity_has_source_live() -> None:
    assert [one(lake(feed(f)[0]), "mackinac_liquidity")["source"]
            for f in load("liquidity")] == ["live"] * 3


# --- 4. bad input -------------------------------------------------------------------------------

def _unhandled(data: bytes) -> dict[str, Any]:
    rows, actions = feed(data)
    assert actions == []
    assert [t for t, _ in rows] == [UNHANDLED]
    row = one(lake(rows), UNHANDLED.name)
    assert (row["ts_recv"], row["ts_event"], row["venue"]) == (TS_RECV, None, "mackinac")
    return own(row)


def test_malformed_json() -> None:
    raw = b'{"exchange": "hl", "type": "quote",'  # `type` not first: the adapter parses it
    row = _unhandled(raw)
    assert (row["reason"], row["msg_type"], row["target_table"], row["raw"]) == (
        "malformed", None, None, raw.decode())
    assert row["error"]


def test_malformed_fast_path_frame_is_quarantined_by_the_lake(tmp_path: Path) -> None:
    """A frame that starts like a data frame goes to the lake raw; the lake finds it is not
    JSON and stores it in `unhandled` as malformed, keeping the good frames beside it."""
    good = orjson.dumps(load("quote")[0])
    bad = b'{"type": "quote", "exchange": "hl",'
    ad = new_adapter(["hl:ETH"])
    assert ad.on_frame("feed", bad) == ([(T.QUOTE, bad)], ())
    writer = LakeWriter(tmp_path, "mackinac", RUN)
    for seq, data in enumerate((good, bad, good)):
        for table, row in ad.on_frame("feed", data)[0]:
            writer.add(table, row, TS_RECV, "feed", seq)
    writer.write(*writer.take())
    writer.commit_all()
    quotes = pq.read_table(tmp_path / "lake" / "mackinac_quote", columns=["recv_seq"])
    assert quotes["recv_seq"].to_pylist() == [0, 2]
    u = pq.read_table(tmp_path / "lake" / "unhandled",
                      columns=["reason", "target_table", "recv_seq", "raw"]).to_pylist()
    assert u == [{"reason": "malformed", "target_table": "mackinac_quote", "recv_seq": 1,
                  "raw": bad.decode()}]


def test_fast_path_equals_dict_path_for_every_fixture() -> None:
    """Raw rows (Arrow's JSON reader + the table's raw_constants) give exactly the dict
    path's rows. A legacy print (no `exchange`) takes the dict path, which fills it."""
    for kind in ("quote", "print", "funding", "rate_market", "rate_depth", "rate_model_params",
                 "ammbook", "arbflag", "spread"):
        table = getattr(T, kind.upper())
        frames = [orjson.dumps(f) for f in load(kind)]
        raw_rows = [r for f in frames for r in new_adapter(["hl:ETH"]).on_frame("feed", f)[0]]
        legacy = [kind == "print" and b'"exchange":' not in f for f in frames]
        assert [r.__class__ is not bytes for _, r in raw_rows] == legacy, kind
        dict_rows = []
        for f in frames:  # the same frames with `type` moved last take the dict path
            obj = orjson.loads(f)
            obj["type"] = obj.pop("type")
            dict_rows += new_adapter(["hl:ETH"]).on_frame("feed", orjson.dumps(obj))[0]
        assert all(isinstance(r, dict) for _, r in dict_rows), kind
        assert lake(raw_rows)[table.name] == lake(dict_rows)[table.name], kind


def test_invalid_utf8_is_malformed_and_kept_readable() -> None:
    row = _unhandled(b'{"symbol": "\xff", "type": "print"}')
    assert row["reason"] == "malformed"
    assert row["raw"] == '{"symbol": "\ufffd", "type": "print"}'
    # the same bytes with `type` first take the fast path: the lake quarantines them alike
    raw = b'{"type": "print", "symbol": "\xff"}'
    buf = _Buffer([raw], [TS_RECV], ["feed"], [1])
    out, bad = to_arrow(T.PRINT, buf, "mackinac", RUN)
    assert out is None and len(bad) == 1 and bad[0][1].startswith("malformed: ")


def test_json_array_is_unexpected_shape() -> None:
    raw = orjson.dumps([load("quote")[0]])
    row = _unhandled(raw)
    assert (row["reason"], row["error"], row["raw"]) == (
        "unexpected_shape", "not a JSON object", raw.decode())


def test_numeric_type_is_unknown() -> None:
    raw = b'{"type":5,"exchange":"hl"}'
    row = _unhandled(raw)
    assert (row["reason"], row["msg_type"], row["raw"]) == ("unknown_type", "5", raw.decode())


def test_missing_type_has_null_msg_type() -> None:
    raw = b'{"exchange":"hl","symbol":"ETH","price":1}'
    row = _unhandled(raw)
    assert (row["reason"], row["msg_type"], row["raw"]) == ("unknown_type", None, raw.decode())


@pytest.mark.parametrize(("frame", "msg_type", "error"), [
    ({"type": "snapshot", "exchange": "hl", "symbol": "ETH", "prints": "abc"}, "snapshot",
     "TypeError"),
    ({"type": "depth", "exchange": "uni", "symbol": "WETH/USDC", "ticks": [1]}, "depth",
     "AttributeError"),
    ({"type": "ammliquidity_snapshot", "symbol": "WETH/USDC", "events": [[]]},
     "ammliquidity_snapshot", "AttributeError"),
])
def test_wrong_nested_shapes(frame: dict[str, Any], msg_type: str, error: str) -> None:
    raw = orjson.dumps(frame)
    row = _unhandled(raw)
    assert (row["reason"], row["msg_type"], row["raw"]) == ("unexpected_shape", msg_type,
                                                            raw.decode())
    assert row["error"].startswith(f"{error}: ")


def test_print_with_string_price_is_quarantined_by_to_arrow() -> None:
    good1, bad, good2 = (dict(load("print")[3]), dict(load("print")[3], price="abc"),
                         dict(load("print")[4]))
    rows = [r for f in (good1, bad, good2) for r in feed(f)[0]]
    assert [t for t, _ in rows] == [T.PRINT] * 3  # the adapter passes the value through
    assert b'"price":"abc"' in rows[1][1]  # as the raw frame (fast path)
    buf = _Buffer([r for _, r in rows], [TS_RECV, TS_RECV + 1, TS_RECV + 2], ["feed"] * 3,
                  [10, 11, 12])
    out, quarantined = to_arrow(T.PRINT, buf, "mackinac", RUN)
    assert [i for i, _ in quarantined] == [1]
    assert "abc" in quarantined[0][1] and quarantined[0][1].startswith("Arrow")
    assert out is not None
    kept = _plain(out)
    assert [(r["price"], r["exchange"], r["recv_seq"], r["ts_recv"]) for r in kept] == [
        (3500.12, "uni", 10, TS_RECV), (0.985, "pendle", 12, TS_RECV + 2)]


def test_lake_writer_sends_bad_values_to_unhandled(tmp_path: Path) -> None:
    rows = [r for f in (load("print")[0], dict(load("print")[0], price="abc"))
            for r in feed(f)[0]]
    writer = LakeWriter(tmp_path, "mackinac", RUN)
    for seq, (table, row) in enumerate(rows):
        writer.add(table, row, TS_RECV, "feed", seq)
    writer.write(*writer.take())
    writer.commit_all()
    printed = pq.read_table(tmp_path / "lake" / "mackinac_print",
                            columns=["price", "recv_seq"]).to_pylist()
    assert [(r["price"], r["recv_seq"]) for r in printed] == [(3500.5, 0)]
    bad = pq.read_table(tmp_path / "lake" / "unhandled",
                        columns=["reason", "target_table", "recv_seq", "raw"]).to_pylist()
    assert len(bad) == 1
    assert (bad[0]["reason"], bad[0]["target_table"], bad[0]["recv_seq"]) == (
        "bad_value", "mackinac_print", 1)
    assert orjson.loads(bad[0]["raw"])["price"] == "abc"


def test_hostile_symbol_is_just_data() -> None:
    for frame in (dict(load("print")[0], symbol="../../etc/passwd"),
                  dict(load("quote")[0], symbol="../../etc/passwd"),
                  {"type": "subscribed", "exchange": "hl", "symbol": "../../etc/passwd"}):
        rows, actions = feed(frame)
        assert actions == []
        tables = lake(rows)
        row = one(tables, f"mackinac_{frame['type']}")
        assert (row["symbol"], row["extra"]) == ("../../etc/passwd", None)
        assert UNHANDLED.name not in tables


# --- 5. connecting --------------------------------------------------------------------------

def test_connections_ask_for_a_descriptive_user_agent() -> None:
    assert list(new_adapter().connections()) == [
        ConnSpec("feed", "ws://x", {"User-Agent": USER_AGENT})]


def test_on_connected_with_api_key_sends_only_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MACKINAC_TEST_KEY", "mk_live_secret")
    ad = new_adapter(api_key_env="MACKINAC_TEST_KEY")
    actions = list(ad.on_connected("feed"))
    assert actions == [Send("feed", '{"action":"auth","key":"mk_live_secret"}', paced=False,
                            secret_keys=("key",))]


def test_on_connected_without_key_subscribes_and_requests_history() -> None:
    ad = new_adapter()
    assert list(ad.on_connected("feed")) == [
        subscribe("hl", "ETH"), subscribe("uni", "WETH/USDC"),
        history("hl", "ETH", "h1"), history("uni", "WETH/USDC", "h2")]
    ad.on_disconnected("feed")
    # every reconnect asks again, with fresh reqIds
    assert list(ad.on_connected("feed"))[2:] == [history("hl", "ETH", "h3"),
                                                 history("uni", "WETH/USDC", "h4")]


def test_history_options() -> None:
    assert list(new_adapter(history=False).on_connected("feed")) == [
        subscribe("hl", "ETH"), subscribe("uni", "WETH/USDC")]
    assert list(new_adapter(["hl:ETH", "gmx:BTC", "vertex:BTC"], history_limit=1000)
                .on_connected("feed")) == [
        subscribe("hl", "ETH"), subscribe("gmx", "BTC"), subscribe("vertex", "BTC"),
        history("hl", "ETH", "h1", limit=1000)]


@pytest.mark.parametrize("options", [
    {"symbols": []}, {"symbols": ["ETH"]}, {"symbols": ["hl:ETH"], "history_limit": 1001},
    {"symbols": ["hl:ETH"], "bogus": 1}, {"symbols": ["hl:ETH"], "api_key_env": 5}])
def test_bad_settings_are_config_errors(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        make_adapter("mackinac", "ws://x", options)


def test_integers_beyond_64_bits_stay_exact() -> None:
    """orjson would read these as floats; the frame goes through the exact parser instead."""
    big = 2**128 + 12345
    raw = (b'{"type":"liquidity","exchange":"uni","symbol":"WETH/USDC","feeTier":500,'
           b'"action":"mint","tickLower":195000,"tickUpper":197000,"amount":' +
           str(big).encode() + b',"amount0":"1","amount1":"2","amountUsd":0,"time":1748275200000}')
    rows, _ = new_adapter(["uni:WETH/USDC"]).on_frame("feed", raw)
    row = one(lake(rows), "mackinac_liquidity")
    assert row["amount"] == str(big)


def test_history_setting_must_be_a_boolean() -> None:
    with pytest.raises(ConfigError, match="history"):
        make_adapter("mackinac", "ws://x", {"symbols": ["hl:ETH"], "history": "false"})
