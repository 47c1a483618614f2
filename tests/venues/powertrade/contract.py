"""What the tests over every venue (``tests/venues/test_contract.py``,
``test_no_value_lost.py``) need of Power.Trade: see ``tests/venues/corpus.py``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from recorder.rows import Row
from recorder.venues.powertrade.adapter import FEEDS, PROXY, REST  # noqa: E402
from tests.venues.corpus import Frame, dumps, load, with_lists


def frames(name: str) -> Iterator[Frame]:
    def body(s: Any) -> list[dict[str, Any]]:
        return with_lists([next(iter(s.values()))])

    if name == "rest_entity_summary":
        def summary(ad: Any, sent: Any) -> list[Row]:
            return ad.on_response(REST, "summary-1", 200, dumps(sent))[0]
        for i, f in enumerate(load("powertrade", name)):
            its = f if isinstance(f, list) else next(v for v in f.values() if
                                                     isinstance(v, list))
            yield Frame("powertrade", name, i, f, summary, lambda s, it=its: list(it))
        return
    conn = FEEDS if name.startswith("feed_") else PROXY

    def feed(ad: Any, sent: Any) -> list[Row]:
        if conn == FEEDS:  # the decimals first, as live
            ad.on_response(REST, "summary-1", 200,
                           dumps(load("powertrade", "rest_entity_summary")[0]))
        return ad.on_frame(conn, dumps(sent))[0]
    for i, f in enumerate(load("powertrade", name)):
        yield Frame("powertrade", name, i, f, feed, body)


UNKNOWN = [(PROXY, b'{"brand_new": {"x": "1"}}'),
           (FEEDS, b'{"multi_leg_mbp_snapshot": {"x": "1"}}')]
# answers to order entry, which a recorder never sends (the fixtures and the server tests
# cover them)
NOT_SIMULATED = {
    "powertrade_cancel_all_orders": "the answer to cancel_all_orders (order entry)",
    "powertrade_new_bulk_order_response": "the answer to new_bulk_order (order entry)",
    "powertrade_refresh_interest": "the answer to refresh_interest (order entry)",
}
# (a heartbeat every 0.5 s, not 5; account activity often enough for a cancel_order soon)
SIM: dict[str, Any] = {"rate": 4.0, "rfq_rate": 4.0, "account_rate": 12.0, "heartbeat": 0.5}
OPTIONS: dict[str, Any] = {}
