"""Prometheus metrics of a recording run: a node-exporter textfile and, optionally, HTTP.

Cron jobs are watched with the node-exporter's textfile collector: each run rewrites
``<data_dir>/metrics/recorder.prom`` (``[recorder].metrics_file``) with
``prometheus_client.write_to_textfile`` (a temporary file renamed over the old one, so the
collector never reads half a file) every ``metrics_interval`` and once more at the very end,
after the lake builder has finished. ``record --metrics-port N`` serves the same registry
over HTTP for long runs.

Every series carries ``config`` (the config file as given) and ``venue``; connection series
carry ``conn``. Connections an adapter opens at run time (one SSE stream per quote request)
are summed under ``conn="(streams)"`` so the file's size stays bounded. A run that recorded
only some venues (``record --venue``) writes ``recorder-<venue>-<venue>.prom`` instead, so
two such runs never overwrite each other (the collector reads every ``*.prom`` file of the
folder; a configured ``metrics_file`` gets the same suffix). During a handover (the next cron run starting before this one ends) the newer run
owns the file: an older run stops writing it once a newer live run has.

The values are computed on the event loop (:meth:`RunMetrics.refresh`) and the collector
hands out that snapshot, so the HTTP thread never reads the loop's objects.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from recorder.runs import run_alive

if TYPE_CHECKING:
    from recorder.collect import VenueRun

STREAMS = "(streams)"
_RUN_INFO = re.compile(r'^recorder_run_info\{[^}]*run_id="([^"]+)"', re.M)
_RUN_START = re.compile(r'^recorder_run_start_timestamp_seconds\{[^}]*\} (\S+)', re.M)


def metrics_path(data_dir: Path, setting: str, selected: Iterable[str] = ()) -> Path | None:
    """Where a run writes its textfile: ``setting`` if given ("off": nowhere), else
    ``<data_dir>/metrics/recorder.prom``; for a ``--venue`` selection the venues are added
    to the name (``recorder-derive-mackinac.prom``)."""
    if setting == "off":
        return None
    path = Path(setting) if setting else data_dir / "metrics" / "recorder.prom"
    names = sorted(selected)
    if names:  # two --venue runs of one config never share a file
        path = path.with_name(f"{path.stem}-{'-'.join(names)}{path.suffix}")
    return path


class RunMetrics:
    """The metrics of one run. ``refresh`` rebuilds the snapshot from the run's live state;
    ``write`` puts it in the textfile; ``serve`` exposes it over HTTP."""

    def __init__(self, data_dir: Path, path: Path | None, config: str, run_id: str,
                 host: str, started_ns: int) -> None:
        self.data_dir = data_dir
        self.path = path
        self.config = config
        self.run_id = run_id
        self.host = host
        self.started_ns = started_ns
        self.registry = CollectorRegistry(auto_describe=False)
        self._families: list[Metric] = []
        self.registry.register(self)  # type: ignore[arg-type]
        self._server: Any = None
        self.skipped = False  # a newer run owns the file

    # the collector protocol
    def collect(self) -> Iterator[Metric]:
        return iter(self._families)

    def refresh(self, runs: list[VenueRun], manifest: dict[str, Any]) -> None:
        """Recompute every series from the run's state and its manifest (status, exit)."""
        cfg = self.config
        now = time.time_ns()
        status = str(manifest.get("status", "running"))
        ended_ns = manifest.get("ended_ns")
        exit_code = (manifest.get("exit") or {}).get("code")
        venues = list(manifest.get("venues") or {})

        def gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=["config", "venue", *labels])

        def counter(name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
            return CounterMetricFamily(name, doc, labels=["config", "venue", *labels])

        info = gauge("recorder_run_info", "The run recording this venue (value 1); status is "
                     "running, then complete, failed or crashed", ["run_id", "host", "status"])
        start = gauge("recorder_run_start_timestamp_seconds", "When the run started", [])
        end = gauge("recorder_run_end_timestamp_seconds", "When the run ended (absent while "
                    "it records)", [])
        running = gauge("recorder_run_running", "1 while the run records", [])
        code = gauge("recorder_run_exit_code", "The run's exit code: 0 ok, 1 local or venue "
                     "fault, 2 user fault (absent while it records)", [])
        for v in venues:
            info.add_metric([cfg, v, self.run_id, self.host, status], 1)
            start.add_metric([cfg, v], self.started_ns / 1e9)
            running.add_metric([cfg, v], 1 if ended_ns is None else 0)
            if ended_ns is not None:
                end.add_metric([cfg, v], ended_ns / 1e9)
            if exit_code is not None and ended_ns is not None:
                code.add_metric([cfg, v], exit_code)

        frames = counter("recorder_frames", "Frames received", ["conn"])
        rbytes = counter("recorder_received_bytes", "Bytes of frames received", ["conn"])
        rows = counter("recorder_rows", "Rows the venue's adapter made of them (the lake "
                       "builder writes the same rows from the journal)", ["conn"])
        reconn = counter("recorder_reconnects", "Reconnections", ["conn"])
        up = gauge("recorder_connection_up", "1 while the connection is open", ["conn"])
        last = gauge("recorder_last_frame_timestamp_seconds", "Receive time of the "
                     "connection's last frame", ["conn"])
        age = gauge("recorder_seconds_since_last_frame", "Seconds since the connection's "
                    "last frame (since the run started when none came yet)", ["conn"])
        jrec = counter("recorder_journal_records", "Records journaled (frames in and out, "
                       "transport events)", [])
        jbytes = counter("recorder_journal_bytes", "Bytes journaled, before compression", [])
        jdisk = counter("recorder_journal_written_bytes", "Compressed journal bytes written "
                        "to disk", [])
        pressure = gauge("recorder_journal_backpressure", "1 while the journal's disk is "
                         "behind and sockets are not read", [])
        gaps = counter("recorder_gaps", "Recorded gaps: reconnects, sequence gaps and the "
                       "time since the previous run of the config (run_gap)", [])
        events = counter("recorder_session_events", "session_events rows by event", ["event"])
        unh = counter("recorder_unhandled", "unhandled rows by reason", ["reason"])
        lag = gauge("recorder_lake_builder_lag_records", "Journal records the lake builder "
                    "has not built yet", [])
        built = counter("recorder_lake_built_records", "Journal records the lake builder "
                        "has built", [])
        lake_rows = counter("recorder_lake_rows", "Rows the lake builder committed to the "
                            "lake, per table", ["table"])
        complete = gauge("recorder_lake_build_complete", "1 once the lake builder has built "
                         "the whole run", [])
        for r in runs:
            lv = [cfg, r.name]
            agg: dict[str, list[float]] = {}
            for name, c in list(r.conns.items()):
                st = c.status
                key = name if name in r.static_conns else STREAMS
                a = agg.setdefault(key, [0, 0, 0, 0, 0, 0])
                a[0] += st.frames
                a[1] += st.bytes
                a[2] += r.rows_by_conn.get(name, 0)
                a[3] += st.reconnects
                a[4] += st.state == "open"
                a[5] = max(a[5], st.last_ts or 0)
            if r.ended.count:
                a = agg.setdefault(STREAMS, [0, 0, 0, 0, 0, 0])
                a[0] += r.ended.frames
                a[1] += r.ended.bytes
                a[3] += r.ended.reconnects
                a[5] = max(a[5], r.ended.last_ts or 0)
            for name, (f, b, n, rc, u, lt) in sorted(agg.items()):
                frames.add_metric([*lv, name], f)
                rbytes.add_metric([*lv, name], b)
                rows.add_metric([*lv, name], n)
                reconn.add_metric([*lv, name], rc)
                up.add_metric([*lv, name], u)
                if lt:
                    last.add_metric([*lv, name], lt / 1e9)
                age.add_metric([*lv, name], (now - (lt or self.started_ns)) / 1e9)
            jrec.add_metric(lv, r.journal.records)
            jbytes.add_metric(lv, r.journal.bytes_in)
            jdisk.add_metric(lv, r.journal.bytes_written)
            pressure.add_metric(lv, 1 if r.paused else 0)
            gaps.add_metric(lv, r.gaps)
            for ev, n in sorted(r.events.items()):
                events.add_metric([*lv, ev], n)
            for why, n in sorted(r.unhandled.items()):
                unh.add_metric([*lv, why], n)
            st = r.build_state or {}
            done = st.get("records", r.built_records)
            built.add_metric(lv, done)
            lag.add_metric(lv, 0 if st.get("complete") else max(0, r.journal.records - done))
            complete.add_metric(lv, 1 if st.get("complete") else 0)
            for t, n in sorted((st.get("tables") or {}).items()):
                lake_rows.add_metric([*lv, t], n)
        self._families = [info, start, end, running, code, frames, rbytes, rows, reconn, up,
                          last, age, jrec, jbytes, jdisk, pressure, gaps, events, unh, lag,
                          built, lake_rows, complete]

    def write(self) -> bool:
        """Replace the textfile with the snapshot (atomically: a temporary file renamed).
        Returns False when a newer live run owns the file (a handover) and it was left."""
        if self.path is None:
            return False
        if self._newer_owner():
            self.skipped = True
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(self.path), self.registry)
        return True

    def _newer_owner(self) -> bool:
        assert self.path is not None
        try:
            text = self.path.read_text()
        except (FileNotFoundError, UnicodeDecodeError):
            return False
        starts = [float(x) for x in _RUN_START.findall(text)]
        owners = set(_RUN_INFO.findall(text)) - {self.run_id}
        if not owners or not starts or max(starts) <= self.started_ns / 1e9:
            return False
        return any(run_alive(self.data_dir, r) for r in owners)

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        """Serve the registry over HTTP (``/metrics``) until :meth:`close`."""
        from prometheus_client import start_http_server

        self._server = start_http_server(port, addr=addr, registry=self.registry)

    def close(self) -> None:
        if self._server is not None:
            server = self._server[0] if isinstance(self._server, tuple) else None
            if server is not None:
                server.shutdown()
                server.server_close()
            self._server = None
