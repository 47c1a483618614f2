"""Order books rebuilt from the lake: an L2 book at any instant, and a top-N series.

Every venue with a book, read from its own tables (their shapes are the registry's):

- ``derive``: ``derive_orderbook``, a full top-N snapshot per message (``bids``/``asks`` of
  ``{price, amount}``); the book at T is the newest snapshot at or before T. A skipped
  ``publish_id`` loses nothing of the book (the next snapshot is whole): ``gap_before`` counts
  them.
- ``diffusal``: ``diffusal_depth``, snapshots (stream or REST, ``source = 'rest'``) and diffs
  (``size`` 0 removes a level), ordered by ``sequence``. A diff whose sequence is not the
  next one is a gap: the book goes on (``complete`` false) until a snapshot at least as new
  resynchronises it; older diffs and snapshots (the grouped stream repeats the instrument's)
  are skipped.
- ``powertrade``: ``powertrade_snapshot`` (every order: price, quantity, id) then
  ``order_added``/``_deleted``/``_executed``/``_updated`` on the firm market (``market_id``
  ``0``; RFQ books, ``none``, are not price books), aggregated by price. A new snapshot (after
  a reconnect) replaces the book.
- ``mackinac``: ``mackinac_quote``, the venue's whole book on every update (CLOB depth, one
  level per AMM fee tier), per ``exchange:symbol``.

Rows come from the ``_dedup`` views (two recorders, or a history reply, give each update
once), in recording order (``ts_recv``, then the connection's own order). Times are ns since
the epoch (``int``) or ISO-8601 strings, on ``ts_recv`` (what the recorder knew at that
instant).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

VENUES = ("derive", "diffusal", "powertrade", "mackinac")


@dataclass
class Book:
    """One instrument's L2 book. ``bids``/``asks`` map price -> size."""

    venue: str
    instrument: str
    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)
    ts_recv_ns: int | None = None  # receipt of the last update applied
    ts_event_ns: int | None = None
    sequence: int | None = None  # the venue's sequence / publish id, where it has one
    complete: bool = False  # False before the first snapshot and after an unhealed gap
    gap_before: int = 0  # sequence numbers skipped so far (Derive publish ids, Diffusal diffs)

    def top(self, n: int = 5) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """The best ``n`` levels of each side, best first."""
        bids = sorted(((p, s) for p, s in self.bids.items() if s > 0), reverse=True)[:n]
        asks = sorted((p, s) for p, s in self.asks.items() if s > 0)[:n]
        return bids, asks

    def row(self, n: int = 5) -> dict[str, Any]:
        """A flat top-N row: ``bid_px_1``, ``bid_sz_1``, ..., ``ask_px_n``, ``ask_sz_n``."""
        bids, asks = self.top(n)
        out: dict[str, Any] = {"venue": self.venue, "instrument": self.instrument,
                               "ts_recv_ns": self.ts_recv_ns, "ts_event_ns": self.ts_event_ns,
                               "sequence": self.sequence, "complete": self.complete}
        for side, levels in (("bid", bids), ("ask", asks)):
            for i in range(n):
                p, s = levels[i] if i < len(levels) else (None, None)
                out[f"{side}_px_{i + 1}"], out[f"{side}_sz_{i + 1}"] = p, s
        return out


def _ns(value: int | str | None) -> int | None:
    from recorder.replay import _ns as parse

    return parse(value)


# --- the rows each venue's book is made of ------------------------------------------------------


