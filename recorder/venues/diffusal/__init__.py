"""Diffusal: options on Monad testnet; Binance-style multiplexed WebSockets, RFQ auctions.

Docs: https://docs.diffusal.xyz/docs/api/websocket (notes: ``shared/venues/002-diffusal.md``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from recorder.catalogue import VenueSpec
from recorder.venues.base import serve_from
from recorder.venues.diffusal.adapter import Settings, make_adapter
from recorder.venues.diffusal.tables import TABLES


async def start_simulator(options: Mapping[str, Any]) -> tuple[
        str, Callable[[], Awaitable[None]], dict[str, Any]]:
    """Start the simulator on a free loopback port; returns (url, stop, adapter overrides):
    the simulator's own bearer token, and the MM socket (the simulator serves one MMM)."""
    from recorder.venues.diffusal.server import SIM_TOKEN, DiffusalServer

    opts = dict(options)
    opts.setdefault("tokens", (SIM_TOKEN,))
    server = DiffusalServer(**opts)
    await server.start("127.0.0.1", 0)
    return server.url, server.stop, {"token": next(iter(opts["tokens"])), "mm": True}


def replay_server(**opts: Any) -> Any:
    """The simulator's server side without its synthetic market, fed recorded frames.

    Options are the simulator's (``tokens``, ``api_keys``, ``auth_reply``, ``mm_address``...,
    with its defaults) plus ``recording`` (the :class:`~recorder.sim.Recording` replayed), whose
    journaled REST responses then answer the REST endpoints (hydration, depth resyncs)."""
    from recorder.venues.diffusal.server import SIM_TOKEN, DiffusalServer

    opts.setdefault("tokens", (SIM_TOKEN,))
    return DiffusalServer(replay=True, **opts)


# 300 messages/min per connection (https://docs.diffusal.xyz/docs/api/websocket "WebSocket
# Rate Limits"); we stay a little under so clock skew between our window and the server's
# never tips a burst over. 60 connections/min (excess closed silently): at most 50 attempts
# a minute across all of this venue's sockets, reconnects included.
VENUE = VenueSpec(name="diffusal", tables=TABLES, make_adapter=make_adapter,
                  options=Settings, start_simulator=start_simulator, send_limit=(290, 60.0),
                  connect_limit=(50, 60.0), serve=serve_from(f"{__name__}.server"),
                  replay_server=replay_server)
