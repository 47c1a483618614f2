"""The venue registry: one line per venue. Each module exposes ``VENUE`` (a :class:`VenueSpec`)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from recorder.venues.base import VenueSpec

VENUES: dict[str, str] = {
    "mackinac": "recorder.venues.mackinac",
    "powertrade": "recorder.venues.powertrade",
    "derive": "recorder.venues.derive",
    "diffusal": "recorder.venues.diffusal",
    "totalis": "recorder.venues.totalis",
}


def get(name: str) -> VenueSpec:
    return importlib.import_module(VENUES[name]).VENUE


def load_venues() -> dict[str, VenueSpec]:
    return {name: get(name) for name in VENUES}
