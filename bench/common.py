"""What the bench's parts share: the simulator subprocess, the event loop, small statistics."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import orjson

ROOT = Path(__file__).resolve().parent.parent
# The bare clients subscribe exactly as the recorder's Mackinac adapter does for ["hl:ETH"].
SUB = orjson.dumps({"action": "subscribe", "exchange": "hl", "symbol": "ETH"}).decode()
# Frame types that are not market data: the subscribe ack and the like. Rates count only the
# data frames, from the first one received.
CONTROL = frozenset({"subscribed", "authed", "error", "snapshot"})

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def is_data(frame: bytes) -> bool:
    """A market-data frame (not an ack or error): the frames every rate counts."""
    try:
        obj = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return True
    return not (isinstance(obj, dict) and obj.get("type") in CONTROL)


class Sim:
    """A Mackinac simulator in its own process, so its CPU is not the measured process's.

    It pre-generates ``firehose`` data frames and sends them at full speed to every session
    after its first subscribe; ``options`` are ``-o KEY=VALUE`` simulator options (e.g.
    ``firehose_repeat=true``). Output goes to a log file, not a pipe nobody reads (a full
    pipe would stall the simulator in the middle of a measurement)."""

    def __init__(self, firehose: int, log: Path, *options: str) -> None:
        self.port = free_port()
        self.log = log
        extra = [a for o in options for a in ("-o", o)]
        with open(log, "wb") as f:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "recorder.cli", "sim", "mackinac", "--port",
                 str(self.port), "--firehose", str(firehose), "--rate", "0.2", *extra],
                cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
        # Pre-generating the firehose takes a few seconds for 100k frames.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            self.stop()
            raise SystemExit(f"simulator did not start: {log.read_text()[-2000:]}")
        self.url = f"ws://127.0.0.1:{self.port}/feed"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Sim:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def loop_name() -> str:
    return "uvloop" if os.environ.get("BENCH_UVLOOP", "") not in ("", "0") else "asyncio"


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    if loop_name() != "uvloop":
        return None
    try:
        import uvloop  # not a project dependency: `pip install uvloop` into the venv to try it
    except ImportError:
        raise SystemExit("BENCH_UVLOOP=1 needs uvloop: .venv/bin/pip install uvloop") from None
    return uvloop.new_event_loop  # type: ignore[no-any-return]


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on the loop the bench was asked for (BENCH_UVLOOP=1: uvloop). Applies
    to everything timed in this process: the bare clients and the in-process recorder alike,
    so the ratio compares like with like."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(coro)


def spread(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    """The median, then min/median/max when there are several runs."""
    med = statistics.median(values)
    if len(values) == 1:
        return fmt.format(med)
    return (f"{fmt.format(med)}  [min {fmt.format(min(values))} / median {fmt.format(med)} / "
            f"max {fmt.format(max(values))} over {len(values)} runs]")


def loadavg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min, {os.cpu_count()} cores)"
