"""Command line: ``recorder record|check|demo|build|sim|journal|query|replay|rebuild|recover|
verify|views``. Every command's ``--help`` ends with an example."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

import click
import orjson

from recorder import __version__
from recorder import config as config_mod
from recorder.errors import ConfigError, RecorderError

EXAMPLE_QUERY = Path(__file__).resolve().parent.parent / "queries" / "mackinac_market_summary.sql"


def _fail(e: RecorderError) -> None:
    click.echo(f"recorder: {e.one_line()}", err=True)
    sys.exit(2 if e.fault == "user" else 1)


def _when(value: str | None, option: str) -> int | str | None:
    """A time option: ns since the epoch or ISO-8601 (checked here, so a typo is one line)."""
    if not value:
        return None
    if value.isdigit():
        return int(value)
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        _fail(ConfigError(f"{option} wants ISO-8601 (2026-11-28T10:00:00Z) or ns since the "
                          f"epoch, got {value!r}"))
    return value


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="recorder")
def main() -> None:
    """Record trading venues into a journal and a typed Parquet lake; query and replay it.

    \b
    Example:
      recorder record --config conf/live.toml --venue mackinac --duration 62m --quiet
    """


def _load(config: str, data_dir: str | None, venues: tuple[str, ...] = ()) -> config_mod.Config:
    return config_mod.select(config_mod.load(config, data_dir), venues)


def _run(config: str, duration: str | None, data_dir: str | None, quiet: bool,
         venues: tuple[str, ...] = (), connections: bool = False,
         metrics_port: int | None = None) -> int:
    from recorder.record import record

    try:
        cfg = _load(config, data_dir, venues)
        seconds = config_mod.parse_duration(duration) if duration else None
        if seconds is not None and seconds <= 0:
            raise ConfigError(f"--duration must be positive, got {duration!r}")
        import asyncio  # here, not at the top: `build` and `upload` start without it

        result = asyncio.run(record(cfg, seconds, live_status=not quiet,
                                    connections=connections, metrics_port=metrics_port))
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
@click.option("--venue", "venues", multiple=True, metavar="NAME",
              help="record only this venue section of the config (repeatable); locks are per "
              "venue, so runs of different venues of one config run side by side")
@click.option("--data-dir", help="override [recorder].data_dir")
@click.option("--quiet", is_flag=True, help="no live status")
@click.option("--connections", is_flag=True, help="a status line per connection too")
@click.option("--metrics-port", type=int, help="also serve the metrics over HTTP on this "
              "port (127.0.0.1:PORT/metrics) while the run lasts")
def record(config: str, duration: str | None, venues: tuple[str, ...], data_dir: str | None,
           quiet: bool, connections: bool, metrics_port: int | None) -> None:
    """Record the venues of CONFIG until the deadline or a signal, then write a manifest.

    Exit 0 when something was recorded; 2 for a user fault (config, a missing secret,
    refused keys, the venue already being recorded); 1 for a local or venue fault (disk,
    unreachable venue).

    \b
    Examples:
      recorder record --config conf/sim.toml --duration 30s
      recorder record -c conf/live.toml --venue mackinac --venue derive -d 62m --quiet
    """
    sys.exit(_run(config, duration, data_dir, quiet, venues, connections, metrics_port))


@main.command()
@click.option("--config", "-c", default="conf/sim.toml", show_default=True)
@click.option("--venue", "venues", multiple=True, metavar="NAME",
              help="check only this venue (repeatable), as `record --venue` would record it")
@click.option("--data-dir", help="override [recorder].data_dir")
def check(config: str, venues: tuple[str, ...], data_dir: str | None) -> None:
    """Check CONFIG as `record` would before recording: every setting (all problems at once,
    each with its key and why), each venue's options, the secrets it names (set or not;
    never printed) and the data directory. Exit 0 when clean, 2 otherwise.

    \b
    Example:
      MACKINAC_API_KEY=... recorder check --config conf/live.toml --venue mackinac
    """
    from recorder.metrics import metrics_path

    try:
        cfg = _load(config, data_dir, venues)
    except config_mod.ConfigProblems as e:
        for where, why in e.problems:
            click.echo(f"{e.path} {where}: {why}".replace(" : ", ": "), err=True)
        click.echo(f"recorder: {len(e.problems)} problem(s) in {e.path}", err=True)
        sys.exit(2)
    except RecorderError as e:
        _fail(e)
    from recorder.venues import CATALOGUE

    problems = CATALOGUE.preflight(cfg)
    data = cfg.recorder.data_dir
    probe = data
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        problems.append(("[recorder].data_dir", f"{data} cannot be created or written "
                         f"({probe} is not a writable directory)"))
    if cfg.recorder.remote:
        from recorder.remote import probe as probe_remote

        why = probe_remote(cfg.recorder.remote)
        if why:
            problems.append(("[recorder].remote", why))
    for where, why in problems:
        click.echo(f"{cfg.path} {where}: {why}", err=True)
    if problems:
        click.echo(f"recorder: {len(problems)} problem(s) in {cfg.path}", err=True)
        sys.exit(2)
    names = [v.name for v in cfg.venues if v.enabled]
    mpath = metrics_path(data, cfg.recorder.metrics_file, cfg.selected)
    click.echo(f"{cfg.path}: ok: {len(names)} venue(s) ({', '.join(names)}); data dir {data}; "
               f"metrics {mpath or 'off'}"
               + (f"; bucket {cfg.recorder.remote} writable" if cfg.recorder.remote else ""))


@main.command()
@click.option("--config", "-c", default="conf/sim.toml", show_default=True)
@click.option("--duration", "-d", default="20s", show_default=True)
@click.option("--data-dir", default="data", show_default=True)
@click.option("--connections", is_flag=True, help="a status line per connection too")
def demo(config: str, duration: str, data_dir: str, connections: bool) -> None:
    """Record for a short while, then show what was recorded and an example query.

    \b
    Example:
      recorder demo --duration 20s      # what `make run` does
    """
    code = _run(config, duration, data_dir, False, connections=connections)
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
    """Run VENUE's simulator by itself on loopback (its server side, a seeded market).

    \b
    Example:
      recorder sim totalis --port 8766 -o drop_every=50 -o keepalive=3.0
    """
    from recorder.venues import CATALOGUE

    spec = CATALOGUE.venues.get(venue)
    if spec is None or spec.serve is None:
        _fail(ConfigError(f"no simulator named {venue!r} (known: "
                          f"{sorted(n for n, v in CATALOGUE.venues.items() if v.serve)})"))
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
    import asyncio

    try:
        asyncio.run(spec.serve(host, port, **opts))
    except TypeError as e:
        _fail(ConfigError(f"simulator {venue}: {e}"))
    except KeyboardInterrupt:
        pass


@main.group()
def journal() -> None:
    """Read the journal.

    \b
    Example:
      recorder journal cat --venue mackinac --kind meta --limit 20
    """


@journal.command("cat")
@click.option("--data-dir", default="data", show_default=True)
@click.option("--venue")
@click.option("--run")
@click.option("--date")
@click.option("--kind", type=click.Choice(["in", "out", "meta", "rest"]), multiple=True,
              help="in: venue frames, out: what we sent, meta: transport events, rest: HTTP "
              "responses (repeatable; default all)")
@click.option("--limit", type=int, help="at most N records")
@click.option("--width", default=160, show_default=True, help="truncate frames; 0 = whole")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
@click.option("--config", "-c", help="work on the bucket of this config's [recorder] remote "
              "(through a read-through cache in <data_dir>/remote-cache), else its data_dir")
def journal_cat(data_dir: str, venue: str | None, run: str | None, date: str | None,
                kind: tuple[str, ...], limit: int | None, width: int, as_json: bool, config: str | None = None) -> None:
    """Print journal records for a person (or as JSON lines), ending with torn-tail notes.

    \b
    Example:
      recorder journal cat --venue powertrade --kind rest --width 0
    """
    data_dir = str(_remote_cache(config, data_dir))
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
@click.option("--output", "-o", type=click.Path(), help="write the result to this file "
              "(any format; needed for parquet)")
@click.option("--config", "-c", help="read the lake where this config puts it (its [recorder] "
              "remote bucket, else its data_dir)")
def query(sql: str | None, file: str | None, data_dir: str, fmt: str, output: str | None,
          config: str | None) -> None:
    """Run SQL over the lake's views and print (or write) the result. Timestamps keep their
    nanoseconds in csv and json (ISO-8601).

    \b
    Examples:
      recorder query "SELECT event, count(*) FROM session_events GROUP BY 1"
      recorder query -f queries/mackinac_market_summary.sql --format csv -o summary.csv
    """
    from recorder.duck import connect, views_named

    if bool(sql) == bool(file):
        _fail(ConfigError("give SQL or -f FILE (one of them)"))
    if fmt == "parquet" and not output:
        _fail(ConfigError("--format parquet needs --output FILE"))
    data, remote = _data_and_remote(config, data_dir)
    text = Path(file).read_text() if file else str(sql)
    views = views_named(text) or None  # none named (SHOW TABLES...): every view
    if remote:
        try:
            con = connect(data, remote=remote, views=views)
        except RecorderError as e:
            _fail(e)
    else:
        if not data.is_dir():
            _fail(ConfigError(f"data directory {data.resolve()} does not exist (run "
                              f"from the project folder or pass --data-dir)"))
        if not any((data / "lake").glob("*/date=*/*.parquet")):
            click.echo(f"recorder: the lake under {data.resolve()} has no files yet: "
                       f"every view is empty", err=True)
        con = connect(data, views=views)
    try:
        rel = con.sql(text)
    except Exception as e:  # duckdb raises many types; all are the query's fault
        _fail(ConfigError(f"query failed: {e}"))
    if rel is None:
        return
    if fmt == "parquet":
        rel.write_parquet(str(output))
        click.echo(f"wrote {output}", err=True)
        return
    if fmt == "table" and not output:
        rel.show(max_rows=1000, max_width=10_000)
        return
    df = rel.pl()
    if fmt == "table":
        import polars as pl

        with pl.Config(tbl_rows=-1, tbl_cols=-1, fmt_str_lengths=200, tbl_width_chars=10_000):
            Path(str(output)).write_text(f"{df}\n")
        click.echo(f"wrote {len(df)} rows to {output}", err=True)
        return
    text_out = df.write_csv() if fmt == "csv" else df.write_ndjson()
    if output:
        Path(output).write_text(text_out)
        click.echo(f"wrote {len(df)} rows to {output}", err=True)
    else:
        click.echo(text_out, nl=False)


@main.group()
def replay() -> None:
    """Replay recorded history (in-process records, or raw frames).

    \b
    Examples:
      recorder replay cat --venue mackinac --table mackinac_print --from 2026-11-28T10:00Z
      recorder replay serve --venue mackinac --speed 5
    """


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
@click.option("--config", "-c", help="work on the bucket of this config's [recorder] remote "
              "(through a read-through cache in <data_dir>/remote-cache), else its data_dir")
def replay_cat(data_dir: str, start: str | None, end: str | None, venues: tuple[str, ...],
               tables: tuple[str, ...], order: str, raw: bool, fmt: str, config: str | None = None) -> None:
    """Write records (or raw frames) as JSON lines to stdout, for any other program. A
    progress line on stderr while it works (when stderr is a terminal).

    \b
    Example:
      recorder replay cat --venue mackinac --table mackinac_print --from 2026-11-28T10:00Z | head
    """
    data_dir = str(_remote_cache(config, data_dir))
    from recorder import replay as rp
    from recorder.progress import Steps

    lo, hi = _when(start, "--from"), _when(end, "--to")
    out = sys.stdout
    n = 0
    try:
        with Steps("replay", unit="records") as prog:
            def tick(ts: int) -> None:
                if n % 2048 == 0:
                    prog.update(done=n, note=dt.datetime.fromtimestamp(
                        ts / 1e9, dt.UTC).isoformat(timespec="seconds"))

            if raw:
                if len(venues) != 1:
                    _fail(ConfigError("--raw needs exactly one --venue"))
                for rec in rp.raw_frames(data_dir, venues[0], lo, hi):
                    out.write(orjson.dumps({"ts_recv": rec.ts_recv, "venue": venues[0],
                                            "conn": rec.conn, "seq": rec.seq,
                                            "frame": rec.data.decode("utf-8", "replace")}
                                           ).decode())
                    out.write("\n")
                    n += 1
                    tick(rec.ts_recv)
                return
            for r in rp.records(data_dir, lo, hi, venues or None, tables or None, order):
                out.write(orjson.dumps({"table": r.table, "venue": r.venue,
                                        "ts_recv": r.ts_recv, "ts_event": r.ts_event,
                                        "conn_id": r.conn_id, "recv_seq": r.recv_seq,
                                        "recv_sub": r.recv_sub, "run_id": r.run_id, **r.data},
                                       default=str).decode())
                out.write("\n")
                n += 1
                tick(r.ts_recv)
    except ValueError as e:
        _fail(ConfigError(str(e)))
    except BrokenPipeError:
        pass


@replay.command("serve")
@click.option("--data-dir", default="data", show_default=True)
@click.option("--venue", "venues", multiple=True, required=True, help="repeatable")
@click.option("--from", "start", help="start (ISO-8601 or ns), on ts_recv")
@click.option("--to", "end", help="end, exclusive")
@click.option("--speed", default=1.0, show_default=True, help="1 = recorded pace, 10 = ten "
              "times faster, 0 = as fast as possible")
@click.option("--shared-clock", is_flag=True, help="every connection (to every venue) joins "
              "one replay on one clock; the next starts after it ends. Default: each "
              "connection replays the range from its start on its own clock")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", "ports", multiple=True, metavar="VENUE=PORT",
              help="fixed port per venue (default: a free one, printed)")
@click.option("--api-key", "api_keys", multiple=True, help="key the replay accepts "
              "(repeatable; default: the simulator's)")
@click.option("--config", "-c", help="work on the bucket of this config's [recorder] remote "
              "(through a read-through cache in <data_dir>/remote-cache), else its data_dir")
def replay_serve(data_dir: str, venues: tuple[str, ...], start: str | None, end: str | None,
                 speed: float, shared_clock: bool, host: str, ports: tuple[str, ...],
                 api_keys: tuple[str, ...], config: str | None = None) -> None:
    """Serve recorded frames with each venue's own protocol, for an unchanged client, until
    stopped (Ctrl-C): any number of clients, one after another or at once.

    \b
    Examples:
      recorder replay serve --venue mackinac --speed 5
      recorder replay serve --venue diffusal --venue derive --shared-clock --from 2026-11-28T10:00Z
    """
    data_dir = str(_remote_cache(config, data_dir))
    from recorder.serve import ReplayServer, span

    lo, hi = _when(start, "--from"), _when(end, "--to")
    port_map: dict[str, int] = {}
    for item in ports:
        name, eq, num = item.partition("=")
        if not eq or not num.isdigit():
            _fail(ConfigError(f"--port wants VENUE=PORT, got {item!r}"))
        port_map[name] = int(num)
    if speed < 0:
        _fail(ConfigError("--speed must be >= 0"))
    opts = {v: {"api_keys": api_keys} for v in venues} if api_keys else None
    say = lambda line: click.echo(line, err=True)  # noqa: E731
    empty = []
    for v in venues:
        try:
            sp = span(Path(data_dir), v, lo, hi)
        except ValueError as e:
            _fail(ConfigError(str(e)))
        if sp.first_in_range is None:
            from recorder.serve import _iso

            empty.append(f"{v}: no recorded frame in the range (its journal holds "
                         f"{_iso(sp.journal_first)} to {_iso(sp.journal_last)})")
    if empty:
        _fail(ConfigError("nothing to replay: " + "; ".join(empty)))

    async def main() -> None:
        server = ReplayServer(data_dir, list(venues), lo, hi, speed, host, port_map, opts,
                              shared_clock=shared_clock, log=say)
        urls = await server.open()
        rng = f"from {start or 'the first recorded frame'} to {end or 'the last'}"
        mode = ("all connections on one shared clock" if shared_clock
                else "each connection from the start of the range on its own clock")
        for v, u in urls.items():
            say(f"{v} replay listening on {u}")
        say(f"serving {', '.join(venues)} {rng}, speed {speed:g}; {mode}; Ctrl-C stops")
        await server.serve_forever()

    import asyncio

    try:
        asyncio.run(main())
    except ValueError as e:
        _fail(ConfigError(str(e)))
    except KeyboardInterrupt:
        return


@main.command()
@click.option("--data-dir", default="data", show_default=True)
@click.option("--run", "follow", help="also follow this (live) run until it ends and is built")
@click.option("--flush-seconds", type=float, default=5.0, show_default=True,
              help="a row group at least this often while following a live run")
@click.option("--rotate-seconds", type=float, default=300.0, show_default=True,
              help="a committed file per table at least this often")
@click.option("--max-rows", type=int, default=200_000, show_default=True)
@click.option("--max-bytes", type=int, default=128 << 20, show_default=True)
@click.option("--background", is_flag=True, help="lowest CPU priority (what `record` starts): "
              "the recording keeps the CPU, the builder catches up when it is idle")
def build(data_dir: str, follow: str | None, flush_seconds: float, rotate_seconds: float,
          max_rows: int, max_bytes: int, background: bool) -> None:
    """Build the lake from the journal: finish every run whose recorder or builder died
    (and, with --run, follow that run live). `record` starts one by itself.

    \b
    Example:
      recorder build --data-dir data
    """
    from recorder.build import BuildSettings, main_build
    from recorder.venues import CATALOGUE

    sys.exit(main_build(Path(data_dir), BuildSettings(
        flush_seconds=flush_seconds, rotate_seconds=rotate_seconds, max_rows=max_rows,
        max_bytes=max_bytes), follow, catalogue=CATALOGUE, background=background))


@main.command()
@click.option("--data-dir", default="data", show_default=True)
@click.option("--config", "-c", help="the config whose [recorder] remote and data_dir to use")
@click.option("--remote", "remote_url", help="s3://bucket/prefix (default: the config's)")
@click.option("--follow", help="also wait for this run to end and everything it made to be "
              "uploaded (what `record` starts)")
@click.option("--deadline", type=float, help="give up after this many seconds (exit 1 while "
              "files still wait)")
def upload(data_dir: str, config: str | None, remote_url: str | None, follow: str | None,
           deadline: float | None) -> None:
    """Upload what is final in the data dir to the bucket: committed lake files, closed
    journal segments, final manifests; local copies go once the bucket has them and no
    builder needs them. `record` starts one by itself when [recorder] remote is set.
    Credentials: AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.

    \b
    Example:
      recorder upload --config conf/live.toml
    """
    from recorder.upload import main_upload

    data, url = _data_and_remote(config, data_dir, remote_url)
    if not url:
        _fail(ConfigError("no remote: set [recorder] remote = \"s3://bucket/prefix\" in the "
                          "config, or pass --remote"))
    sys.exit(main_upload(data, url, follow, deadline))


def _data_and_remote(config: str | None, data_dir: str, remote_url: str | None = None) -> tuple[
        Path, str]:
    """The data dir and the remote a reading command works on: ``--config``'s when given
    (its ``[recorder] data_dir`` unless ``--data-dir`` says otherwise)."""
    if config is None:
        return Path(data_dir), remote_url or ""
    try:
        cfg = config_mod.load(config, None if data_dir == "data" else data_dir)
    except RecorderError as e:
        _fail(e)
    return cfg.recorder.data_dir, remote_url or cfg.recorder.remote


def _remote_cache(config: str | None, data_dir: str) -> Path:
    """The folder a journal/lake reader works on: the data dir, or, when the config has a
    remote, a read-through cache of the bucket (``<data_dir>/remote-cache``) brought up to
    date first (new and changed objects downloaded, objects gone removed)."""
    from recorder.remote import Remote

    data, url = _data_and_remote(config, data_dir)
    if not url:
        return data
    cache = data / "remote-cache"
    try:
        done = Remote.parse(url).sync_down(cache)
    except RecorderError as e:
        _fail(e)
    click.echo(f"recorder: {url} -> {cache}: {done['downloaded']} file(s) downloaded, "
               f"{done['kept']} cached, {done['removed']} removed", err=True)
    return cache


@main.command("files")
@click.option("--data-dir", default="data", show_default=True)
@click.option("--config", "-c", help="the lake of this config: its bucket ([recorder] remote), "
              "else its data_dir")
@click.option("--table", help="only this table")
def files_cmd(data_dir: str, config: str | None, table: str | None) -> None:
    """Print the lake's files a reader should read, one a line (s3:// URIs on a bucket):
    what the compaction and rebuild commit records leave visible. For engines that do not
    read those records (Spark, Trino, Polars, pyarrow): read exactly these files.

    \b
    Example:
      recorder files --config conf/live.toml --table mackinac_print > files.txt
    """
    data, url = _data_and_remote(config, data_dir)
    if url:
        from recorder.remote import Remote, visible

        r = Remote.parse(url)
        try:
            vis = visible(r, r.fs())
        except RecorderError as e:
            _fail(e)
        for t in sorted(vis):
            if table is None or t == table:
                for rel in sorted(vis[t]):
                    click.echo(r.uri(rel))
        return
    for p in sorted((data / "lake").glob(f"{table or '*'}/date=*/*.parquet")):
        if not p.parent.parent.name.startswith("."):
            click.echo(str(p.resolve()))


@main.command()
@click.option("--date", required=True, help="YYYY-MM-DD")
@click.option("--data-dir", default="data", show_default=True)
@click.option("--force", is_flag=True, help="rebuild even where the lake holds rows the "
              "journal no longer has (they are lost)")
@click.option("--config", "-c", help="rebuild the day on the bucket of this config's "
              "[recorder] remote, from the bucket's journal (one commit record switches it)")
def rebuild(date: str, data_dir: str, force: bool, config: str | None) -> None:
    """Re-normalize DATE from the journal into a fresh folder and swap it in atomically.

    \b
    Example:
      recorder rebuild --date 2026-11-28
    """
    from recorder.build import rebuild as do_rebuild
    from recorder.progress import Steps
    from recorder.venues import CATALOGUE

    data, url = _data_and_remote(config, data_dir)
    if url:
        from recorder.remote_maintain import rebuild_remote

        try:
            counts = rebuild_remote(url, data / "remote-compact", date, force,
                                    log=lambda s: click.echo(s, err=True))
        except RecorderError as e:
            _fail(e)
        click.echo(f"rebuilt {date} on {url}: {sum(counts.values())} rows in "
                   f"{len(counts)} tables")
        return
    try:
        with Steps(f"rebuild {date}", unit="runs") as prog:
            counts = do_rebuild(Path(data_dir), date, prog.log, force, catalogue=CATALOGUE,
                                progress=prog)
    except RecorderError as e:
        _fail(e)
    click.echo(f"rebuilt {date}: {sum(counts.values())} rows in {len(counts)} tables")


@main.command()
@click.option("--data-dir", default="data", show_default=True)
def recover(data_dir: str) -> None:
    """Finish the lake of runs that died (`recorder build` without --run; record does it too).

    \b
    Example:
      recorder recover --data-dir data
    """
    from recorder.build import build as do_build
    from recorder.progress import Steps
    from recorder.venues import CATALOGUE

    try:
        with Steps("recover", total=0, unit="venue runs") as prog:
            done = do_build(Path(data_dir), catalogue=CATALOGUE, log=prog.log, progress=prog)
    except RecorderError as e:
        _fail(e)
    click.echo(f"recovered {len(done)} venue run(s)")


@main.command()
@click.option("--write", is_flag=True, help="rewrite queries/views.sql")
def views(write: bool) -> None:
    """Print (or write) the views generated from the schema registry.

    \b
    Example:
      recorder views --write
    """
    from recorder.duck import VIEWS_FILE, render_views

    sql = render_views()
    if write:
        VIEWS_FILE.write_text(sql)
        click.echo(f"wrote {VIEWS_FILE}", err=True)
    else:
        click.echo(sql)


@main.command()
@click.option("--write", is_flag=True, help="rewrite docs/tables.md")
def docs(write: bool) -> None:
    """Print (or write) the table reference generated from the catalogue.

    \b
    Example:
      recorder docs --write
    """
    from recorder.docs import DOCS_FILE, render_tables
    from recorder.venues import CATALOGUE

    text = render_tables(CATALOGUE)
    if write:
        DOCS_FILE.parent.mkdir(parents=True, exist_ok=True)
        DOCS_FILE.write_text(text)
        click.echo(f"wrote {DOCS_FILE}", err=True)
    else:
        click.echo(text, nl=False)



@main.command()
@click.option("--data-dir", default="data", show_default=True)
@click.option("--date", help="only the lake's date=YYYY-MM-DD partition and the runs that "
              "journaled that day or the day before")
@click.option("--venue", help="only rows of this venue (the lake's venue column) and its journal")
@click.option("--config", "-c", help="work on the bucket of this config's [recorder] remote "
              "(through a read-through cache in <data_dir>/remote-cache), else its data_dir")
def verify(data_dir: str, date: str | None, venue: str | None, config: str | None = None) -> None:
    """Check the lake against the journal: every file reads, no temporary file is visible,
    every journaled row is in the lake exactly once, manifests are final. Exit 1 on any
    problem.

    \b
    Example:
      recorder verify --date 2026-11-28 --venue mackinac
    """
    data_dir = str(_remote_cache(config, data_dir))
    from recorder.maintain import format_report
    from recorder.maintain import verify as do_verify
    from recorder.progress import Steps

    try:
        with Steps("verify", unit="runs") as prog:
            rep = do_verify(Path(data_dir), date, venue, progress=prog)
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
@click.option("--config", "-c", help="compact the bucket of this config's [recorder] remote "
              "(a commit record per table and day; --date may then be any day)")
@click.option("--grace", type=float, default=600.0, show_default=True, help="on a bucket: "
              "files a compaction replaced are deleted this many seconds after its commit")
def compact(data_dir: str, date: str | None, table: str | None, config: str | None,
            grace: float) -> None:
    """Rewrite closed days of the lake into a few large files per table and day, sorted by
    instrument then event time and deduplicated, atomically for readers.

    \b
    Example:
      recorder compact --date 2026-11-27
    """
    from recorder.compact import compact as do_compact

    data, url = _data_and_remote(config, data_dir)
    try:
        if url:
            from recorder.remote_maintain import compact_remote

            rep = compact_remote(url, data / "remote-compact", date, table, grace=grace,
                                 log=lambda s: click.echo(s, err=True))
        else:
            rep = do_compact(data, date, table, log=lambda s: click.echo(s, err=True))
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
    and say what was freed.

    \b
    Example:
      recorder prune --journal-before 2026-10-01 --dry-run
    """
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
@click.option("--config", "-c", help="work on the bucket of this config's [recorder] remote "
              "(through a read-through cache in <data_dir>/remote-cache), else its data_dir")
def report(data_dir: str, start: str | None, end: str | None, output: str, config: str | None = None) -> None:
    """Write a self-contained HTML page of what the lake covers: coverage per venue and hour
    with gaps shaded, the gaps and their causes, rows per table per day, unhandled rows by
    reason, lake lag, files before and after compaction.

    \b
    Example:
      recorder report --from 2026-11-27 -o report.html
    """
    data_dir = str(_remote_cache(config, data_dir))
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
    # How a recorder starts its lake builder and its uploader (``python -m recorder.cli
    # build|upload``). Neither hands an array to numpy, and pyarrow takes numpy as optional
    # (https://arrow.apache.org/docs/python/install.html#dependencies); not loading it saves
    # each start (one of each a run) about 0.2 s of CPU.
    if sys.argv[1:2] in (["build"], ["upload"]):
        sys.modules.setdefault("numpy", None)  # type: ignore[assignment]
    main()
