"""Replay lines of ``make bench``: replay rates beside bare baselines, and replay memory
against range length, on the lake a recording round just built."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import orjson


def replay_rates(data_dir: Path) -> list[tuple[str, str]]:
    """Replay throughput on the lake just recorded, each beside a bare baseline."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from recorder import journal as jr
    from recorder import replay
    from recorder.lake import lake_files

    files = lake_files(data_dir)
    t = time.perf_counter()
    def plain(f: Path) -> list[dict]:
        t = pq.read_table(f)
        return t.cast(pa.schema([pa.field(x.name, pa.int64()) if pa.types.is_timestamp(x.type)
                                 else x for x in t.schema])).to_pylist()

    bare_rows = sum(len(plain(f)) for f in files)
    bare_rec = bare_rows / (time.perf_counter() - t)
    t = time.perf_counter()
    n_rec = sum(1 for _ in replay.records(data_dir))
    rec_rate = n_rec / (time.perf_counter() - t)
    t = time.perf_counter()
    bare_b = sum(pq.read_table(f).num_rows for f in lake_files(data_dir, "mackinac_quote"))
    bare_b_rate = bare_b / (time.perf_counter() - t)
    t = time.perf_counter()
    n_b = sum(b.num_rows for b in replay.batches(data_dir, "mackinac_quote"))
    b_rate = n_b / (time.perf_counter() - t)
    t = time.perf_counter()
    n_j = sum(1 for _ in jr.read_run(data_dir, "mackinac", jr.parse_name(
        jr.segments(data_dir, "mackinac")[0])[0]))
    j_rate = n_j / (time.perf_counter() - t)
    return [
        ("replay: typed records/s (all tables, merged order)", f"{rec_rate:,.0f}"),
        ("  bare: Parquet -> Python rows/s, no order", f"{bare_rec:,.0f}  (ratio "
         f"{rec_rate / bare_rec:.2f})"),
        ("replay: Arrow batch rows/s (mackinac_quote, sorted)", f"{b_rate:,.0f}"),
        ("  bare: pq.read_table rows/s", f"{bare_b_rate:,.0f}  (ratio {b_rate / bare_b_rate:.2f})"),
        ("journal read frames/s (feeds native replay)", f"{j_rate:,.0f}"),
    ]


async def native_rate(data_dir: Path) -> tuple[float, int]:
    """Native replay at speed 0 into a bare client subscribed to every recorded key."""
    from recorder import journal as jr
    from recorder.replay import serve_native
    from recorder.venues.mackinac.server import replay_keys

    keys: set[str] = set()
    for rec in jr.read_run(data_dir, "mackinac", jr.parse_name(
            jr.segments(data_dir, "mackinac")[0])[0]):
        if rec.kind == jr.KIND_IN:
            keys |= replay_keys(orjson.loads(rec.data)) or set()
    urls: dict[str, str] = {}
    ready = asyncio.Event()
    task = asyncio.create_task(serve_native(
        data_dir, ["mackinac"], speed=0, linger=0.5,
        server_options={"mackinac": {"api_keys": {"k": "super_admin"}, "ack": False}},
        on_ready=lambda u: (urls.update(u), ready.set())))
    await ready.wait()
    got, t0, t1 = 0, None, 0.0
    async with aiohttp.ClientSession() as s, s.ws_connect(
            urls["mackinac"], max_msg_size=64 << 20, decode_text=False) as ws:
        await ws.send_str(orjson.dumps({"action": "auth", "key": "k"}).decode())
        for k in sorted(keys):
            ex, _, sym = k.partition(":")
            await ws.send_str(orjson.dumps({"action": "subscribe", "exchange": ex,
                                            "symbol": sym}).decode())
        while True:
            try:
                msg = await ws.receive(timeout=2.0)
            except TimeoutError:
                break
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            got += 1
            t0 = t0 or time.perf_counter()
            t1 = time.perf_counter()
    await task
    return got / max(t1 - (t0 or t1), 1e-9), got


def replay_memory(data_dir: Path) -> list[tuple[str, str]]:
    """Peak RSS of a replay over growing prefixes of the range: flat means bounded. Each is a
    fresh process's own high water mark (VmHWM, see bench/replay_rss.py: ru_maxrss there
    would be this bench process's peak, carried over fork and exec), beside the floor of a
    process that only imports replay and loads the registry."""
    from bench.replay_rss import peak_rss
    from recorder import replay

    first = next(iter(replay.records(data_dir, tables=["mackinac_quote"]))).ts_recv
    last = max(r.ts_recv for r in replay.records(data_dir, tables=["session_events"]))
    _, floor = peak_rss(None)
    out = []
    for frac in (0.25, 0.5, 1.0):
        end = first + int((last - first) * frac) + 1
        n, mib = peak_rss(data_dir, "recv", end)
        out.append((f"replay peak RSS, {frac:.0%} of the range",
                    f"{mib} MiB for {n:,} records (imports alone {floor} MiB)"))
    return out


def replay_rows(data_dir: Path) -> list[tuple[str, str]]:
    """Every replay line, on the lake of one recording round."""
    from bench.common import run

    rows = replay_rates(data_dir) + replay_memory(data_dir)
    rate, got = run(native_rate(data_dir))
    rows.append(("native replay frames/s into a bare client (speed 0)",
                 f"{rate:,.0f} ({got:,} frames)"))
    return rows
