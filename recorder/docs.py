"""``docs/tables.md``: every table of the lake, generated from the catalogue.

Columns (name, Arrow type, the venue's wire key, doc), dedup key, where ``ts_event`` comes
from, keys dropped on purpose, what a raw row is filled with, and the views, for the shared
tables and then each venue's in declaration order. ``recorder docs --write`` rewrites the
file; a test fails when the file and the catalogue differ, so the docs cannot drift.
"""

from __future__ import annotations

from pathlib import Path

from recorder.catalogue import Catalogue
from recorder.schema import COMMON, EXTRA, SHARED, Table

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
first receipt of each value of the dedup key.
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
    out += [f"- views: `{t.name}`, `{t.name}_dedup`", "",
            "| column | type | wire | doc |", "|---|---|---|---|"]
    for c in t.columns:
        wire = f"`{c.wire}`" if c.wire and c.wire != c.name else ""
        out.append(f"| `{c.name}` | `{c.type}` | {wire} | {_cell(c.doc)} |")
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
    return "\n".join(lines).rstrip("\n") + "\n"
