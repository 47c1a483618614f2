"""Golden tests for the SSE decoder against the WHATWG standard, "Server-sent events", section
9.2.6 "Interpreting an event stream" (https://html.spec.whatwg.org/multipage/server-sent-events.html).

The four examples of that section are reproduced verbatim (stock ticker, test stream with ids,
empty data lines, "data:test" vs "data: test"); every stream is also fed one byte at a time and
in random chunks, which must not change a single emitted block.
"""

from __future__ import annotations

import random

import pytest

from recorder.sse import SseBlockTooLarge, SseDecoder, SseEvent, parse_event

Dispatched = tuple[str, str, str]  # (type, data, lastEventId) as an EventSource reports them


def dispatched(blocks: list[bytes], last: str = "") -> list[Dispatched]:
    """What a browser's EventSource would fire for these blocks."""
    out = []
    for b in blocks:
        ev = parse_event(b)
        if ev.id is not None:
            last = ev.id
        if ev.dispatches:
            assert ev.data is not None
            out.append((ev.event, ev.data, last))
    return out


def feed_all(stream: bytes, chunks: list[int] | None = None,
             dec: SseDecoder | None = None) -> tuple[SseDecoder, list[bytes]]:
    dec = dec or SseDecoder()
    blocks: list[bytes] = []
    if chunks is None:
        blocks += dec.feed(stream)
    else:
        i = 0
        for n in chunks:
            blocks += dec.feed(stream[i:i + n])
            i += n
        blocks += dec.feed(stream[i:])
    return dec, blocks


def every_split(stream: bytes) -> list[list[bytes]]:
    """The blocks for: whole, byte by byte, and five random chunkings (seeded)."""
    rng = random.Random(len(stream))
    runs = [feed_all(stream)[1], feed_all(stream, [1] * len(stream))[1]]
    for _ in range(5):
        runs.append(feed_all(stream, [rng.randint(1, 7) for _ in range(len(stream))])[1])
    return runs


def _same_bytes(block: bytes) -> bytes:
    # A blank line ending in CR is dispatched at once; when the LF of that CRLF comes in the
    # next read it is swallowed, so that block's raw bytes lack it. Nothing else may differ.
    return block[:-1] if block.endswith(b"\r\n\r\n") else block


def check(stream: bytes) -> tuple[list[bytes], list[Dispatched]]:
    runs = every_split(stream)
    for r in runs[1:]:
        assert [_same_bytes(b) for b in r] == [_same_bytes(b) for b in runs[0]]
        assert dispatched(r) == dispatched(runs[0])
    return runs[0], dispatched(runs[0])


# --- the standard's own examples ---------------------------------------------------------------

def test_spec_stock_ticker_multiline_data() -> None:
    blocks, evs = check(b"data: YHOO\ndata: +2\ndata: 10\n\n")
    assert blocks == [b"data: YHOO\ndata: +2\ndata: 10\n\n"]
    assert evs == [("message", "YHOO\n+2\n10", "")]


def test_spec_test_stream_ids_and_comment() -> None:
    stream = (b": test stream\n\n"
              b"data: first event\nid: 1\n\n"
              b"data:second event\nid\n\n"
              b"data:  third event\n")
    dec, blocks = feed_all(stream)
    assert blocks == [b"data: first event\nid: 1\n\n", b"data:second event\nid\n\n"]
    # "id" without a colon resets the last event id to the empty string
    assert dispatched(blocks) == [("message", "first event", "1"), ("message", "second event", "")]
    assert dec.keepalives == 1 and dec.last_event_id == ""
    # the third block has no blank line: it is not an event, and dropping the link discards it
    assert dec.pending == len(b"data:  third event\n")
    assert dec.reset() == len(b"data:  third event\n") and dec.pending == 0


def test_spec_empty_data_lines() -> None:
    stream = b"data\n\ndata\ndata\n\ndata:"
    dec, blocks = feed_all(stream)
    assert dispatched(blocks) == [("message", "", ""), ("message", "\n", "")]
    assert dec.pending == 5


