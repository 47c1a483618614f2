"""Totalis tables: one per event type of the three SSE streams and of the post-trade WebSocket.

Sources (docs.totalis.trade, source repository ``totalistrading/docs``; notes
``shared/venues/000-totalis.md``):
- MM firehose, https://docs.totalis.trade/api-reference/quote-service-mm/stream
- user quote-request stream, https://docs.totalis.trade/api-reference/quote-service/stream
- cashout stream, https://docs.totalis.trade/api-reference/quote-service/cashout-stream
- WebSocket, https://docs.totalis.trade/guides/websocket
- event catalog, https://docs.totalis.trade/guides/event-catalog (position:failed,
  position:bought_back, rfq:status/cancelled/expired, vault:deposited/withdrawn); webhooks,
  https://docs.totalis.trade/guides/webhooks (the payloads of the same moments); the removed
  ``rfqs:open`` channel of older WebSocket pages (rfq:created, quote:submitted)

Every SSE row carries ``sse_id``: the event's id as the standard defines it (its own ``id:``
line, else the last id in force on that stream), null when the stream never sent one.
Rows of the per-request streams carry the request id taken from the stream they came on.
ISO-8601 times are stored as timestamps (ns, UTC); nested fields keep the venue's names.
Keys starting with ``_`` are set by the adapter, not the venue.
"""

from __future__ import annotations

import pyarrow as pa

from recorder.schema import TS, Maps, Table, by_receipt_when_null, cols, extra_col, mapped

F, INT, S, B = pa.float64(), pa.int64(), pa.string(), pa.bool_()
V = "totalis"

INPUT_LEG = pa.struct([("market_ticker", S), ("side", S), ("venue", S)])
LEG = pa.struct([("id", S), ("event_ticker", S), ("market_ticker", S), ("side", S),
                 ("venue", S), ("current_yes_price", F), ("current_no_price", F)])
CASHOUT_LEG = pa.struct([("id", S), ("event_ticker", S), ("market_ticker", S), ("side", S),
                         ("venue", S), ("resolution", S)])
BEST_QUOTE = pa.struct([("id", S), ("payout_odds", F), ("user_cost", F), ("total_payout", F),
                        ("mm_cost", F), ("valid_until", TS), ("market_maker_id", S)])
BUYBACK_QUOTE = pa.struct([("id", S), ("market_maker_id", S), ("buyback_price", F),
                           ("mm_pays_user", B), ("valid_until", TS), ("net_received", F)])
MM_QUOTE = pa.struct([("payout_odds", F), ("user_cost", F), ("total_payout", F),
                      ("mm_cost", F), ("valid_until", TS)])
EXPOSURE_LEG = pa.struct([("venue", S), ("event_ticker", S), ("market_ticker", S),
                          ("side", S)])

RECEIPT = ("run_id", "conn_id", "recv_seq")  # connection-level frames: each receipt is distinct
SSE_ID = ("sse_id", S, "SSE event id (own id: line, else the last one in force); resume cursor",
          "_sse_id")
SNAP = ("in_snapshot", B, "sent between snapshot_begin and snapshot_complete (a replay of an "
        "active request), not as a live creation", "_snapshot")
QR_FROM_STREAM = ("quote_request_id", S, "the request whose stream carried the event",
                  "_stream_id")
CO_FROM_STREAM = ("cashout_request_id", S, "the cashout request whose stream carried the event",
                  "_stream_id")
CHANNEL = ("channel", S, "channel named in the envelope (the docs show none; null then)",
           "_channel")
QUOTE_ID = ("quote_id", S, "the MM's quote (uuid)")
RFQ_ID = ("rfq_id", S, "the RFQ (parlay ticket) created at commit (uuid)")
POS_TS = ("timestamp", TS, "venue time of the position event (also ts_event)")

REQUEST_COLS = (
    ("quote_request_id", S, "quote request id (uuid)", "id"),
    ("user_id", S, "requesting user (Privy DID)"),
    ("input_legs", pa.list_(INPUT_LEG), "the legs as the user entered them"),
    ("legs", pa.list_(LEG), "resolved legs; current_*_price are the venue's prices at creation"),
    ("bet_amount", F, "gross wager, USDC"),
    ("user_stake", F, "stake net of the taker fee, USDC (what MMs price against)"),
    ("implied_probability", F, "product of the legs' probabilities"),
    ("version", INT, "bumped by quote_request:updated; quotes on older versions are void"),
    ("request_hash", S, "'sha256:...' of the request version; quotes must echo it"),
    ("expires_at", TS, "end of the auction"),
    SNAP, SSE_ID)


