"""Command line: ``recorder record|demo|build|sim|journal|query|replay|rebuild|recover|views``."""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
from pathlib import Path

import click
import orjson

from recorder import config as config_mod
from recorder.errors import ConfigError, RecorderError

EXAMPLE_QUERY = Path(__file__).resolve().parent.parent / "queries" / "mackinac_market_summary.sql"


def _fail(e: RecorderError) -> None:
    click.echo(f"recorder: {e.one_line()}", err=True)
    sys.exit(2 if e.fault == "user" else 1)


@click.group()
def main() -> None:
    """Record trading venues into a journal and a typed Parquet lake; query and replay it."""


def _load(config: str, data_dir: str | None) -> config_mod.Config:
    return config_mod.load(config, data_dir)


def _run(config: str, duration: str | None, data_dir: str | None, quiet: bool) -> int:
    from recorder.record import record

    try:
        cfg = _load(config, data_dir)
        seconds = config_mod.parse_duration(duration) if duration else None
        result = asyncio.run(record(cfg, seconds, live_status=not quiet))
    except RecorderError as e:
        _fail(e)
    except KeyboardInterrupt:
        return 130
    m = result.manifest
    if result.exit_code:
        click.echo(f"recorder: {result.reason}", err=True)
        return result.exit_code
    click.echo(f"run {result.run_id}: {sum(m['tables'].values())} rows in "
               f"{len(m['tables'])} tables, {m['reconnects']} reconnects, {m['gaps']} gaps, "
               f"{m['errors']} errors; manifest {cfg.recorder.data_dir}/runs/{result.run_id}.json",
               err=True)
    return 0


@main.command()
@click.option("--config", "-c", default="conf/sim.toml", show_default=True)
@click.option("--duration", "-d", help="stop after this long (90s, 55m, 1h); default: until "
              "SIGTERM/SIGINT")
@click.option("--data-dir", help="override [recorder].data_dir")
@click.option("--quiet", is_flag=True, help="no live status")
def record(config: str, duration: str | None, data_dir: str | None, quiet: bool) -> None:
    """Record the venues of CONFIG until the deadline or a signal, then write a manifest."""
    sys.exit(_run(config, duration, data_dir, quiet))


@main.command()
@click.option("--config", "-c", default="conf/sim.toml", show_default=True)
@click.option("--duration", "-d", default="20s", show_default=True)
@click.option("--data-dir", default="data", show_default=True)
def demo(config: str, duration: str, data_dir: str) -> None:
    """Record for a short while, then show what was recorded and an example query."""
    code = _run(config, duration, data_dir, False)
    if code:
        sys.exit(code)
    from recorder.duck import connect, tables_with_rows

    con = connect(data_dir)
    click.echo("\nRows per table (whole lake, including earlier runs):")
    for name, n in tables_with_rows(con):
        click.echo(f"  {name:<40} {n:>10}")
    click.echo(f"\nExample research query ({EXAMPLE_QUERY.relative_to(Path.cwd()) if EXAMPLE_QUERY.is_relative_to(Path.cwd()) else EXAMPLE_QUERY}):")
    click.echo(con.sql(EXAMPLE_QUERY.read_text()).__str__())
    click.echo("Try: .venv/bin/recorder query \"SELECT * FROM session_events ORDER BY ts_recv\"")
    _demo_report(Path(data_dir))


def _sim_value(text: str) -> object:
    """``-o key=value``: the value is read as TOML (numbers, booleans, strings, arrays)."""
    import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


