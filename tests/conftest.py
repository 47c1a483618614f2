"""Shared fixtures. Tests use real files under tmp_path and real loopback sockets."""

from __future__ import annotations

import ast
import fnmatch
import functools
import gc
import re
import subprocess
import sys
import threading
import time
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


def sim_process(venue: str, *args: str) -> tuple[subprocess.Popen, int]:
    """``recorder sim VENUE ARGS`` in a process of its own, on a port it binds itself (port
    0: a port picked free and handed over could be a connection's by the time it binds),
    read from its banner; its later output is drained so the pipe never stops it."""
    p = subprocess.Popen([*RECORDER, "sim", venue, "--port", "0", *args], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline() if p.stdout else ""
    m = re.search(r"listening on \w+://127\.0\.0\.1:(\d+)", line)
    if m is None:
        p.kill()
        p.wait(10)
        raise AssertionError(f"simulator {venue} did not start: {line!r}")
    threading.Thread(target=lambda: p.stdout and p.stdout.read(), daemon=True).start()
    return p, int(m.group(1))


def wait_dead(*pids: int, limit: float = 60.0) -> None:
    """Until each process has died: gone, or a zombie (its files and locks released), for
    processes a test cannot ``wait()`` for (a recorder's lake builder and uploader, in
    sessions of their own). A kill -9 is not instant: a process in a system call (an fsync
    on a loaded disk) dies when the call returns, and holds its locks until then."""
    deadline = time.monotonic() + limit
    for pid in pids:
        while True:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except FileNotFoundError:
                break
            if state == "Z":
                break
            assert time.monotonic() < deadline, f"process {pid} alive {limit}s after a kill"
            time.sleep(0.02)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d



def _fixture_scope(node: ast.FunctionDef) -> str | None:
    """``node``'s scope if it is a ``@pytest.fixture``, else None."""
    for d in node.decorator_list:
        call = d if isinstance(d, ast.Call) else None
        target = call.func if call is not None else d
        if isinstance(target, ast.Attribute) and target.attr == "fixture":
            for kw in call.keywords if call is not None else []:
                if kw.arg == "scope" and isinstance(kw.value, ast.Constant):
                    return str(kw.value.value)
            return "function"
    return None


@functools.cache
def _groups(module: str) -> dict[str, str]:
    """Test function name -> the module-scoped fixtures of ``module`` it uses, directly or
    through other fixtures (a recording several tests read), for the tests that use one."""
    path = ROOT / module
    if path.suffix != ".py" or not path.exists():
        return {}
    fixtures: dict[str, tuple[bool, list[str]]] = {}
    tests: dict[str, list[str]] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            args = [a.arg for a in node.args.args]
            scope = _fixture_scope(node)
            if scope is not None:
                fixtures[node.name] = (scope == "module", args)
            elif node.name.startswith("test"):
                tests[node.name] = args

    def shared(names: list[str], seen: frozenset[str] = frozenset()) -> set[str]:
        out: set[str] = set()
        for n in names:
            if n in fixtures and n not in seen:
                module_scoped, args = fixtures[n]
                out |= {n} if module_scoped else set()
                out |= shared(args, seen | {n})
        return out

    # tests that share any one recording go together: one group per connected set
    group: dict[str, str] = {}

    def root(n: str) -> str:
        while group.get(n, n) != n:
            n = group[n]
        return n

    uses = {name: shared(args) for name, args in tests.items()}
    for used in uses.values():
        first, *others = sorted(used) or [""]
        for n in others:
            group[root(n)] = root(first)
    return {name: root(min(used)) for name, used in uses.items() if used}


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """``make test`` runs pytest-xdist workers: each test goes to whichever worker is free,
    but the tests that share a recording (a module-scoped fixture, used directly or through
    another fixture) go to one worker, so the recording is made once; the other tests of
    that module still go anywhere. (``--dist loadgroup`` would say it with a marker, but its
    marker has no effect under pytest 9.)"""
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module, _, rest = nodeid.partition("::")
            group = _groups(module).get(rest.split("[", 1)[0])
            return f"{module}::{group}" if group else nodeid

    return Scheduling(config, log)


# The modules with the longest tests first, longest first (measured: their longest test took
# 28 s down to 2 s of wall), so that the tests left for the end of `make test` are short ones
# and no worker runs a long one alone while the others have finished. (Tests that share a
# recording go first anyway: the scheduler sends the larger groups first.)
FIRST = ("tests/test_remote.py", "tests/test_runs_end_honestly.py", "tests/test_cross_views.py",
         "tests/test_compact.py", "tests/test_crash_and_rebuild.py",
         "tests/test_report_and_views.py", "tests/test_ops_runs.py", "tests/test_build.py",
         "tests/venues/totalis/test_e2e.py", "tests/test_books.py", "tests/test_prune.py",
         "tests/venues/*/test_replay.py", "tests/test_dedup_compacted.py",
         "tests/venues/*/test_e2e.py", "tests/venues/test_contract.py", "tests/test_verify.py",
         "tests/test_config.py", "tests/test_ops_cli.py", "tests/test_replay.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        module = item.nodeid.partition("::")[0]
        return next((i for i, m in enumerate(FIRST) if fnmatch.fnmatchcase(module, m)),
                    len(FIRST))
    items.sort(key=rank)


def pytest_collection_finish(session: pytest.Session) -> None:
    # What collection made (the libraries, the test modules and functions) lives to the end:
    # frozen out of the cycle collector's sight, a full collection scans a third of the
    # objects (the five collections pytest makes as a worker ends: 0.46 s -> 0.16 s of CPU)
    gc.freeze()
