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

import glob
import os
import queue
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

import orjson
import zstandard

from recorder.errors import StorageError

if TYPE_CHECKING:  # the builder and readers import the journal without an event loop
    import asyncio

KIND_IN = 0  # a frame the venue sent
KIND_OUT = 1  # a control message we sent (secrets redacted)
KIND_META = 2  # a transport event (connected, disconnected, ...) as JSON
KIND_REST = 3  # an HTTP response: one JSON header line ({tag, status, url}), then the body
KIND_NAMES = {KIND_IN: "in", KIND_OUT: "out", KIND_META: "meta", KIND_REST: "rest"}

_HEADER = struct.Struct("<BqqHI")
SUFFIX = ".jnl.zst"


class Record(NamedTuple):
    """One journal record. A named tuple: the lake builder makes one per record, and a
    frozen dataclass cost it a few per cent (make bench, py-spy)."""

    kind: int
    ts_recv: int
    seq: int
    conn: str
    data: bytes
    segment: int
    index: int


class Rest(NamedTuple):
    """A decoded ``rest`` record: the request's tag, the HTTP status (0: no answer, the body
    then says why), the URL asked, the body."""

    tag: str
    status: int
    url: str
    body: bytes


def decode_rest(data: bytes) -> Rest:
    """The one decoder of a ``rest`` record's bytes (a JSON header line, then the body);
    ValueError when the header is not one."""
    head, _, body = data.partition(b"\n")
    try:
        h = orjson.loads(head)
        return Rest(str(h["tag"]), int(h["status"]), str(h["url"]), body)
    except (KeyError, TypeError) as e:
        raise ValueError(f"rest record header {head[:200]!r}: {e!r}") from e