def test_spec_space_after_colon_is_optional() -> None:
    blocks, evs = check(b"data:test\n\ndata: test\n\n")
    assert evs == [("message", "test", ""), ("message", "test", "")]
    assert [parse_event(b).data for b in blocks] == ["test", "test"]


def test_spec_event_types() -> None:
    _, evs = check(b"event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\n"
                   b"event: add\ndata: 113411\n\n")
    assert evs == [("add", "73857293", ""), ("remove", "2153", ""), ("add", "113411", "")]


# --- line endings, BOM, encoding ----------------------------------------------------------------

@pytest.mark.parametrize("nl", [b"\n", b"\r", b"\r\n"])
def test_every_line_ending(nl: bytes) -> None:
    stream = nl.join([b"event: quote_request:updated", b"id: 1789161257595-0",
                      b'data: {"a":1}', b"data: [2]", b"", b"data: x", b"", b""])
    blocks, evs = check(stream)
    assert evs == [("quote_request:updated", '{"a":1}\n[2]', "1789161257595-0"),
                   ("message", "x", "1789161257595-0")]
    assert b"".join(blocks) == stream[:len(b"".join(blocks))]  # raw bytes kept as sent


def test_mixed_line_endings_and_crlf_split_across_reads() -> None:
    dec = SseDecoder()
    # "\r" then "\n" in the next read is ONE line end, not a blank line
    assert dec.feed(b"data: a\r") == []
    assert dec.feed(b"\ndata: b\r") == []
    assert dec.feed(b"\n\r") == [b"data: a\r\ndata: b\r\n\r"]  # dispatched without waiting
    assert dec.feed(b"\n") == []  # the rest of that CRLF: no empty extra block
    assert dec.feed(b"data: c\n\r\n") == [b"data: c\n\r\n"]
    assert dec.feed(b"data: d\r\r") == [b"data: d\r\r"]
    assert dispatched([b"data: a\r\ndata: b\r\n\r", b"data: c\n\r\n", b"data: d\r\r"]) == [
        ("message", "a\nb", ""), ("message", "c", ""), ("message", "d", "")]


def test_bom_only_once_at_stream_start() -> None:
    bom = "\ufeff".encode()
    dec, blocks = feed_all(bom + b"data: one\n\n" + bom + b"data: two\n\n", [1, 1, 1, 2])
    # the second BOM is part of a field name ("\ufeffdata"): an unknown field, ignored
    assert dispatched(blocks) == [("message", "one", "")]
    assert blocks[0] == b"data: one\n\n"
    # a new connection may start with a BOM again
    dec.reset()
    assert dec.feed(bom + b"data: 3\n\n") == [b"data: 3\n\n"]


def test_utf8_split_inside_a_character_and_invalid_bytes() -> None:
    text = "data: Привет €\n\n".encode()
    blocks, evs = check(text)
    assert evs == [("message", "Привет €", "")]
    ev = parse_event(b"data: \xff\xfeok\n\n")
    assert ev.data == "\ufffd\ufffdok"


# --- fields ----------------------------------------------------------------------------------

def test_field_rules() -> None:
    assert parse_event(b"data:  two spaces\n\n").data == " two spaces"  # only one is removed
    assert parse_event(b"Data: x\nDATA: y\n\n") == SseEvent("message", None, None, None)
    assert parse_event(b"event\ndata: x\n\n").event == "message"  # empty type -> message
    assert parse_event(b"event: a\nevent: b\ndata: x\n\n").event == "b"
    assert parse_event(b"foo: bar\ndata: x\nbaz\n\n") == SseEvent("message", "x", None, None)
    assert parse_event(b"data: a:b: c\n\n").data == "a:b: c"  # only the first colon splits
    assert parse_event(b"id: a\x00b\ndata: x\n\n").id is None  # NUL: the id is ignored
    assert parse_event(b"id: 7\nid: 8\ndata: x\n\n").id == "8"