def _t(name: str, doc: str, columns: tuple, key: tuple[str, ...],
       event_time: str | None = None) -> Table:
    # ignore_keys empty: rows are built from payloads (never the WS envelope's `type`), so a
    # payload field called `type` must reach `extra` like any other undeclared field.
    return Table(name=f"{V}_{name}", venue=V, doc=doc, columns=(*cols(*columns), extra_col()),
                 dedup_key=key, event_time=event_time, event_time_unit="ns",
                 ignore_keys=frozenset())


# --- MM firehose: GET /v1/mm/quote-requests/stream (conn_id "mm") ------------------------------

# The stream's own events, named by their SSE id on that stream (a second recorder's copy of
# the same event is one row); without an id, per receipt.
_CONN_SSE = ("conn_id", "sse_id", *by_receipt_when_null("sse_id"))
CONNECTED = _t("connected", "MM stream: first event of every connection, with the MM's id.",
               (("mm_id", S, "the MM's id (a Privy DID, same as the WS auth user_id)"), SSE_ID),
               _CONN_SSE)
SNAPSHOT_BEGIN = _t("snapshot_begin", "MM stream: start of the snapshot of active requests (on "
                    "connect, and on a reconnect the server could not resume).",
                    (("page_size", INT, "requests per page"), SSE_ID), _CONN_SSE)
SNAPSHOT_COMPLETE = _t("snapshot_complete", "MM stream: end of the snapshot; live events follow.",
                       (("pages", INT, ""), ("total", INT, "requests in the snapshot"), SSE_ID),
                       _CONN_SSE)
QUOTE_REQUEST = _t("quote_request", "MM stream `quote_request`: a new request, or an active one "
                   "replayed by a snapshot (in_snapshot).", REQUEST_COLS,
                   ("sse_id", "quote_request_id", "version", "request_hash"))
QUOTE_REQUEST_UPDATED = _t("quote_request_updated", "MM stream `quote_request:updated` (colon): "
                           "the request moved to a new version and hash.", REQUEST_COLS,
                           ("sse_id", "quote_request_id", "version", "request_hash"))
QUOTE_REQUEST_EXPIRED = _t(
    "quote_request_expired", "MM stream `quote_request_expired` (underscore): the request "
    "closed.",
    (("quote_request_id", S, "", "id"), ("reason", S, "committed | cancelled | expired"),
     ("won", B, "committed closes: true if our quote won; null when absent (outcome unknown)"),
     SSE_ID),
    ("sse_id", "quote_request_id", "reason"))
CASHOUT_REQUEST = _t(
    "cashout_request", "MM stream `cashout_request`: an early-cashout auction opened.",
    (("cashout_request_id", S, "auction id (not `id`)"),
     ("position_id", S, "on-chain position id, 32 hex chars"),
     ("legs", pa.list_(CASHOUT_LEG), "resolution: unresolved | won | lost | void"),
     ("user_stake", F, "USDC"), ("mm_risk", F, "counterparty's locked risk, USDC"),
     ("total_payout", F, "USDC; ceiling of any bid"), ("payout_odds", F, ""),
     ("version", INT, "1 today"), ("expires_at", TS, "auction end (about 10 s out)"), SNAP,
     SSE_ID),
    ("sse_id", "cashout_request_id", "version"))

# --- per quote request: GET /v1/quote-requests/{id}/stream (conn_id "qr:<id>") -----------------

QR_BEST_QUOTE = _t("qr_best_quote", "Request stream `best_quote`: the book's best quote after "
                   "each change (null when empty). A jump in book_seq is a gap in session_events.",
                   (QR_FROM_STREAM, ("book_seq", INT, "monotonic per request"),
                    ("version", INT, ""), ("request_hash", S, ""),
                    ("best_quote", BEST_QUOTE, "null when no quote is live"), SSE_ID),
                   ("quote_request_id", "book_seq", "sse_id"))
QR_STATUS = _t("qr_status", "Request stream `status`: the request left `active`; one terminal "
               "event follows and the stream closes.",
               (QR_FROM_STREAM, ("status", S, "committed | cancelled | expired"),
                ("committed_rfq_id", S, "the RFQ created, when committed"), SSE_ID),
               ("quote_request_id", "status", "sse_id"))
