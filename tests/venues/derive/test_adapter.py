"""Golden tests for the Derive adapter: fixture frames -> adapter rows -> lake Arrow tables.

Fixtures: ``tests/venues/derive/fixtures/<family>.json``, one JSON list of frames per channel family
(plus ``responses.json`` for answers to our requests). JSON has no comments, so provenance is
here. Verbatim from the documentation (seed 001 and ``shared/venues/001-derive.md``): the
``public/login`` result shape (a list of subaccount ids) and the subscribe answer
``{status, current_subscriptions}``; the -32000 rate-limit error with "Retry after <ms> ms".
The docs give the channel payloads as field tables, not examples, so every notification is
built from those tables and the SDK models (derive-py v2 ``generated_models.py`` /
``channel_models.py``; v3 AsyncAPI ``specs/subscriptions.json``); values are invented, types
as documented. Deliberate variants:
- v3 shapes: orderbook[2] has ``{price, amount}`` level objects; trades[2],
  trades_by_currency[2] carry ``rfq_id`` and the settled fields; trades_settled[2] and
  own_trades[2] carry ``batch_status``/``op_uuid`` instead of ``tx_status``/``transaction_id``;
  orders[2] and quotes[2] have string nonces (and v3 order fields); spot_feed[1] is
  ``spot_feed.ALL`` with two feeds.
- quotes[0] is the seed's ``private/send_quote`` result shape plus ``fill_pct``/``extra_fee``.
- orderbook[3] and ticker_slim[2] carry undeclared keys (``checksum``; ``z`` and ``stats.q``)
  to exercise ``extra``.
- The per-channel error strings in responses[5] are invented (the docs say only "an error
  string"): the adapter reads a code written in the text, else a documented phrase.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest

from recorder.actions import Send
from recorder.collect import redact
from recorder.errors import ConfigError, MissingSecret
from recorder.lake import _Buffer, to_arrow
from recorder.rows import Row
from recorder.schema import COMMON_NAMES, EXTRA, SESSION_EVENTS, UNHANDLED, Table
from recorder.venues import CATALOGUE
from recorder.venues.derive import tables as T
from recorder.venues.derive.adapter import (
    DeriveAdapter,
    address_of,
    classify,
    login_signer,
    make_adapter,
    sign_login,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TS_RECV = 1_718_000_000_987_654_321
RUN = "run-1"
WALLET = "0x6a1e8e1bC3b5Ee8E1c1BDa2C5B1f07Ad5Ba2B6F1"
# A throwaway test key (never funded anywhere): its address signs the login below.
KEY = "0x" + "11" * 32


def load(name: str) -> list[dict[str, Any]]:
    frames = orjson.loads((FIXTURES / f"{name}.json").read_bytes())
    assert isinstance(frames, list) and frames
    return frames


def new_adapter(**options: Any) -> DeriveAdapter:
    ad = make_adapter("derive", "ws://x", options)
    ad.on_connected("ws")
    return ad


def feed(frame: dict[str, Any] | bytes, ad: DeriveAdapter | None = None) -> tuple[
        list[Row], list[Any]]:
    ad = ad or new_adapter()
    data = frame if isinstance(frame, bytes) else orjson.dumps(frame)
    rows, actions = ad.on_frame("ws", data)
    return rows, list(actions)


def _plain(t: pa.Table) -> list[dict[str, Any]]:
    cols = {n: c.cast(pa.int64()) if pa.types.is_timestamp(c.type) else c
            for n, c in zip(t.column_names, t.columns, strict=True)}
    return pa.table(cols).to_pylist()


def lake(rows: list[Row]) -> dict[str, list[dict[str, Any]]]:
    """Rows per table through ``to_arrow``; nothing may be quarantined."""
    grouped: dict[str, tuple[Table, list[dict[str, Any]]]] = {}
    for table, row in rows:
        grouped.setdefault(table.name, (table, []))[1].append(row)
    out: dict[str, list[dict[str, Any]]] = {}
    for name, (table, rs) in grouped.items():
        buf = _Buffer(rs, [TS_RECV] * len(rs), ["ws"] * len(rs), list(range(len(rs))))
        t, bad = to_arrow(table, buf, "derive", RUN)
        assert bad == [], (name, bad)
        assert t is not None and t.schema == table.arrow_schema
        out[name] = _plain(t)
    return out


COMMON = tuple(COMMON_NAMES)  # the pipeline-filled columns


def untext(v: Any) -> Any:
    """``v`` without the decimal texts (``<name>_text`` beside ``<name>``), at any depth: the
    float view the older assertions below were written against. The texts have their own
    tests."""
    if isinstance(v, dict):
        return {k: untext(x) for k, x in v.items()
                if not (k.endswith("_text") and k.removesuffix("_text") in v)}
    if isinstance(v, list):
        return [untext(x) for x in v]
    return v


def own(row: dict[str, Any]) -> dict[str, Any]:
    return untext({k: v for k, v in row.items() if k not in COMMON})


def only(rows: list[Row], name: str) -> list[dict[str, Any]]:
    return lake([r for r in rows if r[0].name == name])[name]


def _text(value: Any) -> Any:
    """A decimal's exact text: the string as sent, a number's own text."""
    if value is None or type(value) is str:
        return value
    if isinstance(value, dict):
        return [(k, _text(v)) for k, v in value.items()]
    return str(value) if type(value) is int else repr(value)


def _expect(value: Any, typ: pa.DataType) -> Any:
    """The lake value for a wire value of Arrow type ``typ``: decimal strings -> float (and
    the string itself in the ``<member>_text`` sibling), digit strings -> int (v3 nonces are
    strings, kept as strings), numbers in string columns -> their text; structs and lists
    recursively."""
    if value is None:
        return None
    if pa.types.is_struct(typ):
        names = {f.name for f in typ}
        out = {}
        for f in typ:
            base = f.name.removesuffix("_text")
            if f.name.endswith("_text") and base in names:
                out[f.name] = _text(value.get(base))
            else:
                out[f.name] = _expect(value.get(f.name), f.type)
        return out
    if pa.types.is_map(typ):
        return [(k, _expect(v, typ.item_type)) for k, v in value.items()]
    if pa.types.is_list(typ):
        return [_expect(v, typ.value_type) for v in value]
    if pa.types.is_floating(typ):
        return float(value)
    if pa.types.is_integer(typ):
        return int(value)
    if pa.types.is_string(typ):
        return value if type(value) is str else str(value)
    return value


def _same(got: Any, want: Any) -> bool:
    """Equal and of the same Python type all the way down (3 != 3.0, '1' != 1)."""
    if type(got) is not type(want):
        return False
    if isinstance(want, dict):
        return got.keys() == want.keys() and all(_same(got[k], want[k]) for k in want)
    if isinstance(want, list | tuple):
        return len(got) == len(want) and all(_same(g, w) for g, w in zip(got, want, strict=True))
    return got == want


# --- 1. families whose elements map straight onto columns: schema-driven round trip ---------

DIRECT = {"trades": T.TRADES, "trades_by_currency": T.TRADES_BY_CURRENCY,
          "trades_settled": T.TRADES_SETTLED, "auctions": T.AUCTIONS,
          "margin_watch": T.MARGIN_WATCH, "orders": T.ORDERS, "own_trades": T.OWN_TRADES,
          "quotes": T.QUOTES, "rfqs": T.RFQS}
DIRECT_FRAMES = [(n, i) for n in DIRECT for i in range(len(load(n)))]


@pytest.mark.parametrize(("name", "index"), DIRECT_FRAMES,
                         ids=[f"{n}-{i}" for n, i in DIRECT_FRAMES])
def test_array_elements_become_typed_rows(name: str, index: int) -> None:
    frame = load(name)[index]
    table = DIRECT[name]
    rows, actions = feed(frame)
    assert actions == [] and all(t is table for t, _ in rows)
    got = lake(rows)[table.name]
    data = frame["params"]["data"]
    assert len(got) == len(data) >= 1  # one row per element of data
    for element, row in zip(data, got, strict=True):
        assert row["channel"] == frame["params"]["channel"]
        assert (row["ts_recv"], row["venue"], row["run_id"], row["conn_id"]) == (
            TS_RECV, "derive", RUN, "ws")
        # margin.watch's unit is read per value; these fixtures hold ms
        ev = element.get("valuation_timestamp" if table is T.MARGIN_WATCH else table.event_time)
        assert row["ts_event"] == (ev * 1_000_000 if ev is not None else None)
        for col in table.columns:
            if col.key.startswith("_") or col.name == EXTRA:
                continue
            want = _expect(element.get(col.key), col.type)
            assert _same(row[col.name], want), (col.name, row[col.name], want)
        assert row[EXTRA] is None


def test_trade_channel_parameters_and_status_columns() -> None:
    by_ccy = lake(feed(load("trades_by_currency")[1])[0])["derive_trades_by_currency"][0]
    assert (by_ccy["instrument_type"], by_ccy["currency"]) == ("option", "ETH")
    v2, reverted, v3 = (lake(feed(f)[0])["derive_trades_settled"][0]
                        for f in load("trades_settled"))
    assert (v2["status_filter"], v2["tx_status"], v2["batch_status"]) == (
        "settled", "settled", None)
    assert (reverted["status_filter"], reverted["tx_status"]) == ("reverted", "reverted")
    assert (v3["status_filter"], v3["tx_status"], v3["batch_status"], v3["op_uuid"]) == (
        "Settled", None, "Settled", "1d7b2f4a-9c3e-4e51-8a2d-6f0b9c8e7d65")
    assert v2["realized_pnl"] == 12.5 and v2["wallet"] == WALLET
    plain = lake(feed(load("trades")[0])[0])["derive_trades"]
    assert [r["trade_id"] for r in plain] == ["4a1b9c2e-0001", "4a1b9c2e-0002"]
    assert [r["quote_id"] for r in plain] == [None, "q-77f0"]
    assert plain[0]["trade_price"] == 3501.5 and plain[0]["ts_event"] == 1718000003000_000000


def test_own_trades_status_transitions_and_v3_fields() -> None:
    req, settled, v3 = (lake(feed(f)[0])["derive_own_trades"][0] for f in load("own_trades"))
    assert (req["trade_id"], req["tx_status"], req["status_filter"], req["transaction_id"]) == (
        "e5f6-0001", "requested", None, "tx-7d1e")
    assert (settled["trade_id"], settled["tx_status"], settled["status_filter"],
            settled["tx_hash"]) == ("e5f6-0001", "settled", "settled", "0xabc123")
    assert (v3["batch_status"], v3["op_uuid"], v3["transaction_id"], v3["tx_status"]) == (
        "Proving", "6e0c5a2b-3d4f-4a1b-9c8d-7e6f5a4b3c2d", None, None)
    assert T.OWN_TRADES.dedup_key == ("trade_id", "coalesce(tx_status, batch_status)")


def test_quote_seed_fields_and_nonces() -> None:
    q1, q2, q3 = (lake(feed(f)[0])["derive_quotes"][0] for f in load("quotes"))
    assert own(q1) == {
        "channel": "30769.quotes", "quote_id": "q-77f0", "rfq_id": "r-55aa",
        "subaccount_id": 30769, "direction": "sell",
        "legs": [{"instrument_name": "ETH-20240628-3000-C", "direction": "buy", "amount": 1.0,
                  "price": 512.5},
                 {"instrument_name": "ETH-20240628-3200-C", "direction": "sell", "amount": 1.0,
                  "price": 401.0}],
        "legs_hash": "0x3e1f2d4c5b6a79880a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071",
        "status": "open", "cancel_reason": "", "fee": 1.25, "extra_fee": 0.0, "fill_pct": 0.0,
        "max_fee": 5.0, "nonce": "1695836058725001",
        "signer": "0x9e1D2b3c4A5f6E7d8C9b0A1f2E3d4C5b6A7f8E9d", "signature": "0x8c1d",
        "signature_expiry_sec": 1718000400, "liquidity_role": "maker", "mmp": False,
        "is_transfer": False, "label": "q-label", "creation_timestamp": 1718000010000,
        "last_update_timestamp": 1718000010000, "tx_hash": None, "tx_status": None,
        "batch_status": None, "wallet": None, "extra": None}
    assert (q2["status"], q2["tx_status"], q2["fill_pct"]) == ("filled", "settled", 1.0)
    assert (q3["nonce"], q3["batch_status"], q3["cancel_reason"]) == (
        "1785000010000777", "Settling", None)
    o1, _, o3 = (lake(feed(f)[0])["derive_orders"][0] for f in load("orders"))
    assert o1["nonce"] == "1718000008000123" and o3["nonce"] == "1785000008000456"
    assert (o3["algo_type"], o3["algo_num_slices"], o3["signed_limit_price"]) == (
        "twap", 10, 3400.0)


# --- 2. families reshaped by the adapter ---------------------------------------------------------

def test_orderbook_levels_v2_pairs_and_v3_objects() -> None:
    frames = load("orderbook")
    ad = new_adapter()
    rows = [r for f in frames for r in feed(f, ad)[0]]
    books = only(rows, "derive_orderbook")
    assert own(books[0]) == {
        "channel": "orderbook.ETH-PERP.10.20", "instrument_name": "ETH-PERP", "price_group": 10,
        "depth": 20, "publish_id": 1001, "timestamp": 1718000000123,
        "bids": [{"price": 3500.0, "amount": 12.5}, {"price": 3490.0, "amount": 3.25}],
        "asks": [{"price": 3510.0, "amount": 8.0}, {"price": 3520.0, "amount": 1.5}],
        "extra": None}
    assert books[0]["ts_event"] == 1718000000123_000000
    assert (books[1]["price_group"], books[1]["depth"], books[1]["asks"]) == (1, 10, [])
    assert untext(books[2]["bids"]) == [{"price": 65000.0, "amount": 0.2}]  # v3 objects
    assert untext(books[2]["asks"][1]) == {"price": 65200.0, "amount": 1.0}
    assert books[3]["extra"] == '{"checksum":123456}'
    # 1001 then 1002 on the same channel: consecutive, no gap recorded
    assert [t for t, _ in rows if t is SESSION_EVENTS] == []


def test_orderbook_publish_id_gap_and_reset_are_session_events() -> None:
    ad = new_adapter()

    def book(pid: int, ch: str = "orderbook.ETH-PERP.1.10") -> list[Row]:
        return feed({"method": "subscription", "params": {"channel": ch, "data": {
            "instrument_name": "ETH-PERP", "publish_id": pid, "timestamp": 1, "bids": [],
            "asks": []}}}, ad)[0]

    assert [t.name for t, _ in book(5) + book(6)] == ["derive_orderbook"] * 2
    rows = book(9)
    gaps = [r for t, r in rows if t is SESSION_EVENTS]
    assert gaps == [{"event": "gap", "channel": "orderbook.ETH-PERP.1.10", "expected": 7,
                     "received": 9, "reason": "publish_id skipped"}]
    back = [r for t, r in book(2) if t is SESSION_EVENTS]
    assert (back[0]["expected"], back[0]["received"], back[0]["reason"]) == (
        10, 2, "publish_id went back")
    # other channels keep their own counter; a reconnect starts every counter afresh
    assert [t for t, _ in book(100, "orderbook.BTC-PERP.1.10") if t is SESSION_EVENTS] == []
    ad.on_connected("ws")
    assert [t for t, _ in book(50) if t is SESSION_EVENTS] == []
    assert lake(book(51))["derive_orderbook"][0]["publish_id"] == 51


def test_ticker_full_flattened_with_struct_columns() -> None:
    opt, perp = (only(feed(f)[0], "derive_ticker")[0] for f in load("ticker"))
    assert (opt["channel"], opt["interval"], opt["timestamp"], opt["ticker_timestamp"]) == (
        "ticker.ETH-20240628-3000-C.1000", 1000, 1718000000100, 1718000000000)
    assert opt["ts_event"] == 1718000000100_000000
    assert (opt["best_bid_price"], opt["best_ask_amount"], opt["mark_price"]) == (
        505.1, 12.0, 512.0)
    assert untext(opt["option_pricing"]) == {
        "ask_iv": 0.64, "bid_iv": 0.6, "delta": 0.81, "discount_factor": 0.999,
        "forward_price": 3512.2, "gamma": 0.0004, "iv": 0.62, "mark_price": 512.0, "rho": 0.3,
        "theta": -5.2, "vega": 1.9}
    assert untext(opt["option_details"]) == {"expiry": 1719561600, "index": "ETH-USD",
                                     "option_type": "C", "strike": 3000.0,
                                     "settlement_price": None}
    assert opt["stats"]["num_trades"] == 33.0 and opt["stats"]["usd_change"] == 20.0
    assert opt["open_interest"] == [
        ("PM", [{"current_open_interest": 500.0, "interest_cap": 10000.0,
                 "manager_currency": "ETH"}]),
        ("SM", [{"current_open_interest": 340.0, "interest_cap": 5000.0,
                 "manager_currency": None}])]
    assert opt["base_asset_sub_id"] == "39614081257132168796771975168"
    assert opt["perp_details"] is None and opt["extra"] is None
    assert perp["interval"] == 100 and perp["option_pricing"] is None
    assert perp["perp_details"]["funding_rate"] == 0.0000125
    assert perp["scheduled_deactivation"] == 9223372036854775807


def test_ticker_slim_one_letter_keys_named() -> None:
    perp, opt, odd = (only(feed(f)[0], "derive_ticker_slim")[0] for f in load("ticker_slim"))
    assert own(perp) == {
        "channel": "ticker_slim.ETH-PERP.1000", "instrument_name": "ETH-PERP", "interval": 1000,
        "timestamp": 1718000000900, "snapshot_ts": 1718000000890, "best_bid_price": 3500.5,
        "best_bid_amount": 7.1, "best_ask_price": 3501.5, "best_ask_amount": 4.2,
        "mark_price": 3501.2, "index_price": 3501.0, "funding_rate": 0.0000125,
        "min_price": 3396.0, "max_price": 3606.0,
        "stats": {"contract_volume": 1520.3, "high": 3560.0, "low": 3440.0, "num_trades": 812,
                  "open_interest": 2300.5, "percent_change": 0.012, "premium_volume": 0.0,
                  "notional_volume": 5320000.5},
        "option_pricing": None, "extra": None}
    assert untext(opt["option_pricing"]) == {
        "ask_iv": 0.64, "bid_iv": 0.6, "delta": 0.81, "discount_factor": 0.999,
        "forward_price": 3512.2, "gamma": 0.0004, "iv": 0.62, "mark_price": 512.0, "rho": 0.3,
        "theta": -5.2, "vega": 1.9}
    assert opt["funding_rate"] is None and opt["interval"] == 100
    assert orjson.loads(odd["extra"]) == {"stats.q": "9", "z": "1"}


def test_spot_feed_one_row_per_currency() -> None:
    eth = only(feed(load("spot_feed")[0])[0], "derive_spot_feed")
    assert [own(r) for r in eth] == [{
        "channel": "spot_feed.ETH", "timestamp": 1718000005000, "currency": "ETH",
        "price": 3501.0, "confidence": 1.0, "price_prev_daily": 3460.2,
        "confidence_prev_daily": 1.0, "timestamp_prev_daily": 1717913605000, "extra": None}]
    both = only(feed(load("spot_feed")[1])[0], "derive_spot_feed")
    assert [(r["currency"], r["price"], r["timestamp"]) for r in both] == [
        ("ETH", 3600.1, 1785000005000), ("BTC", 65000.0, 1785000005000)]


def test_auction_details_struct_and_map() -> None:
    live, ended = only(feed(load("auctions")[0])[0], "derive_auctions")
    assert live["details"]["subaccount_balances"] == [("USDC", 1500.25), ("ETH-PERP", -2.0)]
    assert live["details"]["last_seen_trade_id"] == 88123
    assert (ended["state"], ended["details"]) == ("ended", None)


def test_balances_subaccount_from_channel() -> None:
    rows = only(feed(load("balances")[0])[0], "derive_balances")
    assert [own(r) for r in rows] == [
        {"channel": "30769.balances", "subaccount_id": 30769, "name": "USDC",
         "previous_balance": 10000.0, "new_balance": 9999.2, "update_type": "trade",
         "extra": None},
        {"channel": "30769.balances", "subaccount_id": 30769, "name": "ETH-PERP",
         "previous_balance": 0.0, "new_balance": 1.0, "update_type": "trade", "extra": None}]
    assert rows[0]["ts_event"] is None  # balances carry no venue time


def test_best_quotes_result_flattened_and_error_columns() -> None:
    ok, err = only(feed(load("best_quotes")[0])[0], "derive_best_quotes")
    assert (ok["subaccount_id"], ok["rfq_id"], ok["estimated_total_cost"], ok["is_valid"]) == (
        30770, "r-55aa", 111.5, True)
    assert ok["best_quote"]["quote_id"] == "q-77f0"
    assert untext(ok["best_quote"]["legs"][0]) == {"instrument_name": "ETH-20240628-3000-C",
                                           "direction": "buy", "amount": 1.0, "price": 512.5}
    assert (ok["error_code"], ok["extra"]) == (None, None)
    assert (err["rfq_id"], err["error_code"], err["error_message"], err["error_data"],
            err["direction"]) == ("r-66bb", 11100, "RFQ not found", "r-66bb", None)


def test_rfqs_both_statuses() -> None:
    open_, filled = (only(feed(f)[0], "derive_rfqs")[0] for f in load("rfqs"))
    assert open_["channel"] == f"{WALLET}.rfqs"
    assert untext(open_["legs"]) == [
        {"instrument_name": "ETH-20240628-3000-C", "direction": "buy", "amount": 1.0},
        {"instrument_name": "ETH-20240628-3200-C", "direction": "sell", "amount": 1.0}]
    assert (open_["status"], open_["total_cost"], open_["fill_rate"]) == ("open", None, 0.42)
    assert (filled["status"], filled["total_cost"], filled["filled_direction"]) == (
        "filled", 111.5, "buy")
    assert filled["ts_event"] == 1718000011000_000000


# --- 3. answers to our requests, errors, discovery ----------------------------------------------

def resp(i: int) -> dict[str, Any]:
    return load("responses")[i]


def test_currencies_answer_requests_instruments_and_currency_channels() -> None:
    ad = new_adapter(currencies=["ETH"], instrument_types=["option", "perp"],
                     refresh_seconds=60, batch_size=3)
    rows, actions = feed(resp(0), ad)
    cur = only(rows, "derive_currencies")
    assert [r["currency"] for r in cur] == ["ETH", "BTC"]  # every currency recorded
    assert cur[0]["instrument_types"] == ["erc20", "option", "perp"]
    assert cur[0]["managers"] == [{"address": "0x28c9ddF9A3B29c2E6a561c1BC520954e5A33de5D",
                                   "margin_type": "SM", "currency": None}]
    assert orjson.loads(cur[0]["asset_cap_and_supply_per_manager"])["perp"]["SM"][0][
        "interest_cap"] == "100"
    assert cur[1]["spot_price_24h"] is None
    rpc = only(rows, "derive_rpc")[0]
    assert (rpc["id"], rpc["method"], rpc["ok"], rpc["result_count"], rpc["result"]) == (
        "cur:1:1", "public/get_all_currencies", True, 2, None)
    msgs = [orjson.loads(a.text) for a in actions]
    assert [(m["method"], m.get("params")) for m in msgs[:2]] == [
        ("public/get_instruments", {"currency": "ETH", "instrument_type": "option",
                                    "expired": False}),
        ("public/get_instruments", {"currency": "ETH", "instrument_type": "perp",
                                    "expired": False})]
    assert msgs[0]["id"].endswith(":ETH:option")
    subs = [m["params"]["channels"] for m in msgs if m["method"] == "subscribe"]
    assert subs == [  # batches of batch_size
        ["spot_feed.ETH", "trades.option.ETH", "trades.option.ETH.settled"],
        ["trades.option.ETH.reverted", "trades.option.ETH.timed_out", "trades.perp.ETH"],
        ["trades.perp.ETH.settled", "trades.perp.ETH.reverted", "trades.perp.ETH.timed_out"]]
    # the periodic trigger: the same request again, held back by the transport's timer
    assert (msgs[-1]["method"], actions[-1].delay) == ("public/get_all_currencies", 60.0)
    assert all(a.delay == 0 for a in actions[:-1])


def inst_answer(rid: str, names: list[str], active: bool = True) -> dict[str, Any]:
    base = resp(1)["result"][0]
    return {"id": rid, "result": [dict(base, instrument_name=n, is_active=active)
                                  for n in names]}


def test_instruments_subscribe_new_listings_and_unsubscribe_expired() -> None:
    ad = new_adapter(refresh_seconds=30, channels=["orderbook", "ticker_slim", "trades"],
                     orderbook_group=10, orderbook_depth=20, ticker_interval=100)
    rows, actions = feed(resp(1), ad)
    inst = only(rows, "derive_instruments")
    assert [(r["request_currency"], r["request_type"], r["instrument_name"]) for r in inst] == [
        ("ETH", "option", "ETH-20240628-3000-C"), ("ETH", "option", "ETH-20240628-3200-C")]
    assert inst[1]["option_details"]["strike"] == 3200.0 and inst[0]["tick_size"] == 0.1
    msgs = [orjson.loads(a.text) for a in actions]
    assert msgs[0] == {"id": msgs[0]["id"], "method": "subscribe", "params": {"channels": [
        "orderbook.ETH-20240628-3000-C.10.20", "ticker_slim.ETH-20240628-3000-C.100",
        "trades.ETH-20240628-3000-C", "orderbook.ETH-20240628-3200-C.10.20",
        "ticker_slim.ETH-20240628-3200-C.100", "trades.ETH-20240628-3200-C"]}}
    assert (msgs[1]["method"], msgs[1]["params"], actions[1].delay) == (
        "public/get_instruments", {"currency": "ETH", "instrument_type": "option",
                                   "expired": False}, 30.0)
    # the refresh: one listed, one gone (expired), one delisted as inactive
    _, actions = feed(inst_answer(orjson.loads(actions[1].text)["id"],
                                  ["ETH-20240628-3000-C", "ETH-20240705-3000-P"]), ad)
    msgs = [orjson.loads(a.text) for a in actions]
    assert [(m["method"], m["params"].get("channels")) for m in msgs[:2]] == [
        ("subscribe", ["orderbook.ETH-20240705-3000-P.10.20",
                       "ticker_slim.ETH-20240705-3000-P.100", "trades.ETH-20240705-3000-P"]),
        ("unsubscribe", ["orderbook.ETH-20240628-3200-C.10.20",
                         "ticker_slim.ETH-20240628-3200-C.100", "trades.ETH-20240628-3200-C"])]
    _, actions = feed(inst_answer(orjson.loads(actions[-1].text)["id"],
                                  ["ETH-20240705-3000-P"], active=False), ad)
    assert orjson.loads(actions[0].text)["method"] == "unsubscribe"


def test_answers_from_a_previous_connection_schedule_nothing() -> None:
    ad = new_adapter()
    _, first = feed(resp(1), ad)  # "ins:1:..." answered on generation 1
    assert first
    ad.on_connected("ws")  # reconnect: generation 2
    rows, actions = feed(resp(1), ad)
    assert actions == [] and len(only(rows, "derive_instruments")) == 2  # rows still kept


def test_subscribe_answer_per_channel_status_and_codes() -> None:
    rows, actions = feed(resp(5))
    ev = [r for t, r in rows if t is SESSION_EVENTS]
    assert ev == [
        {"event": "subscribed", "channel": "orderbook.ETH-PERP.10.20"},
        {"event": "subscribed", "channel": "trades.ETH-PERP"},
        {"event": "error", "channel": "orderbook.NOPE-PERP.10.20", "code": "13000",
         "reason": "Invalid channel"},
        {"event": "error", "channel": "30769.orders", "code": "14022",
         "reason": "Private channel subscription failed: not logged in"}]
    rpc = only(rows, "derive_rpc")[0]
    assert rpc["method"] == "subscribe" and orjson.loads(rpc["result"])[
        "current_subscriptions"] == ["orderbook.ETH-PERP.10.20", "trades.ETH-PERP"]
    unsub = [r for t, r in feed(resp(8))[0] if t is SESSION_EVENTS]
    assert unsub == [{"event": "unsubscribed", "channel": "trades.ETH-PERP"}]


def test_error_answers_recorded_with_codes() -> None:
    rows, _ = feed(resp(6))
    rpc = only(rows, "derive_rpc")[0]
    assert (rpc["ok"], rpc["error_code"], rpc["error_message"]) == (
        False, 14022, "Private channel subscription failed")
    ev = [r for t, r in rows if t is SESSION_EVENTS][0]
    assert (ev["event"], ev["code"], ev["reason"]) == (
        "error", "14022", "Private channel subscription failed")
    refused = [r for t, r in feed(resp(4))[0] if t is SESSION_EVENTS][0]
    assert (refused["event"], refused["code"], refused["reason"]) == (
        "auth_failed", "14014", "Signature invalid for message or transaction")
    unknown_id = only(feed(resp(9))[0], "derive_rpc")[0]
    assert (unknown_id["id"], unknown_id["method"], unknown_id["result"]) == ("12", None, '"ok"')


def test_rate_limited_request_is_resent_after_the_hint() -> None:
    ad = new_adapter()
    sent = ad.on_connected("ws")  # generation 2; its last message is a subscribe
    sub = orjson.loads(sent[-1].text)
    assert sub["method"] == "subscribe"
    rows, actions = feed({"id": sub["id"], "error": {
        "code": -32000, "message": "Rate limit exceeded", "data": "Retry after 1500 ms"}}, ad)
    ev = [r for t, r in rows if t is SESSION_EVENTS][0]
    assert (ev["event"], ev["code"], ev["retry_after_s"]) == ("rate_limited", "-32000", 1.5)
    again = orjson.loads(actions[0].text)
    assert actions[0].delay == 1.5 and again["params"] == sub["params"]
    assert again["id"] != sub["id"]


def test_login_flow_signs_the_server_time_and_subscribes_private_channels() -> None:
    ad = make_adapter("derive", "ws://x", {"wallet": WALLET, "private_key_env": "X",
                                           "private_channels": ["orders", "trades_status",
                                                                "best_quotes", "rfqs"],
                                           "own_statuses": ["settled"]},
                      sim={"wallet": WALLET, "private_key": KEY})
    first = [orjson.loads(a.text) for a in ad.on_connected("ws")]
    assert [m["method"] for m in first] == ["public/get_all_currencies", "public/get_time",
                                           "subscribe"]
    rows, actions = feed({"id": first[1]["id"], "result": 1718000000000}, ad)
    login = actions[0]
    body = orjson.loads(login.text)
    assert body["method"] == "public/login"
    assert body["params"]["wallet"] == WALLET and body["params"]["timestamp"] == "1718000000000"
    signer = login_signer("1718000000000", body["params"]["signature"])
    assert signer == address_of(KEY)
    assert login.secret_keys == ("params.signature",)
    assert b"***" in redact(login.text, login.secret_keys)
    assert body["params"]["signature"].encode() not in redact(login.text, login.secret_keys)
    rows, actions = feed({"id": body["id"], "result": [30769, 30770]}, ad)
    ok = [r for t, r in rows if t is SESSION_EVENTS][0]
    assert ok["event"] == "auth_ok" and orjson.loads(ok["detail"])["subaccounts"] == [
        30769, 30770]
    assert orjson.loads(actions[0].text)["params"]["channels"] == [
        "30769.orders", "30769.trades.settled", "30769.best.quotes", "30770.orders",
        "30770.trades.settled", "30770.best.quotes", f"{WALLET}.rfqs"]


def test_sign_login_is_eip191_of_the_timestamp_text() -> None:
    """Checked against eth-account (the product signs with eth-keys, under it): the same
    signature bytes, each side recovers the other's signer, the same address."""
    from eth_account import Account
    from eth_account.messages import encode_defunct

    me = Account.from_key(KEY)
    sig = sign_login(KEY, "1718000000000")
    theirs = "0x" + bytes(Account.sign_message(encode_defunct(text="1718000000000"),
                                               private_key=KEY).signature).hex()
    assert sig == theirs and len(sig) == 132 and address_of(KEY) == me.address
    assert Account.recover_message(encode_defunct(text="1718000000000"),
                                   signature=sig) == me.address
    assert Account.recover_message(encode_defunct(text="1718000000001"),
                                   signature=sig) != me.address
    other = Account.create()
    signed = other.sign_message(encode_defunct(text="1718000000002")).signature
    assert login_signer("1718000000002", "0x" + bytes(signed).hex()) == other.address
    # v as 0/1 is accepted too; a signature of the wrong shape is a ValueError
    low_v = bytes(signed)[:64] + bytes([bytes(signed)[64] - 27])
    assert login_signer("1718000000002", low_v.hex()) == other.address
    for bad in ("0x", "0x12", "zz" * 65, "0x" + "00" * 65, sig[:-2] + "05"):
        with pytest.raises(ValueError):
            login_signer("1", bad)
    for bad_key in ("", "0x12", "zz" * 32, "00" * 32):
        with pytest.raises(ValueError):
            address_of(bad_key)


