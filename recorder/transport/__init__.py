"""Transports: own sockets, reconnects, pings and watchdogs; know nothing of venue messages.

``TRANSPORTS`` maps a ``ConnSpec.kind`` to its connection class. Every class takes
``(spec, settings, link, http, pacing)`` and has ``status``, ``submit(action)`` and
``async run(stop)``.
"""

from __future__ import annotations

from typing import Any

from recorder.transport.sse import SseConnection
from recorder.transport.ws import WsConnection

TRANSPORTS: dict[str, Any] = {"ws": WsConnection, "sse": SseConnection}
