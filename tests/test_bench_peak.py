"""The bench's replay peak is the replay's own: a child started from a big process must not
report the parent's resident set (Linux carries ``ru_maxrss`` over fork and exec, which is
how ``make bench`` once showed ~750 MiB for a replay of ~160 MiB)."""

from __future__ import annotations

from bench.replay_rss import peak_rss


def test_a_childs_peak_does_not_count_the_parents_memory() -> None:
    ballast = b"\x01" * (512 << 20)  # resident: every page written
    try:
        n, floor = peak_rss(None)  # imports and registry only, about 80 MiB
    finally:
        del ballast
    assert n == 0
    assert 0 < floor < 400
