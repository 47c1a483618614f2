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

from dataclasses import dataclass, field
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

