"""DuckDB and Polars access to the lake.

``queries/views.sql`` is generated from the schema registry (``recorder views --write``; a test
keeps it equal): one view per table over its hive-partitioned files, and ``<table>_dedup``
applying the table's dedup key. ``${lake}`` stands for the lake folder. DuckDB and Polars read
the ``date=YYYY-MM-DD`` folder as a DATE column named ``date``.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import polars as pl

from recorder.schema import Table
from recorder.venues import CATALOGUE

VIEWS_FILE = Path(__file__).resolve().parent.parent / "queries" / "views.sql"
_HEADER = """-- Generated from the schema registry (recorder/schema.py and recorder/venues/*/tables.py)
-- by `recorder views --write`; tests/test_views.py fails when this file and the registry
-- differ. ${lake} is the lake folder; recorder.duck.connect() substitutes it.
"""


def _glob(table: str) -> str:
    return f"${{lake}}/{table}/date=*/*.parquet"


def dedup_key(t: Table) -> tuple[str, ...]:
    """The table's dedup key as the views apply it. A key naming a receipt (``run_id``,
    ``conn_id``, ``recv_seq``) is per venue too: connection names are per venue, and two
    venue sections of one adapter in one run (A/B) both have a ``feed``."""
    key = tuple(t.dedup_key)
    if "run_id" in key and "venue" not in key:
        key = ("venue", *key)
    return key


def view_sql(t: Table) -> str:
    key = ", ".join(dedup_key(t))
    doc = t.doc.replace("\n", " ")
    return (
        f"-- {t.name}: {doc}\n"
        f"CREATE OR REPLACE VIEW {t.name} AS SELECT * FROM read_parquet('{_glob(t.name)}', "
        f"hive_partitioning = true, union_by_name = true);\n"
        f"CREATE OR REPLACE VIEW {t.name}_dedup AS SELECT * FROM {t.name} "
        f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY ts_recv, run_id, recv_seq, recv_sub) = 1;\n"
    )


def render_views() -> str:
    tables = sorted(CATALOGUE.tables.values(), key=lambda t: (t.venue != "*", t.name))
    return _HEADER + "\n" + "\n".join(view_sql(t) for t in tables)


_BLOCK = re.compile(r"^-- ([a-z0-9_]+): .*$", re.M)


def _statements(sql: str) -> list[tuple[str, str]]:
    """(table name, its statements) per view block of views.sql."""
    heads = list(_BLOCK.finditer(sql))
    out = []
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(sql)
        out.append((m.group(1), sql[m.end():end].strip()))
    return out


def connect(data_dir: str | Path = "data", database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with every view. Tables without files yet get an empty view of
    the right shape, so queries work on a fresh lake too (and ``SHOW TABLES`` lists only
    the views: the empty ones read an Arrow table that has no name of its own)."""
    lake = (Path(data_dir) / "lake").resolve()
    con = duckdb.connect(database)
    sql = VIEWS_FILE.read_text() if VIEWS_FILE.exists() else render_views()
    registry = CATALOGUE.tables
    for name, stmts in _statements(sql):
        table = registry.get(name)
        if any((lake / name).glob("date=*/*.parquet")) or table is None:
            con.execute(stmts.replace("${lake}", str(lake).replace("'", "''")))
            continue
        key_stmt = stmts.split("\n")[-1]
        con.from_arrow(table.arrow_schema.empty_table()).project(
            "*, NULL::DATE AS date").create_view(name, replace=True)
        con.execute(key_stmt)
    return con


def lazy(table: str, data_dir: str | Path = "data") -> pl.LazyFrame:
    """A Polars lazy frame over one table (hive ``date`` column included); an empty frame of
    the table's shape while it has no files, as :func:`connect` gives an empty view."""
    folder = Path(data_dir) / "lake" / table
    if not any(folder.glob("date=*/*.parquet")):
        t = CATALOGUE.tables.get(table)
        if t is None:
            raise ValueError(f"unknown table {table!r}")
        empty = pl.from_arrow(t.arrow_schema.empty_table())
        assert isinstance(empty, pl.DataFrame)
        return empty.with_columns(pl.lit(None, dtype=pl.Date).alias("date")).lazy()
    return pl.scan_parquet(str(folder / "date=*" / "*.parquet"), hive_partitioning=True)


def tables_with_rows(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int]]:
    names = sorted(CATALOGUE.tables)
    sql = " UNION ALL ".join(f"SELECT '{n}' AS t, count(*) AS n FROM {n}" for n in names)
    return [(t, int(n)) for t, n in con.sql(sql).fetchall() if n]
