"""What the tests over every venue (``tests/venues/test_contract.py``,
``test_no_value_lost.py``) need of Totalis: see ``tests/venues/corpus.py``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from recorder.rows import Row
from tests.venues.corpus import Frame, dumps, items, load, with_lists

# fixture -> (connection, SSE event name); every other Totalis fixture is a WebSocket frame
_SSE = {
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


def frames(name: str) -> Iterator[Frame]:
    sse = _SSE.get(name)

    def feed(ad: Any, sent: Any) -> list[Row]:
        if sse is None:
            return ad.on_frame("ws", dumps(sent))[0]
        conn, event = sse
        return ad.on_frame(conn, f"event: {event}\ndata: {json.dumps(sent)}\n\n".encode())[0]

    def records(s: Any) -> list[dict[str, Any]]:
        root = s if sse is not None else s.get("data", s)
        return with_lists(items(root))
    for i, f in enumerate(load("totalis", name)):
        yield Frame("totalis", name, i, f, feed, records)


UNKNOWN = [("mm", b'event: quote_request:deleted\ndata: {"id": "x"}\nid: 6\n\n'),
           ("ws", b'{"type": "rfq:quoted", "data": {"rfq_id": "r1"}}')]
_LEGACY = "the removed rfqs:open channel, which the simulator does not serve (fixtures only)"
_UNMODELLED = "an event of the catalog the synthetic market does not make (fixtures only)"
NOT_SIMULATED = {
    "totalis_auth_error": "only for a refused key (test_server.py refuses one)",
    "totalis_ws_error": "only for a bad request, which the recorder never sends",
    "totalis_rfq_created": _LEGACY, "totalis_quote_submitted": _LEGACY,
    "totalis_rfq_status": _UNMODELLED, "totalis_rfq_cancelled": _UNMODELLED,
    "totalis_rfq_expired": _UNMODELLED, "totalis_position_failed": _UNMODELLED,
    "totalis_position_bought_back": _UNMODELLED, "totalis_vault_deposited": _UNMODELLED,
    "totalis_vault_withdrawn": _UNMODELLED,
}
SIM: dict[str, Any] = {"rate": 5.0}
OPTIONS: dict[str, Any] = {"ping_interval": 1.0}  # a pong soon (1 s is its least)
