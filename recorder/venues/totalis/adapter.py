"""Totalis client side, sans-I/O: SSE event blocks and WebSocket frames in, typed rows and
actions (open/stop per-request streams, subscribe/unsubscribe, ping) out.

Connections (https://docs.totalis.trade; notes ``shared/venues/000-totalis.md``):
- ``mm``: the market-maker firehose ``GET /v1/mm/quote-requests/stream`` (SSE, X-API-Key);
- ``qr:<id>``: ``GET /v1/quote-requests/{id}/stream``, opened for every quote request the
  firehose shows, stopped at its terminal event;
- ``co:<id>``: ``GET /v1/cashout-requests/{id}/stream``, opened for every ``cashout_request``;
- ``ws``: the post-trade WebSocket ``/ws``: ``auth``, then ``mm:quotes:{mm_id}`` and
  ``rfq:{rfq_id}`` for every RFQ the SSE side shows, dropped after its terminal event.

SSE frames reach the adapter as the raw bytes of one event block (what the journal holds);
:func:`recorder.transport.sse.parse_event` reads them, and the standard's "last event id" is
kept per connection here, so a rebuild from the journal gives the same ``sse_id``.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

import orjson

from recorder.actions import NO_ACTIONS, Action, ConnSpec, Open, Send, Stop
from recorder.config import secret
from recorder.errors import ConfigError
from recorder.exact import epoch_ns
from recorder.options import opt, typed
from recorder.rows import Row, session, unhandled
from recorder.schema import Table
from recorder.sse import parse_event
from recorder.venues.base import (
    BaseAdapter,
    Handler,
    Result,
    dispatch,
    guard,
    json_object,
    plain,
    reject,
)
from recorder.venues.totalis import tables as T

MM, WS = "mm", "ws"
QR, CO = "qr:", "co:"
USER_AGENT = "tick-recorder/0.1 (market-data archival)"
MM_STREAM_PATH = "/v1/mm/quote-requests/stream"
MM_ID_SOURCES = ("auth", "sse", "both")
# Ids are uuids; anything else is still recorded, but never put into a URL or a channel name.
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
# WS events after which an RFQ has nothing more to say on rfq:{id}. position:bought_back,
# rfq:cancelled and rfq:expired appear in the newer event catalog
# (https://docs.totalis.trade/guides/event-catalog) but not in the WebSocket page.
RFQ_TERMINAL = frozenset({"position:settled", "position:cancelled", "position:bought_back",
                          "rfq:cancelled", "rfq:expired"})


@dataclass(frozen=True)
class Settings:
    """``[venues.<name>]`` of a Totalis venue."""

    api_key_env: str | None = opt(None, "the NAME of an environment variable", bool)
    ws_url: str | None = opt(None, "a ws:// or wss:// URL",
                             lambda v: urlsplit(v).scheme in ("ws", "wss"))
    websocket: bool = opt(True, "true or false")
    request_streams: bool = opt(True, "true or false")
    cashout_streams: bool = opt(True, "true or false")
    mm_id_source: Literal["auth", "sse", "both"] = opt("both",
                                                       f"one of {list(MM_ID_SOURCES)}")
    mm_ids: tuple[str, ...] = opt((), "a list of MM ids (extra mm:quotes channels)",
                                  lambda v: all(_ID_RE.match(m) for m in v))
    ping_interval: float = opt(30.0, "time between WS pings, 1s..600s",
                               lambda v: 1 <= v <= 600)


def _base_url(url: str) -> str:
    """The REST/SSE origin from the configured url (``https://api.totalis.trade``)."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def _ws_url(base: str) -> str:
    parts = urlsplit(base)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, "/ws", "", ""))


# --- ISO-8601 times -> int ns ------------------------------------------------------------------

_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?"
                  r"(Z|z|[+-]\d{2}:?\d{2})?$")


def iso_ns(v: Any) -> Any:
    """An ISO-8601 string (the docs' ``2026-06-01T18:45:30.000Z``; no zone means UTC) as int
    ns, exactly. Numbers are epoch values whose unit is read from their size (the format of
    ``position:*`` ``timestamp`` is not documented). Anything else comes back unchanged, so
    the row fails its column type and lands in ``unhandled`` (bad_value) with its raw text."""
    if type(v) is str:
        m = _ISO.match(v)
        if m is None:
            return v
        y, mo, d, h, mi, s, frac, tz = m.groups()
        try:
            secs = calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(s)))
        except (ValueError, OverflowError):
            return v
        if not (1 <= int(mo) <= 12 and 1 <= int(d) <= 31 and int(h) < 24 and int(mi) < 60
                and int(s) < 61):
            return v
        if tz and tz not in ("Z", "z"):
            sign = -1 if tz[0] == "+" else 1
            hh, mm = int(tz[1:3]), int(tz[-2:])
            secs += sign * (hh * 3600 + mm * 60)
        ns = int((frac or "").ljust(9, "0")[:9])
        return secs * 1_000_000_000 + ns
    if type(v) is int or type(v) is float:
        ns = epoch_ns(v)
        return v if ns is None else ns
    return v


