"""Peak memory of :func:`recorder.replay.records` over synthetic lakes of 100k and 1M rows.

Run as ``python -m bench.replay_rss``; :func:`run` is what ``make bench`` can call.

The lakes look like real ones: four writers (two venues, each recorded by two runs, an A/B
pair) write ``mackinac_print`` and ``session_events`` over the same span of time, so their
files overlap in time; each file is one writer's rows of one table and day, one row group
per flush (5,000 rows), rotating at 200,000 rows (``lake_max_rows``); the span crosses
midnight, so there are two ``date=`` folders. Both venues name their connection ``ws``.

Each replay runs in a fresh subprocess that reads the whole range and reports its own high
water mark (``VmHWM``), so the figure is the replay's peak and nothing the parent built.
Not ``getrusage(RUSAGE_SELF).ru_maxrss``: on Linux a process keeps the largest resident set
of its process image before ``exec``, which for a child started by ``subprocess`` is the
parent's (the bench process, hundreds of MiB after a recording round). Memory is measured
here, never asserted in tests.
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
SIZES = (("100k", 100_000), ("1M", 1_000_000))
ROW_GROUP = 5_000  # rows per flush
FILE_ROWS = 200_000  # lake_max_rows
WRITERS = (("20260301T235950Z-a-0001", "mackinac"), ("20260301T235950Z-b-0002", "mackinac"),
           ("20260301T235950Z-a-0001", "mackinac_b"), ("20260301T235950Z-b-0002", "mackinac_b"))
T0 = 1_772_409_590_000_000_000  # 2026-03-01T23:59:50Z: the span crosses midnight
STEP_NS = 1_000_000  # 1 ms between a writer's rows (1,000 rows/s per writer)
SESSION_EVERY = 500  # one session_events row per this many prints

# The child replays everything in the given order, up to an optional end (ns, exclusive), or
# with "floor" only imports replay and loads the catalogue, as records() does before
# its first row; it prints (records, VmHWM in KiB). VmHWM is this process image's own peak
# RSS; ru_maxrss, only the fallback where there is no /proc, also counts the parent's peak
# (Linux carries it over fork and exec).
_CHILD = """
import resource, sys
from recorder.replay import records
from recorder.venues import CATALOGUE  # noqa: F401 - the catalogue's cost counts
n = 0
if sys.argv[2] != "floor":
    end = int(sys.argv[3]) if len(sys.argv) > 3 else None
    n = sum(1 for _ in records(sys.argv[1], end=end, order=sys.argv[2], batch_rows=4096))
hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
except OSError:
    pass