@pytest.mark.parametrize(("line", "value"), [
    (b"retry: 3000", 3000), (b"retry:0", 0), (b"retry: 10a", None), (b"retry: -5", None),
    (b"retry: 1.5", None), (b"retry:", None), (b"retry: \xd9\xa3", None),  # Arabic-Indic 3
])
def test_retry_only_ascii_digits(line: bytes, value: int | None) -> None:
    assert parse_event(line + b"\n\n").retry == value
    dec = SseDecoder()
    dec.feed(b"retry: 50\n\n")
    dec.feed(line + b"\n\n")
    assert dec.retry_ms == (50 if value is None else value)


def test_comments_are_keepalives_and_stay_in_event_blocks() -> None:
    dec = SseDecoder()
    assert dec.feed(b": keepalive\n\n:\n\n: a\n: b\n\n") == []
    assert dec.keepalives == 3
    # a comment directly before fields belongs to that block's raw bytes
    assert dec.feed(b": hi\nevent: x\ndata: 1\n\n") == [b": hi\nevent: x\ndata: 1\n\n"]
    assert dec.keepalives == 3
    # stray blank lines are nothing at all
    assert dec.feed(b"\n\n\n") == [] and dec.keepalives == 3


def test_blocks_without_data_are_emitted_for_their_id_and_retry() -> None:
    dec, blocks = feed_all(b"retry: 250\n\nid: 41\n\ndata: after\n\n")
    assert blocks == [b"retry: 250\n\n", b"id: 41\n\n", b"data: after\n\n"]
    assert [parse_event(b).dispatches for b in blocks] == [False, False, True]
    assert dispatched(blocks) == [("message", "after", "41")]  # no own id: inherits 41
    assert dec.retry_ms == 250 and dec.last_event_id == "41"


# --- last event id ---------------------------------------------------------------------------

def test_last_event_id_survives_events_without_id_and_reconnects() -> None:
    dec = SseDecoder()
    dec.feed(b"id: evt_1\ndata: a\n\ndata: b\n\n")
    assert dec.last_event_id == "evt_1"  # "b" had no id: not reset
    dec.feed(b"id: evt_2\ndata: c")  # cut before the blank line
    assert dec.last_event_id == "evt_1"  # a partial block's id never counts
    assert dec.reset() == len(b"id: evt_2\ndata: c")
    assert dec.last_event_id == "evt_1"  # what the reconnect resumes from
    assert dec.feed(b"id: evt_2\ndata: c\n\n") == [b"id: evt_2\ndata: c\n\n"]
    assert dec.last_event_id == "evt_2"
    dec.feed(b"id:\ndata: d\n\n")  # an explicit empty id resets it
    assert dec.last_event_id == ""


def test_partial_event_at_drop_is_never_emitted() -> None:
    dec = SseDecoder()
    out = dec.feed(b'id: 1\nevent: quote_request\ndata: {"id":"a"}\n\nid: 2\nevent: quote_req')
    assert out == [b'id: 1\nevent: quote_request\ndata: {"id":"a"}\n\n']
    assert dec.reset() > 0
    # the next connection starts clean: the stale half is not glued onto new bytes
    out = dec.feed(b'id: 2\nevent: quote_request\ndata: {"id":"b"}\n\n')
    assert dispatched(out, "1") == [("quote_request", '{"id":"b"}', "2")]
    # a drop right after "\r" (possible CRLF) leaves nothing pending either
    dec.feed(b"data: x\n\r")
    dec.reset()
    # a leading LF here is a blank line of the new stream (not the tail of an old CRLF)
    assert dec.feed(b"\ndata: y\n\n") == [b"data: y\n\n"]


def test_oversized_unfinished_event_raises_and_resets() -> None:
    dec = SseDecoder(max_block=64)
    with pytest.raises(SseBlockTooLarge, match="exceeds 64"):
        dec.feed(b"data: " + b"x" * 100)
    assert dec.pending == 0
    assert dec.feed(b"data: ok\n\n") == [b"data: ok\n\n"]
