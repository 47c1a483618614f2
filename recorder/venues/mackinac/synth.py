"""Seeded synthetic market behind the Mackinac simulator.

This module is pure: it never reads a clock, never sleeps and never touches a socket. The
caller passes ``now_ms`` (epoch milliseconds) into :meth:`MarketSynth.tick`, and the output
is a deterministic function of the seed and the sequence of ``(key, now_ms)`` calls. The
server (``server.py``) calls ``tick`` about every 50 ms for each subscribed key.

Every dict returned matches a documented Mackinac frame shape (field names, value types):
https://mackinac.io/api/messages/ . Conventions used throughout:

- ``time`` and every other timestamp are epoch milliseconds as ``int``.
- EVM addresses are lowercase ``0x`` + 40 hex characters; Morpho market ids are 32-byte
  ids (``0x`` + 64 hex), as documented for ``rate_market.address`` on Morpho rows.
- Raw on-chain amounts (``amount``, ``amount0``, ``amount1``, ``collateralAmount``) are
  decimal strings, because uint128/uint256 values do not fit a float64 or an int64.
- APYs are decimal fractions (0.058 = 5.8 %), ``ratePct`` is an annualised percentage.

Prices come from smooth, seeded functions of time (a sum of sines per asset), so feeds that
quote the same asset (``uni:WETH/USDC``, ``ammbook:WETH/USDC``, ``hl:ETH``) stay coherent
without sharing mutable state; per-feed noise comes from a per-key ``random.Random``.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

Msg = dict[str, Any]

#: Message types gated by tier inside an otherwise ungated feed. ``spread`` frames ride on
#: the ``uni``/``univ4`` feeds but are professional-only
#: (https://mackinac.io/api/messages/ "spread"), so the server filters them per session.
GATED_TYPES: dict[str, str] = {"spread": "professional"}

#: Virtual feeds gated by tier, by the exchange part of the key.
GATED_EXCHANGES: dict[str, str] = {"ammbook": "professional", "arbflag": "super_admin"}

#: Keys mixed into :meth:`MarketSynth.firehose` when no keys are given.
FIREHOSE_KEYS: tuple[str, ...] = (
    "hl:ETH",
    "hl:BTC",
    "dydx:ETH-USD",
    "uni:WETH/USDC",
    "univ4:WETH/USDC",
    "sushi:WETH/USDC",
    "pancake:WETH/USDC",
    "ostium:XAU/USD",
    "rates:swaps",
    "lending:actions",
    "ammliquidity:WETH/USDC",
)

HISTORY_CAP = 1000
"""Server-side cap of the print ring buffer (and of the LP-event backfill)."""

_EPOCH_MS = 1_700_000_000_000
# chain -> (block time in ms, block height at _EPOCH_MS); only the shape matters.
_CHAINS: dict[str, tuple[int, int]] = {
    "arbitrum": (250, 150_000_000),
    "ethereum": (12_000, 18_500_000),
    "base": (2_000, 6_000_000),
    "dydx": (1_100, 1_000_000),
}
_TICK_BASE = math.log(1.0001)
_IMPACT_SIZES = (1000, 10000, 100000, 1000000)
_FEE_SPACING = {100: 1, 500: 10, 2500: 50, 3000: 60, 10000: 200}
_AMM_TIERS: dict[str, tuple[int, ...]] = {
    "uni": (100, 500, 3000),
    "univ4": (500, 3000),
    "sushi": (500, 3000),
    "pancake": (100, 500, 2500),
}
_LENDING_ACTIONS = ("supply", "withdraw", "borrow", "repay", "liquidate", "flashloan")
_DECIMALS = {"USDC": 6, "WETH": 18, "cbBTC": 8, "wstETH": 18}


def _addr(label: str) -> str:
    """Deterministic lowercase EVM address (``0x`` + 40 hex) for a label."""
    return "0x" + hashlib.sha256(label.encode()).hexdigest()[:40]


def _id32(label: str) -> str:
    """Deterministic 32-byte id (``0x`` + 64 hex), the form of a Morpho Blue market id."""
    return "0x" + hashlib.sha256(label.encode()).hexdigest()


def _rand_addr(rng: random.Random) -> str:
    return f"0x{rng.getrandbits(160):040x}"


def _block_at(chain: str, t_ms: int) -> int:
    block_ms, base = _CHAINS[chain]
    return base + max(0, t_ms - _EPOCH_MS) // block_ms


def _amm_tick(price: float) -> int:
    """Pool tick for a WETH/USDC human price, oriented as in the docs' example.

    The documented ``depth`` example has ``currentTick: 196234`` at a price near 3000, i.e.
    ``1.0001**tick == 1e12 / price`` (raw USDC-per-WETH inverted, 18 vs 6 decimals).
    """
    return round(math.log(1e12 / price) / _TICK_BASE)


def _tick_price(tick: int) -> float:
    return round(1e12 / (1.0001**tick), 4)


def _expiry_ms(symbol: str) -> int:
    """Maturity (00:00 UTC) parsed from a PT symbol ending in ``DDMONYYYY``."""
    day = datetime.strptime(symbol.rsplit("-", 1)[1], "%d%b%Y").replace(tzinfo=UTC)
    return int(day.timestamp() * 1000)


class _Path:
    """Smooth seeded function of time: ``base * (1 + sum(a * sin(2 pi t / P + phi)))``."""

    def __init__(self, base: float, rng: random.Random, scale: float = 1.0) -> None:
        self.base = base
        self.parts = [
            (amp * scale, period, rng.uniform(0.0, 2 * math.pi))
            for amp, period in ((0.0004, 7_000), (0.001, 53_000), (0.003, 311_000), (0.01, 3.6e6))
        ]

    def at(self, t_ms: int) -> float:
        x = sum(a * math.sin(2 * math.pi * t_ms / p + ph) for a, p, ph in self.parts)
        return self.base * (1.0 + x)


@dataclass(frozen=True)
class _RateMarket:
    """A Pendle or Spectra PT market of the catalogue."""

    exchange: str
    chain: str
    symbol: str
    unit: str  # "ETH" (priced off the ETH path) or "USD"
    underlying_apy: float
    implied_apy: float
    lp_apy: float
    tvl: float
    volume24h: float
    fee_rate: float | None

    @property
    def address(self) -> str:
        return _addr(f"{self.exchange}:{self.chain}:{self.symbol}")

    @property
    def expiry(self) -> int:
        return _expiry_ms(self.symbol)


_RATE_MARKETS: tuple[_RateMarket, ...] = (
    _RateMarket("pendle", "ethereum", "PT-weETH-25JUN2026", "ETH", 0.031, 0.058, 0.012,
                12_500_000.0, 450_000.0, 0.0008),
    _RateMarket("pendle", "ethereum", "PT-sUSDe-24SEP2026", "USD", 0.092, 0.114, 0.021,
                84_000_000.0, 6_200_000.0, 0.001),
    _RateMarket("pendle", "arbitrum", "PT-wstETH-25DEC2026", "ETH", 0.029, 0.034, 0.008,
                3_100_000.0, 95_000.0, 0.0005),
    # Spectra v1: ptPrice is a fraction of the IBT, tvl in underlying units, lpApy and
    # volume24h always 0 (https://mackinac.io/api/messages/ "rate_market").
    _RateMarket("spectra", "base", "PT-sw-USDC-17DEC2026", "USD", 0.061, 0.074, 0.0,
                1_250_000.0, 0.0, None),
    _RateMarket("spectra", "ethereum", "PT-wstUSR-26MAR2027", "USD", 0.071, 0.088, 0.0,
                640_000.0, 0.0, None),
)


@dataclass(frozen=True)
class _LendingMarket:
    """A lending market: an Aave reserve, a Compound Comet or a Morpho Blue market."""

    exchange: str
    chain: str
    asset: str
    symbol: str  # asset for Aave/Compound, "LOAN/COLLATERAL" for Morpho
    market: str  # reserve / Comet address, or the Morpho 32-byte id
    log_sender: str  # emitting contract (Aave Pool, Comet, Morpho Blue singleton)
    irm: str
    tvl: float
    util: float
    collateral: str


def _lending_markets() -> tuple[_LendingMarket, ...]:
    morpho = _addr("morpho:blue")
    out = [
        _LendingMarket("aave", "arbitrum", "USDC", "USDC", _addr("token:arbitrum:USDC"),
                       _addr("aave:arbitrum:pool"), _addr("aave:arbitrum:irm:USDC"),
                       310_000_000.0, 0.82, "WETH"),
        _LendingMarket("aave", "arbitrum", "WETH", "WETH", _addr("token:arbitrum:WETH"),
                       _addr("aave:arbitrum:pool"), _addr("aave:arbitrum:irm:WETH"),
                       520_000_000.0, 0.61, "wstETH"),
        _LendingMarket("compound", "arbitrum", "USDC", "USDC", _addr("compound:arbitrum:cUSDCv3"),
                       _addr("compound:arbitrum:cUSDCv3"), _addr("compound:arbitrum:irm"),
                       120_000_000.0, 0.88, "WETH"),
        _LendingMarket("compound", "base", "USDC", "USDC", _addr("compound:base:cUSDCv3"),
                       _addr("compound:base:cUSDCv3"), _addr("compound:base:irm"),
                       45_000_000.0, 0.85, "cbBTC"),
    ]
    for chain, loan, coll, tvl, util in (
        ("base", "USDC", "WETH", 95_000_000.0, 0.9),
        ("base", "USDC", "cbBTC", 210_000_000.0, 0.91),
        ("base", "WETH", "wstETH", 60_000_000.0, 0.87),
    ):
        out.append(_LendingMarket("morpho", chain, loan, f"{loan}/{coll}",
                                  _id32(f"morpho:{chain}:{loan}/{coll}"), morpho,
                                  _addr("morpho:adaptive-curve-irm"), tvl, util, coll))
    return tuple(out)


_LENDING_MARKETS = _lending_markets()


# ── feeds ─────────────────────────────────────────────────────────────────────────────────


@dataclass
class _Stream:
    """One periodic message stream of a feed: when it is first due and how it recurs."""

    name: str
    emit: Callable[[int], list[Msg]]
    interval: Callable[[], float]  # ms until the next emission (before the rate multiplier)
    first: float  # ms after the feed's first tick


class _Feed:
    """Base class: a scheduler over :class:`_Stream` objects plus per-key seeded state."""

    def __init__(self, synth: MarketSynth, key: str) -> None:
        self.s = synth
        self.key = key
        self.exchange, self.symbol = key.split(":", 1)
        self.rng = random.Random(f"{synth.seed}:{key}")
        self.streams: list[_Stream] = []
        self.due: dict[str, int] = {}
        self.started = False

    def tick(self, now: int) -> list[Msg]:
        rate = self.s.rate
        if not self.started:
            self.started = True
            for st in self.streams:
                self.due[st.name] = now + int(st.first / rate)
        out: list[Msg] = []
        for st in self.streams:
            due = self.due[st.name]
            if now < due:
                continue
            out.extend(st.emit(now))
            step = max(1, int(st.interval() / rate))
            # After a long pause (nobody subscribed) restart the cadence instead of
            # emitting a burst of catch-up frames.
            self.due[st.name] = due + step if due + step > now else now + step

        return out

    # shared helpers
    def onchain(self, chain: str, scope: tuple[str, ...], now: int) -> tuple[int, int]:
        return self.s._locate(chain, scope, now, self.rng)

    def funding(self, now: int, base: float, hrs: int) -> list[Msg]:
        rate = base * (1.0 + 0.25 * math.sin(now / 9.7e5)) + self.rng.gauss(0.0, abs(base) * 0.03)
        return [{"type": "funding", "exchange": self.exchange, "symbol": self.symbol,
                 "ratePct": round(rate, 4), "intervalHrs": hrs, "time": now}]


class _ClobFeed(_Feed):
    """Hyperliquid / dYdX: full-depth quotes, prints with the ten ``d_*`` stats, funding.

    HL prints carry no ``blockNumber``/``txIndex``; dYdX prints carry ``blockNumber`` but no
    ``txIndex`` (a Cosmos chain orders many fills in one block).
    """

    _MU, _ALPHA, _BETA = 0.1, 2.0, 0.0005  # documented Hawkes parameters (beta per ms)

    def __init__(self, synth: MarketSynth, key: str, asset: str, tick_size: float,
                 size_mu: float, quote_ms: float, print_ms: float, funding_base: float) -> None:
        super().__init__(synth, key)
        self.path = synth._path(asset)
        self.tick_size = tick_size
        self.dec = max(0, -math.floor(math.log10(tick_size)))
        self.size_mu = size_mu
        self.quote_ms = quote_ms
        self.print_ms = print_ms
        self.book: tuple[list[Msg], list[Msg]] | None = None
        self.quotes_1s: deque[int] = deque()
        self.prints_1s: deque[tuple[int, float, int]] = deque()
        self.hawkes = [0.0, 0.0, 0.0]  # all, bid side (side 0), ask side (side 1)
        self.hawkes_t = 0
        self.n_prints = 0
        hrs = 8
        self.streams = [
            _Stream("quote", self.emit_quote, lambda: self.rng.uniform(0.5, 1.5) * quote_ms,
                    self.rng.uniform(0, 100)),
            _Stream("print", self.emit_prints,
                    lambda: max(20.0, self.rng.expovariate(1.0 / print_ms)),
                    self.rng.uniform(100, 600)),
            _Stream("funding", lambda t: self.funding(t, funding_base, hrs), lambda: 60_000.0, 0),
        ]

    def make_book(self, now: int) -> tuple[list[Msg], list[Msg]]:
        rng, tick, dec, mu = self.rng, self.tick_size, self.dec, self.size_mu
        gauss, rand, exp = rng.gauss, rng.random, math.exp
        mid = self.path.at(now)
        half = tick * rng.uniform(0.5, 2.0)
        nb = math.floor((mid - half) / tick)
        na = max(nb + 1, math.ceil((mid + half) / tick))
        bids: list[Msg] = []
        asks: list[Msg] = []
        for _ in range(self.s.clob_levels):
            bids.append({"price": round(nb * tick, dec), "size": round(exp(mu + gauss()), 4)})
            asks.append({"price": round(na * tick, dec), "size": round(exp(mu + gauss()), 4)})
            nb -= 1 + (rand() < 0.3)
            na += 1 + (rand() < 0.3)
        return bids, asks

    def emit_quote(self, now: int) -> list[Msg]:
        self.book = self.make_book(now)
        self.quotes_1s.append(now)
        bids, asks = self.book
        # CLOB venues send the full depth array, bids[0] = best bid
        # (https://mackinac.io/api/messages/ "quote").
        return [{"type": "quote", "exchange": self.exchange, "symbol": self.symbol,
                 "bids": bids, "asks": asks, "time": now}]

    def emit_prints(self, now: int) -> list[Msg]:
        if self.book is None:
            self.book = self.make_book(now)
        rng = self.rng
        n = 1 + (rng.randrange(1, 3) if rng.random() < 0.25 else 0)
        out: list[Msg] = []
        for i in range(n):
            side = 2 if rng.random() < 0.01 else int(rng.random() < 0.5)
            levels = self.book[1] if side == 1 else self.book[0]
            price = levels[min(i, len(levels) - 1)]["price"]
            size = round(max(10 ** -4, rng.lognormvariate(self.size_mu - 1.0, 1.2)), 4)
            out.append(self.print_msg(now, price, size, side))
        return out

    def print_msg(self, now: int, price: float, size: float, side: int) -> Msg:
        # 1 s windows and Hawkes intensities of the d_* stat engine.
        while self.quotes_1s and self.quotes_1s[0] <= now - 1000:
            self.quotes_1s.popleft()
        self.prints_1s.append((now, size, side))
        while self.prints_1s and self.prints_1s[0][0] <= now - 1000:
            self.prints_1s.popleft()
        decay = math.exp(-self._BETA * max(0, now - self.hawkes_t)) if self.hawkes_t else 0.0
        self.hawkes = [h * decay for h in self.hawkes]
        self.hawkes_t = now
        self.hawkes[0] += self._ALPHA
        if side in (0, 1):
            self.hawkes[1 + side] += self._ALPHA
        assert self.book is not None
        bids, asks = self.book
        bq10 = sum(lv["size"] for lv in bids[:10])
        aq10 = sum(lv["size"] for lv in asks[:10])
        buy = sum(sz for _, sz, sd in self.prints_1s if sd == 1)
        sell = sum(sz for _, sz, sd in self.prints_1s if sd == 0)
        msg: Msg = {"type": "print", "exchange": self.exchange, "symbol": self.symbol,
                    "price": price, "size": size, "side": side, "time": now}
        self.n_prints += 1
        every = self.s.legacy_hl_every
        if self.exchange == "hl" and every and self.n_prints % every == 0:
            # Legacy HL frames omit `exchange`; clients must treat it as "hl"
            # (https://mackinac.io/api/messages/ "print").
            del msg["exchange"]
        if self.exchange == "dydx":
            msg["blockNumber"] = _block_at("dydx", now)
        msg.update({
            "d_tickrate": float(len(self.prints_1s)),
            "d_volumerate": round(buy + sell + sum(
                sz for _, sz, sd in self.prints_1s if sd == 2), 6),
            "d_quoterate": float(len(self.quotes_1s)),
            "d_hawkes": round(self._MU + self.hawkes[0], 6),
            "d_hawkesB": round(self._MU + self.hawkes[1], 6),
            "d_hawkesA": round(self._MU + self.hawkes[2], 6),
            "d_lobimb": round((bq10 - aq10) / (bq10 + aq10), 6) if bq10 + aq10 else 0.0,
            "d_volumeimb": round(buy - sell, 6),
            "d_bidqty": round(sum(lv["size"] for lv in bids), 4),
            "d_askqty": round(sum(lv["size"] for lv in asks), 4),
        })
        return msg


class _AmmFeed(_Feed):
    """Uni V3/V4, Sushi, Pancake: per-fee-tier quotes, swaps, LP events, depth, spread."""

    def __init__(self, synth: MarketSynth, key: str) -> None:
        super().__init__(synth, key)
        rng = self.rng
        self.path = synth._path("ETH")
        self.tiers = _AMM_TIERS[self.exchange]
        self.offset = {fee: rng.gauss(0.0, 1.5) for fee in self.tiers}  # bps off the mid
        self.last_swap: dict[int, int] = {}
        self.depth_pending = False
        self.last_depth = -10**12
        self.cum = {fee: rng.uniform(5e17, 5e18) for fee in self.tiers}
        self.n_lp = 0
        self.streams = [
            _Stream("swap", self.emit_swap, lambda: max(50.0, rng.expovariate(1 / 900)),
                    rng.uniform(100, 700)),
            _Stream("quote", self.emit_quote, lambda: rng.uniform(700, 1300), rng.uniform(0, 200)),
            _Stream("liquidity", self.emit_liquidity, lambda: rng.uniform(2000, 6000),
                    rng.uniform(300, 1500)),
            # Depth follows Mint/Burn, throttled to 200 ms per symbol
            # (https://mackinac.io/api/messages/ "depth"); this stream only polls.
            _Stream("depth", self.emit_depth, lambda: 50.0, 0),
        ]
        if self.exchange in ("uni", "univ4"):
            self.streams.append(_Stream("spread", self.emit_spread,
                                        lambda: rng.uniform(2000, 5000), rng.uniform(500, 2000)))

    def pool_price(self, fee: int, now: int) -> float:
        return self.path.at(now) * (1.0 + self.offset[fee] / 1e4)

    def age(self, fee: int, now: int) -> int:
        return max(0, now - self.last_swap.get(fee, now - 30_000))

    def emit_quote(self, now: int) -> list[Msg]:
        bids: list[Msg] = []
        asks: list[Msg] = []
        for fee in self.tiers:
            p = self.pool_price(fee, now)
            size = round(self.rng.uniform(2.0, 40.0) * (fee / 500) ** 0.5, 4)
            # lastSwapMs is the *age* of the pool's last swap in ms, per the docs'
            # example value 1100 (https://mackinac.io/api/messages/ "quote"); the SDK
            # comment calling it an epoch is contradicted by that example.
            bids.append({"price": round(p * (1 - fee / 1e6), 4), "size": size, "fee": fee,
                         "lastSwapMs": self.age(fee, now)})
            asks.append({"price": round(p * (1 + fee / 1e6), 4), "size": size, "fee": fee,
                         "lastSwapMs": self.age(fee, now)})
        bids.sort(key=lambda lv: -lv["price"])
        asks.sort(key=lambda lv: lv["price"])
        return [{"type": "quote", "exchange": self.exchange, "symbol": self.symbol,
                 "bids": bids, "asks": asks, "time": now}]

    def emit_swap(self, now: int) -> list[Msg]:
        rng = self.rng
        fee = rng.choices(self.tiers, weights=[3 if f == 500 else 1 for f in self.tiers])[0]
        self.offset[fee] = 0.8 * self.offset[fee] + rng.gauss(0.0, 1.0)
        self.last_swap[fee] = now
        price = round(self.pool_price(fee, now), 4)
        block, tx = self.onchain("arbitrum", (self.exchange, self.symbol), now)
        msg: Msg = {"type": "print", "exchange": self.exchange, "symbol": self.symbol,
                    "price": price, "size": round(rng.lognormvariate(0.0, 1.3), 6),
                    "side": int(rng.random() < 0.5), "time": now, "blockNumber": block,
                    "txIndex": tx, "logSender": rng.choice(self.s._routers),
                    "tick": _amm_tick(price)}
        # AMM quotes are emitted on every on-chain swap.
        return [msg, *self.emit_quote(now)]

    def emit_liquidity(self, now: int) -> list[Msg]:
        self.n_lp += 1
        msg = self.s._lp_event(self.rng, self.exchange, self.symbol, self.tiers, now,
                               big=self.n_lp == 1)
        self.depth_pending = True
        return [msg]

    def emit_depth(self, now: int) -> list[Msg]:
        if not self.depth_pending or now - self.last_depth < 200:
            return []
        self.depth_pending = False
        self.last_depth = now
        rng = self.rng
        mid = self.path.at(now)
        cur = _amm_tick(mid)
        spacing = 10
        base = cur - cur % spacing
        ticks: list[Msg] = []
        cum = self.cum[500] if 500 in self.cum else next(iter(self.cum.values()))
        for i in range(-10, 11):
            t = base + i * spacing
            delta = rng.gauss(0.0, cum * 0.05)
            cum = max(1e15, cum + delta)
            ticks.append({"tick": t, "price": _tick_price(t), "liquidityDelta": round(delta, 1),
                          "cumLiquidity": round(cum, 1)})
        impacts = self.s._impacts(rng, mid)
        return [{"type": "depth", "exchange": self.exchange, "symbol": self.symbol,
                 "currentTick": cur, "ticks": ticks, "impacts": impacts, "time": now}]

    def emit_spread(self, now: int) -> list[Msg]:
        rng = self.rng
        bid_fee, ask_fee = rng.sample(list(self.tiers), 2)
        mid = self.path.at(now)
        ask = round(mid * (1 - rng.uniform(0.5, 4) / 1e4), 4)
        bid = round(mid * (1 + rng.uniform(0.5, 4) / 1e4), 4)
        # Fired when one fee tier's bid exceeds another tier's ask on the same venue
        # (https://mackinac.io/api/messages/ "spread"): spread = bid - ask > 0.
        return [{"type": "spread", "exchange": self.exchange, "symbol": self.symbol,
                 "bidPool": {"fee": bid_fee, "price": bid, "lastSwapMs": self.age(bid_fee, now)},
                 "askPool": {"fee": ask_fee, "price": ask, "lastSwapMs": self.age(ask_fee, now)},
                 "spread": round(bid - ask, 4), "spreadPct": round((bid - ask) / ask * 100, 6),
                 "depthBetween": round(rng.uniform(0.05, 25.0), 4), "time": now}]


class _OracleFeed(_Feed):
    """GMX / Vertex / Ostium: a synthetic single-level quote and funding; Ostium also prints."""

    def __init__(self, synth: MarketSynth, key: str, asset: str, quote_ms: float,
                 funding_base: float, hrs: int, prints: bool) -> None:
        super().__init__(synth, key)
        rng = self.rng
        self.path = synth._path(asset)
        self.streams = [
            _Stream("quote", self.emit_quote, lambda: rng.uniform(0.7, 1.3) * quote_ms,
                    rng.uniform(0, 300)),
            _Stream("funding", lambda t: self.funding(t, funding_base, hrs), lambda: 60_000.0, 0),
        ]
        if prints:  # GMX and Vertex publish no prints (https://mackinac.io/api/messages/)
            self.streams.append(_Stream("print", self.emit_print,
                                        lambda: max(100.0, rng.expovariate(1 / 2500)),
                                        rng.uniform(300, 2000)))

    def emit_quote(self, now: int) -> list[Msg]:
        mid = self.path.at(now)
        spread = self.rng.uniform(0.5, 3.0) / 1e4
        size = round(1_000_000 / mid, 4)
        return [{"type": "quote", "exchange": self.exchange, "symbol": self.symbol,
                 "bids": [{"price": round(mid * (1 - spread), 2), "size": size}],
                 "asks": [{"price": round(mid * (1 + spread), 2), "size": size}],
                 "time": now}]

    def emit_print(self, now: int) -> list[Msg]:
        rng = self.rng
        price = round(self.path.at(now), 2)
        block, tx = self.onchain("arbitrum", (self.exchange, self.symbol), now)
        # Ostium is an EVM venue: blockNumber, txIndex, logSender and tick are present;
        # Ostium has no pool tick, so `tick` is the price in 1.0001 ticks.
        return [{"type": "print", "exchange": self.exchange, "symbol": self.symbol,
                 "price": price, "size": round(rng.lognormvariate(0.5, 1.0), 4),
                 "side": int(rng.random() < 0.5), "time": now, "blockNumber": block,
                 "txIndex": tx, "logSender": _addr("ostium:arbitrum:trading"),
                 "tick": round(math.log(price) / _TICK_BASE)}]


class _RatesFeed(_Feed):
    """Pendle / Spectra: ``rates:all``, ``rates:swaps`` and ``rates:<PT or address>``."""

    def __init__(self, synth: MarketSynth, key: str, mode: str,
                 market: _RateMarket | None = None) -> None:
        super().__init__(synth, key)
        rng = self.rng
        self.mode = mode
        self.markets = [market] if market is not None else list(_RATE_MARKETS)
        if mode == "all":
            # Pendle rows about every 5 s, Spectra rows about every 30 s.
            self.streams = [
                _Stream("pendle", lambda t: self.rows(t, "pendle"), lambda: 5000.0, 0),
                _Stream("spectra", lambda t: self.rows(t, "spectra"), lambda: 30_000.0, 0),
            ]
        elif mode == "swaps":
            self.streams = [_Stream("print", self.emit_swap,
                                    lambda: max(100.0, rng.expovariate(1 / 1500)),
                                    rng.uniform(200, 1000))]
        else:
            assert market is not None
            ms = 5000.0 if market.exchange == "pendle" else 30_000.0
            self.streams = [
                _Stream("market", lambda t: self.rows(t, market.exchange), lambda: ms, 0),
                _Stream("print", self.emit_swap, lambda: max(200.0, rng.expovariate(1 / 3000)),
                        rng.uniform(500, 2500)),
            ]
            if market.exchange == "pendle":
                # rate_depth: Pendle only, per poll cycle, individually subscribed markets.
                self.streams.insert(1, _Stream("rate_depth", self.emit_rate_depth,
                                               lambda: 5000.0, 0))

    def rows(self, now: int, exchange: str) -> list[Msg]:
        return [self.s._rate_market(m, now) for m in self.markets if m.exchange == exchange]

    def emit_swap(self, now: int) -> list[Msg]:
        rng = self.rng
        m = rng.choice(self.markets)
        row = self.s._rate_market(m, now)
        block, tx = self.onchain(m.chain, (m.exchange, m.symbol), now)
        # For Pendle/Spectra `side` is the PT leg: 1 = bought PT. `tick` is the
        # ln-implied-rate expressed in 1.0001 ticks.
        return [{"type": "print", "exchange": m.exchange, "symbol": m.symbol,
                 "price": row["ptPrice"], "size": round(rng.lognormvariate(7.0, 1.5), 4),
                 "side": int(rng.random() < 0.55), "time": now, "blockNumber": block,
                 "txIndex": tx, "logSender": _addr(f"{m.exchange}:{m.chain}:router"),
                 "tick": round(math.log1p(row["impliedApy"]) / _TICK_BASE)}]

    def emit_rate_depth(self, now: int) -> list[Msg]:
        m = self.markets[0]
        row = self.s._rate_market(m, now)
        mid, days, tvl = row["impliedApy"], max(row["daysToExpiry"], 1.0), row["tvl"]
        fee_bps = (m.fee_rate or 0.001) * 1e4
        levels: list[Msg] = []
        for size in _IMPACT_SIZES:
            price_bps = fee_bps / 2 + size / tvl * 1e4 * 0.05
            # Short-dated markets: a bps of price impact is more APY bps.
            half = price_bps / 1e4 * 365 / days / 2
            buy, sell = round(max(0.0, mid - half), 6), round(mid + half, 6)
            levels.append({"sizeUsd": float(size), "buyRate": buy, "sellRate": sell,
                           "spreadBps": round((sell - buy) * 1e4, 4)})
        return [{"type": "rate_depth", "exchange": m.exchange, "symbol": m.symbol,
                 "midRate": mid, "underlyingRate": row["underlyingApy"],
                 "ptPrice": row["ptPrice"], "poolFeeBps": round(fee_bps, 4), "tvl": tvl,
                 "daysToExpiry": row["daysToExpiry"], "levels": levels, "time": now}]


class _LendingRatesFeed(_Feed):
    """``aave:<ASSET>``, ``compound:<ASSET>``, ``morpho:all``: rate rows and IRM params."""

    def __init__(self, synth: MarketSynth, key: str, markets: Sequence[_LendingMarket]) -> None:
        super().__init__(synth, key)
        self.markets = list(markets)
        self.fingerprints: dict[str, bytes] = {}
        self.params = {m.market: self.s._irm_params(m) for m in self.markets}
        self.streams = [
            _Stream("rates", self.emit_rates, lambda: 12_000.0, 0),
            # Hourly, and only when the values change (fingerprint-deduplicated): so a
            # subscriber sees each market's params once, then rarely
            # (https://mackinac.io/api/messages/ "rate_model_params").
            _Stream("params", self.emit_params, lambda: 3_600_000.0, 0),
        ]

    def emit_rates(self, now: int) -> list[Msg]:
        return [self.s._lending_row(m, self.params[m.market], now) for m in self.markets]

    def emit_params(self, now: int) -> list[Msg]:
        out: list[Msg] = []
        for m in self.markets:
            p = self.params[m.market]
            if self.fingerprints and self.rng.random() < 0.1:  # governance update
                key = "slope2" if "slope2" in p else "curveSteepness"
                p[key] = round(p[key] * self.rng.uniform(0.9, 1.1), 6)
            fp = orjson.dumps(p, option=orjson.OPT_SORT_KEYS)
            if self.fingerprints.get(m.market) == fp:
                continue
            self.fingerprints[m.market] = fp
            out.append({"type": "rate_model_params", "exchange": m.exchange, "chain": m.chain,
                        "market": m.market, "asset": m.asset, "irmAddress": m.irm,
                        "time": now, **p})
        return out


class _LendingActionsFeed(_Feed):
    """``lending:actions``: Aave / Compound / Morpho events; the first six cover all actions."""

    def __init__(self, synth: MarketSynth, key: str) -> None:
        super().__init__(synth, key)
        rng = self.rng
        self.first_actions = list(_LENDING_ACTIONS)
        rng.shuffle(self.first_actions)
        self.n = 0
        self.streams = [_Stream("action", self.emit_action, self.next_interval, 200)]

    def next_interval(self) -> float:
        if self.n < len(_LENDING_ACTIONS):
            return self.rng.uniform(300, 800)
        return max(50.0, self.rng.expovariate(1 / 1200))

    def emit_action(self, now: int) -> list[Msg]:
        rng = self.rng
        if self.n < len(self.first_actions):
            action = self.first_actions[self.n]
        else:
            action = rng.choices(_LENDING_ACTIONS, weights=(30, 25, 20, 18, 3, 4))[0]
        self.n += 1
        m = rng.choice(_LENDING_MARKETS)
        usd = 10 ** rng.uniform(2, 6.5) * (20 if action == "flashloan" else 1)
        px = self.s._usd_price(m.asset, now)
        raw = int(usd / px * 10 ** _DECIMALS[m.asset])
        block, tx = self.onchain(m.chain, (m.chain, m.log_sender), now)
        user = _rand_addr(rng)
        msg: Msg = {"type": "lending_action", "exchange": m.exchange, "chain": m.chain,
                    "asset": m.asset, "market": m.market, "action": action, "user": user,
                    "amount": str(raw), "blockNumber": block, "txIndex": tx,
                    "logSender": m.log_sender, "time": now}
        if m.exchange == "aave" and action in ("supply", "borrow") and rng.random() < 0.3:
            msg["onBehalfOf"] = _rand_addr(rng)
        if m.exchange != "morpho" or rng.random() < 0.3:  # Morpho often has no oracle
            msg["amountUsd"] = round(usd, 2)
        if m.exchange == "aave" and action == "borrow":
            msg["rateAtTime"] = round(self.s._lending_row(
                m, self.s._irm_params(m), now)["borrowApy"], 6)
        if action == "liquidate":
            cpx = self.s._usd_price(m.collateral, now)
            coll = int(usd * 1.05 / cpx * 10 ** _DECIMALS[m.collateral])
            msg.update({"collateralAsset": m.collateral, "collateralAmount": str(coll),
                        "liquidator": _rand_addr(rng)})
        return [msg]


class _AmmBookFeed(_Feed):
    """``ammbook:<pair>``: consolidated NBBO across the four Arbitrum AMMs."""

    VENUES = (("uni", 5.0), ("univ4", 5.0), ("sushi", 5.0), ("pancake", 1.0))

    def __init__(self, synth: MarketSynth, key: str) -> None:
        super().__init__(synth, key)
        self.path = synth._path("ETH")
        self.offset = {v: self.rng.gauss(0.0, 1.0) for v, _ in self.VENUES}
        self.n = 0
        self.streams = [_Stream("book", self.emit_book, lambda: self.rng.uniform(350, 650), 100)]

    def emit_book(self, now: int) -> list[Msg]:
        rng = self.rng
        self.n += 1
        mid = self.path.at(now)
        shock = None
        # A cross-venue gap shows up "sometimes"; force one on the third frame so a short
        # demo always sees an arbGap.
        if self.n == 3 or rng.random() < 0.15:
            shock = (rng.choice(self.VENUES)[0], rng.choice((-1, 1)) * rng.uniform(6, 12))
        bids: list[Msg] = []
        asks: list[Msg] = []
        for venue, fee_bps in self.VENUES:
            self.offset[venue] = 0.9 * self.offset[venue] + rng.gauss(0.0, 0.4)
            off = self.offset[venue] + (shock[1] if shock and shock[0] == venue else 0.0)
            half = fee_bps / 2 + 0.2
            t = now - rng.randrange(0, 3000)
            size = round(rng.uniform(1.0, 8.0), 4)
            bid = {"exchange": venue, "price": round(mid * (1 + (off - half) / 1e4), 4),
                   "size": size, "feeBps": fee_bps, "time": t}
            ask = {"exchange": venue, "price": round(mid * (1 + (off + half) / 1e4), 4),
                   "size": size, "feeBps": fee_bps, "time": t}
            if venue in ("uni", "univ4"):
                bid["impacts"] = self.s._impacts(rng, mid)
                ask["impacts"] = self.s._impacts(rng, mid)
            bids.append(bid)
            asks.append(ask)
        bids.sort(key=lambda lv: -lv["price"])
        asks.sort(key=lambda lv: lv["price"])
        bb, ba = bids[0], asks[0]
        midp = (bb["price"] + ba["price"]) / 2
        msg: Msg = {"type": "ammbook", "symbol": self.symbol, "bids": bids, "asks": asks,
                    "midPrice": round(midp, 4),
                    "spreadBps": round((ba["price"] - bb["price"]) / midp * 1e4, 4)}
        # arbGap only when the highest bid exceeds the lowest ask of a *different* venue.
        if bb["price"] > ba["price"] and bb["exchange"] != ba["exchange"]:
            msg["arbGap"] = _gap(ba, bb)
        msg["time"] = now
        return [msg]


def _gap(ask: Msg, bid: Msg) -> Msg:
    return {"buyExchange": ask["exchange"], "sellExchange": bid["exchange"],
            "gapBps": round((bid["price"] - ask["price"]) / ask["price"] * 1e4, 4),
            "gapUsd": round((bid["price"] - ask["price"]) * min(bid["size"], ask["size"]), 4)}


class _AmmLiquidityFeed(_Feed):
    """``ammliquidity:<pair>``: LP events across the four Arbitrum AMMs."""

    def __init__(self, synth: MarketSynth, key: str) -> None:
        super().__init__(synth, key)
        self.n = 0
        self.streams = [_Stream("lp", self.emit, lambda: self.rng.uniform(1000, 4000),
                                self.rng.uniform(300, 1500))]

    def emit(self, now: int) -> list[Msg]:
        self.n += 1
        venue = self.rng.choice(list(_AMM_TIERS))
        return [self.s._lp_event(self.rng, venue, self.symbol, _AMM_TIERS[venue], now,
                                 big=self.n == 1)]


class _ArbFlagFeed(_Feed):
    """``arbflag:<pair>``: edge-triggered open/closed frames (open carries arbGap)."""

    def __init__(self, synth: MarketSynth, key: str) -> None:
        super().__init__(synth, key)
        self.path = synth._path("ETH")
        self.open = False
        self.streams = [_Stream("edge", self.emit, self.hold, self.rng.uniform(300, 1200))]

    def hold(self) -> float:
        return self.rng.uniform(500, 3000) if self.open else self.rng.uniform(1000, 5000)

    def emit(self, now: int) -> list[Msg]:
        rng = self.rng
        self.open = not self.open
        if not self.open:
            return [{"type": "arbflag", "symbol": self.symbol, "status": "closed", "time": now}]
        mid = self.path.at(now)
        gap = rng.uniform(1, 10)
        buy, sell = rng.sample(["uni", "univ4", "sushi", "pancake"], 2)
        size = rng.uniform(0.5, 6)
        ask = {"exchange": buy, "price": round(mid, 4), "size": size}
        bid = {"exchange": sell, "price": round(mid * (1 + gap / 1e4), 4), "size": size}
        return [{"type": "arbflag", "symbol": self.symbol, "status": "open",
                 "arbGap": _gap(ask, bid), "time": now}]


# ── the public object ─────────────────────────────────────────────────────────────────────


class MarketSynth:
    """Deterministic synthetic Mackinac market.

    Contract:
      * ``tick(key, now_ms)`` returns the frames due for ``key`` at ``now_ms``; call it
        about every 50 ms per subscribed key with a non-decreasing ``now_ms``. The result
        depends only on ``seed``, the constructor options and the sequence of calls.
      * Each frame type of a feed appears within about 5 s of the feed's first tick
        (funding / rate rows / IRM params right at the first tick).
      * ``history`` returns prints already returned by ``tick`` (ring of 1000 per key).
      * Returned dicts are shared with the internal buffers: do not mutate them.

    ``rate`` multiplies every cadence (2.0 = twice as many frames per second).
    ``clob_levels`` is the depth of HL/dYdX quotes per side (raise it to produce > 1 MB
    frames). ``legacy_hl_every = N > 0`` drops ``exchange`` from every Nth HL print.
    """

    def __init__(self, seed: int = 1, rate: float = 1.0, clob_levels: int = 20,
                 legacy_hl_every: int = 0) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.seed = seed
        self.rate = rate
        self.clob_levels = clob_levels
        self.legacy_hl_every = legacy_hl_every
        self._feeds: dict[str, _Feed] = {}
        self._paths: dict[str, _Path] = {}
        self._history: dict[str, deque[Msg]] = {}
        self._lp: dict[str, deque[Msg]] = {}
        self._last_loc: dict[tuple[str, ...], tuple[int, int]] = {}
        rr = random.Random(f"{seed}:routers")
        self._routers = [_rand_addr(rr) for _ in range(6)]
        self._factories: dict[str, Callable[[str], _Feed]] = self._catalogue()

    # -- catalogue ------------------------------------------------------------------------

    def _catalogue(self) -> dict[str, Callable[[str], _Feed]]:
        cat: dict[str, Callable[[str], _Feed]] = {
            "hl:ETH": lambda k: _ClobFeed(self, k, "ETH", 0.1, 1.5, 250, 400, 10.95),
            "hl:BTC": lambda k: _ClobFeed(self, k, "BTC", 1.0, -1.0, 250, 450, 9.4),
            "dydx:ETH-USD": lambda k: _ClobFeed(self, k, "ETH", 0.1, 1.2, 400, 700, 8.2),
            "gmx:BTC": lambda k: _OracleFeed(self, k, "BTC", 1000, -3.5, 1, prints=False),
            "vertex:ETH": lambda k: _OracleFeed(self, k, "ETH", 500, 5.1, 1, prints=False),
            "ostium:XAU/USD": lambda k: _OracleFeed(self, k, "XAU", 1000, 2.4, 24, prints=True),
            "rates:all": lambda k: _RatesFeed(self, k, "all"),
            "rates:swaps": lambda k: _RatesFeed(self, k, "swaps"),
            "lending:actions": lambda k: _LendingActionsFeed(self, k),
            "ammbook:WETH/USDC": lambda k: _AmmBookFeed(self, k),
            "ammliquidity:WETH/USDC": lambda k: _AmmLiquidityFeed(self, k),
            "arbflag:WETH/USDC": lambda k: _ArbFlagFeed(self, k),
            "morpho:all": lambda k: _LendingRatesFeed(
                self, k, [m for m in _LENDING_MARKETS if m.exchange == "morpho"]),
        }
        for venue in _AMM_TIERS:
            cat[f"{venue}:WETH/USDC"] = lambda k: _AmmFeed(self, k)
        for ex in ("aave", "compound"):
            # `<venue>:<ASSET>` or `<venue>:all` (https://mackinac.io/api/websocket/).
            every = [m for m in _LENDING_MARKETS if m.exchange == ex]
            cat[f"{ex}:all"] = lambda k, ms=every: _LendingRatesFeed(self, k, ms)
            for asset in sorted({m.asset for m in every}):
                ms = [m for m in every if m.asset == asset]
                cat[f"{ex}:{asset}"] = lambda k, ms=ms: _LendingRatesFeed(self, k, ms)
        for m in _RATE_MARKETS:
            # `rates:<PT-symbol or lowercase address>` (SDK symbol conventions).
            cat[f"rates:{m.symbol}"] = lambda k, m=m: _RatesFeed(self, k, "market", m)
            cat[f"rates:{m.address}"] = lambda k, m=m: _RatesFeed(self, k, "market", m)
        return cat

    def keys(self) -> list[str]:
        """Every subscribable ``exchange:symbol`` key (including rates address aliases)."""
        return list(self._factories)

    def known(self, key: str) -> bool:
        """True when ``key`` (``exchange:symbol``) names a feed of the catalogue."""
        return key in self._factories

    def is_gated(self, key: str) -> str | None:
        """Tier required to subscribe to ``key`` (``"professional"``/``"super_admin"``), or None.

        ``ammbook`` is professional+, ``arbflag`` super_admin
        (https://mackinac.io/api/messages/ discriminator table). ``spread`` frames are gated
        per message type instead, see :data:`GATED_TYPES`.
        """
        return GATED_EXCHANGES.get(key.split(":", 1)[0])

    # -- streaming ------------------------------------------------------------------------

    def tick(self, key: str, now_ms: int) -> list[dict[str, Any]]:
        """Frames due for ``key`` at ``now_ms`` (possibly none). Raises KeyError if unknown."""
        feed = self._feeds.get(key)
        if feed is None:
            if key not in self._factories:
                raise KeyError(key)
            feed = self._feeds[key] = self._factories[key](key)
        out = feed.tick(int(now_ms))
        for msg in out:
            kind = msg["type"]
            if kind == "print":
                self._ring(self._history, key).append(msg)
            elif kind == "liquidity":
                self._ring(self._lp, key).append(msg)
        return out

    def history(self, key: str, limit: int = 500) -> list[dict[str, Any]]:
        """Up to ``limit`` (capped at 1000) most recent prints of ``key``, oldest first.

        Only prints already returned by :meth:`tick` are included; empty when none.
        """
        ring = self._history.get(key)
        limit = max(0, min(int(limit), HISTORY_CAP))
        if not ring or limit == 0:
            return []
        return list(ring)[-limit:]

    def ammliquidity_snapshot(self, key: str, now_ms: int | None = None) -> dict[str, Any]:
        """The ``ammliquidity_snapshot`` frame for ``key`` (``ammliquidity:<pair>``).

        ``events`` holds the buffered ``liquidity`` frames of that key, oldest first (cap
        1000). When nothing is buffered yet and ``now_ms`` is given, a deterministic backfill
        of LP events from the preceding 30 minutes is generated first, so a fresh subscriber
        sees a non-empty snapshot like on the real service.
        """
        ring = self._ring(self._lp, key)
        if not ring and now_ms is not None:
            rng = random.Random(f"{self.seed}:{key}:backfill")
            symbol = key.split(":", 1)[1]
            for i in range(12):
                t = int(now_ms) - 1_800_000 + i * 150_000 + rng.randrange(0, 60_000)
                venue = rng.choice(list(_AMM_TIERS))
                ring.append(self._lp_event(rng, venue, symbol, _AMM_TIERS[venue], t,
                                           big=i == 0, allocate=False))
        return {"type": "ammliquidity_snapshot", "symbol": key.split(":", 1)[1],
                "events": list(ring)}

    def firehose(self, n: int, start_ms: int = _EPOCH_MS,
                 keys: Sequence[str] | None = None, base: int = 5000,
                 end_ms: int | None = None) -> list[str]:
        """``n`` pre-serialized data frames (a mix of quote/print/depth/liquidity/...).

        The first ``min(n, base)`` frames come from a private synth with the same options
        on a virtual clock starting at ``start_ms`` (100 ms per round over ``keys``), so this
        instance's state and history are untouched. To stay fast for large ``n`` the rest
        are copies of that block with ``time`` shifted by whole block spans and
        ``blockNumber`` shifted past the block's range per (exchange, symbol/chain): every
        print, liquidity and lending_action keeps a unique dedup key, and times are
        non-decreasing per feed. With ``end_ms`` every ``time`` is shifted so that none is
        later than ``end_ms`` (no frame from the future for a live server).
        """
        if n <= 0:
            return []
        shadow = MarketSynth(self.seed, rate=self.rate, clob_levels=self.clob_levels,
                             legacy_hl_every=self.legacy_hl_every)
        use = list(keys or FIREHOSE_KEYS)
        first = min(n, max(1, base))
        msgs: list[Msg] = []
        t = int(start_ms)
        while len(msgs) < first:
            for key in use:
                msgs.extend(shadow.tick(key, t))
            t += 100
        del msgs[first:]
        span = t - int(start_ms)
        cycles = -(-n // len(msgs))  # ceil
        shift = 0
        if end_ms is not None:
            shift = int(end_ms) - (max(m["time"] for m in msgs) + (cycles - 1) * span)
        lo: dict[tuple[str, str], int] = {}
        hi: dict[tuple[str, str], int] = {}
        for m in msgs:
            if "blockNumber" in m:
                g = (m.get("exchange", "hl"), m.get("chain") or m["symbol"])
                lo[g] = min(lo.get(g, m["blockNumber"]), m["blockNumber"])
                hi[g] = max(hi.get(g, 0), m["blockNumber"])
        width = {g: hi[g] - lo[g] + 1 for g in lo}
        dumps = orjson.dumps
        out: list[str] = []
        for cycle in range(cycles):
            for m in msgs:
                if cycle == 0 and shift == 0:
                    out.append(dumps(m).decode())
                    continue
                c = dict(m)
                c["time"] = m["time"] + cycle * span + shift
                if cycle and "blockNumber" in m:
                    g = (m.get("exchange", "hl"), m.get("chain") or m["symbol"])
                    c["blockNumber"] = m["blockNumber"] + cycle * width[g]
                out.append(dumps(c).decode())
        del out[n:]
        return out

    # -- shared generators ---------------------------------------------------------------

    @staticmethod
    def _ring(store: dict[str, deque[Msg]], key: str) -> deque[Msg]:
        ring = store.get(key)
        if ring is None:
            ring = store[key] = deque(maxlen=HISTORY_CAP)
        return ring

    def _path(self, asset: str) -> _Path:
        p = self._paths.get(asset)
        if p is None:
            base = {"ETH": 3500.0, "BTC": 95_000.0, "XAU": 2650.0}[asset]
            p = self._paths[asset] = _Path(base, random.Random(f"{self.seed}:path:{asset}"))
        return p

    def _usd_price(self, asset: str, now: int) -> float:
        if asset in ("WETH", "wstETH"):
            return self._path("ETH").at(now) * (1.18 if asset == "wstETH" else 1.0)
        if asset == "cbBTC":
            return self._path("BTC").at(now)
        return 1.0

    def _locate(self, chain: str, scope: tuple[str, ...], now: int,
                rng: random.Random) -> tuple[int, int]:
        """(blockNumber, txIndex) strictly increasing per scope, so dedup keys are unique."""
        block = _block_at(chain, now)
        last = self._last_loc.get(scope)
        if last is not None and block <= last[0]:
            block, tx = last[0], last[1] + 1 + rng.randrange(3)
        else:
            tx = rng.randrange(0, 40)
        self._last_loc[scope] = (block, tx)
        return block, tx

    def _impacts(self, rng: random.Random, mid: float) -> list[Msg]:
        out: list[Msg] = []
        for usd in _IMPACT_SIZES:
            base = 0.000354 * usd**0.584  # 0.02 % at $1k .. 1.13 % at $1M, as in the docs
            bp = round(base * rng.uniform(0.85, 1.15), 4)
            sp = round(base * rng.uniform(0.85, 1.15), 4)
            out.append({"usd": float(usd), "buyPrice": round(mid * (1 + bp / 100), 4),
                        "sellPrice": round(mid * (1 - sp / 100), 4), "buyPct": bp,
                        "sellPct": sp})
        return out

    def _lp_event(self, rng: random.Random, exchange: str, symbol: str,
                  tiers: Sequence[int], now: int, big: bool = False,
                  allocate: bool = True) -> Msg:
        fee = rng.choice(list(tiers))
        spacing = _FEE_SPACING[fee]
        price = self._path("ETH").at(now)
        cur = _amm_tick(price)
        lower = (cur - rng.randrange(1, 200) * spacing) // spacing * spacing
        upper = lower + rng.randrange(2, 400) * spacing
        weth = 10 ** rng.uniform(-1.3, 2.7)
        # uint128 liquidity; the first event of a feed is forced above 2**64 so consumers
        # that parse it into int64/uint64 fail loudly in tests.
        liq = 2**64 + rng.getrandbits(66) if big else int(10 ** rng.uniform(15, 21.5))
        amount0 = int(weth * 10**18)
        amount1 = int(weth * price * rng.uniform(0.2, 1.5) * 10**6)
        usd = 0.0 if rng.random() < 0.05 else round(weth * price + amount1 / 1e6, 2)
        if allocate:
            block, tx = self._locate("arbitrum", (exchange, symbol), now, rng)
        else:
            block, tx = _block_at("arbitrum", now), rng.randrange(0, 40)
        owner = _addr(f"{exchange}:arbitrum:position-manager") if rng.random() < 0.6 \
            else _rand_addr(rng)
        return {"type": "liquidity", "exchange": exchange, "symbol": symbol, "feeTier": fee,
                "action": "mint" if rng.random() < 0.6 else "burn", "tickLower": lower,
                "tickUpper": upper, "amount": str(liq), "amount0": str(amount0),
                "amount1": str(amount1), "amountUsd": usd, "owner": owner,
                "blockNumber": block, "txIndex": tx, "time": now}

    def _rate_market(self, m: _RateMarket, now: int) -> Msg:
        key = f"{m.exchange}:{m.symbol}"
        p = self._paths.get(key)
        if p is None:
            p = self._paths[key] = _Path(m.implied_apy, random.Random(f"{self.seed}:{key}"),
                                         scale=4.0)
        implied = round(p.at(now), 6)
        under = round(m.underlying_apy * (1 + 0.5 * (p.at(now + 777_777) / m.implied_apy - 1)), 6)
        days = max(0.0, (m.expiry - now) / 86_400_000)
        disc = (1 + implied) ** (-days / 365)
        if m.exchange == "pendle":
            unit = self._path("ETH").at(now) * 1.05 if m.unit == "ETH" else 1.0
            pt, yt = round(unit * disc, 6), round(unit * (1 - disc), 6)
        else:
            pt, yt = round(disc, 6), round(1 - disc, 6)
        row: Msg = {"type": "rate_market", "exchange": m.exchange, "chain": m.chain,
                    "address": m.address, "symbol": m.symbol, "underlyingApy": under,
                    "impliedApy": implied, "lpApy": m.lp_apy, "ptPrice": pt, "ytPrice": yt,
                    "expiry": m.expiry, "daysToExpiry": round(days, 4),
                    "tvl": round(m.tvl * (1 + 0.01 * math.sin(now / 3.3e6)), 2),
                    "volume24h": m.volume24h}
        if m.fee_rate is not None:
            row["tradingFeeRate"] = m.fee_rate
        row["time"] = now
        return row

    @staticmethod
    def _irm_params(m: _LendingMarket) -> dict[str, float]:
        if m.exchange == "morpho":
            return {"targetUtil": 0.9, "curveSteepness": 4.0, "adjSpeed": 50.0}
        if m.exchange == "aave":
            return {"baseRate": 0.0, "slope1": 0.065 if m.asset == "USDC" else 0.027,
                    "slope2": 0.6 if m.asset == "USDC" else 0.8, "kink": 0.9 if m.asset ==
                    "USDC" else 0.8, "reserveFactor": 0.1 if m.asset == "USDC" else 0.15,
                    "maxRate": 0.665}
        return {"baseRate": 0.0, "slope1": 0.054, "slope2": 3.6, "kink": 0.9}

    def _lending_row(self, m: _LendingMarket, p: dict[str, float], now: int) -> Msg:
        key = f"lend:{m.exchange}:{m.chain}:{m.market}"
        path = self._paths.get(key)
        if path is None:
            path = self._paths[key] = _Path(m.util, random.Random(f"{self.seed}:{key}"), 1.5)
        util = min(0.99, max(0.01, path.at(now)))
        rate_at_target = None
        if "kink" in p:
            kink = p["kink"]
            if util <= kink:
                borrow = p["baseRate"] + p["slope1"] * util / kink
            else:
                borrow = p["baseRate"] + p["slope1"] + p["slope2"] * (util - kink) / (1 - kink)
            rf = p.get("reserveFactor", 0.1)
        else:
            rate_at_target = 0.045 * (1 + 0.1 * math.sin(now / 7.1e6))
            borrow = rate_at_target * math.exp(p["curveSteepness"] * (util - p["targetUtil"]))
            rf = 0.0
        supply = borrow * util * (1 - rf)
        tvl = m.tvl * (1 + 0.005 * math.sin(now / 1.9e6))
        # Lending rows reuse the rate_market shape: underlyingApy is the supply APY and the
        # PT fields carry zero sentinels (https://mackinac.io/api/messages/ "rate_market").
        row: Msg = {"type": "rate_market", "exchange": m.exchange, "chain": m.chain,
                    "address": m.market, "symbol": m.symbol, "underlyingApy": round(supply, 6),
                    "impliedApy": 0.0, "lpApy": 0.0, "ptPrice": 0.0, "ytPrice": 0.0,
                    "expiry": 0, "daysToExpiry": 0.0, "tvl": round(tvl, 2), "volume24h": 0.0,
                    "time": now, "asset": m.asset, "borrowApy": round(borrow, 6),
                    "utilization": round(util, 6), "available": round(tvl * (1 - util), 2)}
        if rate_at_target is not None:  # Morpho AdaptiveCurveIRM only
            row["rateAtTarget"] = round(rate_at_target, 6)
        return row
