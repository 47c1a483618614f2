"""Journal records -> typed rows (+ actions). The same path runs live, in recovery and in
rebuild, so a lake rebuilt from the journal equals the one written live.

Transport events are journaled as ``KIND_META`` JSON records (``{"ev": "connected", ...}``),
which is what lets ``session_events`` (including reconnect gaps with both ends) be rebuilt.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from recorder.actions import NO_ACTIONS, Action
from recorder.catalogue import Adapter
from recorder.journal import KIND_IN, KIND_META, KIND_OUT, KIND_REST, decode_rest
from recorder.rows import Row, session

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
        # From the run's `run_start` record: the gap since the previous run of the same
        # config and venue, closed by this run's first frame.
        self._run_gap: dict[str, Any] | None = None

    def saw(self, conn: str, ts_recv: int) -> None:
        """An inbound frame the adapter was not shown (the collector's data-only path): it
        still marks the connection alive for the next gap's start."""
        self._last_in[conn] = ts_recv

    def process(self, kind: int, conn: str, ts_recv: int,
                data: bytes) -> tuple[list[Row], Sequence[Action]]:
        if kind == KIND_IN:
            self._last_in[conn] = ts_recv
            if self._run_gap is None:
                return self.adapter.on_frame(conn, data)
            rows, actions = self.adapter.on_frame(conn, data)
            return [*rows, self._close_run_gap(ts_recv)], actions
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
        if ev == "run_start":
            # Journaled by the collector before any connection: which run of the same
            # config recorded this venue before, and its last receive time (from its
            # manifest or journal). A predecessor still recording overlaps us: no gap.
            prev_end = m.get("previous_last_recv")
            if prev_end is not None and not m.get("previous_alive"):
                self._run_gap = m
            return [], NO_ACTIONS
        if ev in _PLAIN_META:
            return [session(ev, code=_s(m.get("code")), reason=m.get("reason"),
                            url=m.get("url"), retry_after_s=m.get("after"))], NO_ACTIONS
        return [session("error", reason=f"unknown meta event {ev!r}", detail=m)], NO_ACTIONS


    def _close_run_gap(self, ts_recv: int) -> Row:
        m, self._run_gap = self._run_gap or {}, None
        start = int(m["previous_last_recv"])
        return session("run_gap", gap_start=start, gap_end=ts_recv,
                       reason=f"between runs of {m.get('config')}: the previous run "
                       f"{m.get('previous_run')} received its last frame "
                       f"{(ts_recv - start) / 1e9:.3f}s before this run's first",
                       detail={"previous_run": m.get("previous_run"),
                               "config": m.get("config"), "config_id": m.get("config_id")})


def _s(v: object) -> str | None:
    return None if v is None else str(v)
