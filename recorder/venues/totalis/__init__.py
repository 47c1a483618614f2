"""Totalis: parlay RFQ venue (https://docs.totalis.trade). Pre-trade quote requests arrive on
Server-Sent Events streams; post-trade quote and position events on a WebSocket."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from recorder.catalogue import VenueSpec
from recorder.venues.base import serve_from
from recorder.venues.totalis.adapter import Settings, make_adapter
from recorder.venues.totalis.tables import TABLES

SIM_KEY = "api_test_simulator_key"


async def start_simulator(options: Mapping[str, Any]) -> tuple[
        str, Callable[[], Awaitable[None]], dict[str, Any]]:
    """Start the simulator on a free loopback port; returns (url, stop, adapter overrides)."""
    from recorder.venues.totalis.server import TotalisServer

    opts = dict(options)
    opts.setdefault("api_keys", (SIM_KEY,))
    server = TotalisServer(**opts)
    await server.start("127.0.0.1", 0)
    return server.url, server.stop, {"api_key": next(iter(opts["api_keys"])),
                                     "ws_url": server.ws_url}


def replay_server(**opts: Any) -> Any:
    """The simulator's server side without its synthetic market, fed recorded frames
    (SSE blocks with their recorded ids, WS frames by channel). Options as
    :class:`~recorder.venues.totalis.server.TotalisServer`'s (``api_keys``: the simulator's
    key by default)."""
    from recorder.venues.totalis.server import TotalisServer

    opts.setdefault("api_keys", (SIM_KEY,))
    return TotalisServer(replay=True, **opts)


# Control messages on the WebSocket (subscribe/unsubscribe) are few; the limit is undocumented
# (https://docs.totalis.trade/api-reference/introduction gives 300 REST requests/min), so the
# recorder stays well below it.
VENUE = VenueSpec(name="totalis", tables=TABLES, make_adapter=make_adapter,
                  options=Settings, start_simulator=start_simulator, send_limit=(20, 1.0),
                  serve=serve_from(f"{__name__}.server"), replay_server=replay_server)
