"""How a table of the lake is declared. The shared tables live here; each venue declares its
own in its ``tables.py`` and lists them in its ``VenueSpec``, and the catalogue
(:mod:`recorder.venues`) is the registry built from those: writers, views, recovery and docs
read it. This module imports nothing of the venues.

A table declares:
- its columns, each with the venue's wire name (the key in the JSON frame) and the column
  name in the lake (snake_case), an Arrow type and a doc string;
- its dedup key, as SQL expressions over lake columns (views and compaction use it);
- where ``ts_event`` comes from (a column and its unit), so the conversion is one vectorized
  Arrow expression per batch instead of Python work per row;
- optionally ``cluster_by``: the columns naming an instrument, which compaction sorts by
  first (by default the instrument-like columns of the dedup key, see
  :func:`cluster_columns`).

Every table also gets the common columns below, filled by the pipeline, never by adapters.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import pyarrow as pa

TS = pa.timestamp("ns", tz="UTC")

# (name, type, doc): present on every row of every table.
COMMON: tuple[tuple[str, pa.DataType, str], ...] = (
    ("ts_recv", TS, "local receive time of the frame (UTC, ns), taken before parsing"),
    ("ts_event", TS, "the venue's own time for the event, converted to ns UTC; null if none"),
    ("venue", pa.string(), "venue name from the config section"),
    ("run_id", pa.string(), "recording run that received the frame"),
    ("conn_id", pa.string(), "logical connection within the venue"),
    ("recv_seq", pa.int64(), "position of the frame in its connection for this run"),
    ("recv_sub", pa.int32(), "position of the row among those its frame produced (a snapshot "
     "gives many); (venue, run_id, conn_id, recv_seq, recv_sub) names every row for ever"),
)
COMMON_NAMES = frozenset(n for n, _, _ in COMMON)
# What names one row for ever: the journal record it came from (venue, run, connection and
# position in it) and its place among that record's rows. Connection names are per venue.
IDENTITY = ("venue", "run_id", "conn_id", "recv_seq", "recv_sub")
EXTRA = "extra"  # JSON of fields the venue sent that the table does not declare (nothing lost)
# The recording order (replay's). Deduplication keeps the first receipt of a key in this
# order, so which copy survives never depends on file names or on what a reader met first.
RECEIPT_ORDER = ("ts_recv", "venue", "conn_id", "recv_seq", "recv_sub", "run_id")
# Column names that say which instrument (market, pair, contract) a row is about, in the
# order compaction sorts them: venue-level names first, then the instrument's own.
INSTRUMENT_COLUMNS = ("exchange", "chain", "market_id", "tradeable_entity_id", "pair",
                      "underlying", "currency", "asset", "symbol", "instrument_name")

_UNIT_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


@dataclass(frozen=True)
class Col:
    """A column. ``wire`` is the key in the venue's frame (defaults to ``name``)."""

    name: str
    type: pa.DataType
    doc: str = ""
    wire: str | None = None

    @property
    def key(self) -> str:
        return self.wire or self.name


# --- cross-venue views --------------------------------------------------------------------


@dataclass(frozen=True)
class CrossView:
    """A view over every venue's tables that have the concept, in one shape: its own columns
    ``(name, DuckDB type, doc)``, declared once here; each venue table says how it maps onto
    it (:class:`Maps`). Every cross view also has :data:`CROSS_COMMON` first and
    :data:`CROSS_TAIL` last."""

    name: str
    doc: str
    columns: tuple[tuple[str, str, str], ...]
    example: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _, _ in self.columns)


