"""A seeded synthetic Totalis market: quote requests, their books, commits, and what follows
on every channel, consistently (pure: the server passes ``now_ms``; no clock, no I/O).

One quote request lives 1-3 s here (minutes on the venue), so a short recording sees every
path. Its life, per https://docs.totalis.trade/guides/event-catalog:

- created: ``quote_request`` on the MM stream (``mm``), and the request's own stream
  (``qr:<id>``) starts with ``best_quote`` (``book_seq`` 1, ``best_quote`` null);
- book changes: ``best_quote`` with ``book_seq`` + 1 (some quotes are the house MM's: the
  account whose key the recorder uses); now and then ``quote_request:updated`` (new version and
  hash; the book empties);
- end: ``status`` + one of ``committed`` / ``cancelled`` / ``expired`` on ``qr:<id>`` (then the
  stream closes) and ``quote_request_expired`` on ``mm`` (``won`` true/false, sometimes absent);
- after a commit: on ``ws:mm:quotes:<house>`` ``quote:accepted`` and ``mm_quote:accepted`` in
  random order when the house won (then ``quote:confirmed``, ``quote:executed``, or
  ``quote:expired`` + ``quote:withdrawn`` when the deadline is missed), ``quote:rejected`` when
  it quoted and lost; on ``ws:rfq:<rfq_id>`` ``position:created`` then ``position:settled`` /
  ``position:cancelled`` (sometimes after a ``position:error``);
- some house positions get an early-cashout auction: ``cashout_request`` on ``mm`` and
  ``co:<id>`` with ``best_quote`` then a terminal ``status``.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MARKETS = (  # (venue, event_ticker, market_ticker, yes probability)
    ("kalshi", "KXBTC-26JUN01", "KXBTC-26JUN01-T72500", 0.55),
    ("kalshi", "KXBTC-26JUN01", "KXBTC-26JUN01-T73000", 0.42),
    ("kalshi", "KXETH-26JUN01", "KXETH-26JUN01-T3000", 0.61),
    ("kalshi", "KXNBA-26JUN04", "KXNBA-26JUN04-BOS", 0.62),
    ("kalshi", "KXFED-26JUN17", "KXFED-26JUN17-H0", 0.9),
    ("kalshi", "KXCPI-26JUN11", "KXCPI-26JUN11-T3.0", 0.35),
    ("polymarket", "will-bitcoin-hit-100k-in-june",
     "0x4c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b", 0.41),
    ("polymarket", "world-cup-2026-winner",
     "0x9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b", 0.18),
    ("polymarket", "us-recession-in-2026",
     "0x1f2e3d4c5b6a79880f1e2d3c4b5a69788f7e6d5c4b3a29180f7e6d5c4b3a2918", 0.27),
)
OTHER_MMS = ("did:privy:cmsimmm0alpha", "did:privy:cmsimmm0bravo", "did:privy:cmsimmm0charlie")
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
TAKER_FEE_BPS = 100


def iso(ms: int) -> str:
    """``2026-06-01T18:45:30.000Z``, the docs' format."""
    s, r = divmod(ms, 1000)
    days, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    mi, sec = divmod(rem, 60)
    y, mo, d = _civil(days)
    return f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{sec:02d}.{r:03d}Z"


def _civil(days: int) -> tuple[int, int, int]:
    """Days since 1970-01-01 -> (year, month, day) (H. Hinnant's algorithm)."""
    z = days + 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (y + (m <= 2), m, d)


@dataclass(frozen=True, slots=True)
class Out:
    """One event for one target: ``mm``, ``qr:<id>``, ``co:<id>`` or ``ws:<channel>``.
    ``final`` marks the last event of a per-request stream (the server closes it after)."""

    target: str
    event: str
    data: dict[str, Any]
    final: bool = False


@dataclass
class _Request:
    id: str
    payload: dict[str, Any]
    legs: list[tuple[str, str, str, float]]
    book_seq: int = 0
    best: dict[str, Any] | None = None
    house_quote: str | None = None
    ended: bool = False


