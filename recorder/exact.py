"""One precision and time-unit policy for every venue: how a value the venue sent is kept.

Precision (declared on the columns, so the registry, the views and the docs show it):

- A **decimal the venue sends as a string** (Derive's ``"11999.999999999999"``, Diffusal's
  ``"0.045"``, Power.Trade's every number) is a float64 column for research **and** a
  ``<name>_text`` string column holding the value exactly as sent. float64 keeps about 15-17
  significant digits; a 28-digit ``mark_price`` or trailing zeros (``"82150.00"``) survive only
  in the text. Inside nested structs the companion is a sibling member ``<member>_text``; a
  map of decimals (``{asset: "1.5"}``) gets a sibling map of texts. A decimal sent as a JSON
  number has the text of that number (integers exactly, floats their shortest repr).
- **Integers** that fit 64 bits are int64. Integers that may not (on-chain uint128/uint256
  amounts, nonces, 1e18-scaled prices) and identifiers are exact strings.
- A value that cannot be read as its column's type is left as sent, so the lake writer
  quarantines the row in ``unhandled`` (``bad_value``) with its raw text instead of guessing.

Nothing silently dropped: a key the venue sent has a column or lands in ``extra``, at any
depth: a member a nested struct does not declare goes to the row's ``extra`` under its path
(``option_pricing.vega2``, ``legs[1].note``), since Arrow would drop it without a word.

Time units: where a venue's docs fix a unit the table declares it (``event_time_unit``), with
the doc reference beside it. Where they do not, :func:`epoch_ns` reads the unit of each value
from its magnitude (seconds, ms, µs or ns since the epoch).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import orjson
import pyarrow as pa

from recorder.schema import EXTRA, Col, Table

S = pa.string()
TEXT = "_text"

# |value| below these is seconds / ms / µs; above, ns. 1e11 s is the year 5138 and 1e11 ms is
# 1973, so a time between 1973 and 5138 reads right in every unit.
_BOUNDS = ((10**11, 1_000_000_000), (10**14, 1_000_000), (10**17, 1_000))


def epoch_ns(v: Any) -> int | None:
    """An epoch time of unknown unit (int, float or a digit string) as integer ns, the unit
    read from its magnitude; None for anything else (and for booleans)."""
    if type(v) is str:
        s = v.strip()
        try:
            v = int(s) if s.lstrip("-").isdigit() else float(s)
        except ValueError:
            return None
    if type(v) is int:
        a = abs(v)
        for bound, factor in _BOUNDS:
            if a < bound:
                return v * factor
        return v
    if type(v) is float and v == v and abs(v) < 1e19:
        a = abs(v)
        for bound, factor in _BOUNDS:
            if a < bound:
                return round(v * factor)
        return round(v)
    return None


def text_of(v: Any) -> str | None:
    """The exact text of a decimal as the venue sent it: a string as is, an integer exactly,
    a float as its shortest repr; None for null or anything else."""
    t = type(v)
    if t is str:
        return v
    if t is int:
        return str(v)
    if t is float:
        return repr(v)
    return None


def dumps(obj: Any) -> str:
    """JSON text for ``extra``: orjson, or the stdlib for integers beyond 64 bits (which
    orjson refuses), so such a value is kept exactly instead of failing the row."""
    try:
        return orjson.dumps(obj).decode()
    except TypeError:
        return json.dumps(obj, separators=(",", ":"), default=str)


# --- declaring decimals ---------------------------------------------------------------------

def _is_float(t: pa.DataType) -> bool:
    return pa.types.is_floating(t)


def _is_float_map(t: pa.DataType) -> bool:
    return pa.types.is_map(t) and _is_float(t.item_type)


def with_text(t: pa.DataType) -> pa.DataType:
    """``t`` with a ``<member>_text`` string sibling after every float64 member of every
    struct inside it (a map of floats gets a sibling map of strings)."""
    if pa.types.is_struct(t):
        members: list[pa.Field] = []
        for f in t:
            members.append(pa.field(f.name, with_text(f.type)))
            if _is_float(f.type):
                members.append(pa.field(f.name + TEXT, S))
            elif _is_float_map(f.type):
                members.append(pa.field(f.name + TEXT, pa.map_(f.type.key_type, S)))
        return pa.struct(members)
    if pa.types.is_list(t):
        return pa.list_(with_text(t.value_type))
    if pa.types.is_map(t) and pa.types.is_struct(t.item_type):
        return pa.map_(t.key_type, with_text(t.item_type))
    return t


def text_wire(key: str) -> str:
    """Wire key of a top-level text companion (``_`` marks keys set by the adapter)."""
    return f"_{key}{TEXT}"


def decimals(columns: Iterable[Col], is_decimal: Callable[[Col], bool] | None = None
             ) -> tuple[Col, ...]:
    """Columns with the precision policy applied: every decimal column (by default a float64
    column the venue sends, i.e. not one the adapter computes) gets its ``<name>_text``
    companion, and nested types get their ``_text`` members."""
    pick = is_decimal or (lambda c: not c.key.startswith("_"))
    out: list[Col] = []
    for c in columns:
        if not pick(c):
            out.append(c)
            continue
        out.append(Col(c.name, with_text(c.type), c.doc, c.wire))
        if _is_float(c.type):
            out.append(Col(c.name + TEXT, S, f"{c.key} exactly as sent", text_wire(c.key)))
        elif _is_float_map(c.type):
            out.append(Col(c.name + TEXT, pa.map_(c.type.key_type, S),
                           f"{c.key}, each value exactly as sent", text_wire(c.key)))
    return tuple(out)


# --- converting rows ------------------------------------------------------------------------

Deep = dict[str, Any]  # nested undeclared members: path -> value, for `extra`
# Where a value sits: a str, or (parent path, suffix) with an int suffix for a list index.
# Formatted only when a member is reported, so typing a clean book builds no path strings.
Path = Any
Conv = Callable[[Any, Path, Deep], Any]


def path_text(p: Path) -> str:
    """``("legs", 1), ".note"`` -> ``legs[1].note``."""
    parts: list[str] = []
    while type(p) is tuple:
        parent, suffix = p
        parts.append(f"[{suffix}]" if type(suffix) is int else suffix)
        p = parent
    return p + "".join(reversed(parts))


def to_float(v: Any) -> Any:
    """A decimal string or number -> float; a string that is no number is left as sent."""
    t = type(v)
    if t is str:
        try:
            return float(v)
        except ValueError:
            return v
    if t is int:
        return float(v)
    return v


def to_int(v: Any) -> Any:
    if type(v) is str:
        s = v.strip()
        if s.lstrip("-").isdigit():
            return int(s)
    return v


def to_str(v: Any) -> Any:
    t = type(v)
    if t is int or t is float:
        return str(v)
    return v


def _scalar(t: pa.DataType) -> Callable[[Any], Any] | None:
    if _is_float(t):
        return to_float
    if pa.types.is_integer(t):
        return to_int
    if pa.types.is_string(t):
        return to_str
    return None


def _texts(x: Any, is_map: bool) -> Any:
    return {k: text_of(y) for k, y in x.items()} if is_map and type(x) is dict else text_of(x)


def converter(t: pa.DataType) -> Conv | None:
    """A function fixing one value of Arrow type ``t`` (built with :func:`with_text`): texts
    filled, decimals read, undeclared struct members reported into ``deep`` under their
    path. None when nothing can need fixing."""
    scalar = _scalar(t)
    if scalar is not None:
        def one(v: Any, path: Path, deep: Deep) -> Any:
            return scalar(v)
        return one
    if pa.types.is_struct(t):
        return _struct(t)
    if pa.types.is_list(t):
        ic = converter(t.value_type)
        if ic is None:
            return None

        def items(v: Any, path: Path, deep: Deep) -> Any:
            if type(v) is list:
                return [None if x is None else ic(x, (path, i), deep) for i, x in enumerate(v)]
            return v
        return items
    if pa.types.is_map(t):
        kc = _scalar(t.key_type) or (lambda x: x)
        vc = converter(t.item_type)

        def mapping(v: Any, path: Path, deep: Deep) -> Any:
            if type(v) is dict:
                return {kc(k): (None if x is None or vc is None else vc(x, (path, f"[{k}]"), deep))
                        for k, x in v.items()}
            return v
        return mapping
    return None


def _struct(t: pa.StructType) -> Conv:
    names = frozenset(f.name for f in t)
    # (member, scalar converter, nested converter, text member, is a map, ".member")
    plan: list[tuple[str, Callable[[Any], Any] | None, Conv | None, str | None, bool, str]] = []
    for f in t:
        if f.name.endswith(TEXT) and f.name[:-len(TEXT)] in names:
            continue  # filled from its decimal
        text = f.name + TEXT if f.name + TEXT in names else None
        scalar = _scalar(f.type)
        plan.append((f.name, scalar, None if scalar else converter(f.type), text,
                     _is_float_map(f.type), "." + f.name))

    def struct(v: Any, path: Path, deep: Deep) -> Any:
        if type(v) is not dict:
            return v
        if not v.keys() <= names:
            where = path_text(path)
            for k in v.keys() - names:
                deep[f"{where}.{k}"] = v[k]
        for name, scalar, conv, text, is_map, dot in plan:
            x = v.get(name)
            if x is None:
                continue
            if text is not None:
                v[text] = _texts(x, is_map)
            if scalar is not None:
                v[name] = scalar(x)
            elif conv is not None:
                v[name] = conv(x, (path, dot), deep)
        return v
    return struct


def shaper(table: Table) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Fix a row (keyed by wire names) for ``table`` in place and return it: values converted
    as the column types say, decimal texts filled, and every key the venue sent that no
    column holds (at any depth) kept in ``extra``."""
    keys = {c.key for c in table.columns}
    plan: list[tuple[str, Conv, str | None, bool]] = []
    for c in table.columns:
        if c.name == EXTRA or (c.key.endswith(TEXT) and c.key.startswith("_")
                               and c.key[1:-len(TEXT)] in keys):
            continue
        conv = converter(c.type)
        text = text_wire(c.key) if text_wire(c.key) in keys else None
        if conv is not None or text is not None:
            plan.append((c.key, conv or (lambda v, p, d: v), text, _is_float_map(c.type)))
    wire = table.wire_keys

    def fix(row: dict[str, Any]) -> dict[str, Any]:
        deep: Deep = {}
        for key, conv, text, is_map in plan:
            v = row.get(key)
            if v is None:
                continue
            if text is not None:
                row[text] = _texts(v, is_map)
            row[key] = conv(v, key, deep)
        if row.keys() <= wire and not deep:
            return row
        extra = {k: row[k] for k in sorted(row.keys() - wire)}
        extra.update(deep)
        if extra:
            row[EXTRA] = dumps(extra)
        return row
    return fix