@dataclass(frozen=True)
class Maps:
    """How rows of one venue table appear in a cross view.

    ``columns`` maps the view's columns to SQL expressions over the table's view columns
    (what ``SELECT * FROM <table>_dedup`` has: the lake columns, time columns as TIMESTAMPTZ
    with ``*_ns`` beside them); each is cast to the view's type, and a column not named is
    NULL. ``ts_event_ns`` may be given too (default: the table's ``ts_event_ns``).
    ``where`` keeps some rows only (the table's rows are ``src`` there). ``unnest``: a list expression (``bids``); the row is
    repeated once per element, which expressions read as ``_lv`` (its position, from 1, as
    ``_lv_i``): a book message becomes one row per level."""

    view: str
    columns: tuple[tuple[str, str], ...]
    where: str | None = None
    unnest: str | None = None
    note: str = ""

    def __init__(self, view: str, columns: dict[str, str] | tuple[tuple[str, str], ...],
                 where: str | None = None, unnest: str | None = None, note: str = "") -> None:
        object.__setattr__(self, "view", view)
        items = tuple(columns.items()) if isinstance(columns, dict) else tuple(columns)
        object.__setattr__(self, "columns", items)
        object.__setattr__(self, "where", where)
        object.__setattr__(self, "unnest", unnest)
        object.__setattr__(self, "note", note)


# (name, type, doc) of every cross view: first these, then the view's own, then CROSS_TAIL.
CROSS_COMMON: tuple[tuple[str, str, str], ...] = (
    ("venue", "VARCHAR", "venue name from the config section"),
    ("source_table", "VARCHAR", "the venue table the row comes from"),
    ("ts_event", "TIMESTAMPTZ", "the venue's time (µs, truncated); null if it sends none"),
    ("ts_event_ns", "BIGINT", "the venue's time, exact ns since the epoch"),
    ("ts_recv", "TIMESTAMPTZ", "local receipt (µs, truncated)"),
    ("ts_recv_ns", "BIGINT", "local receipt, exact ns since the epoch"),
)
CROSS_TAIL: tuple[tuple[str, str, str], ...] = (
    ("run_id", "VARCHAR", "with conn_id, recv_seq, recv_sub: the source row's identity"),
    ("conn_id", "VARCHAR", ""),
    ("recv_seq", "BIGINT", ""),
    ("recv_sub", "INTEGER", ""),
    ("date", "DATE", "the lake partition"),
)

