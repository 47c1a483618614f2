"""No value lost, for every venue: every leaf value of every fixture frame is found in the
lake rows the frame produced.

Each fixture frame (``tests/venues/<venue>/fixtures/*.json``; provenance in ``SOURCES.md`` beside
them) goes through the venue's adapter and the lake writer's conversion (``to_arrow``, the
path every live row takes), and nothing may be quarantined. Then each leaf of the frame must
be in the typed rows, at any nesting depth, in a ``_text`` companion, or in ``extra``:

- strings and integers exactly (integers beyond 2**53 and uint256 strings included); a
  string holding an integer may be an integer column, ``"true"``/``"false"`` a boolean one;
- a decimal string exactly, as text (its float alone does not count);
- a time at the same instant (a timestamp column, or an int in another unit);
- a discriminator (``type``) only where the table itself names the value, and a table that
  drops its ``type`` sees one value of it only.

The same runs again with random keys (strings, big integers, floats, booleans, objects) added
to the records of every frame: each must reach ``extra``.
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from recorder.lake import _Buffer, to_arrow
from recorder.rows import Row
from recorder.schema import UNHANDLED, Table
from recorder.venues.derive.adapter import make_adapter as derive_adapter
from recorder.venues.diffusal.adapter import make_adapter as diffusal_adapter
from recorder.venues.mackinac.adapter import make_adapter as mackinac_adapter
from recorder.venues.powertrade.adapter import FEEDS, PROXY, REST
from recorder.venues.powertrade.adapter import make_adapter as powertrade_adapter
from recorder.venues.totalis.adapter import iso_ns
from recorder.venues.totalis.adapter import make_adapter as totalis_adapter

HERE = Path(__file__).resolve().parent  # tests/venues/<venue>/fixtures/
TS_RECV = 1_780_000_000_000_000_000
VENUES = ("mackinac", "powertrade", "derive", "diffusal", "totalis")


def load(venue: str, name: str) -> list[Any]:
    # stdlib json: integers beyond 64 bits stay exact, as the venue's text has them
    frames = json.loads((HERE / venue / "fixtures" / f"{name}.json").read_text())
    assert isinstance(frames, list) and frames
    return frames


def dumps(obj: Any) -> bytes:
    return json.dumps(obj).encode()


# --- how each venue's fixtures enter its adapter --------------------------------------------

@dataclass
class Frame:
    """One fixture frame: ``sent`` is the JSON the venue sent (its leaves are checked),
    ``records`` the objects of it that are records (random keys go there)."""

    venue: str
    name: str
    index: int
    sent: Any
    feed: Callable[[Any, Any], list[Row]]  # (adapter, sent) -> rows
    records: Callable[[Any], list[dict[str, Any]]]


def _items(v: Any) -> list[dict[str, Any]]:
    """``v`` itself when an object, or the objects of a list."""
    if isinstance(v, dict):
        return [v]
    if isinstance(v, list):
        return [x for x in v if isinstance(x, dict)]
    return []


# Objects that are maps (their keys are data: currencies, assets, margin managers), not
# records: a random key there is a new entry, not an undeclared field.
MAPS = frozenset({"open_interest", "feeds", "subaccount_balances", "status"})


def _with_lists(roots: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Record roots plus the objects nested in them (book levels, legs, items, structs such
    as option_pricing), at any depth."""
    out: list[dict[str, Any]] = []

    def add(obj: dict[str, Any]) -> None:
        out.append(obj)
        for k, v in obj.items():
            if isinstance(v, dict) and k not in MAPS:
                add(v)
            elif isinstance(v, list):
                for x in v:
                    if isinstance(x, dict):
                        add(x)
    for r in roots:
        add(r)
    return out


def _mackinac(name: str) -> Iterator[Frame]:
    def feed(ad: Any, sent: Any) -> list[Row]:
        return ad.on_frame("feed", dumps(sent))[0]
    for i, f in enumerate(load("mackinac", name)):
        yield Frame("mackinac", name, i, f, feed, lambda s: _with_lists([s]))


