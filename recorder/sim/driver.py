"""The one simulator driver: every venue's server side runs on it.

Like python-websockets' one ``Connection`` around a sans-I/O protocol, the I/O lives here once
and each venue's ``server.py`` keeps only its grammar: what it answers when a session opens
(:meth:`Simulator.on_open`), to a client message (:meth:`~Simulator.on_text`), and on a market
tick (:meth:`~Simulator.on_tick`). Those hooks never await and never touch a socket; they call
:meth:`~Simulator.send`, :meth:`~Simulator.close` and friends, which only queue.

What the driver owns:

- **Listening**: one aiohttp app on one loopback port (0 = a free one), the venue's routes plus
  ``GET /_sim/ledger`` and ``POST /_sim/<fault>``.
- **Sessions**: WebSocket (:meth:`~Simulator.websocket`) and Server-Sent Events
  (:meth:`~Simulator.open_sse`, :meth:`~Simulator.serve_sse`), numbered 1, 2, ... in accept
  order across every path of the venue.
- **One writer per session** draining one FIFO queue, so answers, data and broadcasts reach a
  client in exactly the order they were queued, and a slow or vanished client never blocks
  the ticker or another session (past ``max_queue`` frames it is closed, 1008).
- **The ledger**, the oracle of the end-to-end tests: a frame is in it once it has been
  handed to the socket, and only then. Uncompressed frames are written to the transport
  synchronously inside ``send_str``/``write``; an error there means it never was (not
  ledgered), a cancellation can only come after (ledgered). So what a client read is always
  a prefix of its session's ledger, and all of it after a graceful close.
- **Closing**: after what is queued (:meth:`~Simulator.close`), at once with a close frame
  (:meth:`~Simulator.close_now`), or a TCP abort (:meth:`~Simulator.abort`); :meth:`stop`
  is :meth:`~Simulator.close_sessions` (every session flushed briefly, then closed, 1001;
  from then on a new WebSocket or SSE session is refused with 503 while REST is still
  answered) and :meth:`~Simulator.close_listener`. In between, a test can wait for its
  client to journal everything and :meth:`~Simulator.hold_requests` (later REST requests
  are left unanswered), so nothing it compares is in flight when its client stops.
- **Faults** with one vocabulary on every venue: :meth:`~Simulator.drop` and
  :meth:`~Simulator.inject` (``POST /_sim/drop``, ``POST /_sim/inject {"text": ...}``), plus
  the venue's own, which are its methods marked :func:`fault` (``POST /_sim/<name>`` with the
  keyword arguments as a JSON object).
- **The clock** (:mod:`recorder.sim.clock`): ticks and every other timer go through it, so a
  test can use a :class:`~recorder.sim.clock.ManualClock` and :meth:`~Simulator.advance`.
- :func:`serve`: run one simulator until cancelled (``recorder sim VENUE``).

Native replay uses the same server side with ``replay=True`` (no synthetic market):
``recorder.replay.serve_native`` hands it its :class:`~recorder.sim.recording.Recording` and
feeds recorded frames to :meth:`~Simulator.publish`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, ClassVar, Generic, NamedTuple, TypeVar, cast

import orjson
from aiohttp import WSMsgType, web

from recorder.sim.clock import Clock, ManualClock, Timer
from recorder.sim.recording import Recording

log = logging.getLogger(__name__)

SLOW_CONSUMER_CLOSE = 1008  # policy violation: the client does not read fast enough
GOING_AWAY_CLOSE = 1001  # the server stops
CLOSE_HANDSHAKE_SECONDS = 0.5  # a client that does not answer our close frame is aborted


class Sent(NamedTuple):
    """One ledger entry: the ``seq``-th frame handed to the socket of session ``conn``."""

    conn: int
    seq: int
    text: str


class RestSent(NamedTuple):
    """One HTTP answer: the request's path with its query, the status, the body."""

    path: str
    status: int
    body: str


@dataclass(frozen=True)
class Close:
    """Queue item: close after everything queued before it (WebSocket: this close code)."""

    code: int = 1000
    message: bytes = b""