_SIDE = "'buy' | 'sell' | 'unknown'"
CROSS_VIEWS: tuple[CrossView, ...] = (
    CrossView(
        "trades", "Public trade prints of every venue that has a tape, each print once.",
        (("instrument", "VARCHAR", "the venue's instrument name (Mackinac: exchange:symbol)"),
         ("price", "DOUBLE", "execution price, the venue's units"),
         ("size", "DOUBLE", "base units"),
         ("side", "VARCHAR", f"aggressor side: {_SIDE}"),
         ("trade_id", "VARCHAR", "the venue's trade id, when it sends one"),
         ("block_number", "BIGINT", "on-chain prints: block"),
         ("tx_index", "BIGINT", "on-chain prints: transaction index in the block"),
         ("tx_hash", "VARCHAR", "on-chain prints: transaction hash")),
        "SELECT venue, instrument, time_bucket(INTERVAL 1 minute, ts_event) AS minute,\n"
        "       arg_min(price, ts_event_ns) AS open, max(price) AS high, min(price) AS low,\n"
        "       arg_max(price, ts_event_ns) AS close, sum(size) AS volume\n"
        "FROM trades GROUP BY ALL ORDER BY minute"),
    CrossView(
        "book_updates", "One row per level change of every order book: a snapshot's every "
        "level (is_snapshot), a diff's changed levels (size 0 removes the level), Power.Trade's "
        "order events (order_id, action).",
        (("instrument", "VARCHAR", "the book's instrument"),
         ("side", "VARCHAR", "'bid' | 'ask'"),
         ("price", "DOUBLE", "level price (null for a Power.Trade deletion: see order_id)"),
         ("size", "DOUBLE", "size at the level after the update (0: removed); order books: "
          "the order's quantity"),
         ("is_snapshot", "BOOLEAN", "the row is part of a whole book (replaces what was "
          "there before, per instrument)"),
         ("sequence", "BIGINT", "the venue's book sequence (Derive publish_id, Diffusal "
          "sequence); null where it has none"),
         ("level", "INTEGER", "position in the message, 1 = first as sent"),
         ("action", "VARCHAR", "'set' (level size), 'add' | 'delete' | 'execute' | 'update' "
          "(order events)"),
         ("order_id", "VARCHAR", "order-by-order books: the order")),
        "-- levels of one book message, best first\n"
        "SELECT side, price, size FROM book_updates\n"
        "WHERE venue = 'derive' AND is_snapshot\n"
        "  AND (recv_seq, conn_id) = (SELECT (max(recv_seq), any_value(conn_id)) FROM "
        "book_updates WHERE venue = 'derive')\nORDER BY side, level"),
    CrossView(
        "top_of_book", "Best bid and ask over time, for every venue with a book, a quote or a "
        "ticker: one row per source update.",
        (("instrument", "VARCHAR", "the instrument"),
         ("bid_price", "DOUBLE", "best bid"), ("bid_size", "DOUBLE", "size at the best bid"),
         ("ask_price", "DOUBLE", "best ask"), ("ask_size", "DOUBLE", "size at the best ask")),
        "SELECT venue, instrument, ts_event, (bid_price + ask_price) / 2 AS mid,\n"
        "       ask_price - bid_price AS spread\n"
        "FROM top_of_book WHERE bid_price IS NOT NULL AND ask_price IS NOT NULL\n"
        "QUALIFY row_number() OVER (PARTITION BY venue, instrument ORDER BY ts_recv_ns DESC) = 1"),
    CrossView(
        "tickers", "Marks, indexes, open interest, implied vol and greeks, where the venue "
        "sends them.",
        (("instrument", "VARCHAR", "the instrument (or the index's pair/currency)"),
         ("mark_price", "DOUBLE", "mark price"), ("index_price", "DOUBLE", "index / spot"),
         ("last_price", "DOUBLE", "last trade price"),
         ("open_interest", "DOUBLE", "open interest, contracts"),
         ("iv", "DOUBLE", "implied volatility (fraction: 0.55 = 55%)"),
         ("bid_iv", "DOUBLE", "bid implied vol"), ("ask_iv", "DOUBLE", "ask implied vol"),
         ("delta", "DOUBLE", ""), ("gamma", "DOUBLE", ""), ("vega", "DOUBLE", ""),
         ("theta", "DOUBLE", ""), ("rho", "DOUBLE", "")),
        "SELECT venue, instrument, last(iv ORDER BY ts_recv_ns) AS iv,\n"
        "       last(mark_price ORDER BY ts_recv_ns) AS mark\n"
        "FROM tickers WHERE iv IS NOT NULL GROUP BY ALL"),
    CrossView(
        "funding", "Perpetual funding rates.",
        (("instrument", "VARCHAR", "the perpetual"),
         ("rate", "DOUBLE", "funding rate as a fraction, as the venue states it (see "
          "rate_period)"),
         ("rate_period", "VARCHAR", "what `rate` is per: 'year' (Mackinac, annualised) or "
          "'hour' (Derive)"),
         ("interval_hours", "DOUBLE", "hours between payments, when sent")),
        "SELECT venue, instrument, avg(rate) FILTER (rate_period = 'year') AS annualised\n"
        "FROM funding GROUP BY ALL"),
    CrossView(
        "rfq_events", "The life of requests for quotes (Totalis quote requests, RFQs and "
        "cashouts; Derive RFQs; Diffusal auctions; Power.Trade RFQ orders): one row per "
        "event.",
        (("rfq_id", "VARCHAR", "the request's id at the venue"),
         ("event", "VARCHAR", "what happened (the venue's event or table name)"),
         ("status", "VARCHAR", "the venue's status after the event, when it sends one"),
         ("instrument", "VARCHAR", "the instrument, or the legs as text"),
         ("side", "VARCHAR", f"the requester's side: {_SIDE}"),
         ("size", "DOUBLE", "requested size (Totalis: stake, USDC)"),
         ("price", "DOUBLE", "resulting price, where the event carries one"),
         ("quote_id", "VARCHAR", "the quote an event names (accepted, winner)"),
         ("tx_hash", "VARCHAR", "on-chain settlement")),
        "SELECT venue, event, count(*) FROM rfq_events GROUP BY ALL ORDER BY 1, 3 DESC"),
    CrossView(
        "quote_events", "Quotes answering RFQs (ours as a market maker, or the best one "
        "shown): one row per quote event.",
        (("quote_id", "VARCHAR", "the quote's id (Diffusal: its nonce)"),
         ("rfq_id", "VARCHAR", "the request it answers"),
         ("event", "VARCHAR", "what happened"),
         ("status", "VARCHAR", "the venue's status, when it sends one"),
         ("side", "VARCHAR", f"the quoter's side: {_SIDE}"),
         ("price", "DOUBLE", "quoted price (Totalis: payout odds)"),
         ("size", "DOUBLE", "quoted size (Totalis: user cost, USDC)"),
         ("maker", "VARCHAR", "the quoting market maker")),
        "SELECT q.venue, q.rfq_id, q.quote_id, q.price, r.event\n"
        "FROM quote_events q JOIN rfq_events r USING (venue, rfq_id) LIMIT 20"),
    CrossView(
        "fills", "Our own fills (private channels).",
        (("instrument", "VARCHAR", "the instrument"), ("side", "VARCHAR", f"ours: {_SIDE}"),
         ("price", "DOUBLE", "fill price"), ("size", "DOUBLE", "filled size"),
         ("fee", "DOUBLE", "fee charged"),
         ("liquidity", "VARCHAR", "'maker' | 'taker' | the venue's flag"),
         ("trade_id", "VARCHAR", "the trade"), ("order_id", "VARCHAR", "our order"),
         ("status", "VARCHAR", "settlement status, where the venue re-sends a fill on each "
          "(Derive tx_status: one row per status)"),
         ("tx_hash", "VARCHAR", "on-chain settlement")),
        "SELECT venue, instrument, side, sum(size) AS filled, sum(price * size) / sum(size) AS "
        "avg_price\nFROM fills GROUP BY ALL"),
    CrossView(
        "positions", "Our positions as the venue reports them (private channels), one row "
        "per position per report.",
        (("instrument", "VARCHAR", "the instrument (Totalis: the parlay's rfq_id)"),
         ("size", "DOUBLE", "signed: negative is short"),
         ("entry_price", "DOUBLE", "average entry price"),
         ("mark_price", "DOUBLE", "mark price"),
         ("unrealized_pnl", "DOUBLE", ""), ("realized_pnl", "DOUBLE", ""),
         ("account", "VARCHAR", "subaccount, when the venue has several"),
         ("status", "VARCHAR", "life-cycle event for venues that report one (Totalis)")),
        "SELECT venue, instrument, last(size ORDER BY ts_recv_ns) AS size\n"
        "FROM positions GROUP BY ALL"),
)
CROSS_VIEW_NAMES = {v.name: v for v in CROSS_VIEWS}