# --- 4. robustness, routing, settings ------------------------------------------------------------

def test_bad_frames_become_unhandled() -> None:
    cases = [b'{"method": "subscription", "params": ', b"[1,2]",
             orjson.dumps({"method": "subscription", "params": {"channel": "nope.x", "data": 1}}),
             orjson.dumps({"method": "subscription", "params": {"data": 1}}),
             orjson.dumps({"method": "subscription", "params": {
                 "channel": "ticker.ETH-PERP.1000", "data": {"timestamp": 1}}}),
             orjson.dumps({"jsonrpc": "2.0", "method": "heartbeat"})]
    reasons = []
    for data in cases:
        rows, actions = feed(data)
        assert actions == [] and [t for t, _ in rows] == [UNHANDLED]
        reasons.append((rows[0][1]["reason"], rows[0][1]["msg_type"]))
    assert reasons == [("malformed", None), ("unexpected_shape", None),
                       ("unknown_type", "nope.x"), ("unexpected_shape", "subscription"),
                       ("unexpected_shape", "subscription"), ("unknown_type", "heartbeat")]


def test_a_value_that_does_not_fit_is_quarantined_not_guessed() -> None:
    rows, _ = feed({"method": "subscription", "params": {"channel": "trades.ETH-PERP", "data": [
        {"trade_id": "t", "trade_price": "NaN-ish", "timestamp": 1}]}})
    buf = _Buffer([rows[0][1]], [TS_RECV], ["ws"], [0])
    t, bad = to_arrow(T.TRADES, buf, "derive", RUN)
    assert t is None and len(bad) == 1


