"""Server-Sent Events: a sans-I/O decoder and the one SSE loop every venue shares.

The decoder follows the WHATWG HTML standard, "Server-sent events", section "Parsing an event
stream" (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):

- the stream is UTF-8; one leading BOM is dropped; lines end in CRLF, LF or CR (a CRLF may be
  split across two network reads);
- a blank line dispatches the event; lines starting with ``:`` are comments (servers send them
  as keep-alives); ``field: value`` with one optional space after the colon, a line without a
  colon is a field with an empty value; unknown fields are ignored;
- ``data`` lines are joined with LF; a block without ``data`` dispatches no event;
- ``id`` sets the last event id unless the value contains NUL; ``id:`` with an empty value
  resets it; an event *without* an ``id`` line keeps the previous one (it is never reset by
  omission); ``retry`` sets the reconnection time when it is all ASCII digits;
- the last event id only takes effect when its block is complete: a block cut by a dropped
  connection is discarded whole and never emitted, its id never used to resume.

What the journal gets is the raw bytes of each complete block that carries at least one field
(comment-only blocks are keep-alives: counted, not journaled). Rebuilds re-parse exactly those
bytes with :func:`parse_event`, so an adapter fixed later sees what arrived.

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
from dataclasses import dataclass

import aiohttp
from yarl import URL

from recorder.actions import Action, ConnSpec, Reconnect, Send, Stop
from recorder.config import TransportSettings
from recorder.transport.ws import ConnStatus, Link, _sleep_or_stop

_TERM = re.compile(rb"\r\n|\r|\n")
_TERM_STR = re.compile(r"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"
_CR, _COLON = 13, 58
_STOP_GRACE = 2.0  # after Stop, read on this long for what the server still sends, then close


class SseBlockTooLarge(ValueError):
    """An unfinished event grew beyond the configured maximum."""


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One parsed block. ``data`` is None when the block had no ``data`` line (then it
    dispatches no event, but its ``id``/``retry`` still count). ``id`` is the block's own
    ``id`` field (None if it had none, ``""`` for an explicit reset)."""

    event: str
    data: str | None
    id: str | None
    retry: int | None

    @property
    def dispatches(self) -> bool:
        return self.data is not None


def parse_event(block: bytes | str) -> SseEvent:
    """Parse one event block (as the decoder emits it, blank line included).

    Parsing stops at the first blank line: a block holds one event."""
    text = block.decode("utf-8", "replace") if isinstance(block, bytes | bytearray) else block
    event = ""
    data: list[str] = []
    ev_id: str | None = None
    retry: int | None = None
    for line in _TERM_STR.split(text):
        if not line:
            if data or event or ev_id is not None or retry is not None:
                break
            continue  # a blank line before anything (a stray CRLF half): not the end yet
        if line[0] == ":":
            continue  # comment
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id":
            if "\x00" not in value:
                ev_id = value
        elif name == "retry":
            if value and value.isascii() and value.isdigit():
                retry = int(value)
        # any other field name is ignored, as the standard says
    return SseEvent(event or "message", "\n".join(data) if data else None, ev_id, retry)


class SseDecoder:
    """Bytes in, complete raw event blocks out. Keeps the WHATWG "last event ID string" and
    the reconnection time across connections; :meth:`reset` drops an unfinished block."""

    def __init__(self, max_block: int = 16 * 1024 * 1024) -> None:
        self.max_block = max_block
        self.last_event_id = ""
        self.retry_ms: int | None = None
        self.keepalives = 0  # comment-only blocks seen
        self.blocks = 0
        self._buf = bytearray()  # the unfinished block (after compaction, it starts at 0)
        self._pos = 0  # start of the first line not yet processed
        self._fields = False  # the unfinished block has a field line
        self._comment = False  # ... or a comment line
        self._skip_lf = False  # the last block ended with a CR: a leading LF completes it
        self._at_start = True  # a BOM may come first

    def feed(self, chunk: bytes) -> list[bytes]:
        """Feed bytes as they arrive; returns the complete blocks that carry a field."""
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        buf = self._buf
        buf += chunk
        if self._at_start:
            if len(buf) < 3 and _BOM.startswith(bytes(buf)):
                return []  # could still be a BOM
            self._at_start = False
            if buf[:3] == _BOM:
                del buf[:3]
        out: list[bytes] = []
        pos = self._pos
        start = 0
        n = len(buf)
        search = _TERM.search
        while True:
            m = search(buf, pos)
            if m is None:
                break
            a, b = m.span()
            if b == n and buf[a] == _CR:
                if a > pos:
                    break  # "...\r" at the end of what we have: wait for a possible "\n"
                # A blank line ending in CR: dispatch now (no waiting for the next read); an
                # LF at the start of the next read is the rest of this CRLF.
                self._skip_lf = True
            if a == pos:  # blank line: end of block
                if self._fields:
                    out.append(bytes(buf[start:b]))
                elif self._comment:
                    self.keepalives += 1
                self._fields = self._comment = False
                start = b
            elif buf[pos] == _COLON:
                self._comment = True
            else:
                self._fields = True
            pos = b
        if start:
            del buf[:start]
            pos -= start
        self._pos = pos
        if len(buf) > self.max_block:
            size = len(buf)
            self.reset()
            raise SseBlockTooLarge(f"unfinished event of {size} bytes exceeds {self.max_block}")
        for block in out:
            ev = parse_event(block)
            if ev.id is not None:
                self.last_event_id = ev.id
            if ev.retry is not None:
                self.retry_ms = ev.retry
        self.blocks += len(out)
        return out

    @property
    def pending(self) -> int:
        """Bytes of an unfinished block (comments and blank lines included)."""
        return len(self._buf)

    def reset(self) -> int:
        """The connection ended: discard the unfinished block (never emitted) and return its
        size. The last event id and the retry time survive, as the standard says."""
        n = len(self._buf)
        self._buf = bytearray()
        self._pos = 0
        self._fields = self._comment = self._skip_lf = False
        self._at_start = True
        return n


# --- the connection loop ---------------------------------------------------------------------

_TERMINAL_HTTP = frozenset(range(400, 500)) - {408, 425, 429}
_SAFE_HEADER = re.compile(r"^[\x20-\x7e]*$")


class SseConnection:
    """One SSE stream, reconnected and resumed until stopped. ``Send`` is refused (SSE is
    one-way); ``Reconnect`` and ``Stop`` behave as on the WebSocket loop, except that after
    ``Stop`` the stream is read for up to 2 s more so that events the server sends right
    before closing (a terminal ``status`` then its specific event) are not cut off."""

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