QR_COMMITTED = _t("qr_committed", "Request stream `committed`: the request became an RFQ.",
                  (("quote_request_id", S, ""), RFQ_ID, SSE_ID),
                  ("quote_request_id", "sse_id"))
QR_CANCELLED = _t("qr_cancelled", "Request stream `cancelled`.",
                  (("quote_request_id", S, ""), SSE_ID), ("quote_request_id", "sse_id"))
QR_EXPIRED = _t("qr_expired", "Request stream `expired`: expires_at passed without a commit.",
                (("quote_request_id", S, ""), SSE_ID), ("quote_request_id", "sse_id"))

# --- per cashout request: GET /v1/cashout-requests/{id}/stream (conn_id "co:<id>") -------------

CASHOUT_BEST_QUOTE = _t("cashout_best_quote", "Cashout stream `best_quote`: the counterparty's "
                        "buyback quote (null when none is live).",
                        (CO_FROM_STREAM, ("book_seq", INT, "monotonic per request"),
                         ("version", INT, ""),
                         ("best_quote", BUYBACK_QUOTE, "net_received only when computable"),
                         SSE_ID),
                        ("cashout_request_id", "book_seq", "sse_id"))
CASHOUT_STATUS = _t("cashout_status", "Cashout stream `status`: terminal; the stream closes.",
                    (CO_FROM_STREAM, ("status", S, "committed | declined | expired | cancelled"),
                     SSE_ID),
                    ("cashout_request_id", "status", "sse_id"))

# --- the post-trade WebSocket wss://api.totalis.trade/ws (conn_id "ws") -------------------------

AUTH_SUCCESS = _t("auth_success", "WS `auth:success`.",
                  (("user_id", S, "Privy DID; the key of mm:quotes:{mm_id}"),
                   ("user_type", S, "user | market_maker ...")), RECEIPT)
AUTH_ERROR = _t("auth_error", "WS `auth:error`: the key was refused.", (("message", S, ""),),
                RECEIPT)
PONG = _t("pong", "WS `pong`, the reply to our `ping`.", (("timestamp", TS, "server time"),),
          RECEIPT, event_time="timestamp")
WS_ERROR = _t("ws_error", "WS `error` (not in the docs: the shape our simulator uses for a "
              "refused message, {type, message, code?}).",
              (("message", S, ""), ("code", S, "")), RECEIPT)
QUOTE_ACCEPTED = _t("quote_accepted", "mm:quotes `quote:accepted`: a user committed our quote; "
                    "confirm before the deadline. Joins mm_quote_accepted on quote_id (either "
                    "may come first).",
                    (QUOTE_ID, RFQ_ID, ("confirmation_deadline", TS, ""), CHANNEL), ("quote_id",))
MM_QUOTE_ACCEPTED = _t(
    "mm_quote_accepted", "mm:quotes `mm_quote:accepted`: the accepted quote's details for the "
    "winning MM.",
    (RFQ_ID, QUOTE_ID, ("market_maker_id", S, ""), ("user_id", S, ""),
     ("source", S, "e.g. quote_request_commit"), ("quote_request_id", S, ""),
     ("draft_quote_id", S, "informational only (not documented as stable)"),
     ("request_version", INT, ""), ("request_hash", S, ""),
     ("confirmation_deadline", TS, ""), ("accepted_at", TS, "also ts_event"),
     ("quote", MM_QUOTE, "payout_odds, user_cost, total_payout, mm_cost, valid_until"),
     ("exposure_legs", pa.list_(EXPOSURE_LEG), "legs the MM is now exposed to"), CHANNEL),
    ("quote_id",), event_time="accepted_at")
QUOTE_CONFIRMED = _t("quote_confirmed", "mm:quotes `quote:confirmed`: vault settlement begins.",
                     (QUOTE_ID, RFQ_ID, ("execution_id", S, ""), CHANNEL), ("quote_id",))
QUOTE_EXECUTED = _t("quote_executed", "mm:quotes `quote:executed`: on-chain position created.",
                    (QUOTE_ID, RFQ_ID, CHANNEL), ("quote_id",))
QUOTE_EXPIRED = _t("quote_expired", "mm:quotes `quote:expired`: not confirmed in time.",
                   (QUOTE_ID, RFQ_ID, CHANNEL), ("quote_id",))
