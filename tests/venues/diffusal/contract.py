"""What the tests over every venue (``tests/venues/test_contract.py``,
``test_no_value_lost.py``) need of Diffusal: see ``tests/venues/corpus.py``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from recorder.rows import Row
from tests.venues.corpus import Frame, dumps, items, load, with_lists

_CONN = {"auth": "private", "private": "private", "private_rfq_events": "private",
         "private_fill_seconds": "private", "rfq_stream": "rfq-stream",
         "rfq_quotes": "rfq-quotes-x", "rfq_mm": "rfq-mm"}
_REST = {"rest_pairs": "pairs", "rest_markets": "markets",
         "rest_orderbook": "orderbook:BTC-82000-C-1736409600",
         "rest_active_auctions": "active-auctions",
         "rest_quotes": "quotes:6e53a761-77f1-3155-ee40-70473f70a061"}


def frames(name: str) -> Iterator[Frame]:
    tag = _REST.get(name)
    conn = _CONN.get(name, "public-0")

    def feed(ad: Any, sent: Any) -> list[Row]:
        if tag is not None:
            return ad.on_response("rest", tag, 200, dumps(sent))[0]
        return ad.on_frame(conn, dumps(sent))[0]

    def records(s: Any) -> list[dict[str, Any]]:
        if tag is not None:
            return with_lists(items(s) if isinstance(s, list) else [s])
        if isinstance(s, dict) and "stream" in s:
            return with_lists(items(s["data"]))
        return with_lists([s])
    for i, f in enumerate(load("diffusal", name)):
        yield Frame("diffusal", name, i, f, feed, records)


UNKNOWN = [("public-0", b'{"type":"brand_new"}'),
           ("public-0", b'{"stream":"btc-1-c-2@greeks","data":{}}'),
           ("public-0", b'{"stream":"global@rfq","data":{"type":"mystery"}}')]
NOT_SIMULATED = {
    "diffusal_error": "only for a refused request: test_e2e.py's 4029 test makes them",
}
# (an RFQ heartbeat soon, not in 5 s; RFQs, and their auctions over, sooner)
SIM: dict[str, Any] = {"rate": 3.0, "heartbeat": 0.5, "rfq_every": 6, "auction_ms": 700}
OPTIONS: dict[str, Any] = {}