@dataclass(frozen=True)
class Table:
    name: str
    venue: str
    columns: tuple[Col, ...]
    dedup_key: tuple[str, ...]
    doc: str = ""
    event_time: str | None = None  # lake column name holding the venue's time
    event_time_unit: str = "ms"
    time_column: str = "ts_recv"
    partitions: tuple[str, ...] = ("date",)
    # Columns naming the instrument, sorted by first in compacted files (None: see
    # cluster_columns()).
    cluster_by: tuple[str, ...] | None = None
    version: int = 1
    # Wire keys dropped on purpose. None by default: a key the venue sent has a column or
    # lands in `extra`. A table whose rows all come from one value of the frame's
    # discriminator may name it here (the table says it); one that can hold several values
    # must declare it as a column.
    ignore_keys: frozenset[str] = field(default_factory=frozenset)
    # For rows an adapter hands over as raw JSON bytes: wire keys the adapter sets on a dict
    # row of this table and the value they take on every raw one (data, not code: the lake
    # fills them and runs nothing of the venue's).
    raw_constants: tuple[tuple[str, Any], ...] = ()
    # How the table's rows appear in the cross-venue views (trades, book_updates, ...).
    maps: tuple[Maps, ...] = ()

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names) or COMMON_NAMES & set(names):
            raise ValueError(f"table {self.name}: duplicate or reserved column names")
        if self.event_time and self.event_time not in names:
            raise ValueError(f"table {self.name}: event_time {self.event_time} is not a column")
        if self.event_time_unit not in _UNIT_NS:
            raise ValueError(f"table {self.name}: unit {self.event_time_unit}")
        if not {k for k, _ in self.raw_constants} <= {c.key for c in self.columns}:
            raise ValueError(f"table {self.name}: raw_constants name a key it does not declare")
        if self.cluster_by and not set(self.cluster_by) <= set(names) | COMMON_NAMES:
            raise ValueError(f"table {self.name}: cluster_by names a column it does not have")
        for m in self.maps:
            view = CROSS_VIEW_NAMES.get(m.view)
            if view is None:
                raise ValueError(f"table {self.name}: maps to unknown view {m.view}")
            unknown = {k for k, _ in m.columns} - {*view.names, "ts_event_ns"}
            if unknown:
                raise ValueError(f"table {self.name}: {m.view} has no column {sorted(unknown)}")

    @cached_property
    def wire_schema(self) -> pa.Schema:
        """Schema keyed by wire names: rows from adapters convert with one ``from_pylist``."""
        return pa.schema([pa.field(c.key, c.type) for c in self.columns])

    @cached_property
    def raw_schema(self) -> pa.Schema:
        """What a raw frame of this table may hold: the wire schema plus the ignored keys
        (the discriminator), so an exact match means nothing undeclared was sent."""
        extra = [pa.field(k, pa.string()) for k in sorted(self.ignore_keys)]
        return pa.schema(list(self.wire_schema) + extra)

    @cached_property
    def wire_keys(self) -> frozenset[str]:
        return frozenset(c.key for c in self.columns) | self.ignore_keys

    @cached_property
    def arrow_schema(self) -> pa.Schema:
        """The lake schema: common columns first, then the table's own."""
        common = [pa.field(n, t, metadata={"doc": d}) for n, t, d in COMMON]
        own = [pa.field(c.name, c.type, metadata={"doc": c.doc} if c.doc else None)
               for c in self.columns]
        return pa.schema(common + own, metadata={"table": self.name, "version": str(self.version)})

    @property
    def event_time_factor(self) -> int:
        return _UNIT_NS[self.event_time_unit]


