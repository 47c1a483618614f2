"""End-to-end helpers for Diffusal: a config for the in-process simulator, the journal split
per connection, the match between the journal and the simulator's ledger, and the lake
compared with what the simulator sent, table by table and field by field.

The expected rows are derived here from the simulator's frames and the tables' declared wire
names, independently of the adapter's code paths: what a frame should become is written out
per message kind below.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pyarrow as pa

from recorder import journal as jr
from recorder.config import Config
from recorder.rows import loads
from recorder.schema import EXTRA, Table
from recorder.sim.driver import Sent
from recorder.venues import CATALOGUE
from recorder.venues.diffusal import tables as T
from recorder.venues.diffusal.server import DiffusalServer
from tests.e2e import venue_config

WAD = 10**18
PRIVATE = set(T.PRIVATE_TABLES)


def config(data_dir: Path, url: str, **options: Any) -> Config:
    return venue_config(data_dir, "diffusal", url, options)


@dataclass
class Frame:
    conn: str  # the recorder's conn_id
    seq: int  # recv_seq
    text: bytes
    path: str  # the simulator path (/ws/public, ..., or the REST path)
    tag: str | None = None  # REST only


def journal(data_dir: Path, run: str) -> tuple[dict[str, list[list[Frame]]], list[Frame],
                                              dict[str, dict[int, tuple[str, Any]]]]:
    """Inbound frames per conn split at each connect; REST responses; our requests by id."""
    sessions: dict[str, list[list[Frame]]] = {}
    rest: list[Frame] = []
    sent: dict[str, dict[int, tuple[str, Any]]] = {}
    for rec in jr.read_run(data_dir, "diffusal", run):
        if rec.kind == jr.KIND_META and orjson.loads(rec.data)["ev"] == "connected":
            sessions.setdefault(rec.conn, []).append([])
        elif rec.kind == jr.KIND_IN:
            sessions[rec.conn][-1].append(Frame(rec.conn, rec.seq, rec.data, ""))
        elif rec.kind == jr.KIND_REST:
            head, _, body = rec.data.partition(b"\n")
            h = orjson.loads(head)
            u = urlsplit(h["url"])
            rest.append(Frame(rec.conn, rec.seq, body, u.path + (f"?{u.query}" if u.query
                                                                   else ""), h["tag"]))
        elif rec.kind == jr.KIND_OUT:
            m = orjson.loads(rec.data)
            if "method" in m and isinstance(m.get("id"), int):
                sent.setdefault(rec.conn, {})[m["id"]] = (m["method"], m.get("params"))
    return sessions, rest, sent


def labels(entry: Sent) -> list[str]:
    """What a ledgered frame is: its stream's suffix (``@depth``) or its ``type``."""
    msg = orjson.loads(entry.text)
    if isinstance(msg.get("stream"), str):
        return ["@" + msg["stream"].rpartition("@")[2]]
    return [str(msg.get("type"))]


def match_ledger(server: DiffusalServer, sessions: dict[str, list[list[Frame]]]) -> list[Frame]:
    """Every recorded session equals one simulator connection's ledger exactly (same frames,
    same order), and every simulator connection that sent something was recorded. Returns
    the inbound frames with their simulator path."""
    by_text: dict[tuple[str, ...], int] = {}
    for no in server.paths:
        led = tuple(server.ledger_for(no))
        if led:
            assert led not in by_text, f"two simulator connections sent the same {len(led)}"
            by_text[led] = no
    out: list[Frame] = []
    matched: set[int] = set()
    for conn, ss in sessions.items():
        for frames in ss:
            key = tuple(f.text.decode() for f in frames)
            if not key:
                continue
            no = by_text.get(key)
            if no is None and conn.startswith("rfq-quotes-"):
                # We close a quotes socket once its auction resolved; a heartbeat the server
                # sent meanwhile was never read. What we read is a prefix of its ledger.
                no = next((n for led, n in by_text.items() if led[:len(key)] == key and all(
                    loads(t.encode())["type"] == "heartbeat" for t in led[len(key):])), None)
            assert no is not None, f"{conn}: a session of {len(key)} frames is in no ledger"
            matched.add(no)
            path = server.paths[no].split("?")[0]
            out += [Frame(f.conn, f.seq, f.text, path) for f in frames]
    assert matched == set(by_text.values()), "a simulator connection was not recorded"
    return out


# --- what each frame must become ------------------------------------------------------------

Want = tuple[str, dict[str, Any]]  # (table name, {column: value}) for the columns checked


def _wad(v: Any) -> tuple[str | None, float | None]:
    if v is None:
        return None, None
    return str(v), int(v) / WAD


def _cols(table: Table, payload: dict[str, Any], **derived: Any) -> Want:
    """Venue fields by their wire names, converted as the column type says; adapter-set
    columns given explicitly."""
    want: dict[str, Any] = {}
    for col in table.columns:
        if col.key.startswith("_") and col.key.endswith("_text"):
            want[col.name] = _text(payload.get(col.key[1:-5]))  # the decimal as sent
            continue
        if col.key.startswith("_") or col.name == EXTRA:
            continue
        want[col.name] = _conv(payload.get(col.key), col.type)
    want.update(derived)
    want[EXTRA] = None
    return table.name, want


