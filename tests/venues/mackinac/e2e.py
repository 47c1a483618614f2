"""Mackinac's end-to-end helpers: its venue config, its frames by type, and the lake compared
with its frames field by field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from recorder.config import Config
from recorder.schema import Table
from recorder.sim.driver import Sent
from recorder.venues.mackinac import tables as T
from tests import e2e
from tests.e2e import venue_config


def config(data_dir: Path, url: str, symbols: list[str], api_key_env: str | None = None,
           history: bool = True, **transport: Any) -> Config:
    """A Mackinac venue."""
    options: dict[str, Any] = {"symbols": symbols, "history": history}
    if api_key_env:
        options["api_key_env"] = api_key_env
    return venue_config(data_dir, "mackinac", url, options, **transport)


def frame_types(entry: Sent) -> list[tuple[int, str]]:
    """Mackinac-style frames by (session, type); a print without exchange also counts as
    (session, "legacy_print")."""
    try:
        msg = orjson.loads(entry.text)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(msg, dict):
        return []
    kind = str(msg.get("type"))
    if kind == "print" and "exchange" not in msg:
        return [(entry.conn, kind), (entry.conn, "legacy_print")]
    return [(entry.conn, kind)]


def journal_sessions(data_dir: Path, run: str, conn: str = "feed") -> list[list[bytes]]:
    """Inbound frames of one connection, split at each (re)connect."""
    return e2e.journal_sessions(data_dir, run, conn, "mackinac")


def expected_rows(frames: list[dict[str, Any]]) -> dict[tuple[str, str | None], list[dict]]:
    """Frames -> the rows each table must hold, keyed by (table, source filter)."""
    out: dict[tuple[str, str | None], list[dict]] = {}

    def put(table: Table, frame: dict, source: str | None = None) -> None:
        out.setdefault((table.name, source), []).append(frame)

    by_type = {t.name.removeprefix("mackinac_"): t for t in T.TABLES}
    for f in frames:
        kind = f["type"]
        if kind == "print":
            put(T.PRINT, f, "live")
        elif kind == "liquidity":
            put(T.LIQUIDITY, f, "live")
        elif kind == "snapshot":
            for p in f["prints"]:
                put(T.PRINT, p, "history")
            put(T.SNAPSHOT, {k: v for k, v in f.items() if k != "prints"})
        elif kind == "ammliquidity_snapshot":
            for e in f["events"]:
                put(T.LIQUIDITY, e, "snapshot")
            put(T.AMMLIQUIDITY_SNAPSHOT, {k: v for k, v in f.items() if k != "events"})
        else:
            put(by_type[kind], f)
    return out


def same(expected: Any, actual: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(same(v, actual.get(k)) for k, v in
                                                expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and len(expected) == len(actual) and all(
            same(e, a) for e, a in zip(expected, actual, strict=True))
    if isinstance(actual, str) and not isinstance(expected, str):
        return actual == str(expected)  # exact integers kept as strings
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return float(expected) == float(actual)
    return expected == actual


def compare_lake(con: Any, run_id: str, frames: list[dict[str, Any]]) -> dict[str, int]:
    """Assert every table's rows equal the frames, field by field; return rows per table."""
    tables = {t.name: t for t in T.TABLES}
    counts: dict[str, int] = {}
    for (name, source), want in expected_rows(frames).items():
        where = f"run_id = '{run_id}'" + (f" AND source = '{source}'" if source else "")
        df = con.sql(f"SELECT * EXCLUDE (ts_recv, ts_event, date) FROM {name} WHERE {where} "
                     f"ORDER BY recv_seq, recv_sub").pl()
        got = df.to_dicts()
        assert len(got) == len(want), f"{name}/{source}: {len(got)} rows, {len(want)} frames"
        for frame, row in zip(want, got, strict=True):
            for col in tables[name].columns:
                if col.key in frame:
                    assert same(frame[col.key], row[col.name]), (
                        f"{name}.{col.name}: frame {frame[col.key]!r} lake {row[col.name]!r}")
            assert row["extra"] is None, f"{name}: undeclared fields {row['extra']}"
        counts[name] = counts.get(name, 0) + len(got)
    return counts
