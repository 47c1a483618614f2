"""What the tests over every venue (``tests/venues/test_contract.py``,
``test_no_value_lost.py``) need of Mackinac: see ``tests/venues/corpus.py``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from recorder.rows import Row
from tests.venues.corpus import Frame, dumps, load, with_lists


def frames(name: str) -> Iterator[Frame]:
    def feed(ad: Any, sent: Any) -> list[Row]:
        return ad.on_frame("feed", dumps(sent))[0]
    for i, f in enumerate(load("mackinac", name)):
        yield Frame("mackinac", name, i, f, feed, lambda s: with_lists([s]))


UNKNOWN = [("feed", b'{"type":"orderbook","exchange":"hl","symbol":"ETH"}')]

# test_e2e.py::test_every_type_lake_equals_ledger_across_a_server_restart drives these faults
NOT_SIMULATED = {
    "mackinac_feed_stale": "only when an upstream goes stale (the stale() fault)",
    "mackinac_feed_live": "only after a stale upstream recovers (the stale() fault)",
    "mackinac_server_closing": "only before a planned restart (the server_closing() fault)",
    "mackinac_error": "only for a refused subscribe (the rate_limit() fault)",
}
SIM: dict[str, Any] = {"rate": 3.0}
OPTIONS: dict[str, Any] = {}
