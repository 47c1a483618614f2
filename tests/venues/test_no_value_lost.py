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
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pytest

from recorder.lake import _Buffer, to_arrow
from recorder.rows import Row
from recorder.schema import UNHANDLED, Table
from recorder.venues.totalis.adapter import iso_ns
from tests.venues.corpus import VENUES, Frame, corpus

TS_RECV = 1_780_000_000_000_000_000

# every frame of every venue's fixtures, fed as its tests/venues/<venue>/contract.py says
CORPUS = [f for venue in VENUES for f in corpus(venue)]

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
    rows = frame.rows(sent)
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
