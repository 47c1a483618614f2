"""Power.Trade: crypto options, perpetuals and spot with RFQs. Records the Market Proxy
WebSocket (https://api-docs-5180b.web.app/docs/web-socket-api), the public Feeds WebSocket
(https://power-trade.github.io/api-docs-source/ws_feeds.html) and the REST entity summary."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from recorder.catalogue import VenueSpec
from recorder.venues.base import serve_from
from recorder.venues.powertrade.adapter import Settings, make_adapter
from recorder.venues.powertrade.tables import TABLES


async def start_simulator(options: Mapping[str, Any]) -> tuple[
        str, Callable[[], Awaitable[None]], dict[str, Any]]:
    """Start the simulator on a free loopback port; returns (proxy url, stop, overrides):
    the simulator's API key and PEM secret and its Feeds and summary URLs."""
    from recorder.venues.powertrade.server import PowerTradeServer

    server = PowerTradeServer(**dict(options))
    await server.start("127.0.0.1", 0)
    key, pem = server.credentials()
    return server.url, server.stop, {"api_key": key, "api_secret": pem,
                                     "feeds_url": server.feeds_url,
                                     "summary_url": server.summary_url}


def replay_server(**opts: Any) -> Any:
    """The simulator's server side without its synthetic market, fed recorded frames (native
    replay). Options as :class:`~recorder.venues.powertrade.server.PowerTradeServer`'s: the
    replaying client's key through ``key_pems`` (default: the simulator's generated
    ``pt_sim_key``), ``recording`` for the recorded REST summary and request answers."""
    from recorder.venues.powertrade.server import PowerTradeServer

    return PowerTradeServer(replay=True, **opts)


# No request rate limit is published for the Market Proxy (notes: open question); 50 paced
# requests per second keeps an "all symbols" subscribe burst polite.
VENUE = VenueSpec(name="powertrade", tables=TABLES, make_adapter=make_adapter,
                  options=Settings, start_simulator=start_simulator, send_limit=(50, 1.0),
                  serve=serve_from(f"{__name__}.server"), replay_server=replay_server)