print(n, hwm)
"""


def _day(ns: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ns // 1_000_000_000))


def _print_rows(run: str, venue: str, ts: list[int], seqs: list[int],
                rnd: random.Random) -> dict[str, Any]:
    n = len(ts)
    onchain = [rnd.random() < 0.3 for _ in range(n)]
    # Venue time is up to 50 ms behind receipt, so event order differs from recv order.
    time_ms = [t // 1_000_000 - rnd.randrange(50) for t in ts]
    return {
        "ts_recv": ts, "ts_event": [m * 1_000_000 for m in time_ms],
        "venue": [venue] * n, "run_id": [run] * n, "conn_id": ["ws"] * n,
        "recv_seq": seqs, "recv_sub": [0] * n,
        "exchange": [rnd.choice(("hl", "dydx", "uni")) for _ in range(n)],
        "symbol": [rnd.choice(("ETH", "BTC", "WETH/USDC")) for _ in range(n)],
        "price": [2000 + rnd.random() * 100 for _ in range(n)],
        "size": [rnd.random() * 5 for _ in range(n)],
        "side": [rnd.randrange(3) for _ in range(n)],
        "time_ms": time_ms,
        "block_number": [rnd.randrange(10**7) if c else None for c in onchain],
        "tx_index": [rnd.randrange(300) if c else None for c in onchain],
        "d_tickrate": [rnd.random() for _ in range(n)],
        "d_hawkes": [rnd.random() for _ in range(n)],
        "source": ["live"] * n,
    }


def _session_rows(run: str, venue: str, ts: list[int], seqs: list[int]) -> dict[str, Any]:
    n = len(ts)
    return {"ts_recv": ts, "ts_event": [None] * n, "venue": [venue] * n, "run_id": [run] * n,
            "conn_id": ["ws"] * n, "recv_seq": seqs, "recv_sub": [0] * n,
            "event": ["feed_live"] * n, "reason": ["synthetic"] * n}


def _arrow(schema: pa.Schema, cols: dict[str, Any]) -> pa.Table:
    n = len(cols["ts_recv"])
    arrays = []
    for f in schema:
        if f.name not in cols:
            arrays.append(pa.nulls(n, f.type))
        elif pa.types.is_timestamp(f.type):
            arrays.append(pa.array(cols[f.name], pa.int64()).cast(f.type))
        else:
            arrays.append(pa.array(cols[f.name], f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _write(lake: Path, schema: pa.Schema, table: str, run: str, venue: str,
           t: pa.Table, ts: list[int]) -> int:
    """One writer's rows of one table: a file per day and per FILE_ROWS, a row group per
    ROW_GROUP rows, as the lake writer does. Returns the files written."""
    files = 0
    start = 0
    while start < len(ts):
        day = _day(ts[start])
        stop = start
        while stop < len(ts) and stop - start < FILE_ROWS and _day(ts[stop]) == day:
            stop += 1
        folder = lake / table / f"date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        files += 1
        path = folder / f"{run}-{venue}-{files:05d}.parquet"
        with pq.ParquetWriter(path, schema, compression="zstd", compression_level=3) as w:
            for a in range(start, stop, ROW_GROUP):
                w.write_table(t.slice(a, min(ROW_GROUP, stop - a)))
        start = stop
    return files


def build_lake(data_dir: Path, rows: int, seed: int = 7) -> int:
    """A synthetic lake of about ``rows`` rows under ``data_dir/lake``; returns the rows."""
    from recorder.venues import CATALOGUE

    reg = CATALOGUE.tables
    prints, sessions = reg["mackinac_print"].arrow_schema, reg["session_events"].arrow_schema
    lake = data_dir / "lake"
    rnd = random.Random(seed)
    total = 0
    per_writer = rows // len(WRITERS)
    for i, (run, venue) in enumerate(WRITERS):
        # Writers start a few µs apart and tick at the same rate: their files overlap in
        # time all along, as A/B recorders' do.
        base = T0 + i * 7_000
        ts = [base + k * STEP_NS + rnd.randrange(1000) for k in range(per_writer)]
        seqs = list(range(1, per_writer + 1))
        is_session = [k % SESSION_EVERY == SESSION_EVERY - 1 for k in range(per_writer)]
        p_ts = [t for t, s in zip(ts, is_session, strict=True) if not s]
        p_seq = [q for q, s in zip(seqs, is_session, strict=True) if not s]
        s_ts = [t for t, s in zip(ts, is_session, strict=True) if s]
        s_seq = [q for q, s in zip(seqs, is_session, strict=True) if s]
        _write(lake, prints, "mackinac_print", run, venue,
               _arrow(prints, _print_rows(run, venue, p_ts, p_seq, rnd)), p_ts)
        _write(lake, sessions, "session_events", run, venue,
               _arrow(sessions, _session_rows(run, venue, s_ts, s_seq)), s_ts)
        total += per_writer
    return total


def peak_rss(data_dir: Path | None, order: str = "recv",
           end: int | None = None) -> tuple[int, int]:
    """(records, peak RSS in MiB) of a fresh process replaying ``data_dir`` in ``order``, up
    to ``end`` if given (None: no replay, the floor every replay starts from)."""
    args = [str(data_dir), order] if data_dir is not None else ["-", "floor"]
    if data_dir is not None and end is not None:
        args.append(str(end))
    r = subprocess.run([sys.executable, "-c", _CHILD, *args], cwd=ROOT, capture_output=True,
                       text=True, check=True, timeout=600)
    n, kib = r.stdout.split()
    return int(n), int(kib) // 1024


def run(print_fn: Callable[[str], Any] = print) -> dict[str, Any]:
    """Build each lake, replay it whole in a subprocess per order, print and return the
    peaks (MiB) and times (s)."""
    out: dict[str, Any] = {}
    _, floor = peak_rss(None)
    print_fn(f"replay peak RSS imports and registry only: {floor} MiB")
    out["floor_mib"] = floor
    for label, rows in SIZES:
        with tempfile.TemporaryDirectory(prefix="replay-rss-") as tmp:
            data_dir = Path(tmp) / "data"
            t = time.perf_counter()
            built = build_lake(data_dir, rows)
            res: dict[str, Any] = {"rows": built, "build_s": round(time.perf_counter() - t, 2)}
            for order in ("recv", "event"):
                t = time.perf_counter()
                n, mib = peak_rss(data_dir, order)
                took = time.perf_counter() - t
                if n != built:
                    raise RuntimeError(f"replayed {n} records of {built} ({order} order)")
                name = "" if order == "recv" else " (event order)"
                print_fn(f"replay peak RSS {label} rows{name}: {mib} MiB "
                         f"({took:.1f} s, {n / took:,.0f} rec/s)")
                res[f"{order}_peak_mib"] = mib
                res[f"{order}_s"] = round(took, 2)
        out[label] = res
    return out


if __name__ == "__main__":
    run()