def day(ts_ns: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts_ns // 1_000_000_000))


class JournalWriter:
    """Appends records for one venue and one run.

    ``append`` and ``flush`` run on the event loop and never block: ``flush`` hands the
    buffered records to the journal's own writer thread, which compresses and writes them and
    does nothing else, so the flush interval holds under any load (no Parquet work shares it).
    Memory is bounded: when the batches waiting for the disk exceed ``max_pending_bytes``,
    ``on_pressure(True)`` asks the transports to stop reading their sockets (TCP backpressure)
    until the writer is below half of it (``on_pressure(False)``). A disk error stops the
    writer; ``failure`` holds it and ``on_failure`` is called (on the loop)."""

    def __init__(self, data_dir: Path, venue: str, run_id: str, *,
                 segment_bytes: int = 64 << 20, segment_seconds: float = 3600.0,
                 max_pending_bytes: int = 64 << 20) -> None:
        self.root = data_dir / "journal" / venue
        self.venue = venue
        self.run_id = run_id
        self.segment_bytes = segment_bytes
        self.segment_ns = int(segment_seconds * 1e9)
        # Level 1: on recorded frames it compressed as well as level 3 (about 120 bytes per
        # 680-byte frame) at four times the speed (measured with make bench / py-spy).
        self._cctx = zstandard.ZstdCompressor(level=1, write_checksum=True)
        self._buf = bytearray()
        self._seqs: dict[str, int] = {}
        self._conn_bytes: dict[str, bytes] = {}
        self.segment = 0
        self.index = 0  # index of the next record in the current segment
        self._seg_start_ns: int | None = None
        self._seg_day: str | None = None
        # compressed bytes the writer has put in segment _wseg (set by the writer thread,
        # read by the loop to decide rotation)
        self._wseg = -1
        self._wbytes = 0
        self._file: BinaryIO | None = None
        self._file_path: Path | None = None
        self.records = 0
        self.bytes_in = 0
        self.bytes_written = 0  # compressed bytes on disk (set by the writer thread)
        self.durable_records = 0  # records the OS has (written by the thread)
        self.durable_ts = 0  # ts_recv of the last record the OS has
        # writer thread
        self.max_pending_bytes = max_pending_bytes
        self.pending_bytes = 0
        self.pressured = False
        self.failure: BaseException | None = None
        self.on_pressure: Callable[[bool], None] | None = None
        self.on_failure: Callable[[BaseException], None] | None = None
        self._queue: queue.SimpleQueue[tuple[bytearray, int, str | None, bool, int, int] | None] = (
            queue.SimpleQueue())
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._batch_records = 0
        self._batch_last_ts = 0

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
        self._batch_records += 1
        self._batch_last_ts = ts_recv
        return self.segment, index, seq

    def take_batch(self, now_ns: int) -> tuple[bytearray, int, str | None, bool]:
        """Take the buffered records and decide rotation (on the loop).

        Returns ``(raw, segment, day, rotate)``; records appended after this call go to the
        next segment when ``rotate`` is true."""
        raw, self._buf = self._buf, bytearray()  # handed over whole: no copy on the loop
        seg, seg_day = self.segment, self._seg_day
        written = self._wbytes if self._wseg == seg else 0
        rotate = self._seg_start_ns is not None and (
            written + len(raw) // 4 >= self.segment_bytes
            or now_ns - self._seg_start_ns >= self.segment_ns
            or day(now_ns) != self._seg_day
        )
        if rotate:
            self.segment += 1
            self.index = 0
            self._seg_start_ns = None
            self._seg_day = None
        return raw, seg, seg_day, rotate

    def path_for(self, segment: int, seg_day: str) -> Path:
        return self.root / f"date={seg_day}" / f"{self.run_id}-{segment:06d}{SUFFIX}"

    # -- the writer thread -----------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Start the writer thread; ``loop`` receives the pressure and failure callbacks."""
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name=f"journal-{self.venue}",
                                        daemon=True)
        self._thread.start()

    def flush(self, now_ns: int | None = None) -> None:
        """Hand the buffered records to the writer thread (on the loop; never blocks)."""
        if self._thread is None:
            self.flush_now(sync=False)
            return
        n, last = self._batch_records, self._batch_last_ts
        self._batch_records = 0
        raw, seg, seg_day, rotate = self.take_batch(time.time_ns() if now_ns is None else now_ns)
        if not raw and not rotate:
            return
        with self._lock:
            self.pending_bytes += len(raw)
            over = self.pending_bytes > self.max_pending_bytes
        self._queue.put((raw, seg, seg_day, rotate, n, last))
        if over and not self.pressured:
            self.pressured = True
            if self.on_pressure is not None:
                self.on_pressure(True)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            raw, seg, seg_day, rotate, n, last = item
            if self.failure is None:
                try:
                    self.write_batch(raw, seg, seg_day, rotate)
                    self.durable_records += n
                    if last:
                        self.durable_ts = last
                except BaseException as e:  # noqa: BLE001 - reported to the loop, never lost
                    self.failure = e if isinstance(e, StorageError) else StorageError(
                        f"journal write failed ({self.root}): {e}")
                    self._call(self.on_failure, self.failure)
            with self._lock:
                self.pending_bytes -= len(raw)
                relieved = self.pressured and self.pending_bytes <= self.max_pending_bytes // 2
            if relieved:
                self.pressured = False
                self._call(self.on_pressure, False)

    def _call(self, fn: Callable[[Any], None] | None, arg: Any) -> None:
        if fn is None:
            return
        loop = self._loop
        if loop is None:
            fn(arg)
            return
        try:
            loop.call_soon_threadsafe(fn, arg)
        except RuntimeError:  # the loop has closed: nobody left to tell
            pass

    def close(self) -> None:
        """Flush everything and stop the thread (blocking: call it off the loop, or after
        the loop stopped appending). Raises the writer's failure, if any."""
        if self._thread is not None:
            self.flush()
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        else:
            self.flush_now(sync=True)
        if self.failure is None:
            try:
                self._close_file()
            except OSError as e:
                self.failure = StorageError(f"journal close failed ({self._file_path}): {e}")
        if self.failure is not None:
            raise self.failure

    def write_batch(self, raw: bytes | bytearray, segment: int, seg_day: str | None, rotate: bool,
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
            assert self._file is not None
            try:
                self._file.write(blob)
                self._file.flush()
                if self._wseg != segment:
                    self._wseg, self._wbytes = segment, 0
                self._wbytes += len(blob)
                self.bytes_written += len(blob)
            except OSError as e:
                raise StorageError(
                    f"cannot write journal {path}: {e.strerror or e}; the journal is intact "
                    f"up to the {self.durable_records} records already written") from e
        if sync and self._file is not None:
            os.fsync(self._file.fileno())
        if rotate:
            self._close_file()

    def flush_now(self, sync: bool = True) -> None:
        """Synchronous flush on the caller's thread (tests, no writer thread)."""
        n, last = self._batch_records, self._batch_last_ts
        self._batch_records = 0
        self.write_batch(*self.take_batch(time.time_ns()), sync=sync)
        self.durable_records += n
        if last:
            self.durable_ts = last

    def _close_file(self) -> None:
        f, self._file, self._file_path = self._file, None, None
        if f is not None:
            try:
                f.flush()
                os.fsync(f.fileno())
            finally:
                f.close()


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


def parse_records(raw: bytes, segment: int, index: int) -> list[Record]:
    """The records of one decompressed zstd frame; ``index`` is the first one's position."""
    out = []
    mv = memoryview(raw)
    off, n = 0, len(raw)
    unpack, hsize = _HEADER.unpack_from, _HEADER.size
    while off < n:
        kind, ts, seq, clen, dlen = unpack(mv, off)
        off += hsize
        conn = bytes(mv[off:off + clen]).decode()
        off += clen
        out.append(Record(kind, ts, seq, conn, bytes(mv[off:off + dlen]), segment, index))
        off += dlen
        index += 1
    return out


def next_frame(buf: bytes | memoryview) -> tuple[bytes, int] | None:
    """Decompress the first whole zstd frame of ``buf``: ``(data, bytes consumed)``, or None
    when the frame is not complete yet. Raises ``zstandard.ZstdError`` on garbage."""
    d = zstandard.ZstdDecompressor().decompressobj()
    raw = d.decompress(buf)
    if not d.eof:
        return None
    return raw, len(buf) - len(d.unused_data)


def read_segment(path: Path, report: SegmentReport | None = None) -> Iterator[Record]:
    """Yield every complete record of a segment; stop quietly at a torn tail (the report,
    if given, says how many bytes were left unread and why)."""
    _, segment = parse_name(path)
    rep = report or SegmentReport(path)
    buf = memoryview(path.read_bytes())
    index = 0
    while len(buf):
        try:
            got = next_frame(buf)
        except zstandard.ZstdError as e:
            rep.torn_bytes, rep.error = len(buf), f"undecodable zstd frame: {e}"
            return
        if got is None:
            rep.torn_bytes, rep.error = len(buf), "torn tail (incomplete zstd frame)"
            return
        raw, used = got
        buf = buf[used:]
        recs = parse_records(raw, segment, index)
        index += len(recs)
        rep.records += len(recs)
        yield from recs


class RunTail:
    """Follows one venue's journal of one run while it grows: :meth:`poll` returns the
    records written since the last call, in journal order, across segments and date folders.

    A segment is complete once a later one exists (the writer closes a segment before it
    opens the next). Bytes that do not make a whole zstd frame are waited for, unless the
    run has ended (``final=True``), when they are a torn tail: counted in ``torn_bytes``."""

    def __init__(self, data_dir: Path, venue: str, run: str, chunk: int = 2 << 20) -> None:
        self.data_dir, self.venue, self.run = data_dir, venue, run
        self.chunk = chunk
        self._paths: list[Path] = []
        self._i = 0  # index into _paths of the segment being read
        self._offset = 0
        self._index = 0
        self.torn_bytes = 0
        self.errors: list[str] = []
        self.records = 0
        self.last: tuple[int, int] | None = None  # (segment, index) of the last record read
        self._caught_up = True  # the last poll read everything there was

    def poll(self, final: bool = False, max_frames: int = 64,
             max_records: int = 20_000) -> list[Record]:
        """Records readable now: at most ``max_frames`` zstd frames, and no more frames once
        ``max_records`` are read (one flush of a firehose holds thousands: a builder catching
        up must not hold the whole backlog at once). ``final``: the run has ended, so no
        segment will grow any more."""
        out: list[Record] = []
        frames = 0
        if final or self._caught_up or not self._paths:
            self._refresh()  # only when what was known is read: a new segment may be there
        while self._i < len(self._paths) and frames < max_frames and len(out) < max_records:
            closed = final or self._i < len(self._paths) - 1
            got, done, n = self._read(self._paths[self._i], max_frames - frames,
                                      max_records - len(out), closed)
            out += got
            frames += n
            if not done:
                break
            self._i += 1
            self._offset = self._index = 0
        self._caught_up = frames < max_frames and len(out) < max_records
        self.records += len(out)
        if out:
            self.last = (out[-1].segment, out[-1].index)
        return out

    def _refresh(self) -> None:
        """Segments written so far. Once some are known, only date folders from the newest
        known one on are listed (a run's journal may span months of folders)."""
        if not self._paths:
            self._paths = segments(self.data_dir, self.venue, self.run)
            return
        root = self.data_dir / "journal" / self.venue
        newest = self._paths[-1].parent.name
        try:
            dates = sorted(d for d in os.listdir(root) if d >= newest)
        except FileNotFoundError:
            return
        seen = set(self._paths)
        new = [p for d in dates for p in (root / d).glob(f"{glob.escape(self.run)}-*{SUFFIX}")
               if p not in seen and parse_name(p)[0] == self.run]
        if new:
            self._paths = sorted([*self._paths, *new], key=lambda p: parse_name(p)[1])

    @property
    def at_end(self) -> bool:
        """Every segment seen so far has been read to its end."""
        return self._i >= len(self._paths)

    def _read(self, path: Path, max_frames: int, max_records: int,
              closed: bool) -> tuple[list[Record], bool, int]:
        """Whole frames of ``path`` from the offset: ``(records, done, frames)``; ``done``
        means nothing more will come from this file."""
        out: list[Record] = []
        try:
            with open(path, "rb") as f:
                end = f.seek(0, 2)
                avail = end - self._offset
                if avail <= 0:
                    return out, closed, 0
                f.seek(self._offset)
                buf = f.read(min(self.chunk, avail))
        except FileNotFoundError:
            self.errors.append(f"{path.name}: segment removed while it was being read")
            return out, True, 0
        segment = parse_name(path)[1]
        mv = memoryview(buf)
        frames = 0
        while len(mv) and frames < max_frames and len(out) < max_records:
            try:
                got = next_frame(mv)
            except zstandard.ZstdError as e:
                self._torn(path, end - self._offset, f"undecodable zstd frame: {e}")
                return out, True, frames
            if got is None:
                if len(buf) < avail:  # a frame larger than the chunk: read more next time
                    self.chunk *= 2
                    return out, False, frames
                if closed:
                    self._torn(path, end - self._offset, "torn tail (incomplete zstd frame)")
                    return out, True, frames
                return out, False, frames
            raw, used = got
            mv = mv[used:]
            self._offset += used
            recs = parse_records(raw, segment, self._index)
            self._index += len(recs)
            out += recs
            frames += 1
        if len(mv) or len(buf) < avail:
            return out, False, frames
        return out, closed, frames

    def _torn(self, path: Path, n: int, why: str) -> None:
        self.torn_bytes += n
        self.errors.append(f"{path.name}: {n} bytes not readable ({why})")


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


def last_in(data_dir: Path, venue: str, run: str) -> int | None:
    """``ts_recv`` of the last inbound frame of a venue's run (reads from the last segment
    backwards, up to a torn tail), or None when it has none."""
    for p in reversed(segments(data_dir, venue, run)):
        last = None
        for rec in read_segment(p):
            if rec.kind == KIND_IN:
                last = rec.ts_recv
        if last is not None:
            return last
    return None
