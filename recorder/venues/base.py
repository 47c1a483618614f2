"""What every venue provides, and the plain objects its adapter exchanges with the glue.

An adapter is sans-I/O (like h11): the glue hands it connection events and frames; it returns
typed rows and :data:`Action` objects (messages to send, reconnect hints). It never awaits,
never reads a clock and never touches a socket, so the same code runs live, on fixtures in
tests, and over old journals when the lake is rebuilt.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from recorder.schema import EXTRA, SESSION_EVENTS, UNHANDLED, Table
from recorder.venues.exact import dumps, undeclared

Row = tuple[Table, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class ConnSpec:
    """A connection the venue wants open. ``name`` is the logical ``conn_id``."""

    name: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    kind: str = "ws"  # a key of recorder.transport.TRANSPORTS: "ws" or "sse"


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``text`` on ``conn``. ``paced`` messages go through the venue's control-message
    rate limit; ``delay`` holds the message back that many seconds (a venue's retry hint).
    ``secret_keys`` are JSON keys whose values the journal must redact (dotted paths such as
    ``params.signature`` reach into nested objects)."""

    conn: str
    text: str
    paced: bool = True
    delay: float = 0.0
    secret_keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Reconnect:
    """Close ``conn`` (if still open) and reconnect after ``after`` seconds (a venue hint)."""

    conn: str
    after: float
    reason: str


@dataclass(frozen=True, slots=True)
class Stop:
    """Close ``conn`` for the rest of the run: credentials refused, or a per-request stream
    whose request has ended. Not an error by itself; the reason goes to session_events."""

    conn: str
    reason: str


@dataclass(frozen=True, slots=True)
class Open:
    """Open another connection now (a per-request stream, one more socket to stay under a
    venue's subscription cap). Its ``name`` must be new for this run."""

    spec: ConnSpec


@dataclass(frozen=True, slots=True)
class Fetch:
    """An HTTP request (REST hydration, snapshots). The response is journaled like a frame
    (kind ``rest``) under connection ``conn`` and handed to ``Adapter.on_response`` with
    ``tag``, so rebuilds see it too. Paced like sends when ``paced``."""

    conn: str
    url: str
    tag: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    delay: float = 0.0
    secret_headers: tuple[str, ...] = ()


Action = Send | Reconnect | Stop | Open | Fetch
NO_ACTIONS: tuple[Action, ...] = ()


class Adapter(Protocol):
    """The client side of a venue. One instance per venue per run (or per rebuild).
    Subclass :class:`BaseAdapter` for the defaults."""

    def connections(self) -> Sequence[ConnSpec]: ...

    def on_connected(self, conn: str) -> Sequence[Action]:
        """The transport opened ``conn``: return auth and subscribe messages."""
        ...

    def on_disconnected(self, conn: str) -> None:
        """``conn`` is gone; forget per-connection state (acks, pending requests)."""
        ...

    def on_frame(self, conn: str, data: bytes) -> tuple[list[Row], Sequence[Action]]:
        """One inbound frame -> rows for the lake, and actions for the transport."""
        ...

    def on_response(self, conn: str, tag: str, status: int,
                    body: bytes) -> tuple[list[Row], Sequence[Action]]:
        """The answer to a :class:`Fetch` (status 0: no answer, body holds the error)."""
        ...

    def on_start(self) -> Sequence[Action]:
        """Actions due when a live run starts, before any frame (never on rebuild)."""
        ...

    def on_sent(self, conn: str, data: bytes) -> None:
        """A message we sent, as journaled (live and on rebuild)."""
        ...

    def data_only(self, conn: str, data: bytes) -> bool:
        """True when the frame's only effect is rows: no actions, no change of the adapter's
        state that later actions depend on, no session row. The collector then journals it
        without calling ``on_frame`` (the lake builder makes its rows); a cheap test on the
        bytes, never a parse. When in doubt, False."""
        ...


class BaseAdapter:
    """Defaults for the optional parts of :class:`Adapter`."""

    def on_start(self) -> Sequence[Action]:
        """Actions due when the run starts, before any frame (e.g. a REST fetch whose answer
        decides what to open). Not called on rebuild: the answers are in the journal."""
        return NO_ACTIONS

    def on_connected(self, conn: str) -> Sequence[Action]:
        return NO_ACTIONS

    def on_disconnected(self, conn: str) -> None:
        return None

    def data_only(self, conn: str, data: bytes) -> bool:
        return False

    def on_sent(self, conn: str, data: bytes) -> None:
        """A message we sent on ``conn`` as journaled (secrets redacted), or the JSON record
        of a :class:`Fetch` request; also replayed on rebuild. Adapters that match replies to
        requests learn here what was really sent, identically live and from the journal."""
        return None

    def on_response(self, conn: str, tag: str, status: int,
                    body: bytes) -> tuple[list[Row], Sequence[Action]]:
        return [unhandled("unexpected_response", body, msg_type=tag,
                          error=f"HTTP {status}; this adapter makes no requests")], NO_ACTIONS


@dataclass(frozen=True)
class VenueSpec:
    """One venue = one folder + this object + fixtures.

    ``make_adapter(options, simulated)`` validates the venue's own config keys (raising
    ConfigError) and returns an adapter; ``start_simulator(options)`` starts the venue's
    server side on loopback and returns ``(url, stop_coroutine_fn, adapter_overrides)``.
    """

    name: str
    tables: tuple[Table, ...]
    make_adapter: Callable[..., Adapter]
    start_simulator: Callable[..., Any] | None = None
    send_limit: tuple[int, float] | None = None  # (messages, per seconds) for paced sends
    # (connection attempts, per seconds) across all of the venue's connections
    connect_limit: tuple[int, float] | None = None
    serve: Callable[..., Any] | None = None  # async serve(host, port, **opts): `recorder sim`
    # Native replay: (**opts) -> a server with start(host, port), stop(), url, subscribed()
    # and publish(frame_bytes, conn_id), the simulator's server side fed by the journal.
    # opts always include data_dir, start and end (the recording), to use or ignore.
    replay_server: Callable[..., Any] | None = None


# --- helpers adapters share --------------------------------------------------------------------

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
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes | bytearray) else raw
    return UNHANDLED, {"reason": reason, "msg_type": msg_type, "error": error, "raw": text}


def session(event: str, **fields: Any) -> Row:
    if "detail" in fields and not isinstance(fields["detail"], str | None):
        fields["detail"] = orjson.dumps(fields["detail"]).decode()
    fields["event"] = event
    return SESSION_EVENTS, fields