@pytest.mark.parametrize(("channel", "family"), [
    ("orderbook.ETH-PERP.10.20", "orderbook"), ("ticker.ETH-PERP.100", "ticker"),
    ("ticker_slim.ETH-20240628-3000-C.1000", "ticker_slim"), ("trades.ETH-PERP", "trades"),
    ("trades.option.ETH", "trades_by_currency"), ("trades.perp.BTC.settled", "trades_settled"),
    ("trades.erc20.ETH.Settled", "trades_settled"), ("spot_feed.ETH", "spot_feed"),
    ("auctions.watch", "auctions"), ("margin.watch", "margin"), ("30769.orders", "orders"),
    ("30769.trades", "own_trades"), ("30769.trades.settled", "own_trades"),
    ("30769.balances", "balances"), ("30769.quotes", "quotes"),
    ("30769.best.quotes", "best_quotes"), (f"{WALLET}.rfqs", "rfqs"), ("orderbook.X", None),
    ("30769.secrets", None), ("whatever", None)])
def test_classify(channel: str, family: str | None) -> None:
    assert classify(channel)[0] == family


def test_settings_are_validated_with_the_key_named(monkeypatch: pytest.MonkeyPatch) -> None:
    for options, key in [({"variant": "v4"}, "variant"), ({"orderbook_depth": 7}, "orderbook_depth"),
                         ({"ticker_interval": 500}, "ticker_interval"),
                         ({"channels": ["orderbook", "candles"]}, "channels"),
                         ({"refresh_seconds": 0}, "refresh_seconds"),
                         ({"batch_size": 0}, "batch_size"), ({"wallet": "0x12"}, "wallet"),
                         ({"wallet": WALLET}, "private_key_env"), ({"colour": 1}, "colour")]:
        with pytest.raises(ConfigError, match=key):
            make_adapter("derive", "ws://x", options)
    with pytest.raises(MissingSecret, match="DERIVE_TEST_KEY"):
        make_adapter("derive", "ws://x", {"wallet": WALLET, "private_key_env": "DERIVE_TEST_KEY"})
    monkeypatch.setenv("DERIVE_TEST_KEY", "not-a-key")
    with pytest.raises(ConfigError, match="DERIVE_TEST_KEY") as err:
        make_adapter("derive", "ws://x", {"wallet": WALLET, "private_key_env": "DERIVE_TEST_KEY"})
    assert "not-a-key" not in str(err.value)
    monkeypatch.setenv("DERIVE_TEST_KEY", KEY)
    ad = make_adapter("derive", None, {"wallet": WALLET, "private_key_env": "DERIVE_TEST_KEY"})
    assert ad.key == KEY and ad.url == "wss://api.lyra.finance/ws"


