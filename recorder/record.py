"""``recorder record``: one bounded, cron-friendly recording run.

Order matters: validate config, secrets and adapters before touching the disk (a bad config
writes nothing); take the per-config lock; recover dead runs; start simulators if asked; record
until the deadline or SIGTERM/SIGINT; flush; write the run manifest; exit 0 only if something
was recorded.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import hashlib
import os
import re
import secrets
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import aiohttp
import orjson

from recorder.config import Config
from recorder.errors import LockedError, RecorderError, StorageError, Unreachable
from recorder.lake import atomic_write_bytes
from recorder.recovery import manifest_path, recover
from recorder.runner import VenueRun
from recorder.status import StatusPrinter
from recorder.venues import get as get_venue


def new_run_id() -> str:
    host = re.sub(r"[^a-z0-9]", "", socket.gethostname().lower())[:16] or "host"
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{host}-{secrets.token_hex(3)}"


def _iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).isoformat(timespec="microseconds")


@dataclass
class RunResult:
    run_id: str
    manifest: dict[str, Any]
    exit_code: int
    reason: str = ""
    venues: list[VenueRun] = field(default_factory=list)


class _Lock:
    """An exclusive ``flock`` held for the life of the process (released by the kernel on any
    exit, ``kill -9`` included, so a crash never leaves a stale lock)."""

    def __init__(self, path: Path, what: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 200, 0).decode(errors="replace").strip()
            os.close(self.fd)
            raise LockedError(f"{what} is already being recorded ({holder or 'another run'}); "
                              f"this run exits") from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)

    def release(self) -> None:
        os.close(self.fd)


def _check_writable(data_dir: Path) -> None:
    try:
        for sub in ("journal", "lake", "runs", "locks"):
            (data_dir / sub).mkdir(parents=True, exist_ok=True)
        probe = data_dir / "runs" / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise StorageError(f"data directory {data_dir} is not writable: {e}") from e


async def record(cfg: Config, duration: float | None, *, out: TextIO = sys.stderr,
                 live_status: bool = True, install_signals: bool = True,
                 stop: asyncio.Event | None = None,
                 on_start: Callable[[list[VenueRun]], None] | None = None) -> RunResult:
    settings = cfg.recorder
    data_dir = settings.data_dir
    venues = [v for v in cfg.venues if v.enabled]
    # 1. Validate every adapter (settings, secrets) before anything is written.
    for v in venues:
        sim = {"api_key": "validation"} if v.simulate else None
        get_venue(v.adapter).make_adapter(v.name, v.url or "ws://validate", v.options, sim=sim)
    # 2. Disk and lock.
    _check_writable(data_dir)
    key = hashlib.sha1(str(cfg.path.resolve()).encode()).hexdigest()[:12]
    cfg_lock = _Lock(data_dir / "locks" / f"config-{key}.lock", f"config {cfg.path}")
    run_id = new_run_id()
    run_lock = _Lock(data_dir / "runs" / f"{run_id}.lock", f"run {run_id}")
    stoppers: list[Callable[[], Awaitable[None]]] = []
    runs: list[VenueRun] = []
    started = time.time_ns()
    manifest: dict[str, Any] = {
        "run_id": run_id, "host": socket.gethostname(), "pid": os.getpid(),
        "config": str(cfg.path), "status": "running", "started": _iso(started),
        "started_ns": started,
        "venues": {v.name: {"adapter": v.adapter, "url": v.url, "simulated": v.simulate}
                   for v in venues},
    }
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    try:
        atomic_write_bytes(manifest_path(data_dir, run_id),
                           orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        # 3. Anything a dead run left in its journal reaches the lake before we add more.
        recovered = await asyncio.to_thread(recover, data_dir, lambda s: print(s, file=out))
        manifest["recovered_runs"] = [r.run for r in recovered]
        # 4. Simulators, adapters, connections.
        for v in venues:
            spec = get_venue(v.adapter)
            url, sim = v.url, None
            if v.simulate:
                if spec.start_simulator is None:
                    raise RecorderError(f"venue {v.name}: adapter {v.adapter} has no simulator")
                url, stopper, sim = await spec.start_simulator(v.sim)
                stoppers.append(stopper)
                manifest["venues"][v.name]["url"] = url
            adapter = spec.make_adapter(v.name, url, v.options, sim=sim)
            runs.append(VenueRun(v, spec, adapter, settings, run_id))
        if install_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
        if on_start is not None:
            on_start(runs)
        printer = StatusPrinter(runs, out, live=live_status,
                                interval=settings.status_interval)
        # No pool limit: every connection is a long-lived stream an adapter asked for (one SSE
        # stream per live quote request, for instance); aiohttp's default cap of 100 would
        # make the 101st wait for a free slot instead of connecting.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            tasks = [asyncio.create_task(r.run(http, stop)) for r in runs]
            status_task = asyncio.create_task(printer.run(stop))
            deadline = asyncio.create_task(_deadline(duration, stop))
            try:
                await asyncio.gather(*tasks)
            finally:
                stop.set()
                deadline.cancel()
                await status_task
        failure = next((r.failure for r in runs if r.failure is not None), None)
        if failure is not None:
            raise failure if isinstance(failure, RecorderError) else StorageError(str(failure))
        reached = [r for r in runs if any(c.status.connects for c in r.conns.values())]
        if not reached:
            raise Unreachable("no venue could be reached for the whole run: " + "; ".join(
                f"{r.name}: {c.status.last_error or c.status.state}"
                for r in runs for c in r.conns.values()))
        manifest["status"] = "complete"
        code, reason = 0, ""
    except RecorderError as e:
        manifest["status"] = "failed"
        code, reason = 2 if e.fault == "user" else 1, e.one_line()
    finally:
        if install_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        for s in stoppers:
            await s()
        ended = time.time_ns()
        manifest.update(_summary(runs), ended=_iso(ended), ended_ns=ended)
        if manifest["status"] == "failed":
            manifest["exit"] = {"code": code, "reason": reason}
        else:
            manifest["exit"] = {"code": 0, "reason": ""}
        try:
            atomic_write_bytes(manifest_path(data_dir, run_id),
                               orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        except OSError:
            pass
        run_lock.release()
        cfg_lock.release()
    return RunResult(run_id, manifest, code, reason, runs)


async def _deadline(duration: float | None, stop: asyncio.Event) -> None:
    if duration is None:
        return
    try:
        await asyncio.wait_for(stop.wait(), timeout=duration)
    except TimeoutError:
        stop.set()


def _summary(runs: list[VenueRun]) -> dict[str, Any]:
    tables: dict[str, int] = {}
    venues: dict[str, Any] = {}
    for r in runs:
        for t, n in r.lake.rows_committed.items():
            tables[t] = tables.get(t, 0) + n
        venues[r.name] = {
            "adapter": r.cfg.adapter, "url": r.conns and next(iter(r.conns.values())).spec.url,
            "simulated": r.cfg.simulate, "records": r.records, "gaps": r.gaps,
            "journal_records": r.journal.records, "session_events": r.events,
            "errors": r.errors[-50:],
            "connections": {
                name: {"state": c.status.state, "frames": c.status.frames,
                       "bytes": c.status.bytes, "connects": c.status.connects,
                       "reconnects": c.status.reconnects, "first_recv": _iso(c.status.first_ts),
                       "last_recv": _iso(c.status.last_ts), "last_error": c.status.last_error}
                for name, c in r.conns.items()},
        }
    return {"tables": dict(sorted(tables.items())), "venues": venues,
            "reconnects": sum(c.status.reconnects for r in runs for c in r.conns.values()),
            "gaps": sum(r.gaps for r in runs),
            "errors": sum(len(r.errors) for r in runs)}
