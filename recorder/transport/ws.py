"""The one WebSocket loop every venue shares.

Why aiohttp and not ``websockets``: measured on this 2-core machine with compression off,
aiohttp's client received about twice the frames/s of the websockets client on the same
simulator stream (``make bench`` prints both rates side by side). Its reader is a C-accelerated
parser feeding a plain queue, and ``decode_text=False`` hands us the frame bytes without a
decode/encode round trip before the journal.

The loop owns: connect with timeout, reconnect with exponential backoff and jitter, protocol
ping/pong (``heartbeat``), an idle watchdog (no frame for ``idle_timeout`` -> reconnect), the
maximum frame size (a larger frame closes with 1009 and is recorded, not fatal), paced sends
on a separate task (so pacing never stalls the reader), and venue hints (``Reconnect`` after N
seconds, ``Stop``). Every transport event goes to the link as a meta event, which journals it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from recorder.actions import Action, ConnSpec, Reconnect, Send, Stop
from recorder.config import TransportSettings
from recorder.transport.backoff import Backoff


class Link(Protocol):
    """What a connection needs from the venue glue. While ``paused`` (the journal's disk is
    behind), a transport reads nothing more until ``resumed()`` returns: the socket's buffers
    fill and TCP slows the sender, so memory stays bounded and no frame is dropped."""

    paused: bool

    async def resumed(self) -> None: ...

    def frame(self, conn: str, data: bytes, ts_recv: int) -> None: ...

    def event(self, conn: str, ev: str, **fields: Any) -> None: ...

    def sent(self, conn: str, send: Send, ts: int) -> None: ...


@dataclass
class ConnStatus:
    state: str = "idle"
    frames: int = 0
    bytes: int = 0
    reconnects: int = 0
    connects: int = 0
    last_gap: str = ""
    last_error: str = ""
    first_ts: int | None = None
    last_ts: int | None = None


class WsConnection:
    def __init__(self, spec: ConnSpec, settings: TransportSettings, link: Link,
                 http: aiohttp.ClientSession, pacing: tuple[int, float] | None = None) -> None:
        self.spec = spec
        self.settings = settings
        self.link = link
        self.http = http
        self.pacing = pacing
        self.status = ConnStatus()
        self._backoff = Backoff(settings.backoff_initial, settings.backoff_max)
        self._queue: asyncio.Queue[Send] = asyncio.Queue()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._hint: tuple[float, str] | None = None  # (monotonic deadline, reason)
        self._stopped: str | None = None
        self._sent_times: deque[float] = deque()
        self._timers: list[asyncio.TimerHandle] = []

    # -- actions from the adapter ----------------------------------------------------------
    def submit(self, action: Action) -> None:
        if isinstance(action, Send):
            if action.delay > 0:
                loop = asyncio.get_running_loop()
                self._timers.append(loop.call_later(action.delay, self._queue.put_nowait,
                                                    _undelayed(action)))
            else:
                self._queue.put_nowait(action)
        elif isinstance(action, Reconnect):
            # A venue hint ("restarting, come back in N s"): keep reading what it still sends,
            # reconnect N s from now; close ourselves only if it overstays by a second.
            self._hint = (time.monotonic() + action.after, action.reason)
            self.link.event(self.spec.name, "reconnect_hint", reason=action.reason,
                            after=action.after)
            ws = self._ws
            self._timers.append(asyncio.get_running_loop().call_later(
                action.after + 1.0, self._close_if_current, ws))
        elif isinstance(action, Stop):
            self._stopped = action.reason
            self._close_soon()

    def _close_if_current(self, ws: aiohttp.ClientWebSocketResponse | None) -> None:
        if ws is not None and ws is self._ws and not ws.closed:
            asyncio.get_running_loop().create_task(ws.close())

    def _close_soon(self) -> None:
        ws = self._ws
        if ws is not None and not ws.closed:
            asyncio.get_running_loop().create_task(ws.close())

    # -- the loop --------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        name, s = self.spec.name, self.settings
        gate = getattr(self.link, "connect_gate", None)  # the venue's connect_limit, if any
        while not stop.is_set() and self._stopped is None:
            if gate is not None:
                wait = gate.reserve()
                if wait > 0:
                    self.status.state = "paced"
                    await _sleep_or_stop(wait, stop)
                    if stop.is_set():
                        break
            self.status.state = "connecting"
            try:
                # connect_timeout bounds the whole handshake: a server that accepts TCP and
                # never answers the upgrade must not hold the connection.
                ws = await asyncio.wait_for(self.http.ws_connect(
                    self.spec.url, headers=self.spec.headers, heartbeat=s.ping_interval,
                    max_msg_size=s.max_frame_bytes, compress=0, decode_text=False,
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0),
                    autoping=True), s.connect_timeout)
            except (TimeoutError, aiohttp.ClientError, OSError) as e:
                reason = f"{type(e).__name__}: {e}" if str(e) else (
                    f"{type(e).__name__}: no handshake within {s.connect_timeout:g}s")
                self.status.last_error = reason
                self.link.event(name, "connect_failed", reason=reason, url=self.spec.url)
                await _sleep_or_stop(self._backoff.next(), stop)
                continue
            self._ws = ws
            self._hint = None
            self.status.state = "open"
            self.status.connects += 1
            if self.status.connects > 1:
                self.status.reconnects += 1
            self._drain_queue()  # messages queued for a previous socket are void
            # Venue send limits are per session: a new socket starts with a fresh window, so
            # resubscribing after a reconnect is not held back by the old socket's sends (a
            # venue that still objects says rate_limited, which the adapter honours).
            self._sent_times.clear()
            self.link.event(name, "connected", url=self.spec.url)
            sender = asyncio.create_task(self._send_loop(ws))
            code, reason = await self._read(ws, stop)
            sender.cancel()
            if not ws.closed:
                await ws.close()
            self._ws = None
            code = code if code is not None else ws.close_code
            self.status.state = "down"
            self.link.event(name, "disconnected", code=code, reason=reason)
            if stop.is_set() or self._stopped is not None:
                break
            if self._hint is not None:
                delay = max(0.0, self._hint[0] - time.monotonic())
            else:
                delay = self._backoff.next()
            await _sleep_or_stop(delay, stop)
        for t in self._timers:
            t.cancel()
        if self._stopped is not None:
            self.status.state = "stopped"
            self.link.event(name, "stopped", reason=self._stopped)
        else:
            self.status.state = "closed"

    async def _read(self, ws: aiohttp.ClientWebSocketResponse,
                    stop: asyncio.Event) -> tuple[int | None, str]:
        """Receive until the socket ends. The hot path is one ``await ws.receive()`` per
        frame; stop and idle checks live in a watchdog task, not in per-frame timeouts."""
        name, st, link = self.spec.name, self.status, self.link
        why: list[tuple[int | None, str]] = []
        dog = asyncio.create_task(self._watchdog(ws, stop, why))
        try:
            while True:
                msg = await ws.receive()
                t = msg.type
                if t is aiohttp.WSMsgType.TEXT or t is aiohttp.WSMsgType.BINARY:
                    ts = time.time_ns()
                    data = msg.data
                    st.frames += 1
                    st.bytes += len(data)
                    if st.first_ts is None:
                        st.first_ts = ts
                    st.last_ts = ts
                    link.frame(name, data, ts)
                    if link.paused:
                        await link.resumed()
                    continue
                if why:
                    return why[0]
                if t is aiohttp.WSMsgType.ERROR:
                    err = msg.data
                    if isinstance(err, aiohttp.WebSocketError) and err.code == 1009:
                        link.event(name, "frame_too_large", code=1009, reason=str(err))
                        return 1009, f"frame larger than {self.settings.max_frame_bytes} bytes"
                    st.last_error = f"{type(err).__name__}: {err}"
                    return ws.close_code, st.last_error
                # CLOSE / CLOSING / CLOSED
                return ws.close_code, str(msg.extra or "")
        finally:
            dog.cancel()

    async def _watchdog(self, ws: aiohttp.ClientWebSocketResponse, stop: asyncio.Event,
                        why: list[tuple[int | None, str]]) -> None:
        idle = self.settings.idle_timeout
        st = self.status
        opened = time.time_ns()
        tick = min(1.0, idle / 4)
        while True:
            await _sleep_or_stop(tick, stop)
            if stop.is_set():
                why.append((1000, "recorder stopping"))
                await ws.close()
                return
            if self.link.paused:
                opened = time.time_ns()  # not reading by choice: silence proves nothing
            last = st.last_ts if st.last_ts and st.last_ts > opened else opened
            if time.time_ns() - last > idle * 1e9:
                # A frame proves the link works; silence this long means a dead link that
                # TCP has not noticed (or a venue that stopped sending): reconnect.
                self.link.event(self.spec.name, "idle_timeout", reason=f"no frame for {idle:g}s")
                why.append((None, "idle timeout"))
                await ws.close()
                return
            if st.last_ts and st.last_ts > opened:
                self._backoff.reset()  # data flowed on this socket: forget earlier failures

    async def _send_loop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        times = self._sent_times
        limit = self.pacing
        while True:
            send = await self._queue.get()
            if send.paced and limit is not None:
                n, per = limit
                now = time.monotonic()
                while times and now - times[0] >= per:
                    times.popleft()
                if len(times) >= n:
                    await asyncio.sleep(per - (now - times[0]) + 0.001)
                    times.popleft()
                times.append(time.monotonic())
            try:
                await ws.send_str(send.text)
            except (ConnectionError, RuntimeError, aiohttp.ClientError):
                return
            self.link.sent(self.spec.name, send, time.time_ns())

    def _drain_queue(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()


def _undelayed(send: Send) -> Send:
    return Send(send.conn, send.text, send.paced, 0.0, send.secret_keys)


async def _sleep_or_stop(delay: float, stop: asyncio.Event) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=delay)
    except TimeoutError:
        pass

