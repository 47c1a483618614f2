"""What adapters share: :class:`BaseAdapter` (defaults for the optional callbacks) and the
frame prelude every venue's ``on_frame`` starts with.

The prelude, in order: parse the frame (``malformed`` when it is not JSON), check its shape
(``unexpected_shape``), look the handler up in a table keyed on the venue's discriminator
(``unknown_type`` when no entry has it), run it (``unexpected_shape`` when it fails on what
the frame holds). Each step's failure is an ``unhandled`` row with the raw frame: counted,
stored, never dropped, never fatal. The contract itself (``Adapter``, ``VenueSpec``) is in
:mod:`recorder.catalogue`; rows and actions in :mod:`recorder.rows` and :mod:`recorder.actions`.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from recorder.actions import NO_ACTIONS, Action
from recorder.rows import JSONError, Row, loads, unhandled, with_extra
from recorder.schema import Table

Result = tuple[list[Row], Sequence[Action]]
Handler = Callable[..., Result]
# What a handler raises when a frame's values are not what the docs say (a list where an
# object was expected, a missing key): the frame's failure, not the adapter's.
SHAPE_ERRORS: tuple[type[Exception], ...] = (TypeError, AttributeError, KeyError, ValueError)
_KEY = object()  # label default: the discriminator itself


def serve_from(module: str) -> Callable[..., Awaitable[None]]:
    """A venue's ``VenueSpec.serve`` (``recorder sim``): ``serve(host, port, **opts)`` of its
    server ``module``, imported only when called."""
    async def serve(host: str, port: int, **opts: Any) -> None:
        await importlib.import_module(module).serve(host, port, **opts)
    return serve

class BaseAdapter:
    """Defaults for the optional parts of :class:`recorder.catalogue.Adapter`."""

    def on_start(self) -> Sequence[Action]:
        """Actions due when the run starts, before any frame (e.g. a REST fetch whose answer
        decides what to open). Not called on rebuild: the answers are in the journal."""
        return NO_ACTIONS

    def on_connected(self, conn: str) -> Sequence[Action]:
        return NO_ACTIONS

    def on_disconnected(self, conn: str) -> None:
        return None

    def data_only(self, conn: str, data: bytes) -> bool:
        return False

    def on_sent(self, conn: str, data: bytes) -> None:
        """A message we sent on ``conn`` as journaled (secrets redacted), or the JSON record
        of a :class:`~recorder.actions.Fetch` request; also replayed on rebuild. Adapters
        that match replies to requests learn here what was really sent, identically live and
        from the journal."""
        return None

    def on_response(self, conn: str, tag: str, status: int, body: bytes) -> Result:
        return [unhandled("unexpected_response", body, msg_type=tag,
                          error=f"HTTP {status}; this adapter makes no requests")], NO_ACTIONS


# --- the frame prelude --------------------------------------------------------------------------

def reject(reason: str, data: bytes, msg_type: str | None = None,
           error: str | None = None) -> Result:
    """The frame as an ``unhandled`` row, and nothing to do."""
    return [unhandled(reason, data, msg_type=msg_type, error=error)], NO_ACTIONS


def json_object(data: bytes, not_object: str = "not a JSON object", *,
                text: bytes | None = None, msg_type: str | None = None,
                ) -> dict[str, Any] | Result:
    """Prelude steps 1-2: the frame (or its JSON ``text``, e.g. an SSE event's data) as a
    JSON object, or the result that says why it is not one (``malformed`` JSON, or
    ``unexpected_shape`` with ``not_object``). Callers tell the two apart with
    ``type(x) is dict``."""
    try:
        msg = loads(data if text is None else text)
    except JSONError as e:
        return reject("malformed", data, msg_type=msg_type, error=str(e))
    if type(msg) is not dict:
        return reject("unexpected_shape", data, msg_type=msg_type, error=not_object)
    return msg


def guard(data: bytes, msg_type: str | None, fn: Callable[..., Result], *args: Any,
          errors: tuple[type[Exception], ...] = SHAPE_ERRORS) -> Result:
    """Prelude step 4: ``fn(*args)``, or ``unexpected_shape`` (naming the exception) when
    it fails on what the frame holds."""
    try:
        return fn(*args)
    except errors as e:
        return reject("unexpected_shape", data, msg_type=msg_type,
                      error=f"{type(e).__name__}: {e}")


def dispatch(table: Mapping[str, Handler], key: Any, data: bytes, *args: Any,
             label: Any = _KEY, errors: tuple[type[Exception], ...] = SHAPE_ERRORS) -> Result:
    """Prelude steps 3-4: the handler ``table`` holds for the discriminator ``key``, run on
    ``args`` (guarded). No entry: ``unknown_type``. ``label`` is the ``msg_type`` of an
    unhandled row (default: the key, null when the frame has none, never the text "None")."""
    handler = table.get(key) if type(key) is str else None
    if label is _KEY:
        label = None if key is None else str(key)
    if handler is None:
        return reject("unknown_type", data, msg_type=label)
    return guard(data, label, handler, *args, errors=errors)


# --- handler-table helpers ----------------------------------------------------------------------

def plain(table: Table) -> Callable[[dict[str, Any]], Row]:
    """The row of ``table`` a message is as it is, undeclared keys (at any depth) kept in
    ``extra``. A flat message with only declared keys skips the walk (the common case)."""
    wire = table.wire_keys
    # Nested levels may hold undeclared members too: only flat tables skip the check.
    flat = not any(pa.types.is_nested(c.type) for c in table.columns)

    def row(msg: dict[str, Any]) -> Row:
        if flat and msg.keys() <= wire:
            return table, msg
        return table, with_extra(table, msg)
    return row


def one_row(make: Callable[[dict[str, Any]], Row]) -> Handler:
    """A handler whose message is one row (``make``, e.g. :func:`plain`) and nothing to do."""
    def handle(msg: dict[str, Any]) -> Result:
        return [make(msg)], NO_ACTIONS
    return handle
