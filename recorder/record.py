"""``recorder record``: one bounded, cron-friendly recording run.

Order matters: validate config, secrets and adapters before touching the disk (a bad config
writes nothing); take the per-config lock and the run lock; start the lake builder (which also
finishes runs that died); start simulators if asked; record until the deadline or
SIGTERM/SIGINT; close the journal; write the final manifest; release the run lock (the builder
sees the run has ended); wait for the builder; exit 0 only if something was recorded.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
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

from recorder.build import read_state
from recorder.collect import VenueRun
from recorder.config import Config, ConfigProblems, RecorderSettings
from recorder.errors import (
    ConfigError,
    CredentialsRefused,
    LockedError,
    RecorderError,
    StorageError,
    Unreachable,
)
from recorder.lake import atomic_write_bytes
from recorder.metrics import RunMetrics, metrics_path
from recorder.runs import (
    BUILDER_KEY,
    VenueLocks,
    config_id,
    manifest_path,
    previous_run,
    run_lock_path,
)
from recorder.status import StatusPrinter
from recorder.upload import read_upload_state
from recorder.venues import CATALOGUE


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


async def record(cfg: Config, duration: float | None, *, out: TextIO | None = None,
                 live_status: bool = True, install_signals: bool = True,
                 stop: asyncio.Event | None = None,
                 on_start: Callable[[list[VenueRun]], None] | None = None,
                 connections: bool = False, metrics_port: int | None = None) -> RunResult:
    """Record until ``duration`` passes or ``stop`` is set (SIGTERM/SIGINT set it, at any
    stage), then close the journal, finalise the manifest and wait (up to
    ``lake_build_deadline``) for the lake builder to finish the run. ``cfg``'s enabled venues
    are recorded (:func:`recorder.config.select` picks ``--venue``s)."""
    out = sys.stderr if out is None else out
    settings = cfg.recorder
    data_dir = settings.data_dir
    venues = [v for v in cfg.venues if v.enabled]
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    signals: list[int] = []
    interrupted: list[int] = []

    def on_signal(sig: int) -> None:
        interrupted.append(sig)
        stop.set()

    if install_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig)
            signals.append(sig)
    run_id = new_run_id()
    started = time.time_ns()
    ends_ns = started + int(duration * 1e9) if duration is not None else None
    try:
        # 1. Validate every venue (options, secrets) before anything is written: every
        # problem at once.
        problems = CATALOGUE.preflight(cfg)
        if problems:
            raise ConfigProblems(cfg.path, problems)
        # 2. Disk and locks: one per (config, venue), with a handover window (runs.py).
        _check_writable(data_dir)
        venue_locks = VenueLocks.take(data_dir, cfg.path, [v.name for v in venues], run_id,
                                      ends_ns, settings.handover)
    except BaseException:
        for sig in signals:
            loop.remove_signal_handler(sig)
        raise
    run_lock = _Lock(run_lock_path(data_dir, run_id), f"run {run_id}")
    stoppers: list[Callable[[], Awaitable[None]]] = []
    runs: list[VenueRun] = []
    cfg_id = config_id(cfg.path)
    previous = {v.name: previous_run(data_dir, cfg_id, v.name, run_id, started)
                for v in venues}
    manifest: dict[str, Any] = {
        "run_id": run_id, "host": socket.gethostname(), "pid": os.getpid(),
        "config": str(cfg.path), "config_path": str(cfg.path.resolve()),
        "config_id": cfg_id, "selected": list(cfg.selected),
        "status": "running", "started": _iso(started),
        "started_ns": started, "planned_end": _iso(ends_ns), BUILDER_KEY: 1,
        "venues": {v.name: {"adapter": v.adapter, "url": v.url, "simulated": v.simulate,
                            "previous": previous[v.name]}
                   for v in venues},
    }
    metrics = RunMetrics(data_dir, metrics_path(data_dir, settings.metrics_file, cfg.selected),
                         str(cfg.path), run_id, socket.gethostname(), started)
    printer: StatusPrinter | None = None

    def say(line: str) -> None:
        (printer.log if printer is not None else lambda x: print(x, file=out, flush=True))(
            line)

    builder: Builder | None = None
    uploader: Uploader | None = None
    code, reason = 0, ""
    try:
        _write_manifest(data_dir, manifest)
        if metrics_port is not None:
            try:
                metrics.serve(metrics_port)
            except OSError as e:
                raise ConfigError(f"--metrics-port {metrics_port}: {e.strerror or e}") from e
        # 3. The lake builder: follows this run's journal, and finishes runs that died.
        builder = await Builder.start(data_dir, run_id, settings, say)
        manifest["builder_pid"] = builder.pid
        if settings.remote:
            # 3b. The uploader: moves committed lake files, closed journal segments and
            # final manifests to the bucket (recorder/upload.py), whatever the bucket does.
            uploader = await Uploader.start(data_dir, run_id, settings, say)
            manifest["remote"] = settings.remote
            manifest["uploader_pid"] = uploader.pid
        _write_manifest(data_dir, manifest)
        # 4. Simulators, adapters, connections.
        for v in venues:
            if stop.is_set():
                break
            spec = CATALOGUE.venue(v.adapter)
            url, sim = v.url, None
            if v.simulate:
                if spec.start_simulator is None:
                    raise RecorderError(f"venue {v.name}: adapter {v.adapter} has no simulator")
                url, stopper, sim = await spec.start_simulator(v.sim)
                stoppers.append(stopper)
                manifest["venues"][v.name]["url"] = url
            adapter = spec.make_adapter(v.name, url, v.options, sim=sim)
            vr = VenueRun(v, spec, adapter, settings, run_id)
            vr.run_start = {"config": str(cfg.path), "config_id": cfg_id, **previous[v.name]}
            runs.append(vr)
        if on_start is not None:
            on_start(runs)
        names = ", ".join(r.name for r in runs)
        printer = StatusPrinter(
            runs, out, live=live_status, interval=settings.status_interval,
            connections=connections, title=f"run {run_id} · {names}",
            ends_at=None if duration is None else time.monotonic() + duration)
        if settings.remote:
            printer.upload_note = lambda: _upload_note(data_dir)
        # No pool limit: every connection is a long-lived stream an adapter asked for (one SSE
        # stream per live quote request, for instance); aiohttp's default cap of 100 would
        # make the 101st wait for a free slot instead of connecting.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            tasks = [asyncio.create_task(r.run(http, stop)) for r in runs]
            status_task = asyncio.create_task(printer.run(stop))
            lag_task = asyncio.create_task(_follow_builder(data_dir, run_id, runs, stop))
            metrics_task = asyncio.create_task(_metrics_loop(
                metrics, runs, manifest, settings.metrics_interval, stop))
            deadline = asyncio.create_task(_deadline(duration, stop))
            try:
                await asyncio.gather(*tasks)
            finally:
                stop.set()
                deadline.cancel()
                lag_task.cancel()
                metrics_task.cancel()
                await status_task
        failure = next((r.failure for r in runs if r.failure is not None), None)
        if failure is not None:
            raise failure if isinstance(failure, RecorderError) else StorageError(str(failure))
        if runs:
            _check_recorded(runs)
        manifest["status"] = "complete"
        if interrupted:
            manifest["stopped_by"] = signal.Signals(interrupted[0]).name
    except RecorderError as e:
        manifest["status"] = "failed"
        code, reason = 2 if e.fault == "user" else 1, e.one_line()
    finally:
        for s in stoppers:
            await s()
        ended = time.time_ns()
        manifest.update(_summary(runs), ended=_iso(ended), ended_ns=ended,
                        exit={"code": code, "reason": reason})
        try:
            _write_manifest(data_dir, manifest)
        except StorageError as e:  # the journal (closed above) is what counts
            say(f"recorder: {e.one_line()}")
        # The journal is closed: releasing the run lock tells the builder the run has ended.
        run_lock.release()
        venue_locks.release()
        if builder is not None:
            lake = await builder.wait(settings.lake_build_deadline, stop_again=interrupted,
                                      out=say)
            states = [read_state(data_dir, run_id, r.name) or {} for r in runs]
            for r, st in zip(runs, states, strict=True):
                if st:
                    r.build_state = st
                    r.built_records = st.get("records", r.built_records)
            manifest["lake"] = {
                "status": "complete" if states and all(s.get("complete") for s in states)
                else lake,
                "tables": _tables(states),
                "builder_exit": builder.returncode}
            manifest["tables"] = manifest["lake"]["tables"]
            if uploader is not None:
                manifest["upload"] = _upload_summary(data_dir, "running")
            try:
                _write_manifest(data_dir, manifest)
            except StorageError as e:
                say(f"recorder: {e.one_line()}")
        if uploader is not None:
            # The uploader ends once this final manifest is in the bucket and nothing
            # waits; an unreachable bucket leaves it working alone after the deadline
            # (the next run's uploader, or `recorder upload`, takes over what it leaves).
            up = await uploader.wait(settings.lake_build_deadline, stop_again=interrupted,
                                     out=say, what="uploader")
            manifest["upload"] = _upload_summary(data_dir, up)
            if up != "pending" and manifest["upload"].get("pending_files"):
                manifest["upload"]["uploader"] = "pending"  # another uploader drains it
            try:
                _write_manifest(data_dir, manifest)
                await asyncio.to_thread(_put_manifest, data_dir, settings.remote, run_id)
            except StorageError as e:
                say(f"recorder: {e.one_line()}")
        try:
            metrics.refresh(runs, manifest)
            metrics.write()
        except OSError as e:  # metrics never change the run's outcome
            say(f"recorder: cannot write metrics {metrics.path}: {e}")
        metrics.close()
        for sig in signals:
            loop.remove_signal_handler(sig)
    if settings.compact_yesterday and not interrupted:
        await asyncio.to_thread(_compact_yesterday, data_dir, out, settings.remote)
    return RunResult(run_id, manifest, code, reason, runs)


async def _metrics_loop(metrics: RunMetrics, runs: list[VenueRun], manifest: dict[str, Any],
                        every: float, stop: asyncio.Event) -> None:
    """Refresh the metrics and rewrite the textfile every ``every`` seconds while recording
    (the final write, with the lake's rows and the exit code, comes after the builder)."""
    warned = False
    while not stop.is_set():
        try:
            metrics.refresh(runs, manifest)
            metrics.write()
        except OSError as e:
            if not warned:
                print(f"recorder: cannot write metrics {metrics.path}: {e}", file=sys.stderr)
                warned = True
        try:
            await asyncio.wait_for(stop.wait(), timeout=every)
        except TimeoutError:
            pass


def _write_manifest(data_dir: Path, manifest: dict[str, Any]) -> None:
    """Replace the manifest atomically; on a full disk, overwrite it in place (its blocks are
    already allocated), so a failed run still says why."""
    path = manifest_path(data_dir, manifest["run_id"])
    data = orjson.dumps(manifest, option=orjson.OPT_INDENT_2)
    try:
        atomic_write_bytes(path, data)
    except OSError as e:
        try:
            with open(path, "r+b") as f:
                f.write(data)
                f.truncate()
        except OSError:
            raise StorageError(f"cannot write the manifest {path}: {e.strerror or e}") from e


def _check_recorded(runs: list[VenueRun]) -> None:
    """Nothing recorded is a failure cron must see: no venue reachable, or every venue's
    credentials refused."""
    reached = [r for r in runs if any(c.status.connects for c in r.conns.values())
               or r.ended.count]
    if not reached:
        raise Unreachable("no venue could be reached for the whole run: " + "; ".join(
            f"{r.name}: {c.status.last_error or c.status.state}"
            for r in runs for c in r.conns.values()))
    refused = [r for r in reached if r.events.get("auth_failed") and not r.events.get("auth_ok")
               and all(c.status.state == "stopped" for c in r.conns.values())]
    unreachable = [r for r in runs if r not in reached]
    if len(refused) + len(unreachable) == len(runs):
        raise CredentialsRefused(
            "nothing was recorded: every venue refused our credentials or could not be "
            "reached (" + "; ".join(f"{r.name}: {r.errors[-1] if r.errors else 'refused'}"
                                    for r in refused) + ")")


def _tables(states: list[dict[str, Any]]) -> dict[str, int]:
    tables: dict[str, int] = {}
    for st in states:
        for t, n in (st.get("tables") or {}).items():
            tables[t] = tables.get(t, 0) + n
    return dict(sorted(tables.items()))


async def _follow_builder(data_dir: Path, run_id: str, runs: list[VenueRun],
                          stop: asyncio.Event) -> None:
    """Keep each venue's ``built_records`` current (the status shows the builder's lag)."""
    while not stop.is_set():
        for r in runs:
            st = read_state(data_dir, run_id, r.name)
            if st:
                r.built_records = st.get("records", 0)
                r.build_state = st
        await asyncio.sleep(1.0)


class Builder:
    """The lake builder process this run started (``recorder build --run RUN``). It runs in
    its own session, so a Ctrl-C or SIGTERM meant for the recorder does not cut a commit;
    if the recorder dies, the builder finishes the run anyway (the run lock is gone)."""

    def __init__(self, proc: asyncio.subprocess.Process, forward: asyncio.Task[None]) -> None:
        self.proc = proc
        self.pid = proc.pid
        self._forward = forward
        self.returncode: int | None = None

    @classmethod
    async def start(cls, data_dir: Path, run_id: str, settings: RecorderSettings,
                    say: Callable[[str], None]) -> Builder:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "recorder.cli", "build", "--data-dir", str(data_dir),
            "--run", run_id, "--flush-seconds", str(settings.lake_flush_seconds),
            "--rotate-seconds", str(settings.lake_rotate_seconds),
            "--max-rows", str(settings.lake_max_rows),
            "--max-bytes", str(settings.lake_max_bytes), "--background",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, start_new_session=True)

        async def forward() -> None:
            assert proc.stderr is not None
            async for line in proc.stderr:
                say(line.decode(errors="replace").rstrip())
        return cls(proc, asyncio.create_task(forward()))

    def _priority_back(self) -> None:
        """Recording is over: the builder ran in the background so far; now it is what we
        wait for. Raising a priority needs privilege (root, as under cron or systemd);
        without it, the builder simply keeps its low priority."""
        try:
            os.setpriority(os.PRIO_PROCESS, self.pid, 0)
            Path(f"/proc/{self.pid}/autogroup").write_text("0")
        except OSError:
            pass

    async def wait(self, deadline: float, stop_again: list[int],
                   out: Callable[[str], None], what: str = "lake builder") -> str:
        """Wait for the builder to finish this run, at most ``deadline`` seconds; a second
        signal stops the wait. Returns "complete" or "pending" (the builder goes on alone;
        the next run's builder finishes what it leaves)."""
        seen = len(stop_again)
        t_end = time.monotonic() + deadline
        self._priority_back()
        while time.monotonic() < t_end and len(stop_again) == seen:
            try:
                self.returncode = await asyncio.wait_for(self.proc.wait(), 0.25)
                break
            except TimeoutError:
                continue
        if self.returncode is None:
            out(f"recorder: the {what} is still working; it goes on by itself, and "
                f"the next run (or `recorder {what.split()[-1].removesuffix('er')}`) "
                f"finishes whatever it leaves")
            return "pending"
        await self._forward
        return "complete" if self.returncode == 0 else "failed"


