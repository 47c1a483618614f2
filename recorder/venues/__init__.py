"""The catalogue: every venue, one line each. A venue is its folder, whose ``VENUE`` (a
:class:`~recorder.catalogue.VenueSpec`) declares its adapter, options, tables and simulator.

Only the application layer (the CLI, ``record``, the views, replay, ``verify``) imports this
module; the spine is handed the value.
"""

from __future__ import annotations

from recorder.catalogue import Catalogue
from recorder.venues import derive, diffusal, mackinac, powertrade, totalis

CATALOGUE = Catalogue.of(
    mackinac.VENUE,
    powertrade.VENUE,
    derive.VENUE,
    diffusal.VENUE,
    totalis.VENUE,
)
