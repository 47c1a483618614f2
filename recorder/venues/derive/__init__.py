"""Derive (formerly Lyra v2): options, perps and spot over JSON-RPC WebSocket
(https://docs.derive.xyz/reference/json-rpc)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from recorder.catalogue import VenueSpec
from recorder.venues.base import serve_from
from recorder.venues.derive.adapter import Settings, make_adapter
from recorder.venues.derive.tables import TABLES


async def start_simulator(options: Mapping[str, Any]) -> tuple[
        str, Callable[[], Awaitable[None]], dict[str, Any]]:
    """Start the simulator on a free loopback port; returns (url, stop, adapter overrides):
    the simulator's wallet and the key registered for it, so private channels are recorded
    without any secret in the config."""
    from recorder.venues.derive.server import DeriveServer

    server = DeriveServer(**dict(options))
    await server.start("127.0.0.1", 0)
    return server.url, server.stop, {"wallet": server.wallet,
                                     "private_key": server.signer_key}


def replay_server(**opts: Any) -> Any:
    """The simulator's server side without its synthetic market, fed recorded frames.

    Options are :class:`~recorder.venues.derive.server.DeriveServer`'s, with the simulator's
    defaults (wallet, signer key, subaccounts); ``recording`` (the
    :class:`~recorder.sim.Recording` replayed) makes get_all_currencies / get_instruments
    answer from it, and its recorded login
    gives the default wallet and subaccounts. ``api_keys`` (what ``recorder replay serve
    --api-key`` passes every venue) are read as accepted signers: an address (0x + 40 hex)
    or a private key (0x + 64 hex)."""
    from recorder.venues.derive.server import DeriveServer

    keys = [str(k) for k in opts.pop("api_keys", None) or ()]
    signers = list(opts.pop("signers", ()))
    session_keys = list(opts.pop("session_keys", ()))
    for k in keys:
        (signers if len(k) == 42 else session_keys).append(k)
    return DeriveServer(replay=True, signers=signers, session_keys=session_keys, **opts)


# Rate limits (https://docs.derive.xyz/reference/rate-limits): the trader tier allows 5
# non-matching requests per second, refilled every 5 s with a 5x burst; subscribe, login and
# get_instruments are non-matching. 25 per 5 s stays inside it.
VENUE = VenueSpec(name="derive", tables=TABLES, make_adapter=make_adapter,
                  options=Settings, start_simulator=start_simulator, send_limit=(25, 5.0),
                  serve=serve_from(f"{__name__}.server"), replay_server=replay_server)