def _powertrade(name: str) -> Iterator[Frame]:
    def body(s: Any) -> list[dict[str, Any]]:
        return _with_lists([next(iter(s.values()))])

    if name == "rest_entity_summary":
        def summary(ad: Any, sent: Any) -> list[Row]:
            return ad.on_response(REST, "summary-1", 200, dumps(sent))[0]
        for i, f in enumerate(load("powertrade", name)):
            items = f if isinstance(f, list) else next(v for v in f.values() if
                                                       isinstance(v, list))
            yield Frame("powertrade", name, i, f, summary, lambda s, it=items: list(it))
        return
    conn = FEEDS if name.startswith("feed_") else PROXY

    def feed(ad: Any, sent: Any) -> list[Row]:
        if conn == FEEDS:  # the decimals first, as live
            ad.on_response(REST, "summary-1", 200,
                           dumps(load("powertrade", "rest_entity_summary")[0]))
        return ad.on_frame(conn, dumps(sent))[0]
    for i, f in enumerate(load("powertrade", name)):
        yield Frame("powertrade", name, i, f, feed, body)


def _derive(name: str) -> Iterator[Frame]:
    def feed(ad: Any, sent: Any) -> list[Row]:
        return ad.on_frame("ws", dumps(sent))[0]

    def records(s: Any) -> list[dict[str, Any]]:
        if s.get("method") != "subscription":
            return []  # answers to our requests: control, not records
        data = s["params"]["data"]
        roots = _items(data)
        if isinstance(data, dict) and isinstance(data.get("instrument_ticker"), dict):
            roots.append(data["instrument_ticker"])
        return _with_lists(roots)
    for i, f in enumerate(load("derive", name)):
        yield Frame("derive", name, i, f, feed, records)


_DIFFUSAL_CONN = {"auth": "private", "private": "private", "private_rfq_events": "private",
                  "private_fill_seconds": "private", "rfq_stream": "rfq-stream",
                  "rfq_quotes": "rfq-quotes-x", "rfq_mm": "rfq-mm"}
_DIFFUSAL_REST = {"rest_pairs": "pairs", "rest_markets": "markets",
                  "rest_orderbook": "orderbook:BTC-82000-C-1736409600",
                  "rest_active_auctions": "active-auctions",
                  "rest_quotes": "quotes:6e53a761-77f1-3155-ee40-70473f70a061"}


def _diffusal(name: str) -> Iterator[Frame]:
    tag = _DIFFUSAL_REST.get(name)
    conn = _DIFFUSAL_CONN.get(name, "public-0")

    def feed(ad: Any, sent: Any) -> list[Row]:
        if tag is not None:
            return ad.on_response("rest", tag, 200, dumps(sent))[0]
        return ad.on_frame(conn, dumps(sent))[0]

    def records(s: Any) -> list[dict[str, Any]]:
        if tag is not None:
            return _with_lists(_items(s) if isinstance(s, list) else [s])
        if isinstance(s, dict) and "stream" in s:
            return _with_lists(_items(s["data"]))
        return _with_lists([s])
    for i, f in enumerate(load("diffusal", name)):
        yield Frame("diffusal", name, i, f, feed, records)


# fixture -> (connection, SSE event name); every other Totalis fixture is a WebSocket frame
_TOTALIS_SSE = {
    "connected": ("mm", "connected"), "snapshot_begin": ("mm", "snapshot_begin"),
    "snapshot_complete": ("mm", "snapshot_complete"), "quote_request": ("mm", "quote_request"),
    "quote_request_updated": ("mm", "quote_request:updated"),
    "quote_request_expired": ("mm", "quote_request_expired"),
    "cashout_request": ("mm", "cashout_request"),
    "qr_best_quote": ("qr:q1", "best_quote"), "qr_status": ("qr:q1", "status"),
    "qr_committed": ("qr:q1", "committed"), "qr_cancelled": ("qr:q1", "cancelled"),
    "qr_expired": ("qr:q1", "expired"), "cashout_best_quote": ("co:c1", "best_quote"),
    "cashout_status": ("co:c1", "status"),
}


def _totalis(name: str) -> Iterator[Frame]:
    sse = _TOTALIS_SSE.get(name)

    def feed(ad: Any, sent: Any) -> list[Row]:
        if sse is None:
            return ad.on_frame("ws", dumps(sent))[0]
        conn, event = sse
        return ad.on_frame(conn, f"event: {event}\ndata: {json.dumps(sent)}\n\n".encode())[0]

    def records(s: Any) -> list[dict[str, Any]]:
        root = s if sse is not None else s.get("data", s)
        return _with_lists(_items(root))
    for i, f in enumerate(load("totalis", name)):
        yield Frame("totalis", name, i, f, feed, records)


READERS = {"mackinac": _mackinac, "powertrade": _powertrade, "derive": _derive,
           "diffusal": _diffusal, "totalis": _totalis}
