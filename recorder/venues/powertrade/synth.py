"""Seeded synthetic Power.Trade market behind the simulator.

Pure: no clock, no sleep, no socket. The server passes ``now_us`` (epoch µs) into every call;
the output is a deterministic function of the seed and the call sequence. Every dict returned
is a documented message in its one-key envelope with **string values** (the Market Proxy
convention, https://api-docs-5180b.web.app/docs/web-socket-api), or a Feeds message with
integer-scaled prices (https://power-trade.github.io/api-docs-source/ws_feeds.html).

The market: a few perpetuals, spot pairs and options (``ENTITIES``), each with a firm order
book (market "0") of individual orders that :meth:`MarketSynth.step` evolves (adds, deletes,
amends, executions with public trades); an indicative book (market "none") of RFQs, single-
and multi-leg (``a@1/b@-1``); and an account whose orders other sessions place (order
lifecycle messages).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

Msg = dict[str, Any]


@dataclass(frozen=True)
class Entity:
    id: int
    symbol: str
    base: str
    quote: str
    product: str
    tags: tuple[str, ...]
    price_dp: int
    qty_dp: int
    mid: float
    price_step: str
    qty_step: str
    min_qty: str
    max_qty: str


ENTITIES: tuple[Entity, ...] = (
    Entity(4, "BTC-USD-PERPETUAL", "BTC", "USD", "perpetual_future",
           ("BTC", "future", "perpetual"), 1, 3, 16950.0, "0.5", "0.001", "0.001", "100"),
    Entity(5, "ETH-USD-PERPETUAL", "ETH", "USD", "perpetual_future",
           ("ETH", "future", "perpetual"), 2, 2, 1280.0, "0.05", "0.01", "0.01", "1000"),
    Entity(3, "BTC-USD", "BTC", "USD", "spot", ("BTC", "spot"), 1, 4, 16940.0, "0.1",
           "0.0001", "0.0001", "50"),
    Entity(46, "PTF-USD", "PTF", "USD", "spot", ("PTF", "spot"), 4, 0, 0.1234, "0.0001", "1",
           "1", "1000000"),
    Entity(1023, "BTC-20221230-17000P", "BTC", "USD", "option", ("BTC", "option", "put"), 1, 2,
           450.0, "5", "0.01", "0.01", "500"),
    Entity(1024, "BTC-20221230-18000C", "BTC", "USD", "option", ("BTC", "option", "call"), 1,
           2, 320.0, "5", "0.01", "0.01", "500"),
    Entity(1101, "ETH-20221230-1200C", "ETH", "USD", "option", ("ETH", "option", "call"), 2,
           1, 90.0, "0.5", "0.1", "0.1", "5000"),
    Entity(1102, "ETH-20221230-1400C", "ETH", "USD", "option", ("ETH", "option", "call"), 2,
           1, 30.0, "0.5", "0.1", "0.1", "5000"),
)
BY_ID = {e.id: e for e in ENTITIES}
BY_SYMBOL = {e.symbol: e for e in ENTITIES}
MULTI_LEG_BASE_ID = 5001
# Structures quoted as multi-leg RFQs: (legs as (symbol, ratio)).
STRUCTURES: tuple[tuple[tuple[str, int], ...], ...] = (
    (("BTC-20221230-17000P", 1), ("BTC-20221230-18000C", -1)),
    (("ETH-20221230-1200C", 1), ("ETH-20221230-1400C", -1)),
)


def fmt(x: float, dp: int) -> str:
    return f"{x:.{dp}f}"


@dataclass
class Order:
    side: str
    price: float
    qty: float
    ts: int


@dataclass
class Book:
    entity: Entity
    orders: dict[str, Order] = field(default_factory=dict)
    last_trade: float | None = None


@dataclass
class Rfq:
    tid: int
    symbol: str
    side: str
    qty: float
    ts: int


def _env(name: str, **fields: Any) -> Msg:
    return {name: {k: v for k, v in fields.items() if v is not None}}


class MarketSynth:
    def __init__(self, seed: int = 1, rate: float = 1.0, rfq_rate: float = 1.0,
                 account_rate: float = 1.0) -> None:
        self.rng = random.Random(seed)
        self.rate = rate
        self.rfq_rate = rfq_rate
        self.account_rate = account_rate
        self._oid = 100_000
        self._tid = 3000
        self.books: dict[int, Book] = {}
        self.rfqs: dict[str, Rfq] = {}
        self.own: dict[str, tuple[str, Order, str]] = {}  # order_id -> (coid, order, symbol)
        self.fills: list[Msg] = []
        self._coid = 0
        for e in ENTITIES:
            b = self.books[e.id] = Book(e)
            for i in range(1, 6):
                for side, sgn in (("buy", -1), ("sell", 1)):
                    self._add(b, side, e.mid * (1 + sgn * 0.001 * i), 0)
        for _ in range(3):
            self._new_rfq(0)

    # -- reference data ------------------------------------------------------------------------
    def entities_and_rules(self, now_us: int, user_tag: str) -> Msg:
        return _env("entities_and_rules_response", server_utc_timestamp=str(now_us),
                    user_tag=user_tag, symbols=[{
                        "symbol": e.symbol, "tradeable_entity_id": str(e.id), "status": "active",
                        "base_asset": e.base, "quote_asset": e.quote,
                        "minimum_quantity": e.min_qty, "maximum_quantity": e.max_qty,
                        "minimum_value": "1", "maximum_value": "10000000",
                        "quantity_step": e.qty_step, "price_step": e.price_step,
                        "tags": list(e.tags)} for e in ENTITIES])

    def summary(self) -> list[dict[str, Any]]:
        """REST ``tradeable_entity/all/summary``: string values, like the rest of the API."""
        return [{"id": str(e.id), "symbol": e.symbol, "price_decimal_places": str(e.price_dp),
                 "quantity_decimal_places": str(e.qty_dp), "status": "active",
                 "tags": list(e.tags), "product_type": e.product, "base_asset": e.base,
                 "quote_asset": e.quote} for e in ENTITIES]

    # -- firm books ----------------------------------------------------------------------------
    def _next_oid(self) -> str:
        self._oid += 1
        return str(self._oid)

    def _round(self, e: Entity, price: float) -> float:
        step = float(e.price_step)
        return max(step, round(round(price / step) * step, e.price_dp))

    def _qty(self, e: Entity) -> float:
        step = float(e.qty_step)
        return round(step * self.rng.randint(1, 400), e.qty_dp)

    def _add(self, b: Book, side: str, price: float, ts: int) -> tuple[str, Order]:
        oid = self._next_oid()
        o = b.orders[oid] = Order(side, self._round(b.entity, price), self._qty(b.entity), ts)
        return oid, o

    def snapshot(self, tid: int, now_us: int) -> Msg:
        b = self.books[tid]
        e = b.entity

        def levels(side: str) -> list[dict[str, str]]:
            orders = sorted(((oid, o) for oid, o in b.orders.items() if o.side == side),
                            key=lambda x: (-x[1].price if side == "buy" else x[1].price, x[0]))
            return [{"price": fmt(o.price, e.price_dp), "quantity": fmt(o.qty, e.qty_dp),
                     "order_id": oid, "utc_timestamp": str(o.ts)} for oid, o in orders]
        return _env("snapshot", server_utc_timestamp=str(now_us), market_id="0",
                    tradeable_entity_id=str(e.id), symbol=e.symbol, buy=levels("buy"),
                    sell=levels("sell"))

    def _book_msg(self, name: str, b: Book, now_us: int, **f: Any) -> Msg:
        e = b.entity
        return _env(name, server_utc_timestamp=str(now_us), utc_timestamp=str(now_us - 40),
                    market_id="0", tradeable_entity_id=str(e.id), symbol=e.symbol, **f)

    def step(self, now_us: int) -> dict[int, list[Msg]]:
        """Advance every firm book one tick; returns the events per entity id."""
        out: dict[int, list[Msg]] = {}
        for tid, b in self.books.items():
            if self.rng.random() < min(1.0, 0.25 * self.rate):
                out[tid] = self._book_event(b, now_us)
        return out

    def _best(self, b: Book, side: str) -> tuple[str, Order] | None:
        orders = [(oid, o) for oid, o in b.orders.items() if o.side == side]
        if not orders:
            return None
        pick = max if side == "buy" else min
        return pick(orders, key=lambda x: (x[1].price, -int(x[0])))

    def _book_event(self, b: Book, now_us: int) -> list[Msg]:
        e, rng = b.entity, self.rng
        side = rng.choice(("buy", "sell"))
        mine = [oid for oid, o in b.orders.items() if o.side == side]
        r = rng.random()
        dp, qp = e.price_dp, e.qty_dp
        if r < 0.4 or len(mine) < 3:
            drift = rng.uniform(0.0002, 0.006)
            ref = b.last_trade or e.mid
            oid, o = self._add(b, side, ref * (1 - drift if side == "buy" else 1 + drift),
                               now_us - 40)
            return [self._book_msg("order_added", b, now_us, side=side, order_id=oid,
                                   price=fmt(o.price, dp), quantity=fmt(o.qty, qp))]
        if r < 0.6:
            oid = rng.choice(mine)
            b.orders.pop(oid)
            return [self._book_msg("order_deleted", b, now_us, side=side, order_id=oid)]
        if r < 0.8:
            old = rng.choice(mine)
            o = b.orders.pop(old)
            new = self._next_oid()
            o = b.orders[new] = Order(side, o.price, self._qty(e), now_us - 40)
            return [self._book_msg("order_updated", b, now_us, side=side, old_order_id=old,
                                   new_order_id=new, price=fmt(o.price, dp),
                                   quantity=fmt(o.qty, qp))]
        best = self._best(b, side)
        assert best is not None
        oid, o = best
        qty = min(o.qty, self._qty(e))
        o.qty = round(o.qty - qty, qp)
        self._tid += 1
        b.last_trade = o.price
        msgs = [self._book_msg("order_executed", b, now_us, side=side, order_id=oid,
                               price=fmt(o.price, dp), quantity=fmt(qty, qp)),
                self._book_msg("trade", b, now_us, trade_id=str(self._tid),
                               price=fmt(o.price, dp), quantity=fmt(qty, qp),
                               buy_display_order_id=oid if side == "buy" else "",
                               sell_display_order_id=oid if side == "sell" else "")]
        if o.qty <= 0:
            b.orders.pop(oid)
            msgs.append(self._book_msg("order_deleted", b, now_us, side=side, order_id=oid))
        return msgs

    # -- RFQs (indicative book, market "none") ---------------------------------------------------
    def _new_rfq(self, now_us: int) -> tuple[str, Rfq]:
        rng = self.rng
        if rng.random() < 0.4:
            k = rng.randrange(len(STRUCTURES))
            legs = STRUCTURES[k]
            symbol = "/".join(f"{s}@{r}" for s, r in legs)
            tid, qdp = MULTI_LEG_BASE_ID + k, BY_SYMBOL[legs[0][0]].qty_dp
        else:
            e = rng.choice([e for e in ENTITIES if e.product == "option"])
            symbol, tid, qdp = e.symbol, e.id, e.qty_dp
        oid = self._next_oid()
        q = rng.choice((1, 5, 10, 25, 100))
        rfq = self.rfqs[oid] = Rfq(tid, symbol, rng.choice(("buy", "sell")),
                                   round(float(q), qdp), now_us)
        return oid, rfq

    def _rfq_msg(self, name: str, oid: str, q: Rfq, now_us: int) -> Msg:
        extra = {"price": "0", "quantity": str(int(q.qty))} if name == "order_added" else {}
        return _env(name, server_utc_timestamp=str(now_us), utc_timestamp=str(now_us - 40),
                    market_id="none", tradeable_entity_id=str(q.tid), symbol=q.symbol,
                    side=q.side, order_id=oid, **extra)

    def rfq_snapshots(self, now_us: int) -> list[Msg]:
        """One snapshot per live RFQ book (market "none"), after register_for_rfqs."""
        books: dict[tuple[int, str], list[tuple[str, Rfq]]] = {}
        for oid, q in self.rfqs.items():
            books.setdefault((q.tid, q.symbol), []).append((oid, q))
        out = []
        for (tid, sym), items in sorted(books.items()):
            def side(s: str, items: list[tuple[str, Rfq]] = items) -> list[dict[str, str]]:
                return [{"price": "0", "quantity": str(int(q.qty)), "order_id": oid,
                         "utc_timestamp": str(q.ts)} for oid, q in items if q.side == s]
            out.append(_env("snapshot", server_utc_timestamp=str(now_us), market_id="none",
                            tradeable_entity_id=str(tid), symbol=sym, buy=side("buy"),
                            sell=side("sell")))
        return out

    def rfq_step(self, now_us: int) -> list[Msg]:
        if self.rng.random() >= min(1.0, 0.04 * self.rfq_rate):
            return []
        if self.rfqs and (len(self.rfqs) > 6 or self.rng.random() < 0.4):
            oid = self.rng.choice(sorted(self.rfqs))
            q = self.rfqs.pop(oid)
            return [self._rfq_msg("order_deleted", oid, q, now_us)]
        oid, q = self._new_rfq(now_us)
        return [self._rfq_msg("order_added", oid, q, now_us)]

    # -- Feeds ---------------------------------------------------------------------------------
    def feeds(self, types: set[str], now_us: int, tick: int) -> list[Msg]:
        """Feeds messages due at this tick: top_of_book every 4th tick, reference and last
        trade prices every 20th. Integers scaled by the entity's decimals; ns timestamps."""
        out: list[Msg] = []
        ts = str(now_us * 1000)
        for e in ENTITIES:
            b = self.books[e.id]
            ps, qs = 10**e.price_dp, 10**e.qty_dp
            if "top_of_book" in types and tick % 4 == 0:
                bid, ask = self._best(b, "buy"), self._best(b, "sell")
                out.append(_env(
                    "top_of_book", timestamp=ts, tradeable_entity_id=str(e.id), market_id="0",
                    buy_price=str(round(bid[1].price * ps)) if bid else "none",
                    buy_quantity=str(round(bid[1].qty * qs)) if bid else "0",
                    sell_price=str(round(ask[1].price * ps)) if ask else "none",
                    sell_quantity=str(round(ask[1].qty * qs)) if ask else "0"))
            if tick % 20 == 0:
                if "reference_price" in types:
                    out.append(_env("reference_price", timestamp=ts,
                                    tradeable_entity_id=str(e.id), market_id="none",
                                    price=str(round(e.mid * ps)), price_type="index"))
                if "last_trade_price" in types and b.last_trade is not None:
                    out.append(_env("last_trade_price", timestamp=ts,
                                    tradeable_entity_id=str(e.id), market_id="0",
                                    price=str(round(b.last_trade * ps)), price_type="last"))
        return out

    # -- the account ---------------------------------------------------------------------------
    def new_order(self, body: dict[str, str], now_us: int) -> list[Msg]:
        """``new_order`` -> order_accepted then (sometimes) an execution, or order_rejected."""
        coid = body.get("client_order_id", "")
        sym = body.get("symbol", "")
        e = BY_SYMBOL.get(sym) or BY_ID.get(int(body.get("tradeable_entity_id") or 0))
        price, qty = body.get("price", ""), body.get("quantity", "")
        try:
            q = float(qty)
            p = float(price) if price else None
        except ValueError:
            q, p = -1.0, None
        if e is None or q <= 0 or q > float(e.max_qty if e else 0):
            return [_env("order_rejected", server_utc_timestamp=str(now_us),
                         utc_timestamp=str(now_us - 40), client_order_id=coid, price=price,
                         quantity=qty, reason="unknown symbol" if e is None else
                         "invalid quantity")]
        oid = self._next_oid()
        o = Order(body.get("side", "buy"), p if p is not None else e.mid, q, now_us)
        self.own[oid] = (coid, o, e.symbol)
        out = [_env("order_accepted", server_utc_timestamp=str(now_us),
                    utc_timestamp=str(now_us - 40), market_id=body.get("market_id", "0"),
                    tradeable_entity_id=str(e.id), symbol=e.symbol, side=o.side,
                    type=body.get("type", "LIMIT"), order_id=oid, client_order_id=coid,
                    quantity=qty, price=price)]
        if body.get("market_id", "0") == "0" and self.rng.random() < 0.6:
            out.append(self._fill(oid, now_us))
        return out

    def _fill(self, oid: str, now_us: int) -> Msg:
        coid, o, sym = self.own[oid]
        e = BY_SYMBOL[sym]
        part = round(o.qty / 2, e.qty_dp) if o.qty / 2 >= float(e.qty_step) else o.qty
        o.qty = round(o.qty - part, e.qty_dp)
        self._tid += 1
        state = "filled" if o.qty <= 0 else "partially_filled"
        msg = _env("execution", server_utc_timestamp=str(now_us), utc_timestamp=str(now_us - 40),
                   market_id="0", tradeable_entity_id=str(e.id), symbol=sym,
                   trade_id=str(self._tid), order_id=oid, client_order_id=coid,
                   executed_price=fmt(o.price, e.price_dp),
                   executed_quantity=fmt(part, e.qty_dp),
                   liquidity_flag=self.rng.choice(("added", "removed")),
                   price=fmt(o.price, e.price_dp), side=o.side, order_state=state)
        self.fills.append(msg["execution"])
        if o.qty <= 0:
            self.own.pop(oid)
        return msg

    def cancel(self, oid: str, now_us: int, user_tag: str | None = None) -> Msg | None:
        item = self.own.pop(oid, None)
        if item is None:
            return None
        coid, o, sym = item
        e = BY_SYMBOL[sym]
        return _env("cancel_order", server_utc_timestamp=str(now_us),
                    utc_timestamp=str(now_us - 40), tradeable_entity_id=str(e.id), symbol=sym,
                    order_id=oid, client_order_id=coid, filled_quantity=fmt(0, e.qty_dp),
                    reason="cancelled by user", user_tag=user_tag)

    def account_step(self, now_us: int) -> list[Msg]:
        """Activity of the account from its other sessions: an order placed, filled,
        cancelled or rejected now and then."""
        if self.rng.random() >= min(1.0, 0.02 * self.account_rate):
            return []
        r = self.rng.random()
        if self.own and r < 0.3:
            oid = self.rng.choice(sorted(self.own))
            return [self._fill(oid, now_us)]
        if self.own and r < 0.5:
            oid = self.rng.choice(sorted(self.own))
            msg = self.cancel(oid, now_us)
            return [msg] if msg else []
        self._coid += 1
        e = self.rng.choice(ENTITIES)
        body = {"client_order_id": f"web-{self._coid}", "symbol": e.symbol,
                "side": self.rng.choice(("buy", "sell")), "type": "LIMIT",
                "price": fmt(self._round(e, e.mid), e.price_dp),
                "quantity": e.qty_step if r < 0.9 else "99999999"}
        return self.new_order(body, now_us)

    def positions(self, now_us: int, user_tag: str) -> Msg:
        e = BY_ID[4]
        return _env("positions_response", server_utc_timestamp=str(now_us), user_tag=user_tag,
                    positions=[{"symbol": e.symbol, "deliverable_id": "7",
                                "product_type": e.product, "timestamp": str(now_us - 10**6),
                                "side": "buy", "size": "0.3", "average_entry_price": "16875.25",
                                "mark_price": fmt(e.mid, 1), "upnl": "22.425"}])

    def balances(self, now_us: int, user_tag: str) -> Msg:
        return _env("balances_response", server_utc_timestamp=str(now_us), user_tag=user_tag,
                    balances=[{"deliverable_id": "3", "symbol": "USD",
                               "cash_balance": "100000.123456789", "available_balance": "95000",
                               "reserved_balance": "5000.123456789",
                               "withdrawable_balance": "94000", "timestamp": str(now_us)},
                              {"deliverable_id": "1", "symbol": "BTC", "cash_balance": "1.5",
                               "available_balance": "1.5", "reserved_balance": "0",
                               "withdrawable_balance": "1.5", "timestamp": str(now_us)}])

    def trade_history(self, now_us: int, user_tag: str) -> Msg:
        return _env("trade_history_response", server_utc_timestamp=str(now_us),
                    user_tag=user_tag, executions=[{
                        "tradeable_entity_id": f["tradeable_entity_id"],
                        "trade_id": f["trade_id"], "order_id": f["order_id"],
                        "client_order_id": f["client_order_id"],
                        "executed_price": f["executed_price"],
                        "executed_quantity": f["executed_quantity"],
                        "liquidity_flag": f["liquidity_flag"], "order_price": f["price"],
                        "side": f["side"], "order_state": f["order_state"],
                        "server_utc_timestamp": f["server_utc_timestamp"]}
                        for f in self.fills[-50:]])
