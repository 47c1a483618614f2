"""Replay: history back into a strategy, in the order it was recorded.

- :func:`records` yields typed :class:`Record` objects for a time range, venues and tables,
  in recording order ``(ts_recv, conn_id, recv_seq, recv_sub)`` across every table and venue,
  or in event-time order (``ts_event``, on-chain ties by block, tx, log). It streams: each
  table is one sorted DuckDB query read in record batches (DuckDB's sort spills to disk), and
  a k-way merge interleaves them, so memory stays bounded however long the range.
  Recorded gaps (``session_events`` rows such as ``reconnected`` or ``gap``) come through in
  their place; ``Record.is_gap`` tells a strategy where the tape is incomplete.
- :func:`batches` gives the same selection per table as Arrow record batches;
  :func:`frames` as Polars data frames.
- :func:`paced` replays an iterator of records on the recorded clock, scaled by ``speed``.
- :func:`raw_frames` yields the journal's frames themselves, in journal order per run.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

from recorder import journal as jr
from recorder.schema import Table, load_all

GAP_EVENTS = frozenset({"reconnected", "gap", "disconnected", "idle_timeout", "frame_too_large",
                        "connect_failed", "stopped"})
_ORDER_RECV = ("ts_recv", "conn_id", "recv_seq", "recv_sub")
_CHAIN_TIES = ("block_number", "tx_index", "log_index")


@dataclass(frozen=True, slots=True)
class Record:
    """One typed row. ``data`` holds the table's own columns (timestamps as int ns)."""

    table: str
    venue: str
    ts_recv: int
    ts_event: int | None
    conn_id: str
    recv_seq: int
    recv_sub: int
    run_id: str
    data: dict[str, Any]

    @property
    def is_gap(self) -> bool:
        """True for a session event that marks the tape as incomplete around it."""
        return self.table == "session_events" and self.data.get("event") in GAP_EVENTS


def _ns(value: int | str | None) -> int | None:
    """Accept int ns or an ISO-8601 time (``2026-11-22T10:00:00Z``)."""
    if value is None or isinstance(value, int):
        return value
    import datetime as dt

    t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000


def _select(data_dir: Path, venues: Iterable[str] | None,
            tables: Iterable[str] | None) -> list[Table]:
    reg = load_all()
    wanted = set(tables) if tables else None
    out = []
    for t in reg.values():
        if wanted is not None and t.name not in wanted:
            continue
        if venues and t.venue != "*" and t.venue not in set(venues) and wanted is None:
            continue
        if any((data_dir / "lake" / t.name).glob("date=*/*.parquet")):
            out.append(t)
    if wanted is not None:
        unknown = wanted - set(reg)
        if unknown:
            raise ValueError(f"unknown table(s): {sorted(unknown)}")
    return out


def _query(t: Table, lake: Path, start: int | None, end: int | None,
           venues: Iterable[str] | None, order: str) -> tuple[str, list[Any]]:
    ts_cols = [f.name for f in t.arrow_schema if pa.types.is_timestamp(f.type)]
    replace = ", ".join(f"epoch_ns({c}) AS {c}" for c in ts_cols)
    where, params = ["true"], []
    if start is not None:
        where.append("epoch_ns(ts_recv) >= ?")
        params.append(start)
    if end is not None:
        where.append("epoch_ns(ts_recv) < ?")
        params.append(end)
    if venues:
        where.append("venue IN (SELECT unnest(?))")
        params.append(list(venues))
    if order == "recv":
        keys = list(_ORDER_RECV)
    else:
        names = {c.name for c in t.columns}
        keys = ["coalesce(ts_event, ts_recv)"] + [c for c in _CHAIN_TIES if c in names] + list(
            _ORDER_RECV)
    glob = str(lake / t.name / "date=*" / "*.parquet").replace("'", "''")
    sql = (f"SELECT * EXCLUDE (date) REPLACE ({replace}) FROM read_parquet('{glob}', "
           f"hive_partitioning = true, union_by_name = true) WHERE {' AND '.join(where)} "
           f"ORDER BY {', '.join(keys)}")
    return sql, params


def _reader(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any],
            batch_rows: int) -> pa.RecordBatchReader:
    """A streaming reader over a query (DuckDB 2 calls it to_arrow_reader, 1.x
    fetch_arrow_reader)."""
    rel = con.sql(sql, params=params)
    fn = getattr(rel, "to_arrow_reader", None) or rel.fetch_arrow_reader
    return fn(batch_rows)


