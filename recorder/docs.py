"""``docs/tables.md``: every table of the lake, generated from the catalogue.

Columns (name, Arrow type, the venue's wire key, doc), dedup key, where ``ts_event`` comes
from, keys dropped on purpose, what a raw row is filled with, and the views, for the shared
tables and then each venue's in declaration order. ``recorder docs --write`` rewrites the
file; a test fails when the file and the catalogue differ, so the docs cannot drift.
"""

from __future__ import annotations

from pathlib import Path

from recorder.catalogue import Catalogue
from recorder.schema import (
    COMMON,
    CROSS_COMMON,
    CROSS_TAIL,
    CROSS_VIEWS,
    EXTRA,
    SHARED,
    CrossView,
    Table,
)

DOCS_FILE = Path(__file__).resolve().parent.parent / "docs" / "tables.md"

_HEADER = """# Tables

Generated from the catalogue (`recorder/schema.py` and each venue's `tables.py`) by
`recorder docs --write`; `tests/test_docs.py` fails when this file and the catalogue differ.
The README says how rows are made; this file lists what they hold.

Every row of every table starts with these columns, filled by the pipeline:

| column | type | doc |
|---|---|---|
{common}

then the table's own columns below, whose *wire* key is the venue's name for the field when
it differs (keys starting with `_` are set by the adapter), and `{extra}`: JSON of every
field the venue sent that the table does not declare, at any depth. Each table `T` has two
views (`queries/views.sql`): `T` over every file of the lake, and `T_dedup`, which keeps the
first receipt of each value of the dedup key. The cross-venue views (`trades`,
`book_updates`, ...) are at the end: [Cross-venue views](#cross-venue-views).
"""


def _cell(text: str) -> str:
    """Text fit for one cell of a Markdown table."""
    return " ".join(text.split()).replace("|", "\\|")


def _table(t: Table) -> list[str]:
    out = [f"### `{t.name}`", ""]
    if t.doc:
        out += [_cell(t.doc), ""]
    out.append(f"- dedup key: `{', '.join(t.dedup_key)}`")
    if t.event_time:
        out.append(f"- `ts_event` from `{t.event_time}` ({t.event_time_unit})")
    else:
        out.append("- `ts_event`: null (the venue sends no time for it)")
    if t.ignore_keys:
        keys = ", ".join(f"`{k}`" for k in sorted(t.ignore_keys))
        out.append(f"- not kept (the table's name says it): {keys}")
    if t.raw_constants:
        out.append("- a frame stored as it is gets " + ", ".join(
            f"`{k}` = `{v!r}`" for k, v in t.raw_constants))
    out.append(f"- views: `{t.name}`, `{t.name}_dedup`")
    if t.maps:
        views = sorted({m.view for m in t.maps}, key=[v.name for v in CROSS_VIEWS].index)
        out.append("- in the cross-venue views: " + ", ".join(f"[`{v}`](#{v})" for v in views))
    out += ["",
            "| column | type | wire | doc |", "|---|---|---|---|"]
    for c in t.columns:
        wire = f"`{c.wire}`" if c.wire and c.wire != c.name else ""
        out.append(f"| `{c.name}` | `{c.type}` | {wire} | {_cell(c.doc)} |")
    return [*out, ""]


def _cross(view: CrossView, catalogue: Catalogue) -> list[str]:
    out = [f"### `{view.name}`", "", _cell(view.doc), "",
           "| column | type | doc |", "|---|---|---|"]
    for n, typ, doc in (*CROSS_COMMON, *view.columns, *CROSS_TAIL):
        out.append(f"| `{n}` | `{typ}` | {_cell(doc)} |")
    out += ["", "How each venue table maps onto it (SQL over the table's `_dedup` view; a "
            "column not listed is NULL):", ""]
    for t in catalogue.tables.values():
        for m in t.maps:
            if m.view != view.name:
                continue
            cols = "; ".join(f"`{k}` = `{_cell(v)}`" for k, v in m.columns)
            extra = "".join(f" {label} `{_cell(x)}`." for label, x in
                            (("One row per element of", m.unnest), ("Rows where", m.where))
                            if x)
            note = f" {_cell(m.note)}." if m.note else ""
            out.append(f"- [`{t.name}`](#{t.name}): {cols}.{extra}{note}")
    if view.example:
        out += ["", "```sql", view.example, "```"]
    return [*out, ""]


def render_tables(catalogue: Catalogue) -> str:
    common = "\n".join(f"| `{n}` | `{t}` | {_cell(d)} |" for n, t, d in COMMON)
    lines = [_HEADER.format(common=common, extra=EXTRA), "## Contents", ""]
    groups = [("shared", SHARED)] + [(name, spec.tables)
                                     for name, spec in catalogue.venues.items()]
    for name, tables in groups:
        lines.append(f"- **{name}**: " + ", ".join(f"[`{t.name}`](#{t.name})" for t in tables))
    lines.append("")
    for name, tables in groups:
        lines += [f"## {name} ({len(tables)} tables)", ""]
        for t in tables:
            lines += _table(t)
    lines += ["## Cross-venue views", "",
              "Declared once in `recorder/schema.py` (`CROSS_VIEWS`); each venue table says how "
              "it maps (`Table.maps`). Each view is a `UNION ALL` of one typed `SELECT` per "
              "mapping over the venue table's `_dedup` view (each row once, however many "
              "recorders or streams delivered it; on compacted days that costs no more than "
              "the plain view). Every one starts with `venue, source_table, ts_event, "
              "ts_event_ns, ts_recv, ts_recv_ns` and ends with the source row's identity "
              "(`run_id, conn_id, recv_seq, recv_sub`) and `date`.", ""]
    for view in CROSS_VIEWS:
        lines += _cross(view, catalogue)
    return "\n".join(lines).rstrip("\n") + "\n"
