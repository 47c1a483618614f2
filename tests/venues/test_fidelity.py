"""The defects of issue 11, one test each, on the fixtures written for them (provenance in
``tests/venues/<venue>/fixtures/SOURCES.md``), plus the shared policy of ``recorder.exact``.
Power.Trade's multi-leg entities are tested in its own adapter tests
(``test_multi_leg_rfq_entities_are_typed_not_quarantined``); Totalis's catalog events by its
golden fixture tests (``test_ws_fixture_rows``)."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pyarrow as pa
import pytest

from recorder.exact import decimals, dumps, epoch_ns, shaper, with_text
from recorder.lake import _Buffer, to_arrow
from recorder.rows import Row, with_extra
from recorder.schema import EXTRA, UNHANDLED, Col, Table
from recorder.venues.derive import tables as DT
from recorder.venues.derive.adapter import make_adapter as derive_adapter
from recorder.venues.diffusal import tables as FT
from recorder.venues.diffusal.adapter import make_adapter as diffusal_adapter
from recorder.venues.totalis import tables as TT
from recorder.venues.totalis.adapter import make_adapter as totalis_adapter
from tests.venues.corpus import VENUES, fixtures, load

F, S = pa.float64(), pa.string()


def lake(rows: list[Row], table: Table) -> list[dict[str, Any]]:
    mine = [r for t, r in rows if t is table]
    buf = _Buffer(mine, [1] * len(mine), ["c"] * len(mine), list(range(len(mine))))
    t, bad = to_arrow(table, buf, "v", "run-1")
    assert bad == [] and t is not None
    return t.cast(pa.schema([pa.field(f.name, pa.int64() if pa.types.is_timestamp(f.type)
                                      else f.type) for f in t.schema])).to_pylist()


def derive(frame: Any) -> list[Row]:
    return derive_adapter("derive", None, {}, offline=True).on_frame(
        "ws", json.dumps(frame).encode())[0]


# --- 2. decimal strings keep their exact text ----------------------------------------------

def test_derive_decimals_keep_their_text_beside_the_float() -> None:
    ticker, balance, book = load("derive", "exact_decimals")
    (t,) = lake(derive(ticker), DT.TICKER)
    # 28 significant digits: float64 rounds, the text does not
    assert t["mark_price_text"] == "512.4537187499999896741187060"
    assert t["mark_price"] == float("512.4537187499999896741187060")
    assert t["index_price_text"] == "3501.550000000000000000000"
    assert t["option_pricing"]["delta_text"] == "0.810000000000000000000000001"
    assert t["option_pricing"]["delta"] == 0.81
    (b,) = lake(derive(balance), DT.BALANCES)
    assert (b["new_balance_text"], b["previous_balance_text"]) == ("11999.999999999999", "12000")
    assert b["new_balance"] == 11999.999999999998 and b["extra"] is None
    (ob,) = lake(derive(book), DT.ORDERBOOK)
    # v2 [price, amount] pairs and v3 objects alike; trailing zeros survive
    assert ob["bids"] == [{"price": 3500.1, "price_text": "3500.10", "amount": 1.0,
                           "amount_text": "1.000000000000000001"}]
    assert ob["asks"] == [{"price": 3500.2, "price_text": "3500.20", "amount": 0.5,
                           "amount_text": "0.5000"}]


def test_diffusal_decimals_keep_their_formatting() -> None:
    ad = diffusal_adapter("diffusal", None, {}, offline=True)
    (idx,) = lake(ad.on_frame("public-0", json.dumps(load("diffusal", "index")[0]).encode())[0],
                  FT.INDEX)
    # the seed's own example: "2159.50" is 2159.5 as a float, "2159.50" as sent
    assert (idx["spot_price"], idx["spot_price_text"]) == (2159.5, "2159.50")


# --- 3. a discriminator a table can hold several values of is kept --------------------------

def test_diffusal_private_rfq_events_can_be_told_apart() -> None:
    ad = diffusal_adapter("diffusal", None, {}, offline=True)
    rows = [r for f in load("diffusal", "private_rfq_events")
            for r in ad.on_frame("private", json.dumps(f).encode())[0]]
    got = lake(rows, FT.ACCOUNT_RFQ)
    assert [(r["type"], r["status"], r["size_text"]) for r in got] == [
        ("rfq_created", "open", "5.000"), ("rfq_resolved", "filled", "5.000")]
    assert "type" in FT.ACCOUNT_RFQ.wire_keys and not FT.ACCOUNT_RFQ.ignore_keys


def test_no_table_drops_type_unless_it_says_so() -> None:
    plain = Table("t", "v", (Col("a", S), Col(EXTRA, S)), ("a",))
    assert plain.ignore_keys == frozenset()
    assert orjson.loads(with_extra(plain, {"a": "x", "type": "update"})[EXTRA]) == {
        "type": "update"}


# --- 4. Derive: null ids, both auctions shapes ------------------------------------------------

def test_derive_null_rpc_id_stays_null() -> None:
    first, second = load("derive", "rpc_null_id")
    (a,) = lake(derive(first), DT.RPC)
    assert (a["id"], a["ok"], a["error_code"], a["error_message"]) == (
        None, False, -32700, "Parse error")
    (b,) = lake(derive(second), DT.RPC)
    assert b["id"] is None and b["error_data"] == "missing method"
    assert orjson.loads(b["extra"]) == {"jsonrpc": "2.0"}


def test_derive_auctions_balances_as_a_json_string_or_a_map() -> None:
    (frame,) = load("derive", "auctions_v3")
    (as_string,) = lake(derive(frame), DT.AUCTIONS)
    details = frame["params"]["data"][0]["details"]
    as_map = json.loads(json.dumps(frame))
    as_map["params"]["data"][0]["details"]["subaccount_balances"] = json.loads(
        details["subaccount_balances"])
    (from_map,) = lake(derive(as_map), DT.AUCTIONS)
    assert as_string == from_map
    d = as_string["details"]
    assert d["subaccount_balances"] == [("USDC", 1500.25), ("ETH-PERP", -2.0)]
    assert d["subaccount_balances_text"] == [("USDC", "1500.250000000000000001"),
                                             ("ETH-PERP", "-2")]


# --- 5. time units where the docs leave them open --------------------------------------------

def test_derive_margin_valuation_time_in_seconds_is_not_1970() -> None:
    (frame,) = load("derive", "margin_watch_seconds")
    (m,) = lake(derive(frame), DT.MARGIN_WATCH)
    assert m["valuation_timestamp"] == 1718000007
    assert m["valuation_ns"] == m["ts_event"] == 1718000007 * 10**9
    ms = json.loads(json.dumps(frame))
    ms["params"]["data"][0]["valuation_timestamp"] = 1718000007000
    assert lake(derive(ms), DT.MARGIN_WATCH)[0]["ts_event"] == 1718000007 * 10**9


def test_diffusal_fill_timestamp_in_seconds_is_not_1970() -> None:
    ad = diffusal_adapter("diffusal", None, {}, offline=True)
    (frame,) = load("diffusal", "private_fill_seconds")
    (fill,) = lake(ad.on_frame("private", json.dumps(frame).encode())[0], FT.FILL)
    assert (fill["timestamp"], fill["ts_event"]) == (1711612801, 1711612801 * 10**9)
    assert fill["type"] == "update" and fill["fee_text"] == "0.0000046"


@pytest.mark.parametrize(("value", "ns"), [
    (1_711_612_801, 1_711_612_801_000_000_000),  # seconds
    (1_711_612_801_250, 1_711_612_801_250_000_000),  # ms
    (1_711_612_801_250_125, 1_711_612_801_250_125_000),  # µs
    (1_711_612_801_250_125_999, 1_711_612_801_250_125_999),  # ns
    (1_711_612_801.5, 1_711_612_801_500_000_000),  # seconds with a fraction
    ("1711612801250", 1_711_612_801_250_000_000),  # a digit string
    (0, 0), (True, None), ("soon", None), (None, None)])
def test_epoch_ns_reads_every_unit_from_the_magnitude(value: Any, ns: int | None) -> None:
    assert epoch_ns(value) == ns


# --- 6. Totalis: the catalog's and the legacy events are typed ------------------------------

@pytest.mark.parametrize(("name", "table"), [
    ("position_failed", TT.POSITION_FAILED), ("position_bought_back", TT.POSITION_BOUGHT_BACK),
    ("vault_deposited", TT.VAULT_DEPOSITED), ("vault_withdrawn", TT.VAULT_WITHDRAWN),
    ("rfq_status", TT.RFQ_STATUS), ("rfq_cancelled", TT.RFQ_CANCELLED),
    ("rfq_expired", TT.RFQ_EXPIRED), ("rfq_created", TT.RFQ_CREATED),
    ("quote_submitted", TT.QUOTE_SUBMITTED)])
def test_totalis_events_without_a_table_before_land_typed(name: str, table: Table) -> None:
    ad = totalis_adapter("totalis", None, {}, offline=True)
    rows = [r for f in load("totalis", name) for r in ad.on_frame(
        "ws", json.dumps(f).encode())[0]]
    assert [t for t, _ in rows if t is UNHANDLED] == []
    got = lake(rows, table)
    assert len(got) == len(load("totalis", name)) and all(r["extra"] is None for r in got)


def test_totalis_bought_back_and_legacy_fields() -> None:
    ad = totalis_adapter("totalis", None, {}, offline=True)
    (bb,) = lake(ad.on_frame("ws", json.dumps(load("totalis", "position_bought_back")[0])
                             .encode())[0], TT.POSITION_BOUGHT_BACK)
    assert (bb["amount"], bb["mm_pays_user"], bb["ts_event"]) == (
        41.5, True, 1780662600 * 10**9)
    (created,) = lake(ad.on_frame("ws", json.dumps(load("totalis", "rfq_created")[0])
                                  .encode())[0], TT.RFQ_CREATED)
    assert created["channel"] == "rfqs:open" and created["legs"][0]["venue"] == "kalshi"


# --- the shared policy -------------------------------------------------------------------------

def test_decimal_columns_get_text_companions_at_every_depth() -> None:
    cols = decimals((Col("price", F, "", "p"), Col("derived", F, "", "_d"),
                     Col("levels", pa.list_(pa.struct([("price", F), ("n", pa.int64())]))),
                     Col("balances", pa.map_(S, F))))
    assert [(c.name, c.key, str(c.type)) for c in cols] == [
        ("price", "p", "double"), ("price_text", "_p_text", "string"),
        ("derived", "_d", "double"),  # computed by the adapter: no text
        ("levels", "levels",
         "list<item: struct<price: double, price_text: string, n: int64>>"),
        ("balances", "balances", "map<string, double>"),
        ("balances_text", "_balances_text", "map<string, string>")]
    assert with_text(pa.struct([("m", pa.map_(S, F))])) == pa.struct(
        [("m", pa.map_(S, F)), ("m_text", pa.map_(S, S))])


def test_shaper_types_texts_and_keeps_nested_unknowns_with_their_path() -> None:
    table = Table("t", "v", (*decimals((
        Col("price", F),
        Col("legs", pa.list_(pa.struct([("amount", F), ("name", S)]))))), Col(EXTRA, S)), ())
    row = shaper(table)({"price": "1.50", "legs": [{"amount": 2, "name": "a", "note": "n"}],
                         "big": 2**200})
    assert row["price"] == 1.5 and row["_price_text"] == "1.50"
    assert row["legs"][0]["amount"] == 2.0 and row["legs"][0]["amount_text"] == "2"
    assert json.loads(row[EXTRA]) == {"big": 2**200, "legs[0].note": "n"}


def test_extra_keeps_integers_beyond_64_bits_exactly() -> None:
    assert json.loads(dumps({"x": 2**255 + 1})) == {"x": 2**255 + 1}


@pytest.mark.parametrize("venue", VENUES)
def test_every_fixture_file_has_its_provenance_written_beside_it(venue: str) -> None:
    sources = (fixtures(venue) / "SOURCES.md").read_text()
    missing = [p.name for p in sorted(fixtures(venue).glob("*.json"))
               if f"`{p.name}`" not in sources]
    assert missing == [], f"{venue}: no provenance in SOURCES.md for {missing}"
