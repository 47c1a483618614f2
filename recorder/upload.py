"""The uploader: moves what is final in the data dir to the bucket (``[recorder] remote``).

It follows what is committed the way the lake builder follows the journal: a process of its
own (``recorder upload``, started by ``record``), so a slow or unreachable bucket never
blocks recording or building. Each scan of the data dir finds:

- committed lake files (``lake/<table>/date=D/<file>.parquet``; never a hidden temporary
  file or staging folder): uploaded at once, so the bucket's lake trails a commit by one
  upload; the local copy is removed once the upload is confirmed **and** the lake builder
  of that ``(run, venue)`` is complete (recovery of a half-built run reads the lineage of
  the run's committed files in the data dir, so they stay until nobody needs them);
- journal segments that are closed (a later segment of the same run and venue exists, or
  the run has ended): uploaded; removed locally once the run ended and its build is
  complete (a builder taking over a dead run re-reads the whole journal);
- final run manifests (``runs/<run>.json``, status no longer ``running``) and finished
  builder states (``build/<run>-<venue>.json``): uploaded again whenever they change; kept
  locally (small; the handover and ``recorder build`` read them).

An upload is confirmed by the bucket's size and, for single-part uploads, its ETag (the
MD5). A PUT appears whole or not at all; the lineage travels inside each Parquet footer.
A failed upload is retried with exponential backoff (1 s doubling to 30 s) for ever; what
waits is in ``upload/state.json`` (files, bytes, oldest, last error), which ``record``
copies into the run's manifest and its status shows. One uploader uploads per data dir at a
time (``locks/upload.lock``); another one (a run starting during a handover) waits for it.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from recorder import journal
from recorder.build import read_state
from recorder.lake import atomic_write_bytes, read_lineage
from recorder.remote import Remote, RemoteError
from recorder.runs import read_manifest, run_alive

Log = Callable[[str], None]
BACKOFF_INITIAL = 1.0
BACKOFF_MAX = 30.0


def state_path(data_dir: Path) -> Path:
    return data_dir / "upload" / "state.json"


def read_upload_state(data_dir: Path) -> dict[str, Any] | None:
    try:
        return orjson.loads(state_path(data_dir).read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None


@dataclass
class Item:
    path: Path
    rel: str
    kind: str  # lake, journal, manifest, build
    size: int
    mtime_ns: int
    removable: bool  # the local copy goes once the upload is confirmed


class Uploader:
    def __init__(self, data_dir: Path, remote: Remote, log: Log = lambda s: None) -> None:
        self.data_dir = data_dir
        self.remote = remote
        self.log = log
        self.fs = remote.fs()
        self._index_path = data_dir / "upload" / "index.json"
        # files uploaded whose local copy stays (for now: lake files and segments until their
        # build is complete; for good: manifests, builder states): rel -> [size, mtime_ns]
        self.index: dict[str, list[int]] = self._read_index()
        self._lock_fd: int | None = None
        self.uploaded_files = 0
        self.uploaded_bytes = 0
        self.removed_files = 0
        self.last_error = ""
        self.last_error_ns = 0
        self.failures = 0  # consecutive
        self.retry_at = 0.0
        self.pending: list[Item] = []
        self._alive: dict[str, bool] = {}
        self._complete: dict[tuple[str, str], bool] = {}
        self._lineage: dict[Path, dict[str, Any]] = {}  # committed files never change

    # -- what is there to upload -------------------------------------------------------------
    def _read_index(self) -> dict[str, list[int]]:
        try:
            d = orjson.loads(self._index_path.read_bytes())
            return d if isinstance(d, dict) else {}
        except (FileNotFoundError, orjson.JSONDecodeError):
            return {}

    def _run_alive(self, run: str) -> bool:
        if run not in self._alive:
            self._alive[run] = run_alive(self.data_dir, run)
        return self._alive[run]

    def _built(self, run: str, venue: str) -> bool:
        key = (run, venue)
        if not self._complete.get(key):
            self._complete[key] = bool((read_state(self.data_dir, run, venue) or {}).get(
                "complete"))
        return self._complete[key]

    def scan(self) -> list[Item]:
        """What waits to be uploaded (or, uploaded, to be removed), lake files first."""
        self._alive = {}
        d = self.data_dir
        out: list[Item] = []

        def item(p: Path, kind: str, removable: bool) -> None:
            try:
                st = p.stat()
            except FileNotFoundError:
                return
            out.append(Item(p, p.relative_to(d).as_posix(), kind, st.st_size, st.st_mtime_ns,
                            removable))

        for p in sorted((d / "lake").glob("*/date=*/*.parquet")):
            if p.name.startswith(".") or p.parent.parent.name.startswith("."):
                continue
            item(p, "lake", self._lake_removable(p))
        segs: dict[tuple[str, str], list[Path]] = {}
        for p in journal.segments(d):
            run, _ = journal.parse_name(p)
            segs.setdefault((p.parent.parent.name, run), []).append(p)
        for (venue, run), paths in segs.items():
            ended = not self._run_alive(run)
            removable = ended and self._built(run, venue)
            paths.sort(key=lambda p: journal.parse_name(p)[1])
            for i, p in enumerate(paths):
                if ended or i < len(paths) - 1:
                    item(p, "journal", removable)
        for p in sorted((d / "build").glob("*.json")):
            if p.name.startswith(".") or self._unchanged(p):
                continue
            try:
                complete = orjson.loads(p.read_bytes()).get("complete")
            except (OSError, orjson.JSONDecodeError, AttributeError):
                continue
            if complete:
                item(p, "build", False)
        for p in sorted((d / "runs").glob("*.json")):
            if p.name.startswith(".") or self._unchanged(p) or self._run_alive(p.stem):
                continue
            m = read_manifest(d, p.stem)
            if m is None or m.get("status") == "running":
                continue
            item(p, "manifest", False)
        return [i for i in out if i.removable or self.index.get(i.rel) != [i.size, i.mtime_ns]]

    def _unchanged(self, p: Path) -> bool:
        """A kept-local file already uploaded as it is now (no need to read it)."""
        try:
            st = p.stat()
        except FileNotFoundError:
            return True
        return self.index.get(p.relative_to(self.data_dir).as_posix()) == [
            st.st_size, st.st_mtime_ns]

    def _lake_removable(self, p: Path) -> bool:
        lin = self._lineage.get(p)
        if lin is None:
            try:
                lin = read_lineage(p) or {}
            except Exception:  # noqa: BLE001 - a file being swapped away, or broken: keep it
                return False
            self._lineage[p] = lin
        if lin.get("kind") == "compacted":
            return True
        run, venue = lin.get("run_id"), lin.get("venue")
        if not run or not venue:
            return False
        return not self._run_alive(run) and self._built(run, venue)

    # -- moving it -----------------------------------------------------------------------------
    def take_lock(self) -> bool:
        if self._lock_fd is not None:
            return True
        p = self.data_dir / "locks" / "upload.lock"
        p.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def step(self) -> int:
        """One scan and as many uploads as go through; returns the files moved. Never
        raises for the bucket: a failure backs off (``retry_at``)."""
        self.pending = self.scan()
        if time.monotonic() < self.retry_at or not self.take_lock():
            return 0
        moved = 0
        for it in self.pending:
            uploaded = self.index.get(it.rel) == [it.size, it.mtime_ns]
            try:
                if not uploaded:
                    self.remote.put(self.fs, it.path, it.rel)
                    self.uploaded_files += 1
                    self.uploaded_bytes += it.size
                    moved += 1
            except (RemoteError, OSError) as e:
                self._failed(e)
                break
            self.failures = 0
            if it.removable:
                it.path.unlink(missing_ok=True)
                self.index.pop(it.rel, None)
                self._lineage.pop(it.path, None)
                self.removed_files += 1
            else:  # in the bucket; the local copy stays a while (or for good): not again
                self.index[it.rel] = [it.size, it.mtime_ns]
        if moved or any(i.removable for i in self.pending):
            self._save_index()
            self.pending = self.scan()
        return moved

    def _failed(self, e: Exception) -> None:
        self.failures += 1
        delay = min(BACKOFF_MAX, BACKOFF_INITIAL * 2 ** (self.failures - 1))
        self.retry_at = time.monotonic() + delay
        msg = e.one_line() if isinstance(e, RemoteError) else f"{type(e).__name__}: {e}"
        if msg != self.last_error or self.failures == 1:
            self.log(f"recorder upload: {msg}; retrying in {delay:.0f}s "
                     f"({len(self.pending)} file(s) waiting)")
        self.last_error, self.last_error_ns = msg, time.time_ns()
        if isinstance(e, FileNotFoundError):  # the file went (a swap): not the bucket's fault
            self.retry_at = 0.0

    def _save_index(self) -> None:
        atomic_write_bytes(self._index_path, orjson.dumps(self.index))

    def state(self) -> dict[str, Any]:
        waiting = [i for i in self.pending if self.index.get(i.rel) != [i.size, i.mtime_ns]]
        oldest = min((i.mtime_ns for i in waiting), default=None)
        return {"remote": self.remote.url, "pid": os.getpid(),
                "pending_files": len(waiting), "pending_bytes": sum(i.size for i in waiting),
                "pending_by_kind": _by_kind(waiting),
                "oldest_pending_s": None if oldest is None else round(
                    (time.time_ns() - oldest) / 1e9, 3),
                "uploaded_files": self.uploaded_files, "uploaded_bytes": self.uploaded_bytes,
                "removed_local": self.removed_files, "last_error": self.last_error,
                "last_error_ns": self.last_error_ns or None,
                "consecutive_failures": self.failures, "updated_ns": time.time_ns()}

    def save_state(self) -> None:
        try:
            atomic_write_bytes(state_path(self.data_dir),
                               orjson.dumps(self.state(), option=orjson.OPT_INDENT_2))
        except OSError:
            pass  # the state is for people; the uploads are what counts


def _by_kind(items: list[Item]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in items:
        out[i.kind] = out.get(i.kind, 0) + 1
    return out


def _followed_done(data_dir: Path, run: str) -> bool:
    """The followed run is over: its recorder ended (the final manifest, with the lake's
    state, is written) or died."""
    if run_alive(data_dir, run):
        return False
    m = read_manifest(data_dir, run) or {}
    if "lake" in m:
        return True
    pid = m.get("pid")
    if not isinstance(pid, int):
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def run_uploader(data_dir: Path, remote: Remote, *, follow: str | None = None,
                 deadline: float | None = None, log: Log = lambda s: None,
                 poll_seconds: float = 0.5, stop: Callable[[], bool] = lambda: False) -> dict[
                     str, Any]:
    """Upload until nothing waits (and, with ``follow``, that run is over), or ``deadline``
    seconds pass, or ``stop()``. Returns the final state."""
    up = Uploader(data_dir, remote, log)
    t_end = None if deadline is None else time.monotonic() + deadline
    last_save = 0.0
    try:
        while not stop():
            done_following = follow is None or _followed_done(data_dir, follow)
            up.step()
            now = time.monotonic()
            if now - last_save >= 1.0 and up._lock_fd is not None:  # the holder's word only
                up.save_state()
                last_save = now
            # Done when nothing waits; or, while another uploader holds the data dir (the
            # previous run's, still draining a backlog), when this one's run is over: that
            # one uploads everything, this run's files included.
            if done_following and (not up.pending or (follow is not None
                                                      and up._lock_fd is None)):
                break
            if t_end is not None and now >= t_end:
                break
            time.sleep(poll_seconds)
    finally:
        if up._lock_fd is not None:
            up.save_state()
        up.release()
    return up.state()


def main_upload(data_dir: Path, remote_url: str, follow: str | None,
                deadline: float | None) -> int:
    """``recorder upload``: 0 when nothing waits any more, 1 when files still wait (the
    bucket unreachable until the deadline)."""
    import signal

    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda s, f: stopping.append(s))

    def log(s: str) -> None:
        print(s, file=sys.stderr, flush=True)

    try:
        st = run_uploader(data_dir, Remote.parse(remote_url), follow=follow,
                          deadline=deadline, log=log, stop=lambda: bool(stopping))
    except KeyboardInterrupt:
        return 130
    if follow is None:
        log(f"uploaded {st['uploaded_files']} file(s), {st['uploaded_bytes']:,} bytes to "
            f"{remote_url}; {st['pending_files']} waiting")
    return 0 if st["pending_files"] == 0 else 1
