"""RunTail follows a journal while its writer appends, rotates and crosses midnight."""

from __future__ import annotations

import os
from pathlib import Path

from recorder import journal as jr

MIDNIGHT = 1_748_304_000_000_000_000  # 2025-05-27T00:00:00Z


def test_the_tail_reads_every_record_once_in_order_across_segments_and_days(
        data_dir: Path) -> None:
    w = jr.JournalWriter(data_dir, "v", "run", segment_bytes=3_000)
    tail = jr.RunTail(data_dir, "v", "run")
    seen: list[int] = []
    n = 0
    for batch in range(40):
        for _ in range(7):
            ts = MIDNIGHT - 20 * 7 + n  # the batches cross midnight half way
            w.append(jr.KIND_IN, "c", ts, os.urandom(60).hex().encode() + b"#%d" % n)
            n += 1
        w.write_batch(*w.take_batch(MIDNIGHT - 20 * 7 + n))
        if batch % 3 == 0:
            seen += [int(r.data.rsplit(b"#", 1)[1]) for r in tail.poll(max_frames=2)]
    w.close()
    while True:
        got = tail.poll(final=True)
        if not got and tail.at_end:
            break
        seen += [int(r.data.rsplit(b"#", 1)[1]) for r in got]
    assert seen == list(range(n))
    segs = jr.segments(data_dir, "v", "run")
    assert len(segs) > 3 and {p.parent.name for p in segs} == {"date=2025-05-26",
                                                               "date=2025-05-27"}
    assert tail.torn_bytes == 0


def test_a_torn_tail_waits_while_live_and_is_counted_once_the_run_ended(data_dir: Path) -> None:
    w = jr.JournalWriter(data_dir, "v", "run")
    for i in range(5):
        w.append(jr.KIND_IN, "c", MIDNIGHT + i, b"frame %d" % i)
    w.close()
    [seg] = jr.segments(data_dir, "v", "run")
    whole = seg.read_bytes()
    with open(seg, "ab") as f:
        f.write(whole[: len(whole) // 2])  # half a zstd frame: a writer mid-write, or a crash
    tail = jr.RunTail(data_dir, "v", "run")
    assert [r.data for r in tail.poll()] == [b"frame %d" % i for i in range(5)]
    assert tail.poll() == [] and not tail.at_end and tail.torn_bytes == 0  # may still come
    assert tail.poll(final=True) == [] and tail.at_end
    assert tail.torn_bytes == len(whole) // 2
