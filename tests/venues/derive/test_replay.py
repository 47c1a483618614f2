"""Derive native replay: record a simulator run, serve it with ``serve_native``, record the
replay with the recorder itself, and compare the venue's frames per connection."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from recorder import journal as jr
from recorder.catalogue import Catalogue
from recorder.sim import Recording
from recorder.venues import CATALOGUE
from recorder.venues.derive.server import DEFAULT_SIGNER_KEY, DeriveServer
from tests.e2e import Live, Tally, journaled, run_scenario
from tests.venues.derive.e2e import channels_of, config
from tests.venues.replaying import record_native_replay

ENV = "DERIVE_REPLAY_KEY"
OPTS = {"currencies": ["ETH"], "refresh_seconds": 2.0, "ticker_interval": 100,
        "orderbook_depth": 10, "own_statuses": ["settled"]}


def _is_answer(data: bytes) -> bool:
    """A JSON-RPC answer (``id`` with ``result`` or ``error``): the replay server's own."""
    try:
        msg = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return isinstance(msg, dict) and "id" in msg and ("result" in msg or "error" in msg)


def _inbound(data_dir: Path, run: str) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for r in jr.read_run(data_dir, "derive", run):
        if r.kind == jr.KIND_IN:
            out.setdefault(r.conn, []).append(r.data)
    return out