QUOTE_REJECTED = _t("quote_rejected", "mm:quotes `quote:rejected`: another quote was accepted.",
                    (QUOTE_ID, RFQ_ID, ("reason", S, ""), CHANNEL), ("quote_id",))
QUOTE_WITHDRAWN = _t("quote_withdrawn", "mm:quotes `quote:withdrawn`: withdrawn by the MM (or "
                     "written back when the MM missed the deadline).",
                     (QUOTE_ID, RFQ_ID, CHANNEL), ("quote_id",))
POSITION_CREATED = _t("position_created", "rfq `position:created`: vault position created.",
                      (RFQ_ID, ("position_pda", S, "Solana address"), POS_TS, CHANNEL),
                      ("rfq_id",), event_time="timestamp")
POSITION_SETTLED = _t("position_settled", "rfq `position:settled`.",
                      (RFQ_ID, ("position_pda", S, ""), ("outcome", S, "e.g. user_wins"),
                       ("tx_signature", S, "Solana signature (base58)"), POS_TS,
                       ("quote_id", S, "added 2026-05 'to match backend'"), CHANNEL),
                      ("rfq_id", "tx_signature"), event_time="timestamp")
POSITION_CANCELLED = _t("position_cancelled", "rfq `position:cancelled`: collateral unlocked.",
                        (RFQ_ID, ("position_pda", S, ""), ("reason", S, ""), POS_TS, CHANNEL),
                        ("rfq_id",), event_time="timestamp")
# Several errors may hit one RFQ (retries); the key adds the time and text so that distinct
# errors are not collapsed.
POSITION_ERROR = _t("position_error", "rfq `position:error` (also copied to mm:quotes).",
                    (RFQ_ID, ("error", S, ""), POS_TS, CHANNEL),
                    ("rfq_id", "timestamp", "error"), event_time="timestamp")

# --- cross-venue views (recorder.schema.CROSS_VIEWS): the quote-request side ---------------

# A parlay's legs as text: venue:market_ticker:side, in order.
_LEGS = "array_to_string([l.venue || ':' || l.market_ticker || ':' || l.side FOR l IN legs], ' / ')"


def _qr(event: str, status: str | None = None, **more: str) -> Maps:
    """A quote request's event (the requester buys the parlay; size is the stake)."""
    cols = {"rfq_id": "quote_request_id", "event": f"'{event}'", **more}
    if status:
        cols["status"] = status
    return Maps("rfq_events", cols)


_REQ = {"instrument": _LEGS, "side": "'buy'", "size": "user_stake"}
QUOTE_REQUEST = mapped(QUOTE_REQUEST, _qr("quote_request", "'active'", **_REQ))
QUOTE_REQUEST_UPDATED = mapped(QUOTE_REQUEST_UPDATED,
                               _qr("quote_request_updated", "'active'", **_REQ))
QUOTE_REQUEST_EXPIRED = mapped(QUOTE_REQUEST_EXPIRED, _qr("quote_request_expired", "'expired'"))
QR_STATUS = mapped(QR_STATUS, _qr("status", "status"))
QR_COMMITTED = mapped(QR_COMMITTED, _qr("committed", "'committed'"))
QR_CANCELLED = mapped(QR_CANCELLED, _qr("cancelled", "'cancelled'"))
QR_EXPIRED = mapped(QR_EXPIRED, _qr("expired", "'expired'"))
# A cashout is an RFQ the other way: the position's holder sells it back.
CASHOUT_REQUEST = mapped(CASHOUT_REQUEST, Maps("rfq_events", {
    "rfq_id": "cashout_request_id", "event": "'cashout_request'", "status": "'active'",
    "instrument": _LEGS, "side": "'sell'", "size": "user_stake"}))
CASHOUT_STATUS = mapped(CASHOUT_STATUS, Maps("rfq_events", {
    "rfq_id": "cashout_request_id", "event": "'cashout_status'", "status": "status"}))
QR_BEST_QUOTE = mapped(QR_BEST_QUOTE, Maps("quote_events", {
    "quote_id": "best_quote.id", "rfq_id": "quote_request_id", "event": "'best_quote'",
    "side": "'sell'", "price": "best_quote.payout_odds", "size": "best_quote.user_cost",
    "maker": "best_quote.market_maker_id"}, where="best_quote IS NOT NULL"))