def test_v3_variant_is_the_same_adapter_with_other_defaults() -> None:
    ad = make_adapter("derive", None, {"variant": "v3", "currencies": ["ETH"],
                                       "instrument_types": ["perp"],
                                       "channels": ["trades_settled"]})
    assert type(ad) is DeriveAdapter and ad.url == "wss://api.derive.xyz/v3/ws"
    ad.on_connected("ws")
    _, actions = feed(resp(0), ad)
    subs = [orjson.loads(a.text)["params"]["channels"] for a in actions
            if orjson.loads(a.text)["method"] == "subscribe"]
    assert subs == [["trades.perp.ETH.Settled", "trades.perp.ETH.SettledError"]]


def test_offline_adapter_needs_nothing_and_parses_the_same() -> None:
    ad = make_adapter("derive", None, {}, offline=True)
    ad.on_connected("ws")
    rows, _ = feed(resp(3), ad)  # a login answer, understood from its id alone
    assert [r["event"] for t, r in rows if t is SESSION_EVENTS] == ["auth_ok"]
    assert only(rows, "derive_rpc")[0]["method"] == "public/login"


def test_every_table_registered_with_ms_event_time() -> None:
    assert all(CATALOGUE.tables[t.name] is t for t in T.TABLES)
    # Derive times are ms; margin.watch's valuation_timestamp is read per value into ns.
    assert all(t.event_time_unit == ("ns" if t is T.MARGIN_WATCH else "ms")
               and t.name.startswith("derive_") for t in T.TABLES)


def test_login_request_without_key_sends_no_signature() -> None:
    ad = DeriveAdapter("ws://x", make_adapter("derive", "ws://x", {}).s)
    assert isinstance(ad.on_connected("ws")[0], Send)
