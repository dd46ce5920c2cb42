"""OKX signing and authentication: the shared vectors (computed with ccxt.okx.sign), REST header errors,
the 30 s skew, demo/live keys, and the WebSocket login."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest

from tests.fakeokx import DEMO_API_KEY, DEMO_API_SECRET, DEMO_PASSPHRASE, FakeOkx
from tests.fakeokx.signing import parse_iso_ms, rest_prehash, sign, ws_login_prehash

from .helpers import OKX_DATA, RestClient, event, load, next_frame, subscribe, ws_close, ws_connect, ws_login

pytestmark = pytest.mark.skipif(not OKX_DATA.is_dir(), reason=f"shared OKX payloads not found at {OKX_DATA}")

VECTORS = load("signing_examples_SYNTH.json") if OKX_DATA.is_dir() else {"rest": [], "secret": ""}


@pytest.mark.parametrize("vector", VECTORS["rest"], ids=lambda v: v["description"])
def test_rest_vectors(vector: dict[str, Any]) -> None:
    headers = vector["headers"]
    prehash = rest_prehash(headers["OK-ACCESS-TIMESTAMP"], vector["method"], vector["requestPath"], vector["body"])
    assert prehash == vector["prehash"]
    assert sign(VECTORS["secret"], prehash) == headers["OK-ACCESS-SIGN"]


def test_ws_login_vector() -> None:
    login = VECTORS["ws_login"]
    arg = login["request"]["args"][0]
    assert ws_login_prehash(arg["timestamp"]) == login["prehash"]
    assert sign(VECTORS["secret"], login["prehash"]) == arg["sign"]


async def _vector_venue(fake_okx: FakeOkx, timestamp: str) -> None:
    fake_okx.add_account("test-api-key", VECTORS["secret"], "test-passphrase", {"USDT": "100000"})
    sent_ms = parse_iso_ms(timestamp)
    assert sent_ms is not None
    # The vectors are from 2020: move the venue's clock there so they are fresh.
    fake_okx.clock_offset_ms = sent_ms - int(time.time() * 1000)


@pytest.mark.parametrize("vector", VECTORS["rest"], ids=lambda v: v["description"])
async def test_the_venue_accepts_the_vectors_as_sent(fake_okx: FakeOkx, vector: dict[str, Any]) -> None:
    headers = {k: v for k, v in vector["headers"].items() if not (vector["method"] == "GET" and k == "Content-Type")}
    await _vector_venue(fake_okx, headers["OK-ACCESS-TIMESTAMP"])
    url = fake_okx.base_url + vector["requestPath"]
    async with aiohttp.ClientSession() as session:
        async with session.request(vector["method"], url, data=vector["body"] or None, headers=headers) as response:
            accepted = await response.json()
        assert response.status == 200, accepted
        assert accepted["code"] in ("0", "51603"), accepted  # the GET by ordId finds no such order

        tampered = {**headers, "OK-ACCESS-SIGN": sign("another-secret", vector["prehash"])}
        async with session.request(vector["method"], url, data=vector["body"] or None, headers=tampered) as response:
            assert response.status == 401
            assert await response.json() == load("rest_error_50113_invalid_sign_http401.json")


async def test_header_errors(rest: RestClient) -> None:
    status, body = await rest.get("account/balance", headers={"OK-ACCESS-KEY": None})  # type: ignore[dict-item]
    assert (status, body) == (401, load("rest_error_50103_missing_key_http401_ccxt_comment.json"))
    status, body = await rest.as_user("no-such-key", "s", "p").get("account/balance")
    assert (status, body) == (401, load("rest_error_50111_invalid_key_http401.json"))
    status, body = await rest.get("account/balance", headers={"OK-ACCESS-PASSPHRASE": "wrong"})
    assert (status, body["code"]) == (401, "50105")
    status, body = await rest.get("account/balance", timestamp="1607418537")
    assert (status, body["code"]) == (401, "50112")
    status, body = await rest.get("account/balance", headers={"OK-ACCESS-SIGN": None})  # type: ignore[dict-item]
    assert (status, body["code"]) == (401, "50106")
    # Public endpoints need no headers at all.
    status, body = await rest.get("public/time", private=False)
    assert status == 200 and body["code"] == "0"


async def test_thirty_seconds_of_skew(rest: RestClient) -> None:
    assert (await rest.get("account/balance", skew_ms=25_000))[0] == 200
    assert (await rest.get("account/balance", skew_ms=-25_000))[0] == 200
    status, body = await rest.get("account/balance", skew_ms=31_000)
    assert (status, body) == (401, {"msg": "Timestamp request expired", "code": "50102"})
    status, body = await rest.get("account/balance", skew_ms=-31_000)
    assert (status, body["code"]) == (401, "50102")


async def test_the_venue_clock_decides_the_skew(rest: RestClient, fake_okx: FakeOkx) -> None:
    fake_okx.clock_offset_ms = 40_000
    assert (await rest.get("account/balance"))[1]["code"] == "50102"
    assert (await rest.get("account/balance", skew_ms=40_000))[0] == 200


async def test_demo_and_live_keys_need_the_matching_header(rest: RestClient) -> None:
    demo = rest.as_user(DEMO_API_KEY, DEMO_API_SECRET, DEMO_PASSPHRASE, demo=True)
    assert (await demo.get("account/balance"))[0] == 200
    mismatch = load("rest_error_50101_env_mismatch_http401.json")
    assert await demo.get("account/balance", headers={"x-simulated-trading": None}) == (401, mismatch)  # type: ignore[dict-item]
    assert await rest.get("account/balance", headers={"x-simulated-trading": "1"}) == (401, mismatch)


async def test_ws_login(fake_okx: FakeOkx) -> None:
    ws = await ws_connect(fake_okx, "private")
    try:
        await subscribe(ws, {"channel": "orders", "instType": "SPOT"}, request_id="7")
        refused = await next_frame(ws, event("error"))
        assert (refused["code"], refused["msg"], refused["id"]) == ("60011", "Please log in", "7")
        failed = await ws_login(ws, secret="wrong-secret")
        assert (failed["event"], failed["code"], failed["msg"]) == ("error", "60009", "Login failed.")
        stale = await ws_login(ws, timestamp=str(int(time.time()) - 31))
        assert stale["code"] == "60006"
        ok = await ws_login(ws)
        assert ok == {"event": "login", "code": "0", "msg": "", "connId": ok["connId"]}
        await subscribe(ws, {"channel": "orders", "instType": "SPOT"})
        ack = await next_frame(ws, event("subscribe"))
        assert ack["arg"] == {"channel": "orders", "instType": "SPOT"}
    finally:
        await ws_close(ws)


async def test_ws_login_vector_against_the_venue(fake_okx: FakeOkx) -> None:
    arg = VECTORS["ws_login"]["request"]["args"][0]
    await _vector_venue(fake_okx, "2020-12-08T09:08:57.715Z")
    ws = await ws_connect(fake_okx, "private")
    try:
        await ws.send_json(VECTORS["ws_login"]["request"])
        answer = await next_frame(ws, lambda f: isinstance(f, dict) and "event" in f)
        assert (answer["event"], answer["code"]) == ("login", "0"), answer
        assert arg["apiKey"] == "test-api-key"
    finally:
        await ws_close(ws)


async def test_ws_keys_only_log_in_to_their_environment(fake_okx: FakeOkx) -> None:
    live = await ws_connect(fake_okx, "private")
    demo = await ws_connect(fake_okx, "private", demo=True)
    try:
        assert (await ws_login(live, DEMO_API_KEY, DEMO_API_SECRET, DEMO_PASSPHRASE))["code"] == "60032"
        assert (await ws_login(demo))["code"] == "60032"
        assert (await ws_login(demo, DEMO_API_KEY, DEMO_API_SECRET, DEMO_PASSPHRASE))["code"] == "0"
    finally:
        await ws_close(live)
        await ws_close(demo)
