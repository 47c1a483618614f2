"""docs/tables.md is generated from the catalogue and must stay equal to it."""

from __future__ import annotations

from recorder.docs import DOCS_FILE, render_tables
from recorder.venues import CATALOGUE


def test_tables_doc_matches_the_catalogue() -> None:
    assert DOCS_FILE.read_text() == render_tables(CATALOGUE), \
        "run `make docs` (recorder docs --write)"


def test_every_table_is_documented() -> None:
    text = render_tables(CATALOGUE)
    assert all(f"### `{name}`" in text for name in CATALOGUE.tables)