@main.command()
@click.argument("venue")
@click.option("--port", default=8765, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--seed", type=int, help="synthetic market seed")
@click.option("--rate", type=float, help="message-rate multiplier")
@click.option("--firehose", type=int, help="send N frames at full speed after the first "
              "subscribe (benchmarks)")
@click.option("--api-key", "api_keys", multiple=True, help="accepted key (repeatable)")
@click.option("--ledger", type=click.Path(), help="append every sent frame to this JSONL file")
@click.option("-o", "--option", "extra", multiple=True, metavar="KEY=VALUE",
              help="any other simulator option, e.g. -o ack=false")
def sim(venue: str, port: int, host: str, seed: int | None, rate: float | None,
        firehose: int | None, api_keys: tuple[str, ...], ledger: str | None,
        extra: tuple[str, ...]) -> None:
    """Run VENUE's simulator by itself on loopback (its server side, a seeded market)."""
    from recorder.venues import VENUES
    from recorder.venues import get as get_venue

    if venue not in VENUES or get_venue(venue).serve is None:
        _fail(ConfigError(f"no simulator named {venue!r} (known: "
                          f"{sorted(v for v in VENUES if get_venue(v).serve)})"))
    opts: dict[str, object] = {k: v for k, v in (("seed", seed), ("rate", rate),
                                                  ("firehose", firehose),
                                                  ("ledger_path", ledger)) if v is not None}
    if api_keys:
        opts["api_keys"] = api_keys
    for item in extra:
        key, eq, value = item.partition("=")
        if not eq:
            _fail(ConfigError(f"-o wants KEY=VALUE, got {item!r}"))
        opts[key.replace("-", "_")] = _sim_value(value)
    try:
        asyncio.run(get_venue(venue).serve(host, port, **opts))
    except TypeError as e:
        _fail(ConfigError(f"simulator {venue}: {e}"))
    except KeyboardInterrupt:
        pass


@main.group()
def journal() -> None:
    """Read the journal."""


@journal.command("cat")
@click.option("--data-dir", default="data", show_default=True)
@click.option("--venue")
@click.option("--run")
@click.option("--date")
@click.option("--kind", type=click.Choice(["in", "out", "meta"]), multiple=True)
@click.option("--limit", type=int, help="at most N records")
@click.option("--width", default=160, show_default=True, help="truncate frames; 0 = whole")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
def journal_cat(data_dir: str, venue: str | None, run: str | None, date: str | None,
                kind: tuple[str, ...], limit: int | None, width: int, as_json: bool) -> None:
    """Print journal records for a person (or as JSON lines), ending with torn-tail notes."""
    from recorder import journal as jr

    n = 0
    for path in jr.segments(Path(data_dir), venue, run, date):
        rep = jr.SegmentReport(path)
        for rec in jr.read_segment(path, rep):
            k = jr.KIND_NAMES[rec.kind]
            if kind and k not in kind:
                continue
            text = rec.data.decode("utf-8", "replace")
            if as_json:
                click.echo(orjson.dumps({"ts_recv": rec.ts_recv, "venue": path.parent.parent.name,
                                         "conn": rec.conn, "seq": rec.seq, "kind": k,
                                         "data": text}).decode())
            else:
                t = dt.datetime.fromtimestamp(rec.ts_recv / 1e9, dt.UTC).strftime(
                    "%Y-%m-%d %H:%M:%S.%f")
                if width and len(text) > width:
                    text = text[:width] + f"... (+{len(text) - width} chars)"
                click.echo(f"{t} {path.parent.parent.name}/{rec.conn} #{rec.seq:<6} {k:<4} {text}")
            n += 1
            if limit and n >= limit:
                return
        if rep.error:
            click.echo(f"# {path.name}: {rep.error}; {rep.torn_bytes} bytes after record "
                       f"{rep.records} not readable", err=True)


@main.command()
@click.argument("sql", required=False)
@click.option("-f", "--file", "file", type=click.Path(exists=True, dir_okay=False))
@click.option("--data-dir", default="data", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "parquet"]),
              default="table", show_default=True)