class Uploader(Builder):
    """The uploader process this run started (``recorder upload --follow RUN``), in its own
    session like the builder: it goes on when the recorder dies."""

    @classmethod
    async def start(cls, data_dir: Path, run_id: str, settings: RecorderSettings,
                    say: Callable[[str], None]) -> Uploader:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "recorder.cli", "upload", "--data-dir", str(data_dir),
            "--remote", settings.remote, "--follow", run_id,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, start_new_session=True)

        async def forward() -> None:
            assert proc.stderr is not None
            async for line in proc.stderr:
                say(line.decode(errors="replace").rstrip())
        return cls(proc, asyncio.create_task(forward()))


def _upload_summary(data_dir: Path, status: str) -> dict[str, Any]:
    st = read_upload_state(data_dir) or {}
    keys = ("remote", "pending_files", "pending_bytes", "pending_by_kind", "oldest_pending_s",
            "uploaded_files", "uploaded_bytes", "last_error")
    return {"uploader": status, **{k: st.get(k) for k in keys}}


def _upload_note(data_dir: Path) -> str:
    st = read_upload_state(data_dir)
    if st is None:
        return "upload: starting"
    note = f"upload: {st['pending_files']} waiting ({st['pending_bytes'] / 1e6:.1f} MB)"
    if st.get("consecutive_failures"):
        note += f", failing: {st.get('last_error', '')[:60]}"
    return note


