"""The journal: every frame, appended with its receive time before it is parsed.

Layout: ``<data>/journal/<venue>/date=YYYY-MM-DD/<run>-<segment:06d>.jnl.zst``.

A segment is a sequence of independent zstd frames (with content checksums), one per flush.
Each decompressed zstd frame holds whole records::

    kind:u8 ts_recv:i64 seq:i64 conn_len:u16 data_len:u32 conn:bytes data:bytes

Because every flush is a complete zstd frame, a ``kill -9`` can only tear the last one; the
reader stops there and says how many bytes it could not read. ``seq`` counts the records of
one connection within a run (inbound, outbound and meta), so ``(run, conn, seq)`` identifies a
record for ever; ``(segment, index)`` is its position in the journal files.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import zstandard

from recorder.errors import StorageError

KIND_IN = 0  # a frame the venue sent
KIND_OUT = 1  # a control message we sent (secrets redacted)
KIND_META = 2  # a transport event (connected, disconnected, ...) as JSON
KIND_REST = 3  # an HTTP response: one JSON header line ({tag, status, url}), then the body
KIND_NAMES = {KIND_IN: "in", KIND_OUT: "out", KIND_META: "meta", KIND_REST: "rest"}

_HEADER = struct.Struct("<BqqHI")
SUFFIX = ".jnl.zst"


@dataclass(frozen=True, slots=True)
class Record:
    kind: int
    ts_recv: int
    seq: int
    conn: str
    data: bytes
    segment: int
    index: int


def day(ts_ns: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts_ns // 1_000_000_000))


class JournalWriter:
    """Appends records for one venue and one run. Not thread-safe: ``append`` and
    ``take_batch`` run on the event loop; ``write_batch`` may run on one worker thread."""

    def __init__(self, data_dir: Path, venue: str, run_id: str, *,
                 segment_bytes: int = 64 << 20, segment_seconds: float = 3600.0) -> None:
        self.root = data_dir / "journal" / venue
        self.venue = venue
        self.run_id = run_id
        self.segment_bytes = segment_bytes
        self.segment_ns = int(segment_seconds * 1e9)
        # Level 1: on recorded frames it compressed as well as level 3 (about 120 bytes per
        # 680-byte frame) at four times the speed, and compression runs on the same I/O
        # thread as the Parquet writer (measured with make bench / py-spy).
        self._cctx = zstandard.ZstdCompressor(level=1, write_checksum=True)
        self._buf = bytearray()
        self._seqs: dict[str, int] = {}
        self._conn_bytes: dict[str, bytes] = {}
        self.segment = 0
        self.index = 0  # index of the next record in the current segment
        self._seg_start_ns: int | None = None
        self._seg_day: str | None = None
        self._written: dict[int, int] = {}  # compressed bytes written per segment
        self._file: object | None = None
        self._file_path: Path | None = None
        self.records = 0
        self.bytes_in = 0

    def append(self, kind: int, conn: str, ts_recv: int, data: bytes) -> tuple[int, int, int]:
        """Buffer one record; return its ``(segment, index, seq)``. Durable after the next
        flush (at most ``journal_flush_ms`` later)."""
        if self._seg_start_ns is None:
            self._seg_start_ns = ts_recv
            self._seg_day = day(ts_recv)
        seq = self._seqs.get(conn, 0) + 1
        self._seqs[conn] = seq
        c = self._conn_bytes.get(conn)
        if c is None:
            c = self._conn_bytes[conn] = conn.encode()
        buf = self._buf
        buf += _HEADER.pack(kind, ts_recv, seq, len(c), len(data)) + c
        buf += data
        index = self.index
        self.index = index + 1
        self.records += 1
        self.bytes_in += len(data)
        return self.segment, index, seq

    def take_batch(self, now_ns: int) -> tuple[bytes, int, str | None, bool]:
        """Hand the buffered records to the writer thread and decide rotation, on the loop.

        Returns ``(raw, segment, day, rotate)``; records appended after this call go to the
        next segment when ``rotate`` is true."""
        raw = bytes(self._buf)
        self._buf.clear()
        seg, seg_day = self.segment, self._seg_day
        rotate = self._seg_start_ns is not None and (
            self._written.get(seg, 0) + len(raw) // 4 >= self.segment_bytes
            or now_ns - self._seg_start_ns >= self.segment_ns
            or day(now_ns) != self._seg_day
        )
        if rotate:
            self.segment += 1
            self.index = 0
            self._seg_start_ns = None
            self._seg_day = None
            self._written.pop(seg - 1, None)
        return raw, seg, seg_day, rotate

    def path_for(self, segment: int, seg_day: str) -> Path:
        return self.root / f"date={seg_day}" / f"{self.run_id}-{segment:06d}{SUFFIX}"

    def write_batch(self, raw: bytes, segment: int, seg_day: str | None, rotate: bool,
                    sync: bool = False) -> None:
        """Compress and append one batch as a whole zstd frame (thread side)."""
        if raw and seg_day is not None:
            path = self.path_for(segment, seg_day)
            if self._file_path != path:
                self._close_file()
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    self._file = open(path, "ab")  # noqa: SIM115 - kept open across batches
                except OSError as e:
                    raise StorageError(f"cannot write journal {path}: {e}") from e
                self._file_path = path
            blob = self._cctx.compress(raw)
            self._file.write(blob)  # type: ignore[attr-defined]
            self._file.flush()  # type: ignore[attr-defined]
            self._written[segment] = self._written.get(segment, 0) + len(blob)
        if sync and self._file is not None:
            os.fsync(self._file.fileno())  # type: ignore[attr-defined]
        if rotate:
            self._close_file()

    def flush_now(self, sync: bool = True) -> None:
        """Synchronous flush (tests, shutdown)."""
        self.write_batch(*self.take_batch(time.time_ns()), sync=sync)

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.flush()  # type: ignore[attr-defined]
            os.fsync(self._file.fileno())  # type: ignore[attr-defined]
            self._file.close()  # type: ignore[attr-defined]
            self._file = None
            self._file_path = None

    def close(self) -> None:
        self.flush_now(sync=True)
        self._close_file()


# --- reading ---------------------------------------------------------------------------------


@dataclass
class SegmentReport:
    path: Path
    records: int = 0
    torn_bytes: int = 0  # bytes after the last complete zstd frame
    error: str | None = None


def parse_name(path: Path) -> tuple[str, int]:
    """``<run>-<segment>.jnl.zst`` -> (run, segment)."""
    stem = path.name[: -len(SUFFIX)]
    run, _, seg = stem.rpartition("-")
    return run, int(seg)


def read_segment(path: Path, report: SegmentReport | None = None) -> Iterator[Record]:
    """Yield every complete record of a segment; stop quietly at a torn tail (the report,
    if given, says how many bytes were left unread and why)."""
    _, segment = parse_name(path)
    rep = report or SegmentReport(path)
    buf = path.read_bytes()
    dctx = zstandard.ZstdDecompressor()
    index = 0
    while buf:
        d = dctx.decompressobj()
        try:
            raw = d.decompress(buf)
        except zstandard.ZstdError as e:
            rep.torn_bytes, rep.error = len(buf), f"undecodable zstd frame: {e}"
            return
        if not d.eof:
            rep.torn_bytes, rep.error = len(buf), "torn tail (incomplete zstd frame)"
            return
        buf = d.unused_data
        mv = memoryview(raw)
        off = 0
        n = len(raw)
        while off < n:
            kind, ts, seq, clen, dlen = _HEADER.unpack_from(mv, off)
            off += _HEADER.size
            conn = bytes(mv[off:off + clen]).decode()
            off += clen
            data = bytes(mv[off:off + dlen])
            off += dlen
            yield Record(kind, ts, seq, conn, data, segment, index)
            index += 1
            rep.records += 1


def segments(data_dir: Path, venue: str | None = None, run: str | None = None,
             date: str | None = None) -> list[Path]:
    """Journal segment paths, ordered by (run, segment)."""
    root = data_dir / "journal"
    pattern = f"{venue or '*'}/date={date or '*'}/{run or '*'}-*{SUFFIX}"
    found = [p for p in root.glob(pattern) if parse_name(p)[0] == (run or parse_name(p)[0])]
    return sorted(found, key=lambda p: (p.parent.parent.name, *parse_name(p)))


def runs(data_dir: Path, venue: str | None = None, date: str | None = None) -> dict[
        tuple[str, str], list[Path]]:
    """``{(venue, run): [segments in order]}``."""
    out: dict[tuple[str, str], list[Path]] = {}
    for p in segments(data_dir, venue, None, date):
        out.setdefault((p.parent.parent.name, parse_name(p)[0]), []).append(p)
    return out


def read_run(data_dir: Path, venue: str, run: str,
             reports: list[SegmentReport] | None = None) -> Iterator[Record]:
    """Every record of one venue's run, in journal order, across date folders."""
    for p in segments(data_dir, venue, run):
        rep = SegmentReport(p)
        if reports is not None:
            reports.append(rep)
        yield from read_segment(p, rep)
