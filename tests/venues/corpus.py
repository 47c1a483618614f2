"""Every venue's fixture frames as one corpus, and what each venue's test folder declares for
the tests that run over every venue of the catalogue (``test_contract.py``,
``test_no_value_lost.py``): its ``contract.py`` module.

A venue's ``tests/venues/<venue>/contract.py`` has:

- ``frames(name) -> Iterator[Frame]``: the frames of its fixture ``fixtures/<name>.json``
  and how each enters its adapter (connection, SSE event, REST tag);
- ``UNKNOWN``: frames of a message type nobody handles, as ``(conn, bytes)``;
- ``NOT_SIMULATED``: ``{table: why}``, the tables its simulator yields only in a fault or
  another special mode (each covered by a named end-to-end test instead);
- ``SIM`` and ``OPTIONS``: simulator and venue options for the contract's recording, over
  ``conf/sim.toml``'s (a faster market, a shorter ping interval).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from recorder.rows import Row
from recorder.venues import CATALOGUE

HERE = Path(__file__).resolve().parent  # tests/venues/<venue>/fixtures/


def fixtures(venue: str) -> Path:
    return HERE / venue / "fixtures"


def load(venue: str, name: str) -> list[Any]:
    # stdlib json: integers beyond 64 bits stay exact, as the venue's text has them
    frames = json.loads((fixtures(venue) / f"{name}.json").read_text())
    assert isinstance(frames, list) and frames
    return frames


def dumps(obj: Any) -> bytes:
    return json.dumps(obj).encode()


@dataclass
class Frame:
    """One fixture frame: ``sent`` is the JSON the venue sent (its leaves are checked),
    ``records`` the objects of it that are records (random keys go there)."""

    venue: str
    name: str
    index: int
    sent: Any
    feed: Callable[[Any, Any], list[Row]]  # (adapter, sent) -> rows
    records: Callable[[Any], list[dict[str, Any]]]

    def rows(self, sent: Any = None) -> list[Row]:
        """What a fresh offline adapter of the venue makes of the frame (or of ``sent``)."""
        ad = CATALOGUE.venue(self.venue).make_adapter(self.venue, None, {}, offline=True)
        return self.feed(ad, self.sent if sent is None else sent)


def items(v: Any) -> list[dict[str, Any]]:
    """``v`` itself when an object, or the objects of a list."""
    if isinstance(v, dict):
        return [v]
    if isinstance(v, list):
        return [x for x in v if isinstance(x, dict)]
    return []


# Objects that are maps (their keys are data: currencies, assets, margin managers), not
# records: a random key there is a new entry, not an undeclared field.
MAPS = frozenset({"open_interest", "feeds", "subaccount_balances", "status"})


def with_lists(roots: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Record roots plus the objects nested in them (book levels, legs, items, structs such
    as option_pricing), at any depth."""
    out: list[dict[str, Any]] = []

    def add(obj: dict[str, Any]) -> None:
        out.append(obj)
        for k, v in obj.items():
            if isinstance(v, dict) and k not in MAPS:
                add(v)
            elif isinstance(v, list):
                for x in v:
                    if isinstance(x, dict):
                        add(x)
    for r in roots:
        add(r)
    return out


def contract(venue: str) -> ModuleType:
    """``tests/venues/<venue>/contract.py`` (a venue of the catalogue without one fails)."""
    return importlib.import_module(f"tests.venues.{venue}.contract")


def corpus(venue: str) -> list[Frame]:
    """Every frame of every fixture of ``venue``."""
    c = contract(venue)
    return [f for path in sorted(fixtures(venue).glob("*.json")) for f in c.frames(path.stem)]


VENUES = tuple(CATALOGUE.venues)
