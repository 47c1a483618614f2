"""What the tests over every venue (``tests/venues/test_contract.py``,
``test_no_value_lost.py``) need of Derive: see ``tests/venues/corpus.py``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from recorder.rows import Row
from tests.venues.corpus import Frame, dumps, items, load, with_lists


def frames(name: str) -> Iterator[Frame]:
    def feed(ad: Any, sent: Any) -> list[Row]:
        return ad.on_frame("ws", dumps(sent))[0]

    def records(s: Any) -> list[dict[str, Any]]:
        if s.get("method") != "subscription":
            return []  # answers to our requests: control, not records
        data = s["params"]["data"]
        roots = items(data)
        if isinstance(data, dict) and isinstance(data.get("instrument_ticker"), dict):
            roots.append(data["instrument_ticker"])
        return with_lists(roots)
    for i, f in enumerate(load("derive", name)):
        yield Frame("derive", name, i, f, feed, records)


UNKNOWN = [("ws", b'{"method": "subscription", "params": {"channel": "nope.x", "data": 1}}'),
           ("ws", b'{"jsonrpc": "2.0", "method": "heartbeat"}')]
NOT_SIMULATED: dict[str, str] = {}
SIM: dict[str, Any] = {"rate": 3.0}
OPTIONS: dict[str, Any] = {}
