"""Wire values -> the Python values a table's Arrow types accept, compiled once per table.

Derive sends money as decimal strings (``"1620.5"``), and v3 says of most of them "a string or
JSON number is accepted", so either may arrive. ``nonce`` is an integer in v2 and a string in
v3. Rather than a hand-written list of fields per table, the table's Arrow schema drives the
conversion: float64 fields take ``float(str)``, string fields take ``str(number)``, int64
fields take digit strings; nested structs, lists and maps are walked the same way. A value
that cannot be converted is left alone, so the lake writer routes the row to ``unhandled``
(``bad_value``) with its raw text instead of guessing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa

from recorder.schema import Table

Conv = Callable[[Any], Any]


def _float(v: Any) -> Any:
    if type(v) is str:
        try:
            return float(v)
        except ValueError:
            return v
    return v


def _int(v: Any) -> Any:
    if type(v) is str:
        s = v.strip()
        if s.lstrip("-").isdigit():
            return int(s)
    return v


def _str(v: Any) -> Any:
    t = type(v)
    if t is int or t is float:
        return str(v)
    return v


def _same(v: Any) -> Any:
    return v


def converter(t: pa.DataType) -> Conv | None:
    """A function fixing one value of Arrow type ``t``; None when nothing needs fixing."""
    if pa.types.is_floating(t):
        return _float
    if pa.types.is_integer(t):
        return _int
    if pa.types.is_string(t):
        return _str
    if pa.types.is_struct(t):
        fields = [(t.field(i).name, converter(t.field(i).type)) for i in range(t.num_fields)]
        fields = [(n, c) for n, c in fields if c is not None]
        if not fields:
            return None

        def struct(v: Any) -> Any:
            if type(v) is dict:
                for name, conv in fields:
                    x = v.get(name)
                    if x is not None:
                        v[name] = conv(x)
            return v
        return struct
    if pa.types.is_map(t):
        kc = converter(t.key_type) or _same
        vc = converter(t.item_type) or _same

        def mapping(v: Any) -> Any:
            if type(v) is dict:
                return {kc(k): (None if x is None else vc(x)) for k, x in v.items()}
            return v
        return mapping
    if pa.types.is_list(t):
        ic = converter(t.value_type)
        if ic is None:
            return None

        def items(v: Any) -> Any:
            if type(v) is list:
                return [None if x is None else ic(x) for x in v]
            return v
        return items
    return None


def coercer(table: Table) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Fix a row (keyed by wire names) in place for ``table``; returns the row."""
    plan = [(c.key, conv) for c in table.columns
            if (conv := converter(c.type)) is not None]

    def fix(row: dict[str, Any]) -> dict[str, Any]:
        for key, conv in plan:
            v = row.get(key)
            if v is not None:
                row[key] = conv(v)
        return row
    return fix
