"""Scaffolding every venue simulator shares: listen on loopback, name the URL."""

from __future__ import annotations

import socket

from aiohttp import web


async def listen(app: web.Application, host: str, port: int,
                 shutdown_timeout: float = 1.0) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on ``host:port`` (0 = a free port); returns the runner and the port.
    The socket is bound here, not by aiohttp, so the real port is known before serving."""
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family)
    await web.SockSite(runner, sock).start()
    return runner, sock.getsockname()[1]


def loopback_url(scheme: str, host: str, port: int, path: str = "") -> str:
    """``scheme://host:port/path`` for a client; a wildcard bind is reached on 127.0.0.1."""
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}{path}"