def test_native_replay_round_trip_gives_the_same_frames_per_connection(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Excluded from the comparison: the JSON-RPC answers (get_all_currencies,
    get_instruments, get_time, login, subscribe/unsubscribe results), which the replay server
    generates for the replaying client instead of replaying the recorded ones (their ids,
    times and login result are the new session's). Everything else, notifications of every
    public and private channel and an unprompted frame the venue pushed, must come back
    byte for byte, in the same order, on the same connection."""
    monkeypatch.setenv(ENV, DEFAULT_SIGNER_KEY)
    first, second = tmp_path / "a" / "data", tmp_path / "b" / "data"

    async def record_sim() -> tuple[str, str]:
        server = DeriveServer(seed=7, rate=2.0, churn_seconds=0)
        await server.start()
        cfg = config(first, server.url, wallet=server.wallet, private_key_env=ENV, **OPTS)

        channels = Tally(server, channels_of)
        book = (1, "orderbook.ETH-PERP.1.10")
        wanted = [book, (1, "spot_feed.ETH"), (1, "auctions.watch"), (1, "30769.orders"),
                  (1, f"{server.wallet}.rfqs"), (1, "30770.best.quotes"),
                  (1, "30769.trades.settled")]

        async def scenario(stop: asyncio.Event) -> None:
            await server.until(lambda: all(channels()[c] for c in wanted) and sum(
                channels().values()) > 100, 30, "every channel, and some")
            gapped_at = channels()[book]
            assert server.gap("ETH-PERP", 2) == 1  # a publish_id gap, replayed as recorded
            server.inject('{"method":"server_notice","params":{"text":"maintenance"}}')
            await server.until(lambda: channels()[book] > gapped_at + 1, 30, "the gap")

        result = await run_scenario(cfg, server, scenario)
        return result.run_id, server.wallet

    run_a, wallet = asyncio.run(record_sim())
    servers: list[DeriveServer] = []
    import dataclasses

    import recorder.venues.derive as dv

    def keep(**opts: object) -> DeriveServer:  # the server, to look at it afterwards
        srv = dv.replay_server(**opts)
        servers.append(srv)
        return srv

    spec = dataclasses.replace(dv.VENUE, replay_server=keep)
    catalogue = Catalogue.of(*(spec if v.name == "derive" else v
                               for v in CATALOGUE.venues.values()))
    # the replay server answers login itself, verifying the signature with the sim's key
    run_b, published = record_native_replay(
        first, "derive", lambda url: config(second, url, wallet=wallet, private_key_env=ENV,
                                            **OPTS),
        speed=2.0, linger=0.5, catalogue=catalogue)
    replayed = servers[0]

    a_all, b_all = _inbound(first, run_a), _inbound(second, run_b)
    assert set(a_all) == set(b_all) == {"ws"}
    a = {c: [f for f in fs if not _is_answer(f)] for c, fs in a_all.items()}
    b = {c: [f for f in fs if not _is_answer(f)] for c, fs in b_all.items()}
    assert published["derive"] == len(a_all["ws"])  # every inbound frame went through publish
    assert len(a["ws"]) > 100
    assert b == a
    channels = {orjson.loads(f).get("params", {}).get("channel") for f in b["ws"]}
    assert {"orderbook.ETH-PERP.1.10", "spot_feed.ETH", "auctions.watch", "30769.orders",
            f"{wallet}.rfqs", "30770.best.quotes", "30769.trades.settled"} <= channels
    assert b'"server_notice"' in b"".join(b["ws"])
    # the replaying client got its own answers: login accepted, and the catalogue it was
    # served is the recorded one (the same get_instruments results as in the recording)
    answers_b = [orjson.loads(f) for f in b_all["ws"] if _is_answer(f)]
    assert any(m["id"].startswith("login:") and m.get("result") == [30769, 30770]
               for m in answers_b)
    ins = {orjson.dumps(m["result"]) for m in map(orjson.loads, a_all["ws"])
           if _is_answer(orjson.dumps(m)) and str(m["id"]).startswith("ins:")}
    ins_b = {orjson.dumps(m["result"]) for m in answers_b if m["id"].startswith("ins:")}
    assert ins_b and ins_b <= ins
    assert not any("error" in m for m in answers_b)
    assert replayed.recording is not None and replayed.wallet == wallet


def test_publish_routes_by_exact_channel_and_login_checks_the_signature(
        tmp_path: Path) -> None:
    """Without a recording: notifications go only to sessions subscribed to that exact
    channel; answers are never forwarded; a bad login signature is refused (14014) and
    private channels need a login; a configured signer address is accepted."""
    import aiohttp

    from recorder.venues.derive import replay_server
    from recorder.venues.derive.adapter import address_of, sign_login

    other, stranger = "0x" + "11" * 32, "0x" + "22" * 32  # private keys
    srv = replay_server(api_keys=[address_of(other)])

    async def main() -> None:
        await srv.start("127.0.0.1", 0)
        try:
            async with aiohttp.ClientSession() as http:
                ws1 = await http.ws_connect(srv.url)
                ws2 = await http.ws_connect(srv.url)

                async def call(ws: aiohttp.ClientWebSocketResponse, rid: str, method: str,
                               params: dict) -> dict:
                    await ws.send_str(orjson.dumps(
                        {"id": rid, "method": method, "params": params}).decode())
                    return orjson.loads((await ws.receive()).data)

                assert not srv.subscribed()
                r = await call(ws1, "1", "subscribe", {"channels": [
                    "orderbook.ETH-PERP.1.10", "30769.orders"]})
                assert r["result"]["status"]["orderbook.ETH-PERP.1.10"] == "ok"
                assert "14022" in r["result"]["status"]["30769.orders"]
                await call(ws2, "1", "subscribe", {"channels": ["orderbook.ETH-PERP.1.20"]})
                assert srv.subscribed()
                ts = str(int((await call(ws2, "t", "public/get_time", {}))["result"]))
                bad = sign_login(stranger, ts)
                r = await call(ws2, "2", "public/login", {"wallet": srv.wallet,
                                                          "timestamp": ts, "signature": bad})
                assert r["error"]["code"] == 14014
                sig = sign_login(other, ts)
                r = await call(ws2, "3", "public/login", {"wallet": srv.wallet,
                                                          "timestamp": ts, "signature": sig})
                assert r["result"] == [30769, 30770]
                book = b'{"method":"subscription","params":{"channel":"orderbook.ETH-PERP.1.10",' \
                       b'"data":{"publish_id":1}}}'
                assert srv.publish(b'{"id":"x","result":[]}', "ws") == 0
                assert srv.publish(book, "ws") == 1
                assert (await ws1.receive()).data == book.decode()
                assert srv.publish(b'{"method":"notice"}', "ws") == 2  # unprompted: everyone
                assert (await ws1.receive()).data == (await ws2.receive()).data
                await ws1.close()
                await ws2.close()
        finally:
            await srv.stop()

    asyncio.run(main())


def test_recorded_catalogue_follows_the_replay_position(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """get_instruments answers with the recorded answer current at the replay position:
    the opening catalogue before the clock starts (or the one current at ``start``), the
    mid-run listing once its recorded answer has been published."""
    from recorder.replay import raw_frames
    from recorder.venues.derive import replay_server

    monkeypatch.setenv(ENV, DEFAULT_SIGNER_KEY)
    data_dir = tmp_path / "data"
    listed: list[str] = []
    when: list[int] = []

    async def record_sim() -> None:
        server = DeriveServer(seed=3, churn_seconds=0)
        await server.start()
        cfg = config(data_dir, server.url, **{**OPTS, "refresh_seconds": 0.3})

        live = Live(data_dir, "derive", rows=False)

        def catalogues(name: str | None = None) -> int:  # get_instruments answers sent
            return sum(1 for t in server.ledger_for(1) if '"result"' in t and '"instrument_name"' in t
                       and (name is None or f'"{name}"' in t))

        async def scenario(stop: asyncio.Event) -> None:
            import time

            # the opening catalogue, then a listing that a refresh (every 0.3 s) brings
            await server.until(catalogues, 30, "the opening catalogue")
            listed.append(server.list_instrument("ETH"))
            await server.until(lambda: catalogues(listed[0]), 30, "the listing's catalogue")
            await server.until(lambda: journaled(server, live), 30, "it journaled")
            when.append(time.time_ns())  # after the listing's answer was received

        await run_scenario(cfg, server, scenario, journal=live)

    asyncio.run(record_sim())
    key = ("public/get_instruments",
           '{"currency":"ETH","expired":false,"instrument_type":"option"}')

    def names(srv: DeriveServer) -> set[str]:
        return {i["instrument_name"] for i in srv._catalogue[key]}

    srv = replay_server(recording=Recording(data_dir, "derive"))
    assert srv.wallet and listed[0] not in names(srv) and len(names(srv)) == 12
    for rec in raw_frames(data_dir, "derive"):
        srv.publish(rec.data, rec.conn)
    assert listed[0] in names(srv)
    late = replay_server(recording=Recording(data_dir, "derive", start=when[0]))
    assert listed[0] in names(late)