def _text(v: Any) -> Any:
    if v is None or isinstance(v, str):
        return v
    return str(v) if isinstance(v, int) else repr(v)


def _ns(t: int) -> int:
    """An epoch time of unknown unit as ns: seconds below 1e11, ms below 1e14, us below
    1e17, else ns."""
    return t * (10**9 if t < 10**11 else 10**6 if t < 10**14 else 10**3 if t < 10**17 else 1)


def _conv(v: Any, typ: pa.DataType) -> Any:
    if v is None:
        return None
    if pa.types.is_list(typ):
        return [{"price": float(lv["price"]), "price_text": _text(lv["price"]),
                 "size": float(lv["size"]), "size_text": _text(lv["size"])} for lv in v]
    if pa.types.is_floating(typ):
        return float(v)
    if pa.types.is_string(typ) and not isinstance(v, str):
        return str(v)
    return v


def _auction(a: dict[str, Any], stream: str | None, source: str) -> Want:
    strike, strike_f = _wad(a.get("strike"))
    return _cols(T.RFQ_AUCTION, {**a, "strike": strike}, stream=stream, source=source,
                 strike_f=strike_f, event_ms=a["timestamp"])


def _resolution(r: dict[str, Any], stream: str | None) -> Want:
    return _cols(T.RFQ_RESOLUTION, r, stream=stream, source="ws",
                 price_f=_wad(r.get("price"))[1], event_ms=r["timestamp"])


def _quote(q: dict[str, Any], stream: str | None, source: str) -> Want:
    return _cols(T.RFQ_QUOTE, q, stream=stream, source=source, price_f=_wad(q["price"])[1],
                 size_f=_wad(q["size"])[1], event_ms=q["timestamp"])


def expected(f: Frame, sent: dict[str, dict[int, tuple[str, Any]]],
             server: DiffusalServer) -> list[Want]:
    msg = loads(f.text)
    if f.tag is not None:
        return _expected_rest(f, msg)
    if f.path == "/ws/rfq/stream" or f.path == "/ws/rfq/quotes" or f.path == "/ws/rfq/mm":
        return _expected_rfq(f.path, msg, None)
    if "stream" in msg:
        st, data = msg["stream"], msg["data"]
        if st in PRIVATE or st.startswith("rfq.quotes."):
            return _expected_private(st, data)
        if st == "global@rfq":
            return _expected_rfq("/ws/public", data, st)
        if st == "global@markets":
            strike, strike_f = _wad(data["strike"])
            pair = next(p for p in server.synth.pairs if p["pairId"] == data["pairId"])
            sym = (f"{pair['underlying']}-{int(data['strike']) // WAD}-"
                   f"{'C' if data['isCall'] else 'P'}-{data['expiry']}")
            sp, sp_f = _wad(data.get("settlementPrice"))
            return [_cols(T.MARKETS, data, stream=st, strike=strike, strike_f=strike_f,
                          derived_symbol=sym, settlement_price=sp, settlement_price_f=sp_f)]
        kind = st.rpartition("@")[2]
        if kind == "depth":
            return [_cols(T.DEPTH, data, stream=st, source="ws")]
        if kind == "trade":
            return [_cols(T.TRADE, data, stream=st, source="ws")]
        if kind == "ticker":
            return [_cols(T.TICKER, data, stream=st, source="ws")]
        if kind == "index":
            return [_cols(T.INDEX, data, stream=st, pair=st.rpartition("@")[0])]
        raise AssertionError(f"unexpected stream {st}")
    req = sent.get(f.conn, {}).get(msg.get("id"))  # type: ignore[arg-type]
    method, params = req if req else (None, None)
    pj = None if params is None else orjson.dumps(params).decode()
    if "error" in msg:
        return [(T.ERROR.name, {"request_id": msg["id"], "code": msg["error"]["code"],
                                "msg": msg["error"]["msg"], "method": method, "params": pj,
                                EXTRA: None})]
    if msg.get("status") == "authenticated" or method == "AUTH":
        res = msg.get("result")
        return [(T.AUTH.name, {"request_id": msg["id"], "status": "authenticated",
                               "result": None if res is None else orjson.dumps(res).decode(),
                               "shape": "result" if "result" in msg else "status",
                               EXTRA: None})]
    return [(T.REPLY.name, {"request_id": msg["id"],
                            "result": orjson.dumps(msg["result"]).decode(),
                            "method": method, "params": pj, EXTRA: None})]