def _connect(memory_limit: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET preserve_insertion_order = false")
    return con


def batches(data_dir: str | Path, table: str, start: int | str | None = None,
            end: int | str | None = None, venues: Iterable[str] | None = None,
            order: str = "recv", batch_rows: int = 8192,
            memory_limit: str = "512MB") -> Iterator[pa.RecordBatch]:
    """One table's rows in the range, sorted, as Arrow record batches (timestamps as int ns)."""
    data_dir = Path(data_dir)
    if order not in ("recv", "event"):
        raise ValueError("order is 'recv' or 'event'")
    [t] = _select(data_dir, venues, [table]) or [None]
    if t is None:
        return
    sql, params = _query(t, data_dir / "lake", _ns(start), _ns(end), venues, order)
    con = _connect(memory_limit)
    yield from _reader(con, sql, params, batch_rows)


def frames(data_dir: str | Path, tables: Iterable[str], start: int | str | None = None,
           end: int | str | None = None, venues: Iterable[str] | None = None,
           order: str = "recv") -> dict[str, pl.DataFrame]:
    """The selection per table as Polars frames (for vectorized research)."""
    out = {}
    for name in tables:
        bs = list(batches(data_dir, name, start, end, venues, order))
        if bs:
            out[name] = pl.from_arrow(pa.Table.from_batches(bs))
    return out


_COMMON = ("ts_recv", "ts_event", "venue", "run_id", "conn_id", "recv_seq", "recv_sub")


def _stream(t: Table, cur: duckdb.DuckDBPyConnection, sql: str, params: list[Any],
            order: str, batch_rows: int) -> Iterator[tuple[tuple, Record]]:
    reader = _reader(cur, sql, params, batch_rows)
    own = [c.name for c in t.columns]
    chain = [c for c in _CHAIN_TIES if c in own]
    for batch in reader:
        for r in batch.to_pylist():
            rec = Record(t.name, r["venue"], r["ts_recv"], r["ts_event"], r["conn_id"],
                         r["recv_seq"], r["recv_sub"], r["run_id"], {k: r[k] for k in own})
            if order == "recv":
                key = (rec.ts_recv, rec.conn_id, rec.recv_seq, rec.recv_sub)
            else:
                ev = rec.ts_event if rec.ts_event is not None else rec.ts_recv
                ties = tuple(-1 if r[c] is None else r[c] for c in chain)
                key = (ev, ties, rec.ts_recv, rec.conn_id, rec.recv_seq, rec.recv_sub)
            yield key, rec


def records(data_dir: str | Path, start: int | str | None = None, end: int | str | None = None,
            venues: Iterable[str] | None = None, tables: Iterable[str] | None = None,
            order: str = "recv", batch_rows: int = 4096,
            memory_limit: str = "512MB") -> Iterator[Record]:
    """Typed records across tables and venues, merged in recording (or event) order.

    ``start``/``end`` are ns since the epoch or ISO-8601 strings, on ``ts_recv`` (end
    exclusive). ``tables`` defaults to every table of the chosen venues plus the shared
    ``session_events`` (gaps) and ``unhandled``."""
    data_dir = Path(data_dir)
    if order not in ("recv", "event"):
        raise ValueError("order is 'recv' or 'event'")
    chosen = _select(data_dir, venues, tables)
    con = _connect(memory_limit)
    streams = []
    for t in chosen:
        sql, params = _query(t, data_dir / "lake", _ns(start), _ns(end), venues, order)
        streams.append(_stream(t, con.cursor(), sql, params, order, batch_rows))
    # Event order across tables: keys differ in shape only in their tie part, which compares
    # as tuples; recv order keys have one shape everywhere.
    for _, rec in heapq.merge(*streams, key=lambda kr: kr[0]):
        yield rec


async def paced(source: Iterable[Record], speed: float = 1.0,
                start_at: int | None = None) -> AsyncIterator[Record]:
    """Yield records on the recorded clock: the gap between two records' ``ts_recv`` becomes
    a sleep of gap/``speed`` seconds (``speed`` 0 = as fast as possible). Records before
    ``start_at`` (ns) are skipped without waiting."""
    if speed < 0:
        raise ValueError("speed must be >= 0")
    t0_wall: float | None = None
    t0_rec = 0
    for rec in source:
        if start_at is not None and rec.ts_recv < start_at:
            continue
        if speed > 0:
            if t0_wall is None:
                t0_wall, t0_rec = time.monotonic(), rec.ts_recv
            due = t0_wall + (rec.ts_recv - t0_rec) / 1e9 / speed
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        else:
            await asyncio.sleep(0)  # stay cooperative
        yield rec


def raw_frames(data_dir: str | Path, venue: str, start: int | str | None = None,
               end: int | str | None = None, run: str | None = None,
               kinds: Iterable[int] = (jr.KIND_IN,)) -> Iterator[jr.Record]:
    """The journal's records of one venue, per run in journal order, filtered by ts_recv."""
    data_dir = Path(data_dir)
    lo, hi = _ns(start), _ns(end)
    wanted = set(kinds)
    for (v, r), _ in sorted(jr.runs(data_dir, venue).items()):
        if run is not None and r != run or v != venue:
            continue
        for rec in jr.read_run(data_dir, v, r):
            if rec.kind not in wanted:
                continue
            if lo is not None and rec.ts_recv < lo or hi is not None and rec.ts_recv >= hi:
                continue
            yield rec


# --- native replay: the venue's own server side, fed by the journal ----------------------------


def _adapter_of(data_dir: Path, venue: str) -> str:
    """A venue is a config section name; its runs' manifests say which adapter it used."""
    from recorder.build import adapter_name

    found = sorted(jr.runs(data_dir, venue))
    if not found:
        raise ValueError(f"no journal for venue {venue!r} under {data_dir}")
    return adapter_name(data_dir, venue, found[-1][1])


class Clock:
    """One recorded clock shared by every venue of a native replay: recorded time ``t`` is due
    at ``start_wall + (t - start_rec) / speed``; ``speed`` 0 means no waiting at all."""

    def __init__(self, speed: float) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.speed = speed
        self._t0: tuple[float, int] | None = None

    async def until(self, ts_rec: int) -> None:
        if self.speed == 0:
            await asyncio.sleep(0)
            return
        if self._t0 is None:
            self._t0 = (time.monotonic(), ts_rec)
        wall, rec = self._t0
        delay = wall + (ts_rec - rec) / 1e9 / self.speed - time.monotonic()
        await asyncio.sleep(max(0.0, delay))


async def serve_native(data_dir: str | Path, venues: Iterable[str],
                       start: int | str | None = None, end: int | str | None = None,
                       speed: float = 1.0, host: str = "127.0.0.1",
                       ports: dict[str, int] | None = None,
                       server_options: dict[str, dict[str, Any]] | None = None,
                       on_ready: Any = None, stop: asyncio.Event | None = None,
                       wait_for_subscriber: bool = True, linger: float = 1.0) -> dict[str, int]:
    """Serve the recorded frames of ``venues`` on loopback with each venue's own protocol.

    Each venue's server side (the simulator's, with ``replay=True``) handles auth and
    subscriptions itself; recorded frames are published on one shared clock from the moment
    the first client has subscribed (so it misses nothing). ``on_ready({venue: url})`` is
    called once all servers listen. Returns the frames published per venue."""
    from recorder.venues import get as get_venue

    data_dir = Path(data_dir)
    venues = list(venues)
    stop = stop or asyncio.Event()
    servers: dict[str, Any] = {}
    try:
        for v in venues:
            spec = get_venue(_adapter_of(data_dir, v))
            if spec.replay_server is None:
                raise ValueError(f"venue {v} has no native replay yet")
            opts = dict((server_options or {}).get(v, {}))
            # The recording itself, for servers that answer requests from it (Derive's
            # instrument catalogue); the others ignore it.
            opts.setdefault("data_dir", data_dir)
            opts.setdefault("start", _ns(start))
            opts.setdefault("end", _ns(end))
            srv = spec.replay_server(**opts)
            await srv.start(host, (ports or {}).get(v, 0))
            servers[v] = srv
        if on_ready is not None:
            on_ready({v: s.url for v, s in servers.items()})
        if wait_for_subscriber:
            while not stop.is_set() and not any(s.subscribed() for s in servers.values()):
                await asyncio.sleep(0.02)
        clock = Clock(speed)
        published = dict.fromkeys(venues, 0)
        def tagged(i: int, v: str) -> Iterator[tuple[tuple[int, int, int], str, jr.Record]]:
            # A function, not a nested generator expression: those would read i and v late
            # and label every frame with the last venue.
            for rec in raw_frames(data_dir, v, start, end):
                yield (rec.ts_recv, i, rec.seq), v, rec

        merged = heapq.merge(*[tagged(i, v) for i, v in enumerate(venues)],
                             key=lambda x: x[0])
        for _, v, rec in merged:
            if stop.is_set():
                break
            await clock.until(rec.ts_recv)
            servers[v].publish(rec.data, rec.conn)
            published[v] += 1
        if not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=linger)
            except TimeoutError:
                pass
        return published
    finally:
        for s in servers.values():
            await s.stop()
