"""Helpers for Power.Trade tests: what a lake row must hold for a venue frame (written from
the documented conventions, independently of the adapter's converters), and end-to-end runs
against the in-process simulator."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import orjson

from recorder.config import Config
from recorder.schema import Table
from recorder.venues.powertrade.tables import FIELDS, Fld, Nested
from tests import e2e
from tests.e2e import venue_config

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def micros(v: Any) -> Any:
    """A lake timestamp (datetime, or int µs from a cast) as integer µs."""
    if isinstance(v, dt.datetime):
        return (v - EPOCH) // dt.timedelta(microseconds=1)
    return v


def _num(text: Any) -> Any:
    if isinstance(text, str) and text.lower() in ("", "none", "null"):
        return None
    return text


def check_value(kind: str | Nested, sent: Any, got: Any, where: str) -> None:
    """Assert one lake value equals the venue's string converted as documented."""
    if isinstance(kind, Nested):
        assert isinstance(got, list) and len(got) == len(sent), f"{where}: {got!r}"
        for i, (s_item, g_item) in enumerate(zip(sent, got, strict=True)):
            check_fields(kind.fields, s_item, g_item, f"{where}[{i}]", nested=True)
            unknown = {k: v for k, v in s_item.items()
                       if k not in {f.wire for f in kind.fields}}
            want = orjson.loads(g_item["extra"]) if g_item.get("extra") else {}
            assert want == unknown, f"{where}[{i}].extra: {want} vs {unknown}"
        return
    sent = _num(sent) if kind in ("i", "us", "f", "x", "e") else sent
    if sent is None:
        assert got is None, f"{where}: {got!r} for a null"
    elif kind == "s":
        assert got == str(sent), f"{where}: {got!r} != {sent!r}"
    elif kind in ("i", "us"):
        assert micros(got) == int(sent) and type(micros(got)) is int, f"{where}: {got!r}"
    elif kind == "e":  # an entity id: the int of one entity; a multi-leg id only as text
        one = str(sent).lstrip("-").isdigit()
        assert got == (int(sent) if one else None), f"{where}: {got!r}"
    elif kind in ("f", "x"):
        assert isinstance(got, float) and got == float(sent), f"{where}: {got!r} != {sent!r}"
    elif kind == "b":
        assert got is (str(sent).lower() in ("true", "1")), f"{where}: {got!r}"
    elif kind == "sl":
        assert got == [str(s) for s in sent], f"{where}: {got!r}"
    else:  # pragma: no cover
        raise AssertionError(kind)


def check_fields(fields: tuple[Fld, ...], body: dict[str, Any], row: dict[str, Any],
                 where: str, nested: bool = False) -> None:
    for f in fields:
        name = f.wire if nested else (f.name or f.wire)
        if f.wire not in body:
            assert row.get(name) is None, f"{where}.{name}: {row.get(name)!r} for absent"
            continue
        check_value(f.kind, body[f.wire], row[name], f"{where}.{name}")
        if f.kind in ("x", "e"):  # the value exactly as sent, beside its typed column
            text = f"{f.wire}_text" if nested else f"{name}_text"
            assert row[text] == str(body[f.wire]), f"{where}.{text}: {row[text]!r}"


def check_row(table: Table, body: dict[str, Any], row: dict[str, Any],
              adapter_keys: frozenset[str] = frozenset()) -> None:
    """Every declared field of ``body`` is in ``row`` with its real type; undeclared venue
    fields are in ``extra``."""
    fields = FIELDS[table.name]
    check_fields(fields, body, row, table.name)
    declared = {f.wire for f in fields} | adapter_keys
    unknown = {k: v for k, v in body.items() if k not in declared}
    got = orjson.loads(row["extra"]) if row["extra"] else {}
    assert got == unknown, f"{table.name}.extra: {got} vs {unknown}"


# --- end to end -------------------------------------------------------------------------------


def config(data_dir: Path, url: str, options: dict[str, Any], **transport: Any) -> Config:
    return venue_config(data_dir, "powertrade", url, options, **transport)


def journal_sessions(data_dir: Path, run: str, conn: str) -> list[list[bytes]]:
    """Inbound frames of one connection, split at each (re)connect."""
    return e2e.journal_sessions(data_dir, run, conn, "powertrade")