def dedup_partition(t: Table) -> tuple[str, ...]:
    """What makes two rows of ``t`` copies of one event: its dedup key within one venue. A
    venue is a config section; two sections (production and test, say) may send colliding
    ids, and merging their rows would lose data."""
    return ("venue", *(k for k in t.dedup_key if k != "venue"))


def cluster_columns(t: Table) -> tuple[str, ...]:
    """The instrument columns compaction sorts a table by first: ``cluster_by`` when the table
    declares it, else the instrument-like columns of its dedup key (:data:`INSTRUMENT_COLUMNS`)
    in that list's order, else the table's own instrument-like column if it has one (one:
    a trade table keyed by trade id still has a symbol). Empty for tables without an
    instrument (connection events, RFQ life cycles): those are sorted by time alone."""
    if t.cluster_by is not None:
        return t.cluster_by
    names = {c.name for c in t.columns}
    in_key = [c for c in INSTRUMENT_COLUMNS if c in t.dedup_key and c in names]
    if in_key:
        return tuple(in_key)
    own = [c for c in INSTRUMENT_COLUMNS if c in names]
    return tuple(own[-1:])


def by_receipt_when_null(col: str) -> tuple[str, ...]:
    """Dedup key parts for a table keyed by a venue value (a time, an event id) that may be
    missing: rows without it fall back to their receipt (run and position), so two of them
    are never taken for one."""
    return (f"CASE WHEN {col} IS NULL THEN run_id END",
            f"CASE WHEN {col} IS NULL THEN recv_seq END")