def _expected_rfq(path: str, msg: dict[str, Any], stream: str | None) -> list[Want]:
    kind = msg["type"]
    src = "mm" if path == "/ws/rfq/mm" else "ws"
    if kind == "rfq_request":
        return [_auction(msg, stream, src)]
    if kind == "auction_resolved":
        return [_resolution(msg, stream)]
    if kind == "snapshot":
        return [_auction(a, None, "snapshot") for a in msg["auctions"]] + [
            (T.RFQ_SNAPSHOT.name, {"auction_count": len(msg["auctions"]),
                                   "timestamp_ms": msg["timestamp"],
                                   "event_ms": msg["timestamp"], EXTRA: None})]
    if kind == "quote":
        return [_quote(msg, None, "ws")]
    table = {"connected": T.RFQ_CONNECTED, "heartbeat": T.RFQ_HEARTBEAT,
             "auth_success": T.RFQ_AUTH_SUCCESS, "quote_rejected": T.RFQ_QUOTE_REJECTED,
             "trade_filled": T.RFQ_TRADE_FILLED}[kind]
    derived: dict[str, Any] = {"event_ms": msg["timestamp"]}
    if kind == "trade_filled":
        derived.update(price_f=_wad(msg["price"])[1], size_f=_wad(msg["size"])[1])
    return [_cols(table, msg, **derived)]


def _expected_private(st: str, data: dict[str, Any]) -> list[Want]:
    snap = data.get("type") == "snapshot"
    items = data["items"] if snap else [data]
    if st.startswith("rfq.quotes."):
        out = [_quote(q, st, "snapshot" if snap else "ws") for q in items]
    else:
        table = T.PRIVATE_TABLES[st]
        out = [_cols(table, it, stream=st, is_snapshot=snap,
                     event_ns=_ns(it.get("updatedAt") or it["timestamp"])) for it in items]
    if snap:
        out.append((T.PRIVATE_SNAPSHOT.name, {"stream": st, "item_count": len(items),
                                              "timestamp": data["timestamp"],
                                              "event_ns": _ns(data["timestamp"]), EXTRA: None}))
    return out


def _expected_rest(f: Frame, body: Any) -> list[Want]:
    kind = f.tag.partition(":")[0] if f.tag else ""
    if kind == "pairs":
        items = body
        out = [_cols(T.PAIR_T, p) for p in items]
    elif kind in ("markets", "contracts"):
        items = body
        out = [_cols(T.INSTRUMENT, m, endpoint=kind, strike_f=_wad(m["strike"])[1])
               for m in items]
    elif kind == "orderbook":
        items = [body]
        out = [_cols(T.DEPTH, {**body, "type": "snapshot"}, stream=None, source="rest")]
    elif kind == "active-auctions":
        items = body
        out = [_auction(a, None, "rest") for a in items]
    elif kind == "quotes":
        items = body
        out = [_quote(q, None, "rest") for q in items]
    else:
        raise AssertionError(f.tag)
    return [(T.REST_RESPONSE.name, {"tag": f.tag, "status": 200, "item_count": len(items),
                                    "error": None, EXTRA: None})] + out


def _same(want: Any, got: Any) -> bool:
    if isinstance(want, float) and isinstance(got, float):
        return want == got
    if isinstance(want, list) and isinstance(got, list):
        return len(want) == len(got) and all(_same(a, b) for a, b in zip(want, got,
                                                                           strict=True))
    if isinstance(want, dict) and isinstance(got, dict):
        return want.keys() == got.keys() and all(_same(want[k], got[k]) for k in want)
    return type(want) is type(got) and want == got


def compare_lake(con: Any, run: str, frames: list[Frame],
                 sent: dict[str, dict[int, tuple[str, Any]]],
                 server: DiffusalServer) -> dict[str, int]:
    """Assert that each Diffusal table holds exactly the rows the frames must become, per
    receipt (conn_id, recv_seq), value by value. Returns rows per table."""
    want: dict[str, dict[tuple[str, int], list[dict[str, Any]]]] = {}
    for f in frames:
        for table, row in expected(f, sent, server):
            want.setdefault(table, {}).setdefault((f.conn, f.seq), []).append(row)
    counts: dict[str, int] = {}
    for t in T.TABLES:
        got: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for row in con.sql(f"SELECT * EXCLUDE (date) FROM {t.name} WHERE run_id = '{run}'"
                           ).pl().to_dicts():
            got.setdefault((row["conn_id"], row["recv_seq"]), []).append(row)
        exp = want.get(t.name, {})
        assert got.keys() == exp.keys(), (
            f"{t.name}: receipts differ; only in lake {sorted(got.keys() - exp.keys())[:5]}, "
            f"only in frames {sorted(exp.keys() - got.keys())[:5]}")
        for key, rows in exp.items():
            lake_rows = got[key]
            assert len(lake_rows) == len(rows), (t.name, key, len(lake_rows), len(rows))
            unmatched = list(lake_rows)
            for w in rows:
                hit = next((g for g in unmatched if all(_same(v, g[c]) for c, v in w.items())),
                           None)
                assert hit is not None, (
                    f"{t.name} {key}: no lake row equals {w}; lake has "
                    f"{[{c: g[c] for c in w} for g in unmatched]}")
                unmatched.remove(hit)
        counts[t.name] = sum(len(v) for v in got.values())
    assert set(CATALOGUE.tables) >= {t.name for t in T.TABLES}
    return counts
