"""Golden tests for the Power.Trade adapter: fixture frames -> adapter rows -> lake Arrow tables.

Fixtures: ``tests/venues/powertrade/fixtures/<message>.json``, one JSON list of frames per message.
Provenance (JSON has no comments):

- Verbatim from the seed page (https://api-docs-5180b.web.app/docs/web-socket-api):
  heartbeat[0] and command_response[0] (the ``error parsing new order request`` example).
- heartbeat[1] is the older JSON schema's ``timestamp`` field (market-proxy-clients
  ``python/json-schema/common/heartbeat.json``, per shared/venues/004-powertrade.md).
- Every other Market Proxy frame is built from the field tables of 004-powertrade.md and the
  official clients' JSON schemas (``Power-Trade/market-proxy-clients/json-schema``): the docs
  give field lists, not example payloads. Values are invented but typed as documented (all
  strings). Deliberate variants: snapshot[1] uses the schema's ``ordered`` spelling of a
  level's order id, snapshot[2] and order_added[2] are multi-leg RFQs, order_added[3] uses
  market_id "255" and an undeclared ``display_order_id`` (-> extra), snapshot[2] an
  undeclared level member ``firm`` (-> the level's extra), order_accepted[1] an empty price,
  the *_response / bulk / balances frames use both candidate message keys.
- Feeds frames and the REST summary are built from the field lists in the notes (the Feeds
  page's examples were not retrieved): feed_top_of_book[1] sends JSON numbers instead of
  strings, [2] is the ``rte_`` variant with a ``none`` side and an extra decimal field;
  feed_last_trade_price[1] names an entity the summary does not know.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest

from recorder.actions import Fetch, Open, Send, Stop
from recorder.collect import redact
from recorder.errors import ConfigError, MissingSecret
from recorder.lake import _Buffer, to_arrow
from recorder.rows import Row
from recorder.schema import SESSION_EVENTS, UNHANDLED, Table
from recorder.venues.powertrade import tables as T
from recorder.venues.powertrade.adapter import (
    FEEDS,
    PROXY,
    REST,
    JwtSigner,
    PowerTradeAdapter,
    make_adapter,
)
from tests.venues.powertrade.e2e import check_row

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TS_RECV = 1_670_144_020_123_456_789
PROXY_TYPES = {
    "heartbeat": T.HEARTBEAT, "command_response": T.COMMAND_RESPONSE,
    "entities_and_rules_response": T.ENTITIES_AND_RULES, "snapshot": T.SNAPSHOT,
    "order_added": T.ORDER_ADDED, "order_deleted": T.ORDER_DELETED,
    "order_updated": T.ORDER_UPDATED, "order_executed": T.ORDER_EXECUTED, "trade": T.TRADE,
    "order_accepted": T.ORDER_ACCEPTED, "order_rejected": T.ORDER_REJECTED,
    "execution": T.EXECUTION_T, "cancel_order": T.CANCEL_ORDER,
    "cancel_all_orders": T.CANCEL_ALL_ORDERS, "refresh_interest": T.REFRESH_INTEREST,
    "positions_response": T.POSITIONS, "balances_response": T.BALANCES,
    "trade_history_response": T.TRADE_HISTORY, "new_bulk_order_response": T.BULK_ORDER,
}
# `legs` as order_accepted sends them is read into the typed legs column (_legs).
ADAPTER_KEYS = frozenset({"_rfq", "_legs", "_request_type", "_request", "_matched", "_field",
                          "legs"})


def pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption()).decode()


PEM = pem()


def load(name: str) -> list[Any]:
    frames = orjson.loads((FIXTURES / f"{name}.json").read_bytes())
    assert isinstance(frames, list) and frames
    return frames


def new_adapter(**options: Any) -> PowerTradeAdapter:
    opts = {"feeds_url": "ws://x/v1/feeds", "summary_url": "http://x/summary", **options}
    return make_adapter("powertrade", "ws://proxy", opts,
                        sim={"api_key": "k1", "api_secret": PEM}, clock=lambda: 1_670_144_000.5)


def arrow(table: Table, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    buf = _Buffer(rows=rows, ts=[TS_RECV] * len(rows), conn=["proxy"] * len(rows),
                  seq=list(range(1, len(rows) + 1)))
    t, bad = to_arrow(table, buf, "powertrade", "run-1")
    assert bad == [], bad
    assert t is not None and t.schema == table.arrow_schema
    cols = {n: c.cast(pa.int64()) if pa.types.is_timestamp(c.type) else c
            for n, c in zip(t.column_names, t.columns, strict=True)}
    return pa.table(cols).to_pylist()


def feed(ad: PowerTradeAdapter, frame: Any, conn: str = PROXY) -> tuple[list[Row], list[Any]]:
    rows, actions = ad.on_frame(conn, orjson.dumps(frame))
    return rows, list(actions)


def summary(ad: PowerTradeAdapter) -> tuple[list[Row], list[Any]]:
    body = orjson.dumps(load("rest_entity_summary")[0])
    rows, actions = ad.on_response(REST, "summary-1", 200, body)
    return rows, list(actions)


# --- every Market Proxy message type into exact typed rows ---------------------------------------

@pytest.mark.parametrize("name", sorted(PROXY_TYPES))
def test_every_proxy_fixture_becomes_typed_rows(name: str) -> None:
    table = PROXY_TYPES[name]
    ad = new_adapter()
    frames = load(name)
    bodies, rows = [], []
    for frame in frames:
        (key, body), = frame.items()
        got, _ = feed(ad, frame)
        mine = [r for t, r in got if t is table]
        assert len(mine) == 1, (name, got)
        assert not [t for t, _ in got if t is UNHANDLED]
        bodies.append(body)
        rows.append(mine[0])
    typed = arrow(table, rows)
    for body, row in zip(bodies, typed, strict=True):
        body = dict(body)
        if name == "heartbeat" and "timestamp" in body:
            body["server_utc_timestamp"] = body.pop("timestamp")
        if name == "snapshot":
            for lvl in body.get("buy", []) + body.get("sell", []):
                if "ordered" in lvl:
                    lvl["order_id"] = lvl.pop("ordered")
        check_row(table, body, row, ADAPTER_KEYS)
        assert row["venue"] == "powertrade" and row["ts_recv"] == TS_RECV
        if table.event_time:
            assert row["ts_event"] == (None if row[table.event_time] is None
                                       else row[table.event_time] * 1000)


def test_heartbeat_exact_values_both_spellings() -> None:
    ad = new_adapter()
    rows = [feed(ad, f)[0][0][1] for f in load("heartbeat")]
    got = arrow(T.HEARTBEAT, rows)
    assert [(r["server_utc_timestamp"], r["field"], r["ts_event"]) for r in got] == [
        (1670143999492414, "server_utc_timestamp", 1670143999492414000),
        (1670144004492611, "timestamp", 1670144004492611000)]


def test_snapshot_levels_keep_exact_text_and_split_rfq_legs() -> None:
    ad = new_adapter()
    rows = [feed(ad, f)[0][0][1] for f in load("snapshot")]
    firm, rfq, multi, _ = arrow(T.SNAPSHOT, rows)
    assert firm["rfq"] is False and firm["legs"] is None and firm["tradeable_entity_id"] == 4
    deep = firm["buy"][1]
    # float64 cannot hold 19 significant digits; the text column keeps them.
    assert deep["quantity"] == 1.1234567890123457
    assert deep["quantity_text"] == "1.123456789012345678"
    assert deep["order_id"] == "91013" and deep["utc_timestamp"] == dt.datetime(
        2022, 12, 4, 8, 53, 11, 2, tzinfo=dt.UTC)
    assert rfq["rfq"] is True and rfq["buy"][0]["order_id"] == "77001"  # from "ordered"
    assert [(lg["symbol"], lg["ratio"], lg["ratio_text"], lg["tradeable_entity_id"])
            for lg in multi["legs"]] == [("BTC-20220902-17000P", 1.0, "1", None),
                                         ("BTC-20220902-18000C", -1.0, "-1", None)]
    assert orjson.loads(multi["sell"][0]["extra"]) == {"firm": "false"}


def test_rfq_order_added_multi_leg_and_alias_255() -> None:
    ad = new_adapter()
    rows = [feed(ad, f)[0][0][1] for f in load("order_added")]
    got = arrow(T.ORDER_ADDED, rows)
    assert [r["rfq"] for r in got] == [False, True, True, True, True]
    assert [(lg["symbol"], lg["ratio"]) for lg in got[2]["legs"]] == [
        ("ETH-20221230-1200C", 1.0), ("ETH-20221230-1400C", -1.0), ("ETH-20221230-1600C", 0.5)]
    assert got[0]["price"] == 16949.5 and got[0]["price_text"] == "16949.5"
    assert orjson.loads(got[3]["extra"]) == {"display_order_id": "D-1"}


def test_multi_leg_rfq_entities_are_typed_not_quarantined() -> None:
    """The venue's own examples (market-proxy-clients protocol/server.py): an RFQ book of
    market 255 whose entity is ``117@1/336@-1/1244@-1/1473@1`` once failed the integer
    column and landed in unhandled. The id stays whole as text; the legs carry the parts."""
    ad = new_adapter()
    snap = arrow(T.SNAPSHOT, [feed(ad, f)[0][0][1] for f in load("snapshot")])[-1]
    assert (snap["tradeable_entity_id"], snap["tradeable_entity_id_text"], snap["rfq"]) == (
        None, "117@1/336@-1/1244@-1/1473@1", True)
    assert [(lg["symbol"], lg["tradeable_entity_id"], lg["tradeable_entity_id_text"],
             lg["ratio"], lg["ratio_text"]) for lg in snap["legs"]] == [
        ("BTC-20220930-25000C", 117, "117", 1.0, "1"),
        ("BTC-20220930-26000C", 336, "336", -1.0, "-1"),
        ("BTC-20220930-22000P", 1244, "1244", -1.0, "-1"),
        ("BTC-20220930-23000P", 1473, "1473", 1.0, "1")]
    assert snap["ts_event"] == 1660727998458179000
    for name, table in (("order_added", T.ORDER_ADDED), ("order_deleted", T.ORDER_DELETED)):
        row = arrow(table, [feed(ad, f)[0][0][1] for f in load(name)])[-1]
        assert (row["tradeable_entity_id"], row["tradeable_entity_id_text"], row["market_id"],
                row["order_id"]) == (None, "2752@1/2771@1", "255", "29872771")
        assert [(lg["symbol"], lg["tradeable_entity_id"], lg["ratio"]) for lg in row["legs"]] == [
            ("ETH-20220902-1500P", 2752, 1.0), ("ETH-20220902-2000C", 2771, 1.0)]
    # a single entity keeps its integer, and its text
    first = arrow(T.ORDER_ADDED, [feed(ad, load("order_added")[0])[0][0][1]])[0]
    assert (first["tradeable_entity_id"], first["tradeable_entity_id_text"], first["legs"]) == (
        4, "4", None)


def test_own_order_accepted_on_a_multi_leg_entity() -> None:
    ad = new_adapter()
    got = arrow(T.ORDER_ACCEPTED, [feed(ad, f)[0][0][1] for f in load("order_accepted")])
    rfq, sent = got[2], got[3]
    assert (rfq["tradeable_entity_id"], rfq["tradeable_entity_id_text"], rfq["rfq"]) == (
        None, "2752@1/2771@1", True)
    assert [lg["tradeable_entity_id"] for lg in rfq["legs"]] == [2752, 2771]
    # legs[]{ratio, symbol, tradeable_entity_id} as the order-accepted JSON schema has them
    assert [(lg["symbol"], lg["tradeable_entity_id"], lg["ratio_text"], lg["extra"])
            for lg in sent["legs"]] == [("BTC-20220930-25000C", 117, "1", None),
                                        ("BTC-20220930-26000C", 336, "1",
                                         '{"side":"sell"}')]
    assert sent["extra"] is None and sent["rfq"] is False


def test_order_updated_keeps_old_and_new_ids() -> None:
    ad = new_adapter()
    got = arrow(T.ORDER_UPDATED, [feed(ad, f)[0][0][1] for f in load("order_updated")])
    assert [(r["old_order_id"], r["new_order_id"], r["order_id"]) for r in got] == [
        ("91020", "91031", None), ("5", "6", "5")]


def test_empty_price_is_null_but_its_text_is_kept() -> None:
    ad = new_adapter()
    got = arrow(T.ORDER_ACCEPTED, [feed(ad, f)[0][0][1] for f in load("order_accepted")])
    assert got[1]["price"] is None and got[1]["price_text"] == ""
    assert got[0]["type"] == "LIMIT" and got[0]["ts_event"] == 1670144005000050000


def test_a_value_that_is_not_a_number_is_quarantined_not_guessed() -> None:
    ad = new_adapter()
    rows, _ = feed(ad, {"trade": {"trade_id": "1", "price": "12,5", "quantity": "1"}})
    buf = _Buffer(rows=[rows[0][1]], ts=[TS_RECV], conn=["proxy"], seq=[1])
    t, bad = to_arrow(T.TRADE, buf, "powertrade", "run-1")
    assert t is None and len(bad) == 1 and "12,5" in str(rows[0][1]["price"])


def test_malformed_and_non_envelope_frames_are_unhandled() -> None:
    ad = new_adapter()
    cases = [b'{"heartbeat": {', b'[1,2]', b'{"a": {}, "b": {}}', b'{"trade": "x"}',
             b'{"brand_new": {"x": "1"}}']
    got = [ad.on_frame(PROXY, c)[0] for c in cases]
    assert [(r[0][0], r[0][1]["reason"], r[0][1]["msg_type"]) for r in got] == [
        (UNHANDLED, "malformed", None), (UNHANDLED, "unexpected_shape", None),
        (UNHANDLED, "unexpected_shape", None), (UNHANDLED, "unexpected_shape", "trade"),
        (UNHANDLED, "unknown_type", "brand_new")]


# --- requests, auth, matching ------------------------------------------------------------------

def sent(actions: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for a in actions:
        if isinstance(a, Send):
            (name, body), = orjson.loads(a.text).items()
            out.append((name, body))
    return out


def test_authenticate_carries_a_valid_es256_jwt_and_is_redacted_in_the_journal() -> None:
    import jwt
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    ad = new_adapter()
    actions = list(ad.on_connected(PROXY))
    assert len(actions) == 1 and actions[0].paced is False
    (name, body), = sent(actions)
    assert name == "authenticate" and body["user_tag"] == "authenticate-1"
    public = load_pem_private_key(PEM.encode(), None).public_key()
    claims = jwt.decode(body["credentials_secret"], public, algorithms=["ES256"],
                        options={"verify_exp": False, "verify_iat": False})
    assert claims["client"] == "api" and claims["sub"] == "k1" and claims["uri"] == "ws://proxy"
    assert (claims["iat"], claims["exp"]) == (1670143995, 1670144030)
    assert claims["nonce"] == 1670144000500000
    journaled = orjson.loads(redact(actions[0].text, actions[0].secret_keys))
    assert journaled == {"authenticate": {"credentials_secret": "***",
                                          "user_tag": "authenticate-1"}}
    # the nonce increases even when the clock does not move
    assert ad.signer is not None
    n1 = jwt.decode(ad.signer.token(), public, algorithms=["ES256"],
                    options={"verify_exp": False, "verify_iat": False})["nonce"]
    assert n1 == claims["nonce"] + 1


def auth_ok(ad: PowerTradeAdapter) -> list[Any]:
    ad.on_connected(PROXY)
    rows, actions = feed(ad, {"command_response": {"error_code": "0", "error_text": "ok",
                                                   "user_tag": "authenticate-1"}})
    assert ("auth_ok", "ok") in [(r["event"], r["reason"]) for t, r in rows
                                 if t is SESSION_EVENTS]
    return actions


def test_after_auth_rules_rfqs_subscriptions_and_account_requests_with_unique_tags() -> None:
    ad = new_adapter(symbols=["BTC-USD-PERPETUAL", "PTF-USD"],
                     subscribe_types=["snap_only", "snap_with_deltas"], intervals=[0, 500])
    reqs = sent(auth_ok(ad))
    names = [n for n, _ in reqs]
    assert names == ["entities_and_rules_request", "register_for_rfqs"] + ["subscribe"] * 8 + [
        "positions", "balances", "trade_history_request"]
    subs = [(b["symbol"], b["type"], b["interval"], b["market_id"]) for n, b in reqs
            if n == "subscribe"]
    assert subs[:4] == [("BTC-USD-PERPETUAL", "snap_only", "0", "0"),
                        ("BTC-USD-PERPETUAL", "snap_only", "500", "0"),
                        ("BTC-USD-PERPETUAL", "snap_with_deltas", "0", "0"),
                        ("BTC-USD-PERPETUAL", "snap_with_deltas", "500", "0")]
    tags = [b["user_tag"] for _, b in reqs] + ["authenticate-1"]
    assert len(set(tags)) == len(tags) and set(ad.pending) == set(tags[:-1])


def test_symbols_all_subscribes_every_entity_from_the_rules_response() -> None:
    ad = new_adapter()
    reqs = sent(auth_ok(ad))
    assert [n for n, _ in reqs][:2] == ["entities_and_rules_request", "register_for_rfqs"]
    assert "subscribe" not in [n for n, _ in reqs]
    frame = load("entities_and_rules_response")[0]
    frame["entities_and_rules_response"]["user_tag"] = reqs[0][1]["user_tag"]
    rows, actions = feed(ad, frame)
    assert rows[0][1]["_request_type"] == "entities_and_rules_request"
    assert [b["symbol"] for _, b in sent(actions)] == [
        "BTC-USD-PERPETUAL", "BTC-20220902-17000P", "PTF-USD"]
    # a second, unsolicited copy does not subscribe again
    assert feed(ad, frame)[1] == []


def test_out_of_order_responses_are_matched_by_user_tag() -> None:
    ad = new_adapter(symbols=["A", "B", "C"], account=False)
    reqs = sent(auth_ok(ad))
    order = list(reversed(reqs))
    random.Random(5).shuffle(order)
    matched = []
    for name, body in order:
        code = "13" if body.get("symbol") == "B" else "0"
        rows, _ = feed(ad, {"command_response": {"error_code": code, "error_text": "t",
                                                 "user_tag": body["user_tag"]}})
        row = arrow(T.COMMAND_RESPONSE, [r for t, r in rows if t is T.COMMAND_RESPONSE])[0]
        assert row["matched"] is True and row["request_type"] == name
        assert orjson.loads(row["request"]) == body  # the very request, not its neighbour
        matched.append(row["user_tag"])
        ev = [r for t, r in rows if t is SESSION_EVENTS]
        if name == "subscribe" and code == "0":
            assert [(e["event"], e["channel"]) for e in ev] == [
                ("subscribed", f"{body['symbol']}/snap_with_deltas/0")]
        elif name == "register_for_rfqs":
            assert [(e["event"], e["channel"]) for e in ev] == [("subscribed", "rfqs")]
        elif code == "13":
            (e,) = ev
            assert (e["event"], e["code"], e["channel"]) == ("error", "13", "B/snap_with_deltas/0")
            detail = orjson.loads(e["detail"])
            assert detail["request"] == body and detail["request_type"] == "subscribe"
    assert sorted(matched) == sorted(b["user_tag"] for _, b in reqs)
    assert ad.pending == {}
    # an unknown tag is kept, unmatched, and its error still reaches session_events
    rows, _ = feed(ad, load("command_response")[0])
    assert rows[0][1]["_matched"] is False
    assert [(r["event"], r["code"]) for t, r in rows if t is SESSION_EVENTS] == [("error", "12")]


def test_refused_credentials_stop_the_proxy_connection() -> None:
    ad = new_adapter()
    ad.on_connected(PROXY)
    rows, actions = feed(ad, {"command_response": {"error_code": "2", "error_text": "bad jwt",
                                                   "user_tag": "authenticate-1"}})
    assert [(r["event"], r["code"]) for t, r in rows if t is SESSION_EVENTS] == [
        ("auth_failed", "2")]
    assert actions == [Stop(PROXY, "credentials refused: error_code 2")]


def test_reconnect_forgets_pending_requests() -> None:
    ad = new_adapter()
    auth_ok(ad)
    assert ad.pending
    ad.on_disconnected(PROXY)
    assert ad.pending == {}
    (name, body), = sent(list(ad.on_connected(PROXY)))
    assert name == "authenticate" and body["user_tag"] != "authenticate-1"


def _leaves(obj: Any) -> list[Any]:
    if isinstance(obj, dict):
        return [x for v in obj.values() for x in _leaves(v)]
    if isinstance(obj, list):
        return [x for v in obj for x in _leaves(v)]
    return [obj]


def test_property_no_request_frame_ever_carries_a_non_string_value() -> None:
    """Random configs and random venue replies; every request frame built is all strings."""
    rng = random.Random(20240604)
    alphabet = "ABCXYZ-0123456789@/._ é"
    for _ in range(300):
        sym = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 20)))
               for _ in range(rng.randint(1, 4))]
        opts: dict[str, Any] = {
            "symbols": rng.choice(["all", sym]),
            "subscribe_types": rng.sample(["snap_only", "snap_with_deltas",
                                           "snap_full_updates"], rng.randint(1, 3)),
            "intervals": [rng.randint(0, 3_600_000) for _ in range(rng.randint(1, 3))],
            "market_id": rng.choice(["0", "none", "2"]),
            "rfqs": rng.random() < 0.5, "account": rng.random() < 0.5}
        ad = new_adapter(**opts)
        frames: list[str] = [a.text for a in ad.on_connected(PROXY) if isinstance(a, Send)]
        for tag in list(ad.pending):
            reply: dict[str, Any] = {"command_response": {
                "error_code": rng.choice(["0", "0", "5", 0, None]), "user_tag": tag}}
            frames += [a.text for a in feed(ad, reply)[1] if isinstance(a, Send)]
        for tag in [t for t in ad.pending if t.startswith("entities")]:
            syms = [{"symbol": rng.choice([s, 7, 1.5, True, None]),
                     "tradeable_entity_id": rng.randint(0, 99)} for s in sym]
            frames += [a.text for a in feed(ad, {"entities_and_rules_response": {
                "user_tag": tag, "symbols": syms}})[1] if isinstance(a, Send)]
        assert frames
        for text in frames:
            env = orjson.loads(text)
            assert type(env) is dict and len(env) == 1 and type(next(iter(env.values()))) is dict
            bad = [v for v in _leaves(env) if type(v) is not str]
            assert bad == [], (text, bad)


# --- Feeds and the REST summary ----------------------------------------------------------------

def test_summary_rows_and_the_feeds_socket_opens_after_it() -> None:
    ad = new_adapter(feed_types=["top_of_book", "reference_price"])
    (fetch,) = ad.on_start()
    assert isinstance(fetch, Fetch) and (fetch.conn, fetch.url, fetch.tag) == (
        REST, "http://x/summary", "summary-1")
    rows, actions = summary(ad)
    assert actions == [Open(ad.feeds_spec())]
    assert ad.feeds_spec().url == "ws://x/v1/feeds?type[]=top_of_book&type[]=reference_price"
    got = arrow(T.ENTITY_SUMMARY, [r for _, r in rows])
    assert [(r["id"], r["symbol"], r["price_decimal_places"], r["quantity_decimal_places"])
            for r in got] == [(4, "BTC-USD-PERPETUAL", 1, 3), (46, "PTF-USD", 4, 0),
                              (1023, "BTC-20220902-17000P", 2, 2)]
    assert got[0]["tags"] == ["BTC", "future", "perpetual"] and got[0]["fetch_tag"] == "summary-1"
    assert orjson.loads(got[2]["extra"]) == {"open_interest": "12"}
    # the second answer (a reconnect's refresh) does not open the socket twice
    assert summary(ad)[1] == []
    # a feeds reconnect asks for the summary again
    assert ad.on_connected(FEEDS) == ()
    (again,) = ad.on_connected(FEEDS)
    assert isinstance(again, Fetch) and again.tag == "summary-2"


def test_summary_failure_is_recorded_retried_and_feeds_still_open() -> None:
    ad = new_adapter()
    rows, actions = ad.on_response(REST, "summary-1", 503, b"busy")
    assert [(r["event"], r["code"], r["channel"]) for _, r in rows] == [
        ("error", "503", "summary")]
    assert isinstance(actions[0], Fetch) and actions[0].delay == 10.0
    assert isinstance(actions[1], Open)


def feed_rows(name: str) -> tuple[Table, list[dict[str, Any]], list[list[Any]]]:
    ad = new_adapter()
    summary(ad)
    table = {"feed_top_of_book": T.FEED_TOP_OF_BOOK,
             "feed_reference_price": T.FEED_REFERENCE_PRICE,
             "feed_last_trade_price": T.FEED_LAST_TRADE_PRICE}[name]
    rows, acts = [], []
    for frame in load(name):
        got, actions = feed(ad, frame, FEEDS)
        assert [t for t, _ in got] == [table]
        rows.append(got[0][1])
        acts.append(actions)
    return table, arrow(table, rows), acts


def test_top_of_book_integers_scaled_by_the_summary_decimals() -> None:
    table, got, _ = feed_rows("feed_top_of_book")
    for frame, row in zip(load("feed_top_of_book"), got, strict=True):
        (_, body), = frame.items()
        check_row(table, body, row)
    assert [(r["symbol"], r["buy_price"], r["buy_quantity"], r["sell_price"],
             r["sell_quantity"], r["rte"]) for r in got] == [
        ("BTC-USD-PERPETUAL", 16950.5, 0.25, 16951.0, 0.5, False),
        ("PTF-USD", 0.1234, 1500.0, 0.124, 2.0, False),
        ("BTC-USD-PERPETUAL", 16950.0, 1.0, None, 0.0, True)]
    assert [r["buy_price_raw"] for r in got] == [169505, 1234, 169500]
    assert got[2]["sell_price_raw"] is None
    assert orjson.loads(got[2]["extra"]) == {"buy_price_decimal": "16950.0"}
    # ns stay ns; µs become ns
    assert [r["time_ns"] for r in got] == [1670144015000000123, 1670144015100000000,
                                           1670144015200000000]
    assert got[0]["ts_event"] == 1670144015000000123
    assert (got[0]["price_decimals"], got[0]["quantity_decimals"]) == (1, 3)


def test_reference_and_last_trade_price_and_an_unknown_entity_refetches_once() -> None:
    table, got, _ = feed_rows("feed_reference_price")
    assert [(r["symbol"], r["price"], r["price_type"], r["market_id"]) for r in got] == [
        ("BTC-USD-PERPETUAL", 16952.3, "index", "none"),
        ("BTC-20220902-17000P", 118.75, "mark", "none")]
    table, got, acts = feed_rows("feed_last_trade_price")
    assert (got[0]["price"], got[0]["price_raw"]) == (16950.5, 169505)
    # entity 999 is not in the summary: raw kept, price unknown, one refetch
    assert (got[1]["price"], got[1]["price_raw"], got[1]["symbol"]) == (None, 42, None)
    assert acts[0] == [] and len(acts[1]) == 1 and isinstance(acts[1][0], Fetch)


# --- configuration ----------------------------------------------------------------------------

def test_config_errors_name_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    cases = [({"symbolz": "all"}, "unknown setting"), ({"symbols": []}, "symbols"),
             ({"subscribe_types": ["snap_forever"]}, "subscribe_types"),
             ({"intervals": ["5"]}, "intervals"), ({"rfqs": "yes"}, "rfqs"),
             ({"market_id": 0}, "market_id")]
    for opts, key in cases:
        with pytest.raises(ConfigError, match=key):
            new_adapter(**opts)
    with pytest.raises(ConfigError, match="api_key_env and api_secret_env"):
        make_adapter("powertrade", "ws://p", {})
    monkeypatch.delenv("PT_KEY_X", raising=False)
    with pytest.raises(MissingSecret, match="PT_KEY_X"):
        make_adapter("powertrade", "ws://p", {"api_key_env": "PT_KEY_X",
                                              "api_secret_env": "PT_SECRET_X"})
    monkeypatch.setenv("PT_KEY_X", "k")
    monkeypatch.setenv("PT_SECRET_X", "not a pem")
    with pytest.raises(ConfigError, match="PEM"):
        make_adapter("powertrade", "ws://p", {"api_key_env": "PT_KEY_X",
                                              "api_secret_env": "PT_SECRET_X"})
    # an env var with literal \n (a .env file) is accepted
    monkeypatch.setenv("PT_SECRET_X", PEM.replace("\n", "\\n"))
    ad = make_adapter("powertrade", "ws://p", {"api_key_env": "PT_KEY_X",
                                               "api_secret_env": "PT_SECRET_X"})
    assert isinstance(ad.signer, JwtSigner) and ad.signer.api_key == "k"


def test_offline_adapter_needs_nothing_and_reads_frames() -> None:
    ad = make_adapter("powertrade", None, {}, offline=True)
    rows, _ = ad.on_frame(PROXY, orjson.dumps(load("trade")[0]))
    assert rows[0][0] is T.TRADE


def test_offline_matching_learns_requests_from_the_journaled_copies() -> None:
    """On rebuild the adapter has no config: it matches answers to the requests the journal
    says were sent (redacted), not to requests it would build itself."""
    ad = make_adapter("powertrade", None, {}, offline=True)
    assert ad.on_connected(PROXY) and ad.pending == {}
    ad.on_sent(PROXY, b'{"authenticate":{"credentials_secret":"***","user_tag":"authenticate-1"}}')
    ad.on_sent(REST, b'{"http":"GET","url":"http://x","tag":"summary-1"}')  # not a request
    rows, actions = feed(ad, {"command_response": {"error_code": "0", "error_text": "ok",
                                                   "user_tag": "authenticate-1"}})
    assert rows[0][1]["_request_type"] == "authenticate" and rows[0][1]["_matched"] is True
    assert orjson.loads(rows[0][1]["_request"])["credentials_secret"] == "***"
    ad.on_sent(PROXY, b'{"subscribe":{"market_id":"0","symbol":"X","type":"snap_only",'
                      b'"interval":"0","user_tag":"subscribe-9"}}')
    rows, _ = feed(ad, {"command_response": {"error_code": "13", "error_text": "unknown symbol",
                                             "user_tag": "subscribe-9"}})
    (ev,) = [r for t, r in rows if t is SESSION_EVENTS]
    assert (ev["event"], ev["channel"]) == ("error", "X/snap_only/0")
    # a late journal copy of an answered request does not come back as pending
    ad.on_sent(PROXY, b'{"subscribe":{"user_tag":"subscribe-9"}}')
    assert "subscribe-9" not in ad.pending