def _times(obj: dict[str, Any], keys: tuple[str, ...]) -> None:
    for k in keys:
        if k in obj and obj[k] is not None:
            obj[k] = iso_ns(obj[k])


# Undeclared keys are kept in `extra`, nested ones too (legs[1].title: Arrow would drop
# members a struct does not declare).
_ROWS = {t.name: plain(t) for t in T.TABLES}


def _row(table: Table, msg: dict[str, Any]) -> Row:
    return _ROWS[table.name](msg)


# --- the adapter ------------------------------------------------------------------------------

class TotalisAdapter(BaseAdapter):
    def __init__(self, base_url: str, settings: Settings, api_key: str | None = None,
                 ws_url: str | None = None) -> None:
        self.base = base_url
        self.settings = settings
        self.api_key = api_key
        self.ws_url = ws_url or settings.ws_url or (_ws_url(base_url) if base_url else "")
        # SSE state, per connection: the standard's last event id, the retry hint seen
        self._last_id: dict[str, str] = {}
        self._retry: dict[str, int] = {}
        self._in_snapshot = False
        self._book_seq: dict[str, int] = {}
        self.opened: dict[str, None] = {}  # per-request streams opened this run (ordered)
        self.ended: set[str] = set()  # per-request streams whose request is over
        # WS state
        self.mm_ids: dict[str, str] = dict.fromkeys(settings.mm_ids, "config")
        self.rfqs: dict[str, None] = {}  # RFQs to follow on rfq:{id} (ordered set)
        self.rfqs_done: set[str] = set()
        self._ws_authed = False
        self._subscribed: set[str] = set()
        self._last_pong: int | None = None
        self._sse: dict[str, dict[str, Callable[[str, dict[str, Any]], Result]]] = {
            MM: {"connected": self._connected, "snapshot_begin": self._snapshot_begin,
                 "snapshot_complete": self._snapshot_complete,
                 "quote_request": self._request(T.QUOTE_REQUEST),
                 # the colon and the underscore are as sent: quote_request:updated vs
                 # quote_request_expired (https://docs.totalis.trade/api-reference/
                 # quote-service-mm/stream, "Match them exactly").
                 "quote_request:updated": self._request(T.QUOTE_REQUEST_UPDATED),
                 "quote_request_expired": self._request_expired,
                 "cashout_request": self._cashout_request},
            QR: {"best_quote": self._best_quote(T.QR_BEST_QUOTE), "status": self._qr_status,
                 "committed": self._qr_terminal(T.QR_COMMITTED),
                 "cancelled": self._qr_terminal(T.QR_CANCELLED),
                 "expired": self._qr_terminal(T.QR_EXPIRED)},
            CO: {"best_quote": self._best_quote(T.CASHOUT_BEST_QUOTE), "status": self._co_status},
        }
        # WS events by `type`: control frames read the frame itself, events their `data`.
        self._ws: dict[str, Handler] = {
            "auth:success": self._auth_success, "auth:error": self._auth_error,
            "pong": self._pong, "error": self._ws_error}
        events: dict[str, Callable[[dict[str, Any], dict[str, Any]], Result]] = {
            "quote:accepted": self._ws_quote(T.QUOTE_ACCEPTED, ("confirmation_deadline",),
                                             follow=True),
            "mm_quote:accepted": self._mm_quote_accepted,
            "quote:confirmed": self._ws_quote(T.QUOTE_CONFIRMED),
            "quote:executed": self._ws_quote(T.QUOTE_EXECUTED),
            "quote:expired": self._ws_quote(T.QUOTE_EXPIRED),
            "quote:rejected": self._ws_quote(T.QUOTE_REJECTED),
            "quote:withdrawn": self._ws_quote(T.QUOTE_WITHDRAWN),
            "position:created": self._position(T.POSITION_CREATED),
            "position:settled": self._position(T.POSITION_SETTLED),
            "position:cancelled": self._position(T.POSITION_CANCELLED),
            "position:error": self._position(T.POSITION_ERROR),
            # The event catalog's other events (https://docs.totalis.trade/guides/
            # event-catalog) and, for old journals and venues that still send them, the
            # removed rfqs:open channel's rfq:created and quote:submitted.
            "position:failed": self._position(T.POSITION_FAILED),
            "position:bought_back": self._position(T.POSITION_BOUGHT_BACK),
            "vault:deposited": self._event(T.VAULT_DEPOSITED, "vault:deposited",
                                           ("occurred_at", "timestamp")),
            "vault:withdrawn": self._event(T.VAULT_WITHDRAWN, "vault:withdrawn",
                                           ("occurred_at", "timestamp")),
            "rfq:status": self._event(T.RFQ_STATUS, "rfq:status", ("timestamp",)),
            "rfq:cancelled": self._event(T.RFQ_CANCELLED, "rfq:cancelled", ("timestamp",)),
            "rfq:expired": self._event(T.RFQ_EXPIRED, "rfq:expired", ("timestamp",)),
            "rfq:created": self._event(T.RFQ_CREATED, "rfq:created",
                                       ("timestamp", "expires_at", "created_at")),
            "quote:submitted": self._event(T.QUOTE_SUBMITTED, "quote:submitted",
                                           ("timestamp", "valid_until")),
        }
        self._ws.update({kind: self._data(h) for kind, h in events.items()})

    # -- connections -------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        h = {"User-Agent": USER_AGENT}
        if self.api_key:
            h["X-API-Key"] = self.api_key
        return h

    def connections(self) -> Sequence[ConnSpec]:
        out = [ConnSpec(MM, self.base + MM_STREAM_PATH, self._headers(), kind="sse")]
        if self.settings.websocket:
            out.append(ConnSpec(WS, self.ws_url, {"User-Agent": USER_AGENT}, kind="ws"))
        return out

    def on_connected(self, conn: str) -> Sequence[Action]:
        if conn == WS:
            self._ws_authed = False
            self._subscribed = set()
            if not self.api_key:
                return NO_ACTIONS
            # https://docs.totalis.trade/guides/websocket "Send an auth message with your API
            # key immediately after connecting"; the key is redacted in the journal.
            return [Send(WS, orjson.dumps({"type": "auth", "api_key": self.api_key}).decode(),
                         paced=False, secret_keys=("api_key",))]
        if conn == MM:
            self._in_snapshot = False
        return NO_ACTIONS

    def on_disconnected(self, conn: str) -> None:
        if conn == WS:
            self._ws_authed = False
            self._subscribed = set()

    def _open(self, prefix: str, rid: Any, path: str) -> Result:
        name = f"{prefix}{rid}"
        if name in self.opened or not isinstance(rid, str):
            return [], NO_ACTIONS
        if not _ID_RE.match(rid):
            return [session("error", channel=None, reason="id unusable in a URL; stream not "
                            "opened", detail={"id": rid})], NO_ACTIONS
        self.opened[name] = None
        url = f"{self.base}{path.format(quote(rid, safe=''))}"
        return [], [Open(ConnSpec(name, url, self._headers(), kind="sse"))]

    # -- frames ------------------------------------------------------------------------------
    def on_frame(self, conn: str, data: bytes) -> Result:
        if conn == WS:
            return self._ws_frame(data)
        return self._sse_frame(conn, data)

    def _sse_frame(self, conn: str, data: bytes) -> Result:
        ev = parse_event(data)
        if ev.id is not None:
            self._last_id[conn] = ev.id
        last = self._last_id.get(conn) or None
        rows: list[Row] = []
        if ev.retry is not None and self._retry.get(conn) != ev.retry:
            self._retry[conn] = ev.retry
            rows.append(session("retry_hint", retry_after_s=ev.retry / 1000.0,
                                reason="SSE retry field: reconnection time"))
        if ev.data is None:
            if ev.id is None and ev.retry is None:
                rows.append(unhandled("unexpected_shape", data,
                                      error="SSE block with no data, id or retry"))
            return rows, NO_ACTIONS
        # The discriminator: the stream's kind (the connection) and the event's name.
        handlers = self._sse.get(MM if conn == MM else conn[:3])
        handler = handlers.get(ev.event) if handlers else None
        if handler is None:
            rows.append(unhandled("unknown_type", data, msg_type=ev.event))
            return rows, NO_ACTIONS
        msg = json_object(data, "data is not a JSON object", text=ev.data.encode(),
                          msg_type=ev.event)
        if type(msg) is not dict:
            return rows + msg[0], NO_ACTIONS
        msg["_sse_id"] = last
        more, actions = guard(data, ev.event, handler, conn, msg)
        return rows + more, actions

    # -- MM firehose -------------------------------------------------------------------------
    def _connected(self, conn: str, msg: dict[str, Any]) -> Result:
        mm_id = msg.get("mm_id")
        rows = [_row(T.CONNECTED, msg), session("auth_ok", reason=f"SSE connected as {mm_id}")]
        actions: list[Action] = []
        if isinstance(mm_id, str) and self.settings.mm_id_source in ("sse", "both"):
            actions += self._add_mm_id(mm_id, "sse")
        return rows, actions

    def _snapshot_begin(self, conn: str, msg: dict[str, Any]) -> Result:
        self._in_snapshot = True
        return [_row(T.SNAPSHOT_BEGIN, msg)], NO_ACTIONS

    def _snapshot_complete(self, conn: str, msg: dict[str, Any]) -> Result:
        self._in_snapshot = False
        return [_row(T.SNAPSHOT_COMPLETE, msg)], NO_ACTIONS

    def _request(self, table: Table) -> Callable[[str, dict[str, Any]], Result]:
        def handle(conn: str, msg: dict[str, Any]) -> Result:
            msg["_snapshot"] = self._in_snapshot
            _times(msg, ("expires_at",))
            rows = [_row(table, msg)]
            if not self.settings.request_streams:
                return rows, NO_ACTIONS
            more, actions = self._open(QR, msg.get("id"), "/v1/quote-requests/{}/stream")
            return rows + more, actions
        return handle

    def _request_expired(self, conn: str, msg: dict[str, Any]) -> Result:
        # `won` may be absent ("indeterminate outcome"): it stays null, never false.
        return [_row(T.QUOTE_REQUEST_EXPIRED, msg)], NO_ACTIONS

    def _cashout_request(self, conn: str, msg: dict[str, Any]) -> Result:
        msg["_snapshot"] = self._in_snapshot
        _times(msg, ("expires_at",))
        rows = [_row(T.CASHOUT_REQUEST, msg)]
        if not self.settings.cashout_streams:
            return rows, NO_ACTIONS
        more, actions = self._open(CO, msg.get("cashout_request_id"),
                                   "/v1/cashout-requests/{}/stream")
        return rows + more, actions

    # -- per-request streams -----------------------------------------------------------------
    def _book(self, conn: str, msg: dict[str, Any]) -> list[Row]:
        """book_seq is monotonic per request: a jump means book changes we never saw."""
        seq = msg.get("book_seq")
        if type(seq) is not int:
            return []
        prev = self._book_seq.get(conn)
        if prev is None or seq > prev:
            self._book_seq[conn] = seq
        if prev is not None and seq > prev + 1:
            return [session("gap", channel=conn, expected=prev + 1, received=seq,
                            reason="book_seq jumped")]
        return []

    def _best_quote(self, table: Table) -> Callable[[str, dict[str, Any]], Result]:
        def handle(conn: str, msg: dict[str, Any]) -> Result:
            msg["_stream_id"] = conn[3:]
            q = msg.get("best_quote")
            if isinstance(q, dict):
                _times(q, ("valid_until",))
            return [_row(table, msg), *self._book(conn, msg)], NO_ACTIONS
        return handle

    def _end(self, conn: str, why: str) -> Sequence[Action]:
        if conn in self.ended:
            return NO_ACTIONS
        self.ended.add(conn)
        self._book_seq.pop(conn, None)
        # The server closes the stream after the terminal event; Stop keeps the transport
        # from reconnecting. Only called once the LAST event of the stream arrived whole.
        return [Stop(conn, why)]

    def _qr_status(self, conn: str, msg: dict[str, Any]) -> Result:
        msg["_stream_id"] = conn[3:]
        # No Stop here: a quote request's `status` is always followed by its specific terminal
        # event (committed / cancelled / expired), and only that one ends the stream. Stopping
        # at `status` lost that event whenever the connection dropped before it was whole (a
        # cut block is discarded, never dispatched): the transport, told to stop, did not
        # resume. Without a Stop it resumes from the status' id, and the server sends the
        # terminal event again (a resume past the end gets 204, which also ends the stream).
        actions = self._follow_rfq(msg.get("committed_rfq_id"))
        return [_row(T.QR_STATUS, msg)], actions

    def _qr_terminal(self, table: Table) -> Callable[[str, dict[str, Any]], Result]:
        event = table.name.removeprefix("totalis_qr_")

        def handle(conn: str, msg: dict[str, Any]) -> Result:
            msg.setdefault("quote_request_id", conn[3:])
            actions: list[Action] = list(self._follow_rfq(msg.get("rfq_id")))
            actions += self._end(conn, f"quote request {event}")
            return [_row(table, msg)], actions
        return handle

    def _co_status(self, conn: str, msg: dict[str, Any]) -> Result:
        msg["_stream_id"] = conn[3:]
        return [_row(T.CASHOUT_STATUS, msg)], self._end(
            conn, f"cashout request {msg.get('status')}")

    # -- WebSocket ---------------------------------------------------------------------------
    def _send_sub(self, kind: str, channel: str) -> Send:
        # Subscribe is documented; unsubscribe is inferred from it (the docs give no way to
        # leave a channel): {"type":"unsubscribe","channel":...}.
        return Send(WS, orjson.dumps({"type": kind, "channel": channel}).decode())

    def _subscribe(self, channel: str) -> list[Action]:
        if not self._ws_authed or channel in self._subscribed:
            return []
        self._subscribed.add(channel)
        return [self._send_sub("subscribe", channel)]

    def _add_mm_id(self, mm_id: str, source: str) -> list[Action]:
        if not _ID_RE.match(mm_id) or mm_id in self.mm_ids:
            return []
        self.mm_ids[mm_id] = source
        return self._subscribe(f"mm:quotes:{mm_id}")

    def _follow_rfq(self, rfq_id: Any) -> list[Action]:
        if not isinstance(rfq_id, str) or not _ID_RE.match(rfq_id) or not self.settings.websocket:
            return []
        if rfq_id in self.rfqs or rfq_id in self.rfqs_done:
            return []
        self.rfqs[rfq_id] = None
        return self._subscribe(f"rfq:{rfq_id}")

    def _drop_rfq(self, rfq_id: Any) -> list[Action]:
        if not isinstance(rfq_id, str) or rfq_id not in self.rfqs:
            return []
        del self.rfqs[rfq_id]
        self.rfqs_done.add(rfq_id)
        channel = f"rfq:{rfq_id}"
        if channel in self._subscribed:
            self._subscribed.discard(channel)
            return [self._send_sub("unsubscribe", channel)]
        return []

    def _ping(self) -> Send:
        return Send(WS, '{"type":"ping"}', paced=False, delay=self.settings.ping_interval)

    def _ws_frame(self, data: bytes) -> Result:
        msg = json_object(data)
        if type(msg) is not dict:
            return msg
        return dispatch(self._ws, msg.get("type"), data, msg, data)

    def _data(self, handler: Callable[[dict[str, Any], dict[str, Any]], Result]) -> Handler:
        """A handler of an event that carries its payload in ``data`` (the docs' handler
        reads msg.type and msg.data.*)."""
        def handle(msg: dict[str, Any], raw: bytes) -> Result:
            payload = msg.get("data")
            if type(payload) is not dict:
                return reject("unexpected_shape", raw, msg_type=msg["type"],
                              error="no `data` object")
            # A channel name in the envelope is not documented but kept when present; other
            # envelope keys go to `extra`.
            payload["_channel"] = msg.get("channel")
            for k, v in msg.items():
                if k not in ("type", "data", "channel"):
                    payload[f"envelope.{k}"] = v
            return handler(msg, payload)
        return handle

    def _auth_success(self, msg: dict[str, Any], raw: bytes) -> Result:
        self._ws_authed = True
        user = msg.get("user_id")
        rows = [_row(T.AUTH_SUCCESS, {k: v for k, v in msg.items() if k != "type"}),
                session("auth_ok", reason=f"WS user {user} ({msg.get('user_type')})")]
        actions: list[Action] = []
        # mm:quotes:{mm_id}: the docs' example bot takes the id from auth:success.user_id; the
        # MM stream's `connected` carries mm_id (documented as the same DID, but older pages
        # showed "mm-uuid-..."). With mm_id_source = "both" every distinct id is subscribed.
        if isinstance(user, str) and self.settings.mm_id_source in ("auth", "both"):
            actions += self._add_mm_id(user, "auth")
        for mm_id in self.mm_ids:
            actions += self._subscribe(f"mm:quotes:{mm_id}")
        for rfq in self.rfqs:
            actions += self._subscribe(f"rfq:{rfq}")
        # The docs' example pings every 30 s; pongs also feed the idle watchdog when no trade
        # happens for a while.
        actions.append(self._ping())
        return rows, actions

    def _auth_error(self, msg: dict[str, Any], raw: bytes) -> Result:
        return [_row(T.AUTH_ERROR, {k: v for k, v in msg.items() if k != "type"}),
                session("auth_failed", reason=msg.get("message"))], [
            Stop(WS, f"credentials refused: {msg.get('message')}")]

    def _pong(self, msg: dict[str, Any], raw: bytes) -> Result:
        row = {k: v for k, v in msg.items() if k != "type"}
        _times(row, ("timestamp",))
        ts = row.get("timestamp")
        actions: Sequence[Action] = NO_ACTIONS
        # One ping chain per socket: a delayed ping scheduled on a socket that died may still
        # fire on the next one; two pongs closer than half an interval mean two chains, and
        # only the first goes on. (The server's time decides, so rebuilds agree.)
        half = int(self.settings.ping_interval * 1e9 / 2)
        if type(ts) is not int or self._last_pong is None or ts - self._last_pong >= half:
            actions = [self._ping()]
        if type(ts) is int:
            self._last_pong = ts
        return [_row(T.PONG, row)], actions

    def _ws_error(self, msg: dict[str, Any], raw: bytes) -> Result:
        row = {k: v for k, v in msg.items() if k != "type"}
        code = row.get("code")
        if code is not None:
            row["code"] = str(code)
        return [_row(T.WS_ERROR, row),
                session("error", code=row.get("code"), reason=msg.get("message"))], NO_ACTIONS

    def _ws_quote(self, table: Table, times: tuple[str, ...] = (), follow: bool = False
                  ) -> Callable[[dict[str, Any], dict[str, Any]], Result]:
        def handle(msg: dict[str, Any], data: dict[str, Any]) -> Result:
            _times(data, times)
            # Our own wins: if the request stream was refused (it belongs to the user), the
            # accept is the first place we learn the RFQ id.
            actions = self._follow_rfq(data.get("rfq_id")) if follow else NO_ACTIONS
            return [_row(table, data)], actions
        return handle

    def _mm_quote_accepted(self, msg: dict[str, Any], data: dict[str, Any]) -> Result:
        _times(data, ("confirmation_deadline", "accepted_at"))
        q = data.get("quote")
        if isinstance(q, dict):
            _times(q, ("valid_until",))
        row = _row(T.MM_QUOTE_ACCEPTED, data)
        return [row], self._follow_rfq(data.get("rfq_id"))

    def _position(self, table: Table) -> Callable[[dict[str, Any], dict[str, Any]], Result]:
        return self._event(table, "position:" + table.name.removeprefix("totalis_position_"),
                           ("timestamp",))

    def _event(self, table: Table, kind: str, times: tuple[str, ...]
               ) -> Callable[[dict[str, Any], dict[str, Any]], Result]:
        def handle(msg: dict[str, Any], data: dict[str, Any]) -> Result:
            _times(data, times)
            actions = self._drop_rfq(data.get("rfq_id")) if kind in RFQ_TERMINAL else NO_ACTIONS
            return [_row(table, data)], actions
        return handle


def make_adapter(venue: str, url: str | None, options: Mapping[str, Any], *,
                 offline: bool = False, sim: Mapping[str, Any] | None = None) -> TotalisAdapter:
    """Build the adapter. ``url`` is the API origin (``https://api.totalis.trade``); the
    WebSocket defaults to ``/ws`` on the same host. ``offline`` needs no settings or secrets."""
    if offline:
        return TotalisAdapter(_base_url(url) if url else "", Settings())
    s = typed(Settings, options, f"[venues.{venue}]")
    if not url:
        raise ConfigError(f"[venues.{venue}]: needs url = the API origin, e.g. "
                          "https://api.totalis.trade")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.netloc:
        raise ConfigError(f"[venues.{venue}].url: an http(s) origin, got {url!r}")
    key: str | None
    if sim and sim.get("api_key"):
        key = str(sim["api_key"])
    elif s.api_key_env:
        key = secret(s.api_key_env, f"[venues.{venue}].api_key_env")
    else:
        raise ConfigError(f"[venues.{venue}].api_key_env: required (the MM stream and the "
                          "WebSocket need an API key)")
    ws_url = sim.get("ws_url") if sim else None
    return TotalisAdapter(_base_url(url), s, key, ws_url=ws_url)