NO_NATURAL_KEY = (" No venue time or id in the payload: keyed by the receipt, so copies that two "
                  "overlapping recorders both received both stay in the _dedup view.")


def mapped(t: Table, *maps: Maps) -> Table:
    """``t`` mapping onto the cross views ``maps`` name (besides those it already maps)."""
    return replace(t, maps=t.maps + maps)


def cols(*specs: tuple) -> tuple[Col, ...]:
    """Shorthand: ``cols(("block_number", pa.int64(), "doc", "blockNumber"), ...)``."""
    return tuple(Col(*s) for s in specs)


def extra_col() -> Col:
    return Col(EXTRA, pa.string(), "JSON object of undeclared fields the venue sent")


# --- tables every venue shares ---------------------------------------------------------------

SESSION_EVENTS = Table(
    name="session_events",
    venue="*",
    doc="Connection life as data: connects, auth results, subscribe acks, disconnects with "
    "code and reason, venue hints (server_closing, stale/live, rate limits), errors and gaps "
    "with both ends. Join it to know where the tape is incomplete.",
    columns=cols(
        ("event", pa.string(), "connecting|connected|disconnected|reconnected|auth_ok|"
         "auth_failed|subscribed|unsubscribed|server_closing|feed_stale|feed_live|rate_limited|"
         "error|gap|idle_timeout|frame_too_large|connect_failed|stopped|resumed (SSE, with "
         "the last event id)|retry_hint (SSE retry field)|backpressure|backpressure_end "
         "(the journal's disk was behind: sockets not read meanwhile, nothing dropped)|"
         "run_gap (between the previous run of the same config and this one: gap_start its "
         "last frame, gap_end this run's first; conn_id the connection of that frame)"),
        ("code", pa.string(), "close code or the venue's error code"),
        ("reason", pa.string(), "human text from the venue or the transport"),
        ("channel", pa.string(), "subscription key the event concerns, if any"),
        ("url", pa.string(), "endpoint, on connect events"),
        ("expected", pa.int64(), "for sequence gaps: the value expected"),
        ("received", pa.int64(), "for sequence gaps: the value received"),
        ("gap_start", TS, "first instant of a gap (last frame before it)"),
        ("gap_end", TS, "last instant of a gap (first frame after it)"),
        ("retry_after_s", pa.float64(), "venue hint: seconds to wait"),
        ("detail", pa.string(), "JSON of anything else"),
    ),
    # A row's identity: two venues of one run may both name a connection `ws`.
    dedup_key=IDENTITY,
)

UNHANDLED = Table(
    name="unhandled",
    venue="*",
    doc="Frames no handler knows, frames that are not valid JSON, and rows whose values did "
    "not fit their column's type: counted and stored with the raw text, never dropped.",
    columns=cols(
        ("reason", pa.string(), "unknown_type|malformed|bad_value|unexpected_shape"),
        ("msg_type", pa.string(), "the discriminator value, if one could be read"),
        ("target_table", pa.string(), "for bad_value: the table the row was meant for"),
        ("error", pa.string(), "what went wrong"),
        ("raw", pa.string(), "the frame (or row) text as received"),
    ),
    dedup_key=IDENTITY,
)

# Every venue writes these; the catalogue adds them to the venues' own tables.
SHARED: tuple[Table, ...] = (SESSION_EVENTS, UNHANDLED)

