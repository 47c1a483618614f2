"""Seeded synthetic options market behind the Diffusal simulator.

Pure: no clock reads, no sleeping, no sockets. The server passes ``now_ms`` to
:meth:`DiffusalSynth.tick` (about every 100 ms); the output is a deterministic function of the
seed and the sequence of calls. Every payload has a documented Diffusal shape
(https://docs.diffusal.xyz/docs/api/websocket "Channel Payloads") or, where the docs give no
fields (private channels, RFQ sockets, REST bodies), the shape the adapter reads, which is
marked *inferred* there.

Units exactly as in the docs' examples: depth ``timestamp`` in ms; trade ``timestamp``,
ticker ``lastTradeAt``, index ``timestamp`` and markets ``expiry`` in seconds; RFQ and
private timestamps in ms (undocumented; ms is what the realtime service's JS would send).
Prices and sizes are decimal strings; strikes and signed-quote prices are 1e18-scaled integer
strings.

Events come out as ``(kind, key, payload)``:
``depth``/``ticker``/``trade`` (key: instrument symbol), ``index`` (key: pair symbol, lower
case), ``markets``, ``rfq`` (auction lifecycle for /ws/rfq/stream and global@rfq), ``quote``
(key: requestId), ``private`` (key: channel), ``mm`` (frames for /ws/rfq/mm).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

Msg = dict[str, Any]
Event = tuple[str, str | None, Msg]
WAD = 10**18
TICK = Decimal("0.0005")
LEVELS = 8  # grid levels per side
ACCOUNT = "0x" + hashlib.sha256(b"diffusal-sim-account").hexdigest()[:40]
MMS = tuple("0x" + hashlib.sha256(f"mmm-{i}".encode()).hexdigest()[:40] for i in range(3))
MM_SELF = MMS[0]  # the market maker whose /ws/rfq/mm session the simulator serves
ZERO = "0x" + "0" * 40
_PAIRS = (("BTC", "USDT", 82000.0, (78000, 80000, 82000, 84000)),
          ("ETH", "USDT", 2150.0, (2000, 2100, 2200, 2300)))


def _id32(label: str) -> str:
    return "0x" + hashlib.sha256(label.encode()).hexdigest()


def dec(x: Decimal | float | int) -> str:
    """Decimal string without trailing zeros: 0.0450 -> '0.045', 10 -> '10'."""
    d = Decimal(str(x)) if not isinstance(x, Decimal) else x
    return format(d.normalize(), "f")


@dataclass
class Series:
    symbol: str
    series_id: str
    pair_id: str
    underlying: str
    strike: int  # human units
    expiry: int  # unix s
    is_call: bool
    mid: Decimal
    bids: dict[Decimal, int] = field(default_factory=dict)
    asks: dict[Decimal, int] = field(default_factory=dict)
    seq: int = 0
    open_interest: int = 0
    last_trade_at: int = 0
    settled: bool = False
    hide: int = 0  # diffs to apply without emitting (injected gap)

    @property
    def strike_wad(self) -> str:
        return str(self.strike * WAD)

    def info(self) -> Msg:
        return {"symbol": self.symbol, "seriesId": self.series_id, "pairId": self.pair_id,
                "underlying": self.underlying, "strike": self.strike_wad,
                "expiry": self.expiry, "isCall": self.is_call,
                "status": "settled" if self.settled else "active"}


@dataclass
class Auction:
    request_id: str
    taker: str
    series: Series
    size: int
    taker_is_buying: bool
    created_ms: int
    ends_ms: int
    quotes: list[Msg] = field(default_factory=list)
    quote_at: dict[str, int] = field(default_factory=dict)  # mmm -> ms it will quote at
    resolved: Msg | None = None

    def request(self, now_ms: int) -> Msg:
        s = self.series
        return {"type": "rfq_request", "requestId": self.request_id, "taker": self.taker,
                "pairId": s.pair_id, "seriesId": s.series_id, "symbol": s.symbol,
                "strike": s.strike_wad, "expiry": s.expiry, "isCall": s.is_call,
                "size": str(self.size), "takerIsBuying": self.taker_is_buying,
                "auctionEndsAt": self.ends_ms, "timestamp": now_ms}


class DiffusalSynth:
    """The market: pairs, option series with books, trades, index, RFQ auctions and one
    account's private state. ``rate`` multiplies how often things happen."""

    def __init__(self, seed: int = 1, *, start_ms: int = 1_736_409_600_000, rate: float = 1.0,
                 series_every: int = 40, settle_every: int = 90, rfq_every: int = 15,
                 auction_ms: int = 1200) -> None:
        self.rng = random.Random(seed)
        self.rate = rate
        self.series_every = max(1, round(series_every / rate))
        self.settle_every = max(1, round(settle_every / rate))
        self.rfq_every = max(1, round(rfq_every / rate))
        self.auction_ms = auction_ms
        self.ticks = 0
        self.trade_no = 0
        self.order_no = 0
        self.fill_no = 0
        self.liq_no = 0
        self.rfq_no = 0
        self.start_s = start_ms // 1000
        # Friday 08:00 UTC expiries a week apart from the start.
        first = self.start_s - self.start_s % 86400 + 8 * 3600 + 7 * 86400
        self.expiries = (first, first + 7 * 86400)
        self.pairs: list[Msg] = []
        self.spot: dict[str, float] = {}
        self.vol: dict[str, float] = {}
        self.series: dict[str, Series] = {}
        self.strikes: dict[str, list[int]] = {}
        for und, quote, spot, strikes in _PAIRS:
            sym = f"{und}-{quote}"
            pid = _id32(f"pair:{sym}")
            self.pairs.append({"pairId": pid, "symbol": sym, "underlying": und, "quote": quote})
            self.spot[und] = spot
            self.vol[und] = 0.6
            self.strikes[und] = list(strikes)
            for k in strikes:
                self._new_series(und, k, self.expiries[0], True)
                self._new_series(und, k, self.expiries[0], False)
        self.hidden: list[tuple[str, int]] = []  # (symbol, sequence) of diffs never sent
        self.auctions: dict[str, Auction] = {}
        self.done_auctions: dict[str, Auction] = {}
        self.mm_nonce = dict.fromkeys(MMS, 1)
        # private account state
        self.orders: dict[str, Msg] = {}
        self.fills: list[Msg] = []
        self.positions: dict[str, Msg] = {}
        self.collateral: dict[str, Msg] = {}
        self.liquidations: list[Msg] = []
        self.portfolio: Msg = {}
        self.account_rfqs: dict[str, Msg] = {}
        self._init_account(start_ms)

    # -- series and books ------------------------------------------------------------------
    def _pair_of(self, und: str) -> Msg:
        return next(p for p in self.pairs if p["underlying"] == und)

    def _new_series(self, und: str, strike: int, expiry: int, call: bool) -> Series:
        sym = f"{und}-{strike}-{'C' if call else 'P'}-{expiry}"
        mid = TICK * self.rng.randint(30, 300)
        s = Series(sym, _id32(f"series:{sym}"), self._pair_of(und)["pairId"], und, strike,
                   expiry, call, mid, open_interest=self.rng.randint(10, 500))
        for i in range(1, LEVELS + 1):
            if self.rng.random() < 0.7:
                s.bids[mid - i * TICK] = self.rng.randint(1, 30)
            if self.rng.random() < 0.7:
                s.asks[mid + i * TICK] = self.rng.randint(1, 30)
        s.seq = self.rng.randint(1, 1000)
        self.series[sym] = s
        return s

    def live(self) -> list[Series]:
        return [s for s in self.series.values() if not s.settled]

    def known_symbol(self, symbol: str) -> Series | None:
        return self.series.get(symbol)

    def underlyings(self) -> list[str]:
        return [p["underlying"] for p in self.pairs]

    def book_snapshot(self, symbol: str, now_ms: int, typed: bool = True) -> Msg:
        s = self.series[symbol]
        out: Msg = {"type": "snapshot"} if typed else {}
        out.update(symbol=s.symbol,
                   bids=[{"price": dec(p), "size": str(q)} for p, q in
                         sorted(s.bids.items(), reverse=True)],
                   asks=[{"price": dec(p), "size": str(q)} for p, q in sorted(s.asks.items())],
                   sequence=s.seq, timestamp=now_ms)
        return out

    def book(self, symbol: str) -> Msg:
        """The book as the simulator holds it: {side: {price: size}} as floats, and seq."""
        s = self.series[symbol]
        return {"bids": {float(p): float(q) for p, q in s.bids.items()},
                "asks": {float(p): float(q) for p, q in s.asks.items()}, "sequence": s.seq}

    def depth_diff(self, s: Series, now_ms: int) -> Msg | None:
        """Change one or two levels; None when the diff is hidden (an injected gap)."""
        changed: dict[str, list[Msg]] = {"bids": [], "asks": []}
        for _ in range(self.rng.randint(1, 2)):
            side = self.rng.choice(("bids", "asks"))
            i = self.rng.randint(1, LEVELS)
            price = s.mid - i * TICK if side == "bids" else s.mid + i * TICK
            levels = s.bids if side == "bids" else s.asks
            size = self.rng.randint(0, 30) if price in levels else self.rng.randint(1, 30)
            if size == 0:
                levels.pop(price, None)
            else:
                levels[price] = size
            changed[side] = [lv for lv in changed[side] if lv["price"] != dec(price)]
            changed[side].append({"price": dec(price), "size": str(size)})
        s.seq += 1
        if s.hide > 0:
            s.hide -= 1
            self.hidden.append((s.symbol, s.seq))
            return None
        return {"type": "diff", "symbol": s.symbol, "bids": changed["bids"],
                "asks": changed["asks"], "sequence": s.seq, "timestamp": now_ms}

    def ticker(self, s: Series) -> Msg:
        bb = max(s.bids) if s.bids else None
        ba = min(s.asks) if s.asks else None
        return {"symbol": s.symbol, "indexPrice": f"{self.spot[s.underlying]:.2f}",
                "bestBid": dec(bb) if bb is not None else None,
                "bestAsk": dec(ba) if ba is not None else None,
                "bestBidSize": str(s.bids[bb]) if bb is not None else None,
                "bestAskSize": str(s.asks[ba]) if ba is not None else None,
                "openInterest": str(s.open_interest), "lastTradeAt": s.last_trade_at}

    def index(self, und: str, now_ms: int) -> Msg:
        return {"spotPrice": f"{self.spot[und]:.2f}", "volatility": f"{self.vol[und]:.4f}",
                "timestamp": now_ms // 1000}

    # -- the clock ------------------------------------------------------------------------
    def tick(self, now_ms: int) -> list[Event]:
        self.ticks += 1
        rng = self.rng
        out: list[Event] = []
        p_diff, p_trade, p_ticker = min(1.0, 0.25 * self.rate), 0.03 * self.rate, 0.08 * self.rate
        for s in self.live():
            if rng.random() < p_diff:
                d = self.depth_diff(s, now_ms)
                if d is not None:
                    out.append(("depth", s.symbol, d))
            if rng.random() < p_trade and (s.bids or s.asks):
                out += self._trade(s, now_ms)
            if rng.random() < p_ticker:
                out.append(("ticker", s.symbol, self.ticker(s)))
        if self.ticks % 10 == 0:
            for und in self.underlyings():
                self.spot[und] *= 1 + rng.gauss(0, 0.0005)
                self.vol[und] = max(0.2, self.vol[und] + rng.gauss(0, 0.002))
                pair = self._pair_of(und)["symbol"].lower()
                out.append(("index", pair, self.index(und, now_ms)))
        if self.ticks % self.series_every == 0:
            out += self._list_series(now_ms)
        if self.ticks % self.settle_every == 0:
            out += self._settle(now_ms)
        if self.ticks % self.rfq_every == 0:
            out += self._open_auction(now_ms)
        out += self._auctions(now_ms)
        out += self._account(now_ms)
        return out

    def _trade(self, s: Series, now_ms: int) -> list[Event]:
        side = self.rng.choice(("buy", "sell"))
        levels = s.asks if side == "buy" else s.bids
        if not levels:
            side = "sell" if side == "buy" else "buy"
            levels = s.asks if side == "buy" else s.bids
        price = min(levels) if side == "buy" else max(levels)
        self.trade_no += 1
        s.last_trade_at = now_ms // 1000
        s.open_interest += self.rng.randint(0, 3)
        return [("trade", s.symbol, {"id": f"t{self.trade_no:07d}", "symbol": s.symbol,
                                     "price": dec(price), "size": str(self.rng.randint(1, 5)),
                                     "side": side, "timestamp": now_ms // 1000})]

    def _list_series(self, now_ms: int) -> list[Event]:
        und = self.rng.choice(self.underlyings())
        step = self.strikes[und][1] - self.strikes[und][0]
        k = self.strikes[und][-1] + step
        self.strikes[und].append(k)
        s = self._new_series(und, k, self.expiries[1], self.rng.random() < 0.5)
        return [("markets", None, {"type": "series_created", "seriesId": s.series_id,
                                   "pairId": s.pair_id, "expiry": s.expiry,
                                   "strike": s.strike_wad, "isCall": s.is_call})]

    def _settle(self, now_ms: int) -> list[Event]:
        live = self.live()
        if len(live) <= 4:
            return []
        s = live[0]
        s.settled = True
        price = int(Decimal(str(round(self.spot[s.underlying], 2))) * WAD)
        return [("markets", None, {"type": "series_settled", "seriesId": s.series_id,
                                   "pairId": s.pair_id, "expiry": s.expiry,
                                   "strike": s.strike_wad, "isCall": s.is_call,
                                   "settlementPrice": str(price)})]

    # -- RFQ ---------------------------------------------------------------------------------
    def active_auctions(self, now_ms: int) -> list[Msg]:
        return [a.request(a.created_ms) for a in self.auctions.values()]

    def quotes_for(self, request_id: str) -> list[Msg] | None:
        a = self.auction(request_id)
        return None if a is None else list(a.quotes)

    def auction(self, request_id: str) -> Auction | None:
        return self.auctions.get(request_id) or self.done_auctions.get(request_id)

    def _open_auction(self, now_ms: int) -> list[Event]:
        live = self.live()
        if not live:
            return []
        self.rfq_no += 1
        rid = f"{self.rng.getrandbits(128):032x}"
        rid = f"{rid[:8]}-{rid[8:12]}-{rid[12:16]}-{rid[16:20]}-{rid[20:]}"
        mine = self.rfq_no % 2 == 1  # every other request is this account's
        a = Auction(rid, ACCOUNT if mine else f"0x{self.rng.getrandbits(160):040x}",
                    self.rng.choice(live), self.rng.randint(1, 20), self.rng.random() < 0.5,
                    now_ms, now_ms + self.auction_ms)
        for m in MMS:
            if self.rng.random() < 0.8:
                a.quote_at[m] = now_ms + self.rng.randint(100, self.auction_ms - 100)
        self.auctions[rid] = a
        req = a.request(now_ms)
        out: list[Event] = [("rfq", None, req), ("mm", None, dict(req))]
        if mine:
            row = {"requestId": rid, "status": "open", "seriesId": a.series.series_id,
                   "symbol": a.series.symbol, "size": str(a.size),
                   "takerIsBuying": a.taker_is_buying, "createdAt": now_ms, "updatedAt": now_ms}
            self.account_rfqs[rid] = row
            out.append(("private", "rfq", {"type": "update", **row}))
        return out

    def _auctions(self, now_ms: int) -> list[Event]:
        out: list[Event] = []
        for rid, a in list(self.auctions.items()):
            for m, at in list(a.quote_at.items()):
                if at <= now_ms:
                    del a.quote_at[m]
                    out += self._quote(a, m, now_ms)
            if a.ends_ms <= now_ms:
                out += self._resolve(a, now_ms)
                del self.auctions[rid]
                self.done_auctions[rid] = a
        return out

    def _quote(self, a: Auction, mmm: str, now_ms: int) -> list[Event]:
        s = a.series
        price = (s.mid + TICK * self.rng.randint(-6, 6)) * WAD
        nonce = self.mm_nonce[mmm]
        sig = "0x" + hashlib.sha256(f"{a.request_id}:{mmm}:{nonce}".encode()).hexdigest() * 2
        q = {"requestId": a.request_id, "mmm": mmm,
             "taker": a.taker if self.rng.random() < 0.7 else ZERO,
             "seriesId": s.series_id, "takerIsBuying": a.taker_is_buying,
             "price": str(int(price)), "size": str(a.size * WAD), "nonce": str(nonce),
             "expiry": now_ms // 1000 + 60, "signature": sig[:132], "timestamp": now_ms}
        a.quotes.append(q)
        out: list[Event] = [("quote", a.request_id, {"type": "quote", **q})]
        if mmm == MM_SELF and self.rng.random() < 0.3:
            # This MM's quote came in with a stale nonce: the socket says so.
            out.append(("mm", None, {"type": "quote_rejected", "requestId": a.request_id,
                                     "reason": "stale_nonce", "nonce": str(nonce),
                                     "timestamp": now_ms}))
        return out

    def _resolve(self, a: Auction, now_ms: int) -> list[Event]:
        best = None
        for q in a.quotes:
            p = int(q["price"])
            if best is None or (p < int(best["price"]) if a.taker_is_buying else
                                p > int(best["price"])):
                best = q
        res: Msg = {"type": "auction_resolved", "requestId": a.request_id,
                    "status": "filled" if best else "expired",
                    "winner": best["mmm"] if best else None,
                    "price": best["price"] if best else None, "quoteCount": len(a.quotes),
                    "timestamp": now_ms}
        a.resolved = res
        out: list[Event] = [("rfq", None, res), ("quote", a.request_id, dict(res))]
        if best is not None:
            self.mm_nonce[best["mmm"]] += 1
            if best["mmm"] == MM_SELF:
                tx = _id32(f"tx:{a.request_id}")
                out.append(("mm", None, {"type": "trade_filled", "requestId": a.request_id,
                                         "mmm": MM_SELF, "taker": a.taker,
                                         "seriesId": a.series.series_id,
                                         "price": best["price"], "size": best["size"],
                                         "txHash": tx, "timestamp": now_ms}))
        if a.request_id in self.account_rfqs:
            row = dict(self.account_rfqs.pop(a.request_id))
            row.update(status=res["status"], updatedAt=now_ms)
            out.append(("private", "rfq", {"type": "update", **row}))
        return out

    # -- the account (private channels) ----------------------------------------------------------
    def _init_account(self, now_ms: int) -> None:
        self.collateral = {
            "USDT": {"asset": "USDT", "balance": "25000", "available": "21000",
                     "locked": "4000", "updatedAt": now_ms},
            "WETH": {"asset": "WETH", "balance": "2.5", "available": "2.5", "locked": "0",
                     "updatedAt": now_ms}}
        for s in self.live()[:2]:
            self.positions[s.symbol] = {"symbol": s.symbol, "seriesId": s.series_id,
                                        "size": "3", "entryPrice": dec(s.mid),
                                        "realizedPnl": "0", "unrealizedPnl": "0",
                                        "updatedAt": now_ms}
        self.portfolio = {"equity": "25000", "marginUsed": "4000", "availableMargin": "21000",
                          "unrealizedPnl": "0", "updatedAt": now_ms}
        self._place_order(now_ms)

    def _place_order(self, now_ms: int) -> Msg:
        s = self.rng.choice(self.live())
        self.order_no += 1
        side = self.rng.choice(("buy", "sell"))
        o = {"orderId": f"o{self.order_no:06d}", "symbol": s.symbol, "side": side,
             "price": dec(s.mid - TICK if side == "buy" else s.mid + TICK),
             "size": str(self.rng.randint(2, 10)), "filledSize": "0", "status": "open",
             "createdAt": now_ms, "updatedAt": now_ms}
        self.orders[o["orderId"]] = o
        return o

    def private_snapshot(self, channel: str, now_ms: int) -> Msg:
        items: list[Msg] = {
            "position": lambda: list(self.positions.values()),
            "order": lambda: [o for o in self.orders.values() if o["status"] in
                              ("open", "partially_filled")],
            "fill": lambda: self.fills[-10:],
            "collateral": lambda: list(self.collateral.values()),
            "rfq": lambda: list(self.account_rfqs.values()),
            "liquidation": lambda: self.liquidations[-5:],
            "portfolio": lambda: [self.portfolio],
        }[channel]()
        return {"type": "snapshot", "items": [dict(i) for i in items], "timestamp": now_ms}

    def _account(self, now_ms: int) -> list[Event]:
        rng = self.rng
        out: list[Event] = []
        if rng.random() < 0.07 * self.rate:
            o = self._place_order(now_ms)
            out.append(("private", "order", {"type": "update", **o}))
        open_orders = [o for o in self.orders.values() if o["status"] in
                       ("open", "partially_filled")]
        if open_orders and rng.random() < 0.06 * self.rate:
            out += self._fill(rng.choice(open_orders), now_ms)
        if rng.random() < 0.005 * self.rate and self.positions:
            sym = rng.choice(sorted(self.positions))
            pos = self.positions.pop(sym)
            self.liq_no += 1
            liq = {"liquidationId": f"l{self.liq_no:05d}", "symbol": sym,
                   "size": pos["size"], "price": pos["entryPrice"], "penalty": "12.5",
                   "timestamp": now_ms}
            self.liquidations.append(liq)
            gone = dict(pos, size="0", updatedAt=now_ms)
            out += [("private", "liquidation", {"type": "update", **liq}),
                    ("private", "position", {"type": "update", **gone})]
        return out

    def _fill(self, o: Msg, now_ms: int) -> list[Event]:
        size = Decimal(o["size"]) - Decimal(o["filledSize"])
        qty = min(size, Decimal(self.rng.randint(1, 4)))
        filled = Decimal(o["filledSize"]) + qty
        o.update(filledSize=dec(filled), updatedAt=now_ms,
                 status="filled" if filled == Decimal(o["size"]) else "partially_filled")
        self.fill_no += 1
        price = Decimal(o["price"])
        f = {"fillId": f"f{self.fill_no:06d}", "orderId": o["orderId"], "symbol": o["symbol"],
             "side": o["side"], "price": o["price"], "size": dec(qty),
             "fee": dec((price * qty * Decimal("0.0003")).quantize(Decimal("0.000001"))),
             "liquidity": self.rng.choice(("maker", "taker")),
             "txHash": _id32(f"fill:{self.fill_no}"), "timestamp": now_ms}
        self.fills.append(f)
        s = self.series[o["symbol"]]
        pos = self.positions.setdefault(o["symbol"], {
            "symbol": s.symbol, "seriesId": s.series_id, "size": "0", "entryPrice": o["price"],
            "realizedPnl": "0", "unrealizedPnl": "0", "updatedAt": now_ms})
        signed = qty if o["side"] == "buy" else -qty
        pos.update(size=dec(Decimal(pos["size"]) + signed), updatedAt=now_ms)
        usdt = self.collateral["USDT"]
        cost = price * qty
        usdt.update(balance=dec(Decimal(usdt["balance"]) - cost * signed / abs(signed)),
                    updatedAt=now_ms)
        self.portfolio.update(equity=usdt["balance"], updatedAt=now_ms)
        return [("private", "order", {"type": "update", **o}),
                ("private", "fill", {"type": "update", **f}),
                ("private", "position", {"type": "update", **pos}),
                ("private", "collateral", {"type": "update", **usdt}),
                ("private", "portfolio", {"type": "update", **self.portfolio})]
