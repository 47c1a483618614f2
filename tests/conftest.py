"""Shared fixtures. Tests use real files under tmp_path and real loopback sockets."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENUES = ROOT / "tests" / "venues"  # each venue's tests, its fixtures in VENUES / venue / "fixtures"
RECORDER = [sys.executable, "-m", "recorder.cli"]


@dataclass
class Ran:
    """What a command gave (the fields of ``subprocess.CompletedProcess`` tests read)."""

    returncode: int
    stdout: str
    stderr: str


def cli(args: list[str], env: Mapping[str, str] | None = None) -> Ran:
    """``recorder ARGS`` in this process (click's runner, ``env`` set for the call): the same
    command without a new interpreter importing pyarrow, polars and duckdb, which costs
    about a second of CPU a call. What needs a process of its own (``record``, a signal, a
    kill) runs ``RECORDER`` in a subprocess."""
    from click.testing import CliRunner

    from recorder.cli import main

    r = CliRunner().invoke(main, args, env=dict(env) if env is not None else None,
                           catch_exceptions=False)
    return Ran(r.exit_code, r.stdout, r.stderr)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d



def _shares_a_recording(module: str) -> bool:
    """A test module with a module-scoped fixture (one recording that several tests read)."""
    path = ROOT / module
    return path.suffix == ".py" and 'scope="module"' in path.read_text()


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """``make test`` runs pytest-xdist workers: each test goes to whichever worker is free,
    but the tests of a module that shares a recording (a module-scoped fixture) go to one
    worker, so the recording is made once. (``--dist loadgroup`` would say it with a marker,
    but its marker has no effect under pytest 9.)"""
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if _shares_a_recording(module) else nodeid

    return Scheduling(config, log)
