"""Diffusal's public sockets, sans-I/O: which ``/ws/public`` connection holds which channel.

The venue caps a connection at 50 subscriptions and refuses more with 4029
(https://docs.diffusal.xyz/docs/api/websocket "Rate Limits"), so channels are spread over
``public-0``, ``public-1``, ... opening one more whenever all are full. When a server's cap
turns out lower than ours, :meth:`PublicSockets.refused` finds it by halving the refused
batch (a few messages, never a socket storm). The adapter turns the answers into actions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

MAX_SUBS = 50  # per connection (the venue's cap)


@dataclass
class PubConn:
    name: str
    channels: dict[str, None] = field(default_factory=dict)  # ordered set of assigned keys
    cap: int = MAX_SUBS
    open: bool = False


class PublicSockets:
    def __init__(self, prefix: str, cap: int) -> None:
        self.prefix = prefix
        self.cap = cap  # lowered when the server refuses with 4029
        self.conns: list[PubConn] = [PubConn(f"{prefix}-0", cap=cap)]
        self.chan_conn: dict[str, str] = {}
        self.dropped: dict[str, str] = {}  # channel -> why we stopped asking for it

    def get(self, conn: str) -> PubConn | None:
        for pc in self.conns:
            if pc.name == conn:
                return pc
        return None

    def assign(self, channels: Iterable[str]) -> tuple[list[str], dict[str, list[str]]]:
        """Give each new channel a connection with room. Returns the connections to open
        (all were full) and, per connection, the channels it was given."""
        opened: list[str] = []
        fresh: dict[str, list[str]] = {}
        for ch in channels:
            if ch in self.chan_conn or ch in self.dropped:
                continue
            pc = next((p for p in self.conns if len(p.channels) < p.cap), None)
            if pc is None:
                pc = PubConn(f"{self.prefix}-{len(self.conns)}", cap=self.cap)
                self.conns.append(pc)
                opened.append(pc.name)
            pc.channels[ch] = None
            self.chan_conn[ch] = pc.name
            fresh.setdefault(pc.name, []).append(ch)
        return opened, fresh

    def unassign(self, channels: Iterable[str], why: str | None = None) -> dict[str, list[str]]:
        """Forget channels; with ``why`` they are dropped for good (never asked for again).
        Returns, per open connection, the channels to unsubscribe (none when dropped: the
        server refused them)."""
        gone: dict[str, list[str]] = {}
        for ch in channels:
            name = self.chan_conn.pop(ch, None)
            if name is None:
                continue
            pc = self.get(name)
            if pc is not None:
                pc.channels.pop(ch, None)
                if pc.open and why is None:
                    gone.setdefault(name, []).append(ch)
            if why is not None:
                self.dropped[ch] = why
        return gone

    def refused(self, conn: str, chans: Sequence[str]) -> tuple[list[str], list[str]] | None:
        """``conn`` refused ``chans`` for its subscription cap: the server holds the channels
        acked before. Returns the channels to ask ``conn`` for again and those to move to
        other connections; None when ``conn`` is not a public socket. A single refused
        channel proves the socket full, and that cap then applies to every socket."""
        pc = self.get(conn)
        if pc is None:
            return None
        for c in chans:
            pc.channels.pop(c, None)
            self.chan_conn.pop(c, None)
        held = len(pc.channels)
        if len(chans) == 1:
            pc.cap = held
            self.cap = min(self.cap, max(1, held))
            for other in self.conns:
                other.cap = min(other.cap, self.cap) if other is not pc else held
            return [], list(chans)
        keep, move = list(chans[: len(chans) // 2]), list(chans[len(chans) // 2:])
        pc.cap = held + len(keep)
        for c in keep:
            pc.channels[c] = None
            self.chan_conn[c] = pc.name
        return keep, move
