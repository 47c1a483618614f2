"""Golden tests for the Totalis adapter: fixture events -> adapter rows -> lake Arrow tables.

Fixtures: ``tests/venues/totalis/fixtures/<table>.json``, one JSON list per event type: SSE payloads
(the ``data:`` of an event; the test wraps each in an SSE block) or whole WebSocket frames.
JSON has no comments, so their provenance is written here.

Verbatim from the docs source (github.com/totalistrading/docs, read 2026; notes
``shared/venues/000-totalis.md``):
- api-reference/quote-service-mm/stream.mdx: connected[0], snapshot_begin[0],
  snapshot_complete[0] and [1] (the transcript), quote_request[0] and [1] (the transcript),
  quote_request_updated[0] (the transcript's copy: the field example elides the legs as
  ``["..."]``), quote_request_expired[0], cashout_request[0];
- api-reference/quote-service/stream.mdx: qr_best_quote[0..3], qr_status[0], qr_committed,
  qr_cancelled, qr_expired;
- api-reference/quote-service/cashout-stream.mdx: cashout_best_quote[0] and [1],
  cashout_status[0];
- guides/websocket.mdx: auth_success[0], auth_error[0], pong[0], mm_quote_accepted[0] (its
  ``data``).

Built from the field tables of those pages (values invented, types as documented):
connected[1] (the older "mm-uuid-1234" id), quote_request[2] (Polymarket leg, the
``current_*_price`` leg fields and ``implied_probability``, plus an undocumented leg field
``title`` that must reach ``extra``), quote_request_updated[1], quote_request_expired[1..4]
(``won`` true, absent, and the other reasons), cashout_request[1], cashout_best_quote[2]
(without the optional ``net_received``), the other statuses, and every quote:*/position:*
frame except mm_quote_accepted[0]: the docs give only their ``data`` field lists.
position_created[1] sends ``timestamp`` as epoch ms (its format is undocumented),
quote_accepted[1] an ISO time with an offset and an envelope ``channel`` (undocumented),
position_settled[1] the ``quote_id`` added in 2026-05. ws_error is our simulator's shape for a
refused message; the docs define none.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest

from recorder.actions import ConnSpec, Open, Send, Stop
from recorder.errors import ConfigError, MissingSecret
from recorder.journal import KIND_IN, KIND_META
from recorder.lake import _Buffer, to_arrow
from recorder.normalize import Normalizer, meta
from recorder.rows import Row
from recorder.schema import SESSION_EVENTS, UNHANDLED, Table
from recorder.venues import CATALOGUE
from recorder.venues.totalis import tables as T
from recorder.venues.totalis.adapter import TotalisAdapter, iso_ns, make_adapter

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BASE = "https://api.totalis.trade"
KEY = "api_live_test_key"
TS_RECV = 1_780_660_800_123_456_789
SSE_EVENTS = {  # fixture (table) -> (stream prefix, SSE event name)
    "connected": ("mm", "connected"), "snapshot_begin": ("mm", "snapshot_begin"),
    "snapshot_complete": ("mm", "snapshot_complete"), "quote_request": ("mm", "quote_request"),
    "quote_request_updated": ("mm", "quote_request:updated"),
    "quote_request_expired": ("mm", "quote_request_expired"),
    "cashout_request": ("mm", "cashout_request"),
    "qr_best_quote": ("qr", "best_quote"), "qr_status": ("qr", "status"),
    "qr_committed": ("qr", "committed"), "qr_cancelled": ("qr", "cancelled"),
    "qr_expired": ("qr", "expired"), "cashout_best_quote": ("co", "best_quote"),
    "cashout_status": ("co", "status"),
}
WS_TYPES = ("auth_success", "auth_error", "pong", "ws_error", "quote_accepted",
            "mm_quote_accepted", "quote_confirmed", "quote_executed", "quote_expired",
            "quote_rejected", "quote_withdrawn", "position_created", "position_settled",
            "position_cancelled", "position_error", "position_failed", "position_bought_back",
            "vault_deposited", "vault_withdrawn", "rfq_status", "rfq_cancelled", "rfq_expired",
            "rfq_created", "quote_submitted")
QR_ID = "1a6d1f06-9d4f-47cb-994b-3bdfbbef7e40"
CO_ID = "c3d4e5f6-7890-abcd-ef12-34567890abcd"
RFQ = "c3d4e5f6-7890-abcd-ef12-34567890abcd"


def load(name: str) -> list[dict[str, Any]]:
    frames = orjson.loads((FIXTURES / f"{name}.json").read_bytes())
    assert isinstance(frames, list) and frames and all(type(f) is dict for f in frames)
    return frames


def new(**options: Any) -> TotalisAdapter:
    return make_adapter("totalis", BASE, options, sim={"api_key": KEY})


def block(event: str, payload: Any, ev_id: str | None = None) -> bytes:
    head = f"id: {ev_id}\n" if ev_id is not None else ""
    data = payload if isinstance(payload, str) else orjson.dumps(payload).decode()
    return f"{head}event: {event}\ndata: {data}\n\n".encode()


def conn_for(prefix: str) -> str:
    return {"mm": "mm", "qr": f"qr:{QR_ID}", "co": f"co:{CO_ID}"}[prefix]


def sse(ad: TotalisAdapter, conn: str, event: str, payload: Any,
        ev_id: str | None = None) -> tuple[list[Row], list[Any]]:
    rows, actions = ad.on_frame(conn, block(event, payload, ev_id))
    return rows, list(actions)


def ws(ad: TotalisAdapter, frame: dict[str, Any] | bytes) -> tuple[list[Row], list[Any]]:
    data = frame if isinstance(frame, bytes) else orjson.dumps(frame)
    rows, actions = ad.on_frame("ws", data)
    return rows, list(actions)


def arrow(table: Table, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    buf = _Buffer(list(rows), [TS_RECV] * len(rows), ["c"] * len(rows), list(range(len(rows))))
    t, bad = to_arrow(table, buf, "totalis", "run-1")
    assert bad == [] and t is not None
    cols = {n: c.cast(ints(c.type)) for n, c in zip(t.column_names, t.columns, strict=True)}
    return pa.table(cols).to_pylist()


def ints(t: pa.DataType) -> pa.DataType:
    """The type with every timestamp, nested ones too, as int64 ns (datetime drops ns)."""
    if pa.types.is_timestamp(t):
        return pa.int64()
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, ints(f.type)) for f in t])
    if pa.types.is_list(t):
        return pa.list_(ints(t.value_type))
    return t


def iso(s: str) -> int:
    """Independent of the adapter: the stdlib parser for the seconds, the fraction by hand
    (the stdlib keeps only microseconds)."""
    head, _, frac = s.rstrip("Z").partition(".")
    digits = frac[:len(frac) - len(frac.lstrip("0123456789"))]
    zone = frac[len(digits):] or ("+00:00" if s.endswith("Z") or "+" not in s else "")
    d = dt.datetime.fromisoformat(head + zone)
    return calendar.timegm(d.utctimetuple()) * 10**9 + int(digits.ljust(9, "0")[:9] or 0)


def expect(t: pa.DataType, v: Any) -> Any:
    """A fixture value as the lake must hold it (timestamps as int ns)."""
    if v is None:
        return None
    if pa.types.is_timestamp(t):
        return iso(v) if isinstance(v, str) else v * 10**6  # epoch ms in the fixtures
    if pa.types.is_struct(t):
        return {f.name: expect(f.type, v.get(f.name)) for f in t}
    if pa.types.is_list(t):
        return [expect(t.value_type, x) for x in v]
    if pa.types.is_floating(t):
        return float(v)
    if pa.types.is_string(t) and not isinstance(v, str):
        return str(v)
    return v


def check_fields(table: Table, payload: dict[str, Any], row: dict[str, Any]) -> None:
    for col in table.columns:
        if col.key in payload:
            assert row[col.name] == expect(col.type, payload[col.key]), (table.name, col.name)


# --- every fixture, every field -----------------------------------------------------------------

@pytest.mark.parametrize("name", list(SSE_EVENTS))
def test_sse_fixture_rows(name: str) -> None:
    prefix, event = SSE_EVENTS[name]
    table = CATALOGUE.tables[f"totalis_{name}"]
    payloads = load(name)
    rows: list[dict[str, Any]] = []
    for i, p in enumerate(payloads):
        ad = new(request_streams=False, cashout_streams=False)
        got, _ = sse(ad, conn_for(prefix), event, p, f"1789161257595-{i}")
        typed = [r for t, r in got if t is table]
        assert len(typed) == 1, got
        rows.append(typed[0])
    lake = arrow(table, rows)
    for i, (p, row) in enumerate(zip(payloads, lake, strict=True)):
        check_fields(table, p, row)
        assert row["sse_id"] == f"1789161257595-{i}"
        assert row["ts_recv"] == TS_RECV and row["venue"] == "totalis"
        if prefix == "qr" and "quote_request_id" not in p:
            assert row["quote_request_id"] == QR_ID  # from the stream it came on
        if prefix == "co":
            assert row["cashout_request_id"] == CO_ID
        if name == "quote_request" and i == 2:
            assert orjson.loads(row["extra"]) == {"legs[2].title": "Fed holds in June"}
        else:
            assert row["extra"] is None, (name, i, row["extra"])
    # every declared column that some fixture of this type sends is exercised
    sent = {k for p in payloads for k in p}
    assert {c.key for c in table.columns if not c.key.startswith("_") and c.name != "extra"
            } <= sent, name


@pytest.mark.parametrize("name", WS_TYPES)
def test_ws_fixture_rows(name: str) -> None:
    table = CATALOGUE.tables[f"totalis_{name}"]
    frames = load(name)
    rows = []
    for f in frames:
        got, _ = ws(new(), f)
        typed = [r for t, r in got if t is table]
        assert len(typed) == 1, got
        rows.append(typed[0])
    lake = arrow(table, rows)
    for f, row in zip(frames, lake, strict=True):
        payload = f.get("data", {k: v for k, v in f.items() if k != "type"})
        check_fields(table, payload, row)
        if "channel" in f:
            assert row["channel"] == f["channel"]
        elif any(c.name == "channel" for c in table.columns):
            assert row["channel"] is None
        assert row["extra"] is None
    sent = {k for f in frames for k in f.get("data", f)} - {"type"}
    assert {c.key for c in table.columns if not c.key.startswith("_") and c.name != "extra"
            } <= sent, name


def test_every_table_has_fixtures() -> None:
    names = {t.name.removeprefix("totalis_") for t in T.TABLES}
    assert names == set(SSE_EVENTS) | set(WS_TYPES)
    # the WebSocket page's 11 quote/position events, the catalog's position:failed and
    # position:bought_back, and the legacy quote:submitted
    assert len([n for n in WS_TYPES if n.split("_")[0] in ("quote", "mm", "position")]) == 14


# --- exact rows --------------------------------------------------------------------------------

def test_quote_request_exact_row_and_ts() -> None:
    ad = new(request_streams=False)
    p = load("quote_request")[2]
    rows, _ = sse(ad, "mm", "snapshot_begin", {"page_size": 500}, "s1")
    rows, _ = sse(ad, "mm", "quote_request", p, "s2")
    assert [t for t, _ in rows] == [T.QUOTE_REQUEST]
    row = arrow(T.QUOTE_REQUEST, [rows[0][1]])[0]
    assert row == {
        "ts_recv": TS_RECV, "ts_event": None, "venue": "totalis", "run_id": "run-1",
        "conn_id": "c", "recv_seq": 0, "recv_sub": 0,
        "quote_request_id": "5b0e7a52-0c8e-4f0e-9a51-0d2b8f3c6e11",
        "user_id": "did:privy:cm7pol...",
        "input_legs": [
            {"market_ticker": "0x4c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b",
             "side": "yes", "venue": "polymarket"},
            {"market_ticker": "KXNBA-26JUN04-BOS", "side": "yes", "venue": "kalshi"},
            {"market_ticker": "KXFED-26JUN17-H0", "side": "no", "venue": "kalshi"}],
        "legs": [
            {"id": "0e1d2c3b-4a59-6877-8695-a4b3c2d1e0f9",
             "event_ticker": "will-bitcoin-hit-100k-in-june",
             "market_ticker": "0x4c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b",
             "side": "yes", "venue": "polymarket", "current_yes_price": 0.41,
             "current_no_price": 0.59},
            {"id": "1f2e3d4c-5b6a-7988-a7b6-c5d4e3f2a1b0", "event_ticker": "KXNBA-26JUN04",
             "market_ticker": "KXNBA-26JUN04-BOS", "side": "yes", "venue": "kalshi",
             "current_yes_price": 0.62, "current_no_price": 0.38},
            {"id": "2a3b4c5d-6e7f-8091-a2b3-c4d5e6f7a8b9", "event_ticker": "KXFED-26JUN17",
             "market_ticker": "KXFED-26JUN17-H0", "side": "no", "venue": "kalshi",
             "current_yes_price": 0.9, "current_no_price": 0.1}],
        "bet_amount": 100.0, "user_stake": 99.0, "implied_probability": 0.02542, "version": 4,
        "request_hash": "sha256:0d3e7c1b5a...",
        # nine fraction digits, kept to the nanosecond
        "expires_at": 1_780_339_530_123_456_789,
        "in_snapshot": True, "sse_id": "s2",
        "extra": '{"legs[2].title":"Fed holds in June"}',
    }


def test_mm_quote_accepted_exact_row_with_nested_quote_and_exposure_legs() -> None:
    rows, _ = ws(new(), load("mm_quote_accepted")[0])
    row = arrow(T.MM_QUOTE_ACCEPTED, [rows[0][1]])[0]
    t0 = 1_780_660_800_000_000_000  # 2026-06-05T12:00:00Z
    assert row == {
        "ts_recv": TS_RECV, "ts_event": t0, "venue": "totalis", "run_id": "run-1",
        "conn_id": "c", "recv_seq": 0, "recv_sub": 0,
        "rfq_id": RFQ, "quote_id": "d4e5f6a7-8901-bcde-f234-567890abcdef",
        "market_maker_id": "did:privy:mm", "user_id": "did:privy:user",
        "source": "quote_request_commit", "quote_request_id": QR_ID,
        "draft_quote_id": "b2c3d4e5-6789-0abc-def1-234567890abc", "request_version": 3,
        "request_hash": "sha256:...", "confirmation_deadline": t0 + 5 * 10**9,
        "accepted_at": t0,
        "quote": {"payout_odds": 7.08, "user_cost": 50.0, "total_payout": 354.0,
                  "mm_cost": 304.0, "valid_until": t0 + 10 * 10**9},
        "exposure_legs": [{"venue": "kalshi", "event_ticker": "KXCAR",
                           "market_ticker": "KXCAR-YES", "side": "yes"}],
        "channel": None, "extra": None,
    }


def test_won_absent_is_null_not_false() -> None:
    rows = [sse(new(), "mm", "quote_request_expired", p, "x")[0][0][1]
            for p in load("quote_request_expired")]
    lake = arrow(T.QUOTE_REQUEST_EXPIRED, rows)
    assert [(r["reason"], r["won"]) for r in lake] == [
        ("committed", False), ("committed", True), ("committed", None), ("cancelled", False),
        ("expired", False)]


def test_position_times_iso_and_epoch_ms_and_ts_event() -> None:
    rows = [ws(new(), f)[0][0][1] for f in load("position_created")]
    lake = arrow(T.POSITION_CREATED, rows)
    assert [r["timestamp"] for r in lake] == [1_780_660_807_250_000_000,
                                             1_780_660_867_250_000_000]
    assert [r["ts_event"] for r in lake] == [r["timestamp"] for r in lake]
    # an offset is honoured
    assert iso_ns("2026-06-05T14:00:05.5+02:00") == 1_780_660_805_500_000_000
    assert iso_ns("2026-06-05 12:00:05") == 1_780_660_805 * 10**9  # no zone: UTC
    assert iso_ns("yesterday") == "yesterday" and iso_ns(None) is None


def test_unparseable_time_goes_to_unhandled_as_bad_value() -> None:
    rows, _ = ws(new(), {"type": "position:created", "data": {
        "rfq_id": RFQ, "position_pda": "x", "timestamp": "June 5th"}})
    buf = _Buffer([rows[0][1]], [TS_RECV], ["ws"], [1])
    t, bad = to_arrow(T.POSITION_CREATED, buf, "totalis", "r")
    assert t is None and len(bad) == 1


# --- SSE semantics in the adapter --------------------------------------------------------------

def test_sse_id_is_the_standards_last_event_id_per_connection() -> None:
    ad = new(request_streams=False)
    r1, _ = sse(ad, "mm", "quote_request_expired", {"id": "a", "reason": "expired"}, "7")
    r2, _ = sse(ad, "mm", "quote_request_expired", {"id": "b", "reason": "expired"})
    r3, _ = sse(ad, f"qr:{QR_ID}", "expired", {"quote_request_id": QR_ID})
    r4, _ = ad.on_frame("mm", b"id\n\n")  # explicit reset, no event
    r5, _ = sse(ad, "mm", "quote_request_expired", {"id": "c", "reason": "expired"})
    assert [r[0][1]["_sse_id"] for r in (r1, r2, r3)] == ["7", "7", None]
    assert r4 == [] and r5[0][1]["_sse_id"] is None


def test_retry_and_id_only_blocks_and_junk() -> None:
    ad = new()
    rows, _ = ad.on_frame("mm", b"retry: 3000\n\n")
    assert rows == [(SESSION_EVENTS, {"event": "retry_hint", "retry_after_s": 3.0,
                                      "reason": "SSE retry field: reconnection time"})]
    assert ad.on_frame("mm", b"retry: 3000\nid: 5\n\n")[0] == []  # same hint: no new row
    assert ad.on_frame("mm", b"foo: bar\n\n")[0][0][1]["reason"] == "unexpected_shape"
    rows, _ = ad.on_frame("mm", block("quote_request:deleted", {"id": "x"}, "6"))
    assert rows[0][0] is UNHANDLED and rows[0][1]["msg_type"] == "quote_request:deleted"
    rows, _ = ad.on_frame("mm", block("quote_request", '{"id": ', "7"))
    assert rows[0][1]["reason"] == "malformed"
    rows, _ = ad.on_frame("mm", block("quote_request", "[1,2]", "8"))
    assert rows[0][1]["reason"] == "unexpected_shape"
    rows, _ = ad.on_frame("mm", block("quote_request", {"id": 5, "legs": 7}, "9"))
    assert rows[0][0] is T.QUOTE_REQUEST  # types are checked by the lake (bad_value)
    # user stream events on the MM stream are unknown there
    rows, _ = ad.on_frame("mm", block("best_quote", {"book_seq": 1}, "10"))
    assert rows[0][0] is UNHANDLED and rows[0][1]["reason"] == "unknown_type"


def test_book_seq_gap_is_a_session_event() -> None:
    ad = new()
    conn = f"qr:{QR_ID}"
    seqs = [(1, []), (2, []), (5, [(3, 5)]), (5, []), (4, []), (6, [])]
    for seq, gaps in seqs:
        rows, _ = sse(ad, conn, "best_quote", {"book_seq": seq, "version": 1,
                                               "request_hash": "h", "best_quote": None})
        got = [(r["expected"], r["received"]) for t, r in rows if t is SESSION_EVENTS]
        assert got == gaps, seq
    rows, _ = sse(ad, f"co:{CO_ID}", "best_quote", {"book_seq": 9, "version": 1,
                                                    "best_quote": None})
    assert [t for t, _ in rows] == [T.CASHOUT_BEST_QUOTE]  # per stream: no gap on first
    rows, _ = sse(ad, f"co:{CO_ID}", "best_quote", {"book_seq": 11, "version": 1,
                                                    "best_quote": None})
    assert rows[1][1] == {"event": "gap", "channel": f"co:{CO_ID}", "expected": 10,
                          "received": 11, "reason": "book_seq jumped"}


def test_quote_and_cashout_requests_open_their_streams_once() -> None:
    ad = new()
    p = load("quote_request")[0]
    _, actions = sse(ad, "mm", "quote_request", p, "1")
    assert actions == [Open(ConnSpec(
        f"qr:{QR_ID}", f"{BASE}/v1/quote-requests/{QR_ID}/stream",
        {"User-Agent": ad._headers()["User-Agent"], "X-API-Key": KEY}, kind="sse"))]
    assert sse(ad, "mm", "quote_request", p, "2")[1] == []  # a snapshot replay: already open
    assert sse(ad, "mm", "quote_request:updated", load("quote_request_updated")[0], "3")[1] == []
    other = dict(p, id="f7e8d9c0-1234-5678-abcd-ef0123456789")
    _, actions = sse(ad, "mm", "quote_request:updated", other, "4")
    assert [a.spec.name for a in actions] == ["qr:f7e8d9c0-1234-5678-abcd-ef0123456789"]
    _, actions = sse(ad, "mm", "cashout_request", load("cashout_request")[0], "5")
    assert actions == [Open(ConnSpec(f"co:{CO_ID}", f"{BASE}/v1/cashout-requests/{CO_ID}/stream",
                                     ad._headers(), kind="sse"))]
    # hostile ids are recorded but never become URLs
    rows, actions = sse(ad, "mm", "quote_request", dict(p, id="../../admin?x=1"), "6")
    assert actions == [] and rows[1][1]["event"] == "error"
    assert list(ad.opened) == [f"qr:{QR_ID}", "qr:f7e8d9c0-1234-5678-abcd-ef0123456789",
                               f"co:{CO_ID}"]
    assert sse(new(request_streams=False), "mm", "quote_request", p, "1")[1] == []


def test_terminal_events_stop_the_stream_once() -> None:
    ad = new()
    conn = f"qr:{QR_ID}"
    # `status` does not stop a quote request's stream: its terminal event follows, and if the
    # stream is cut before that event is whole, the stream must be resumed to get it
    assert sse(ad, conn, "status", load("qr_status")[1])[1] == []
    _, actions = sse(ad, conn, "cancelled", {"quote_request_id": QR_ID})
    assert actions == [Stop(conn, "quote request cancelled")]
    assert sse(ad, conn, "cancelled", {"quote_request_id": QR_ID})[1] == []  # once
    # a terminal event without the status before it still stops
    _, actions = sse(ad, "qr:other", "expired", {"quote_request_id": "other"})
    assert actions == [Stop("qr:other", "quote request expired")]
    _, actions = sse(ad, f"co:{CO_ID}", "status", {"status": "declined"})
    assert actions == [Stop(f"co:{CO_ID}", "cashout request declined")]


# --- the WebSocket: auth, channels, RFQ subscriptions that follow the SSE side --------------------

def sub(channel: str, kind: str = "subscribe") -> Send:
    return Send("ws", orjson.dumps({"type": kind, "channel": channel}).decode())


def test_auth_then_mm_channel_from_both_sources_and_ping() -> None:
    ad = new()
    (auth,) = ad.on_connected("ws")
    assert auth == Send("ws", '{"type":"auth","api_key":"' + KEY + '"}', paced=False,
                        secret_keys=("api_key",))
    # an RFQ seen on the SSE side before auth is remembered, subscribed after auth
    _, actions = sse(ad, f"qr:{QR_ID}", "committed", load("qr_committed")[0])
    assert actions == [Stop(f"qr:{QR_ID}", "quote request committed")]
    rows, actions = ws(ad, load("auth_success")[1])
    assert rows[1][1]["event"] == "auth_ok"
    assert actions == [sub("mm:quotes:did:privy:cm3mm..."), sub(f"rfq:{RFQ}"),
                       Send("ws", '{"type":"ping"}', paced=False, delay=30.0)]
    # the SSE connected reply names an id of another form: subscribed too
    rows, actions = sse(ad, "mm", "connected", {"mm_id": "mm-uuid-1234"}, "1")
    assert actions == [sub("mm:quotes:mm-uuid-1234")]
    assert rows[1][1] == {"event": "auth_ok", "reason": "SSE connected as mm-uuid-1234"}
    assert sse(ad, "mm", "connected", {"mm_id": "mm-uuid-1234"}, "2")[1] == []
    assert ad.mm_ids == {"did:privy:cm3mm...": "auth", "mm-uuid-1234": "sse"}
    # after a reconnect everything is subscribed again
    ad.on_disconnected("ws")
    ad.on_connected("ws")
    _, actions = ws(ad, load("auth_success")[1])
    assert actions[:3] == [sub("mm:quotes:did:privy:cm3mm..."), sub("mm:quotes:mm-uuid-1234"),
                           sub(f"rfq:{RFQ}")]


@pytest.mark.parametrize(("source", "channels"), [
    ("auth", ["mm:quotes:did:privy:abc123"]), ("sse", ["mm:quotes:mm-uuid-1234"]),
    ("both", ["mm:quotes:did:privy:abc123", "mm:quotes:mm-uuid-1234"])])
def test_mm_id_source_option(source: str, channels: list[str]) -> None:
    ad = new(mm_id_source=source)
    ad.on_connected("ws")
    _, a1 = ws(ad, load("auth_success")[0])
    _, a2 = sse(ad, "mm", "connected", {"mm_id": "mm-uuid-1234"}, "1")
    subs = [orjson.loads(a.text)["channel"] for a in a1 + a2
            if isinstance(a, Send) and "subscribe" in a.text]
    assert subs == channels


def test_rfq_subscriptions_follow_the_sse_side_and_end_with_the_position() -> None:
    ad = new()
    ad.on_connected("ws")
    ws(ad, load("auth_success")[0])
    conn = f"qr:{QR_ID}"
    _, actions = sse(ad, conn, "status", load("qr_status")[0])
    assert actions == [sub(f"rfq:{RFQ}")]
    _, actions = sse(ad, conn, "committed", load("qr_committed")[0])  # already followed
    assert actions == [Stop(conn, "quote request committed")]
    # our own win names the same RFQ: nothing new; another RFQ from a win is followed
    assert ws(ad, load("quote_accepted")[0])[1] == []
    _, actions = ws(ad, load("mm_quote_accepted")[1])
    assert actions == [sub("rfq:f0e1d2c3-b4a5-9687-7869-5a4b3c2d1e0f")]
    assert ws(ad, load("position_created")[0])[1] == []
    assert ws(ad, load("position_error")[0])[1] == []  # not terminal
    _, actions = ws(ad, load("position_settled")[0])
    assert actions == [sub(f"rfq:{RFQ}", "unsubscribe")]
    assert ws(ad, load("position_settled")[0])[1] == []
    # a later mention of an ended RFQ does not bring the subscription back
    assert sse(ad, "qr:again", "committed", {"quote_request_id": "again", "rfq_id": RFQ})[1] == [
        Stop("qr:again", "quote request committed")]
    _, actions = ws(ad, {"type": "position:bought_back", "data": {
        "rfq_id": "f0e1d2c3-b4a5-9687-7869-5a4b3c2d1e0f"}})
    assert actions == [sub("rfq:f0e1d2c3-b4a5-9687-7869-5a4b3c2d1e0f", "unsubscribe")]
    assert list(ad.rfqs) == []
    assert ad.rfqs_done == {RFQ, "f0e1d2c3-b4a5-9687-7869-5a4b3c2d1e0f"}


def test_auth_error_stops_the_socket() -> None:
    ad = new()
    rows, actions = ws(ad, load("auth_error")[0])
    assert [t for t, _ in rows] == [T.AUTH_ERROR, SESSION_EVENTS]
    assert rows[1][1] == {"event": "auth_failed", "reason": "Invalid API key"}
    assert actions == [Stop("ws", "credentials refused: Invalid API key")]


def test_one_ping_chain_per_socket() -> None:
    ad = new(ping_interval=30)
    ping = Send("ws", '{"type":"ping"}', paced=False, delay=30.0)
    t = "2026-06-01T12:00:{:02d}.000Z"
    assert ws(ad, {"type": "pong", "timestamp": t.format(0)})[1] == [ping]
    # a second pong 2 s later: a stale chain from the previous socket; it ends here
    assert ws(ad, {"type": "pong", "timestamp": t.format(2)})[1] == []
    assert ws(ad, {"type": "pong", "timestamp": t.format(30)})[1] == [ping]
    assert ws(ad, {"type": "pong"})[1] == [ping]  # no time: never let the chain die


def test_ws_envelope_oddities() -> None:
    ad = new()
    rows, _ = ws(ad, b'{"type": "quote:accepted", ')
    assert rows[0][1]["reason"] == "malformed"
    rows, _ = ws(ad, {"type": "quote:accepted", "data": "nope"})
    assert rows[0][1]["reason"] == "unexpected_shape"
    rows, _ = ws(ad, {"type": "rfq:quoted", "data": {"rfq_id": RFQ}})
    assert rows[0][1]["reason"] == "unknown_type" and rows[0][1]["msg_type"] == "rfq:quoted"
    rows, _ = ws(ad, {"type": "quote:executed", "seq": 9, "data": {
        "quote_id": "q", "rfq_id": RFQ, "type": "inner"}})
    assert orjson.loads(rows[0][1]["extra"]) == {"envelope.seq": 9, "type": "inner"}
    rows, _ = ws(ad, load("ws_error")[1])
    assert rows[1][1] == {"event": "error", "code": "4004", "reason": "Unknown channel"}


def test_normalizer_rebuild_gives_the_same_rows_without_actions_mattering() -> None:
    """The same journal records through a fresh offline adapter give the same rows."""
    records = [(KIND_META, "mm", meta("connected", url="u")),
               (KIND_IN, "mm", block("connected", {"mm_id": "m"}, "1")),
               (KIND_IN, "mm", block("quote_request", load("quote_request")[0], "2")),
               (KIND_IN, "mm", b"data: {\"id\":\"x\",\"reason\":\"expired\"}\n"
                               b"event: quote_request_expired\n\n"),
               (KIND_IN, f"qr:{QR_ID}", block("best_quote", load("qr_best_quote")[2], "9"))]
    live = Normalizer(new())
    offline = Normalizer(make_adapter("totalis", None, {}, offline=True))
    a = [live.process(k, c, TS_RECV, d)[0] for k, c, d in records]
    b = [offline.process(k, c, TS_RECV, d)[0] for k, c, d in records]
    assert a == b
    assert a[3][0][1]["_sse_id"] == "2"  # the expired event had no id: it inherits 2


def test_config_errors_name_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="api_key_env: required"):
        make_adapter("t", BASE, {})
    with pytest.raises(ConfigError, match=r"\[venues.t\]: unknown setting"):
        make_adapter("t", BASE, {"symbols": []}, sim={"api_key": "k"})
    with pytest.raises(ConfigError, match="mm_id_source"):
        make_adapter("t", BASE, {"mm_id_source": "jwt"}, sim={"api_key": "k"})
    with pytest.raises(ConfigError, match="ws_url"):
        make_adapter("t", BASE, {"ws_url": "https://x/ws"}, sim={"api_key": "k"})
    with pytest.raises(ConfigError, match="request_streams"):
        make_adapter("t", BASE, {"request_streams": "yes"}, sim={"api_key": "k"})
    with pytest.raises(ConfigError, match="ping_interval"):
        make_adapter("t", BASE, {"ping_interval": 0}, sim={"api_key": "k"})
    with pytest.raises(ConfigError, match="ping_interval"):
        make_adapter("t", BASE, {"ping_interval": "often"}, sim={"api_key": "k"})
    assert make_adapter("t", BASE, {"ping_interval": "45s"}, sim={"api_key": "k"}
                        ).settings.ping_interval == 45.0
    with pytest.raises(ConfigError, match="url"):
        make_adapter("t", "ftp://x", {}, sim={"api_key": "k"})
    monkeypatch.delenv("TOTALIS_KEY_X", raising=False)
    with pytest.raises(MissingSecret, match="TOTALIS_KEY_X"):
        make_adapter("t", BASE, {"api_key_env": "TOTALIS_KEY_X"})
    monkeypatch.setenv("TOTALIS_KEY_X", "api_live_1")
    ad = make_adapter("t", BASE + "/", {"api_key_env": "TOTALIS_KEY_X", "websocket": False})
    assert [c.name for c in ad.connections()] == ["mm"]
    assert ad.connections()[0].url == BASE + "/v1/mm/quote-requests/stream"
    ad = make_adapter("t", BASE, {"api_key_env": "TOTALIS_KEY_X"})
    assert [(c.name, c.url, c.kind) for c in ad.connections()] == [
        ("mm", BASE + "/v1/mm/quote-requests/stream", "sse"),
        ("ws", "wss://api.totalis.trade/ws", "ws")]
    assert "X-API-Key" not in ad.connections()[1].headers  # the WS authenticates by message