ADAPTERS = {"mackinac": mackinac_adapter, "powertrade": powertrade_adapter,
            "derive": derive_adapter, "diffusal": diffusal_adapter, "totalis": totalis_adapter}


def corpus() -> list[Frame]:
    out: list[Frame] = []
    for venue in VENUES:
        for path in sorted((HERE / venue / "fixtures").glob("*.json")):
            out += READERS[venue](path.stem)
    return out


CORPUS = corpus()

# Envelope constants that carry no information beyond the table a frame lands in.
IMPLIED = {("derive", "method", "subscription")}
# Power.Trade sends every value as a string and an absent number as one of these (the
# adapter's _NULLS): such a number is null in the lake.
NULLS = {"powertrade": frozenset({"", "none", "null"})}


# --- what the rows hold ----------------------------------------------------------------------

def _ints(t: pa.DataType) -> pa.DataType:
    """Timestamps (nested ones too) as their int64 count: datetime would drop the ns."""
    if pa.types.is_timestamp(t):
        return pa.int64()
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _ints(f.type)) for f in t])
    if pa.types.is_list(t):
        return pa.list_(_ints(t.value_type))
    if pa.types.is_map(t):
        return pa.map_(t.key_type, _ints(t.item_type))
    return t


def lake(rows: list[Row]) -> list[tuple[Table, dict[str, Any]]]:
    """The rows as the lake holds them (through to_arrow); none may be quarantined."""
    by_table: dict[str, tuple[Table, list[Any]]] = {}
    for table, row in rows:
        by_table.setdefault(table.name, (table, []))[1].append(row)
    out = []
    for table, rs in by_table.values():
        buf = _Buffer(rs, [TS_RECV] * len(rs), ["c"] * len(rs), list(range(len(rs))))
        t, bad = to_arrow(table, buf, "v", "run-1")
        assert bad == [], (table.name, bad, rs)
        assert t is not None
        t = t.cast(pa.schema([pa.field(f.name, _ints(f.type)) for f in t.schema]))
        out += [(table, r) for r in t.to_pylist()]
    return out


@dataclass
class Found:
    strs: set[str]
    ints: set[int]
    floats: set[float]
    bools: set[bool]


def found(rows: list[tuple[Table, dict[str, Any]]]) -> Found:
    f = Found(set(), set(), set(), set())

    def walk(v: Any) -> None:
        if v is None:
            return
        if isinstance(v, bool):
            f.bools.add(v)
        elif isinstance(v, int):
            f.ints.add(v)
        elif isinstance(v, float):
            f.floats.add(v)
        elif isinstance(v, str):
            f.strs.add(v)
            if v[:1] in '{["':  # extra, and JSON columns (results, requests)
                try:
                    walk(json.loads(v))
                except ValueError:
                    pass
        elif isinstance(v, dict):  # struct members and JSON objects: keys are names
            for x in v.values():
                walk(x)
        elif isinstance(v, list | tuple):
            for x in v:
                walk(x)
    for table, row in rows:
        if table is not UNHANDLED:
            walk(row)
    return f


