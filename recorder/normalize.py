"""Journal records -> typed rows (+ actions). The same path runs live, in recovery and in
rebuild, so a lake rebuilt from the journal equals the one written live.

Transport events are journaled as ``KIND_META`` JSON records (``{"ev": "connected", ...}``),
which is what lets ``session_events`` (including reconnect gaps with both ends) be rebuilt.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from recorder.journal import KIND_IN, KIND_META, KIND_OUT, KIND_REST, decode_rest
from recorder.venues.base import NO_ACTIONS, Action, Adapter, Row, session

# Meta events the transport journals that become a session_events row as they are.
_PLAIN_META = {"connect_failed", "idle_timeout", "frame_too_large", "stopped", "error",
               "reconnect_hint", "resumed", "backpressure", "backpressure_end"}


def meta(ev: str, **fields: Any) -> bytes:
    return orjson.dumps({"ev": ev, **fields})


class Normalizer:
    def __init__(self, adapter: Adapter) -> None:
        self.adapter = adapter
        self._last_in: dict[str, int] = {}
        self._down_at: dict[str, int] = {}

    def process(self, kind: int, conn: str, ts_recv: int,
                data: bytes) -> tuple[list[Row], Sequence[Action]]:
        if kind == KIND_IN:
            self._last_in[conn] = ts_recv
            return self.adapter.on_frame(conn, data)
        if kind == KIND_REST:
            r = decode_rest(data)
            return self.adapter.on_response(conn, r.tag, r.status, r.body)
        if kind == KIND_OUT:
            # Our own outbound messages, as journaled (secrets redacted). An adapter that
            # matches answers to requests learns what was really sent here, live and on
            # rebuild alike (its offline instance cannot rebuild the requests from config).
            self.adapter.on_sent(conn, data)
            return [], NO_ACTIONS
        if kind != KIND_META:
            return [], NO_ACTIONS
        m = orjson.loads(data)
        ev = m.pop("ev")
        if ev == "connected":
            rows: list[Row] = [session("connected", url=m.get("url"))]
            down = self._down_at.pop(conn, None)
            if down is not None:
                rows.append(session(
                    "reconnected", gap_start=self._last_in.get(conn, down), gap_end=ts_recv,
                    reason=m.get("after"), url=m.get("url")))
            return rows, self.adapter.on_connected(conn)
        if ev == "disconnected":
            self.adapter.on_disconnected(conn)
            self._down_at[conn] = ts_recv
            return [session("disconnected", code=_s(m.get("code")), reason=m.get("reason"),
                            gap_start=self._last_in.get(conn))], NO_ACTIONS
        if ev in _PLAIN_META:
            return [session(ev, code=_s(m.get("code")), reason=m.get("reason"),
                            url=m.get("url"), retry_after_s=m.get("after"))], NO_ACTIONS
        return [session("error", reason=f"unknown meta event {ev!r}", detail=m)], NO_ACTIONS


def _s(v: object) -> str | None:
    return None if v is None else str(v)