@dataclass(frozen=True)
class Burst:
    """Queue item: frames sent back to back (a benchmark's firehose). The writer yields to the
    loop every few hundred frames so other sessions and the ticker keep running."""

    texts: Sequence[str]
    # Send the texts again and again until the session ends, unledgered after the first pass
    # (a benchmark's endless stream; the ledger would grow without bound).
    repeat: bool = False


_KEEPALIVE = object()  # queue item of an SSE session: its keep-alive comment


@dataclass(eq=False)
class Session:
    """One accepted connection. Venues subclass it (a dataclass with defaulted fields) for
    their per-session state and name the class in :meth:`Simulator.websocket` /
    :meth:`Simulator.open_sse`."""

    no: int
    kind: str  # the endpoint's name: its path unless the venue names it ("proxy", "qr:<id>")
    request: web.Request | None
    ws: web.WebSocketResponse | None = None
    sse: web.StreamResponse | None = None
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    writer: asyncio.Task[None] | None = None
    closing: bool = False  # decided to close: nothing more is queued, client input ignored
    close_started: bool = False  # the writer is sending the close frame
    seq: int = 0  # frames ledgered
    frames: int = 0  # SSE: event blocks written (keep-alives and the preface not counted)
    cut_next: bool = False  # the next frame is cut in half and the connection aborted
    cut_after: int = 0  # SSE: cut the frame after this many (0: never)
    keepalive: bytes = b""
    timers: list[Timer] = field(default_factory=list)  # cancelled when the session ends

    @property
    def path(self) -> str:
        """The request path, without its query."""
        return self.request.path if self.request is not None else ""


S = TypeVar("S", bound=Session)
F = TypeVar("F", bound=Callable[..., Any])


def fault(fn: F) -> F:
    """Mark a simulator method as a fault: also reachable as ``POST /_sim/<name>`` with its
    keyword arguments as a JSON object; a non-None return value is answered as ``result``."""
    fn._sim_fault = True  # type: ignore[attr-defined]
    return fn


async def listen(app: web.Application, host: str, port: int,
                 shutdown_timeout: float = 1.0) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on ``host:port`` (0 = a free port); returns the runner and the port.
    The socket is bound here, not by aiohttp, so the real port is known before serving."""
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family)
    await web.SockSite(runner, sock).start()
    return runner, sock.getsockname()[1]


def loopback_url(scheme: str, host: str, port: int, path: str = "") -> str:
    """``scheme://host:port/path`` for a client; a wildcard bind is reached on 127.0.0.1."""
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}{path}"


def dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def loads_object(data: bytes | str) -> dict[str, Any] | None:
    """A client message or recorded frame as a JSON object; None when it is not one."""
    try:
        msg = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return msg if isinstance(msg, dict) else None


def _ws_text_frame(text: str) -> bytes:
    """The bytes of an unmasked, unfragmented WebSocket text frame (RFC 6455 5.2), to write
    half of one for a mid-frame cut."""
    payload = text.encode()
    n = len(payload)
    if n < 126:
        head = bytes((0x81, n))
    elif n < 1 << 16:
        head = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return head + payload


def _plain(request: web.Request) -> bool:
    """A plain HTTP request: one whose answer a client reads as a response body (a REST
    call), not a WebSocket upgrade or an event stream (whose refusals a client journals as a
    failed connect, not as a response)."""
    return (request.headers.get("Upgrade", "").lower() != "websocket"
            and "text/event-stream" not in request.headers.get("Accept", ""))


