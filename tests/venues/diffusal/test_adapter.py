"""Golden tests for the Diffusal adapter: fixture frames -> adapter rows -> lake Arrow tables.

Fixtures: ``tests/venues/diffusal/fixtures/<type>.json``, one JSON list of frames (or REST bodies)
per message type. Provenance (JSON has no comments):

Verbatim from the seed page (https://docs.diffusal.xyz/docs/api/websocket "Channel
Payloads"): depth[0], ticker[0], trade[0], index[0] and markets[0] (``"0xabc..."`` and
``"0x123..."`` included as printed). reply[1] is the seed's SUBSCRIBE example list returned by
LIST_SUBSCRIPTIONS; auth[0] is the ``status: "authenticated"`` frame the seed's example code
waits for.

Built from the field tables and prose of the seed and of ``shared/venues/002-diffusal.md``
(values invented, types as documented): the other depth/ticker/trade/index/markets variants
(a diff removing a level with size "0", the grouped ``btc@depth``/``btc@ticker``/``btc@trade``
envelopes naming the instrument in ``data.symbol``, a null best bid, series_settled with
``settlementPrice``, a strike sent as a JSON number and not a whole number), reply/error
frames ({result,id}, {error:{code,msg},id}; codes other than 4029 are the simulator's choice),
auth[1] ({result: AuthSuccessResult}; its fields were not retrievable).

Inferred shapes (the docs' schemas for these were not retrievable; see the adapter): every
private channel frame (``private.json``: snapshots as ``{"type":"snapshot","items":[...]}``
or a bare list, updates as one object), the RFQ socket frames (``rfq_stream.json``,
``rfq_quotes.json``, ``rfq_mm.json``, ``global_rfq.json``; only ``type``, ``timestamp``,
``requestId``, ``taker``, ``pairId`` and ``strike`` are documented) and the REST bodies
(``rest_*.json``; the OpenAPI document was not retrieved). Deliberate variants: a heartbeat
timestamp in seconds, a nested ``quote`` object with JSON-number WAD values, a
``rfq_created`` alias on global@rfq, REST lists both bare and wrapped, and an undeclared
``tickDecimals`` (pairs) exercising ``extra``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest

from recorder.actions import ConnSpec, Fetch, Open, Send, Stop
from recorder.errors import ConfigError, MissingSecret
from recorder.lake import _Buffer, to_arrow
from recorder.rows import Row
from recorder.rows import loads as venue_loads
from recorder.schema import EXTRA, SESSION_EVENTS, UNHANDLED, Table
from recorder.transport.backoff import RateGate
from recorder.venues.diffusal import VENUE
from recorder.venues.diffusal import tables as T
from recorder.venues.diffusal.adapter import DiffusalAdapter, make_adapter

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TS_RECV = 1_711_612_800_987_654_321
RUN = "run-1"
RID = "6e53a761-77f1-3155-ee40-70473f70a061"
BTC_PAIR = "0x5a5b5c5d5e5f60616263646566676869707172737475767778797a7b7c7d7e7f"
SYM = "BTC-82000-C-1736409600"


def load(name: str) -> list[Any]:
    # the recorder's own parser: integers beyond 64 bits stay exact
    frames = venue_loads((FIXTURES / f"{name}.json").read_bytes())
    assert isinstance(frames, list) and frames
    return frames


def new(token: str | None = "tok", **options: Any) -> DiffusalAdapter:
    return make_adapter("diffusal", "wss://api.testnet.diffusal.xyz", options,
                        sim={"token": token} if token else None)


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj).encode()  # stdlib: exact big integers, like the venue's text


def feed(ad: DiffusalAdapter, frame: Any, conn: str = "public-0") -> tuple[list[Row], list[Any]]:
    rows, actions = ad.on_frame(conn, _dumps(frame))
    return rows, list(actions)


def rest(ad: DiffusalAdapter, tag: str, body: Any, status: int = 200) -> tuple[list[Row],
                                                                                list[Any]]:
    rows, actions = ad.on_response("rest", tag, status, _dumps(body))
    return rows, list(actions)


def sent(ad: DiffusalAdapter, actions: Sequence[Any]) -> list[dict[str, Any]]:
    """Play the transport: every Send reaches on_sent (as the journal would); return them."""
    out = []
    for a in actions:
        if isinstance(a, Send):
            ad.on_sent(a.conn, a.text.encode())
            out.append(orjson.loads(a.text))
    return out


def _plain(t: pa.Table) -> list[dict[str, Any]]:
    cols = {n: c.cast(pa.int64()) if pa.types.is_timestamp(c.type) else c
            for n, c in zip(t.column_names, t.columns, strict=True)}
    return pa.table(cols).to_pylist()


def lake(rows: list[Row], conn: str = "public-0") -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, tuple[Table, list[dict[str, Any]]]] = {}
    for table, row in rows:
        grouped.setdefault(table.name, (table, []))[1].append(row)
    out: dict[str, list[dict[str, Any]]] = {}
    for name, (table, rs) in grouped.items():
        buf = _Buffer(rs, [TS_RECV] * len(rs), [conn] * len(rs), list(range(len(rs))))
        t, bad = to_arrow(table, buf, "diffusal", RUN)
        assert bad == [], (name, bad)
        assert t is not None and t.schema == table.arrow_schema
        out[name] = _plain(t)
    return out


def untext(v: Any) -> Any:
    """``v`` without the decimal texts (``<name>_text`` beside ``<name>``), at any depth: the
    float view the assertions below compare; the texts are tested on their own."""
    if isinstance(v, dict):
        return {k: untext(x) for k, x in v.items()
                if not (k.endswith("_text") and k.removesuffix("_text") in v)}
    if isinstance(v, list):
        return [untext(x) for x in v]
    return v


def own(row: dict[str, Any]) -> dict[str, Any]:
    return untext({k: v for k, v in row.items()
                   if k not in ("ts_recv", "venue", "run_id", "conn_id", "recv_seq", "recv_sub")})


def one(tables: dict[str, list[dict[str, Any]]], name: str) -> dict[str, Any]:
    assert len(tables[name]) == 1, tables[name]
    return tables[name][0]


def events(rows: list[Row]) -> list[dict[str, Any]]:
    return [r for t, r in rows if t is SESSION_EVENTS]


# --- 1. every fixture: converts to typed rows, nothing unhandled or quarantined ------------------

CONN_OF = {"rfq_stream": "rfq-stream", "rfq_quotes": f"rfq-quotes-{RID}", "rfq_mm": "rfq-mm",
           "private": "private"}
REST_TAG = {"rest_pairs": "pairs", "rest_markets": "markets", "rest_orderbook": "orderbook:X",
            "rest_active_auctions": "active-auctions", "rest_quotes": f"quotes:{RID}"}
ALL = [(p.stem, i) for p in sorted(FIXTURES.glob("*.json")) for i in range(len(load(p.stem)))]
EXPECTED_EXTRA = {("rest_pairs", 1): {"tickDecimals": 4}}


@pytest.mark.parametrize(("name", "index"), ALL, ids=[f"{n}-{i}" for n, i in ALL])
def test_every_fixture_frame_becomes_typed_rows(name: str, index: int) -> None:
    ad = new()
    frame = load(name)[index]
    if name in ("reply", "error"):
        sent(ad, ad.on_connected("public-0"))  # ids 1.. are known requests
    if name == "auth":
        sent(ad, ad.on_connected("private"))
    if name in REST_TAG:
        rows, _ = rest(ad, REST_TAG[name], frame)
    else:
        rows, _ = feed(ad, frame, CONN_OF.get(name, "public-0"))
    assert rows and all(t is not UNHANDLED for t, _ in rows), rows
    tables = lake(rows)
    data = [(name_, r) for name_, rs in tables.items() if name_ != "session_events"
            for r in rs]
    assert data
    want_extra = EXPECTED_EXTRA.get((name, index))
    for table, r in data:
        assert r["venue"] == "diffusal" and r["ts_recv"] == TS_RECV
        if want_extra is None or table == "diffusal_rest":
            assert r[EXTRA] is None, r
        else:
            assert orjson.loads(r[EXTRA]) == want_extra


# --- 2. golden values per channel ---------------------------------------------------------------

def test_depth_doc_example_and_variants() -> None:
    ad = new()
    rows = [feed(ad, f)[0] for f in load("depth")]
    snap = one(lake(rows[0]), "diffusal_depth")
    assert own(snap) == {
        "ts_event": 1_711_612_800_000 * 10**6, "stream": "btc-82000-c-1736409600@depth",
        "type": "snapshot", "symbol": SYM, "bids": [{"price": 0.045, "size": 10.0}],
        "asks": [{"price": 0.048, "size": 5.0}], "sequence": 1, "timestamp_ms": 1711612800000,
        "source": "ws", "extra": None}
    diff = one(lake(rows[1]), "diffusal_depth")
    assert (diff["type"], diff["sequence"], untext(diff["bids"]), diff["asks"]) == (
        "diff", 2, [{"price": 0.045, "size": 0.0}, {"price": 0.0445, "size": 7.0}], [])
    grouped = one(lake(rows[2]), "diffusal_depth")
    # the grouped stream keeps its own key; the instrument is the payload's symbol
    assert (grouped["stream"], grouped["symbol"], grouped["sequence"]) == ("btc@depth", SYM, 3)
    assert [t for t, _ in rows[1] + rows[2]] == [T.DEPTH, T.DEPTH]  # consecutive: no gap
    eth = one(lake(rows[3]), "diffusal_depth")
    assert (eth["symbol"], eth["asks"], eth["sequence"], eth["ts_event"]) == (
        "ETH-2100-P-1736409600", [], 907, 1_711_612_801_000 * 10**6)


def _depth(seq: int, kind: str = "diff", stream: str = "btc-82000-c-1736409600@depth",
           bids: list[Any] | None = None) -> dict[str, Any]:
    return {"stream": stream, "data": {"type": kind, "symbol": SYM, "bids": bids or [],
                                       "asks": [], "sequence": seq, "timestamp": 1711612800000}}


def test_depth_gap_is_recorded_and_resynchronised_from_rest() -> None:
    ad = new()
    feed(ad, _depth(10, "snapshot"))
    assert feed(ad, _depth(11))[1] == []
    # the same diff again on the grouped stream: a duplicate, not a gap
    rows, actions = feed(ad, _depth(11, stream="btc@depth"))
    assert events(rows) == [] and actions == []
    rows, actions = feed(ad, _depth(14))
    gap = events(rows)
    assert [(e["event"], e["channel"], e["expected"], e["received"]) for e in gap] == [
        ("gap", SYM, 12, 14)]
    assert [(a.conn, a.url, a.tag) for a in actions] == [
        ("rest", "https://api.testnet.diffusal.xyz/api/markets/orderbook/BTC-82000-C-1736409600",
         f"orderbook:{SYM}")]
    # while resyncing, further diffs are held, not reported again
    assert feed(ad, _depth(15)) [1] == [] and events(feed(ad, _depth(16))[0]) == []
    # the REST snapshot (sequence 15) is older than diff 16: the book continues at 16
    rows, actions = rest(ad, f"orderbook:{SYM}", {"symbol": SYM, "bids": [{"price": "0.04",
                         "size": "1"}], "asks": [], "sequence": 15, "timestamp": 1711612802000})
    depth = one(lake(rows), "diffusal_depth")
    assert (depth["type"], depth["source"], depth["sequence"], depth["stream"]) == (
        "snapshot", "rest", 15, None)
    assert [(e["event"], e["received"]) for e in events(rows)] == [("resynced", 15)]
    assert "continues at 16" in events(rows)[0]["reason"] and actions == []
    rows, actions = feed(ad, _depth(17))
    assert events(rows) == [] and actions == []
    # the session row converts with its gap columns typed
    row = one(lake(feed(ad, _depth(19))[0]), "session_events")
    assert (row["event"], row["expected"], row["received"]) == ("gap", 18, 19)
    assert orjson.loads(row["detail"]) == {"stream": "btc-82000-c-1736409600@depth"}


def test_diff_before_snapshot_is_a_gap_and_a_rest_snapshot_with_a_hole_asks_again() -> None:
    ad = new()
    rows, actions = feed(ad, _depth(7))
    assert [(e["event"], e["expected"], e["received"]) for e in events(rows)] == [
        ("gap", None, 7)]
    assert "before any snapshot" in events(rows)[0]["reason"]
    assert [type(a) for a in actions] == [Fetch]
    feed(ad, _depth(9))
    # REST answers with sequence 5: 6 is still missing before the held 7 and 9
    rows, actions = rest(ad, f"orderbook:{SYM}", {"symbol": SYM, "bids": [], "asks": [],
                                                  "sequence": 5, "timestamp": 1})
    ev = events(rows)
    assert [(e["event"], e.get("expected"), e["received"]) for e in ev] == [
        ("resynced", None, 5), ("gap", 6, 7)]
    assert [type(a) for a in actions] == [Fetch]
    # the WS snapshot after a resubscribe also ends a resync
    rows, _ = feed(ad, _depth(20, "snapshot"))
    assert [e["event"] for e in events(rows)] == ["resynced"]
    assert events(feed(ad, _depth(21))[0]) == []


def test_depth_rest_failure_retries_with_backoff() -> None:
    ad = new()
    feed(ad, _depth(1, "snapshot"))
    feed(ad, _depth(3))
    rows, actions = rest(ad, f"orderbook:{SYM}", {"error": "boom"}, status=503)
    assert [t.name for t, _ in rows] == ["diffusal_rest", "session_events"]
    assert (rows[0][1]["_status"], rows[1][1]["code"]) == (503, "503")
    assert [(type(a), a.tag, a.delay) for a in actions] == [(Fetch, f"orderbook:{SYM}", 2.0)]


def test_ticker_doc_example_seconds_and_nulls() -> None:
    ad = new()
    doc, grouped, empty = (one(lake(feed(ad, f)[0]), "diffusal_ticker") for f in load("ticker"))
    assert own(doc) == {
        "ts_event": 1_711_612_800 * 10**9, "stream": "btc-82000-c-1736409600@ticker",
        "symbol": SYM, "index_price": 82150.0, "best_bid": 0.045, "best_ask": 0.048,
        "best_bid_size": 10.0, "best_ask_size": 5.0, "open_interest": 150.0,
        "last_trade_at_s": 1711612800, "source": "ws", "extra": None}
    assert (grouped["stream"], grouped["symbol"]) == ("btc@ticker", "BTC-84000-P-1736409600")
    assert (empty["best_bid"], empty["best_bid_size"], empty["best_ask"]) == (None, None, 0.002)


def test_trade_same_id_on_grouped_and_instrument_streams() -> None:
    ad = new()
    a, b, c = (one(lake(feed(ad, f)[0]), "diffusal_trade") for f in load("trade"))
    assert own(a) == {"ts_event": 1_711_612_800 * 10**9,
                      "stream": "btc-82000-c-1736409600@trade", "trade_id": "abc123",
                      "symbol": SYM, "price": 0.046, "size": 5.0, "side": "buy",
                      "timestamp_s": 1711612800, "source": "ws", "extra": None}
    assert b["stream"] == "btc@trade"
    # the dedup key does not include the stream: both receipts are one trade
    assert T.TRADE.dedup_key == ("symbol", "trade_id")
    assert {k: a[k] for k in T.TRADE.dedup_key} == {k: b[k] for k in T.TRADE.dedup_key}
    assert (c["side"], c["size"], c["price"]) == ("sell", 0.5, 0.0035)


def test_index_pair_from_stream() -> None:
    ad = new()
    eth, btc = (one(lake(feed(ad, f)[0]), "diffusal_index") for f in load("index"))
    assert own(eth) == {"ts_event": 1_711_612_800 * 10**9, "stream": "eth-usdt@index",
                        "pair": "eth-usdt", "spot_price": 2159.5, "volatility": 0.65,
                        "timestamp_s": 1711612800, "extra": None}
    assert (btc["pair"], btc["volatility"]) == ("btc-usdt", 0.5312)


def test_markets_exact_strike_and_new_series_subscribed() -> None:
    ad = new()
    sent(ad, ad.on_connected("public-0"))
    # the doc example's pairId "0x123..." is a BTC pair here, so the symbol can be derived
    rest(ad, "pairs", [{"pairId": "0x123...", "symbol": "BTC-USDT", "underlying": "BTC",
                        "quote": "USDT"}])
    created, settled, odd = load("markets")
    rows, actions = feed(ad, created)
    row = one(lake(rows), "diffusal_markets")
    assert own(row) == {
        "ts_event": None, "stream": "global@markets", "type": "series_created",
        "series_id": "0xabc...", "pair_id": "0x123...", "expiry_s": 1711612800,
        "strike": "82000000000000000000000", "strike_f": 82000.0, "is_call": True,
        "settlement_price": None, "settlement_price_f": None,
        "derived_symbol": "BTC-82000-C-1711612800", "extra": None}
    subs = sent(ad, actions)
    key = "btc-82000-c-1711612800"
    assert [s["params"] for s in subs if s["method"] == "SUBSCRIBE"] == [
        ["btc@depth", "btc@ticker", "btc@trade", f"{key}@depth", f"{key}@ticker",
         f"{key}@trade"]]
    assert [a.tag for a in actions if isinstance(a, Fetch)] == ["orderbook:BTC-82000-C-1711612800"]
    rows, actions = feed(ad, settled)
    row = one(lake(rows), "diffusal_markets")
    assert (row["settlement_price"], row["settlement_price_f"]) == (
        "83512250000000000000000", 83512.25)
    # a settled series frees its three slots
    assert [s["params"] for s in sent(ad, actions)] == [
        [f"{key}@depth", f"{key}@ticker", f"{key}@trade"]]
    assert f"{key}@depth" not in ad.sockets.chan_conn
    # strike as a JSON number, not a whole number; unknown pair -> REST refresh, no symbol
    rows, actions = feed(ad, odd)
    row = one(lake(rows), "diffusal_markets")
    assert (row["strike"], row["strike_f"], row["derived_symbol"], row["is_call"]) == (
        "2150500000000000000000", 2150.5, None, False)
    assert [(type(a), a.tag) for a in actions] == [(Fetch, "contracts")]


def test_replies_name_their_request_and_acks_go_to_session_events() -> None:
    ad = new()
    subs = sent(ad, ad.on_connected("public-0"))
    assert subs[0] == {"method": "SUBSCRIBE", "params": ["global@markets", "global@rfq"],
                       "id": 1}
    rows, _ = feed(ad, load("reply")[0])
    row = one(lake(rows), "diffusal_reply")
    assert own(row) == {"ts_event": None, "request_id": 1, "result": "null",
                        "method": "SUBSCRIBE", "params": '["global@markets","global@rfq"]',
                        "extra": None}
    assert [(e["event"], e["channel"]) for e in events(rows)] == [
        ("subscribed", "global@markets"), ("subscribed", "global@rfq")]


def test_keepalive_list_subscriptions_rearms_and_heals() -> None:
    ad = new()
    actions = [a for a in ad.on_connected("public-0") if isinstance(a, Send)]
    keep = [a for a in actions if "LIST_SUBSCRIPTIONS" in a.text]
    assert len(keep) == 1 and keep[0].delay == 30.0
    sent(ad, actions)
    kid = orjson.loads(keep[0].text)["id"]
    feed(ad, {"result": None, "id": 1})  # the subscribe was acked
    rows, actions = feed(ad, {"result": ["global@markets"], "id": kid})
    assert one(lake(rows), "diffusal_reply")["result"] == '["global@markets"]'
    msgs = [orjson.loads(a.text) for a in actions]
    assert [m["method"] for m in msgs] == ["LIST_SUBSCRIPTIONS", "SUBSCRIBE"]
    assert msgs[1]["params"] == ["global@rfq"]  # the server lost it: asked for again
    # a LIST reply that is not the armed keepalive does not start a second chain
    sent(ad, [ad._request("public-0", "LIST_SUBSCRIPTIONS")])
    assert feed(ad, {"result": ["global@markets", "global@rfq"], "id": ad._id})[1] == []


def test_4029_message_rate_retries_later_and_subscription_cap_moves_channels() -> None:
    ad = new()
    sent(ad, ad.on_connected("public-0"))
    rate, cap = load("error")[:2]
    rows, actions = feed(ad, rate)
    err = one(lake(rows), "diffusal_error")
    assert own(err) == {"ts_event": None, "request_id": 1, "code": 4029,
                        "msg": "rate limit exceeded: 300 messages/min", "method": "SUBSCRIBE",
                        "params": '["global@markets","global@rfq"]', "extra": None}
    assert [(e["event"], e["code"], e["retry_after_s"]) for e in events(rows)] == [
        ("rate_limited", "4029", 2.0)]
    assert [(a.delay, orjson.loads(a.text)["params"]) for a in actions] == [
        (2.0, ["global@markets", "global@rfq"])]
    # backoff grows per connection until a subscribe succeeds
    again = sent(ad, actions)
    rows, actions = feed(ad, {**rate, "id": again[0]["id"]})
    assert actions[0].delay == 4.0
    # the subscription cap (the server's is below the documented 50): half of the refused
    # batch is asked for again here, the other half moves to another socket
    sent(ad, actions)
    rows, actions = feed(ad, {**cap, "id": orjson.loads(actions[0].text)["id"]})
    assert [e["event"] for e in events(rows)] == ["rate_limited"]
    assert [(type(a).__name__, a.spec.name if isinstance(a, Open) else a.conn) for a in actions
            ] == [("Send", "public-0"), ("Open", "public-1")]
    assert orjson.loads(actions[0].text)["params"] == ["global@markets"]
    assert [list(p.channels) for p in ad.sockets.conns] == [["global@markets"], ["global@rfq"]]
    assert [orjson.loads(a.text)["params"] for a in ad.on_connected("public-1")
            if "SUBSCRIBE" in a.text] == [["global@rfq"]]
    # a socket holding channels keeps them; a refused single channel proves it full, and
    # that cap then applies to every socket
    ad = new()
    sent(ad, ad.on_connected("public-0"))
    feed(ad, {"result": None, "id": 1})
    more = sent(ad, ad._assign(["btc@depth", "btc@trade", "btc@ticker"]))
    rows, actions = feed(ad, {**cap, "id": more[0]["id"]})
    assert (ad.sockets.conns[0].cap, ad.sockets.cap) == (3, 50)
    assert [list(p.channels) for p in ad.sockets.conns] == [
        ["global@markets", "global@rfq", "btc@depth"], ["btc@trade", "btc@ticker"]]
    again = sent(ad, actions)
    assert again[0]["params"] == ["btc@depth"]
    rows, actions = feed(ad, {**cap, "id": again[0]["id"]})
    assert (ad.sockets.conns[0].cap, ad.sockets.cap, ad.sockets.conns[1].cap) == (2, 2, 2)
    assert [list(p.channels) for p in ad.sockets.conns] == [
        ["global@markets", "global@rfq"], ["btc@trade", "btc@ticker"], ["btc@depth"]]
    assert [type(a) for a in actions] == [Open]


def test_refused_channels_are_split_then_dropped() -> None:
    ad = new()
    sent(ad, ad.on_connected("public-0"))
    rows, actions = feed(ad, {"error": {"code": 4004, "msg": "unknown channel: x"}, "id": 1})
    assert [(e["event"], e["code"], e["channel"]) for e in events(rows)] == [
        ("error", "4004", "global@markets,global@rfq")]
    singles = sent(ad, actions)
    assert [s["params"] for s in singles] == [["global@markets"], ["global@rfq"]]
    feed(ad, {"error": {"code": 4004, "msg": "unknown channel"}, "id": singles[1]["id"]})
    assert ad.sockets.dropped == {"global@rfq": "4004: unknown channel"}
    assert "global@rfq" not in ad.sockets.conns[0].channels
    assert ad._assign(["global@rfq"]) == []  # never asked for again


def test_auth_both_shapes_success_and_failure() -> None:
    for shape, key in (("params", "params"), ("authorization", "authorization")):
        ad = new(auth_shape=shape)
        (auth,) = ad.on_connected("private")
        msg = orjson.loads(auth.text)
        assert auth.secret_keys == (key,) and auth.paced is False
        assert msg == ({"method": "AUTH", "params": {"token": "tok"}, "id": 1} if shape ==
                       "params" else {"method": "AUTH", "authorization": "Bearer tok", "id": 1})
    ad = new()
    sent(ad, ad.on_connected("private"))
    status, result = load("auth")
    rows, actions = feed(ad, status, "private")
    row = one(lake(rows, "private"), "diffusal_auth")
    assert own(row) == {"ts_event": None, "request_id": 1, "status": "authenticated",
                        "result": None, "shape": "status", "extra": None}
    assert [e["event"] for e in events(rows)] == ["auth_ok"]
    msgs = sent(ad, actions)
    assert msgs[0]["params"] == ["position", "order", "fill", "collateral", "rfq",
                                 "liquidation", "portfolio"]
    ad = new()
    sent(ad, ad.on_connected("private"))
    row = one(lake(feed(ad, result, "private")[0]), "diffusal_auth")
    assert (row["status"], row["shape"], orjson.loads(row["result"])["scopes"]) == (
        "authenticated", "result", ["read", "trade", "rfq"])
    ad = new()
    sent(ad, ad.on_connected("private"))
    rows, actions = feed(ad, load("error")[3], "private")
    assert [(e["event"], e["code"]) for e in events(rows)] == [("auth_failed", "4001")]
    assert "invalid or expired token" in events(rows)[0]["reason"]
    assert [(type(a), a.conn) for a in actions] == [(Stop, "private")]


def test_private_snapshots_updates_and_account_rfq_follow_up() -> None:
    ad = new()
    sent(ad, ad.on_connected("private"))
    feed(ad, load("auth")[0], "private")
    frames = load("private")
    pos = lake(feed(ad, frames[0], "private")[0])["diffusal_position"]
    assert [own(r) for r in pos] == [{
        "ts_event": 1_711_612_800_000 * 10**6, "stream": "position", "is_snapshot": True,
        "symbol": SYM,
        "series_id": "0x9f1c4e2b7d3a5f6e8c0b1a2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f",
        "size": 3.0, "entry_price": 0.045, "realized_pnl": 0.0, "unrealized_pnl": 0.009,
        "type": None, "updated_at": 1711612800000, "event_ns": 1711612800000 * 10**6,
        "extra": None}]
    upd = one(lake(feed(ad, frames[1], "private")[0]), "diffusal_position")
    assert (upd["is_snapshot"], upd["size"]) == (False, -2.0)
    # an empty snapshot: no account rows, but the snapshot itself is on record
    snap = one(lake(feed(ad, frames[2], "private")[0]), "diffusal_private_snapshot")
    assert own(snap) == {"ts_event": 1_711_612_800_000 * 10**6, "stream": "order",
                         "item_count": 0, "timestamp": 1711612800000,
                         "event_ns": 1711612800000 * 10**6, "extra": None}
    order = one(lake(feed(ad, frames[3], "private")[0]), "diffusal_order")
    assert (order["status"], order["filled_size"], order["created_at"], order["type"]) == (
        "partially_filled", 4.0, 1711612790000, "update")
    fill = one(lake(feed(ad, frames[4], "private")[0]), "diffusal_fill")
    assert (fill["fill_id"], fill["fee"], fill["liquidity"]) == ("f000031", 0.000015, "maker")
    coll = lake(feed(ad, frames[5], "private")[0])["diffusal_collateral"]
    assert [(r["asset"], r["balance"], r["is_snapshot"]) for r in coll] == [
        ("USDT", 25000.0, True), ("WETH", 2.5, True)]
    rows, actions = feed(ad, frames[6], "private")
    assert one(lake(rows), "diffusal_account_rfq")["status"] == "open"
    fetch, sub, opened = actions
    assert (fetch.tag, fetch.headers, fetch.secret_headers) == (
        f"quotes:{RID}", {"Authorization": "Bearer tok"}, ("Authorization",))
    assert fetch.url == f"https://api.testnet.diffusal.xyz/api/rfq/quotes/{RID}"
    assert orjson.loads(sub.text)["params"] == [f"rfq.quotes.{RID}"]
    assert opened.spec == ConnSpec(
        f"rfq-quotes-{RID}", f"wss://api.testnet.diffusal.xyz/ws/rfq/quotes?requestId={RID}",
        {"Authorization": "Bearer tok"})
    assert feed(ad, frames[6], "private")[1] == []  # once per request
    # once it ended, its quote stream is unsubscribed (and not asked for after a reconnect)
    done = {"stream": "rfq", "data": {**frames[6]["data"], "status": "filled"}}
    (unsub,) = sent(ad, feed(ad, done, "private")[1])
    assert (unsub["method"], unsub["params"]) == ("UNSUBSCRIBE", [f"rfq.quotes.{RID}"])
    assert RID not in ad.account_rfqs
    feed(ad, frames[6], "private")  # (seen open again: followed again)
    liq = one(lake(feed(ad, frames[7], "private")[0]), "diffusal_liquidation")
    assert (liq["liquidation_id"], liq["penalty"]) == ("l00002", 12.5)
    port = one(lake(feed(ad, frames[8], "private")[0]), "diffusal_portfolio")
    assert (port["equity"], port["is_snapshot"]) == (25000.0, True)
    q = one(lake(feed(ad, frames[9], "private")[0]), "diffusal_rfq_quote")
    assert (q["stream"], q["price"], q["price_f"], q["size_f"], q["nonce"]) == (
        f"rfq.quotes.{RID}", "46500000000000000", 0.0465, 5.0, "7")
    # after a reconnect, AUTH then the private channels plus the account's quote streams
    ad.on_disconnected("private")
    sent(ad, ad.on_connected("private"))
    msgs = sent(ad, feed(ad, load("auth")[0] | {"id": ad._auth_id}, "private")[1])
    assert msgs[0]["params"][-1] == f"rfq.quotes.{RID}"


def test_rfq_stream_frames() -> None:
    ad = new()
    connected, snap, req, filled, expired, hb, hb_s = (
        feed(ad, f, "rfq-stream")[0] for f in load("rfq_stream"))
    assert own(one(lake(connected), "diffusal_rfq_connected")) == {
        "ts_event": 1_711_612_800_000 * 10**6, "request_id": None,
        "timestamp_ms": 1711612800000, "event_ms": 1711612800000, "extra": None}
    t = lake(snap)
    assert one(t, "diffusal_rfq_snapshot")["auction_count"] == 1
    auction = one(t, "diffusal_rfq_auction")
    assert (auction["source"], auction["request_id"], auction["strike"], auction["strike_f"],
            auction["size"], auction["auction_ends_at_ms"]) == (
        "snapshot", "ab5646e1-1904-f4cd-7e75-34d945a077d6", "82000000000000000000000",
        82000.0, 5.0, 1711612801200)
    live = one(lake(req), "diffusal_rfq_auction")
    assert (live["source"], live["type"], live["taker_is_buying"], live["ts_event"]) == (
        "ws", "rfq_request", False, 1_711_612_801_200 * 10**6)
    res = one(lake(filled), "diffusal_rfq_resolution")
    assert own(res) == {
        "ts_event": 1_711_612_801_200 * 10**6, "stream": None, "type": "auction_resolved",
        "request_id": "ab5646e1-1904-f4cd-7e75-34d945a077d6", "status": "filled",
        "winner": "0x2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d",
        "price": "46500000000000000", "price_f": 0.0465, "quote_count": 3,
        "timestamp_ms": 1711612801200, "event_ms": 1711612801200, "source": "ws",
        "extra": None}
    exp = one(lake(expired), "diffusal_rfq_resolution")
    assert (exp["status"], exp["winner"], exp["price"], exp["price_f"]) == (
        "expired", None, None, None)
    assert one(lake(hb), "diffusal_rfq_heartbeat")["event_ms"] == 1711612805000
    # a timestamp in seconds is normalised; the raw value is kept
    sec = one(lake(hb_s), "diffusal_rfq_heartbeat")
    assert (sec["timestamp_ms"], sec["event_ms"], sec["ts_event"]) == (
        1711612810, 1711612810000, 1_711_612_810_000 * 10**6)


def test_rfq_quotes_socket_and_stop_on_resolution() -> None:
    ad = new()
    conn = f"rfq-quotes-{RID}"
    c, q1, q2, hb, res = load("rfq_quotes")
    assert one(lake(feed(ad, c, conn)[0]), "diffusal_rfq_connected")["request_id"] == RID
    a = one(lake(feed(ad, q1, conn)[0]), "diffusal_rfq_quote")
    assert (a["mmm"], a["price"], a["price_f"], a["size"], a["expiry_s"], a["source"]) == (
        "0x2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d", "46500000000000000", 0.0465,
        "5000000000000000000", 1711612860, "ws")
    b = one(lake(feed(ad, q2, conn)[0]), "diffusal_rfq_quote")
    # nested quote with JSON-number WAD values: exact strings all the same
    assert (b["price"], b["size"], b["nonce"], b["taker"]) == (
        "47000000000000000", "5000000000000000000", "3", "0x" + "0" * 40)
    assert feed(ad, hb, conn)[1] == []
    rows, actions = feed(ad, res, conn)
    assert one(lake(rows), "diffusal_rfq_resolution")["quote_count"] == 2
    assert [(type(a), a.conn, a.reason) for a in actions] == [(Stop, conn, "auction resolved")]


def test_rfq_mm_frames() -> None:
    ad = new()
    auth, req, rejected, filled, hb = (feed(ad, f, "rfq-mm")[0] for f in load("rfq_mm"))
    assert one(lake(auth), "diffusal_rfq_auth_success")["address"] == (
        "0x2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d")
    assert [e["event"] for e in events(auth)] == ["auth_ok"]
    assert one(lake(req), "diffusal_rfq_auction")["source"] == "mm"
    rej = one(lake(rejected), "diffusal_rfq_quote_rejected")
    assert (rej["reason"], rej["nonce"]) == ("stale_nonce", "6")
    f = one(lake(filled), "diffusal_rfq_trade_filled")
    assert (f["price_f"], f["size_f"], f["tx_hash"][:6]) == (0.0465, 5.0, "0x1d2e")
    assert one(lake(hb), "diffusal_rfq_heartbeat")["timestamp_ms"] == 1711612805000


def test_global_rfq_envelopes_and_alias() -> None:
    ad = new()
    req, res, alias = (feed(ad, f)[0] for f in load("global_rfq"))
    a = one(lake(req), "diffusal_rfq_auction")
    assert (a["stream"], a["source"], a["type"]) == ("global@rfq", "ws", "rfq_request")
    assert one(lake(res), "diffusal_rfq_resolution")["stream"] == "global@rfq"
    b = one(lake(alias), "diffusal_rfq_auction")
    assert (b["type"], b["strike_f"], b["event_ms"]) == ("rfq_created", 2100.0, 1711612803000)


def test_rest_hydration_rows_and_subscriptions() -> None:
    ad = new()
    sent(ad, ad.on_connected("public-0"))
    rows, actions = rest(ad, "pairs", load("rest_pairs")[0])
    assert [r["symbol"] for r in lake(rows)["diffusal_pair"]] == ["BTC-USDT", "ETH-USDT"]
    assert [orjson.loads(a.text)["params"] for a in actions] == [
        ["btc-usdt@index", "eth-usdt@index"]]
    rows, actions = rest(ad, "markets", load("rest_markets")[0])
    inst = lake(rows)["diffusal_instrument"]
    assert own(inst[0]) == {
        "ts_event": None, "endpoint": "markets", "symbol": SYM,
        "series_id": "0x9f1c4e2b7d3a5f6e8c0b1a2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f",
        "pair_id": BTC_PAIR, "underlying": "BTC", "strike": "82000000000000000000000",
        "strike_f": 82000.0, "expiry_s": 1736409600, "is_call": True, "status": "active",
        "extra": None}
    subs = [orjson.loads(a.text)["params"] for a in actions if isinstance(a, Send)]
    assert subs == [["btc@depth", "btc@ticker", "btc@trade", "btc-82000-c-1736409600@depth",
                     "btc-82000-c-1736409600@ticker", "btc-82000-c-1736409600@trade",
                     "eth@depth", "eth@ticker", "eth@trade", "eth-2100-p-1736409600@depth",
                     "eth-2100-p-1736409600@ticker", "eth-2100-p-1736409600@trade"]]
    assert [(a.tag, a.delay) for a in actions if isinstance(a, Fetch)] == [
        (f"orderbook:{SYM}", 0.0), ("orderbook:ETH-2100-P-1736409600", 0.1)]
    # contracts repeat them (no new subscriptions); settled instruments are not subscribed
    assert [a for a in rest(ad, "contracts", load("rest_markets")[0])[1]] == []
    rows, actions = rest(ad, "markets", load("rest_markets")[1])
    assert one(lake(rows), "diffusal_instrument")["status"] == "settled" and actions == []
    ob = lake(rest(ad, f"orderbook:{SYM}", load("rest_orderbook")[0])[0])
    assert (one(ob, "diffusal_depth")["source"], untext(one(ob, "diffusal_depth")["bids"][1])) == (
        "rest", {"price": 0.0445, "size": 7.0})
    wrapped = one(lake(rest(ad, "orderbook:ETH-2100-P-1736409600",
                            load("rest_orderbook")[1])[0]), "diffusal_depth")
    assert (wrapped["symbol"], wrapped["sequence"], wrapped["type"]) == (
        "ETH-2100-P-1736409600", 12, "snapshot")
    auctions = lake(rest(ad, "active-auctions", load("rest_active_auctions")[0])[0])
    assert one(auctions, "diffusal_rfq_auction")["source"] == "rest"
    empty = lake(rest(ad, "active-auctions", load("rest_active_auctions")[1])[0])
    assert list(empty) == ["diffusal_rest"]
    assert (empty["diffusal_rest"][0]["item_count"], empty["diffusal_rest"][0]["status"]) == (
        0, 200)
    quotes = lake(rest(ad, f"quotes:{RID}", load("rest_quotes")[1])[0])
    q = one(quotes, "diffusal_rfq_quote")
    # requestId taken from the request when the body omits it; a WAD beyond 2**64 kept exact
    assert (q["request_id"], q["price"], q["source"]) == (
        RID, "1000000000000000000000000000001", "rest")


def test_rest_discovery_failure_retries() -> None:
    ad = new()
    rows, actions = rest(ad, "markets", {"error": "down"}, status=502)
    assert [(type(a), a.tag, a.delay) for a in actions] == [(Fetch, "markets", 5.0)]
    rows, actions = ad.on_response("rest", "pairs", 0, b"ClientConnectorError: refused")
    t = lake(rows, "rest")
    assert own(one(t, "diffusal_rest")) == {
        "ts_event": None, "tag": "pairs", "status": 0, "item_count": None,
        "error": "ClientConnectorError: refused", "extra": None}
    assert one(t, "session_events")["code"] == "0"
    rows, _ = ad.on_response("rest", "pairs", 200, b"{not json")
    assert [t.name for t, _ in rows] == ["diffusal_rest", "unhandled"]
    assert rows[1][1]["reason"] == "malformed" and "not JSON" in rows[0][1]["_error"]


def test_subscriptions_spread_over_connections_under_the_cap() -> None:
    ad = new(max_subscriptions=5)
    sent(ad, ad.on_connected("public-0"))
    found = {f"BTC-{k}-C-1736409600": "btc" for k in range(80000, 80004)}
    actions = ad._add_symbols(found)
    opens = [a.spec.name for a in actions if isinstance(a, Open)]
    assert opens == ["public-1", "public-2", "public-3"]
    assert [len(p.channels) for p in ad.sockets.conns] == [5, 5, 5, 2]
    assert len(ad.sockets.chan_conn) == 2 + 3 + 12
    # only the open connection subscribes now; the others on connect
    assert [(a.conn, len(orjson.loads(a.text)["params"])) for a in actions
            if isinstance(a, Send)] == [("public-0", 3)]
    on2 = [orjson.loads(a.text) for a in ad.on_connected("public-2")]
    assert len(on2[0]["params"]) == 5 and on2[1]["method"] == "LIST_SUBSCRIPTIONS"


def test_unknown_and_malformed_frames_are_kept() -> None:
    ad = new()
    cases = [(b"{oops", "malformed"), (b"[1,2]", "unexpected_shape"),
             (b'{"type":"brand_new"}', "unknown_type"),
             (b'{"stream":"btc-1-c-2@greeks","data":{}}', "unknown_type"),
             (b'{"stream":"btc-1-c-2@depth","data":[]}', "unexpected_shape"),
             (b'{"stream":"global@rfq","data":{"type":"mystery"}}', "unknown_type")]
    for raw, reason in cases:
        rows, _ = ad.on_frame("public-0", raw)
        assert [(t.name, r["reason"]) for t, r in rows] == [("unhandled", reason)], raw
    # a value that does not fit its column is quarantined by the lake writer, not dropped
    rows, _ = feed(ad, {"stream": "x@trade", "data": {"id": "1", "symbol": "X", "price": "n/a",
                                                     "size": "1", "side": "buy",
                                                     "timestamp": 1}})
    buf = _Buffer([rows[0][1]], [TS_RECV], ["public-0"], [1])
    _, bad = to_arrow(T.TRADE, buf, "diffusal", RUN)
    assert len(bad) == 1
    # ... at any depth: a book level whose price is no number
    rows, _ = ad.on_frame("public-0", b'{"stream":"x@depth","data":{"symbol":"X",'
                                      b'"bids":[{"price":"a","size":"1"}]}}')
    buf = _Buffer([rows[0][1]], [TS_RECV], ["public-0"], [1])
    _, bad = to_arrow(T.DEPTH, buf, "diffusal", RUN)
    assert len(bad) == 1


def test_settings_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    bad = [({"symbols": ["x"]}, "unknown setting"),
           ({"auth_shape": "cookie"}, "auth_shape"),
           ({"mm": True}, "mm"),
           ({"max_subscriptions": 51}, "max_subscriptions"),
           ({"underlyings": "btc"}, "underlyings"),
           ({"grouped": "yes"}, "grouped"),
           ({"rest_url": "ftp://x"}, "rest_url"),
           ({"keepalive": 0}, "keepalive"), ({"keepalive": "soon"}, "duration")]
    for options, word in bad:
        with pytest.raises(ConfigError, match=word):
            make_adapter("diffusal", "wss://x", options)
    monkeypatch.delenv("DIFFUSAL_TOKEN_TEST", raising=False)
    with pytest.raises(MissingSecret, match="DIFFUSAL_TOKEN_TEST"):
        make_adapter("diffusal", "wss://x", {"token_env": "DIFFUSAL_TOKEN_TEST"})
    monkeypatch.setenv("DIFFUSAL_TOKEN_TEST", "t0k")
    ad = make_adapter("diffusal", "wss://api.testnet.diffusal.xyz/ws/public",
                      {"token_env": "DIFFUSAL_TOKEN_TEST", "mm": True,
                       "underlyings": ["BTC"]})
    assert [(c.name, c.url, c.headers) for c in ad.connections()] == [
        ("public-0", "wss://api.testnet.diffusal.xyz/ws/public", {}),
        ("rfq-stream", "wss://api.testnet.diffusal.xyz/ws/rfq/stream", {}),
        ("private", "wss://api.testnet.diffusal.xyz/ws/private", {}),
        ("rfq-mm", "wss://api.testnet.diffusal.xyz/ws/rfq/mm",
         {"Authorization": "Bearer t0k"})]
    assert ad.rest_base == "https://api.testnet.diffusal.xyz"
    assert new(keepalive="45s").settings.keepalive == 45.0
    # without a token: only the public sockets
    assert [c.name for c in make_adapter("diffusal", "wss://x", {}).connections()] == [
        "public-0", "rfq-stream"]
    # an underlying filter applies to discovery
    ad._add_symbols({"ETH-2000-C-1": "eth", "BTC-1-C-1": "btc"})
    assert set(ad.symbols) == {"BTC-1-C-1"}
    # offline (rebuild) needs nothing
    assert make_adapter("diffusal", None, {}, offline=True).token == "offline"


def test_venue_spec_paces_messages_and_connections() -> None:
    assert VENUE.send_limit == (290, 60.0) and VENUE.connect_limit == (50, 60.0)
    now = [0.0]
    gate = RateGate(3, 60.0, clock=lambda: now[0])
    assert [gate.reserve() for _ in range(5)] == [0.0, 0.0, 0.0, 60.0, 60.0]
    now[0] = 61.0
    # the two slots granted at t=60 still count: one more now, the next at 120
    assert gate.reserve() == 0.0
    assert gate.reserve() == pytest.approx(59.0)
