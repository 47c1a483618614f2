"""The normalizer (recorder.normalize): what it hands the adapter besides inbound frames."""

from __future__ import annotations

from recorder.journal import KIND_OUT
from recorder.normalize import Normalizer
from recorder.venues.diffusal.adapter import make_adapter


def test_normalizer_hands_our_sent_messages_to_the_adapter() -> None:
    ad = make_adapter("diffusal", None, {}, offline=True)
    norm = Normalizer(ad)
    rows, actions = norm.process(KIND_OUT, "public-0", 1,
                                 b'{"method":"SUBSCRIBE","params":["global@rfq"],"id":41}')
    assert (rows, list(actions)) == ([], [])
    assert ad.pending[41] == ("public-0", "SUBSCRIBE", ["global@rfq"])
    # a redacted AUTH is still recognised, and its reply is read as the AUTH answer
    norm.process(KIND_OUT, "private", 2, b'{"method":"AUTH","params":"***","id":42}')
    rows, _ = ad.on_frame("private", b'{"result":{"status":"authenticated"},"id":42}')
    assert [t.name for t, _ in rows] == ["diffusal_auth", "session_events"]
