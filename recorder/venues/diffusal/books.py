"""Diffusal order-book sequence sync, sans-I/O: which depth messages continue a symbol's book,
and when it must be fetched again over REST.

A symbol's book is fed by two streams (``<symbol>@depth`` and the grouped ``<und>@depth``)
and by REST snapshots, all numbered by one ``sequence``
(https://docs.diffusal.xyz/docs/api/websocket "Order Book Synchronization"). A diff that does
not follow the last sequence held (or any diff before a snapshot) is a gap: a ``gap`` row, and
a resync from the REST snapshot, whose sequence reconciles with the streams'. Diffs seen while
resyncing are kept, so a snapshot older than them still tells whether the book is whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from recorder.rows import Row, session


@dataclass
class Book:
    """Sequence state of one symbol's book (both its instrument and grouped streams)."""

    last: int | None = None
    resyncing: bool = False
    pending: set[int] = field(default_factory=set)  # diff sequences seen while resyncing
    attempts: int = 0


class Books:
    """Every symbol's :class:`Book`. Each call returns the ``session_events`` rows it makes
    and whether the symbol's REST snapshot must be fetched (the adapter asks for it)."""

    def __init__(self) -> None:
        self.books: dict[str, Book] = {}

    def update(self, sym: str, seq: int, kind: object, source: str,
               stream: str | None) -> tuple[list[Row], bool]:
        """A ``snapshot`` or ``diff`` of ``sym`` numbered ``seq`` (from ``source``: ws or
        rest); other kinds change nothing."""
        book = self.books.setdefault(sym, Book())
        rows: list[Row] = []
        if kind == "snapshot":
            return rows, self._snapshot(sym, book, seq, source, rows)
        if kind == "diff":
            return rows, self._diff(sym, book, seq, stream, rows)
        return rows, False

    def retry_delay(self, sym: str) -> float | None:
        """A REST snapshot of ``sym`` failed: seconds until the next try while its book is
        resyncing (exponential, at most 30 s), else None (nothing waits for it)."""
        book = self.books.get(sym)
        if book is None or not book.resyncing:
            return None
        book.attempts += 1
        return min(30.0, 2.0 ** min(book.attempts, 5) / 2)

    def _snapshot(self, sym: str, book: Book, seq: int, source: str, rows: list[Row]) -> bool:
        if book.last is not None and not book.resyncing and seq <= book.last:
            return False  # older than what we already hold (a slower stream's snapshot)
        was_resyncing = book.resyncing
        book.last = seq
        while book.last + 1 in book.pending:
            book.last += 1
        later = {s for s in book.pending if s > book.last}
        book.pending.clear()
        book.resyncing = False
        if was_resyncing:
            rows.append(session("resynced", channel=sym, received=seq,
                                reason=f"{source} snapshot; book continues at {book.last}"))
        if not later:
            return False
        # The snapshot is older than diffs we already hold, with a hole between: still not
        # continuous. Record it and ask again.
        self._gap(sym, book, book.last + 1, min(later), "snapshot older than held diffs", rows)
        book.pending = later
        return True

    def _diff(self, sym: str, book: Book, seq: int, stream: str | None,
              rows: list[Row]) -> bool:
        if book.resyncing:
            book.pending.add(seq)
            return False
        if book.last is None:
            self._gap(sym, book, None, seq, "diff before any snapshot", rows, stream)
            book.pending.add(seq)
            return True
        if seq <= book.last:
            return False  # the same diff from the other stream (instrument vs grouped)
        if seq == book.last + 1:
            book.last = seq
            return False
        self._gap(sym, book, book.last + 1, seq, "sequence gap", rows, stream)
        book.pending.add(seq)
        return True

    @staticmethod
    def _gap(sym: str, book: Book, expected: int | None, received: int, why: str,
             rows: list[Row], stream: str | None = None) -> None:
        rows.append(session("gap", channel=sym, expected=expected, received=received,
                            reason=f"{why}; resync from REST", detail={"stream": stream}))
        book.resyncing = True
        book.attempts += 1
