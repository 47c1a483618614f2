"""Helpers for Derive end-to-end tests: a config pointing at an in-process simulator, and the
comparison of the lake with what the simulator's ledger says it sent.

The expected rows are derived here from the ledger frames and the table schemas, independently
of the adapter: each notification's ``data`` element (or feed, or instrument...) becomes a row
keyed by wire names, reshaped the way the tables document (channel parameters, one-letter
ticker_slim keys named, best-quote results flattened), then converted to lake values by type.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from recorder import journal as jr
from recorder.config import Config
from recorder.schema import EXTRA, Table
from recorder.sim.driver import Sent
from recorder.venues.derive import tables as T
from tests import e2e
from tests.e2e import venue_config

Wire = dict[str, Any]


def config(data_dir: Path, url: str, **options: Any) -> Config:
    return venue_config(data_dir, "derive", url, options)


def journal_sessions(data_dir: Path, run: str, conn: str = "ws") -> list[list[bytes]]:
    """Inbound frames of one connection, split at each (re)connect."""
    return e2e.journal_sessions(data_dir, run, conn, "derive")


def outbound(data_dir: Path, run: str) -> list[bytes]:
    return [r.data for r in jr.read_run(data_dir, "derive", run) if r.kind == jr.KIND_OUT]


# --- expected rows from ledger frames ---------------------------------------------------------

def _items(data: Any) -> list[Any]:
    return data if isinstance(data, list) else [data]


def _notification(channel: str, data: Any) -> Iterator[tuple[Table, Wire]]:
    p = channel.split(".")
    if p[0] == "orderbook":
        def lv(x: Any) -> Any:
            return {"price": x[0], "amount": x[1]} if isinstance(x, list) else x
        yield T.ORDERBOOK, {**data, "_channel": channel, "_group": int(p[-2]),
                            "_depth": int(p[-1]), "bids": [lv(x) for x in data["bids"]],
                            "asks": [lv(x) for x in data["asks"]]}
    elif p[0] == "ticker":
        yield T.TICKER, {**data["instrument_ticker"], "_channel": channel,
                         "_timestamp": data["timestamp"], "_interval": int(p[-1])}
    elif p[0] == "ticker_slim":
        t = dict(data["instrument_ticker"])
        t["stats"] = {T.SLIM_STATS_NAMES[k]: v for k, v in t["stats"].items()}
        if "option_pricing" in t:
            t["option_pricing"] = {T.SLIM_PRICING_NAMES[k]: v
                                   for k, v in t["option_pricing"].items()}
        yield T.TICKER_SLIM, {**t, "_channel": channel, "_timestamp": data["timestamp"],
                              "_instrument": p[1], "_interval": int(p[-1])}
    elif p[0] == "trades":
        if len(p) == 2:
            for e in data:
                yield T.TRADES, {**e, "_channel": channel}
        elif len(p) == 3:
            for e in data:
                yield T.TRADES_BY_CURRENCY, {**e, "_channel": channel, "_type": p[1],
                                             "_currency": p[2]}
        else:
            for e in data:
                yield T.TRADES_SETTLED, {**e, "_channel": channel, "_type": p[1],
                                         "_currency": p[2], "_status": p[3]}
    elif p[0] == "spot_feed":
        for cur, feed in data["feeds"].items():
            yield T.SPOT_FEED, {**feed, "_channel": channel, "_timestamp": data["timestamp"],
                                "_currency": cur}
    elif channel == "auctions.watch":
        for e in data:
            yield T.AUCTIONS, {**e, "_channel": channel}
    elif channel == "margin.watch":
        for e in data:
            yield T.MARGIN_WATCH, {**e, "_channel": channel,
                                   "_valuation_ns": _ns(e["valuation_timestamp"])}
    elif p[-1] == "rfqs":
        for e in data:
            yield T.RFQS, {**e, "_channel": channel}
    else:  # {subaccount_id}.<private>
        rest = ".".join(p[1:])
        for e in _items(data):
            if rest == "orders":
                yield T.ORDERS, {**e, "_channel": channel}
            elif rest == "quotes":
                yield T.QUOTES, {**e, "_channel": channel}
            elif rest == "balances":
                yield T.BALANCES, {**e, "_channel": channel, "_subaccount": int(p[0])}
            elif p[1] == "trades":
                yield T.OWN_TRADES, {**e, "_channel": channel,
                                     "_status": p[2] if len(p) > 2 else None}
            elif rest == "best.quotes":
                row = {"rfq_id": e["rfq_id"], **(e.get("result") or {}),
                       "_channel": channel, "_subaccount": int(p[0])}
                if e.get("error"):
                    row.update(_error_code=e["error"]["code"],
                               _error_message=e["error"]["message"],
                               _error_data=e["error"].get("data"))
                yield T.BEST_QUOTES, row
            else:
                raise AssertionError(f"unexpected channel {channel}")


_METHODS = {"cur": "public/get_all_currencies", "ins": "public/get_instruments",
            "time": "public/get_time", "login": "public/login", "sub": "subscribe",
            "unsub": "unsubscribe"}


def _response(msg: dict[str, Any]) -> Iterator[tuple[Table, Wire]]:
    rid = str(msg["id"])
    parts = rid.split(":")
    tag = parts[0]
    rpc: Wire = {"id": rid, "_method": _METHODS[tag]}
    if "error" in msg:
        e = msg["error"]
        yield T.RPC, {**rpc, "_ok": False, "_code": e["code"], "_message": e["message"],
                      "_data": e.get("data")}
        return
    result = msg["result"]
    rpc.update(_ok=True, _count=len(result) if isinstance(result, list) else None)
    if tag == "cur":
        for c in result:
            c = dict(c)
            for k in ("asset_cap_and_supply_per_manager", "erc20_details"):
                if c.get(k) is not None:
                    c[k] = orjson.dumps(c[k]).decode()
            yield T.CURRENCIES, c
    elif tag == "ins":
        for i in result:
            yield T.INSTRUMENTS, {**i, "_currency": parts[3], "_type": parts[4]}
    else:
        rpc["_result"] = orjson.dumps(result).decode()
    yield T.RPC, rpc


def expected_rows(frames: list[dict[str, Any]]) -> dict[str, list[Wire]]:
    out: dict[str, list[Wire]] = {t.name: [] for t in T.TABLES}
    for f in frames:
        rows = (_notification(f["params"]["channel"], f["params"]["data"])
                if f.get("method") == "subscription" else _response(f))
        for table, wire in rows:
            out[table.name].append(lake_values(table, wire))
    return out


def tables_of(entry: Sent) -> list[tuple[int, str]]:
    """(session, table) of every row a ledgered frame makes: what a scenario waits for."""
    try:
        f = orjson.loads(entry.text)
        rows = (_notification(f["params"]["channel"], f["params"]["data"])
                if f.get("method") == "subscription" else _response(f))
        return [(entry.conn, table.name) for table, _ in rows]
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        return []  # not a frame of the grammar (an injected one)


def channels_of(entry: Sent) -> list[tuple[int, str]]:
    """(session, channel) of a notification."""
    try:
        f = orjson.loads(entry.text)
        return [(entry.conn, f["params"]["channel"])] if f.get("method") == "subscription" \
            else []
    except (ValueError, KeyError, TypeError):
        return []


def _ns(t: int) -> int:
    """An epoch time of unknown unit as ns: seconds below 1e11, ms below 1e14, us below
    1e17, else ns."""
    return t * (10**9 if t < 10**11 else 10**6 if t < 10**14 else 10**3 if t < 10**17 else 1)


def _text(v: Any) -> Any:
    """A decimal exactly as sent: the string itself, a JSON number's own text."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, dict):
        return [(k, _text(x)) for k, x in v.items()]
    return str(v) if isinstance(v, int) else repr(v)


