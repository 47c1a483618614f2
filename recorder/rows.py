"""Rows: what adapters hand the lake, and the helpers every adapter builds them with.

A :data:`Row` is ``(table, value)``: the value is a dict keyed by the table's wire names, or
the frame's raw JSON bytes when the frame maps onto its table as it is (the lake parses those
with Arrow's C++ reader and fills the table's ``raw_constants``). Nothing here knows a venue.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from recorder.exact import dumps, undeclared
from recorder.schema import EXTRA, SESSION_EVENTS, UNHANDLED, Table

# The value is keyed by wire names; a raw row (see above) carries the frame's bytes instead.
Row = tuple[Table, dict[str, Any]]

# A JSON number of 20+ digits after a structural character. orjson reads integers beyond 64
# bits as floats, so uint128/uint256 amounts sent as bare numbers would lose digits; such
# frames go through the stdlib parser, which keeps them exact. A match inside a string only
# costs the slower parser, never a wrong value.
_BIG_INT = re.compile(rb"[:,\[]\s*-?\d{20,}")
JSONError = ValueError  # orjson.JSONDecodeError, json.JSONDecodeError and bad UTF-8 all are


def loads(data: bytes) -> Any:
    """Parse a frame: orjson, or the stdlib where an integer would not fit 64 bits.

    orjson parses first in both cases: it refuses nesting deeper than 1024 levels with a
    ValueError, whereas the stdlib's C scanner can overflow the C stack on a frame of 100k
    nested brackets (a segfault, when the recursion limit has been raised) before any
    RecursionError. So the stdlib only ever sees frames orjson found sane."""
    obj = orjson.loads(data)
    if _BIG_INT.search(data) is not None:
        return json.loads(data)
    return obj


def with_extra(table: Table, msg: dict[str, Any]) -> dict[str, Any]:
    """Keep fields the table does not declare, as JSON in the ``extra`` column: top-level
    keys by name, members of nested structs by path (``legs[1].note``), which Arrow would
    otherwise drop silently. Integers beyond 64 bits stay exact."""
    unknown = msg.keys() - table.wire_keys
    deep = undeclared(table, msg)
    if unknown or deep:
        extra = {k: msg[k] for k in sorted(unknown)}
        extra.update(deep)
        msg[EXTRA] = dumps(extra)
    return msg


def unhandled(reason: str, raw: bytes | str, msg_type: str | None = None,
              error: str | None = None) -> Row:
    """A frame nobody could read (or whose reading failed), kept with its raw text."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes | bytearray) else raw
    return UNHANDLED, {"reason": reason, "msg_type": msg_type, "error": error, "raw": text}


def session(event: str, **fields: Any) -> Row:
    """A ``session_events`` row: connection life as data."""
    if "detail" in fields and not isinstance(fields["detail"], str | None):
        fields["detail"] = orjson.dumps(fields["detail"]).decode()
    fields["event"] = event
    return SESSION_EVENTS, fields