def _q(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> Iterator[dict[str, Any]]:
    cur = con.execute(sql, params)
    cols = [c[0] for c in cur.description]
    while True:
        chunk = cur.fetchmany(2048)
        if not chunk:
            return
        for r in chunk:
            yield dict(zip(cols, r, strict=True))


_ORDER = "ts_recv_ns, conn_id, recv_seq, recv_sub, run_id"


def _window(alias: str, instrument: str | None, start: int | None, end: int | None,
            col: str, params: list[Any]) -> str:
    where = []
    if instrument is not None:
        where.append(f"{col} = ?")
        params.append(instrument)
    if start is not None:
        where.append(f"{alias}.ts_recv_ns >= ?")
        params.append(start)
    if end is not None:
        where.append(f"{alias}.ts_recv_ns <= ?")
        params.append(end)
    return " AND ".join(where) or "true"


def _start_of(con: duckdb.DuckDBPyConnection, venue: str, instrument: str | None,
              t: int | None) -> int | None:
    """Receipt of the newest snapshot at or before ``t`` (per instrument: the earliest of
    those), from which the book can be rebuilt forward; None: from the beginning."""
    if t is None:
        return None
    src = {"derive": ("derive_orderbook_dedup", "instrument_name", "true"),
           "diffusal": ("diffusal_depth_dedup", "symbol", "type = 'snapshot'"),
           "powertrade": ("powertrade_snapshot_dedup", "symbol", "market_id = '0'"),
           "mackinac": ("mackinac_quote_dedup", "exchange || ':' || symbol", "true")}[venue]
    table, key, cond = src
    params: list[Any] = [t]
    inst = ""
    if instrument is not None:
        inst = f" AND {key} = ?"
        params.append(instrument)
    rows = con.execute(f"SELECT min(s) FROM (SELECT max(ts_recv_ns) AS s FROM {table} WHERE "
                       f"{cond} AND ts_recv_ns <= ?{inst} GROUP BY {key})", params).fetchall()
    return rows[0][0] if rows and rows[0][0] is not None else None


def _events(con: duckdb.DuckDBPyConnection, venue: str, instrument: str | None,
            start: int | None, end: int | None) -> Iterator[dict[str, Any]]:
    """The rows of ``venue``'s book tables in recording order, each with ``kind`` and
    ``instrument``."""
    p: list[Any] = []
    if venue == "derive":
        w = _window("d", instrument, start, end, "instrument_name", p)
        sql = (f"SELECT 'snapshot' AS kind, instrument_name AS instrument, publish_id AS seq, "
               f"[{{'price': l.price, 'size': l.amount}} FOR l IN bids] AS bids, "
               f"[{{'price': l.price, 'size': l.amount}} FOR l IN asks] AS asks, "
               f"ts_recv_ns, ts_event_ns FROM derive_orderbook_dedup d WHERE {w} "
               f"ORDER BY {_ORDER}")
    elif venue == "mackinac":
        w = _window("q", instrument, start, end, "exchange || ':' || symbol", p)
        sql = (f"SELECT 'snapshot' AS kind, exchange || ':' || symbol AS instrument, "
               f"NULL::BIGINT AS seq, [{{'price': l.price, 'size': l.size}} FOR l IN bids] "
               f"AS bids, [{{'price': l.price, 'size': l.size}} FOR l IN asks] AS asks, "
               f"ts_recv_ns, ts_event_ns FROM mackinac_quote_dedup q WHERE {w} "
               f"ORDER BY {_ORDER}")
    elif venue == "diffusal":
        w = _window("d", instrument, start, end, "symbol", p)
        sql = (f"SELECT type AS kind, symbol AS instrument, sequence AS seq, bids, asks, "
               f"ts_recv_ns, ts_event_ns FROM diffusal_depth_dedup d WHERE {w} "
               f"ORDER BY {_ORDER}")
    elif venue == "powertrade":
        parts = []
        for kind, table, cols in (
                ("snapshot", "snapshot", "NULL AS side, NULL AS order_id, NULL::DOUBLE AS "
                 "price, NULL::DOUBLE AS quantity, NULL AS new_order_id, [{'order_id': "
                 "l.order_id, 'price': l.price, 'quantity': l.quantity} FOR l IN buy] AS buy, "
                 "[{'order_id': l.order_id, 'price': l.price, 'quantity': l.quantity} FOR l "
                 "IN sell] AS sell"),
                ("added", "order_added", "side, order_id, price, quantity, NULL, NULL, NULL"),
                ("deleted", "order_deleted", "side, order_id, NULL, NULL, NULL, NULL, NULL"),
                ("executed", "order_executed", "side, order_id, price, quantity, NULL, NULL, "
                 "NULL"),
                ("updated", "order_updated", "side, old_order_id, price, quantity, "
                 "new_order_id, NULL, NULL")):
            w = _window("t", instrument, start, end, "symbol", p)
            parts.append(f"SELECT '{kind}' AS kind, symbol AS instrument, {cols}, ts_recv_ns, "
                         f"ts_event_ns, conn_id, recv_seq, recv_sub, run_id FROM "
                         f"powertrade_{table}_dedup t WHERE market_id = '0' AND {w}")
        sql = f"SELECT * FROM ({' UNION ALL '.join(parts)}) ORDER BY {_ORDER}"
    else:
        raise ValueError(f"no book for venue {venue!r} (books: {', '.join(VENUES)})")
    yield from _q(con, sql, p)


def _apply(book: Book, ev: dict[str, Any], orders: dict[str, tuple[str, float, float]]) -> None:
    """One row into ``book`` (``orders``: Power.Trade's orders by id: side, price, qty)."""
    kind = ev["kind"]
    seq = ev.get("seq")
    if kind == "snapshot" and "buy" not in ev:
        if book.venue == "diffusal" and book.sequence is not None and seq is not None \
                and seq < book.sequence:
            return  # older than what the book holds (a late REST answer)
        if book.venue == "derive" and book.sequence is not None and seq is not None:
            if seq <= book.sequence:
                return
            book.gap_before += seq - book.sequence - 1
        book.bids = _sum_levels(ev["bids"])
        book.asks = _sum_levels(ev["asks"])
        book.sequence, book.complete = seq, True
    elif kind == "diff":
        if book.sequence is None:
            return  # a diff before any snapshot: nothing to apply it to
        if seq is not None and seq <= book.sequence:
            return  # seen (the grouped stream repeats the instrument's diffs)
        if seq is not None and seq != book.sequence + 1:
            book.complete = False  # a hole: wrong until the next snapshot
            book.gap_before += seq - book.sequence - 1
        for side, levels in (("bids", book.bids), ("asks", book.asks)):
            for lv in ev[side] or []:
                if lv["size"]:
                    levels[lv["price"]] = lv["size"]
                else:
                    levels.pop(lv["price"], None)
        book.sequence = seq
    elif kind == "snapshot":  # Power.Trade: every order
        orders.clear()
        for side, levels in (("buy", ev["buy"]), ("sell", ev["sell"])):
            for lv in levels or []:
                orders[lv["order_id"]] = (side, lv["price"], lv["quantity"])
        book.complete = True
        _aggregate(book, orders)
    else:
        oid = ev["order_id"]
        if kind == "added":
            orders[oid] = (ev["side"], ev["price"], ev["quantity"])
        elif kind == "deleted":
            orders.pop(oid, None)
        elif kind == "executed":
            o = orders.get(oid)
            if o is not None:
                orders[oid] = (o[0], o[1], o[2] - (ev["quantity"] or 0.0))
        elif kind == "updated":
            o = orders.pop(oid, None)
            side = ev["side"] or (o[0] if o else None)
            orders[ev["new_order_id"]] = (side, ev["price"], ev["quantity"])
        _aggregate(book, orders)
    book.ts_recv_ns, book.ts_event_ns = ev["ts_recv_ns"], ev["ts_event_ns"]


def _sum_levels(levels: list[dict[str, Any]] | None) -> dict[float, float]:
    """Levels by price; two levels at one price (AMM fee tiers) add up."""
    out: dict[float, float] = {}
    for lv in levels or []:
        if lv["size"]:
            out[lv["price"]] = out.get(lv["price"], 0.0) + lv["size"]
    return out


def _aggregate(book: Book, orders: dict[str, tuple[str, float, float]]) -> None:
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    for side, price, qty in orders.values():
        levels = bids if side == "buy" else asks
        levels[price] = levels.get(price, 0.0) + qty
    # Sums of decimal quantities in floats: round to what the venue's decimals can hold.
    book.bids = {p: round(q, 10) for p, q in bids.items() if round(q, 10) > 0}
    book.asks = {p: round(q, 10) for p, q in asks.items() if round(q, 10) > 0}


# --- the API ----------------------------------------------------------------------------------


def _con(data_dir: str | Path, venue: str) -> duckdb.DuckDBPyConnection:
    from recorder.duck import CATALOGUE, connect

    if venue not in VENUES:
        raise ValueError(f"no book for venue {venue!r} (books: {', '.join(VENUES)})")
    # the venue's own views only: a connection with every view costs a second or more
    return connect(data_dir, views={t.name for t in CATALOGUE.tables.values()
                                    if t.venue == venue})


def books_at(data_dir: str | Path, venue: str, t: int | str | None = None,
             instrument: str | None = None) -> dict[str, Book]:
    """Every instrument's book of ``venue`` as it stood at ``t`` (default: the end of the
    lake), or only ``instrument``'s."""
    con = _con(data_dir, venue)
    end = _ns(t)
    # From the newest snapshot on (at or before t): the rows before it cannot matter.
    start = _start_of(con, venue, instrument, end if end is not None else 1 << 62)
    books: dict[str, Book] = {}
    orders: dict[str, dict[str, tuple[str, float, float]]] = {}
    for ev in _events(con, venue, instrument, start, end):
        name = ev["instrument"]
        b = books.get(name)
        if b is None:
            b = books[name] = Book(venue, name)
        _apply(b, ev, orders.setdefault(name, {}))
    con.close()
    return books


def book_at(data_dir: str | Path, venue: str, instrument: str,
            t: int | str | None = None) -> Book:
    """``instrument``'s book of ``venue`` at ``t`` (an empty, incomplete book when the lake
    has nothing of it by then)."""
    return books_at(data_dir, venue, t, instrument).get(instrument) or Book(venue, instrument)


def top_series(data_dir: str | Path, venue: str, instrument: str | None = None,
               n: int = 5, start: int | str | None = None,
               end: int | str | None = None) -> Iterator[dict[str, Any]]:
    """A top-``n`` row (see :meth:`Book.row`) after every update of each instrument's book
    from ``start`` to ``end``; the book at ``start`` is rebuilt first (from its newest
    snapshot), so the first rows are already right."""
    con = _con(data_dir, venue)
    lo, hi = _ns(start), _ns(end)
    first = _start_of(con, venue, instrument, lo) if lo is not None else None
    books: dict[str, Book] = {}
    orders: dict[str, dict[str, tuple[str, float, float]]] = {}
    try:
        for ev in _events(con, venue, instrument, first, hi):
            name = ev["instrument"]
            b = books.get(name)
            if b is None:
                b = books[name] = Book(venue, name)
            _apply(b, ev, orders.setdefault(name, {}))
            if lo is None or ev["ts_recv_ns"] >= lo:
                yield b.row(n)
    finally:
        con.close()
