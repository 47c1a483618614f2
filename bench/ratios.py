"""The two throughput ratios, measured on one firehose stream.

- recording/bare: how fast the real recorder (``record()`` in-process: transport, journal
  append, the adapter's ``on_frame`` for actions, the journal's writer thread, with the lake
  builder process following the journal beside it) makes frames durable, against a bare
  aiohttp client that only receives and ``orjson.loads`` each frame.
- lake builder/orjson: ``build_run_into`` over the recorded run (read and decompress the
  journal, adapters, Arrow, zstd Parquet) against ``orjson.loads`` of the same frames.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import websockets

from bench.common import CONTROL, SUB, is_data
from recorder.venues import CATALOGUE


def proc_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) of process ``pid`` so far; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    # After the command name: state is field 3, utime and stime fields 14 and 15 (proc(5)).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Bare:
    rate: float  # data frames/s, first data frame to the n-th
    cpu_us: float  # CPU microseconds per frame this process spent meanwhile
    frames: list[bytes]


async def bare_aiohttp(url: str, n: int) -> Bare:
    """Receive + ``orjson.loads``: data frames/s from the first data frame to the n-th, the
    CPU per frame (which, unlike the rate, hardly depends on what else the machine runs), and
    the frames (for bytes per frame)."""
    frames: list[bytes] = []
    async with aiohttp.ClientSession() as s, s.ws_connect(
            url, compress=0, max_msg_size=64 << 20, decode_text=False) as ws:
        await ws.send_str(SUB)
        t0 = c0 = 0.0
        while len(frames) < n:
            msg = await ws.receive()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"stream ended after {len(frames)} frames: {msg}")
            obj = orjson.loads(msg.data)
            if obj.get("type") in CONTROL:
                continue
            if not frames:
                t0, c0 = time.perf_counter(), time.process_time()
            frames.append(msg.data)
        cpu = time.process_time() - c0
        return Bare(n / (time.perf_counter() - t0), cpu / (n - 1) * 1e6, frames)


async def bare_websockets(url: str, n: int) -> float:
    """The same with the websockets client (why the transport uses aiohttp)."""
    async with websockets.connect(url, compression=None, max_size=64 << 20) as ws:
        await ws.send(SUB)
        got = 0
        t0 = 0.0
        while got < n:
            obj = orjson.loads(await ws.recv(decode=False))
            if obj.get("type") in CONTROL:
                continue
            if not got:
                t0 = time.perf_counter()
            got += 1
        return n / (time.perf_counter() - t0)


@dataclass
class Recording:
    """One in-process recording of ``n`` firehose frames."""

    rate: float  # data frames/s, first data frame received -> all of them durable
    frames: int  # data frames that were received (and so made durable) by the stop
    seconds: float  # first data frame received -> the journal writer had written them all
    flush_wait: float  # of which: n-th frame seen -> durable (the journal flush interval)
    stop_to_lake: float  # stop -> record() returned (connections closed, lake built)
    lake: str  # manifest["lake"]["status"] when record() returned
    finish_build: float  # seconds `recorder.build.build` took when the lake was pending
    manifest: dict[str, Any]
    cpu_us: float  # CPU microseconds per frame of this process (event loop + journal thread)
    builder_cpu_us: float | None  # ... of the lake builder process, over the same window


async def recorder_run(url: str, n: int, data_dir: Path) -> Recording:
    """``record()`` in-process against the firehose; stop as soon as the journal's writer
    thread has written every record received up to the n-th data frame."""
    from recorder.collect import VenueRun
    from recorder.config import Config, RecorderSettings, TransportSettings, VenueConfig
    from recorder.record import record
    from recorder.runs import read_manifest

    # The recorder's defaults (journal flush 200 ms, lake builder settings) but a quiet status:
    # what is timed is the recorder a user runs.
    cfg = Config(Path("bench.toml"), RecorderSettings(data_dir=data_dir, status_interval=3600.0),
                 (VenueConfig("mackinac", "mackinac", url=url,
                              transport=TransportSettings(max_frame_bytes=64 << 20),
                              options={"symbols": ["hl:ETH"], "history": False}),))
    stop = asyncio.Event()
    started: list[list[VenueRun]] = []
    mark: dict[str, int] = {}
    cpu: dict[str, float] = {}

    async def watch() -> None:
        # Poll every 2 ms: cheap beside ~40k frames/s, and fine enough for a run of seconds.
        while not started or not started[0][0].conns:
            await asyncio.sleep(0.002)
        vr = started[0][0]
        st = next(iter(vr.conns.values())).status
        bpid = int((read_manifest(data_dir, vr.run_id) or {}).get("builder_pid") or 0)
        while st.frames < 2:  # the subscribe ack, then data
            await asyncio.sleep(0.002)
        # CPU from about the first data frame (the poll's few frames are taken out below).
        f0, c0, b0 = st.frames, time.process_time(), proc_cpu(bpid) if bpid else None
        while st.frames < n + 1:  # n data frames plus the subscribe ack
            await asyncio.sleep(0.002)
        seen_ns = time.time_ns()
        # Every record received so far (frames, acks, meta, our subscribe) must be written.
        target, frames = vr.journal.records, st.frames
        while vr.journal.durable_records < target:
            if vr.journal.failure is not None:
                raise vr.journal.failure
            await asyncio.sleep(0.002)
        mark.update(durable=time.time_ns(), seen=seen_ns, frames=frames)
        cpu.update(rec=(time.process_time() - c0) / (frames - f0) * 1e6)
        b1 = proc_cpu(bpid) if bpid else None
        if b0 is not None and b1 is not None:
            cpu["builder"] = (b1 - b0) / (frames - f0) * 1e6
        stop.set()

    watcher = asyncio.create_task(watch())
    # The duration only bounds a broken run (a stream that ends before n frames).
    with open(os.devnull, "w") as devnull:
        res = await record(cfg, 300, out=devnull, live_status=False, install_signals=False,
                           stop=stop, on_start=lambda runs: started.append(runs))
    returned = time.time_ns()
    if not watcher.done():
        watcher.cancel()
        raise RuntimeError(f"the recorder stopped before {n} frames were durable: "
                           f"{res.reason or res.manifest.get('errors')}")
    watcher.result()
    first_ns, data_frames = _first_data(data_dir, res.run_id, mark["frames"])
    lake = res.manifest.get("lake", {}).get("status", "missing")
    finish = 0.0
    if lake == "pending":
        # The builder went on alone past lake_build_deadline. It holds the run's build lock
        # (build() would skip the run as busy), so wait for it to exit, then let build()
        # finish whatever it left; the time is reported, not hidden.
        from recorder.build import build

        t = time.perf_counter()
        bpid = int(res.manifest.get("builder_pid") or 0)
        while bpid and proc_cpu(bpid) is not None and not _zombie(bpid):
            await asyncio.sleep(0.1)
        build(data_dir, catalogue=CATALOGUE)
        finish = time.perf_counter() - t
    seconds = (mark["durable"] - first_ns) / 1e9
    return Recording(data_frames / seconds, data_frames, seconds,
                     (mark["durable"] - mark["seen"]) / 1e9,
                     (returned - mark["durable"]) / 1e9, lake, finish, res.manifest,
                     cpu["rec"], cpu.get("builder"))


def _zombie(pid: int) -> bool:
    """Exited but not reaped yet (asyncio's child watcher reaps the builder soon after)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return True


def _first_data(data_dir: Path, run_id: str, frames: int) -> tuple[int, int]:
    """From the journal: the receive time of the first data frame, and how many of the first
    ``frames`` inbound frames were data (not the ack). Exact, unlike a poll."""
    from recorder import journal as jr

    first, data, seen = 0, 0, 0
    for r in jr.read_run(data_dir, "mackinac", run_id):
        if r.kind != jr.KIND_IN:
            continue
        seen += 1
        if seen > frames:
            break
        if is_data(r.data):
            data += 1
            first = first or r.ts_recv
    return first, data


@dataclass
class BuildRatio:
    frames: int  # inbound journal records of the run
    build_rate: float  # frames/s of build_run_into over the whole run
    loads_rate: float  # frames/s of orjson.loads over the same frames' bytes

    @property
    def ratio(self) -> float:
        return self.build_rate / self.loads_rate


def builder_ratio(data_dir: Path, run_id: str, scratch: Path) -> BuildRatio:
    """Time ``build_run_into`` on the ended run into a scratch lake, then ``orjson.loads``
    over the same frames (both single-threaded Python over the same bytes)."""
    from recorder import journal as jr
    from recorder.build import build_run_into

    frames = [r.data for r in jr.read_run(data_dir, "mackinac", run_id) if r.kind == jr.KIND_IN]
    t = time.perf_counter()
    build_run_into(data_dir, "mackinac", run_id, scratch, catalogue=CATALOGUE)
    build_s = time.perf_counter() - t
    loads = orjson.loads
    t = time.perf_counter()
    for f in frames:
        loads(f)
    loads_s = time.perf_counter() - t
    return BuildRatio(len(frames), len(frames) / build_s, len(frames) / loads_s)


def account(data_dir: Path, run_id: str) -> str:
    """Every inbound frame must be in the journal, and have at least one lake row (an
    `unhandled` one included) carrying its (conn_id, recv_seq)."""
    from recorder import journal as jr
    from recorder.duck import connect

    inbound = {(r.conn, r.seq) for r in jr.read_run(data_dir, "mackinac", run_id)
               if r.kind == jr.KIND_IN}
    con = connect(data_dir)
    union = " UNION ".join(f"SELECT conn_id, recv_seq FROM {t}" for t in CATALOGUE.tables
                           if t.startswith("mackinac_") or t == "unhandled")
    in_lake = {(c, s) for c, s in con.sql(union).fetchall()}
    con.close()
    missing = len(inbound - in_lake)
    return f"{len(inbound)} / {len(inbound & in_lake)}" + (f" ({missing} MISSING)" if missing
                                                            else " (all)")


@dataclass
class HotPath:
    """CPU microseconds per frame of each part, timed offline on one thread over the run's
    inbound frames (so not disturbed by the simulator or the builder)."""

    loads: float  # orjson.loads: the bare client's parse
    adapter: float  # Normalizer.process -> the adapter's on_frame (rows dropped by the collector)
    append: float  # JournalWriter.append on the loop
    compress: float  # the journal's zstd compression, done by its writer thread per flush


def hot_path_parts(data_dir: Path, run_id: str) -> HotPath:
    """What the collector does per frame besides receiving it, part by part."""
    import gc
    import tempfile

    from recorder import journal as jr
    from recorder.normalize import Normalizer
    from recorder.venues.mackinac.adapter import make_adapter

    frames = [r.data for r in jr.read_run(data_dir, "mackinac", run_id) if r.kind == jr.KIND_IN]
    n = len(frames)
    # CPU time of this thread, not wall time: other people's processes on this machine would
    # otherwise be counted as ours whenever the scheduler runs them instead.
    clock = time.thread_time
    loads = orjson.loads
    # Results are dropped at once, as on the hot path: keeping them would time the GC.
    gc.collect()
    t = clock()
    for f in frames:
        loads(f)
    loads_us = (clock() - t) / n * 1e6
    norm = Normalizer(make_adapter("mackinac", "ws://bench", {"symbols": ["hl:ETH"],
                                                              "history": False}))
    process = norm.process
    gc.collect()
    t = clock()
    for f in frames:
        process(jr.KIND_IN, "feed", 0, f)
    adapter_us = (clock() - t) / n * 1e6
    with tempfile.TemporaryDirectory() as tmp:
        j = jr.JournalWriter(Path(tmp), "mackinac", "bench")
        append, ts = j.append, time.time_ns()
        gc.collect()
        t = clock()
        for f in frames:
            append(jr.KIND_IN, "feed", ts, f)
        append_us = (clock() - t) / n * 1e6
        raw = j.take_batch(ts)[0]
        t = clock()
        # The journal's own compressor: what its writer thread does per flush, off the loop.
        j._cctx.compress(raw)
        compress_us = (clock() - t) / n * 1e6
    return HotPath(loads_us, adapter_us, append_us, compress_us)
