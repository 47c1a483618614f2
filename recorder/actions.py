"""What an adapter asks the transport to do: the plain objects the glue carries out.

Adapters return these from every callback; the collector and the transports act on them. They
hold no behaviour, so transports never import venue code to know them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
