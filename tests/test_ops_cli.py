"""The CLI papercuts, each fixed and kept fixed, and `replay serve` staying up for one
client after another (the real command, real sockets)."""

from __future__ import annotations

import asyncio
import csv
import os
import signal
from pathlib import Path

import aiohttp
import click
import orjson
import pytest

from recorder import journal as jr
from recorder.cli import main as cli_main
from recorder.duck import connect, lazy
from recorder.venues import CATALOGUE
from recorder.venues.mackinac.server import MackinacServer, replay_keys
from tests.conftest import RECORDER, ROOT, cli
from tests.test_ops_runs import Running
from tests.venues.mackinac.e2e import config

KEY = "mk_test_simulator_key"  # what the replay server accepts by default


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A short Mackinac recording (hl:ETH and uni:WETH/USDC) with its lake built."""
    data_dir = tmp_path_factory.mktemp("ops_cli") / "data"

    async def main() -> str:
        server = MackinacServer(seed=31, rate=3.0, api_keys={KEY: "super_admin"})
        await server.start()
        os.environ["OPS_CLI_KEY"] = KEY
        cfg = config(data_dir, server.url, ["hl:ETH", "uni:WETH/USDC"], "OPS_CLI_KEY",
                     history=False)
        run = Running(cfg)
        await run.recording(60)
        result = await run.stop()
        await server.stop()
        os.environ.pop("OPS_CLI_KEY", None)
        assert result.exit_code == 0, result.reason
        return result.run_id

    return data_dir, asyncio.run(main())


# --- query -------------------------------------------------------------------------------------


def test_query_csv_and_json_to_a_file_keep_nanoseconds(lake: tuple, tmp_path: Path) -> None:
    data_dir, _ = lake
    # The views give each time as TIMESTAMPTZ (µs) plus its exact *_ns; a nanosecond
    # timestamp in a query's result must keep its nanoseconds in csv and json.
    sql = ("SELECT make_timestamp_ns(ts_recv_ns) AS ts_recv, ts_recv_ns AS ns "
           "FROM mackinac_quote ORDER BY ts_recv_ns LIMIT 5")
    out = tmp_path / "q.csv"
    r = cli(["query", sql, "--data-dir", str(data_dir), "--format", "csv", "-o", str(out)])
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and "wrote 5 rows" in r.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 5
    for row in rows:  # 9 fractional digits, equal to the ns since the epoch
        frac = row["ts_recv"].split(".")[1][:9]
        assert len(frac) == 9 and frac.isdigit() and int(row["ns"]) % 1_000_000_000 == int(frac)
    out = tmp_path / "q.json"
    r = cli(["query", sql, "--data-dir", str(data_dir), "--format", "json", "-o", str(out)])
    assert r.returncode == 0, r.stderr
    for line in out.read_text().splitlines():
        row = orjson.loads(line)
        # a decimal fraction: json writes ".789753" for 789753000 ns (trailing zeros dropped;
        # a receive time whose last three digits are 0 happens about once in a thousand)
        frac = row["ts_recv"].partition(".")[2].ljust(9, "0")
        assert len(frac) == 9 and frac.isdigit(), row["ts_recv"]
        assert int(row["ns"]) % 1_000_000_000 == int(frac)
    r = cli(["query", sql, "--data-dir", str(data_dir), "--format", "json"])
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 5
    out = tmp_path / "q.txt"
    r = cli(["query", sql, "--data-dir", str(data_dir), "-o", str(out)])
    assert r.returncode == 0 and out.read_text().count("\n") >= 5


def test_query_from_another_directory_says_where_it_looked(
        lake: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = cli(["query", "SELECT count(*) FROM mackinac_quote"])
    assert r.returncode == 2 and r.stdout == ""
    assert str(tmp_path / "data") in r.stderr and "--data-dir" in r.stderr
    (tmp_path / "data").mkdir()
    r = cli(["query", "SELECT count(*) AS n FROM mackinac_quote", "--format", "csv"])
    assert r.returncode == 0 and r.stdout.split() == ["n", "0"] and "no files yet" in r.stderr


def test_show_tables_lists_views_only_and_lazy_matches_connect_on_an_empty_table(
        lake: tuple, tmp_path: Path) -> None:
    data_dir, _ = lake
    con = connect(data_dir)
    names = [n for (n,) in con.sql("SHOW TABLES").fetchall()]
    assert names and not [n for n in names if n.startswith("__")]
    assert "mackinac_quote" in names and "derive_orderbook_dedup" in names
    # a table with no file yet: an empty frame of the lake's shape (what scan_parquet gives
    # once files exist), every column of which the (empty) view has too; the view adds the
    # exact *_ns of each time column
    frame = lazy("derive_orderbook", data_dir).collect()
    cols = [c for (c, *_) in con.sql("DESCRIBE derive_orderbook").fetchall()]
    assert frame.height == 0
    assert frame.columns == [*CATALOGUE.tables["derive_orderbook"].arrow_schema.names, "date"]
    assert set(frame.columns) <= set(cols) and {"ts_recv_ns", "ts_event_ns"} <= set(cols)
    assert lazy("mackinac_quote", data_dir).select("date").collect().height > 0
    with pytest.raises(ValueError, match="unknown table"):
        lazy("no_such_table", data_dir)


# --- small commands ----------------------------------------------------------------------------


def test_bad_dates_and_times_are_one_line_user_errors(lake: tuple) -> None:
    data_dir, _ = lake
    for args in (["rebuild", "--date", "28-11-2026"], ["verify", "--date", "28-11-2026"],
                 ["replay", "cat", "--from", "28-11-2026"],
                 ["replay", "serve", "--venue", "mackinac", "--to", "yesterday"]):
        r = cli([*args, "--data-dir", str(data_dir)])
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.startswith("recorder: user error:") and "bug" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_journal_cat_shows_rest_records(tmp_path: Path) -> None:
    w = jr.JournalWriter(tmp_path, "diffusal", "20260101T000000Z-h-000001")
    w.append(jr.KIND_IN, "public-0", 1, b'{"stream":"x"}')
    w.append(jr.KIND_REST, "rest", 2, b'{"tag":"pairs","status":200,"url":"http://x"}\n[1]')
    w.close()
    r = cli(["journal", "cat", "--data-dir", str(tmp_path), "--kind", "rest", "--json"])
    assert r.returncode == 0, r.stderr
    [line] = r.stdout.splitlines()
    rec = orjson.loads(line)
    assert rec["kind"] == "rest" and rec["conn"] == "rest" and '"pairs"' in rec["data"]


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, cmd in sorted(group.commands.items()):
        out.append((*prefix, name))
        if isinstance(cmd, click.Group):
            out += _commands(cmd, (*prefix, name))
    return out


def test_version_and_an_example_in_every_help() -> None:
    from recorder import __version__

    r = cli(["--version"])
    assert r.returncode == 0 and __version__ in r.stdout
    cmds = _commands(cli_main)
    assert len(cmds) >= 14
    for path in [(), *cmds]:
        r = cli([*path, "--help"])
        assert r.returncode == 0, path
        assert "Example" in r.stdout, f"recorder {' '.join(path)} --help has no example"


# --- replay serve ------------------------------------------------------------------------------


async def _client(url: str, market: str, timeout: float = 30.0) -> list[bytes]:
    """A plain Mackinac client: auth, subscribe, read until the server closes."""
    ex, _, sym = market.partition(":")
    got: list[bytes] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.send_str(orjson.dumps({"action": "auth", "key": KEY}).decode())
        await ws.send_str(orjson.dumps({"action": "subscribe", "exchange": ex,
                                        "symbol": sym}).decode())
        while True:
            msg = await ws.receive(timeout=timeout)
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            got.append(msg.data.encode())
    return got


async def _serve(*args: str) -> tuple[asyncio.subprocess.Process, str, list[str]]:
    proc = await asyncio.create_subprocess_exec(
        *RECORDER, "replay", "serve", *args, cwd=ROOT, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    assert proc.stderr is not None
    lines: list[str] = []
    while True:
        raw = await asyncio.wait_for(proc.stderr.readline(), 60)
        assert raw, f"replay serve ended: {lines}"
        lines.append(raw.decode().rstrip())
        if " replay listening on " in lines[-1]:
            return proc, lines[-1].rsplit(" ", 1)[1], lines


def test_replay_serve_stays_up_for_one_client_after_another(lake: tuple) -> None:
    data_dir, run = lake
    expected = [r.data for r in jr.read_run(data_dir, "mackinac", run)
                if r.kind == jr.KIND_IN and "hl:ETH" in (replay_keys(orjson.loads(r.data))
                                                          or set())]
    assert len(expected) > 10

    async def main() -> tuple[list[list[bytes]], list[str], int | None]:
        proc, url, lines = await _serve("--data-dir", str(data_dir), "--venue", "mackinac",
                                        "--speed", "0")
        try:
            runs = [await _client(url, "hl:ETH") for _ in range(2)]
            alive = proc.returncode
            # a third and fourth client at once: each its own replay from the start
            runs += await asyncio.gather(_client(url, "hl:ETH"), _client(url, "hl:ETH"))
            # A client has its last frame before the server has ended its pass and said so
            # (under load the fourth line came after the interrupt, which cut it): wait for it
            assert proc.stderr is not None
            while sum("done after" in line for line in lines) < 4:
                raw = await asyncio.wait_for(proc.stderr.readline(), 60)
                assert raw, f"replay serve ended: {lines}"
                lines.append(raw.decode().rstrip())
        finally:
            proc.send_signal(signal.SIGINT)
            assert proc.stderr is not None
            rest = await asyncio.wait_for(proc.stderr.read(), 30)
            await asyncio.wait_for(proc.wait(), 30)
        return runs, lines + rest.decode().splitlines(), alive

    runs, lines, alive = asyncio.run(main())
    assert alive is None  # still serving after the first two clients
    control = (b'"type":"authed"', b'"type":"subscribed"')
    for got in runs:
        assert [f for f in got if not any(c in f for c in control)] == expected
    text = "\n".join(lines)
    assert "serving mackinac from the first recorded frame" in text
    assert text.count("done after") == 4


def test_replay_serve_shared_clock_serves_the_next_client_a_new_pass(lake: tuple) -> None:
    data_dir, run = lake

    async def main() -> list[list[bytes]]:
        proc, url, _ = await _serve("--data-dir", str(data_dir), "--venue", "mackinac",
                                    "--speed", "0", "--shared-clock")
        try:
            return [await _client(url, "uni:WETH/USDC") for _ in range(2)]
        finally:
            proc.send_signal(signal.SIGINT)
            await asyncio.wait_for(proc.wait(), 30)

    first, second = asyncio.run(main())
    assert len(first) > 5 and first == second


def test_replay_serve_says_so_when_the_range_is_empty(lake: tuple) -> None:
    data_dir, _ = lake
    r = cli(["replay", "serve", "--data-dir", str(data_dir), "--venue", "mackinac",
             "--from", "2001-01-01T00:00:00Z", "--to", "2001-01-02T00:00:00Z"])
    assert r.returncode == 2
    assert "nothing to replay: mackinac: no recorded frame in the range" in r.stderr
    assert "its journal holds 20" in r.stderr
    r = cli(["replay", "serve", "--data-dir", str(data_dir), "--venue", "nope"])
    assert r.returncode == 2 and "no journal for venue 'nope'" in r.stderr


def test_rebuild_shows_progress_lines_when_not_a_terminal(lake: tuple) -> None:
    """Off a terminal, progress is plain lines on stderr (here: the per-run log of rebuild
    and its summary); stdout stays the result."""
    data_dir, run = lake
    day = jr.day(next(jr.read_run(data_dir, "mackinac", run)).ts_recv)
    r = cli(["rebuild", "--date", day, "--data-dir", str(data_dir)])
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"rebuilt {day}: ") and "mackinac_quote: " in r.stderr
    assert "\x1b" not in r.stderr  # no bar redrawing in a log


def test_steps_print_plain_progress_lines_off_a_terminal() -> None:
    import io

    from recorder.progress import Steps

    out = io.StringIO()
    with Steps("verify", total=3, unit="runs", out=out, every=0.0) as p:
        for i in range(3):
            p.advance(note=f"run {i}")
        p.log("a line")
    assert out.getvalue().splitlines() == ["verify: 1/3 runs run 0", "verify: 2/3 runs run 1",
                                           "verify: 3/3 runs run 2", "a line"]
