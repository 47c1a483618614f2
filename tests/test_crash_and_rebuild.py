"""kill -9 during recording, recovery at restart, rebuild from the journal, views, query CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq

from recorder import journal as jr
from recorder.build import rebuild
from recorder.duck import VIEWS_FILE, connect, render_views
from recorder.lake import lake_files, read_lineage
from recorder.normalize import Normalizer
from recorder.venues import CATALOGUE
from recorder.venues.mackinac.adapter import make_adapter
from tests.conftest import RECORDER, ROOT, cli, sim_process, wait_dead


def _sim() -> tuple[subprocess.Popen, int]:
    return sim_process("mackinac", "--rate", "4", "--api-key", "mk_live_crash")


def _conf(tmp_path: Path, port: int) -> Path:
    p = tmp_path / "crash.toml"
    p.write_text(f"""
[recorder]
data_dir = "{tmp_path / 'data'}"
journal_flush_ms = 50
lake_flush_seconds = "300ms"
lake_rotate_seconds = "1s"
[venues.mackinac]
url = "ws://127.0.0.1:{port}/feed"
api_key_env = "MACKINAC_API_KEY"
symbols = ["hl:ETH", "hl:BTC", "uni:WETH/USDC", "rates:all", "lending:actions"]
[venues.mackinac.transport]
backoff_initial = "200ms"
""")
    return p


def _wait_for(cond: Callable[[], bool], proc: subprocess.Popen, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not cond():
        assert proc.poll() is None, "the recorder ended early"
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def _expected_rows(data_dir: Path, run: str) -> Counter:
    """Normalize the journal (up to its torn tail) afresh: the rows the lake must hold."""
    norm = Normalizer(make_adapter("mackinac", None, {}, offline=True))
    want: Counter = Counter()
    for rec in jr.read_run(data_dir, "mackinac", run):
        rows, _ = norm.process(rec.kind, rec.conn, rec.ts_recv, rec.data)
        for table, _row in rows:
            want[(table.name, rec.conn, rec.seq)] += 1
    return want


def _lake_rows(data_dir: Path, run: str) -> Counter:
    got: Counter = Counter()
    for f in lake_files(data_dir, run=run):
        t = pq.read_table(f, columns=["conn_id", "recv_seq"])
        name = f.parent.parent.name
        for c, s in zip(t["conn_id"].to_pylist(), t["recv_seq"].to_pylist(), strict=True):
            got[(name, c, s)] += 1
    return got


def test_kill_9_then_restart_commits_every_journaled_frame_exactly_once(tmp_path: Path) -> None:
    sim, port = _sim()
    env = {**os.environ, "MACKINAC_API_KEY": "mk_live_crash"}
    data_dir = tmp_path / "data"
    try:
        conf = _conf(tmp_path, port)
        rec = subprocess.Popen([*RECORDER, "record", "--config", str(conf), "--quiet"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        runs = data_dir / "runs"
        # several committed files, one open file, an unflushed journal tail
        _wait_for(lambda: len(lake_files(data_dir)) >= 6 and any(
            (data_dir / "lake").rglob(".*.tmp")), rec)
        [manifest] = list(runs.glob("*.json"))
        # Power loss: the recorder and its lake builder die at once (the builder alone would
        # otherwise notice the dead run and finish it by itself).
        builder = json.loads(manifest.read_text())["builder_pid"]
        os.kill(builder, signal.SIGKILL)
        rec.send_signal(signal.SIGKILL)
        rec.wait(10)
        # power loss: all of it dead before the restart (a builder still dying holds its claim)
        wait_dead(builder)
        dead = manifest.stem
        assert json.loads(manifest.read_text())["status"] == "running"
        assert list((data_dir / "lake").rglob(".*.tmp")), "expected an uncommitted file"
        committed_before = len(lake_files(data_dir, run=dead))
        assert committed_before > 0
        want = _expected_rows(data_dir, dead)
        assert sum(want.values()) > 100
        # restart: recovery runs first, then a short recording
        r = subprocess.run([*RECORDER, "record", "--config", str(conf), "--duration", "1s",
                            "--quiet"], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr
        assert f"recovered mackinac run {dead}" in r.stderr
    finally:
        sim.kill()
        sim.wait(10)
    got = _lake_rows(data_dir, dead)
    assert got == want  # every journaled frame's rows, each exactly once
    assert list((data_dir / "lake").rglob("*.tmp")) == []
    for f in (data_dir / "lake").rglob("*"):
        if f.is_file():
            pq.read_metadata(f)  # no unreadable file anywhere under the lake root
    m = json.loads(manifest.read_text())
    assert m["status"] == "crashed" and m["finished_by_builder"]["mackinac"]["rows_added"] > 0
    # a second recovery pass finds nothing left to do
    r = cli(["recover", "--data-dir", str(data_dir)])
    assert "recovered 0 venue run(s)" in r.stdout
    assert _lake_rows(data_dir, dead) == want
    # journal cat reads the same journal for a person
    r = cli(["journal", "cat", "--data-dir", str(data_dir), "--run", dead,
             "--kind", "out", "--width", "0"])
    assert r.returncode == 0, r.stderr
    assert '"action":"auth","key":"***"' in r.stdout and "mk_live_crash" not in r.stdout
    assert '"action":"subscribe","exchange":"hl","symbol":"ETH"' in r.stdout


def test_rebuild_renormalizes_a_day_and_swaps_it_in(tmp_path: Path) -> None:
    sim, port = _sim()
    env = {**os.environ, "MACKINAC_API_KEY": "mk_live_crash"}
    data_dir = tmp_path / "data"
    try:
        r = subprocess.run([*RECORDER, "record", "--config", str(_conf(tmp_path, port)),
                            "--duration", "3s", "--quiet"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    finally:
        sim.kill()
        sim.wait(10)
    con = connect(data_dir, views={"mackinac_print", "mackinac_quote"})
    before = con.sql("SELECT count(*), list(price ORDER BY recv_seq, price) FROM mackinac_print").fetchall()[0]
    tables_before = dict(con.sql("SELECT 'q', count(*) FROM mackinac_quote").fetchall())
    day = next((data_dir / "lake" / "mackinac_quote").glob("date=*")).name.removeprefix("date=")
    # a lost file (or a mapper fix) is what rebuild is for
    victim = lake_files(data_dir, "mackinac_print")[0]
    victim.unlink()
    counts = rebuild(data_dir, day, catalogue=CATALOGUE)
    con = connect(data_dir, views={"mackinac_print", "mackinac_quote"})
    assert con.sql("SELECT count(*), list(price ORDER BY recv_seq, price) FROM mackinac_print").fetchall()[0] == before
    assert dict(con.sql("SELECT 'q', count(*) FROM mackinac_quote").fetchall()) == tables_before
    assert counts["mackinac_print"] == before[0]
    assert all(read_lineage(f)["normalizer_version"] >= 1 for f in lake_files(data_dir))
    assert not list((data_dir / "lake").glob(".rebuild-*"))


def test_views_file_matches_the_registry() -> None:
    assert VIEWS_FILE.read_text() == render_views(), "run `make views` (recorder views --write)"


def test_query_cli_formats(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "lake").mkdir(parents=True)
    # in-process: the output and the exit code are the point, not a process of its own
    r = cli(["query", "--data-dir", str(data_dir), "--format", "csv",
             "SELECT count(*) AS n FROM mackinac_quote"])
    assert r.returncode == 0 and r.stdout.splitlines() == ["n", "0"], r.stdout + r.stderr
    r = cli(["query", "--data-dir", str(data_dir), "SELECT nonsense"])
    assert r.returncode == 2 and "query failed" in r.stderr, r.stdout + r.stderr


def test_a_kill_9_loop_ends_with_verify_clean(tmp_path: Path) -> None:
    """Kills at random moments, one of each kind (the recorder alone, leaving its builder to
    finish the run while the next recorder starts; SIGTERM; the recorder and its builder as
    in a power loss, which the next run's start recovers), then one clean run: `verify`
    finds every journaled frame's rows in the lake exactly once and every manifest final."""
    import random

    rnd = random.Random(os.getpid())
    sim, port = _sim()
    env = {**os.environ, "MACKINAC_API_KEY": "mk_live_crash"}
    data_dir = tmp_path / "data"
    conf = _conf(tmp_path, port)
    try:
        for mode in ("recorder", "term", "power"):
            rec = subprocess.Popen([*RECORDER, "record", "--config", str(conf), "--quiet"],
                                   cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
            started = set((data_dir / "runs").glob("*.json")) if (data_dir / "runs").exists() \
                else set()

            def manifest(started: set = started) -> Path | None:
                new = set((data_dir / "runs").glob("*.json")) - started
                return next(iter(new), None)

            _wait_for(lambda m=manifest: m() is not None and "builder_pid" in m().read_text(),
                      rec)
            time.sleep(rnd.uniform(0.2, 2.5))  # a random moment, not a wait for a result
            m = json.loads(manifest().read_text())
            if mode == "term":
                rec.send_signal(signal.SIGTERM)
                assert rec.wait(60) == 0
                continue
            if mode == "power":
                os.kill(m["builder_pid"], signal.SIGKILL)
            rec.send_signal(signal.SIGKILL)
            rec.wait(10)
        r = subprocess.run([*RECORDER, "record", "--config", str(conf), "--duration", "1s",
                            "--quiet"], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr
    finally:
        sim.kill()
        sim.wait(10)
    # a builder left alone after a `recorder`-only kill may still be finishing its run
    r = cli(["build", "--data-dir", str(data_dir)])
    assert r.returncode == 0, r.stderr
    _wait_for_builders(data_dir)
    r = cli(["verify", "--data-dir", str(data_dir)])
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().splitlines()[-1] == "verify: ok"
    statuses = [json.loads(p.read_text())["status"] for p in (data_dir / "runs").glob("*.json")]
    assert len(statuses) == 4 and set(statuses) <= {"complete", "crashed"}, statuses


def _wait_for_builders(data_dir: Path, limit: float = 120.0) -> None:
    """Until no lake builder holds a run (an orphan builder finishes by itself)."""
    from recorder.runs import lock_held as _held

    deadline = time.monotonic() + limit
    while any(_held(p) for p in (data_dir / "locks").glob("build-*.lock")):
        assert time.monotonic() < deadline, "a lake builder never finished"
        time.sleep(0.1)
