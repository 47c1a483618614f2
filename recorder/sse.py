"""Server-Sent Events: the sans-I/O decoder (bytes in, events out; no sockets, no clock).

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

The connection loop that feeds it is :class:`recorder.transport.sse.SseConnection`; this module
imports no network library, so the lake builder and ``rebuild`` parse SSE without aiohttp.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TERM = re.compile(rb"\r\n|\r|\n")
_TERM_STR = re.compile(r"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"
_CR, _COLON = 13, 58


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
