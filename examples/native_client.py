"""A client written against Mackinac's own WebSocket API, pointed at the native replay.

Start the replay first, then run this against the URL it prints:

    .venv/bin/recorder replay serve --venue mackinac --speed 5
    .venv/bin/python examples/native_client.py ws://127.0.0.1:PORT/feed hl:ETH

Nothing here knows about the recorder: auth, subscribe and frames are Mackinac's
(https://mackinac.io/api/websocket/).
"""

from __future__ import annotations

import asyncio
import sys

import aiohttp
import orjson


async def run(url: str, market: str = "hl:ETH", seconds: float = 5.0,
              key: str = "mk_test_simulator_key") -> dict[str, int]:
    exchange, symbol = market.split(":", 1)
    counts: dict[str, int] = {}
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.send_str(orjson.dumps({"action": "auth", "key": key}).decode())
        await ws.send_str(orjson.dumps({"action": "subscribe", "exchange": exchange,
                                        "symbol": symbol}).decode())
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while (left := end - loop.time()) > 0:
            try:
                msg = await ws.receive(timeout=left)
            except TimeoutError:
                break
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            kind = orjson.loads(msg.data).get("type", "?")
            counts[kind] = counts.get(kind, 0) + 1
    return counts


if __name__ == "__main__":
    print(asyncio.run(run(sys.argv[1], *(sys.argv[2:3] or ["hl:ETH"]))))
