"""Run manifests and liveness: ``runs/<run>.json`` and the lock a live recorder holds.

A manifest's ``status`` is ``running`` while its recorder lives, then final: ``complete``,
``failed`` (with the reason), or ``crashed`` (written by the builder that finished the run
after its recorder died). ``recovered`` is what older versions wrote instead of ``crashed``.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import socket
import time
from pathlib import Path
from typing import Any

import orjson

from recorder.errors import LockedError

FINAL = frozenset({"complete", "failed", "crashed", "recovered"})
# Manifests this version writes carry this key; older recorders built the lake inline, so
# their complete runs need no builder.
BUILDER_KEY = "lake_builder"


def manifest_path(data_dir: Path, run: str) -> Path:
    return data_dir / "runs" / f"{run}.json"


def read_manifest(data_dir: Path, run: str) -> dict[str, Any] | None:
    try:
        return orjson.loads(manifest_path(data_dir, run).read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None


def run_lock_path(data_dir: Path, run: str) -> Path:
    return data_dir / "runs" / f"{run}.lock"


def run_alive(data_dir: Path, run: str) -> bool:
    """A live recorder holds an exclusive lock on ``runs/<run>.lock`` until its journal is
    closed (the kernel drops it on any exit, ``kill -9`` included)."""
    return lock_held(run_lock_path(data_dir, run))


# --- per (config, venue) locks with a handover window -------------------------------------


def config_id(path: Path) -> str:
    """Names a config file for locks, manifests and the gaps between its runs."""
    return hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]


class VenueLocks:
    """At most one run records a venue of a config at a time, except for a handover.

    Each ``(config, venue)`` has two slots (``locks/config-<id>-<venue>.{0,1}.lock``, an
    exclusive ``flock`` each, dropped by the kernel on any exit) and a gate taken briefly
    while a run picks its slot. A run takes a free slot when no other run holds the other
    one, or when that run is in its last ``handover`` seconds (it said when it ends: its
    ``--duration``): the successor of an hourly cron job starting before its predecessor
    stops. Anything else (a run without a deadline, a run far from its end, two runs
    already) is :class:`LockedError` (exit 2). Locks are per venue, so runs recording
    different venues of one config (``record --venue``) run side by side."""

    def __init__(self) -> None:
        self.fds: list[int] = []
        self.overlapping: dict[str, dict[str, Any]] = {}  # venue -> the run we take over from

    @classmethod
    def take(cls, data_dir: Path, cfg_path: Path, venues: list[str], run_id: str,
             ends_ns: int | None, handover: float) -> VenueLocks:
        locks = cls()
        key = config_id(cfg_path)
        try:
            for v in sorted(venues):
                locks._take_one(data_dir / "locks", key, cfg_path, v, run_id, ends_ns, handover)
        except BaseException:
            locks.release()
            raise
        return locks

    def _take_one(self, root: Path, key: str, cfg_path: Path, venue: str, run_id: str,
                  ends_ns: int | None, handover: float) -> None:
        root.mkdir(parents=True, exist_ok=True)
        base = f"config-{key}-{venue}"
        gate = os.open(root / f"{base}.gate", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(gate, fcntl.LOCK_EX)  # held for a few syscalls only
            free: list[int] = []
            held: list[dict[str, Any]] = []
            for i in (0, 1):
                fd = os.open(root / f"{base}.{i}.lock", os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    held.append(_holder(fd))
                    os.close(fd)
                    continue
                free.append(fd)
            what = f"venue {venue} of config {cfg_path}"
            try:
                if not free:
                    raise LockedError(f"{what} is already being recorded ("
                                      + "; ".join(_who(h) for h in held) + "); this run exits")
                if held:
                    h = held[0]
                    end = h.get("ends_ns")
                    left = None if end is None else (end - time.time_ns()) / 1e9
                    if left is None or left > handover:
                        when = ("until it is stopped" if left is None
                                else f"for {left:.0f}s more")
                        raise LockedError(
                            f"{what} is already being recorded ({_who(h)}, {when}); a new run "
                            f"may start only in the last {handover:g}s of the previous one "
                            f"([recorder].handover); this run exits")
                    self.overlapping[venue] = h
            except BaseException:
                for fd in free:
                    os.close(fd)
                raise
            mine, rest = free[0], free[1:]
            for fd in rest:
                os.close(fd)
            info = orjson.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "run_id": run_id, "ends_ns": ends_ns})
            os.ftruncate(mine, 0)
            os.pwrite(mine, info, 0)
            self.fds.append(mine)
        finally:
            os.close(gate)

    def release(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []


def _holder(fd: int) -> dict[str, Any]:
    try:
        return orjson.loads(os.pread(fd, 4096, 0) or b"{}")
    except orjson.JSONDecodeError:
        return {}


def _who(h: dict[str, Any]) -> str:
    return (f"run {h.get('run_id', '?')}, pid {h.get('pid', '?')} on {h.get('host', '?')}"
            if h else "another run")


def previous_run(data_dir: Path, cfg_id: str, venue: str, run_id: str,
                 started_ns: int) -> dict[str, Any]:
    """The run of the same config that recorded ``venue`` last before this one (started at
    ``started_ns``), as the ``run_start`` journal record carries it: ``previous_run``,
    ``previous_alive`` (still recording: an overlap, no gap) and ``previous_last_recv`` (ns:
    its last frame, from its manifest or, when it died before writing one, from its
    journal). Runs that received no frame of the venue are passed over (the gap began
    before them). Empty: no such run."""
    from recorder import journal

    best: tuple[int, dict[str, Any]] | None = None
    best_second = ""
    # Run ids start with their start second: newest first, and within one second (runs
    # started together) the manifests' start times decide.
    for p in sorted((data_dir / "runs").glob("*.json"), reverse=True):
        run = p.stem
        second = run.split("-", 1)[0]
        if best is not None and second != best_second:
            break
        if run == run_id or p.name.startswith("."):
            continue
        m = read_manifest(data_dir, run)
        if not m or m.get("config_id") != cfg_id or venue not in (m.get("venues") or {}):
            continue
        started = int(m.get("started_ns") or 0)
        if started >= started_ns or (best is not None and started <= best[0]):
            continue
        if run_alive(data_dir, run):
            found = {"previous_run": run, "previous_alive": True, "previous_last_recv": None}
        else:
            last = (m["venues"][venue] or {}).get("last_recv_ns")
            if last is None and m.get("status") != "complete":
                last = journal.last_in(data_dir, venue, run)
            if last is None:
                continue
            found = {"previous_run": run, "previous_alive": False, "previous_last_recv": last}
        best, best_second = (started, found), second
    return best[1] if best is not None else {}


def lock_held(lock: Path) -> bool:
    """Whether a live process holds an exclusive ``flock`` on ``lock``."""
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def run_being_written(data_dir: Path, run: str) -> bool:
    """Whether something may still write this run's lake files or manifest: its recorder
    (``runs/<run>.lock``), or a lake builder of one of its venues
    (``locks/build-<run>-<venue>.lock``, the lake builder's claim)."""
    if run_alive(data_dir, run):
        return True
    return any(lock_held(p) for p in (data_dir / "locks").glob(f"build-{glob.escape(run)}-*.lock"))
