"""The live status fits the terminal: no line wider than it, never taller, per-venue totals
once, each connection its own frames; plain lines when the output is not a terminal."""

from __future__ import annotations

import io

from rich.console import Console

from recorder import config as config_mod
from recorder.actions import ConnSpec
from recorder.collect import VenueRun
from recorder.status import StatusPrinter
from recorder.transport import TRANSPORTS
from recorder.venues import CATALOGUE
from tests.conftest import ROOT


def venue_runs(streams: int) -> list[VenueRun]:
    """The five simulated venues of conf/sim.toml as a run holds them (not started), with
    connections in every state and ``streams`` per-request Totalis streams open."""
    cfg = config_mod.load(ROOT / "conf" / "sim.toml", "/nonexistent")
    runs = []
    for i, v in enumerate(cfg.venues):
        spec = CATALOGUE.venue(v.adapter)
        adapter = spec.make_adapter(v.name, "ws://127.0.0.1:9", v.options,
                                    sim={"api_key": "k"})
        r = VenueRun(v, spec, adapter, cfg.recorder, "run")
        names = [f"conn-{j}" for j in range(1 + i)]
        if v.name == "totalis":
            names += [f"qr:{j:08x}-0000-4000-8000-{j:012x}" for j in range(streams)]
        for j, name in enumerate(names):
            c = TRANSPORTS["ws"](ConnSpec(name, "ws://127.0.0.1:9"), v.transport, r, None)
            c.status.state = ("open", "connecting", "down", "stopped")[j % 4]
            c.status.frames = 1000 * (i + 1) + j
            c.status.reconnects = j % 3
            c.status.last_gap = "12.5s 10:00:00" if j == 1 else ""
            r.conns[name] = c
        r.journal.records = 5000 * (i + 1)
        r.built_records = 4000 * (i + 1)
        r.records = 7777 + i
        runs.append(r)
    return runs


def render(printer: StatusPrinter, width: int, height: int) -> list[str]:
    buf = io.StringIO()
    con = Console(file=buf, width=width, height=height, force_terminal=True,
                  color_system=None, legacy_windows=False)
    con.print(printer.table(width, height))
    return buf.getvalue().rstrip("\n").split("\n")


def test_status_fits_80x24_with_a_line_per_venue_and_its_totals_once() -> None:
    runs = venue_runs(streams=150)
    printer = StatusPrinter(runs, io.StringIO(), interval=1.0)
    lines = render(printer, 80, 24)
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    assert len(lines) == 1 + 1 + len(runs)  # header, column names, one line per venue
    for r in runs:
        [line] = [ln for ln in lines if ln.startswith(r.name + " ")]
        frames = sum(c.status.frames for c in r.conns.values())
        assert f"{frames:,}" in line and f"{r.journal.records - r.built_records:,}" in line
        # every venue's total appears once: no connection line repeats it
        assert sum(f"{frames:,}" in ln for ln in lines) == 1


def test_connections_on_demand_are_cut_to_the_terminal_with_a_count_of_the_rest() -> None:
    runs = venue_runs(streams=150)
    printer = StatusPrinter(runs, io.StringIO(), connections=True)
    for width, height in ((80, 24), (60, 12), (120, 40)):
        lines = render(printer, width, height)
        assert len(lines) <= height - 1, (width, height, len(lines))
        assert all(len(line) <= width for line in lines), (width, max(lines, key=len))
        for r in runs:  # every venue keeps its line whatever the height
            assert any(ln.startswith(r.name + " ") for ln in lines)
        assert any("more" in ln for ln in lines)
    lines = render(printer, 80, 24)
    mackinac = runs[0]
    [conn] = mackinac.conns.values()
    at = next(i for i, ln in enumerate(lines) if ln.startswith("mackinac "))
    line = lines[at + 1]
    assert line.startswith("  conn-0")
    assert f"{conn.status.frames:,}" in line  # its own frames, not the venue's total
    # tall enough: every open connection of the small venues is listed
    lines = render(StatusPrinter(venue_runs(streams=0), io.StringIO(), connections=True),
                   100, 60)
    assert sum(ln.startswith("  conn-") for ln in lines) == sum(
        1 for r in venue_runs(0) for c in r.conns.values() if c.status.state != "stopped")
    assert any("(1 ended)" in ln for ln in lines)


def test_plain_lines_when_the_output_is_not_a_terminal() -> None:
    out = io.StringIO()
    printer = StatusPrinter(venue_runs(streams=3), out)
    assert not printer.tty and printer.interval == 10.0
    printer.draw()
    lines = out.getvalue().splitlines()
    assert len(lines) == 5 and "\x1b" not in out.getvalue()
    assert lines[0].split(" ", 1)[1].startswith("mackinac: 1/1 connections open, 1000 frames")

