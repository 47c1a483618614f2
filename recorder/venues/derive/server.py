"""Local Derive simulator (the server side of the venue): its grammar on the simulator driver
(:mod:`recorder.sim`), which owns sockets, the per-session writer, the ledger, closing, the
``/_sim/*`` faults and the clock.

It speaks the documented JSON-RPC protocol over real loopback sockets
(https://docs.derive.xyz/reference/json-rpc, /reference/authentication, /reference/subscribe):

- WS on ``/ws`` (v2) and ``/v3/ws``; requests ``{"id", "method", "params"}`` get
  ``{"id", "result"}`` or ``{"id", "error": {"code", "message", "data"?}}``.
- Methods: ``public/get_time``, ``public/get_all_currencies``, ``public/get_instruments``,
  ``public/login`` (verifies the EIP-191 signature of the timestamp against the signers
  registered for the configured wallet; a bad one gets 14014), ``subscribe`` and
  ``unsubscribe`` answering ``{status, current_subscriptions}`` with a per-channel error
  string for malformed (13000) or private-before-login (14022) channels; anything else is
  -32601.
- Notifications ``{"method": "subscription", "params": {"channel", "data"}}`` from
  :class:`~recorder.venues.derive.synth.DeriveSynth`, ticked every 100 ms, with listing and
  expiry churn.
- Faults: the driver's ``drop`` and ``inject``, and :meth:`DeriveServer.gap` (publish_id
  skips), :meth:`~DeriveServer.list_instrument`, :meth:`~DeriveServer.expire_instrument`,
  :meth:`~DeriveServer.rate_limit` (-32000 with "Retry after N ms").

Native replay (``replay=True``, :func:`recorder.venues.derive.replay_server`): no ticker and no
synthetic market; :meth:`DeriveServer.publish` routes each recorded notification byte for byte
to the sessions subscribed to its exact ``params.channel``. RPC answers (login, subscribe,
get_time...) are this server's own; ``public/get_all_currencies`` and
``public/get_instruments`` answer with the most recent *recorded* answer to the same params
when the replay hands the server its ``recording``, so a replaying client discovers and
subscribes the instruments that were recorded (see :class:`Catalogue`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from recorder import journal as jr
from recorder.sim import Recording
from recorder.sim.driver import Session, Simulator, dumps, fault, loads_object
from recorder.sim.driver import serve as run_simulator
from recorder.venues.derive.adapter import address_of, login_signer
from recorder.venues.derive.synth import INSTRUMENT_TYPES, Account, DeriveSynth, parse_channel

TICK_SECONDS = 0.1
# derive-py enums.py
INVALID_SIGNATURE = 14014
ACCOUNT_NOT_FOUND = 14000
INVALID_CHANNELS = 13000
PRIVATE_CHANNEL_SUBSCRIPTION_FAILED = 14022
CURRENCY_NOT_FOUND = 12002


def _key(label: str) -> str:
    return "0x" + hashlib.sha256(label.encode()).hexdigest()


DEFAULT_WALLET = "0x" + hashlib.sha256(b"derive-sim-wallet").hexdigest()[:40]
DEFAULT_SIGNER_KEY = _key("derive-sim-owner-key")  # test key of the simulator, never funded


@dataclass(eq=False)
class _Conn(Session):
    subs: set[str] = field(default_factory=set)
    logged_in: bool = False


#: RPC methods whose recorded answers the replay serves (the venue's catalogue, which the
#: client needs to name the channels that were recorded); every other answer is generated.
RECORDED_METHODS = ("public/get_all_currencies", "public/get_instruments")


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _params_key(method: str, params: Any) -> str:
    """Canonical request params: sorted keys; get_instruments' optional ``expired`` is
    False when absent (its documented default)."""
    p = dict(params) if isinstance(params, dict) else {}
    if method == "public/get_instruments":
        p.setdefault("expired", False)
    return orjson.dumps(p, option=orjson.OPT_SORT_KEYS).decode()


class Catalogue:
    """What the replay server needs from its recording before its clock starts.

    Requests are journal ``out`` frames and answers ``in`` frames on the same connection with
    the same JSON-RPC ``id`` (within one run). For :data:`RECORDED_METHODS`, each answer is
    kept with its receive time and params, and indexed by the digest of its exact bytes so
    :meth:`DeriveServer.publish` can tell, as the replay passes it, that the catalogue
    changed (listings and expiries then appear to the replaying client's next refresh when
    they appeared in the recording). The recorded ``public/login`` gives the default wallet
    and subaccounts."""

    def __init__(self, recording: Recording) -> None:
        self.answers: dict[tuple[str, str], list[tuple[int, Any]]] = {}
        self.by_digest: dict[bytes, tuple[tuple[str, str], Any]] = {}
        self.instruments: set[str] = set()
        self.currencies: set[str] = set()
        self.wallet: str | None = None
        self.subaccounts: tuple[int, ...] | None = None
        self.start = recording.start
        pending: dict[tuple[str, str], tuple[str, Any]] = {}
        for rec in recording.records((jr.KIND_IN, jr.KIND_OUT), before_start=True):
            msg = loads_object(rec.data)
            if msg is None or "id" in msg and not isinstance(msg["id"], str | int):
                continue
            rid = (rec.conn, orjson.dumps(msg.get("id")).decode())
            if rec.kind == jr.KIND_OUT:
                if isinstance(msg.get("method"), str) and "id" in msg:
                    pending[rid] = (msg["method"], msg.get("params"))
                continue
            if "id" not in msg or "result" not in msg or rid not in pending:
                continue
            method, params = pending.pop(rid)
            result = msg["result"]
            if method == "public/login":
                if isinstance(params, dict) and isinstance(params.get("wallet"), str):
                    self.wallet = params["wallet"]
                if isinstance(result, list):
                    self.subaccounts = tuple(int(x) for x in result
                                             if isinstance(x, int) or str(x).isdigit())
                continue
            if method not in RECORDED_METHODS:
                continue
            key = (method, _params_key(method, params))
            self.answers.setdefault(key, []).append((rec.ts_recv, result))
            self.by_digest[_digest(rec.data)] = (key, result)
            for item in result if isinstance(result, list) else ():
                if not isinstance(item, dict):
                    continue
                if isinstance(item.get("instrument_name"), str):
                    self.instruments.add(item["instrument_name"])
                if isinstance(item.get("currency"), str):
                    self.currencies.add(item["currency"])
            if method == "public/get_instruments" and isinstance(params, dict) \
                    and isinstance(params.get("currency"), str):
                self.currencies.add(params["currency"])

    def initial(self) -> dict[tuple[str, str], Any]:
        """Per request, the answer current at ``start``: the last one received at or before
        it, else the first one (the recording's opening catalogue)."""
        out = {}
        for key, seq in self.answers.items():
            before = [r for ts, r in seq if self.start is not None and ts <= self.start]
            out[key] = before[-1] if before else seq[0][1]
        return out


class DeriveServer(Simulator[_Conn]):
    """The Derive simulator: an aiohttp app on one loopback port.

    Options (and the driver's: ``clock``, ``ledger_path``, ``max_queue``, ``replay``,
    ``recording``):
      seed, rate, currencies, churn_seconds: passed to :class:`DeriveSynth`.
      variant: "v2" (default) or "v3" payload shapes.
      wallet: the Derive wallet that can log in; signer_key: the owner key registered for it
        (hex); session_keys: more accepted signer keys. subaccounts: the login result.
      login_window_s: how far the signed timestamp may be from the server's clock.
      signers: more accepted signer *addresses* (0x + 40 hex): a replay of a real recording
        only needs the address of the key the client logs in with, never the key.
      In replay, the ``recording``'s catalogue answers get_all_currencies / get_instruments,
      and its login gives the default wallet and subaccounts (see :class:`Catalogue`).
    """

    name = "derive"

    def __init__(self, *, seed: int = 1, rate: float = 1.0, variant: str = "v2",
                 currencies: Iterable[str] = ("ETH", "BTC"), churn_seconds: float = 20.0,
                 wallet: str | None = None, signer_key: str = DEFAULT_SIGNER_KEY,
                 session_keys: Iterable[str] = (), subaccounts: Iterable[int] | None = None,
                 login_window_s: float = 60.0, signers: Iterable[str] = (),
                 **driver: Any) -> None:
        super().__init__(**driver)
        self.catalogue = Catalogue(self.recording) if (
            self.replay and self.recording is not None) else None
        cat = self.catalogue
        self.wallet = wallet or (cat.wallet if cat and cat.wallet else DEFAULT_WALLET)
        self.signer_key = signer_key
        self.signers = {address_of(k).lower()
                        for k in (signer_key, *session_keys)}
        self.signers |= {a.lower() for a in signers}
        if subaccounts is None:
            subaccounts = cat.subaccounts if cat and cat.subaccounts is not None else (
                30769, 30770)
        self.subaccounts = tuple(int(s) for s in subaccounts)
        # Replay: the catalogue answers current at the replay position, by (method, params).
        self._catalogue: dict[tuple[str, str], Any] = cat.initial() if cat else {}
        self.login_window_ms = int(login_window_s * 1000)
        self.variant = variant
        self.synth = DeriveSynth(seed, rate=rate, variant=variant, currencies=currencies,
                                 start_ms=self.clock.now_ms(),
                                 churn_ms=int(churn_seconds * 1000),
                                 account=Account(self.wallet, self.subaccounts,
                                                 signer=address_of(signer_key)))
        self.tick_seconds = None if self.replay else TICK_SECONDS
        self._rate_limit_ms: int | None = None

    def routes(self, router: web.UrlDispatcher) -> None:
        # derive-py opens its socket with max_size 16 MB.
        ws = self.websocket(session=_Conn, max_msg_size=16 * 1024 * 1024)
        router.add_get("/ws", ws)
        router.add_get("/v3/ws", ws)

    @property
    def url(self) -> str:
        return self.base_url("ws", "/v3/ws" if self.variant == "v3" else "/ws")

    def banner(self) -> str:
        return f"{super().banner()} (wallet {self.wallet})"

    # -- faults ------------------------------------------------------------------------------
    @fault
    def gap(self, channel_or_instrument: str, skip: int = 3) -> int:
        """The next publish of matching order books skips ``skip`` publish_ids."""
        return self.synth.gap(channel_or_instrument, skip)

    @fault
    def list_instrument(self, currency: str = "ETH") -> str:
        """List a new option now; get_instruments returns it from the next call on."""
        return self.synth.list_option(currency, self.clock.now_ms())

    @fault
    def expire_instrument(self, name: str) -> None:
        self.synth.expire(name)

    @fault
    def rate_limit(self, retry_ms: int = 500) -> None:
        """Refuse the next request (any session) with -32000 and a retry hint."""
        self._rate_limit_ms = int(retry_ms)

    # -- the grammar -------------------------------------------------------------------------
    def on_text(self, conn: _Conn, data: str) -> None:
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._error(conn, None, -32700, "Parse error")
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("method"), str):
            self._error(conn, msg.get("id") if isinstance(msg, dict) else None, -32600,
                        "Invalid Request")
            return
        rid, method = msg.get("id"), msg["method"]
        params = msg.get("params") or {}
        if not isinstance(params, dict):
            self._error(conn, rid, -32602, "Invalid params")
            return
        if self._rate_limit_ms is not None:
            ms, self._rate_limit_ms = self._rate_limit_ms, None
            self._error(conn, rid, -32000, "Rate limit exceeded", f"Retry after {ms} ms")
            return
        now = self.clock.now_ms()
        recorded = self._catalogue.get((method, _params_key(method, params)), _MISSING) \
            if method in RECORDED_METHODS else _MISSING
        if recorded is not _MISSING:
            self._reply(conn, rid, recorded)
            return
        handler = {
            "public/get_time": lambda: self._reply(conn, rid, now),
            "public/get_all_currencies": lambda: self._reply(
                conn, rid, self.synth.get_all_currencies(now)),
            "public/get_instruments": lambda: self._get_instruments(conn, rid, params),
            "public/login": lambda: self._login(conn, rid, params, now),
            "subscribe": lambda: self._subscribe(conn, rid, params),
            "unsubscribe": lambda: self._unsubscribe(conn, rid, params),
        }.get(method)
        if handler is None:
            self._error(conn, rid, -32601, "Method not found", method)
            return
        handler()

    def _get_instruments(self, conn: _Conn, rid: Any, params: dict[str, Any]) -> None:
        cur, kind = params.get("currency"), params.get("instrument_type")
        expired = params.get("expired", False)
        if kind not in INSTRUMENT_TYPES or not isinstance(expired, bool) or not isinstance(
                cur, str):
            self._error(conn, rid, -32602, "Invalid params",
                        "currency, instrument_type (erc20|option|perp), expired are required")
            return
        if cur not in self.synth.currencies:
            self._error(conn, rid, CURRENCY_NOT_FOUND, "Currency not found", cur)
            return
        self._reply(conn, rid, self.synth.get_instruments(cur, kind, expired))

    def _login(self, conn: _Conn, rid: Any, params: dict[str, Any], now: int) -> None:
        wallet, ts, sig = params.get("wallet"), params.get("timestamp"), params.get("signature")
        if not isinstance(wallet, str) or wallet.lower() != self.wallet.lower():
            self._error(conn, rid, ACCOUNT_NOT_FOUND, "Account not found", str(wallet))
            return
        ts_text = str(ts) if isinstance(ts, int | str) else ""
        if not ts_text.isdigit() or abs(int(ts_text) - now) > self.login_window_ms:
            self._error(conn, rid, INVALID_SIGNATURE,
                        "Signature invalid for message or transaction",
                        "timestamp outside the accepted window")
            return
        try:
            signer = login_signer(ts_text, str(sig)).lower()
        except ValueError:  # malformed signature of any kind
            signer = ""
        if signer not in self.signers:
            self._error(conn, rid, INVALID_SIGNATURE,
                        "Signature invalid for message or transaction")
            return
        conn.logged_in = True
        self._reply(conn, rid, list(self.subaccounts))

    def _check(self, conn: _Conn, ch: str) -> str:
        parsed = parse_channel(ch) if isinstance(ch, str) else None
        if parsed is None:
            return f"Invalid channel ({INVALID_CHANNELS})"
        fam, args = parsed
        rec = self.catalogue if self.catalogue and self.catalogue.instruments else None
        if fam in ("orderbook", "ticker", "ticker_slim", "trades"):
            inst = self.synth.instruments.get(args[0])
            known = args[0] in rec.instruments if rec else inst is not None and inst.active
            if not known:
                return f"Invalid channel ({INVALID_CHANNELS}): unknown instrument {args[0]}"
        if fam in ("trades_ccy", "trades_status", "spot_feed"):
            cur = args[1] if fam != "spot_feed" else args[0]
            if cur not in (rec.currencies if rec else self.synth.currencies):
                return f"Invalid channel ({INVALID_CHANNELS}): unknown currency {cur}"
        if fam in ("private", "rfqs"):
            owner = (args[0].lower() == self.wallet.lower() if fam == "rfqs"
                     else int(args[0]) in self.subaccounts)
            if not conn.logged_in or not owner:
                return (f"Private channel subscription failed "
                        f"({PRIVATE_CHANNEL_SUBSCRIPTION_FAILED}): "
                        + ("not logged in" if not conn.logged_in else "not your account"))
        return "ok"

    def _channels(self, conn: _Conn, rid: Any, params: dict[str, Any],
                  optional: bool) -> list[str] | None:
        chans = params.get("channels")
        if chans is None and optional:
            return None
        if not isinstance(chans, list) or not all(isinstance(c, str) for c in chans):
            self._error(conn, rid, -32602, "Invalid params", "channels: a list of strings")
            raise ValueError
        return list(dict.fromkeys(chans))  # duplicate names are deduplicated

    def _subscribe(self, conn: _Conn, rid: Any, params: dict[str, Any]) -> None:
        try:
            chans = self._channels(conn, rid, params, optional=False) or []
        except ValueError:
            return
        status = {}
        for ch in chans:
            status[ch] = st = self._check(conn, ch)
            if st == "ok":
                conn.subs.add(ch)
        self._reply(conn, rid, {"status": status,
                                "current_subscriptions": sorted(conn.subs)})

    def _unsubscribe(self, conn: _Conn, rid: Any, params: dict[str, Any]) -> None:
        try:
            chans = self._channels(conn, rid, params, optional=True)
        except ValueError:
            return
        if chans is None:  # no channels (or null): drop every subscription
            chans = sorted(conn.subs)
        status = {}
        for ch in chans:
            conn.subs.discard(ch)
            status[ch] = "ok"
        self._reply(conn, rid, {"status": status,
                                "current_subscriptions": sorted(conn.subs)})

    def _reply(self, conn: _Conn, rid: Any, result: Any) -> None:
        self.send_json(conn, {"id": rid, "result": result})

    def _error(self, conn: _Conn, rid: Any, code: int, message: str,
               data: str | None = None) -> None:
        err: dict[str, Any] = {"code": code, "message": message}
        if data is not None:
            err["data"] = data
        self.send_json(conn, {"id": rid, "error": err})

    # -- native replay and ticking ----------------------------------------------------------
    def subscribed(self) -> bool:
        """Native replay starts its clock once a client has subscribed to something."""
        return any(c.subs for c in self.sessions())

    def publish(self, data: bytes | str, conn_id: str | None = None) -> int:
        """Native replay: route one recorded inbound frame; returns how many sessions got it.

        - A notification goes, byte for byte, to every session subscribed to exactly its
          ``params.channel``: derive-py routes on that field and the subscribe grammar has no
          wildcards (https://docs.derive.xyz/reference/subscribe), so the recording always
          tells which subscription a notification belongs to. ``conn_id`` is not needed:
          Derive has one socket per session (the recorder's ``ws``).
        - An RPC answer (``id`` with ``result``/``error``) is not replayed: this server
          answers the replaying client's own requests. A recorded catalogue answer (see
          :class:`Catalogue`) becomes the answer to the same request from now on.
        - Anything else (a frame the venue pushed unprompted that is no notification, or
          not JSON) cannot be tied to a subscription; the reading chosen is the one of a
          server push: it goes to every open session.
        """
        raw = bytes(data) if isinstance(data, bytes | bytearray) else data.encode()
        text = raw.decode(errors="replace")
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError:
            msg = None
        if isinstance(msg, dict) and msg.get("method") == "subscription":
            params = msg.get("params")
            channel = params.get("channel") if isinstance(params, dict) else None
            targets = [c for c in self.sessions() if channel in c.subs]
        elif isinstance(msg, dict) and "id" in msg and ("result" in msg or "error" in msg):
            if self.catalogue is not None:
                hit = self.catalogue.by_digest.get(_digest(raw))
                if hit is not None:
                    self._catalogue[hit[0]] = hit[1]
            return 0
        else:
            targets = self.sessions()
        for conn in targets:
            self.send(conn, text)
        return len(targets)

    def on_tick(self, now_ms: int) -> None:
        """Publish what is due at ``now_ms`` to every session subscribed to it."""
        by_channel: dict[str, list[_Conn]] = {}
        for conn in self.sessions():
            for ch in conn.subs:
                by_channel.setdefault(ch, []).append(conn)
        if not by_channel:
            return
        for ch, data in self.synth.tick(now_ms, set(by_channel)):
            text = dumps({"method": "subscription", "params": {"channel": ch, "data": data}})
            for conn in by_channel[ch]:
                self.send(conn, text)


_MISSING = object()


async def serve(host: str = "127.0.0.1", port: int = 8766, **opts: Any) -> None:
    """Run a :class:`DeriveServer` until cancelled (``recorder sim derive``). Prints the URL
    and the wallet; the signer it accepts by default is :data:`DEFAULT_SIGNER_KEY`, a
    throwaway test key derived from a fixed label (``-o signer_key=0x...`` sets another)."""
    opts.pop("api_keys", None)  # the CLI's generic options a Derive login has no use for
    opts.pop("firehose", None)
    await run_simulator(DeriveServer, host, port, **opts)