@click.option("--output", "-o", type=click.Path(), help="file for --format parquet")
def query(sql: str | None, file: str | None, data_dir: str, fmt: str, output: str | None) -> None:
    """Run SQL over the lake's views and print the result."""
    from recorder.duck import connect

    if bool(sql) == bool(file):
        _fail(ConfigError("give SQL or -f FILE (one of them)"))
    text = Path(file).read_text() if file else str(sql)
    con = connect(data_dir)
    try:
        rel = con.sql(text)
    except Exception as e:  # duckdb raises many types; all are the query's fault
        _fail(ConfigError(f"query failed: {e}"))
    if rel is None:
        return
    if fmt == "table":
        rel.show(max_rows=1000, max_width=10_000)
    elif fmt == "csv":
        click.echo(rel.pl().write_csv(), nl=False)
    elif fmt == "json":
        for row in rel.pl().iter_rows(named=True):
            click.echo(orjson.dumps(row, default=str).decode())
    else:
        if not output:
            _fail(ConfigError("--format parquet needs --output FILE"))
        rel.write_parquet(str(output))
        click.echo(f"wrote {output}", err=True)


@main.group()
def replay() -> None:
    """Replay recorded history (in-process records, or raw frames)."""


@replay.command("cat")
@click.option("--data-dir", default="data", show_default=True)
@click.option("--from", "start", help="start (ISO-8601 or ns since the epoch), on ts_recv")
@click.option("--to", "end", help="end, exclusive")
@click.option("--venue", "venues", multiple=True, help="repeatable; default all")
@click.option("--table", "tables", multiple=True, help="repeatable; default all of the venues")
@click.option("--order", type=click.Choice(["recv", "event"]), default="recv", show_default=True)
@click.option("--raw", is_flag=True, help="the journal's frames instead of typed records "
              "(needs one --venue)")
@click.option("--format", "fmt", type=click.Choice(["jsonl"]), default="jsonl", show_default=True)
def replay_cat(data_dir: str, start: str | None, end: str | None, venues: tuple[str, ...],
               tables: tuple[str, ...], order: str, raw: bool, fmt: str) -> None:
    """Write records (or raw frames) as JSON lines to stdout, for any other program."""
    from recorder import replay as rp

    def when(v: str | None) -> int | str | None:
        return int(v) if v and v.isdigit() else v

    out = click.get_text_stream("stdout")
    try:
        if raw:
            if len(venues) != 1:
                _fail(ConfigError("--raw needs exactly one --venue"))
            for rec in rp.raw_frames(data_dir, venues[0], when(start), when(end)):
                out.write(orjson.dumps({"ts_recv": rec.ts_recv, "venue": venues[0],
                                        "conn": rec.conn, "seq": rec.seq,
                                        "frame": rec.data.decode("utf-8", "replace")}).decode())
                out.write("\n")
            return
        for r in rp.records(data_dir, when(start), when(end), venues or None, tables or None,
                            order):
            out.write(orjson.dumps({"table": r.table, "venue": r.venue, "ts_recv": r.ts_recv,
                                    "ts_event": r.ts_event, "conn_id": r.conn_id,
                                    "recv_seq": r.recv_seq, "recv_sub": r.recv_sub,
                                    "run_id": r.run_id, **r.data}, default=str).decode())
            out.write("\n")
    except ValueError as e:
        _fail(ConfigError(str(e)))
    except BrokenPipeError:
        pass


@replay.command("serve")
@click.option("--data-dir", default="data", show_default=True)
@click.option("--venue", "venues", multiple=True, required=True, help="repeatable: several "
              "venues share one clock")
@click.option("--from", "start", help="start (ISO-8601 or ns), on ts_recv")
@click.option("--to", "end", help="end, exclusive")
@click.option("--speed", default=1.0, show_default=True, help="1 = recorded pace, 10 = ten "
              "times faster, 0 = as fast as possible")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", "ports", multiple=True, metavar="VENUE=PORT",
              help="fixed port per venue (default: a free one, printed)")
@click.option("--api-key", "api_keys", multiple=True, help="key the replay accepts "
              "(repeatable; default: the simulator's)")
