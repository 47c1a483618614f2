"""``make bench``: throughput measured side by side in one run, printed as ratios.

The Mackinac simulator runs in its own process and sends N frames at full speed after the
first subscribe (``--firehose N``). On that same stream we time:
  - bare aiohttp: receive + ``orjson.loads`` (the baseline),
  - bare websockets: receive + ``orjson.loads`` (why the transport uses aiohttp),
  - the recorder: journal + normalize + Parquet, every frame accounted for, final commit
    included in the time.
Speed belongs here, never in test assertions: these machines are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson
import websockets
import zstandard

ROOT = Path(__file__).resolve().parent.parent
SUB = orjson.dumps({"action": "subscribe", "exchange": "hl", "symbol": "ETH"}).decode()
CONTROL = {"subscribed", "authed", "error", "snapshot"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sim:
    def __init__(self, n: int) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "recorder.cli", "sim", "mackinac", "--port", str(self.port),
             "--firehose", str(n), "--rate", "0.2"], cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            self.stop()
            raise SystemExit("simulator did not start")
        self.url = f"ws://127.0.0.1:{self.port}/feed"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


async def bare_aiohttp(url: str, n: int) -> tuple[float, list[bytes]]:
    frames: list[bytes] = []
    async with aiohttp.ClientSession() as s, s.ws_connect(
            url, compress=0, max_msg_size=64 << 20, decode_text=False) as ws:
        await ws.send_str(SUB)
        got = 0
        t0 = None
        while got < n:
            msg = await ws.receive()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"stream ended after {got} frames: {msg}")
            obj = orjson.loads(msg.data)
            if obj.get("type") in CONTROL:
                continue
            if t0 is None:
                t0 = time.perf_counter()
            frames.append(msg.data)
            got += 1
        return n / (time.perf_counter() - t0), frames


async def bare_websockets(url: str, n: int) -> float:
    async with websockets.connect(url, compression=None, max_size=64 << 20) as ws:
        await ws.send(SUB)
        got = 0
        t0 = None
        while got < n:
            obj = orjson.loads(await ws.recv(decode=False))
            if obj.get("type") in CONTROL:
                continue
            if t0 is None:
                t0 = time.perf_counter()
            got += 1
        return n / (time.perf_counter() - t0)


async def recorder_run(url: str, n: int, data_dir: Path) -> tuple[float, dict]:
    from recorder.config import Config, RecorderSettings, TransportSettings, VenueConfig
    from recorder.record import record

    cfg = Config(Path("bench.toml"), RecorderSettings(data_dir=data_dir, status_interval=60.0,
                                                      lake_flush_seconds=1.0),
                 (VenueConfig("mackinac", "mackinac", url=url,
                              transport=TransportSettings(max_frame_bytes=64 << 20),
                              options={"symbols": ["hl:ETH"], "history": False}),))
    stop = asyncio.Event()
    holder: dict = {}

    async def watch() -> None:
        # Stop once the n data frames (plus the one subscribe ack) have arrived.
        while "runs" not in holder:
            await asyncio.sleep(0.01)
        st = next(iter(holder["runs"][0].conns.values())).status
        while st.frames < n + 1:
            await asyncio.sleep(0.01)
        holder["first"] = st.first_ts
        stop.set()

    w = asyncio.create_task(watch())
    res = await record(cfg, 600, out=open(os.devnull, "w"), live_status=False,
                       install_signals=False, stop=stop,
                       on_start=lambda runs: holder.setdefault("runs", runs))
    w.cancel()
    end = time.time_ns()
    elapsed = (end - holder["first"]) / 1e9
    return n / elapsed, res.manifest


def account(data_dir: Path, run_id: str) -> str:
    """Every inbound frame must be in the journal, and have at least one lake row (an
    `unhandled` one included) carrying its (conn_id, recv_seq)."""
    from recorder import journal as jr
    from recorder.duck import connect

    inbound = {(r.conn, r.seq) for r in jr.read_run(data_dir, "mackinac", run_id)
               if r.kind == jr.KIND_IN}
    con = connect(data_dir)
    from recorder.venues import CATALOGUE

    union = " UNION ".join(f"SELECT conn_id, recv_seq FROM {t}" for t in CATALOGUE.tables
                           if t.startswith("mackinac_") or t == "unhandled")
    in_lake = {(c, s) for c, s in con.sql(union).fetchall()}
    missing = len(inbound - in_lake)
    return f"{len(inbound)} / {len(inbound & in_lake)}" + (f" ({missing} MISSING)" if missing
                                                            else " (all)")


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


_PEAK = """
import resource, sys
from recorder import replay
recs = replay.records(sys.argv[1], end=int(sys.argv[2]))
n = sum(1 for _ in recs)
print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def replay_memory(data_dir: Path) -> list[tuple[str, str]]:
    """Peak RSS of a replay over growing prefixes of the range: flat means bounded."""
    from recorder import replay

    first = next(iter(replay.records(data_dir, tables=["mackinac_quote"]))).ts_recv
    last = max(r.ts_recv for r in replay.records(data_dir, tables=["session_events"]))
    out = []
    for frac in (0.25, 0.5, 1.0):
        end = first + int((last - first) * frac) + 1
        r = subprocess.run([sys.executable, "-c", _PEAK, str(data_dir), str(end)], cwd=ROOT,
                           capture_output=True, text=True, check=True)
        n, mb = r.stdout.split()
        out.append((f"replay peak RSS, {frac:.0%} of the range", f"{mb} MiB for {int(n):,} records"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(prog="make bench")
    ap.add_argument("-n", type=int, default=int(os.environ.get("BENCH_FRAMES", "100000")))
    args = ap.parse_args()
    n = args.n
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        sim = Sim(n)
        try:
            rate_aio, frames = asyncio.run(bare_aiohttp(sim.url, n))
            rate_ws = asyncio.run(bare_websockets(sim.url, n))
            rate_rec, manifest = asyncio.run(recorder_run(sim.url, n, data_dir))
            rate_aio2, _ = asyncio.run(bare_aiohttp(sim.url, n))  # drift check
        finally:
            sim.stop()
        replay_rows = replay_rates(data_dir) + replay_memory(data_dir)
        n_rate, n_got = asyncio.run(native_rate(data_dir))
        replay_rows.append(("native replay frames/s into a bare client (speed 0)",
                            f"{n_rate:,.0f} ({n_got:,} frames)"))
        base = (rate_aio + rate_aio2) / 2
        raw = b"\n".join(frames)
        zraw = len(zstandard.ZstdCompressor(level=3).compress(raw))
        lake_bytes = sum(p.stat().st_size for p in (data_dir / "lake").rglob("*.parquet"))
        jbytes = sum(p.stat().st_size for p in (data_dir / "journal").rglob("*.zst"))
        rows_total = sum(manifest["tables"].values())
        accounted = account(data_dir, manifest["run_id"])
        rows += [
            ("frames per run", f"{n}"),
            ("bare aiohttp receive+loads (frames/s)",
             f"{rate_aio:,.0f} / {rate_aio2:,.0f} (before / after)"),
            ("bare websockets receive+loads (frames/s)", f"{rate_ws:,.0f}"),
            ("websockets / aiohttp", f"{rate_ws / base:.2f}"),
            ("recorder: journal+normalize+Parquet (frames/s)", f"{rate_rec:,.0f}"),
            ("RATIO recorder / bare aiohttp (goal >= 0.70)", f"{rate_rec / base:.2f}"),
            ("lake rows written (all tables)", f"{rows_total}"),
            ("frames accounted for (journal / in the lake)", accounted),
            ("raw JSON bytes per frame", f"{len(raw) / n:,.0f}"),
            ("zstd-3 raw JSON bytes per frame", f"{zraw / n:,.1f}"),
            ("journal bytes per frame", f"{jbytes / n:,.1f}"),
            ("lake (Parquet) bytes per frame", f"{lake_bytes / n:,.1f}"),
            *replay_rows,
        ]
    w = max(len(k) for k, _ in rows)
    print(f"\n{'measure':<{w}}  value")
    print(f"{'-' * w}  {'-' * 30}")
    for k, v in rows:
        print(f"{k:<{w}}  {v}")


if __name__ == "__main__":
    main()
