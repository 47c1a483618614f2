"""The one Server-Sent Events loop every venue shares, around the sans-I/O decoder of
:mod:`recorder.sse` (which follows the WHATWG standard and says how).

:class:`SseConnection` has the surface of :class:`~recorder.transport.ws.WsConnection`
(``(spec, settings, link, http, pacing)``, ``status``, ``submit(action)``, ``async run(stop)``):
an aiohttp streaming GET with the spec's headers, reconnect honouring the server's ``retry``
with backoff and jitter, resume from the last event id (both the ``?last_event_id=`` query
parameter some venues document and the standard ``Last-Event-ID`` header), an idle watchdog
fed by any byte (keep-alive comments included), and meta events to the link like the WS loop
(``connected``, ``resumed``, ``disconnected``, ``connect_failed``, ``idle_timeout``,
``frame_too_large``, ``stopped``) so that ``session_events`` shows every connect, drop and
resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time

import aiohttp
from yarl import URL

from recorder.actions import Action, ConnSpec, Reconnect, Send, Stop
from recorder.config import TransportSettings
from recorder.sse import SseBlockTooLarge, SseDecoder
from recorder.transport.ws import ConnStatus, Link, _sleep_or_stop

_STOP_GRACE = 2.0  # after Stop, read on this long for what the server still sends, then close


# --- the connection loop ---------------------------------------------------------------------

_TERMINAL_HTTP = frozenset(range(400, 500)) - {408, 425, 429}
_SAFE_HEADER = re.compile(r"^[\x20-\x7e]*$")


class SseConnection:
    """One SSE stream, reconnected and resumed until stopped. ``Send`` is refused (SSE is
    one-way); ``Reconnect`` and ``Stop`` behave as on the WebSocket loop, except that after
    ``Stop`` the stream is read for up to 2 s more so that events the server sends right
    before closing are not cut off. An adapter asks ``Stop`` only once the last event it needs
    arrived whole: after ``Stop``, a drop (even mid-event) ends the stream for good."""

    def __init__(self, spec: ConnSpec, settings: TransportSettings, link: Link,
                 http: aiohttp.ClientSession, pacing: tuple[int, float] | None = None) -> None:
        self.spec = spec
        self.settings = settings
        self.link = link
        self.http = http
        self.pacing = pacing  # unused: nothing is ever sent on an SSE stream
        self.status = ConnStatus()
        self.decoder = SseDecoder(settings.max_frame_bytes)
        self._attempt = 0
        self._rng = random.Random()
        self._hint: tuple[float, str] | None = None
        self._stopped: str | None = None
        self._stop_at: float | None = None
        self._wake = asyncio.Event()
        self._timers: list[asyncio.TimerHandle] = []
        self._last_bytes = 0.0
        self._flowed = False

    @property
    def last_event_id(self) -> str:
        return self.decoder.last_event_id

    # -- actions from the adapter ----------------------------------------------------------
    def submit(self, action: Action) -> None:
        if isinstance(action, Send):
            self.link.event(self.spec.name, "error",
                            reason="Send on an SSE stream ignored: SSE is server-to-client only")
        elif isinstance(action, Reconnect):
            self._hint = (time.monotonic() + action.after, action.reason)
            self.link.event(self.spec.name, "reconnect_hint", reason=action.reason,
                            after=action.after)
            self._timers.append(asyncio.get_running_loop().call_later(
                action.after + 1.0, self._wake.set))
        elif isinstance(action, Stop):
            if self._stopped is None:
                self._stopped = action.reason
                self._stop_at = time.monotonic() + _STOP_GRACE
                self._wake.set()

    # -- the loop --------------------------------------------------------------------------
    def _request(self) -> tuple[URL, dict[str, str], str]:
        url = URL(self.spec.url)
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache",
                   **self.spec.headers}
        last = self.decoder.last_event_id
        if last:
            # Both ways: Totalis documents ?last_event_id=, the standard (and EventSource)
            # uses the Last-Event-ID header; a server reads the one it knows.
            url = url.update_query(last_event_id=last)
            if _SAFE_HEADER.match(last):
                headers["Last-Event-ID"] = last
        return url, headers, last

    async def run(self, stop: asyncio.Event) -> None:
        name, s = self.spec.name, self.settings
        timeout = aiohttp.ClientTimeout(total=None, connect=s.connect_timeout,
                                        sock_read=None)
        while not stop.is_set() and self._stopped is None:
            self.status.state = "connecting"
            url, headers, resume = self._request()
            try:
                resp = await asyncio.wait_for(
                    self.http.get(url, headers=headers, timeout=timeout),
                    s.connect_timeout)
            except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as e:
                reason = f"{type(e).__name__}: {e}".rstrip(": ")
                self.status.last_error = reason
                self.link.event(name, "connect_failed", reason=reason, url=self.spec.url)
                await _sleep_or_stop(self._delay(failed=True), stop)
                continue
            ctype = resp.headers.get("Content-Type", "")
            if resp.status != 200 or not ctype.startswith("text/event-stream"):
                await self._refused(resp, ctype, stop)
                continue
            self._hint = None
            self._flowed = False
            self._last_bytes = time.monotonic()
            self.status.state = "open"
            self.status.connects += 1
            if self.status.connects > 1:
                self.status.reconnects += 1
            self.link.event(name, "connected", url=self.spec.url)
            if resume:
                self.link.event(name, "resumed", reason=f"last_event_id={resume}",
                                url=self.spec.url)
            try:
                reason = await self._read(resp, stop)
            finally:
                resp.close()
            lost = self.decoder.reset()
            if lost:
                # The standard: an event cut by the end of the stream is not dispatched.
                reason += f"; {lost} bytes of an unfinished event discarded"
            self.status.state = "down"
            self.link.event(name, "disconnected", code=None, reason=reason)
            if stop.is_set() or self._stopped is not None:
                break
            await _sleep_or_stop(self._delay(failed=not self._flowed), stop)
        for t in self._timers:
            t.cancel()
        if self._stopped is not None:
            self.status.state = "stopped"
            self.link.event(name, "stopped", reason=self._stopped)
        else:
            self.status.state = "closed"

    async def _refused(self, resp: aiohttp.ClientResponse, ctype: str,
                       stop: asyncio.Event) -> None:
        """A non-stream answer. 204 and 4xx (but 408/425/429) are final, as in the standard
        ("fail the connection"); 5xx, 429 and timeouts are retried, after Retry-After."""
        name = self.spec.name
        try:
            body = await asyncio.wait_for(resp.content.read(4096), 5.0)
        except (TimeoutError, aiohttp.ClientError, OSError):
            body = b""
        finally:
            resp.close()
        code = resp.status
        text = body.decode("utf-8", "replace").strip()
        if code == 200:
            reason = f"not an event stream (Content-Type {ctype!r})"
        else:
            reason = f"HTTP {code} {resp.reason or ''}".strip() + (f": {text}" if text else "")
        self.status.last_error = reason
        self.link.event(name, "connect_failed", code=code, reason=reason, url=self.spec.url)
        if code == 204 or code == 200 or code in _TERMINAL_HTTP:
            self._stopped = (f"HTTP {code}: the server ended the stream" if code == 204
                             else reason)
            return
        delay = self._delay(failed=True)
        after = resp.headers.get("Retry-After", "")
        if after.isdigit():
            delay = max(delay, float(after))
        await _sleep_or_stop(delay, stop)

    def _delay(self, failed: bool) -> float:
        """The server's ``retry`` (else backoff_initial), never shortened; doubled after each
        failed attempt up to backoff_max; plus up to 25 % jitter so recorders spread out."""
        if self._hint is not None:
            return max(0.0, self._hint[0] - time.monotonic())
        s = self.settings
        hint = None if self.decoder.retry_ms is None else self.decoder.retry_ms / 1000.0
        if not failed:
            self._attempt = 0
            base = s.backoff_initial if hint is None else hint
        else:
            base = max(hint or 0.0, s.backoff_initial)
            base = max(hint or 0.0, min(s.backoff_max, base * 2 ** self._attempt))
            self._attempt += 1
        return base * (1.0 + 0.25 * self._rng.random())

    async def _read(self, resp: aiohttp.ClientResponse, stop: asyncio.Event) -> str:
        """Read until the stream ends; a watchdog (not per-read timeouts) handles stop, Stop,
        venue hints and idleness, so the hot path is one await per network read."""
        pump = asyncio.create_task(self._pump(resp))
        stopping = asyncio.create_task(stop.wait())
        idle = self.settings.idle_timeout
        tick = min(1.0, idle / 4)
        try:
            while True:
                self._wake.clear()
                woke = asyncio.create_task(self._wake.wait())
                wait = tick
                if self._stop_at is not None:
                    wait = max(0.0, min(wait, self._stop_at - time.monotonic()))
                done, _ = await asyncio.wait({pump, stopping, woke}, timeout=wait,
                                             return_when=asyncio.FIRST_COMPLETED)
                woke.cancel()
                if pump in done:
                    return pump.result()
                now = time.monotonic()
                if stopping in done:
                    return "recorder stopping"
                if self._stop_at is not None and now >= self._stop_at:
                    return f"stopped: {self._stopped}"
                if self._hint is not None and now >= self._hint[0] + 1.0:
                    return f"venue hint: {self._hint[1]}"
                if self.link.paused:
                    self._last_bytes = now  # not reading by choice: silence proves nothing
                elif now - self._last_bytes > idle:
                    # Keep-alive comments count: silence this long is a dead link (or a venue
                    # that stopped sending); reconnect and resume.
                    self.link.event(self.spec.name, "idle_timeout",
                                    reason=f"nothing received for {idle:g}s")
                    return "idle timeout"
        finally:
            for t in (pump, stopping):
                if not t.done():
                    t.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await t

    async def _pump(self, resp: aiohttp.ClientResponse) -> str:
        name, st, link, dec = self.spec.name, self.status, self.link, self.decoder
        try:
            async for chunk in resp.content.iter_any():
                self._last_bytes = time.monotonic()
                self._flowed = True
                st.bytes += len(chunk)
                try:
                    blocks = dec.feed(chunk)
                except SseBlockTooLarge as e:
                    link.event(name, "frame_too_large", reason=str(e))
                    return f"event larger than {self.settings.max_frame_bytes} bytes"
                if not blocks:
                    continue
                ts = time.time_ns()
                if st.first_ts is None:
                    st.first_ts = ts
                st.last_ts = ts
                st.frames += len(blocks)
                for block in blocks:
                    link.frame(name, block, ts)
                if link.paused:  # the journal's disk is behind: stop reading (backpressure)
                    await link.resumed()
                    self._last_bytes = time.monotonic()
            return "server closed the stream"
        except (aiohttp.ClientError, ConnectionError, OSError) as e:
            st.last_error = f"{type(e).__name__}: {e}"
            return st.last_error
