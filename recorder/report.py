"""``recorder report``: what the lake covers, as one self-contained HTML page a person looks at.

Everything comes from the lake's own views and files (``gaps``, ``unhandled``, every table's
``ts_recv``, the files' lineage), so the report says what a researcher will find, not what
the recorder thought it wrote. The pictures are drawn with matplotlib (Agg, no display) and
embedded as base64 PNG, so the page needs nothing else: mail it, open it from a backup.

Sections: coverage per venue and hour (frames per second, the holes of the ``gaps`` view
shaded), the gap list with causes, rows per table per day, ``unhandled`` rows by reason, lake
lag (how long after a file's last row its builder committed it), and files per day before and
after compaction (a compacted file's lineage says how many files it replaced).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from recorder.lake import read_lineage
from recorder.venues import CATALOGUE

_NS_HOUR = 3_600_000_000_000
_NS_MINUTE = 60_000_000_000
_MAX_GAPS = 500  # rows of the gap table (the picture shows them all)


@dataclass
class ReportData:
    """What the page shows, gathered once (a test can look at it without parsing HTML)."""

    start: str | None
    end: str | None
    # venue, minute (ns since the epoch), frames received in it
    hourly: list[tuple[str, int, int]] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    rows_per_table: list[tuple[str, str, int]] = field(default_factory=list)  # table, day, n
    unhandled: list[tuple[str, str, int]] = field(default_factory=list)  # venue, reason, n
    lag: list[tuple[str, int, float]] = field(default_factory=list)  # venue, ts ns, seconds
    files: list[tuple[str, int, int]] = field(default_factory=list)  # day, before, now


def _day(text: str | None, flag: str) -> str | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        from recorder.errors import ConfigError

        raise ConfigError(f"{flag} wants a day (YYYY-MM-DD), got {text!r}") from None


def _in_range(day: str, start: str | None, end: str | None) -> bool:
    return (start is None or day >= start) and (end is None or day <= end)


def gather(data_dir: Path, start: str | None = None, end: str | None = None) -> ReportData:
    """Read the lake under ``data_dir`` for the days ``start``..``end`` (inclusive)."""
    from recorder.duck import connect

    start, end = _day(start, "--from"), _day(end, "--to")
    data = ReportData(start, end)
    where = "WHERE true" + (f" AND date >= DATE '{start}'" if start else "") + (
        f" AND date <= DATE '{end}'" if end else "")
    lake = data_dir / "lake"
    tables = sorted(t for t in CATALOGUE.tables if any((lake / t).glob("date=*/*.parquet")))
    con = connect(data_dir, views={*tables, "gaps", "unhandled"})
    if tables:
        # A frame is one journal record; its first row (recv_sub 0) stands for it.
        union = " UNION ALL ".join(
            f"SELECT '{t}' AS tbl, venue, date, ts_recv_ns, recv_sub FROM {t}" for t in tables)
        rows = con.execute(f"""
            SELECT venue, ts_recv_ns // {_NS_MINUTE} * {_NS_MINUTE} AS minute,
                   count(*) FILTER (recv_sub = 0) AS frames
            FROM ({union}) {where} GROUP BY ALL ORDER BY ALL""").fetchall()
        data.hourly = [(str(v), int(h), int(n)) for v, h, n in rows]
        rows = con.execute(f"""SELECT tbl, strftime(date, '%Y-%m-%d'), count(*) FROM ({union})
            {where} GROUP BY ALL ORDER BY ALL""").fetchall()
        data.rows_per_table = [(str(t), str(d), int(n)) for t, d, n in rows]
    gwhere = "WHERE true" + (f" AND gap_end >= TIMESTAMPTZ '{start} 00:00:00+00'"
                             if start else "") + (
        f" AND gap_start < TIMESTAMPTZ '{end} 00:00:00+00' + INTERVAL 1 day" if end else "")
    cur = con.execute(f"SELECT * FROM gaps {gwhere} ORDER BY gap_start_ns")
    cols = [c[0] for c in cur.description]
    data.gaps = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    data.unhandled = [(str(v), str(r), int(n)) for v, r, n in con.execute(
        f"SELECT venue, coalesce(reason, '?'), count(*) FROM unhandled {where} "
        f"GROUP BY ALL ORDER BY 3 DESC").fetchall()]
    data.lag, data.files = _files(data_dir, start, end)
    con.close()
    return data


def _files(data_dir: Path, start: str | None, end: str | None) -> tuple[
        list[tuple[str, int, float]], list[tuple[str, int, int]]]:
    """Lake lag per builder file, and files per day (before compaction, now), from footers."""
    lag: list[tuple[str, int, float]] = []
    per_day: dict[str, list[int]] = {}
    for folder in sorted((data_dir / "lake").glob("*/date=*")):
        if folder.parent.name.startswith("."):
            continue
        day = folder.name.removeprefix("date=")
        if not _in_range(day, start, end):
            continue
        counts = per_day.setdefault(day, [0, 0])
        compactions: dict[str, int] = {}
        for f in sorted(folder.glob("*.parquet")):
            counts[1] += 1
            try:
                lin = read_lineage(f) or {}
                md = pq.read_metadata(f)
            except Exception:  # noqa: BLE001 - verify names broken files; the report skips them
                counts[0] += 1
                continue
            if lin.get("kind") == "compacted":
                compactions[str(lin.get("compaction"))] = int(lin.get("inputs", 1))
                continue
            counts[0] += 1
            committed = lin.get("committed_ns")
            j = next((k for k in range(md.num_columns)
                      if md.schema.column(k).path == "ts_recv"), None)
            last = None
            for i in range(md.num_row_groups if j is not None else 0):
                s = md.row_group(i).column(j).statistics
                if s is not None and s.has_min_max:
                    last = s.max_raw if last is None else max(last, s.max_raw)
            if committed and isinstance(last, int):
                lag.append((str(lin.get("venue")), last, max(0.0, (committed - last) / 1e9)))
        counts[0] += sum(compactions.values())
    return sorted(lag, key=lambda x: x[1]), [(d, b, n) for d, (b, n) in sorted(per_day.items())]


# --- pictures ------------------------------------------------------------------------------------


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _dt(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC)


def _coverage_png(data: ReportData) -> str | None:
    """Venue x hour heat map of frames per second, every gap shaded in its venue's row (a
    span of three hours or less is drawn per minute: a short run is not one pale cell)."""
    if not data.hourly:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    venues = sorted({v for v, _, _ in data.hourly})
    minutes = sorted({m for _, m, _ in data.hourly})
    unit = _NS_MINUTE if minutes[-1] - minutes[0] <= 3 * _NS_HOUR else _NS_HOUR
    h0 = minutes[0] // unit * unit
    n = (minutes[-1] // unit * unit + unit - h0) // unit
    counts: dict[tuple[int, int], int] = {}
    for v, m, frames in data.hourly:
        key = (venues.index(v), (m // unit * unit - h0) // unit)
        counts[key] = counts.get(key, 0) + frames
    grid = [[float("nan")] * n for _ in venues]
    for (row, col), frames in counts.items():
        grid[row][col] = max(frames / (unit / 1e9), 1e-3)
    fig, ax = plt.subplots(figsize=(min(4 + n * 0.35, 22), 1.2 + 0.55 * len(venues)))
    im = ax.imshow(grid, aspect="auto", cmap="viridis", norm=LogNorm(), interpolation="nearest",
                   extent=(0, n, len(venues), 0))
    label = "minute" if unit == _NS_MINUTE else "hour"
    fig.colorbar(im, ax=ax, label=f"frames/s ({label} mean)")
    for g in data.gaps:
        if g["venue"] not in venues:
            continue
        a = max(0.0, (g["gap_start_ns"] - h0) / unit)
        b = min(float(n), max(a + 0.02 * n / max(n, 1), (g["gap_end_ns"] - h0) / unit))
        row = venues.index(g["venue"])
        ax.add_patch(matplotlib.patches.Rectangle(
            (a, row + 0.1), b - a, 0.8, facecolor="red", alpha=0.45, hatch="//",
            edgecolor="darkred", linewidth=0.8))
    ax.set_yticks([i + 0.5 for i in range(len(venues))], venues)
    step = max(1, n // 24)
    fmt = "%H:%M" if unit == _NS_MINUTE else "%m-%d %H"
    ax.set_xticks([i + 0.5 for i in range(0, n, step)],
                  [_dt(h0 + i * unit).strftime(fmt) for i in range(0, n, step)],
                  rotation=60, fontsize=8)
    ax.set_title(f"Coverage: frames per second per venue and {label} (UTC); red: gaps")
    return _png(fig)


def _bars_png(labels: list[str], series: dict[str, list[float]], title: str, xlabel: str,
              log: bool = False) -> str | None:
    if not labels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 1.0 + 0.28 * len(labels) * max(1, len(series))))
    height = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        ax.barh([k + i * height for k in range(len(labels))], values, height=height,
                label=name)
    ax.set_yticks([k + height * (len(series) - 1) / 2 for k in range(len(labels))], labels,
                  fontsize=8)
    ax.invert_yaxis()
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    if len(series) > 1:
        ax.legend()
    return _png(fig)


def _lag_png(data: ReportData) -> str | None:
    if not data.lag:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3.2))
    for v in sorted({v for v, _, _ in data.lag}):
        pts = [(_dt(t), s) for vv, t, s in data.lag if vv == v]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], ".", label=v)
    ax.set_ylabel("seconds")
    ax.set_title("Lake lag: last row of a file to its commit")
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    return _png(fig)


# --- the page ------------------------------------------------------------------------------------

_CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1400px}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:2px 6px}
th{background:#f3f3f3;text-align:left}td.n{text-align:right}img{max-width:100%}
.none{color:#888;font-style:italic}"""
# Counts the pictures that decoded, for a person (and a headless browser test) to see.
_JS = """window.addEventListener('load', function () {
  var imgs = document.querySelectorAll('img.chart'), ok = 0;
  imgs.forEach(function (i) { if (i.complete && i.naturalWidth > 0) ok++; });
  document.body.setAttribute('data-charts-loaded', ok + '/' + imgs.length);
});"""


