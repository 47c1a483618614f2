"""The contract between the spine and the venues, and the catalogue: a value listing them.

The spine (collector, lake builder, views, replay) never imports a venue: it is handed a
:class:`Catalogue`, built in :mod:`recorder.venues` from what each venue's :class:`VenueSpec`
declares (its adapter factory, its options, its tables, its simulator), and looks venues and
tables up in it. An :class:`Adapter` is sans-I/O (like h11): the glue hands it connection
events and frames; it returns typed rows and :data:`~recorder.actions.Action` objects. It never
awaits, never reads a clock and never touches a socket, so the same code runs live, on
fixtures in tests, and over old journals when the lake is rebuilt.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

from recorder.actions import Action, ConnSpec
from recorder.config import Config, env_names, split_where
from recorder.errors import ConfigError, MissingSecret
from recorder.options import OptionProblems, Problem, check
from recorder.rows import Row
from recorder.schema import SHARED, Table


class Adapter(Protocol):
    """The client side of a venue. One instance per venue per run (or per rebuild).
    Subclass :class:`recorder.venues.base.BaseAdapter` for the defaults."""

    def connections(self) -> Sequence[ConnSpec]: ...

    def on_connected(self, conn: str) -> Sequence[Action]:
        """The transport opened ``conn``: return auth and subscribe messages."""
        ...

    def on_disconnected(self, conn: str) -> None:
        """``conn`` is gone; forget per-connection state (acks, pending requests)."""
        ...

    def on_frame(self, conn: str, data: bytes) -> tuple[list[Row], Sequence[Action]]:
        """One inbound frame -> rows for the lake, and actions for the transport."""
        ...

    def on_response(self, conn: str, tag: str, status: int,
                    body: bytes) -> tuple[list[Row], Sequence[Action]]:
        """The answer to a :class:`~recorder.actions.Fetch` (status 0: no answer, body holds
        the error)."""
        ...

    def on_start(self) -> Sequence[Action]:
        """Actions due when a live run starts, before any frame (never on rebuild)."""
        ...

    def on_sent(self, conn: str, data: bytes) -> None:
        """A message we sent, as journaled (live and on rebuild)."""
        ...

    def data_only(self, conn: str, data: bytes) -> bool:
        """True when the frame's only effect is rows: no actions, no change of the adapter's
        state that later actions depend on, no session row. The collector then journals it
        without calling ``on_frame`` (the lake builder makes its rows); a cheap test on the
        bytes, never a parse. When in doubt, False."""
        ...


@dataclass(frozen=True)
class VenueSpec:
    """One venue = one folder + this object + fixtures.

    ``make_adapter(venue, url, options, *, offline=False, sim=None)`` reads the venue's own
    config keys into ``options`` (its dataclass, see :mod:`recorder.options`), reads its
    secrets and returns an adapter; ``offline`` (rebuild, recovery) needs neither.
    ``start_simulator(options)`` starts the venue's server side on loopback and returns
    ``(url, stop_coroutine_fn, adapter_overrides)``.
    """

    name: str
    tables: tuple[Table, ...]
    make_adapter: Callable[..., Adapter]
    options: type
    start_simulator: Callable[..., Any] | None = None
    send_limit: tuple[int, float] | None = None  # (messages, per seconds) for paced sends
    # (connection attempts, per seconds) across all of the venue's connections
    connect_limit: tuple[int, float] | None = None
    serve: Callable[..., Any] | None = None  # async serve(host, port, **opts): `recorder sim`
    # Native replay: (**opts) -> a server with start(host, port), stop(), url, subscribed()
    # and publish(frame_bytes, conn_id), the simulator's server side fed by the journal.
    # In a replay, opts include ``recording`` (a recorder.sim.Recording: the journal slice
    # replayed), which the server reads for what it answers from the recording.
    replay_server: Callable[..., Any] | None = None


@dataclass(frozen=True)
class Catalogue:
    """Every venue by name and every table of the lake by name (the shared ones first)."""

    venues: Mapping[str, VenueSpec]
    tables: Mapping[str, Table]

    @classmethod
    def of(cls, *specs: VenueSpec) -> Catalogue:
        """The catalogue of ``specs``; refuses two venues or two tables of one name, and a
        table that names another venue than the one declaring it."""
        venues: dict[str, VenueSpec] = {}
        tables = {t.name: t for t in SHARED}
        for spec in specs:
            if spec.name in venues:
                raise ValueError(f"venue {spec.name} declared twice")
            venues[spec.name] = spec
            for t in spec.tables:
                if t.venue != spec.name:
                    raise ValueError(f"table {t.name} of venue {spec.name} says {t.venue}")
                if t.name in tables:
                    raise ValueError(f"table {t.name} declared twice")
                tables[t.name] = t
        return cls(MappingProxyType(venues), MappingProxyType(tables))

    def venue(self, adapter: str) -> VenueSpec:
        """The venue (adapter) of that name; KeyError names the known ones."""
        try:
            return self.venues[adapter]
        except KeyError:
            raise KeyError(f"unknown adapter {adapter!r} (known: "
                           f"{', '.join(sorted(self.venues))})") from None

    def problems(self, cfg: Config) -> list[Problem]:
        """Every problem of ``cfg``'s venue sections: an adapter nobody declares, and each
        enabled venue's options as its dataclass reads them."""
        out: list[Problem] = []
        for v in cfg.venues:
            where = f"[venues.{v.name}]"
            spec = self.venues.get(v.adapter)
            if spec is None:
                out.append((f"{where}.adapter", f"unknown adapter {v.adapter!r} (known: "
                            f"{', '.join(sorted(self.venues))})"))
            elif v.enabled:
                out += check(spec.options, v.options, where)[1]
        return out

    def preflight(self, cfg: Config) -> list[tuple[str, str]]:
        """Every problem a recording of ``cfg``'s enabled venues would meet before connecting:
        an adapter nobody declares, each venue's options as its dataclass reads them, every
        secret it names that is not set (checked by name only; a secret's value is never
        printed), and whatever else its adapter refuses. ``(where, why)``."""
        out: list[tuple[str, str]] = list(self.problems(cfg))
        refused = {w.split("]", 1)[0] + "]" for w, _ in out}
        for v in cfg.venues:
            where = f"[venues.{v.name}]"
            if not v.enabled or where in refused:
                continue
            missing = [] if v.simulate else [(k, n) for k, n in env_names(v.options)
                                             if not os.environ.get(n)]
            for k, n in missing:
                out.append((f"{where}.{k}", f"environment variable {n} is not set"))
            sim = {"api_key": "validation"} if v.simulate else None
            try:
                self.venues[v.adapter].make_adapter(v.name, v.url or "ws://validate",
                                                    v.options, sim=sim)
            except MissingSecret as e:
                if not missing:
                    out.append((where, str(e)))
            except ConfigError as e:
                out.append(split_where(str(e), where))
            except Exception as e:  # noqa: BLE001 - an adapter that cannot start is a config problem
                out.append((where, f"{type(e).__name__}: {e}"))
        return out

    def check(self, cfg: Config) -> None:
        """Raise :class:`~recorder.options.OptionProblems` naming the file and, for each
        problem of its venue sections, the key and why: all of them at once."""
        problems = self.problems(cfg)
        if problems:
            raise OptionProblems(problems, cfg.path)
