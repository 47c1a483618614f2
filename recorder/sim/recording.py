"""What a native replay serves: one config section's journal between two times."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from recorder import journal as jr


@dataclass(frozen=True)
class Recording:
    """The journal slice of one venue as configured: ``data/journal/<venue>/``, where
    ``venue`` is the config section name (``[venues.dx] adapter = "diffusal"`` records under
    ``dx``), from ``start`` to ``end`` (ns on ``ts_recv``, end exclusive; None: open).

    The replay command (:func:`recorder.replay.serve_native`) makes it and hands it to the
    venue's replay server as ``recording=``; a server that answers requests from what was
    recorded (REST bodies, a catalogue, the answers to account requests) reads it here and
    never looks for a journal folder itself."""

    data_dir: Path
    venue: str
    start: int | None = None
    end: int | None = None

    def records(self, kinds: Iterable[int] = (jr.KIND_IN,), *,
                before_start: bool = False) -> Iterator[jr.Record]:
        """The slice's records of these kinds, run after run, each in journal order.
        ``before_start``: from the first record on, not from ``start``: what was current at
        ``start`` (the catalogue a client discovered, its REST hydration) was recorded
        before it."""
        wanted = frozenset(kinds)
        lo = None if before_start else self.start
        hi = self.end
        for (folder, run), _ in sorted(jr.runs(Path(self.data_dir), self.venue).items()):
            if folder != self.venue:
                continue
            for rec in jr.read_run(Path(self.data_dir), folder, run):
                if rec.kind not in wanted or lo is not None and rec.ts_recv < lo \
                        or hi is not None and rec.ts_recv >= hi:
                    continue
                yield rec

    def rest(self, *, before_start: bool = True) -> Iterator[tuple[jr.Record, jr.Rest]]:
        """The recorded HTTP responses, decoded (a malformed header is skipped)."""
        for rec in self.records((jr.KIND_REST,), before_start=before_start):
            try:
                yield rec, jr.decode_rest(rec.data)
            except ValueError:
                continue
