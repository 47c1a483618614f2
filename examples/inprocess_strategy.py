"""A tiny strategy driven by the in-process replay: a mid-price EMA crossover on Mackinac
quotes, which forgets its state across recorded gaps (the tape is incomplete there).

    .venv/bin/python examples/inprocess_strategy.py data [hl:ETH] [speed]
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from recorder import replay


async def run(data_dir: Path, market: str = "hl:ETH", speed: float = 0.0) -> dict[str, float]:
    exchange, symbol = market.split(":", 1)
    fast = slow = None
    position, signals, gaps, quotes = 0, 0, 0, 0
    source = replay.records(data_dir, venues=["mackinac"],
                            tables=["mackinac_quote", "session_events"])
    async for rec in replay.paced(source, speed=speed):
        if rec.is_gap:
            fast = slow = None  # do not trade across a hole in the tape
            gaps += 1
            continue
        d = rec.data
        if rec.table != "mackinac_quote" or (d["exchange"], d["symbol"]) != (exchange, symbol):
            continue
        if not d["bids"] or not d["asks"]:
            continue
        quotes += 1
        mid = (d["bids"][0]["price"] + d["asks"][0]["price"]) / 2
        fast = mid if fast is None else fast + 0.3 * (mid - fast)
        slow = mid if slow is None else slow + 0.05 * (mid - slow)
        want = 1 if fast > slow else -1
        if want != position:
            position, signals = want, signals + 1
    return {"quotes": quotes, "signals": signals, "gaps": gaps, "position": position}


if __name__ == "__main__":
    args = sys.argv[1:]
    out = asyncio.run(run(Path(args[0] if args else "data"), *(args[1:2] or ["hl:ETH"]),
                          float(args[2]) if len(args) > 2 else 0.0))
    print(out)
