"""Helpers for the Totalis end-to-end tests: a config for an in-process simulator, and the
comparison of the lake with the simulator's ledgers, table by table and field by field."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import orjson

from recorder import journal as jr
from recorder.config import Config
from recorder.schema import Table
from recorder.venues import CATALOGUE
from recorder.venues.totalis import tables as T
from recorder.venues.totalis.server import TotalisServer
from tests.e2e import venue_config

KEY_ENV = "TOTALIS_E2E_KEY"
SSE_TABLES: dict[tuple[str, str], Table] = {
    ("mm", "connected"): T.CONNECTED, ("mm", "snapshot_begin"): T.SNAPSHOT_BEGIN,
    ("mm", "snapshot_complete"): T.SNAPSHOT_COMPLETE, ("mm", "quote_request"): T.QUOTE_REQUEST,
    ("mm", "quote_request:updated"): T.QUOTE_REQUEST_UPDATED,
    ("mm", "quote_request_expired"): T.QUOTE_REQUEST_EXPIRED,
    ("mm", "cashout_request"): T.CASHOUT_REQUEST,
    ("qr", "best_quote"): T.QR_BEST_QUOTE, ("qr", "status"): T.QR_STATUS,
    ("qr", "committed"): T.QR_COMMITTED, ("qr", "cancelled"): T.QR_CANCELLED,
    ("qr", "expired"): T.QR_EXPIRED,
    ("co", "best_quote"): T.CASHOUT_BEST_QUOTE, ("co", "status"): T.CASHOUT_STATUS,
}
WS_TABLES: dict[str, Table] = {
    "auth:success": T.AUTH_SUCCESS, "auth:error": T.AUTH_ERROR, "pong": T.PONG,
    "error": T.WS_ERROR, "quote:accepted": T.QUOTE_ACCEPTED,
    "mm_quote:accepted": T.MM_QUOTE_ACCEPTED, "quote:confirmed": T.QUOTE_CONFIRMED,
    "quote:executed": T.QUOTE_EXECUTED, "quote:expired": T.QUOTE_EXPIRED,
    "quote:rejected": T.QUOTE_REJECTED, "quote:withdrawn": T.QUOTE_WITHDRAWN,
    "position:created": T.POSITION_CREATED, "position:settled": T.POSITION_SETTLED,
    "position:cancelled": T.POSITION_CANCELLED, "position:error": T.POSITION_ERROR,
}


def config(data_dir: Path, server: TotalisServer, **options: Any) -> Config:
    transport = {k: options.pop(k) for k in list(options) if k in (
        "idle_timeout", "backoff_initial", "backoff_max", "max_frame_bytes")}
    return venue_config(data_dir, "totalis", server.url, {"api_key_env": KEY_ENV, **options},
                        **{"backoff_initial": 0.05, "backoff_max": 0.5, **transport})


def journal(data_dir: Path, run: str) -> list[jr.Record]:
    return list(jr.read_run(data_dir, "totalis", run))


def sse_blocks(records: list[jr.Record]) -> dict[str, list[bytes]]:
    """Inbound blocks per SSE connection, in order (the WS excluded)."""
    out: dict[str, list[bytes]] = {}
    for r in records:
        if r.kind == jr.KIND_IN and r.conn != "ws":
            out.setdefault(r.conn, []).append(r.data)
    return out


def ws_sessions(records: list[jr.Record]) -> list[list[str]]:
    out: list[list[str]] = []
    for r in records:
        if r.conn != "ws":
            continue
        if r.kind == jr.KIND_META and orjson.loads(r.data)["ev"] == "connected":
            out.append([])
        elif r.kind == jr.KIND_IN:
            out[-1].append(r.data.decode())
    return out


# --- field comparison --------------------------------------------------------------------------

def _ts(v: Any) -> Any:
    if isinstance(v, str):
        return dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    return v


def same(col_type: Any, expected: Any, actual: Any) -> bool:
    import pyarrow as pa

    if expected is None:
        return actual is None
    if pa.types.is_timestamp(col_type):
        return _ts(expected) == actual
    if pa.types.is_struct(col_type):
        return isinstance(actual, dict) and all(
            same(f.type, expected.get(f.name), actual.get(f.name)) for f in col_type)
    if pa.types.is_list(col_type):
        return isinstance(actual, list) and len(actual) == len(expected) and all(
            same(col_type.value_type, e, a) for e, a in zip(expected, actual, strict=True))
    if pa.types.is_floating(col_type):
        return float(expected) == actual
    return expected == actual


def check_row(table: Table, data: dict[str, Any], row: dict[str, Any]) -> None:
    for col in table.columns:
        if col.key in data:
            assert same(col.type, data[col.key], row[col.name]), (
                f"{table.name}.{col.name}: sent {data[col.key]!r}, lake {row[col.name]!r}")
    assert row["extra"] is None, f"{table.name}: undeclared fields {row['extra']}"


def lake_rows(con: Any, table: Table, run: str) -> list[dict[str, Any]]:
    return con.sql(f"SELECT * FROM {table.name} WHERE run_id = '{run}' "
                   f"ORDER BY conn_id, recv_seq").pl().to_dicts()


def compare_sse(con: Any, run: str, server: TotalisServer) -> dict[str, int]:
    """Every complete SSE event the simulator wrote is exactly one lake row with its id, in
    the table of its (stream, event), equal field by field; and nothing else is there."""
    want: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    for e in server.sent_events():
        kind = "mm" if e["stream"] == "mm" else e["stream"][:2]
        table = SSE_TABLES[(kind, e["event"])]
        key = (e["stream"], e["id"])
        bucket = want.setdefault(table.name, {})
        assert key not in bucket, f"the simulator sent {key} twice"
        bucket[key] = orjson.loads(e["data"])
    counts: dict[str, int] = {}
    for table in SSE_TABLES.values():
        rows = lake_rows(con, table, run)
        expected = want.get(table.name, {})
        got = {(r["conn_id"], r["sse_id"]): r for r in rows}
        assert len(got) == len(rows), f"{table.name}: an event id recorded twice"
        assert got.keys() == expected.keys(), (
            f"{table.name}: missing {sorted(expected.keys() - got.keys())[:3]}, "
            f"unexpected {sorted(got.keys() - expected.keys())[:3]}")
        for key, data in expected.items():
            row = got[key]
            check_row(table, data, row)
            if key[0].startswith("qr:") and "quote_request_id" not in data:
                assert row["quote_request_id"] == key[0][3:]
            if key[0].startswith("co:"):
                assert row["cashout_request_id"] == key[0][3:]
        counts[table.name] = len(rows)
    return counts


def compare_ws(con: Any, run: str, sent: list[str]) -> dict[str, int]:
    """The WS frames the simulator sent, in order, are the rows of their tables."""
    per: dict[str, list[dict[str, Any]]] = {}
    for text in sent:
        msg = orjson.loads(text)
        table = WS_TABLES[msg["type"]]
        per.setdefault(table.name, []).append(
            msg.get("data", {k: v for k, v in msg.items() if k != "type"}))
    counts: dict[str, int] = {}
    for table in WS_TABLES.values():
        rows = lake_rows(con, table, run)
        expected = per.get(table.name, [])
        assert len(rows) == len(expected), f"{table.name}: {len(rows)} rows, sent {len(expected)}"
        for data, row in zip(expected, rows, strict=True):
            check_row(table, data, row)
        counts[table.name] = len(rows)
    return counts


def table(name: str) -> Table:
    return CATALOGUE.tables[f"totalis_{name}"]