Walk = Callable[[Any, Path, Deep], None]


def _walker(t: pa.DataType) -> Walk | None:
    """Reports members of the structs inside ``t`` that the struct type does not declare."""
    if pa.types.is_struct(t):
        names = frozenset(f.name for f in t)
        subs = [(f.name, "." + f.name, w) for f in t if (w := _walker(f.type)) is not None]

        def struct(v: Any, path: Path, deep: Deep) -> None:
            if type(v) is not dict:
                return
            if not v.keys() <= names:
                where = path_text(path)
                for k in v.keys() - names:
                    deep[f"{where}.{k}"] = v[k]
            for name, dot, w in subs:
                x = v.get(name)
                if x is not None:
                    w(x, (path, dot), deep)
        return struct
    if pa.types.is_list(t) or pa.types.is_map(t):
        inner = t.value_type if pa.types.is_list(t) else t.item_type
        w = _walker(inner)
        if w is None:
            return None
        if pa.types.is_list(t) and pa.types.is_struct(inner) and not any(
                _walker(f.type) for f in inner):
            flat = frozenset(f.name for f in inner)

            def levels(v: Any, path: Path, deep: Deep) -> None:
                # Flat structs (book levels): one key-set test per item, nothing else.
                if type(v) is list:
                    for i, x in enumerate(v):
                        if type(x) is dict and not x.keys() <= flat:
                            w(x, (path, i), deep)
            return levels

        def items(v: Any, path: Path, deep: Deep) -> None:
            if type(v) is list:
                for i, x in enumerate(v):
                    w(x, (path, i), deep)
            elif type(v) is dict:
                for k, x in v.items():
                    w(x, (path, f"[{k}]"), deep)
        return items
    return None


_PLANS: dict[int, tuple[Table, list[tuple[str, Walk]]]] = {}


def undeclared(table: Table, row: dict[str, Any]) -> Deep:
    """Members of nested structs in ``row`` that ``table`` does not declare, by path
    (``legs[1].note``): Arrow would drop them without a word."""
    got = _PLANS.get(id(table))
    if got is None or got[0] is not table:
        got = _PLANS[id(table)] = (table, [(c.key, w) for c in table.columns
                                           if (w := _walker(c.type)) is not None])
    deep: Deep = {}
    for key, w in got[1]:
        v = row.get(key)
        if v is not None:
            w(v, key, deep)
    return deep
