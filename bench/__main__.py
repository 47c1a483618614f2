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

    cfg = Config(Path("bench.toml"), RecorderSettings(data_dir=data_dir, status_interval=60.0),
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
    from recorder.schema import load_all

    union = " UNION ".join(f"SELECT conn_id, recv_seq FROM {t}" for t in load_all()
                           if t.startswith("mackinac_") or t == "unhandled")
    in_lake = {(c, s) for c, s in con.sql(union).fetchall()}
    missing = len(inbound - in_lake)
    return f"{len(inbound)} / {len(inbound & in_lake)}" + (f" ({missing} MISSING)" if missing
                                                            else " (all)")


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
        ]
    w = max(len(k) for k, _ in rows)
    print(f"\n{'measure':<{w}}  value")
    print(f"{'-' * w}  {'-' * 30}")
    for k, v in rows:
        print(f"{k:<{w}}  {v}")


if __name__ == "__main__":
    main()
