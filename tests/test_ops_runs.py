"""Operating it: venue selection and per-venue locks with a handover window, the gap
between two runs of one config as a row, the overlap of two runs absorbed by the _dedup
views, and the Prometheus textfile checked against the run manifest. Real sockets (a
Mackinac simulator on loopback), real files."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from recorder import journal as jr
from recorder.build import rebuild
from recorder.config import Config, VenueConfig, select
from recorder.duck import connect
from recorder.errors import LockedError
from recorder.record import RunResult, record
from recorder.runs import read_manifest
from recorder.venues import CATALOGUE
from recorder.venues.mackinac import tables as T
from recorder.venues.mackinac.server import MackinacServer
from tests.venues.mackinac.e2e import config


def two_venues(data_dir: Path, url: str, **recorder: Any) -> Config:
    """Two sections of one config on one simulator: ``mackinac`` and ``mackinac_b``."""
    base = config(data_dir, url, ["hl:ETH", "uni:WETH/USDC"], history=False)
    b = VenueConfig("mackinac_b", "mackinac", url=url, transport=base.venues[0].transport,
                    options={"symbols": ["hl:ETH"], "history": False})
    rec = dataclasses.replace(base.recorder, metrics_interval=0.2, **recorder)
    return Config(base.path, rec, (base.venues[0], b))


def with_handover(cfg: Config, seconds: float) -> Config:
    return dataclasses.replace(cfg, recorder=dataclasses.replace(cfg.recorder,
                                                                 handover=seconds))


async def until(cond: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    """Wait for a condition (polled), failing after ``timeout`` seconds."""
    async def poll() -> None:
        while not cond():
            await asyncio.sleep(0.02)
    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what or cond}") from None


class Running:
    """One in-process recording run, stopped by :meth:`stop`."""

    def __init__(self, cfg: Config, duration: float = 120.0, **kw: Any) -> None:
        self.stop_event = asyncio.Event()
        self.runs: list[Any] = []
        self.task = asyncio.create_task(record(
            cfg, duration, out=io.StringIO(), live_status=False, install_signals=False,
            stop=self.stop_event, on_start=self.runs.extend, **kw))

    def frames(self) -> int:
        return sum(c.status.frames for r in self.runs for c in r.conns.values())

    async def recording(self, n: int = 5) -> None:
        """Wait until the run has received ``n`` frames."""
        await until(lambda: self.frames() >= n or self.task.done(), what="frames")
        if self.task.done():
            self.task.result()

    async def stop(self) -> RunResult:
        self.stop_event.set()
        return await self.task


def test_record_venue_locks_per_venue_and_lets_only_a_successor_overlap(
        data_dir: Path) -> None:
    """Runs of different venues of one config record side by side; a second run of the same
    venue is refused (exit 2) unless the first is in its last ``handover`` seconds; a third
    while two hold the venue is refused too."""
    async def main() -> dict[str, Any]:
        server = MackinacServer(seed=2, rate=3.0)
        await server.start()
        cfg = two_venues(data_dir, server.url)
        out: dict[str, Any] = {}
        a = Running(select(cfg, ["mackinac"]), duration=60.0)
        await a.recording()
        # another venue of the same config: records alongside
        b = Running(select(cfg, ["mackinac_b"]))
        await b.recording()
        out["b"] = await b.stop()
        # the same venue, 60 s before the first run's end, with a 10 s window: refused
        with pytest.raises(LockedError) as err:
            await record(with_handover(select(cfg, ["mackinac", "mackinac_b"]), 10.0), 5,
                         out=io.StringIO(), live_status=False, install_signals=False)
        out["refused"] = str(err.value)
        # with a window longer than what is left of the first run: the successor starts
        c = Running(with_handover(select(cfg, ["mackinac"]), 120.0))
        await c.recording()
        with pytest.raises(LockedError) as err:  # both slots taken: nobody else
            await record(with_handover(select(cfg, ["mackinac"]), 3600.0), 5,
                         out=io.StringIO(), live_status=False, install_signals=False)
        out["third"] = str(err.value)
        out["c"] = await c.stop()
        out["a"] = await a.stop()
        await server.stop()
        return out

    out = asyncio.run(main())
    a, b, c = out["a"], out["b"], out["c"]
    assert a.exit_code == b.exit_code == c.exit_code == 0, (a.reason, b.reason, c.reason)
    assert list(a.manifest["venues"]) == ["mackinac"] and list(b.manifest["venues"]) == [
        "mackinac_b"] and a.manifest["selected"] == ["mackinac"]
    assert "venue mackinac of config" in out["refused"] and a.run_id in out["refused"]
    assert "last 10s" in out["refused"] and "handover" in out["refused"]
    assert a.run_id in out["third"] and c.run_id in out["third"]
    # the successor knew it overlapped its predecessor: no run_gap for it
    assert c.manifest["venues"]["mackinac"]["previous"] == {
        "previous_run": a.run_id, "previous_alive": True, "previous_last_recv": None}
    con = connect(data_dir, views={"session_events"})
    assert con.sql(f"SELECT count(*) FROM session_events WHERE event = 'run_gap' AND "
                   f"run_id = '{c.run_id}'").fetchall() == [(0,)]


def test_the_time_between_two_runs_of_a_config_is_a_run_gap_row_that_rebuild_keeps(
        data_dir: Path) -> None:
    async def main() -> tuple[RunResult, RunResult, RunResult]:
        server = MackinacServer(seed=4, rate=3.0)
        await server.start()
        cfg = two_venues(data_dir, server.url)
        runs = []
        for _ in range(2):
            r = Running(select(cfg, ["mackinac"]))
            await r.recording(10)
            runs.append(await r.stop())
        # another config (another file) recording the same venue name is not "previous"
        other = dataclasses.replace(select(cfg, ["mackinac"]), path=Path("other.toml"))
        r = Running(other)
        await r.recording(10)
        runs.append(await r.stop())
        await server.stop()
        return runs[0], runs[1], runs[2]

    first, second, other = asyncio.run(main())
    assert first.exit_code == second.exit_code == other.exit_code == 0
    m1 = read_manifest(data_dir, first.run_id)
    assert m1 is not None
    last = m1["venues"]["mackinac"]["last_recv_ns"]
    first_in = next(r.ts_recv for r in jr.read_run(data_dir, "mackinac", second.run_id)
                    if r.kind == jr.KIND_IN)
    assert last == max(r.ts_recv for r in jr.read_run(data_dir, "mackinac", first.run_id)
                       if r.kind == jr.KIND_IN)
    sql = ("SELECT run_id, gap_start_ns, gap_end_ns, detail FROM session_events "
           "WHERE event = 'run_gap' ORDER BY run_id")
    rows = connect(data_dir, views={"session_events"}).sql(sql).fetchall()
    assert [r[:3] for r in rows] == [(second.run_id, last, first_in)]
    assert first.run_id in rows[0][3]
    assert second.manifest["venues"]["mackinac"]["previous"]["previous_run"] == first.run_id
    assert other.manifest["venues"]["mackinac"]["previous"] == {}
    # the journal is the source of truth: a rebuild of the day makes the same row
    day = jr.day(first_in)
    rebuild(data_dir, day, catalogue=CATALOGUE)
    assert connect(data_dir, views={"session_events"}).sql(sql).fetchall() == rows


def test_two_overlapping_runs_of_a_venue_are_absorbed_by_the_dedup_views(
        data_dir: Path) -> None:
    """The overlap a cron handover makes: both runs receive the same frames from one server
    for a while; in each Mackinac market-data table, the _dedup view holds each distinct
    row (all columns but the receipt ones) once."""
    async def main() -> tuple[RunResult, RunResult]:
        server = MackinacServer(seed=6, rate=4.0)
        await server.start()
        cfg = with_handover(select(two_venues(data_dir, server.url), ["mackinac"]), 3600.0)
        a = Running(cfg, duration=60.0)
        await a.recording(20)
        b = Running(cfg, duration=60.0)
        await b.recording(200)
        ra = await a.stop()
        rb = await b.stop()
        await server.stop()
        return ra, rb

    ra, rb = asyncio.run(main())
    assert ra.exit_code == rb.exit_code == 0
    lo = rb.manifest["venues"]["mackinac"]["first_recv_ns"]
    hi = ra.manifest["venues"]["mackinac"]["last_recv_ns"]
    tables = (T.QUOTE, T.PRINT, T.AMMBOOK, T.RATE_MARKET, T.LENDING_ACTION, T.DEPTH)
    con = connect(data_dir, views={f"{t.name}_dedup" for t in tables})
    receipt = {"ts_recv", "run_id", "conn_id", "recv_seq", "recv_sub"}
    checked = 0
    for t in tables:
        cols = ", ".join(f.name for f in t.arrow_schema if f.name not in receipt)
        win = f"epoch_ns(ts_recv) BETWEEN {lo} AND {hi}"
        both = con.sql(f"SELECT count(*) FROM (SELECT {cols} FROM {t.name} WHERE {win} AND "
                       f"run_id = '{ra.run_id}' INTERSECT SELECT {cols} FROM {t.name} WHERE "
                       f"{win} AND run_id = '{rb.run_id}')").fetchall()[0][0]
        distinct = con.sql(f"SELECT count(*) FROM (SELECT DISTINCT {cols} FROM {t.name} "
                           f"WHERE {win})").fetchall()[0][0]
        dedup = con.sql(f"SELECT count(*) FROM {t.name}_dedup WHERE {win}").fetchall()[0][0]
        if both:
            checked += 1
            assert dedup == distinct, f"{t.name}: {dedup} rows in _dedup, {distinct} distinct"
    assert checked >= 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text exposition, parsed by prometheus-client."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(smp: dict, name: str, **labels: str) -> float | None:
    want = set(labels.items())
    found = [v for (n, ls), v in smp.items() if n == name and want <= set(ls)]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else None


def test_metrics_textfile_during_and_at_the_end_of_a_run_agrees_with_the_manifest(
        data_dir: Path) -> None:
    port = _free_port()
    path = data_dir / "metrics" / "recorder.prom"
    during: dict[str, Any] = {}

    async def main() -> RunResult:
        server = MackinacServer(seed=9, rate=3.0)
        await server.start()
        cfg = two_venues(data_dir, server.url)
        cfg = dataclasses.replace(cfg, venues=cfg.venues[:1])
        run = Running(cfg, metrics_port=port)
        await run.recording(30)

        def live_file() -> bool:
            if not path.exists():
                return False
            smp = samples(path.read_text())
            return (value(smp, "recorder_run_running", venue="mackinac") == 1.0
                    and (value(smp, "recorder_frames_total", conn="feed") or 0) >= 30)

        await until(live_file, what="a live metrics file")
        during["file"] = samples(path.read_text())
        async with aiohttp.ClientSession() as http, http.get(
                f"http://127.0.0.1:{port}/metrics") as resp:
            during["http"] = samples(await resp.text())
        result = await run.stop()
        await server.stop()
        return result

    result = asyncio.run(main())
    assert result.exit_code == 0
    m = result.manifest
    for smp in (during["file"], during["http"]):
        assert value(smp, "recorder_run_running", venue="mackinac") == 1.0
        assert value(smp, "recorder_run_exit_code", venue="mackinac") is None
        assert value(smp, "recorder_run_info", run_id=result.run_id, status="running") == 1.0
    end = samples(path.read_text())
    v = m["venues"]["mackinac"]
    assert value(end, "recorder_run_info", run_id=result.run_id, status="complete") == 1.0
    assert value(end, "recorder_run_running", venue="mackinac") == 0.0
    assert value(end, "recorder_run_exit_code", venue="mackinac") == m["exit"]["code"] == 0
    assert value(end, "recorder_run_start_timestamp_seconds") == pytest.approx(
        m["started_ns"] / 1e9)
    assert value(end, "recorder_run_end_timestamp_seconds") == pytest.approx(
        m["ended_ns"] / 1e9)
    feed = v["connections"]["feed"]
    assert value(end, "recorder_frames_total", conn="feed") == feed["frames"] > 30
    assert value(end, "recorder_received_bytes_total", conn="feed") == feed["bytes"]
    assert value(end, "recorder_reconnects_total", conn="feed") == feed["reconnects"]
    assert value(end, "recorder_journal_records_total") == v["journal_records"]
    assert value(end, "recorder_rows_total", conn="feed") <= v["records"]
    assert value(end, "recorder_gaps_total") == v["gaps"]
    for ev, n in v["session_events"].items():
        assert value(end, "recorder_session_events_total", event=ev) == n
    assert value(end, "recorder_last_frame_timestamp_seconds", conn="feed") == pytest.approx(
        v["last_recv_ns"] / 1e9)
    # the lake builder's end state: nothing left to build, rows per table as the manifest
    assert value(end, "recorder_lake_build_complete") == 1.0
    assert value(end, "recorder_lake_builder_lag_records") == 0.0
    lake = {dict(ls)["table"]: val for (n, ls), val in end.items()
            if n == "recorder_lake_rows_total"}
    assert lake == m["tables"] and sum(lake.values()) > 30



def test_receipt_keyed_dedup_views_keep_each_venue_of_an_ab_pair(data_dir: Path) -> None:
    """Two sections of one adapter in one run (an A/B pair) subscribe alike, so their
    control frames have equal (run, conn, seq); the _dedup views of tables keyed by the
    receipt keep both venues' rows (the key is per venue)."""
    async def main() -> RunResult:
        server = MackinacServer(seed=12, rate=3.0)
        await server.start()
        cfg = two_venues(data_dir, server.url)
        a = dataclasses.replace(cfg.venues[0], options={"symbols": ["hl:ETH"],
                                                        "history": False})
        run = Running(dataclasses.replace(cfg, venues=(a, cfg.venues[1])))
        await until(lambda: sum(r.events.get("subscribed", 0) for r in run.runs) >= 2
                    or run.task.done(), what="both venues subscribed")
        result = await run.stop()
        await server.stop()
        return result

    result = asyncio.run(main())
    assert result.exit_code == 0
    con = connect(data_dir, views={"mackinac_subscribed_dedup"})
    rows = con.sql("SELECT venue, conn_id, recv_seq FROM mackinac_subscribed "
                   "ORDER BY venue").fetchall()
    assert [v for v, _, _ in rows] == ["mackinac", "mackinac_b"]
    assert rows[0][1:] == rows[1][1:]  # the same receipt in both venues
    assert con.sql("SELECT venue FROM mackinac_subscribed_dedup ORDER BY venue").fetchall() \
        == [("mackinac",), ("mackinac_b",)]