def replay_serve(data_dir: str, venues: tuple[str, ...], start: str | None, end: str | None,
                 speed: float, host: str, ports: tuple[str, ...],
                 api_keys: tuple[str, ...]) -> None:
    """Serve recorded frames with each venue's own protocol, for an unchanged client."""
    from recorder.replay import serve_native

    def when(v: str | None) -> int | str | None:
        return int(v) if v and v.isdigit() else v

    port_map: dict[str, int] = {}
    for item in ports:
        name, eq, num = item.partition("=")
        if not eq or not num.isdigit():
            _fail(ConfigError(f"--port wants VENUE=PORT, got {item!r}"))
        port_map[name] = int(num)
    opts = {v: {"api_keys": api_keys} for v in venues} if api_keys else None

    def ready(urls: dict[str, str]) -> None:
        for v, u in urls.items():
            click.echo(f"{v} replay listening on {u} (speed {speed:g}; waiting for a "
                       f"subscriber)", err=True)

    try:
        sent = asyncio.run(serve_native(data_dir, venues, when(start), when(end), speed, host,
                                        port_map, opts, ready))
    except ValueError as e:
        _fail(ConfigError(str(e)))
    except KeyboardInterrupt:
        return
    click.echo(f"replayed {sum(sent.values())} frames: " + ", ".join(
        f"{v} {n}" for v, n in sent.items()), err=True)


@main.command()
@click.option("--data-dir", default="data", show_default=True)
@click.option("--run", "follow", help="also follow this (live) run until it ends and is built")
@click.option("--flush-seconds", type=float, default=5.0, show_default=True,
              help="a row group at least this often while following a live run")
@click.option("--rotate-seconds", type=float, default=300.0, show_default=True,
              help="a committed file per table at least this often")
@click.option("--max-rows", type=int, default=200_000, show_default=True)
@click.option("--max-bytes", type=int, default=128 << 20, show_default=True)
def build(data_dir: str, follow: str | None, flush_seconds: float, rotate_seconds: float,
          max_rows: int, max_bytes: int) -> None:
    """Build the lake from the journal: finish every run whose recorder or builder died
    (and, with --run, follow that run live). `record` starts one by itself."""
    from recorder.build import BuildSettings, main_build

    sys.exit(main_build(Path(data_dir), BuildSettings(
        flush_seconds=flush_seconds, rotate_seconds=rotate_seconds, max_rows=max_rows,
        max_bytes=max_bytes), follow))


@main.command()
@click.option("--date", required=True, help="YYYY-MM-DD")
@click.option("--data-dir", default="data", show_default=True)
@click.option("--force", is_flag=True, help="rebuild even where the lake holds rows the "
              "journal no longer has (they are lost)")
def rebuild(date: str, data_dir: str, force: bool) -> None:
    """Re-normalize DATE from the journal into a fresh folder and swap it in atomically."""
    from recorder.build import rebuild as do_rebuild

    try:
        counts = do_rebuild(Path(data_dir), date, lambda s: click.echo(s, err=True), force)
    except RecorderError as e:
        _fail(e)
    click.echo(f"rebuilt {date}: {sum(counts.values())} rows in {len(counts)} tables")


@main.command()
@click.option("--data-dir", default="data", show_default=True)
def recover(data_dir: str) -> None:
    """Finish the lake of runs that died (`recorder build` without --run; record does it too)."""
    from recorder.build import build as do_build

    try:
        done = do_build(Path(data_dir), log=lambda s: click.echo(s, err=True))
    except RecorderError as e:
        _fail(e)
    click.echo(f"recovered {len(done)} venue run(s)")


@main.command()
@click.option("--write", is_flag=True, help="rewrite queries/views.sql")
def views(write: bool) -> None:
    """Print (or write) the views generated from the schema registry."""
    from recorder.duck import VIEWS_FILE, render_views

    sql = render_views()
    if write:
        VIEWS_FILE.write_text(sql)
        click.echo(f"wrote {VIEWS_FILE}", err=True)
    else:
        click.echo(sql)



