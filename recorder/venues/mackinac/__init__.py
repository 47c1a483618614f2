"""Mackinac: multi-venue DeFi market-data aggregator WebSocket (https://mackinac.io/api/)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from recorder.catalogue import VenueSpec
from recorder.venues.base import serve_from
from recorder.venues.mackinac.adapter import Settings, make_adapter
from recorder.venues.mackinac.tables import TABLES

SIM_KEY = "mk_test_simulator_key"


async def start_simulator(options: Mapping[str, Any]) -> tuple[
        str, Callable[[], Awaitable[None]], dict[str, Any]]:
    """Start the simulator on a free loopback port; returns (url, stop, adapter overrides)."""
    from recorder.venues.mackinac.server import MackinacServer

    opts = dict(options)
    opts.setdefault("api_keys", (SIM_KEY,))
    server = MackinacServer(**opts)
    await server.start("127.0.0.1", 0)
    return server.url, server.stop, {"api_key": next(iter(opts["api_keys"]))}


def replay_server(**opts: Any) -> Any:
    """The simulator's server side without its synthetic market, fed recorded frames."""
    from recorder.venues.mackinac.server import MackinacServer

    opts.setdefault("api_keys", (SIM_KEY,))
    return MackinacServer(replay=True, **opts)


# The SDK throttles itself to 30 subscribe actions per 10 s (sliding window); the server's own
# limit is undocumented but it answers excess with rate_limited (mackinac-python _ws.py).
VENUE = VenueSpec(name="mackinac", tables=TABLES, make_adapter=make_adapter,
                  options=Settings, start_simulator=start_simulator, send_limit=(30, 10.0),
                  serve=serve_from(f"{__name__}.server"), replay_server=replay_server)