def _img(b64: str | None, alt: str) -> str:
    if b64 is None:
        return f'<p class="none">{html.escape(alt)}: nothing in range</p>'
    return f'<img class="chart" alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def _table(head: list[str], rows: list[list[Any]]) -> str:
    if not rows:
        return '<p class="none">none</p>'
    out = ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for r in rows:
        cells = []
        for v in r:
            cls = ' class="n"' if isinstance(v, int | float) else ""
            text = f"{v:,.3f}" if isinstance(v, float) else (
                f"{v:,}" if isinstance(v, int) else "" if v is None else str(v))
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    return "\n".join(out) + "</table>"


def render(data: ReportData, data_dir: Path) -> str:
    span = f"{data.start or 'first day'} to {data.end or 'last day'}"
    frames = sum(n for _, _, n in data.hourly)
    rows = sum(n for _, _, n in data.rows_per_table)
    days = sorted({d for _, d, _ in data.rows_per_table})
    tables = sorted({t for t, _, _ in data.rows_per_table})
    per_table = {t: sum(n for tt, _, n in data.rows_per_table if tt == t) for t in tables}
    by_day = {d: [per_table_day for per_table_day in data.rows_per_table if per_table_day[1] == d]
              for d in days}
    top = sorted(per_table, key=lambda t: -per_table[t])[:40]
    rows_png = _bars_png(top, {d: [float(next((n for t, _, n in by_day[d] if t == tt), 0))
                                   for tt in top] for d in days[-7:]},
                         "Rows per table (largest 40; a bar per day, last 7 days)", "rows",
                         log=True)
    unh = [f"{v}: {r}" for v, r, _ in data.unhandled[:30]]
    unh_png = _bars_png(unh, {"rows": [float(n) for *_, n in data.unhandled[:30]]},
                        "unhandled rows by venue and reason", "rows")
    causes: dict[str, float] = {}
    for g in data.gaps:
        causes[g["cause"]] = causes.get(g["cause"], 0.0) + float(g["duration_s"] or 0.0)
    gap_png = _bars_png(sorted(causes), {"seconds": [causes[c] for c in sorted(causes)]},
                        "Time lost to gaps, by cause", "seconds") if causes else None
    files_png = _bars_png([d for d, _, _ in data.files],
                          {"before compaction": [float(b) for _, b, _ in data.files],
                           "now": [float(n) for _, _, n in data.files]},
                          "Lake files per day", "files", log=True)
    gap_rows = [[g["venue"], g["conn_id"], g["channel"], g["cause"],
                 g["gap_start"].isoformat() if g["gap_start"] else None,
                 g["gap_end"].isoformat() if g["gap_end"] else None,
                 float(g["duration_s"] or 0.0), g["code"], g["reason"], g["run_id"]]
                for g in data.gaps[:_MAX_GAPS]]
    more = (f"<p>{len(data.gaps) - _MAX_GAPS} more gaps not listed (query the "
            f"<code>gaps</code> view).</p>" if len(data.gaps) > _MAX_GAPS else "")
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Lake coverage {html.escape(span)}</title>
<style>{_CSS}</style><script>{_JS}</script></head><body>
<h1>Lake coverage report</h1>
<p>Data dir <code>{html.escape(str(data_dir))}</code>, days {html.escape(span)}; written
{now}. {frames:,} frames, {rows:,} rows in {len(tables)} tables over {len(days)} day(s);
{len(data.gaps)} gap(s); {sum(n for *_, n in data.unhandled):,} unhandled row(s).</p>
<h2>Coverage per venue and hour</h2>
{_img(_coverage_png(data), "coverage heat map")}
<h2>Gaps</h2>
{_img(gap_png, "time lost to gaps by cause")}
{_table(["venue", "connection", "channel", "cause", "start", "end", "seconds", "code",
         "reason", "run"], gap_rows)}
{more}
<h2>Rows per table per day</h2>
{_img(rows_png, "rows per table per day")}
{_table(["table", "day", "rows"], [list(r) for r in data.rows_per_table])}
<h2>Unhandled rows by reason</h2>
{_img(unh_png, "unhandled by reason")}
{_table(["venue", "reason", "rows"], [list(r) for r in data.unhandled])}
<h2>Lake lag</h2>
{_img(_lag_png(data), "lake lag")}
<h2>Files per day, before and after compaction</h2>
{_img(files_png, "files per day")}
{_table(["day", "files before compaction", "files now"], [list(r) for r in data.files])}
</body></html>
"""


def write_report(data_dir: Path, out: Path, start: str | None = None,
                 end: str | None = None) -> Path:
    """Gather, draw and write the page; returns its path."""
    import matplotlib

    matplotlib.use("Agg")  # no display: a cron job or a CI machine draws too
    data = gather(Path(data_dir), start, end)
    page = render(data, Path(data_dir))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page)
    return out