@dataclass
class _Cashout:
    id: str
    payload: dict[str, Any]
    book_seq: int = 0


@dataclass(order=True)
class _Job:
    at: int
    seq: int
    fn: Callable[[int], list[Out]] = field(compare=False)


class TotalisSynth:
    """``tick(now_ms)`` returns the events due by ``now_ms``, in order.

    Options: ``rate`` multiplies how often requests arrive; ``house_id`` is the house MM's DID
    (WS ``auth:success.user_id``, and by default the SSE ``connected.mm_id``); ``quote_channel_id``
    names its ``mm:quotes:`` channel (default ``house_id``); ``won_absent`` is the chance a
    committed close omits ``won``; ``gap_every`` skips a ``book_seq`` every N book changes
    (0: never); ``cashout_chance`` per house position.
    """

    def __init__(self, seed: int = 1, *, rate: float = 1.0,
                 house_id: str = "did:privy:cmsimhouse0001", quote_channel_id: str | None = None,
                 won_absent: float = 0.1, gap_every: int = 0, cashout_chance: float = 0.35,
                 request_interval_ms: int = 400, lifetime_ms: tuple[int, int] = (1200, 2600)
                 ) -> None:
        self.rng = random.Random(seed)
        self.rate = max(rate, 0.01)
        self.house = house_id
        self.quote_channel = f"ws:mm:quotes:{quote_channel_id or house_id}"
        self.won_absent = won_absent
        self.gap_every = gap_every
        self.cashout_chance = cashout_chance
        self.request_interval_ms = request_interval_ms
        self.lifetime_ms = lifetime_ms
        self.requests: dict[str, _Request] = {}  # active
        self.cashouts: dict[str, _Cashout] = {}  # active
        self.counts: dict[str, int] = {}
        self._leg_ids = {m[2]: self._uuid() for m in MARKETS}
        self._jobs: list[_Job] = []
        self._seq = 0
        self._next_request: int | None = None
        self._book_changes = 0

    # -- helpers -----------------------------------------------------------------------------
    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _b58(self, n: int) -> str:
        return "".join(self.rng.choice(B58) for _ in range(n))

    def _at(self, when: int, fn: Callable[[int], list[Out]]) -> None:
        self._seq += 1
        heapq.heappush(self._jobs, _Job(when, self._seq, fn))

    def _count(self, outs: list[Out]) -> list[Out]:
        for o in outs:
            self.counts[o.event] = self.counts.get(o.event, 0) + 1
        return outs

    # -- the clock ---------------------------------------------------------------------------
    def tick(self, now_ms: int) -> list[Out]:
        out: list[Out] = []
        if self._next_request is None:
            self._next_request = now_ms
        while self._next_request <= now_ms or (self._jobs and self._jobs[0].at <= now_ms):
            if self._jobs and self._jobs[0].at <= self._next_request:
                job = heapq.heappop(self._jobs)
                out += job.fn(job.at)
            else:
                at = self._next_request
                out += self._create(at)
                gap = self.rng.uniform(0.6, 1.4) * self.request_interval_ms / self.rate
                self._next_request = at + max(1, int(gap))
        return self._count(out)

    # -- quote requests ----------------------------------------------------------------------
    def _payload(self, req_id: str, user: str, legs: list[tuple[str, str, str, float]],
                 sides: list[str], bet: float, version: int, expires: int) -> dict[str, Any]:
        micro = round(bet * 1_000_000)
        stake = (micro - micro * TAKER_FEE_BPS // 10_000) / 1_000_000
        prob = 1.0
        for (_, _, _, p), side in zip(legs, sides, strict=True):
            prob *= p if side == "yes" else 1 - p
        body = {
            "id": req_id, "user_id": user,
            "input_legs": [{"market_ticker": m, "side": s, "venue": v}
                           for (v, _, m, _), s in zip(legs, sides, strict=True)],
            "legs": [{"id": self._leg_ids[m], "event_ticker": e, "market_ticker": m, "side": s,
                      "venue": v, "current_yes_price": p, "current_no_price": round(1 - p, 4)}
                     for (v, e, m, p), s in zip(legs, sides, strict=True)],
            "bet_amount": bet, "user_stake": stake,
            "implied_probability": round(prob, 6), "version": version,
        }
        digest = hashlib.sha256(repr(sorted(body.items())).encode()).hexdigest()
        body["request_hash"] = f"sha256:{digest}"
        body["expires_at"] = iso(expires)
        return body

    def _create(self, now: int) -> list[Out]:
        rid = self._uuid()
        legs = self.rng.sample(MARKETS, self.rng.randint(2, 4))
        sides = [self.rng.choice(("yes", "no")) for _ in legs]
        bet = float(self.rng.choice((5, 10, 25, 40, 50, 100)))
        life = self.rng.randint(*self.lifetime_ms)
        user = f"did:privy:cmsimuser{self.rng.randrange(10_000):04d}"
        req = _Request(rid, self._payload(rid, user, legs, sides, bet, 1, now + life), legs)
        req.payload["_sides"] = sides  # kept for updates; stripped when sent
        self.requests[rid] = req
        out = [Out("mm", "quote_request", self._public(req.payload)), self._book(req, None)]
        t = now
        while True:
            t += self.rng.randint(120, 420)
            if t >= now + life - 80:
                break
            self._at(t, lambda at, r=req: self._quote(r, at))
        if self.rng.random() < 0.2:
            self._at(now + life // 2, lambda at, r=req: self._update(r, at))
        self._at(now + life, lambda at, r=req: self._end(r, at))
        return out

    @staticmethod
    def _public(payload: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in payload.items() if not k.startswith("_")}

    def _book(self, req: _Request, best: dict[str, Any] | None) -> Out:
        self._book_changes += 1
        step = 2 if self.gap_every and self._book_changes % self.gap_every == 0 else 1
        req.book_seq += step  # a skipped book_seq: a book change the stream never sent
        req.best = best
        return Out(f"qr:{req.id}", "best_quote", {
            "book_seq": req.book_seq, "version": req.payload["version"],
            "request_hash": req.payload["request_hash"],
            "best_quote": None if best is None else {k: v for k, v in best.items()
                                                     if not k.startswith("_")}})

    def _quote(self, req: _Request, now: int) -> list[Out]:
        if req.ended:
            return []
        if req.best is not None and self.rng.random() < 0.12:
            return [self._book(req, None)]  # the best quote was withdrawn or lapsed
        mm = self.house if self.rng.random() < 0.45 else self.rng.choice(OTHER_MMS)
        fair = 1 / max(req.payload["implied_probability"], 0.001)
        odds = round(max(1.0001, min(1000.0, fair * self.rng.uniform(0.82, 0.97))), 4)
        if req.best is not None and odds <= req.best["payout_odds"]:
            odds = round(req.best["payout_odds"] + 0.01, 4)
        cost = req.payload["user_stake"]
        total = round(cost * odds, 6)
        qid = self._uuid()
        if mm == self.house:
            req.house_quote = qid
        best = {"id": qid, "payout_odds": odds, "user_cost": cost, "total_payout": total,
                "mm_cost": round(total - cost, 6), "valid_until": iso(now + 15_000),
                "market_maker_id": mm}
        return [self._book(req, best)]

    def _update(self, req: _Request, now: int) -> list[Out]:
        if req.ended:
            return []
        p = req.payload
        bet = float(self.rng.choice((10, 25, 50, 75, 100)))
        expires = now + self.rng.randint(600, 1200)
        new = self._payload(req.id, p["user_id"], req.legs, p["_sides"], bet, p["version"] + 1,
                            expires)
        new["_sides"] = p["_sides"]
        req.payload = new
        req.house_quote = None  # quotes on the prior version are void
        return [Out("mm", "quote_request:updated", self._public(new)), self._book(req, None)]

    def _end(self, req: _Request, now: int) -> list[Out]:
        if req.ended:
            return []
        req.ended = True
        self.requests.pop(req.id, None)
        q = f"qr:{req.id}"
        r = self.rng.random()
        if req.best is not None and r < 0.7:
            return self._commit(req, now)
        status = "cancelled" if r < 0.85 else "expired"
        return [Out(q, "status", {"status": status, "committed_rfq_id": None}),
                Out(q, status, {"quote_request_id": req.id}, final=True),
                Out("mm", "quote_request_expired", {"id": req.id, "reason": status,
                                                    "won": False})]

    def _commit(self, req: _Request, now: int) -> list[Out]:
        assert req.best is not None
        best = req.best
        rfq = self._uuid()
        won = best["market_maker_id"] == self.house
        closed: dict[str, Any] = {"id": req.id, "reason": "committed", "won": won}
        if self.rng.random() < self.won_absent:
            del closed["won"]  # "a rare committed close with an indeterminate outcome"
        q = f"qr:{req.id}"
        out = [Out(q, "status", {"status": "committed", "committed_rfq_id": rfq}),
               Out(q, "committed", {"quote_request_id": req.id, "rfq_id": rfq}, final=True),
               Out("mm", "quote_request_expired", closed)]
        if won:
            self._at(now + self.rng.randint(20, 80), lambda at: self._accepted(req, best, rfq, at))
        else:
            if req.house_quote is not None:
                hq = req.house_quote
                self._at(now + 50, lambda at: [Out(self.quote_channel, "quote:rejected", {
                    "quote_id": hq, "rfq_id": rfq, "reason": "Another quote was accepted"})])
            self._at(now + self.rng.randint(300, 700), lambda at: self._position(rfq, at, None))
        return out

    # -- after the commit: the WebSocket side ------------------------------------------------
    def _accepted(self, req: _Request, best: dict[str, Any], rfq: str, now: int) -> list[Out]:
        deadline = now + 1500
        p = req.payload
        short = {"quote_id": best["id"], "rfq_id": rfq, "confirmation_deadline": iso(deadline)}
        details = {
            "rfq_id": rfq, "quote_id": best["id"], "market_maker_id": self.house,
            "user_id": p["user_id"], "source": "quote_request_commit",
            "quote_request_id": req.id, "draft_quote_id": self._uuid(),
            "request_version": p["version"], "request_hash": p["request_hash"],
            "confirmation_deadline": iso(deadline), "accepted_at": iso(now),
            "quote": {k: best[k] for k in ("payout_odds", "user_cost", "total_payout",
                                           "mm_cost", "valid_until")},
            "exposure_legs": [{"venue": v, "event_ticker": e, "market_ticker": m, "side": s}
                              for (v, e, m, _), s in zip(req.legs, p["_sides"], strict=True)],
        }
        pair = [Out(self.quote_channel, "quote:accepted", short),
                Out(self.quote_channel, "mm_quote:accepted", details)]
        self.rng.shuffle(pair)  # "do not depend on ordering versus quote:accepted"
        if self.rng.random() < 0.85:
            self._at(now + self.rng.randint(200, 500), lambda at: self._confirmed(best, rfq, at))
        else:
            qid = best["id"]
            self._at(deadline, lambda at: [
                Out(self.quote_channel, "quote:expired", {"quote_id": qid, "rfq_id": rfq}),
                Out(self.quote_channel, "quote:withdrawn", {"quote_id": qid, "rfq_id": rfq})])
        return pair

    def _confirmed(self, best: dict[str, Any], rfq: str, now: int) -> list[Out]:
        out = [Out(self.quote_channel, "quote:confirmed", {
            "quote_id": best["id"], "rfq_id": rfq, "execution_id": f"exec-{self._uuid()[:8]}"})]
        self._at(now + self.rng.randint(100, 300), lambda at: [
            Out(self.quote_channel, "quote:executed", {"quote_id": best["id"], "rfq_id": rfq}),
            *self._position(rfq, at, best)])
        return out

    def _position(self, rfq: str, now: int, house: dict[str, Any] | None) -> list[Out]:
        pda = self._b58(44)
        ch = f"ws:rfq:{rfq}"
        out = [Out(ch, "position:created", {"rfq_id": rfq, "position_pda": pda,
                                            "timestamp": iso(now)})]
        end = now + self.rng.randint(700, 1500)
        if self.rng.random() < 0.1:
            err = self.rng.choice(("Vault transaction failed: blockhash expired",
                                   "Oracle resolution delayed"))
            self._at(end - 200, lambda at: [Out(ch, "position:error", {
                "rfq_id": rfq, "error": err, "timestamp": iso(at)})])
        if self.rng.random() < 0.15:
            self._at(end, lambda at: [Out(ch, "position:cancelled", {
                "rfq_id": rfq, "position_pda": pda, "reason": "market_voided",
                "timestamp": iso(at)})])
        else:
            qid = house["id"] if house else None

            def settle(at: int) -> list[Out]:
                data = {"rfq_id": rfq, "position_pda": pda,
                        "outcome": self.rng.choice(("user_wins", "mm_wins")),
                        "tx_signature": self._b58(88), "timestamp": iso(at)}
                if qid is not None:
                    data["quote_id"] = qid  # added 2026-05 "to match backend"
                return [Out(ch, "position:settled", data)]
            self._at(end, settle)
        if house is not None and self.rng.random() < self.cashout_chance:
            self._at(now + 150, lambda at: self._cashout(house, pda, at))
        return out

    # -- early cashout -----------------------------------------------------------------------
    def _cashout(self, quote: dict[str, Any], pda: str, now: int) -> list[Out]:
        cid = self._uuid()
        legs = [{"id": self._leg_ids[m], "event_ticker": e, "market_ticker": m,
                 "side": self.rng.choice(("yes", "no")), "venue": v,
                 "resolution": self.rng.choice(("unresolved", "unresolved", "won", "void"))}
                for v, e, m, _ in self.rng.sample(MARKETS, 2)]
        stake = quote["user_cost"]
        payload = {"cashout_request_id": cid, "position_id": hashlib.md5(
                       pda.encode()).hexdigest(), "legs": legs, "user_stake": stake,
                   "mm_risk": quote["mm_cost"], "total_payout": quote["total_payout"],
                   "payout_odds": quote["payout_odds"], "version": 1,
                   "expires_at": iso(now + 1200)}
        co = _Cashout(cid, payload)
        self.cashouts[cid] = co
        out = [Out("mm", "cashout_request", payload), self._co_book(co, None)]
        t = now
        for _ in range(self.rng.randint(1, 3)):
            t += self.rng.randint(150, 300)
            self._at(t, lambda at, c=co: [self._co_book(c, self._buyback(c, at))])
        self._at(now + 1200, lambda at: self._co_end(co))
        return out

    def _buyback(self, co: _Cashout, now: int) -> dict[str, Any]:
        price = round(co.payload["user_stake"] * self.rng.uniform(0.2, 1.6), 2)
        q: dict[str, Any] = {"id": self._uuid(), "market_maker_id": self.house,
                             "buyback_price": price,
                             "mm_pays_user": price >= co.payload["user_stake"],
                             "valid_until": iso(now + 10_000)}
        if self.rng.random() < 0.7:  # "present only when computable"
            q["net_received"] = round(price * 0.99, 4)
        return q

    def _co_book(self, co: _Cashout, best: dict[str, Any] | None) -> Out:
        co.book_seq += 1
        return Out(f"co:{co.id}", "best_quote", {"book_seq": co.book_seq, "version": 1,
                                                 "best_quote": best})

    def _co_end(self, co: _Cashout) -> list[Out]:
        self.cashouts.pop(co.id, None)
        status = self.rng.choice(("committed", "declined", "expired", "cancelled"))
        return [Out(f"co:{co.id}", "status", {"status": status}, final=True)]

    # -- state for snapshots -----------------------------------------------------------------
    def snapshot(self) -> list[tuple[str, dict[str, Any]]]:
        """Active requests and cashout auctions, as the MM stream's snapshot replays them."""
        out = [("quote_request", self._public(r.payload)) for r in self.requests.values()]
        out += [("cashout_request", c.payload) for c in self.cashouts.values()]
        return out

    @staticmethod
    def pages(total: int, page_size: int) -> int:
        return max(1, math.ceil(total / page_size))