def _value(v: Any, typ: pa.DataType) -> Any:
    if v is None:
        return None
    if pa.types.is_struct(typ):
        names = {f.name for f in typ}
        return {f.name: (_text(v.get(f.name[:-5])) if f.name.endswith("_text")
                         and f.name[:-5] in names else _value(v.get(f.name), f.type))
                for f in typ}
    if pa.types.is_map(typ):
        return [(k, _value(x, typ.item_type)) for k, x in v.items()]
    if pa.types.is_list(typ):
        return [_value(x, typ.value_type) for x in v]
    if pa.types.is_floating(typ):
        return float(v)
    if pa.types.is_integer(typ):
        return int(v)
    if pa.types.is_string(typ):
        return v if isinstance(v, str) else str(v)
    return v


def lake_values(table: Table, wire: Wire) -> Wire:
    """A wire-keyed row -> the values its lake columns must hold (``extra`` must be null:
    the simulator sends no undeclared field)."""
    unknown = set(wire) - table.wire_keys
    assert not unknown, (table.name, unknown)
    row = {c.name: _value(wire.get(c.key), c.type) for c in table.columns if c.name != EXTRA}
    for c in table.columns:  # a decimal's text beside its float: _<wire>_text
        if c.key.startswith("_") and c.key.endswith("_text") and c.key[1:-5] in wire:
            row[c.name] = _text(wire[c.key[1:-5]])
    row[EXTRA] = None
    return row


# --- the lake ------------------------------------------------------------------------------------

def lake_rows(data_dir: Path, table: Table, run_id: str) -> list[Wire]:
    files = sorted((data_dir / "lake" / table.name).rglob("*.parquet"))
    rows: list[Wire] = []
    for f in files:
        t = pq.read_table(f, columns=["run_id", *(c.name for c in table.columns)])
        for r in t.to_pylist():
            if r["run_id"] == run_id:
                rows.append(r)
    return rows


def _key(row: Wire) -> bytes:
    return orjson.dumps(row, option=orjson.OPT_SORT_KEYS)


def compare_lake(data_dir: Path, run_id: str, frames: list[dict[str, Any]]) -> dict[str, int]:
    """Every table's rows equal those the frames imply, field by field (as multisets: rows of
    one frame share a recv_seq). Returns rows per table."""
    want = expected_rows(frames)
    counts = {}
    for table in T.TABLES:
        got = [{c.name: r[c.name] for c in table.columns} for r in
               lake_rows(data_dir, table, run_id)]
        exp = want[table.name]
        assert len(got) == len(exp), f"{table.name}: lake {len(got)} rows, ledger {len(exp)}"
        g, e = sorted(got, key=_key), sorted(exp, key=_key)
        for a, b in zip(g, e, strict=True):
            if a != b:
                diff = {k: (a[k], b[k]) for k in a if a[k] != b[k]}
                raise AssertionError(f"{table.name}: lake vs ledger differ: {diff}")
        counts[table.name] = len(got)
    return counts