@main.command()
@click.option("--data-dir", default="data", show_default=True)
@click.option("--date", help="only the lake's date=YYYY-MM-DD partition and the runs that "
              "journaled that day or the day before")
@click.option("--venue", help="only rows of this venue (the lake's venue column) and its journal")
def verify(data_dir: str, date: str | None, venue: str | None) -> None:
    """Check the lake against the journal: every file reads, no temporary file is visible,
    every journaled row is in the lake exactly once, manifests are final. Exit 1 on any
    problem."""
    from recorder.maintain import format_report
    from recorder.maintain import verify as do_verify

    try:
        rep = do_verify(Path(data_dir), date, venue)
    except RecorderError as e:
        _fail(e)
    for line in format_report(rep):
        click.echo(line)
    sys.exit(0 if rep.ok else 1)


# --- the researcher's lake: compact, prune, report ----------------------------------------------


@main.command()
@click.option("--data-dir", default="data", show_default=True)
@click.option("--date", help="only this day (YYYY-MM-DD); default: every closed day")
@click.option("--table", help="only this table")
def compact(data_dir: str, date: str | None, table: str | None) -> None:
    """Rewrite closed days of the lake into a few large files per table and day, sorted by
    instrument then event time and deduplicated, atomically for readers."""
    from recorder.compact import compact as do_compact

    try:
        rep = do_compact(Path(data_dir), date, table, log=lambda s: click.echo(s, err=True))
    except RecorderError as e:
        _fail(e)
    done = rep.compacted
    before = sum(p.files_before for p in done)
    after = sum(p.files_after for p in done)
    dropped = sum(p.dropped for p in done)
    already = sum(1 for p in rep.partitions if p.status == "already")
    skipped = sum(1 for p in rep.partitions if p.status == "skipped")
    click.echo(f"compacted {len(done)} table-day(s): {before} -> {after} files, {dropped} "
               f"duplicate rows dropped; {already} already compacted, {skipped} skipped, "
               f"{len(rep.days_open)} day(s) not closed")


@main.command()
@click.option("--data-dir", default="data", show_default=True)
@click.option("--journal-before", help="remove the journal of runs entirely before this day "
              "(YYYY-MM-DD), once verify shows the lake holds their rows")
@click.option("--lake-before", help="remove lake days before this day whose rows the "
              "journal can give back (`recorder rebuild` restores them)")
@click.option("--dry-run", is_flag=True, help="say what would go, remove nothing")
def prune(data_dir: str, journal_before: str | None, lake_before: str | None,
          dry_run: bool) -> None:
    """Retention: remove old journal (or lake) only where another copy of every row remains,
    and say what was freed."""
    from recorder.prune import prune as do_prune

    try:
        rep = do_prune(Path(data_dir), journal_before, lake_before, dry_run,
                       log=lambda s: click.echo(s, err=True))
    except RecorderError as e:
        _fail(e)
    for line in rep.lines():
        click.echo(line)


@main.command()
@click.option("--data-dir", default="data", show_default=True)
@click.option("--from", "start", help="first day (YYYY-MM-DD); default: the lake's first")
@click.option("--to", "end", help="last day, inclusive; default: the lake's last")
@click.option("--output", "-o", default="report.html", show_default=True, type=click.Path())
def report(data_dir: str, start: str | None, end: str | None, output: str) -> None:
    """Write a self-contained HTML page of what the lake covers: coverage per venue and hour
    with gaps shaded, the gaps and their causes, rows per table per day, unhandled rows by
    reason, lake lag, files before and after compaction."""
    from recorder.report import write_report

    try:
        path = write_report(Path(data_dir), Path(output), start, end)
    except RecorderError as e:
        _fail(e)
    click.echo(f"wrote {path}")


def _demo_report(data_dir: Path) -> None:
    """The end of `make run`: the coverage report of what was just recorded."""
    from recorder.report import write_report

    path = write_report(data_dir, data_dir / "report.html")
    click.echo(f"\nCoverage report: {path.resolve()}")


if __name__ == "__main__":
    main()
