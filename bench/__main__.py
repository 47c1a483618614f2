"""``make bench``: throughput and memory of the recorder, measured side by side, as ratios.

One round (repeated ``BENCH_REPEAT`` times, default 1; each with its own simulator and data
directory) on one firehose stream from the Mackinac simulator in its own process
(``--firehose N``: N pre-generated frames at full speed after the first subscribe):
  - bare aiohttp: receive + ``orjson.loads`` (the baseline; timed before and after),
  - bare websockets: receive + ``orjson.loads`` (why the transport uses aiohttp),
  - the recorder, ``record()`` in-process with its lake builder process: data frames/s from
    the first data frame received until the journal's writer thread has written every record
    received up to the N-th data frame (journal-durable),
  - the lake builder: ``build_run_into`` over that run against ``orjson.loads`` of its frames,
  - frames accounted for: every inbound journal frame has a lake row,
  - CPU per frame of the bare client and of the recorder process (and of the builder process
    meanwhile), and the recorder's per-frame parts timed offline: on this shared 2-core
    machine wall-clock rates swing with other people's load, CPU per frame much less.
Then, once: the replay lines on the last round's lake, and a soak (``BENCH_SOAK_SECONDS``,
default 60, 0 skips it): ``recorder record`` as a subprocess on an endless firehose, its peak
RSS at 10 s and at the end. ``BENCH_UVLOOP=1`` runs the in-process clients and recorder on
uvloop (installed by hand; not a project dependency).

Speed belongs here, never in test assertions: these machines are noisy, so the load average
is printed at the start and the end, and the ratios' spread over rounds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import zstandard

from bench.common import Sim, loadavg, loop_name, run, spread
from bench.ratios import (
    BuildRatio,
    Recording,
    account,
    bare_aiohttp,
    bare_websockets,
    builder_ratio,
    hot_path_parts,
    recorder_run,
)


@dataclass
class Round:
    aio_before: float
    aio_after: float
    bare_cpu_us: float  # CPU per frame of the bare aiohttp client (mean of before and after)
    websockets: float
    rec: Recording
    build: BuildRatio
    accounted: str
    raw_bytes: float  # per frame
    zstd_bytes: float
    journal_bytes: float
    lake_bytes: float

    @property
    def bare(self) -> float:
        # The mean of before and after: the stream and the machine drift during a round.
        return (self.aio_before + self.aio_after) / 2

    @property
    def ratio(self) -> float:
        return self.rec.rate / self.bare


def one_round(n: int, tmp: Path, i: int) -> tuple[Round, Path]:
    data_dir = tmp / f"data-{i}"
    with Sim(n, tmp / f"sim-{i}.log") as sim:
        before = run(bare_aiohttp(sim.url, n))
        raw = b"\n".join(before.frames)
        before.frames.clear()  # ~70 MB we do not want resident while the recorder is measured
        zraw = len(zstandard.ZstdCompressor(level=3).compress(raw))
        raw_len = len(raw)
        del raw
        ws = run(bare_websockets(sim.url, n))
        rec = run(recorder_run(sim.url, n, data_dir))
        after = run(bare_aiohttp(sim.url, n))
        after.frames.clear()
    run_id = rec.manifest["run_id"]
    build = builder_ratio(data_dir, run_id, tmp / f"scratch-lake-{i}")
    shutil.rmtree(tmp / f"scratch-lake-{i}", ignore_errors=True)
    jbytes = sum(p.stat().st_size for p in (data_dir / "journal").rglob("*.zst"))
    lbytes = sum(p.stat().st_size for p in (data_dir / "lake").rglob("*.parquet"))
    journal_frames = build.frames
    return Round(before.rate, after.rate, (before.cpu_us + after.cpu_us) / 2, ws, rec, build,
                 account(data_dir, run_id),
                 raw_len / n, zraw / n, jbytes / journal_frames, lbytes / journal_frames), data_dir


def env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, "") or default)
    except ValueError:
        raise SystemExit(f"{name} must be an integer") from None


def main() -> None:
    ap = argparse.ArgumentParser(prog="make bench")
    ap.add_argument("-n", type=int, default=env_int("BENCH_FRAMES", 100_000),
                    help="firehose frames per round (BENCH_FRAMES)")
    ap.add_argument("--repeat", type=int, default=env_int("BENCH_REPEAT", 1),
                    help="rounds; the ratios are given as min/median/max (BENCH_REPEAT)")
    ap.add_argument("--soak", type=float, default=env_int("BENCH_SOAK_SECONDS", 60),
                    help="seconds of the RSS soak; 0 skips it (BENCH_SOAK_SECONDS)")
    args = ap.parse_args()
    n, repeat = args.n, max(1, args.repeat)
    load_start = loadavg()
    print(f"load average at start: {load_start}; event loop: {loop_name()}; "
          f"{n:,} frames x {repeat} round(s)", flush=True)
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as t:
        tmp = Path(t)
        last: Path | None = None
        for i in range(repeat):
            rnd, data_dir = one_round(n, tmp, i)
            rounds.append(rnd)
            if last is not None:
                shutil.rmtree(last, ignore_errors=True)  # only the last round's lake is kept
            last = data_dir
            print(f"  round {i + 1}/{repeat}: recording/bare {rnd.ratio:.2f}, "
                  f"lake builder/orjson {rnd.build.ratio:.2f}", file=sys.stderr, flush=True)
        assert last is not None
        from bench.replay import replay_rows

        hp = hot_path_parts(last, rounds[-1].rec.manifest["run_id"])
        replay = replay_rows(last)
        soak_rows: list[tuple[str, str]] = []
        if args.soak > 0:
            from bench.soak import soak

            soak_rows = soak(args.soak, tmp)
    load_end = loadavg()

    def med(xs: list[float]) -> float:
        return statistics.median(xs)

    rr = [r.ratio for r in rounds]
    br = [r.build.ratio for r in rounds]
    lr = rounds[-1]
    cr = [r.bare_cpu_us / r.rec.cpu_us for r in rounds]
    bc = [r.rec.builder_cpu_us for r in rounds if r.rec.builder_cpu_us is not None]
    receive = lr.bare_cpu_us - hp.loads
    rows: list[tuple[str, str]] = [
        ("frames per round", f"{n:,} ({repeat} round(s); the values below are medians)"),
        ("bare aiohttp receive+loads (frames/s)",
         f"{med([r.aio_before for r in rounds]):,.0f} / {med([r.aio_after for r in rounds]):,.0f}"
         " (before / after the recorder)"),
        ("bare websockets receive+loads (frames/s)", f"{med([r.websockets for r in rounds]):,.0f}"),
        ("websockets / aiohttp", spread([r.websockets / r.bare for r in rounds])),
        ("recorder, journal-durable (frames/s)", f"{med([r.rec.rate for r in rounds]):,.0f}"),
        ("  of which waiting for the journal flush (s)",
         f"{med([r.rec.flush_wait for r in rounds]):.3f} of "
         f"{med([r.rec.seconds for r in rounds]):.2f} (n-th frame seen -> durable; flush 200 ms)"),
        ("  stop -> record() returned with the lake (s)",
         f"{med([r.rec.stop_to_lake for r in rounds]):.1f} (lake status: "
         f"{', '.join(sorted({r.rec.lake for r in rounds}))}"
         + (f"; pending finished by build() in {max(r.rec.finish_build for r in rounds):.1f} s"
            if any(r.rec.lake == "pending" for r in rounds) else "") + ")"),
        ("bare/recorder CPU per frame (load-robust view)", spread(cr)),
        ("  lake builder process CPU per frame meanwhile (us)",
         f"{med(bc):.2f} (on the same {os.cpu_count()} cores)" if bc else "n/a"),
        ("per frame, us (CPU measured; parts offline, last round)", ""),
        ("  bare client: CPU per frame", f"{lr.bare_cpu_us:.2f}"),
        ("    orjson.loads", f"{hp.loads:.2f}"),
        ("    aiohttp receive (the rest)", f"{receive:.2f}"),
        ("  recorder: CPU per frame (event loop + journal thread)", f"{lr.rec.cpu_us:.2f}"),
        ("    aiohttp receive (as the bare client)", f"{receive:.2f}"),
        ("    adapter on_frame (via Normalizer.process)", f"{hp.adapter:.2f}"),
        ("    journal append (on the loop)", f"{hp.append:.2f}"),
        ("    journal zstd compress (writer thread)", f"{hp.compress:.2f}"),
        ("    the rest: glue, status, flush hand-off, loop, GC",
         f"{lr.rec.cpu_us - receive - hp.adapter - hp.append - hp.compress:.2f}"),
        ("lake builder: build_run_into (frames/s)", f"{med([r.build.build_rate for r in rounds]):,.0f}"
         f" over {lr.build.frames:,} journal frames"),
        ("  orjson.loads of the same frames (frames/s)",
         f"{med([r.build.loads_rate for r in rounds]):,.0f}"),
        ("lake rows written (all tables, last round)", f"{sum(lr.rec.manifest['tables'].values()):,}"),
        ("frames accounted for (journal / in the lake)",
         "; ".join(r.accounted for r in rounds)),
        ("raw JSON bytes per frame", f"{lr.raw_bytes:,.0f}"),
        ("zstd-3 raw JSON bytes per frame", f"{lr.zstd_bytes:,.1f}"),
        ("journal bytes per frame", f"{lr.journal_bytes:,.1f}"),
        ("lake (Parquet) bytes per frame", f"{lr.lake_bytes:,.1f}"),
        *replay,
        *soak_rows,
    ]
    # Replay memory against lake size (100k and 1M rows of synthetic lakes, both orders).
    if int(os.environ.get("BENCH_REPLAY_RSS", "1") or 0):
        from bench.replay_rss import run as replay_rss

        print("\nReplay peak RSS against lake size (bench/replay_rss.py):")
        replay_rss(lambda line: print(f"  {line}"))
    # Research speed (issue 13): 1-minute OHLCV over a synthetic day of prints through the
    # plain and _dedup views, before and after compaction; BENCH_OHLCV_ROWS=0 skips it.
    if int(os.environ.get("BENCH_OHLCV_ROWS", "10000000") or 0) > 0:
        from bench.ohlcv import run as ohlcv

        print("\nOHLCV over a synthetic day (bench/ohlcv.py):")
        ohlcv(lambda line: print(f"  {line}"))
    # The lake on object storage (issue 14): a real S3 server on loopback; BENCH_REMOTE=0
    # skips it.
    if int(os.environ.get("BENCH_REMOTE", "1") or 0):
        from bench.remote import run as remote

        print("\nThe lake on a bucket (bench/remote.py):")
        remote(lambda line: print(f"  {line}"))
    w = max(len(k) for k, _ in rows)
    print(f"\n{'measure':<{w}}  value")
    print(f"{'-' * w}  {'-' * 30}")
    for k, v in rows:
        print(f"{k:<{w}}  {v}")
    # The two figures, in the form it asks for: ratios of the same stream.
    print(f"\nrecording/bare ratio: {spread(rr)}  (goal >= 0.8)")
    print(f"lake builder/orjson ratio: {spread(br)}  (build_run_into frames/s over "
          f"orjson.loads frames/s of the same journal frames; goal >= 0.5)")
    print(f"load average at start: {load_start}")
    print(f"load average at end:   {load_end}")


if __name__ == "__main__":
    main()