def test_a_predecessor_that_died_before_its_manifest_gives_its_last_frame_from_the_journal(
        data_dir: Path) -> None:
    """A run killed mid-way leaves its first manifest (status running, no per-venue
    summary): the next run finds the previous run's last frame in its journal."""
    import orjson

    from recorder.runs import config_id, manifest_path, previous_run

    async def main() -> RunResult:
        server = MackinacServer(seed=14, rate=3.0)
        await server.start()
        r = Running(select(two_venues(data_dir, server.url), ["mackinac"]))
        await r.recording(10)
        result = await r.stop()
        await server.stop()
        return result

    first = asyncio.run(main())
    m = first.manifest
    # what a kill -9 leaves: the manifest as written at the start, no run lock held
    crashed = {k: m[k] for k in ("run_id", "config", "config_id", "started_ns", "lake_builder")}
    crashed.update(status="running", venues={"mackinac": {"adapter": "mackinac"}})
    manifest_path(data_dir, first.run_id).write_bytes(orjson.dumps(crashed))
    last = max(r.ts_recv for r in jr.read_run(data_dir, "mackinac", first.run_id)
               if r.kind == jr.KIND_IN)
    cfg_id = config_id(Path("test.toml"))
    assert cfg_id == m["config_id"]
    got = previous_run(data_dir, cfg_id, "mackinac", "99990101T000000Z-x-000000",
                       m["started_ns"] + 1)
    assert got == {"previous_run": first.run_id, "previous_alive": False,
                   "previous_last_recv": last}
    # a run that started before it is not its successor; another venue has no predecessor
    assert previous_run(data_dir, cfg_id, "mackinac", "x", m["started_ns"]) == {}
    assert previous_run(data_dir, cfg_id, "mackinac_b", "x", m["started_ns"] + 1) == {}