_INT = re.compile(r"^-?\d+$")
_DECIMAL = re.compile(r"^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
_UNITS = (1, 1_000, 1_000_000, 1_000_000_000)


def _time_in(v: int, f: Found) -> bool:
    return any(v * u in f.ints for u in _UNITS) or any(v // u in f.ints for u in _UNITS[1:]
                                                       if v % u == 0)


def kept(v: Any, f: Found) -> bool:
    if v is None:
        return True
    if isinstance(v, bool):
        return v in f.bools or str(v).lower() in f.strs
    if isinstance(v, int):
        return (v in f.ints or str(v) in f.strs or _time_in(v, f)
                or (abs(v) <= 2**53 and float(v) in f.floats))
    if isinstance(v, float):
        return v in f.floats or repr(v) in f.strs
    assert isinstance(v, str)
    if v in f.strs:
        return True
    if _INT.match(v):
        return kept(int(v), f)
    if v.lower() in ("true", "false"):
        return (v.lower() == "true") in f.bools
    if _DECIMAL.match(v):
        return False  # a decimal string must be kept as text, not only as its float
    ns = iso_ns(v)
    return type(ns) is int and _time_in(ns, f)


def leaves(v: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """(path, key, value) of every leaf."""
    if isinstance(v, dict):
        for k, x in v.items():
            yield from leaves(x, f"{path}.{k}" if path else k)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield from leaves(x, f"{path}[{i}]")
    elif isinstance(v, str) and v[:1] in "{[" and isinstance(doc := _json(v), dict | list):
        # a JSON document sent as a string (v3 subaccount_balances): its values count
        yield from leaves(doc, path)
    else:
        yield path, path.rpartition(".")[2], v


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _norm(v: Any) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(v).lower()).strip("_")


def check(frame: Frame, sent: Any, rows: list[tuple[Table, dict[str, Any]]]) -> None:
    f = found(rows)
    names = {t.name for t, _ in rows}
    for path, key, v in leaves(sent):
        if (frame.venue, key, v) in IMPLIED or (
                isinstance(v, str) and v.lower() in NULLS.get(frame.venue, ())):
            continue
        if key == "type" and isinstance(v, str) and any(n.endswith("_" + _norm(v))
                                                         for n in names):
            continue  # the discriminator the table's name says
        assert kept(v, f), (f"{frame.venue}/{frame.name}[{frame.index}]: {path} = {v!r} "
                            f"is in no row of {sorted(names)}")


def adapter_rows(frame: Frame, sent: Any) -> list[Row]:
    ad = ADAPTERS[frame.venue](frame.venue, None, {}, offline=True)
    rows = frame.feed(ad, sent)
    bad = [r for t, r in rows if t is UNHANDLED]
    assert bad == [], f"{frame.venue}/{frame.name}[{frame.index}] unhandled: {bad}"
    return rows


def run(frame: Frame, sent: Any) -> list[tuple[Table, dict[str, Any]]]:
    return lake(adapter_rows(frame, sent))


@pytest.mark.parametrize("frame", CORPUS, ids=[f"{c.venue}/{c.name}[{c.index}]" for c in CORPUS])
def test_every_value_of_every_fixture_frame_is_kept(frame: Frame) -> None:
    check(frame, frame.sent, run(frame, frame.sent))


def test_a_table_that_drops_its_type_holds_one_value_of_it() -> None:
    """Where ``type`` is dropped (``ignore_keys``), the table name says the one value; a
    table that can hold several keeps the discriminator as a column."""
    values: dict[str, set[str]] = defaultdict(set)
    for frame in CORPUS:
        for table, row in adapter_rows(frame, frame.sent):
            obj = json.loads(row) if isinstance(row, bytes) else row  # raw rows: the frame
            if "type" in table.ignore_keys and obj.get("type") is not None:
                values[table.name].add(obj["type"])
    assert values, "no fixture exercises a dropped type"
    assert {t: v for t, v in values.items() if len(v) > 1} == {}
    assert all(t.endswith("_" + _norm(next(iter(v)))) for t, v in values.items()), values


def _random_value(rng: random.Random) -> Any:
    return rng.choice([
        lambda: "".join(rng.choice("abcXYZ é-_.:/0") for _ in range(rng.randint(0, 12))),
        lambda: rng.randint(-2**63, 2**63 - 1),
        lambda: rng.randint(2**64, 2**256),  # a uint256 sent as a bare JSON number
        lambda: str(rng.randint(2**64, 2**256)),  # ... or as a string
        lambda: f"{rng.randint(0, 10**6)}.{rng.randint(0, 10**12):012d}",  # a decimal string
        lambda: rng.uniform(-1e6, 1e6),
        lambda: rng.random() < 0.5,
        lambda: None,
        lambda: {"nested": rng.randint(0, 9), "deeper": [rng.random(), "x"]},
        lambda: [rng.randint(0, 9), "y"],
    ])()


@pytest.mark.parametrize("venue", VENUES)
def test_random_undeclared_keys_reach_extra(venue: str) -> None:
    """Every record of every fixture frame gets random undeclared keys; their values must be
    found in the rows like every other value (in ``extra``, at any depth)."""
    rng = random.Random(f"issue-11-{venue}")
    frames = [c for c in CORPUS if c.venue == venue]
    tried = 0
    for frame in frames:
        for _ in range(3):
            sent = json.loads(json.dumps(frame.sent))
            records = frame.records(sent)
            if not records:
                continue
            for rec in records:
                for _ in range(rng.randint(1, 3)):
                    rec[f"zz_{rng.randint(0, 10**6)}"] = _random_value(rng)
            check(frame, sent, run(frame, sent))
            tried += 1
    assert tried >= len(frames)
