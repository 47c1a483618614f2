"""Seeded synthetic Derive market behind the simulator.

Pure: no clock reads, no sleeps, no sockets. The server passes ``now_ms`` to
:meth:`DeriveSynth.tick` about every 100 ms with the set of channels some session wants, and
gets back ``(channel, data)`` notifications; the output is a deterministic function of the
seed and the calls.

Shapes follow the v2 models (derive-py ``generated_models.py``/``channel_models.py``) and, with
``variant="v3"``, the v3 deltas: ``{price, amount}`` level objects, ``batch_status`` and
``op_uuid`` instead of ``tx_status`` and ``transaction_id``, string nonces, BatchStatus
segments in settled-trade channel names. Money is decimal strings, times are ms integers.

Cadences (https://docs.derive.xyz/reference/orderbook-instrument_name-group-depth and the
ticker pages): order books every 100 ms while they change and every second when idle, with
``publish_id`` +1 per publish; tickers every ``interval`` ms; spot feeds every second; trades
as they happen, the same trade on ``trades.{instrument}`` and ``trades.{type}.{currency}``,
and later on ``trades.{type}.{currency}.{status}`` once settled (or reverted). Options are
listed and expire over time (``churn_ms``), and on demand.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

INSTRUMENT_TYPES = ("option", "perp", "erc20")
GROUPS = (1, 10, 100)
DEPTHS = (1, 10, 20, 100)
INTERVALS = (100, 1000)
_BASE = {"ETH": 3500.0, "BTC": 65000.0, "SOL": 150.0}
_TICK = {"ETH": 0.1, "BTC": 1.0, "SOL": 0.01}
_DAY = 86_400_000
Note = tuple[str, Any]


def _addr(label: str) -> str:
    return "0x" + hashlib.sha256(label.encode()).hexdigest()[:40]


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def _d(x: float, places: int = 4) -> str:
    """A decimal string as the venue sends it (no exponent, no trailing zeros)."""
    s = f"{x:.{places}f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


@dataclass
class Instrument:
    name: str
    type: str
    currency: str
    listed_ms: int
    expiry_ms: int | None = None
    strike: float | None = None
    option_type: str | None = None
    active: bool = True

    def public(self, tick: float) -> dict[str, Any]:
        """InstrumentPublicResponseSchema."""
        return {
            "instrument_type": self.type, "instrument_name": self.name,
            "scheduled_activation": self.listed_ms // 1000,
            "scheduled_deactivation": (self.expiry_ms // 1000 if self.expiry_ms
                                       else 9223372036854775807),
            "is_active": self.active, "tick_size": _d(tick), "minimum_amount": "0.01",
            "maximum_amount": "10000", "amount_step": "0.01",
            "mark_price_fee_rate_cap": "0.125" if self.type == "option" else None,
            "maker_fee_rate": "0.0001", "taker_fee_rate": "0.0003", "base_fee": "0.5",
            "base_currency": self.currency, "quote_currency": "USDC",
            "option_details": ({"index": f"{self.currency}-USD", "expiry": self.expiry_ms // 1000,
                                "strike": _d(self.strike or 0), "option_type": self.option_type,
                                "settlement_price": None}
                               if self.type == "option" and self.expiry_ms else None),
            "perp_details": ({"index": f"{self.currency}-USD", "max_rate_per_hour": "0.004",
                              "min_rate_per_hour": "-0.004",
                              "static_interest_rate": "0.0000125",
                              "aggregate_funding": "738.1", "funding_rate": "0.0000125"}
                             if self.type == "perp" else None),
            "erc20_details": ({"decimals": 18, "underlying_erc20_address": _addr(self.currency),
                               "borrow_index": "1", "supply_index": "1"}
                              if self.type == "erc20" else None),
            "base_asset_address": _addr(f"asset-{self.type}-{self.currency}"),
            "base_asset_sub_id": str(int(hashlib.sha256(self.name.encode()).hexdigest()[:24], 16)),
            "pro_rata_fraction": "0", "fifo_min_allocation": "0", "pro_rata_amount_step": "1",
        }


@dataclass
class _Book:
    publish_id: int
    last_ms: int = -10**12
    skip: int = 0


@dataclass
class _Pending:
    due: int
    seq: int
    channel: str
    data: Any


@dataclass
class Account:
    """The simulated user behind ``public/login``: a wallet and its subaccounts."""

    wallet: str
    subaccounts: tuple[int, ...]
    signer: str = ""
    nonce: int = 0


def parse_channel(channel: str) -> tuple[str, tuple[str, ...]] | None:
    """Server-side grammar of channel names -> (family, params), None when malformed
    (https://docs.derive.xyz/reference/subscribe)."""
    p = channel.split(".")
    n = len(p)
    if p[0] == "orderbook" and n == 4 and p[2].isdigit() and p[3].isdigit() \
            and int(p[2]) in GROUPS and int(p[3]) in DEPTHS:
        return "orderbook", (p[1], p[2], p[3])
    if p[0] in ("ticker", "ticker_slim") and n == 3 and p[2].isdigit() \
            and int(p[2]) in INTERVALS:
        return p[0], (p[1], p[2])
    if p[0] == "trades":
        if n == 2:
            return "trades", (p[1],)
        if n in (3, 4) and p[1] in INSTRUMENT_TYPES:
            return ("trades_ccy", (p[1], p[2])) if n == 3 else ("trades_status", (p[1], p[2], p[3]))
        return None
    if p[0] == "spot_feed" and n == 2:
        return "spot_feed", (p[1],)
    if channel in ("auctions.watch", "margin.watch"):
        return p[0], ()
    if p[0].isdigit():
        rest = ".".join(p[1:])
        if rest in ("orders", "trades", "balances", "quotes", "best.quotes"):
            return "private", (p[0], rest)
        if n == 3 and p[1] == "trades":
            return "private", (p[0], "trades.status", p[2])
        return None
    if n == 2 and p[1] == "rfqs" and p[0].startswith("0x"):
        return "rfqs", (p[0],)
    return None


class DeriveSynth:
    """The synthetic exchange: instruments with listing/expiry churn, books, tickers, trades,
    spot feeds, auctions, margin, and one account's private streams."""

    def __init__(self, seed: int = 1, rate: float = 1.0, variant: str = "v2",
                 currencies: Iterable[str] = ("ETH", "BTC"), start_ms: int = 1_785_000_000_000,
                 churn_ms: int = 20_000, account: Account | None = None) -> None:
        if variant not in ("v2", "v3"):
            raise ValueError(f"variant: v2 or v3, got {variant!r}")
        self.seed = seed
        self.rng = random.Random(seed)
        self.rate = rate
        self.v3 = variant == "v3"
        self.currencies = tuple(currencies)
        self.churn_ms = churn_ms
        self.account = account
        self.instruments: dict[str, Instrument] = {}
        self._books: dict[str, _Book] = {}
        self._due: dict[str, int] = {}
        self._pending: list[_Pending] = []
        self._seq = 0
        self._trade_no = 0
        self._last_churn: int | None = None
        self._last_private = 0
        self._auctions: dict[int, int] = {}  # subaccount -> ticks left
        day0 = start_ms - start_ms % _DAY + 8 * 3_600_000  # 08:00 UTC expiries
        for cur in self.currencies:
            self._add(Instrument(f"{cur}-PERP", "perp", cur, start_ms - 90 * _DAY))
            self._add(Instrument(f"{cur}-USDC", "erc20", cur, start_ms - 90 * _DAY))
            base = _BASE.get(cur, 100.0)
            for days in (7, 14):
                for k in (-1, 0, 1):
                    for kind in ("C", "P"):
                        self._option(cur, day0 + days * _DAY, round(base * (1 + 0.1 * k), -1)
                                     if base > 1000 else round(base * (1 + 0.1 * k), 1),
                                     kind, start_ms - _DAY)

    # -- instruments ------------------------------------------------------------------------
    def _add(self, inst: Instrument) -> Instrument:
        self.instruments[inst.name] = inst
        return inst

    def _option(self, cur: str, expiry: int, strike: float, kind: str, now: int) -> Instrument:
        day = datetime.fromtimestamp(expiry / 1000, UTC).strftime("%Y%m%d")
        name = f"{cur}-{day}-{_d(strike, 2)}-{kind}"
        return self._add(Instrument(name, "option", cur, now, expiry, strike, kind))

    def list_option(self, currency: str, now_ms: int) -> str:
        """List a new option (a new strike on the nearest expiry); returns its name."""
        opts = [i for i in self.instruments.values()
                if i.type == "option" and i.currency == currency and i.active]
        expiry = min((i.expiry_ms for i in opts if i.expiry_ms), default=now_ms + 7 * _DAY)
        strikes = {i.strike for i in self.instruments.values() if i.currency == currency}
        strike = max(s for s in strikes if s is not None) if opts else _BASE.get(currency, 100)
        step = _BASE.get(currency, 100.0) * 0.05
        strike = round(strike + step, 2)
        while strike in strikes:
            strike = round(strike + step, 2)
        return self._option(currency, expiry, strike, "C", now_ms).name

    def expire(self, name: str) -> None:
        """Expire (delist) an instrument: it leaves get_instruments and stops publishing."""
        if name in self.instruments:
            self.instruments[name].active = False

    def active(self, currency: str | None = None, kind: str | None = None) -> list[Instrument]:
        return [i for i in self.instruments.values() if i.active
                and (currency is None or i.currency == currency)
                and (kind is None or i.type == kind)]

    def get_instruments(self, currency: str, kind: str, expired: bool) -> list[dict[str, Any]]:
        tick = _TICK.get(currency, 0.01)
        return [i.public(tick) for i in self.instruments.values()
                if i.currency == currency and i.type == kind and (i.active or expired)]

    def get_all_currencies(self, now_ms: int) -> list[dict[str, Any]]:
        out = []
        for cur in self.currencies:
            spot = self.price(cur, now_ms)
            out.append({
                "currency": cur, "instrument_types": list(INSTRUMENT_TYPES),
                "market_type": "ALL", "spot_price": _d(spot, 2),
                "spot_price_24h": _d(self.price(cur, now_ms - _DAY), 2), "borrow_apy": "0.05",
                "supply_apy": "0.03", "total_borrow": "1200", "total_supply": "5400",
                "srm_im_discount": "0.8", "srm_mm_discount": "0.9",
                "managers": [{"address": _addr(f"manager-{cur}"), "margin_type": "SM",
                              "currency": None},
                             {"address": _addr(f"pm-{cur}"), "margin_type": "PM",
                              "currency": cur}],
                "protocol_asset_addresses": {"option": _addr(f"asset-option-{cur}"),
                                             "perp": _addr(f"asset-perp-{cur}"),
                                             "spot": _addr(f"asset-erc20-{cur}"),
                                             "underlying_erc20": _addr(cur)},
                "pm2_collateral_discounts": [{"im_discount": "0.8", "manager_currency": cur,
                                              "mm_discount": "0.9"}],
                "asset_cap_and_supply_per_manager": {"perp": {"SM": [{
                    "current_open_interest": "10", "interest_cap": "1000",
                    "manager_currency": None}]}},
                "erc20_details": None})
        return out

    # -- prices -----------------------------------------------------------------------------
    def price(self, currency: str, t_ms: int) -> float:
        base = _BASE.get(currency, 100.0)
        ph = (self.seed * 0.37 + len(currency)) % 6.28
        t = t_ms / 1000.0
        return base * (1 + 0.01 * math.sin(t / 60 + ph) + 0.002 * math.sin(t / 7 + 2 * ph))

    def mark(self, inst: Instrument, t_ms: int) -> float:
        spot = self.price(inst.currency, t_ms)
        if inst.type != "option":
            return spot * (1.0002 if inst.type == "perp" else 1.0)
        strike = inst.strike or spot
        tau = max((inst.expiry_ms or t_ms) - t_ms, _DAY) / (365 * _DAY)
        intrinsic = max(spot - strike, 0.0) if inst.option_type == "C" else max(strike - spot, 0)
        return intrinsic + 0.4 * spot * math.sqrt(tau) * 0.4

    # -- the clock ---------------------------------------------------------------------------
    def tick(self, now_ms: int, wanted: set[str]) -> list[Note]:
        """Notifications due at ``now_ms`` for the channels in ``wanted``."""
        self._churn(now_ms)
        out: list[Note] = []
        trades = self._trades(now_ms)
        if self.account is not None:
            self._private(now_ms, wanted)
        for ch in sorted(wanted):
            parsed = parse_channel(ch)
            if parsed is None:
                continue
            fam, args = parsed
            data = self._publish(fam, args, ch, now_ms, trades)
            if data is not None:
                out.append((ch, data))
        keep = []
        for p in sorted(self._pending, key=lambda p: (p.due, p.seq)):
            if p.due <= now_ms:
                if p.channel in wanted:
                    out.append((p.channel, p.data))
            else:
                keep.append(p)
        self._pending = keep
        return out

    def _later(self, due: int, channel: str, data: Any) -> None:
        self._seq += 1
        self._pending.append(_Pending(due, self._seq, channel, data))

    def _churn(self, now: int) -> None:
        if self._last_churn is None:
            self._last_churn = now
            return
        if self.churn_ms <= 0 or now - self._last_churn < self.churn_ms:
            return
        self._last_churn = now
        for cur in self.currencies:
            self.list_option(cur, now)
            options = sorted(self.active(cur, "option"), key=lambda i: (i.listed_ms, i.name))
            if len(options) > 12:
                self.expire(options[0].name)

    def _publish(self, fam: str, args: tuple[str, ...], ch: str, now: int,
                 trades: dict[str, list[dict[str, Any]]]) -> Any:
        if fam == "orderbook":
            return self._orderbook(ch, args, now)
        if fam in ("ticker", "ticker_slim"):
            inst = self.instruments.get(args[0])
            if inst is None or not inst.active or not self._every(ch, int(args[1]), now):
                return None
            return (self._ticker(inst, now) if fam == "ticker" else self._slim(inst, now))
        if fam == "trades":
            return trades.get(args[0]) or None
        if fam == "trades_ccy":
            kind, cur = args
            got = [t for i in self.active(cur, kind) for t in trades.get(i.name, ())]
            return sorted(got, key=lambda t: t["trade_id"]) or None
        if fam == "spot_feed":
            if args[0] not in self.currencies or not self._every(ch, 1000, now):
                return None
            return self._spot(args[0], now)
        if fam == "auctions":
            return self._auction(now) if self._every(ch, 2000, now) else None
        if fam == "margin":
            return self._margin(now) if self._every(ch, 2000, now) else None
        return None  # settled trades and private streams come through _pending

    def _every(self, ch: str, ms: int, now: int) -> bool:
        due = self._due.get(ch)
        if due is not None and now < due:
            return False
        self._due[ch] = now + ms
        return True

    # -- public payloads ----------------------------------------------------------------------
    def _orderbook(self, ch: str, args: tuple[str, ...], now: int) -> Any:
        name, group, depth = args[0], int(args[1]), int(args[2])
        inst = self.instruments.get(name)
        if inst is None or not inst.active:
            return None
        book = self._books.get(ch)
        if book is None:
            book = self._books[ch] = _Book(publish_id=self.rng.randrange(1, 10_000))
        changed = self.rng.random() < min(0.5 * self.rate, 1.0)
        if not changed and now - book.last_ms < 1000:
            return None
        book.last_ms = now
        book.publish_id += 1 + book.skip
        book.skip = 0
        mid = self.mark(inst, now)
        step = _TICK.get(inst.currency, 0.01) * group * (10 if inst.type != "option" else 1)
        levels = min(depth, 5)
        bids, asks = [], []
        for k in range(levels):
            bp = math.floor((mid - step * (k + 0.5)) / step) * step
            ap = math.ceil((mid + step * (k + 0.5)) / step) * step
            bids.append((_d(max(bp, step), 2), _d(self.rng.uniform(0.1, 20), 2)))
            asks.append((_d(ap, 2), _d(self.rng.uniform(0.1, 20), 2)))
        fmt = (lambda p, a: {"price": p, "amount": a}) if self.v3 else (lambda p, a: [p, a])
        return {"instrument_name": name, "publish_id": book.publish_id, "timestamp": now,
                "bids": [fmt(p, a) for p, a in bids], "asks": [fmt(p, a) for p, a in asks]}

    def gap(self, channel_or_instrument: str, skip: int = 3) -> int:
        """Make the next publish of matching order books skip ``skip`` publish_ids."""
        n = 0
        for ch, book in self._books.items():
            if ch == channel_or_instrument or ch.split(".")[1] == channel_or_instrument:
                book.skip += skip
                n += 1
        return n

    def _pricing(self, inst: Instrument, now: int) -> dict[str, str] | None:
        if inst.type != "option":
            return None
        spot = self.price(inst.currency, now)
        d = 0.5 + 0.4 * math.tanh((spot - (inst.strike or spot)) / (0.1 * spot))
        d = d if inst.option_type == "C" else d - 1
        return {"delta": _d(d), "theta": "-5.2", "gamma": "0.0004", "vega": "1.9",
                "iv": "0.62", "rho": "0.3", "forward_price": _d(spot * 1.001, 2),
                "mark_price": _d(self.mark(inst, now), 2), "bid_iv": "0.6", "ask_iv": "0.64",
                "discount_factor": "0.999"}

    def _ticker(self, inst: Instrument, now: int) -> dict[str, Any]:
        m = self.mark(inst, now)
        tick = _TICK.get(inst.currency, 0.01)
        t = inst.public(tick)
        t.update({
            "best_ask_amount": _d(self.rng.uniform(1, 20), 2), "best_ask_price": _d(m * 1.001, 2),
            "best_bid_amount": _d(self.rng.uniform(1, 20), 2), "best_bid_price": _d(m * 0.999, 2),
            "five_percent_bid_depth": "20", "five_percent_ask_depth": "31", "timestamp": now,
            "option_pricing": self._pricing(inst, now),
            "index_price": _d(self.price(inst.currency, now), 2), "mark_price": _d(m, 2),
            "stats": {"contract_volume": "120.5", "num_trades": str(self._trade_no),
                      "open_interest": "840", "high": _d(m * 1.02, 2), "low": _d(m * 0.98, 2),
                      "percent_change": "0.01", "usd_change": _d(m * 0.01, 2)},
            "min_price": _d(m * 0.9, 2), "max_price": _d(m * 1.1, 2),
            "open_interest": {"SM": [{"current_open_interest": "340", "interest_cap": "5000",
                                      "manager_currency": None}]}})
        return {"timestamp": now, "instrument_ticker": t}

    def _slim(self, inst: Instrument, now: int) -> dict[str, Any]:
        m = self.mark(inst, now)
        t: dict[str, Any] = {
            "t": now, "A": _d(self.rng.uniform(1, 20), 2), "a": _d(m * 1.001, 2),
            "B": _d(self.rng.uniform(1, 20), 2), "b": _d(m * 0.999, 2),
            "I": _d(self.price(inst.currency, now), 2), "M": _d(m, 2),
            "maxp": _d(m * 1.1, 2), "minp": _d(m * 0.9, 2),
            "stats": {"c": "120.5", "v": _d(m * 120.5, 2), "pr": "0", "n": self._trade_no,
                      "oi": "840", "h": _d(m * 1.02, 2), "l": _d(m * 0.98, 2), "p": "0.01"}}
        if inst.type == "perp":
            t["f"] = "0.0000125"
        p = self._pricing(inst, now)
        if p is not None:
            t["option_pricing"] = {"ai": p["ask_iv"], "bi": p["bid_iv"], "d": p["delta"],
                                   "df": p["discount_factor"], "f": p["forward_price"],
                                   "g": p["gamma"], "i": p["iv"], "m": p["mark_price"],
                                   "r": p["rho"], "t": p["theta"], "v": p["vega"]}
        return {"timestamp": now, "instrument_ticker": t}

    def _spot(self, cur: str, now: int) -> dict[str, Any]:
        return {"timestamp": now, "feeds": {cur: {
            "price": _d(self.price(cur, now), 2), "confidence": "1",
            "price_prev_daily": _d(self.price(cur, now - _DAY), 2),
            "confidence_prev_daily": "1", "timestamp_prev_daily": now - _DAY}}}

    def _trades(self, now: int) -> dict[str, list[dict[str, Any]]]:
        """This tick's public trades per instrument; their settlement is scheduled."""
        out: dict[str, list[dict[str, Any]]] = {}
        for inst in sorted(self.active(), key=lambda i: i.name):
            if self.rng.random() >= 0.04 * self.rate:
                continue
            self._trade_no += 1
            m = self.mark(inst, now)
            trade: dict[str, Any] = {
                "trade_id": f"{self.seed:x}{self._trade_no:08d}", "instrument_name": inst.name,
                "direction": self.rng.choice(("buy", "sell")),
                "trade_price": _d(m * self.rng.uniform(0.999, 1.001), 2),
                "trade_amount": _d(self.rng.uniform(0.01, 5), 2), "mark_price": _d(m, 2),
                "index_price": _d(self.price(inst.currency, now), 2), "timestamp": now}
            if self.rng.random() < 0.2:
                trade["quote_id"] = _uuid(self.rng)
            out[inst.name] = [trade]
            settled = dict(trade, subaccount_id=self.rng.randrange(1000, 99999),
                           wallet=_addr(f"taker-{self._trade_no}"),
                           liquidity_role="taker", trade_fee="0.95", extra_fee="0",
                           expected_rebate="0", realized_pnl="0", realized_pnl_excl_fees="0",
                           tx_hash="0x" + hashlib.sha256(trade["trade_id"].encode()).hexdigest())
            ok = self.rng.random() < 0.9
            if self.v3:
                status = "Settled" if ok else "SettledError"
                settled.update(batch_status=status, op_uuid=_uuid(self.rng))
            else:
                status = "settled" if ok else "reverted"
                settled["tx_status"] = status
            self._later(now + 500, f"trades.{inst.type}.{inst.currency}.{status}", [settled])
        return out

    def _auction(self, now: int) -> list[dict[str, Any]] | None:
        if not self._auctions:  # one auction at a time: ongoing for 3 publishes, then ended
            self._auctions[self.rng.randrange(5000, 6000)] = 3
        out = []
        for sub, left in sorted(self._auctions.items()):
            if left > 0:
                out.append({"subaccount_id": sub, "state": "ongoing", "timestamp": now,
                            "details": {"estimated_bid_price": "0.92",
                                        "estimated_discount_pnl": "-120.5",
                                        "estimated_mtm": "15000",
                                        "estimated_percent_bid": "0.25",
                                        "last_seen_trade_id": self._trade_no,
                                        "margin_type": "SM", "min_cash_transfer": "100",
                                        "min_price_limit": "0.9",
                                        "subaccount_balances": {"USDC": "1500.25",
                                                                "ETH-PERP": "-2"},
                                        "currency": None}})
                self._auctions[sub] = left - 1
            else:
                out.append({"subaccount_id": sub, "state": "ended", "timestamp": now,
                            "details": None})
                del self._auctions[sub]
        return out or None

    def _margin(self, now: int) -> list[dict[str, Any]]:
        out = []
        for sub, cur in ((7001, self.currencies[0]), (7002, self.currencies[-1])):
            m = self.price(cur, now)
            out.append({
                "subaccount_id": sub, "currency": cur, "margin_type": "PM",
                "initial_margin": _d(2500 + m / 100, 2), "maintenance_margin": "4100.25",
                "subaccount_value": "10250.75", "valuation_timestamp": now,
                "collaterals": [{"asset_name": "USDC", "asset_type": "erc20",
                                 "amount": "10000", "initial_margin": "0",
                                 "maintenance_margin": "0", "mark_price": "1",
                                 "mark_value": "10000"}],
                "positions": [{"instrument_name": f"{cur}-PERP", "instrument_type": "perp",
                               "amount": "-1", "delta": "-1", "gamma": "0", "theta": "0",
                               "vega": "0", "index_price": _d(m, 2), "mark_price": _d(m, 2),
                               "mark_value": _d(-m, 2), "initial_margin": "-350",
                               "maintenance_margin": "-175", "liquidation_price": None}]})
        return out

    # -- the account's private streams -----------------------------------------------------------
    def _private(self, now: int, wanted: set[str]) -> None:
        acct = self.account
        assert acct is not None
        if now - self._last_private < 800 or not any(
                ch.split(".")[0] in {str(s) for s in acct.subaccounts} or ch.endswith(".rfqs")
                for ch in wanted):
            return
        self._last_private = now
        maker, taker = acct.subaccounts[0], acct.subaccounts[-1]
        inst = sorted(self.active(kind="perp"), key=lambda i: i.name)[0]
        acct.nonce += 1
        nonce_i = now * 1000 + acct.nonce % 1000
        nonce: int | str = str(nonce_i) if self.v3 else nonce_i
        m = self.mark(inst, now)
        order_id = _uuid(self.rng)
        order = {"order_id": order_id, "subaccount_id": maker, "instrument_name": inst.name,
                 "direction": "buy", "order_type": "limit", "time_in_force": "gtc",
                 "order_status": "open", "amount": "1", "filled_amount": "0",
                 "limit_price": _d(m, 2), "average_price": "0", "order_fee": "0",
                 "max_fee": "10", "extra_fee": "0", "nonce": nonce, "signer": acct.signer,
                 "signature": "0x" + hashlib.sha256(order_id.encode()).hexdigest(),
                 "signature_expiry_sec": now // 1000 + 3600, "label": "sim", "mmp": False,
                 "is_transfer": False, "cancel_reason": "", "creation_timestamp": now,
                 "last_update_timestamp": now, "quote_id": None, "replaced_order_id": None,
                 "trigger_price": None, "trigger_price_type": None, "trigger_type": None,
                 "trigger_reject_message": None}
        self._later(now, f"{maker}.orders", [order])
        filled = dict(order, order_status="filled", filled_amount="1",
                      average_price=_d(m, 2), order_fee="0.8", last_update_timestamp=now + 200)
        self._later(now + 200, f"{maker}.orders", [filled])
        trade_id = _uuid(self.rng)
        own = {"trade_id": trade_id, "order_id": order_id, "subaccount_id": maker,
               "instrument_name": inst.name, "direction": "buy", "trade_price": _d(m, 2),
               "trade_amount": "1", "trade_fee": "0.8", "extra_fee": "0",
               "expected_rebate": "0", "liquidity_role": "maker", "mark_price": _d(m, 2),
               "index_price": _d(self.price(inst.currency, now), 2), "realized_pnl": "0",
               "realized_pnl_excl_fees": "0", "is_transfer": False, "label": "sim",
               "timestamp": now + 200, "tx_hash": None, "quote_id": None}
        steps = (("Executing", "Proving", "Settled") if self.v3
                 else ("requested", "pending", "settled"))
        op = _uuid(self.rng)
        for k, status in enumerate(steps):
            t = dict(own)
            if self.v3:
                t.update(batch_status=status, op_uuid=op)
            else:
                t.update(tx_status=status, transaction_id=op)
            if k == len(steps) - 1:
                t["tx_hash"] = "0x" + hashlib.sha256(trade_id.encode()).hexdigest()
            self._later(now + 200 + 150 * k, f"{maker}.trades", [t])
            self._later(now + 200 + 150 * k, f"{maker}.trades.{status}", [t])
        self._later(now + 200, f"{maker}.balances", [
            {"name": "USDC", "previous_balance": "10000", "new_balance": _d(10000 - m, 2),
             "update_type": "trade"},
            {"name": inst.name, "previous_balance": "0", "new_balance": "1",
             "update_type": "trade"}])
        # An RFQ from the taker subaccount, quoted by the maker, then filled or cancelled.
        opts = sorted(self.active(kind="option"), key=lambda i: i.name)[:2]
        if len(opts) < 2:
            return
        rfq_id, quote_id = _uuid(self.rng), _uuid(self.rng)
        legs = [{"instrument_name": opts[0].name, "direction": "buy", "amount": "1"},
                {"instrument_name": opts[1].name, "direction": "sell", "amount": "1"}]
        rfq = {"rfq_id": rfq_id, "subaccount_id": taker, "wallet": acct.wallet,
               "status": "open", "legs": legs, "valid_until": now + 300_000,
               "creation_timestamp": now, "last_update_timestamp": now, "cancel_reason": "",
               "filled_pct": "0", "partial_fill_step": "1", "total_cost": None,
               "filled_direction": None, "fill_rate": "0.42", "recent_fill_rate": None}
        self._later(now, f"{acct.wallet}.rfqs", [rfq])
        priced = [dict(leg, price=_d(self.mark(o, now), 2)) for leg, o in zip(legs, opts,
                                                                               strict=True)]
        quote = {"cancel_reason": "", "creation_timestamp": now + 100, "direction": "sell",
                 "fee": "1.25", "fill_pct": "0", "is_transfer": False, "label": "sim-q",
                 "last_update_timestamp": now + 100,
                 "legs_hash": "0x" + hashlib.sha256(rfq_id.encode()).hexdigest(),
                 "liquidity_role": "maker", "max_fee": "5", "mmp": False, "nonce": nonce,
                 "quote_id": quote_id, "rfq_id": rfq_id,
                 "signature": "0x" + hashlib.sha256(quote_id.encode()).hexdigest(),
                 "signature_expiry_sec": now // 1000 + 600, "signer": acct.signer,
                 "status": "open", "subaccount_id": maker, "tx_hash": None, "extra_fee": "0",
                 "legs": priced}
        if not self.v3:
            quote["tx_status"] = None
        self._later(now + 100, f"{maker}.quotes", [quote])
        cost = _d(sum(float(p["price"]) * (1 if p["direction"] == "buy" else -1)
                      for p in priced), 2)
        public_quote = {k: quote[k] for k in (
            "cancel_reason", "creation_timestamp", "direction", "fill_pct",
            "last_update_timestamp", "legs", "legs_hash", "liquidity_role", "quote_id",
            "rfq_id", "status", "subaccount_id", "tx_hash")}
        public_quote.update(wallet=acct.wallet, tx_status=None)
        self._later(now + 150, f"{taker}.best.quotes", [{"rfq_id": rfq_id, "result": {
            "direction": "buy", "estimated_fee": "1.3", "estimated_realized_pnl": "0",
            "estimated_realized_pnl_excl_fees": "0", "estimated_total_cost": cost,
            "filled_pct": "0", "is_valid": True, "post_initial_margin": "900",
            "pre_initial_margin": "1000", "suggested_max_fee": "2.6",
            "best_quote": public_quote, "down_liquidation_price": None,
            "invalid_reason": None, "orderbook_total_cost": cost,
            "post_liquidation_price": None, "up_liquidation_price": None}}])
        fill = self.rng.random() < 0.6
        end = now + 400
        if fill:
            q_end = dict(quote, status="filled", fill_pct="1", last_update_timestamp=end,
                         tx_hash="0x" + hashlib.sha256(quote_id.encode()).hexdigest()[::-1])
            if self.v3:
                q_end["batch_status"] = "Settled"
            else:
                q_end["tx_status"] = "settled"
            r_end = dict(rfq, status="filled", filled_pct="1", last_update_timestamp=end,
                         total_cost=cost, filled_direction="buy")
        else:
            reason = self.rng.choice(("user_request", "rfq_no_longer_open"))
            q_end = dict(quote, status="cancelled", cancel_reason=reason,
                         last_update_timestamp=end)
            r_end = dict(rfq, status="expired", last_update_timestamp=end)
        self._later(end, f"{maker}.quotes", [q_end])
        self._later(end, f"{acct.wallet}.rfqs", [r_end])
        if not fill:
            self._later(end, f"{taker}.best.quotes", [{"rfq_id": rfq_id, "error": {
                "code": 11103, "message": "RFQ not open", "data": rfq_id}}])
