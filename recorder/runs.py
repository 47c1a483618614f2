"""Run manifests and liveness: ``runs/<run>.json`` and the lock a live recorder holds.

A manifest's ``status`` is ``running`` while its recorder lives, then final: ``complete``,
``failed`` (with the reason), or ``crashed`` (written by the builder that finished the run
after its recorder died). ``recovered`` is what older versions wrote instead of ``crashed``.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

import orjson

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
    p = run_lock_path(data_dir, run)
    try:
        fd = os.open(p, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