def _put_manifest(data_dir: Path, url: str, run_id: str) -> None:
    """The manifest with the uploader's final word, to the bucket; when that fails the next
    uploader sends it (it changed since the last upload)."""
    from recorder.remote import Remote, RemoteError

    remote = Remote.parse(url)
    try:
        remote.put(remote.fs(), manifest_path(data_dir, run_id), f"runs/{run_id}.json")
    except RemoteError:
        pass


def _summary(runs: list[VenueRun]) -> dict[str, Any]:
    """What the collector saw, per venue and connection (the lake's rows come from the
    builder's state, added after it finishes)."""
    venues: dict[str, Any] = {}
    for r in runs:
        venues[r.name] = {
            "adapter": r.cfg.adapter, "url": r.conns and next(iter(r.conns.values())).spec.url,
            "simulated": r.cfg.simulate, "records": r.records, "gaps": r.gaps,
            "previous": r.run_start and {k: v for k, v in r.run_start.items()
                                         if k.startswith("previous")},
            "first_recv_ns": min((c.status.first_ts for c in r.conns.values()
                                  if c.status.first_ts), default=None),
            "last_recv_ns": r.last_recv, "last_recv": _iso(r.last_recv),
            "unhandled": dict(sorted(r.unhandled.items())),
            "journal_records": r.journal.records,
            "journal_durable_records": r.journal.durable_records,
            "session_events": r.events,
            "errors": r.errors[-50:],
            "ended_connections": {"count": r.ended.count, "frames": r.ended.frames,
                                  "bytes": r.ended.bytes, "reconnects": r.ended.reconnects},
            "connections": {
                name: {"state": c.status.state, "frames": c.status.frames,
                       "bytes": c.status.bytes, "connects": c.status.connects,
                       "reconnects": c.status.reconnects, "first_recv": _iso(c.status.first_ts),
                       "last_recv": _iso(c.status.last_ts), "last_error": c.status.last_error}
                for name, c in r.conns.items()},
        }
    return {"venues": venues,
            "reconnects": sum(c.status.reconnects for r in runs for c in r.conns.values())
            + sum(r.ended.reconnects for r in runs),
            "gaps": sum(r.gaps for r in runs),
            "errors": sum(len(r.errors) for r in runs)}


async def _deadline(duration: float | None, stop: asyncio.Event) -> None:
    if duration is None:
        return
    try:
        await asyncio.wait_for(stop.wait(), timeout=duration)
    except TimeoutError:
        stop.set()


def _compact_yesterday(data_dir: Path, out: TextIO, remote: str = "") -> None:
    """``compact_yesterday = true``: after the run, compact yesterday's day if it is closed
    (its runs all ended and built); with a remote, yesterday on the bucket. Whatever goes
    wrong is said and left for the next run: the recording itself is done."""
    from recorder.compact import compact_yesterday

    try:
        if remote:
            from recorder.remote_maintain import compact_remote

            day = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
            rep = compact_remote(remote, data_dir / "remote-compact", day,
                                 log=lambda s: print(f"compact: {s}", file=out))
        else:
            rep = compact_yesterday(data_dir, log=lambda s: print(f"compact: {s}", file=out))
    except Exception as e:  # noqa: BLE001 - never fails the run that has just recorded
        print(f"recorder: compaction of yesterday failed: {e}", file=out)
        return
    if rep is not None and rep.compacted:
        print(f"compact: {len(rep.compacted)} table(s) of yesterday compacted", file=out)