CASHOUT_BEST_QUOTE = mapped(CASHOUT_BEST_QUOTE, Maps("quote_events", {
    "quote_id": "best_quote.id", "rfq_id": "cashout_request_id", "event": "'cashout_best_quote'",
    "side": "'buy'", "price": "best_quote.buyback_price", "maker": "best_quote.market_maker_id"},
    where="best_quote IS NOT NULL"))

SSE_TABLES = (CONNECTED, SNAPSHOT_BEGIN, SNAPSHOT_COMPLETE, QUOTE_REQUEST, QUOTE_REQUEST_UPDATED,
              QUOTE_REQUEST_EXPIRED, CASHOUT_REQUEST, QR_BEST_QUOTE, QR_STATUS, QR_COMMITTED,
              QR_CANCELLED, QR_EXPIRED, CASHOUT_BEST_QUOTE, CASHOUT_STATUS)
# --- the event catalog's other WebSocket events, and the legacy rfqs:open events ---------------
# The catalog names these events and what they mean, but gives field lists only for some
# (position:bought_back); the rest are read with the fields the same moment carries in the
# webhooks and in its sibling events (inferred). Whatever else arrives lands in `extra`.

POSITION_FAILED = _t(
    "position_failed", "rfq `position:failed`: a creation attempt failed and will be retried "
    "(event catalog, 'Executed on-chain'). Fields inferred from position:error.",
    (RFQ_ID, ("error", S, ""), POS_TS, CHANNEL),
    ("rfq_id", "timestamp", "error"), event_time="timestamp")
POSITION_BOUGHT_BACK = _t(
    "position_bought_back", "rfq `position:bought_back`: an early cashout closed the position "
    "(also on the MM's mm:quotes and identity-only connections: dedup on tx_signature).",
    (RFQ_ID, ("position_pda", S, ""), ("amount", F, "buyback amount, decimal USDC"),
     ("mm_pays_user", B, "the maker pays the user (else the user pays)"),
     ("tx_signature", S, "Solana signature (base58)"), QUOTE_ID, POS_TS, CHANNEL),
    ("rfq_id", "tx_signature"), event_time="timestamp")
_VAULT = (("amount_usdc", F, "decimal USDC (webhook funds.* field)"),
          ("vault_balance", F, "gross vault balance after the move, decimal USDC"),
          ("occurred_at", TS, "webhook field; also ts_event"), CHANNEL)
VAULT_DEPOSITED = _t(
    "vault_deposited", "`vault:deposited` to the account's own connections (event catalog "
    "note). Fields from the funds.deposited webhook (inferred for the WebSocket).",
    _VAULT, ("occurred_at", "amount_usdc", "vault_balance"), event_time="occurred_at")
VAULT_WITHDRAWN = _t(
    "vault_withdrawn", "`vault:withdrawn` to the account's own connections; fields from the "
    "funds.withdrawn webhook (inferred).",
    _VAULT, ("occurred_at", "amount_usdc", "vault_balance"), event_time="occurred_at")
RFQ_STATUS = _t(
    "rfq_status", "rfq `rfq:status`: the RFQ moved to accepted | confirmed | executed | "
    "cancelled (event catalog); also on the legacy rfqs:open channel.",
    (RFQ_ID, ("status", S, "accepted | confirmed | executed | cancelled (| others)"),
     ("accepted_quote_id", S, "as in the parlay.status_changed webhook (inferred)"), POS_TS,
     CHANNEL),
    ("rfq_id", "status"), event_time="timestamp")
RFQ_CANCELLED = _t(
    "rfq_cancelled", "rfq `rfq:cancelled`: the parlay was cancelled (pre- or post-commit); "
    "also on the legacy rfqs:open channel.",
    (RFQ_ID, POS_TS, CHANNEL), ("rfq_id",), event_time="timestamp")
RFQ_EXPIRED = _t(
    "rfq_expired", "rfq `rfq:expired`: the whole parlay expired; also on the legacy rfqs:open "
    "channel.",
    (RFQ_ID, POS_TS, CHANNEL), ("rfq_id",), event_time="timestamp")
RFQ_CREATED = _t(
    "rfq_created", "Legacy `rfq:created` (the removed rfqs:open channel: every open RFQ, for "
    "MMs). Its field list was not published; read with the request's fields (inferred).",
    (RFQ_ID, ("user_id", S, ""), ("status", S, ""),
     ("legs", pa.list_(LEG), "as the quote request's legs"), ("bet_amount", F, "USDC"),
     ("user_stake", F, "USDC"), ("expires_at", TS, ""), ("created_at", TS, ""), CHANNEL),
    ("rfq_id",), event_time="created_at")