class Simulator(Generic[S]):
    """A venue's server side on one loopback port. Subclasses set :attr:`name`, add their
    routes in :meth:`routes`, implement the hooks they need and :attr:`url`. ``S`` is the
    venue's :class:`Session` subclass, the type its hooks receive.

    Options every simulator takes: ``clock`` (default real time), ``ledger_path`` (also append
    every ledgered frame to this file as JSON lines ``{"conn","seq","path","text"}``),
    ``max_queue`` (frames queued for one session before it is closed as a slow consumer),
    ``replay`` (native replay: no synthetic market; frames come through :meth:`publish`) and
    ``recording`` (in replay, the journal slice being replayed, for answers the server serves
    from it).
    """

    name: ClassVar[str] = "sim"
    shutdown_timeout: ClassVar[float] = 1.0

    def __init__(self, *, clock: Clock | None = None, ledger_path: str | None = None,
                 max_queue: int = 200_000, replay: bool = False,
                 recording: Recording | None = None) -> None:
        if recording is not None and not isinstance(recording, Recording):
            raise TypeError("recording: a recorder.sim.Recording (the replay command makes it)")
        self.clock = clock or Clock()
        self.ledger_path = ledger_path
        self.max_queue = max_queue
        self.replay = replay
        self.recording = recording
        #: seconds between :meth:`on_tick` calls; None: no ticker (set it in __init__)
        self.tick_seconds: float | None = None
        self.paused = False  # :meth:`pause`: no tick, nothing sent unprompted
        self.ledger: list[Sent] = []
        #: frames cut in the middle (:meth:`drop` with ``mid_frame``), whole: only the first
        #: half of their bytes was handed to the socket, then the connection was aborted
        self.cuts: list[Sent] = []
        self.rest_ledger: list[RestSent] = []
        #: every text message a client sent, in arrival order: (session, text)
        self.received: list[tuple[int, str]] = []
        #: every session ever accepted: number -> request path with query, and its kind
        self.paths: dict[int, str] = {}
        self.kinds: dict[int, str] = {}
        self._sent: dict[int, list[str]] = {}
        self._open: dict[int, S] = {}
        self._next = 1
        self._timers: list[Timer] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._progress = asyncio.Event()
        self._ledger_file: IO[bytes] | None = None
        self._runner: web.AppRunner | None = None
        self._host, self._port = "127.0.0.1", 0
        #: :meth:`close_sessions` was called: new WebSocket and SSE sessions are refused (503)
        self.closing = False
        #: :meth:`hold_requests` was called: new plain HTTP requests wait, unanswered, until
        #: :meth:`close_listener`
        self.holding = False
        #: answers to plain HTTP requests (not a WebSocket upgrade, not an event stream): what
        #: a client reads as a response body; an end-to-end test waits until its recorder has
        #: journaled that many
        self.plain_answers = 0
        #: plain HTTP requests let in and not answered yet (their handler runs)
        self.pending_requests = 0
        self._released = asyncio.Event()  # set by close_listener: held requests end
        self._faults: dict[str, Callable[..., Any]] = {}
        for klass in reversed(type(self).__mro__):
            for attr, value in vars(klass).items():
                if getattr(value, "_sim_fault", False):
                    self._faults[attr] = getattr(self, attr)

    # -- what a venue provides -----------------------------------------------------------------
    def routes(self, router: web.UrlDispatcher) -> None:
        """Add the venue's endpoints (:meth:`websocket` makes a WebSocket handler)."""
        raise NotImplementedError

    @property
    def url(self) -> str:
        """The URL a client is configured with."""
        raise NotImplementedError

    def on_open(self, session: S) -> None:
        """A WebSocket session was accepted: greet it, or refuse it with :meth:`close`."""

    def on_text(self, session: S, text: str) -> None:
        """A text message from the client."""

    def on_binary(self, session: S, data: bytes) -> None:
        """A binary message from the client (ignored unless the venue answers it)."""

    def on_close(self, session: S) -> None:
        """The session ended, for whatever reason (clean up per-session timers and state)."""

    def on_tick(self, now_ms: int) -> None:
        """The market moves: queue what is due at ``now_ms`` to the sessions that want it."""

    def subscribed(self) -> bool:
        """Native replay starts its clock once a client has subscribed to something."""
        return any(not s.closing for s in self._open.values())

    def publish(self, data: bytes | str, conn_id: str | None = None) -> int:
        """Native replay: route one recorded frame from the recorder's connection ``conn_id``
        to the sessions it belongs to; returns how many got it."""
        raise NotImplementedError(f"{self.name}: no native replay")

    def banner(self) -> str:
        """What :func:`serve` prints once listening."""
        return f"{self.name} simulator listening on {self.url}"

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Bind, start serving and ticking; returns the bound port (useful with port=0)."""
        if self.ledger_path:
            self._ledger_file = open(self.ledger_path, "ab")  # closed in close_listener()
        # a simulator started again after a stop serves as a new one would
        self.closing = self.holding = False
        self._released = asyncio.Event()
        app = web.Application(middlewares=[self._hold])
        self.routes(app.router)
        app.router.add_get("/_sim/ledger", self._http_ledger)
        app.router.add_post("/_sim/{name}", self._http_fault)
        self._runner, self._port = await listen(app, host, port, self.shutdown_timeout)
        self._host = host
        if self.tick_seconds:
            self.every(self.tick_seconds, self._on_clock_tick)
        return self._port

    @property
    def port(self) -> int:
        """The bound port (0 before :meth:`start`)."""
        return self._port

    def base_url(self, scheme: str, path: str = "") -> str:
        return loopback_url(scheme, self._host, self._port, path)

    async def stop(self) -> None:
        """Stop ticking; let every session's queued frames go out (briefly), close it (1001)
        and the listener: :meth:`close_sessions`, then :meth:`close_listener`. Returns within
        about a second whatever the clients do."""
        await self.close_sessions()
        await self.close_listener()

    async def close_sessions(self) -> None:
        """The first half of :meth:`stop`: stop ticking; let every session's queued frames
        go out (briefly), then close it (1001). The listener stays open: plain HTTP requests
        (REST) are still answered and ledgered, but a new WebSocket or SSE session is refused
        with 503 (see :meth:`_refuse_session`). Returns within about a second."""
        self.closing = True
        for t in self._timers:
            t.cancel()
        self._timers.clear()
        sessions = list(self._open.values())
        for s in sessions:
            self.close(s, GOING_AWAY_CLOSE, b"server stopping")
        writers = [s.writer for s in sessions if s.writer is not None and not s.writer.done()]
        if writers:
            await asyncio.wait(writers, timeout=1.0)
        for s in sessions:
            if s.writer is not None and not s.writer.done():
                self.abort(s)
        for task in list(self._tasks):
            task.cancel()

    def hold_requests(self) -> None:
        """From now on, a new plain HTTP request (not ``/_sim/``, not a WebSocket upgrade or
        an event stream, which :meth:`close_sessions` refuses) is never answered: it waits
        until :meth:`close_listener` and is then dropped, unledgered. Once the requests let in
        before are answered (:attr:`pending_requests` is 0; the venues' REST handlers do not
        await before :meth:`rest`, so it already is), the REST ledger can no longer grow, and
        a test can wait until its client has journaled all of it (:attr:`plain_answers`)
        before stopping the client, which cancels any request still waiting here."""
        self.holding = True

    async def close_listener(self) -> None:
        """The second half of :meth:`stop`: release the held requests, close the listener
        (every connection still open) and the ledger file."""
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._ledger_file is not None:
            self._ledger_file.close()
            self._ledger_file = None

    @web.middleware
    async def _hold(self, request: web.Request,
                    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                    ) -> web.StreamResponse:
        if not _plain(request) or request.path.startswith("/_sim/"):
            return await handler(request)
        if self.holding:
            # Not answered, so not ledgered: a request that arrives once the test has decided
            # the REST ledger is complete (a delayed resync, say) must not add an answer its
            # client may be stopped before journaling. Its client gives up on it (cancelled
            # when the recorder stops); the answer below then goes to a closed socket.
            await self._released.wait()
            return web.Response(status=503, text="simulator stopped\n")
        self.pending_requests += 1
        try:
            return await handler(request)
        finally:
            self.pending_requests -= 1
            self._progress.set()

    def _refuse_session(self) -> web.Response:
        """The answer to a new WebSocket or SSE session once :meth:`close_sessions` ran.

        Refused, not accepted and closed: a session opened in that window would be handed
        frames (a greeting, a snapshot) after the test waited for the journal to hold every
        ledgered frame, and whether the client journals them before it stops is a race. A
        refusal is not ledgered and the client journals it as a failed connect (a meta
        event), so ledger and journal stay equal. 503 because it is temporary: a client
        backs off and retries, as it would after a restart."""
        return web.Response(status=503, text="simulator closing\n")

    def every(self, interval: float, fn: Callable[[], object]) -> Timer:
        """A periodic timer on the simulator's clock, cancelled by :meth:`stop`; an exception
        in ``fn`` is logged, never fatal."""
        timer = self.clock.every(interval, lambda: self._guard(fn))
        self._timers.append(timer)
        return timer

    def later(self, delay: float, fn: Callable[[], object]) -> Timer:
        """A one-shot timer on the simulator's clock; an exception in ``fn`` is logged. Not
        kept for :meth:`stop` (there can be one per request): after a stop, what it queues
        goes nowhere, every session being closed."""
        return self.clock.call_later(delay, lambda: self._guard(fn))

    def _guard(self, fn: Callable[[], object]) -> None:
        try:
            fn()
        except Exception:  # one failing tick or timer must not end the simulator
            log.exception("%s sim: %s failed", self.name, getattr(fn, "__name__", fn))

    def _on_clock_tick(self) -> None:
        if not self.paused:
            self.on_tick(self.clock.now_ms())
        if self._ledger_file is not None:
            self._ledger_file.flush()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` in the background; cancelled by :meth:`stop`."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- sessions ------------------------------------------------------------------------------
    def websocket(self, kind: str | None = None, *, session: type[Session] = Session,
                  check: Callable[[web.Request], web.StreamResponse | None] | None = None,
                  heartbeat: float | None = None, max_msg_size: int = 1 << 20,
                  ) -> Callable[[web.Request], Coroutine[Any, Any, web.StreamResponse]]:
        """An aiohttp handler for a WebSocket endpoint. ``check(request)`` may refuse the
        handshake with an HTTP response (bad credentials); ``heartbeat``: protocol pings
        every that many seconds; ``kind`` names the sessions (default: the path)."""

        async def handler(request: web.Request) -> web.StreamResponse:
            if self.closing:  # before the venue's check: a refusal there would be ledgered
                return self._refuse_session()
            if check is not None:
                refused = check(request)
                if refused is not None:
                    return refused
            ws = web.WebSocketResponse(compress=False, heartbeat=heartbeat,
                                       max_msg_size=max_msg_size)
            if not ws.can_prepare(request).ok:
                return web.Response(status=426, text="WebSocket upgrade required\n")
            await ws.prepare(request)
            s = self._register(cast(S, session(self._next, kind or request.path, request,
                                               ws=ws)))
            s.writer = asyncio.create_task(self._write_loop(s), name=f"{self.name}-w{s.no}")
            try:
                if self.closing:
                    # close_sessions ran during the handshake (prepare awaits): no greeting,
                    # closed at once, so the session ledgers nothing the test has not waited for
                    self.close(s, GOING_AWAY_CLOSE, b"server stopping")
                else:
                    self._guard(functools.partial(self.on_open, s))
                async for msg in ws:
                    if s.closing:
                        continue  # a close is decided (auth failed, server_closing): ignore
                    if msg.type == WSMsgType.TEXT:
                        self.received.append((s.no, msg.data))
                        self._progress.set()
                        self._guard(functools.partial(self.on_text, s, msg.data))
                    elif msg.type == WSMsgType.BINARY:
                        self._guard(functools.partial(self.on_binary, s, msg.data))
                    else:  # ERROR
                        break
            except ConnectionError:
                pass
            finally:
                await self._finish(s)
            return ws

        return handler

    def open_sse(self, request: web.Request, kind: str, session: type[Session] = Session,
                 **state: Any) -> S:
        """Register an SSE session before its response starts, so a venue can queue its first
        events (a snapshot) without an await between reading its state and queueing them;
        then ``return await self.serve_sse(session, ...)``. Once :meth:`close_sessions` ran,
        it raises an HTTP 503 instead (aiohttp answers it; see :meth:`_refuse_session`)."""
        if self.closing:
            raise web.HTTPServiceUnavailable(text="simulator closing\n")
        return self._register(cast(S, session(self._next, kind, request, **state)))

    async def serve_sse(self, s: S, preface: bytes = b"", keepalive: float | None = None,
                        comment: bytes = b": keepalive\n\n") -> web.StreamResponse:
        """Answer the request of SSE session ``s``: ``text/event-stream``, ``preface`` (e.g.
        ``retry:``), then its queue until :meth:`close` or the client goes; ``comment`` every
        ``keepalive`` seconds. Queued items are event blocks as bytes (or str)."""
        assert s.request is not None
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
        s.sse, s.keepalive = resp, comment
        try:
            await resp.prepare(s.request)
            if preface:
                await self._write(s, preface, counted=False)
            if keepalive:
                s.timers.append(self.clock.every(
                    keepalive, lambda: s.queue.put_nowait(_KEEPALIVE)))
            s.writer = asyncio.create_task(self._write_loop(s), name=f"{self.name}-w{s.no}")
            await asyncio.wait({s.writer})
        except (ConnectionError, RuntimeError):
            pass
        finally:
            await self._finish(s)
        return resp

    def _register(self, s: S) -> S:
        self._next += 1
        self._open[s.no] = s
        self._sent[s.no] = []
        self.kinds[s.no] = s.kind
        if s.request is not None:
            self.paths[s.no] = s.request.path_qs
        return s

    async def _finish(self, s: S) -> None:
        s.closing = True
        if self._open.pop(s.no, None) is None:
            return
        for t in s.timers:
            t.cancel()
        self._guard(functools.partial(self.on_close, s))
        w = s.writer
        if w is not None and not w.done():
            if s.close_started:  # the writer is sending our close frame: let it finish
                await asyncio.wait({w}, timeout=1.0)
            w.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await w
        if s.ws is not None and not s.ws.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(s.ws.close(), CLOSE_HANDSHAKE_SECONDS)

    def sessions(self, kind: str | None = None) -> list[S]:
        """Open sessions not closing, in accept order; ``kind`` filters by prefix."""
        return [s for s in self._open.values()
                if not s.closing and (kind is None or s.kind.startswith(kind))]

    # -- sending (the grammar's side: never awaits) --------------------------------------------
    def send(self, s: Session, item: str | bytes | Burst) -> None:
        """Queue a frame for ``s`` (text on a WebSocket, an event block on SSE), unless it is
        closing. A client that lets ``max_queue`` frames pile up is closed (1008)."""
        if s.closing:
            return
        if s.queue.qsize() >= self.max_queue:
            log.warning("%s sim: session %d is too slow; closing it", self.name, s.no)
            self.close_now(s, SLOW_CONSUMER_CLOSE, b"slow consumer")
            return
        s.queue.put_nowait(item)

    def send_json(self, s: Session, obj: Any) -> None:
        self.send(s, dumps(obj))

    def close(self, s: Session, code: int = 1000, message: bytes = b"") -> None:
        """Close after what is already queued (SSE: end the response); queue nothing more."""
        if not s.closing:
            s.queue.put_nowait(Close(code, message))
            s.closing = True

    def close_now(self, s: Session, code: int, message: bytes = b"") -> None:
        """Close right away with ``code``, skipping anything still queued."""
        s.closing = True
        self.spawn(self._close_now(s, code, message))

    async def _close_now(self, s: Session, code: int, message: bytes) -> None:
        if s.writer is not None and not s.writer.done():
            s.writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await s.writer
        await self._close_transport(s, code, message)

    def abort(self, s: Session) -> None:
        """End the session abruptly: a TCP abort, no close frame."""
        s.closing = True
        if s.writer is not None:
            s.writer.cancel()
        transport = s.request.transport if s.request is not None else None
        if transport is not None:
            transport.abort()

    async def _close_transport(self, s: Session, code: int, message: bytes) -> None:
        ws = s.ws
        if ws is None or ws.closed:
            return  # SSE: the handler ends the response once the writer is done
        try:
            await asyncio.wait_for(ws.close(code=code, message=message),
                                   CLOSE_HANDSHAKE_SECONDS)
        except (TimeoutError, ConnectionError, RuntimeError):
            transport = s.request.transport if s.request is not None else None
            if transport is not None:
                transport.abort()

    async def _write_loop(self, s: Session) -> None:
        try:
            while True:
                item = await s.queue.get()
                if isinstance(item, Close):
                    s.close_started = True
                    await self._close_transport(s, item.code, item.message)
                    return
                if isinstance(item, Burst):
                    first = True
                    while first or item.repeat:
                        for i, text in enumerate(item.texts):
                            if not await self._write(s, text, ledgered=first):
                                return
                            if i % 256 == 255:
                                await asyncio.sleep(0)
                        first = False
                elif item is _KEEPALIVE:
                    if not await self._write(s, s.keepalive, counted=False):
                        return
                elif not await self._write(s, item):
                    return
        except asyncio.CancelledError:
            raise
        except Exception:  # never let one session's failure escape into the loop
            log.exception("%s sim: writer of session %d failed", self.name, s.no)

    async def _write(self, s: Session, item: str | bytes, counted: bool = True,
                     ledgered: bool = True) -> bool:
        """Hand one frame to the socket and ledger it; False once the session is gone."""
        text = item if isinstance(item, str) else item.decode(errors="replace")
        if counted and (s.cut_next or s.cut_after and s.frames >= s.cut_after):
            await self._cut(s, text)
            return False
        try:
            if s.ws is not None:
                if s.ws.closed:
                    return False
                await s.ws.send_str(text)
            elif s.sse is not None:
                await s.sse.write(item if isinstance(item, bytes) else item.encode())
            else:
                return False
        except (ConnectionError, RuntimeError):
            return False  # the transport was closing: the frame never reached the socket
        except asyncio.CancelledError:
            if ledgered:
                self._ledger(s, text)  # cancelled while draining: the frame is written already
            raise
        if ledgered:
            self._ledger(s, text)
        if counted:
            s.frames += 1
        return True

    def _ledger(self, s: Session, text: str) -> None:
        s.seq += 1
        self.ledger.append(Sent(s.no, s.seq, text))
        self._sent[s.no].append(text)
        if self._ledger_file is not None:
            self._ledger_file.write(orjson.dumps(
                {"conn": s.no, "seq": s.seq, "path": self.paths.get(s.no), "text": text})
                + b"\n")
        self._progress.set()

    async def _cut(self, s: Session, text: str) -> None:
        """Send the first half of a frame, give it a moment to reach the client, then abort
        the TCP connection: the client holds a partial frame that must never count."""
        raw = _ws_text_frame(text) if s.ws is not None else text.encode()
        half = raw[:len(raw) // 2]
        transport = s.request.transport if s.request is not None else None
        if transport is not None and not transport.is_closing():
            if s.sse is not None:
                await s.sse.write(half)  # through the response: chunked framing included
            else:
                transport.write(half)
            self.cuts.append(Sent(s.no, s.seq + 1, text))
            await asyncio.sleep(0.05)  # I/O, not venue time: let the bytes leave
            transport.abort()
        s.closing = True

    # -- ledger and faults ---------------------------------------------------------------------
    def ledger_for(self, conn_no: int) -> list[str]:
        """Texts handed to session ``conn_no``'s socket (1 = first accepted), in order."""
        return list(self._sent.get(conn_no, ()))

    def connections(self) -> list[int]:
        """Numbers of the sessions currently open."""
        return sorted(self._open)

    def conns(self, kind: str | None = None) -> list[int]:
        """Numbers of every session ever accepted, in order; ``kind`` filters by prefix."""
        return [n for n, k in self.kinds.items() if kind is None or k.startswith(kind)]

    def _targets(self, conn: int | None, kind: str | None) -> list[S]:
        return [s for s in list(self._open.values())
                if (conn is None or s.no == conn) and (kind is None or s.kind.startswith(kind))]

    @fault
    def drop(self, code: int | None = None, conn: int | None = None, kind: str | None = None,
             mid_frame: bool = False) -> int:
        """End sessions abruptly (all, or session ``conn``, or those whose kind starts with
        ``kind``): a TCP abort, no close frame; with ``code``, a close frame with that code
        right away instead, skipping anything queued; with ``mid_frame``, each is cut in the
        middle of its next frame (half of it sent, then the abort). Returns how many."""
        targets = self._targets(conn, kind)
        for s in targets:
            if mid_frame:
                s.cut_next = True
            elif code is not None:
                self.close_now(s, int(code), b"dropped")
            else:
                self.abort(s)
        return len(targets)

    @fault
    def pause(self, paused: bool = True) -> None:
        """Stop (or restart) the market: no tick runs while paused, so nothing is sent
        unprompted (a venue's own timers, heartbeats say, check :attr:`paused` too); what is
        already on its way still goes out, and clients are still answered."""
        self.paused = bool(paused)

    @fault
    def inject(self, text: str, conn: int | None = None, kind: str | None = None) -> int:
        """Send raw ``text`` (malformed, unknown type, oversized...) to every open session, or
        to ``conn``/``kind`` only; ledgered like any other frame. Returns how many."""
        targets = [s for s in self._targets(conn, kind) if not s.closing]
        for s in targets:
            self.send(s, str(text))
        return len(targets)

    async def _http_fault(self, request: web.Request) -> web.Response:
        fn = self._faults.get(request.match_info["name"])
        if fn is None:
            return web.json_response({"ok": False, "error": f"unknown fault "
                                      f"{request.match_info['name']!r}; known: "
                                      f"{sorted(self._faults)}"}, status=404)
        try:
            body = orjson.loads(await request.read() or b"{}")
        except orjson.JSONDecodeError:
            return web.json_response({"ok": False, "error": "body is not JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"ok": False, "error": "body must be an object"},
                                     status=400)
        try:
            result = fn(**body)
            if asyncio.iscoroutine(result):
                result = await result
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            return web.json_response({"ok": False, "error": repr(e)}, status=400)
        return web.json_response({"ok": True} if result is None else {"ok": True,
                                                                       "result": result})

    async def _http_ledger(self, request: web.Request) -> web.Response:
        conn = request.query.get("conn")

        def rows(entries: Iterable[Sent]) -> list[dict[str, Any]]:
            return [{"conn": e.conn, "seq": e.seq, "path": self.paths.get(e.conn),
                     "text": e.text} for e in entries if conn is None or str(e.conn) == conn]

        return web.Response(body=orjson.dumps({
            "frames": rows(self.ledger), "cuts": rows(self.cuts),
            "rest": [r._asdict() for r in self.rest_ledger]}), content_type="application/json")

    def rest(self, request: web.Request, status: int, body: str | bytes,
             content_type: str = "application/json") -> web.Response:
        """An HTTP answer, ledgered (:attr:`rest_ledger`)."""
        raw = body if isinstance(body, bytes) else body.encode()
        if _plain(request):
            self.plain_answers += 1
        self.rest_ledger.append(RestSent(request.path_qs, status, raw.decode(errors="replace")))
        self._progress.set()
        return web.Response(status=status, body=raw, content_type=content_type)

    # -- waiting, for tests --------------------------------------------------------------------
    async def until(self, pred: Callable[[], object], timeout: float = 10.0,
                    what: str = "the condition") -> None:
        """Wait until ``pred()`` holds, re-checked as frames are ledgered or client messages
        arrive (and every 50 ms);
        TimeoutError after ``timeout`` seconds. A test waits for what it needs this way
        instead of sleeping a fixed time that a loaded machine may not honour."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not pred():
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"{self.name} simulator: {what} not met in {timeout} s")
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), min(left, 0.05))

    async def advance(self, seconds: float) -> None:
        """Move a :class:`~recorder.sim.clock.ManualClock` forward (ticks and timers run in
        order), then wait until every session's queue is written out."""
        if not isinstance(self.clock, ManualClock):
            raise TypeError("advance() needs the simulator built with clock=ManualClock()")
        await self.clock.advance(seconds)
        await self.until(lambda: all(s.queue.empty() for s in self._open.values()),
                         what="queues written out")
        await asyncio.sleep(0)


async def serve(server: Simulator[Any] | type[Simulator[Any]], host: str, port: int,
                **opts: Any) -> None:
    """Run ``server`` until cancelled (the ``recorder sim VENUE`` command); prints its
    :meth:`~Simulator.banner` once bound. Given a class, it is built from ``opts`` (None
    values left out: the command's options not given), so a venue's module says
    ``serve = functools.partial(recorder.sim.driver.serve, XServer)``."""
    if isinstance(server, type):
        server = server(**{k: v for k, v in opts.items() if v is not None})
    await server.start(host, port)
    print(server.banner(), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