QUOTE_SUBMITTED = _t(
    "quote_submitted", "Legacy `quote:submitted` (rfqs:open): a maker quoted an open RFQ. "
    "Fields inferred from the MM quote objects.",
    (QUOTE_ID, RFQ_ID, ("market_maker_id", S, ""), ("payout_odds", F, ""),
     ("user_cost", F, ""), ("total_payout", F, ""), ("mm_cost", F, ""),
     ("valid_until", TS, ""), ("status", S, ""), CHANNEL),
    ("quote_id",))

# --- cross-venue views: the RFQ, our quotes and our positions (WebSocket) -------------------


def _quote(event: str, **more: str) -> Maps:
    """Our quote's event (we sell the parlay: price is the payout odds, size the user's cost)."""
    return Maps("quote_events", {"quote_id": "quote_id", "rfq_id": "rfq_id",
                                 "event": f"'{event}'", "side": "'sell'", **more})


QUOTE_SUBMITTED = mapped(QUOTE_SUBMITTED, _quote(
    "submitted", status="status", price="payout_odds", size="user_cost", maker="market_maker_id"))
QUOTE_ACCEPTED = mapped(QUOTE_ACCEPTED, _quote("accepted", status="'accepted'"))
MM_QUOTE_ACCEPTED = mapped(MM_QUOTE_ACCEPTED, _quote(
    "mm_quote_accepted", status="'accepted'", price="quote.payout_odds", size="quote.user_cost",
    maker="market_maker_id"))
QUOTE_CONFIRMED = mapped(QUOTE_CONFIRMED, _quote("confirmed", status="'confirmed'"))
QUOTE_EXECUTED = mapped(QUOTE_EXECUTED, _quote("executed", status="'executed'"))
QUOTE_EXPIRED = mapped(QUOTE_EXPIRED, _quote("expired", status="'expired'"))
QUOTE_REJECTED = mapped(QUOTE_REJECTED, _quote("rejected", status="'rejected'"))
QUOTE_WITHDRAWN = mapped(QUOTE_WITHDRAWN, _quote("withdrawn", status="'withdrawn'"))


def _rfq(event: str, status: str, **more: str) -> Maps:
    return Maps("rfq_events", {"rfq_id": "rfq_id", "event": f"'{event}'", "status": status,
                               **more})


RFQ_CREATED = mapped(RFQ_CREATED, _rfq("rfq_created", "status", instrument=_LEGS, side="'buy'",
                                       size="user_stake"))
RFQ_STATUS = mapped(RFQ_STATUS, _rfq("rfq_status", "status", quote_id="accepted_quote_id"))
RFQ_CANCELLED = mapped(RFQ_CANCELLED, _rfq("rfq_cancelled", "'cancelled'"))
RFQ_EXPIRED = mapped(RFQ_EXPIRED, _rfq("rfq_expired", "'expired'"))


def _position(status: str) -> Maps:
    """A parlay position's life (no size or price on these events: the RFQ has them)."""
    return Maps("positions", {"instrument": "rfq_id", "status": f"'{status}'"})


POSITION_CREATED = mapped(POSITION_CREATED, _position("created"))
POSITION_SETTLED = mapped(POSITION_SETTLED, _position("settled"))
POSITION_CANCELLED = mapped(POSITION_CANCELLED, _position("cancelled"))
POSITION_BOUGHT_BACK = mapped(POSITION_BOUGHT_BACK, _position("bought_back"))

WS_TABLES = (AUTH_SUCCESS, AUTH_ERROR, PONG, WS_ERROR, QUOTE_ACCEPTED, MM_QUOTE_ACCEPTED,
             QUOTE_CONFIRMED, QUOTE_EXECUTED, QUOTE_EXPIRED, QUOTE_REJECTED, QUOTE_WITHDRAWN,
             POSITION_CREATED, POSITION_SETTLED, POSITION_CANCELLED, POSITION_ERROR,
             POSITION_FAILED, POSITION_BOUGHT_BACK, VAULT_DEPOSITED, VAULT_WITHDRAWN,
             RFQ_STATUS, RFQ_CANCELLED, RFQ_EXPIRED, RFQ_CREATED, QUOTE_SUBMITTED)
TABLES = SSE_TABLES + WS_TABLES
