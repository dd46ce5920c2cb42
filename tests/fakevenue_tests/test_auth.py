"""SIGNED endpoint security: API key, HMAC-SHA256 signature over totalParams, timestamp/recvWindow."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
import yarl
from binance import AsyncClient
from binance.exceptions import BinanceAPIException

from tests.fakevenue import DEFAULT_API_KEY, DEFAULT_API_SECRET, FakeVenue, create_async_client


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def sign(payload: str, secret: str = DEFAULT_API_SECRET) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


async def expect_error(call: object, status: int, code: int) -> BinanceAPIException:
    with pytest.raises(BinanceAPIException) as err:
        await call  # type: ignore[misc]
    assert (err.value.status_code, err.value.code) == (status, code)
    return err.value


async def test_wrong_secret_is_an_invalid_signature(fake_venue: FakeVenue, fast_binance_websockets: None) -> None:
    client = await create_async_client(fake_venue, DEFAULT_API_KEY, "not-the-secret")
    try:
        error = await expect_error(client.get_account(), 400, -1022)
        assert error.message == "Signature for this request is not valid."
        await expect_error(client.order_market_buy(symbol="BTCUSDT", quantity="0.001"), 400, -1022)
    finally:
        await client.close_connection()
    assert fake_venue.list_orders() == []


async def test_missing_and_unknown_api_keys(fake_venue: FakeVenue, fast_binance_websockets: None) -> None:
    no_key = await create_async_client(fake_venue, None, DEFAULT_API_SECRET)
    # Shaped like a Binance key (64 letters and digits), but nobody's.
    unknown = await create_async_client(fake_venue, "Zq7" * 21 + "X", DEFAULT_API_SECRET)
    try:
        error = await expect_error(no_key.get_account(), 401, -2014)
        assert error.message == "API-key format invalid."
        error = await expect_error(unknown.get_open_orders(), 401, -2015)
        assert error.message == "Invalid API-key, IP, or permissions for action."
    finally:
        await no_key.close_connection()
        await unknown.close_connection()


async def test_timestamp_outside_recv_window(binance_client: AsyncClient) -> None:
    binance_client.timestamp_offset = -20_000  # python-binance sends recvWindow=10000
    error = await expect_error(binance_client.get_account(), 400, -1021)
    assert error.message == "Timestamp for this request is outside of the recvWindow."
    binance_client.timestamp_offset = 5_000
    error = await expect_error(binance_client.get_account(), 400, -1021)
    assert error.message == "Timestamp for this request was 1000ms ahead of the server's time."
    binance_client.timestamp_offset = 0
    await binance_client.get_account()


async def test_server_clock_skew_is_absorbed_by_the_client_offset(fake_venue: FakeVenue) -> None:
    fake_venue.clock_offset_ms = 30_000
    client = await create_async_client(fake_venue, DEFAULT_API_KEY, DEFAULT_API_SECRET)
    try:
        assert abs(client.timestamp_offset - 30_000) < 1000
        await client.get_account()
    finally:
        await client.close_connection()


async def test_total_params_is_query_string_then_body(fake_venue: FakeVenue, http: aiohttp.ClientSession) -> None:
    query = "symbol=BTCUSDT&side=BUY&type=MARKET"
    body = f"quantity=0.001&timestamp={fake_venue.now_ms()}"
    url = f"{fake_venue.rest_url}/v3/order?{query}"
    headers = {"X-MBX-APIKEY": DEFAULT_API_KEY, "Content-Type": "application/x-www-form-urlencoded"}
    async with http.post(url, data=f"{body}&signature={sign(query + body)}", headers=headers) as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["status"] == "FILLED"
    # The signature must cover the payload exactly as sent: a signature over the query alone fails.
    async with http.post(url, data=f"{body}&signature={sign(query)}", headers=headers) as response:
        assert response.status == 400
        assert (await response.json()) == {"code": -1022, "msg": "Signature for this request is not valid."}


async def test_signature_is_over_the_percent_encoded_payload(
    fake_venue: FakeVenue, http: aiohttp.ClientSession
) -> None:
    params = (
        f"symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.001&newClientOrderId=a%3Ab&timestamp={fake_venue.now_ms()}"
    )
    url = yarl.URL(f"{fake_venue.rest_url}/v3/order?{params}&signature={sign(params)}", encoded=True)
    async with http.post(url, headers={"X-MBX-APIKEY": DEFAULT_API_KEY}) as r:
        assert r.status == 200, await r.text()
        assert (await r.json())["clientOrderId"] == "a:b"


async def test_recv_window_limit_and_missing_timestamp(fake_venue: FakeVenue, http: aiohttp.ClientSession) -> None:
    headers = {"X-MBX-APIKEY": DEFAULT_API_KEY}
    params = f"timestamp={fake_venue.now_ms()}&recvWindow=70000"
    async with http.get(f"{fake_venue.rest_url}/v3/account?{params}&signature={sign(params)}", headers=headers) as r:
        assert (r.status, (await r.json())["code"]) == (400, -1131)
    params = "omitZeroBalances=true"
    async with http.get(f"{fake_venue.rest_url}/v3/account?{params}&signature={sign(params)}", headers=headers) as r:
        body = await r.json()
        assert (r.status, body["code"]) == (400, -1102)
        assert body["msg"] == "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."
    params = f"timestamp={int(time.time() * 1000)}"
    async with http.get(f"{fake_venue.rest_url}/v3/account?{params}", headers=headers) as r:
        assert (r.status, (await r.json())["code"]) == (400, -1102)


async def test_ws_api_subscription_needs_a_valid_signature(
    fake_venue: FakeVenue, fast_binance_websockets: None
) -> None:
    client = await create_async_client(fake_venue, DEFAULT_API_KEY, "not-the-secret")
    try:
        with pytest.raises(BinanceAPIException) as err:
            await client._ws_api_request("userDataStream.subscribe.signature", True, {})
        assert err.value.code == -1022
    finally:
        await client.close_connection()


async def test_python_binance_signs_the_body_unencoded(binance_client: AsyncClient) -> None:
    """A Binance rule (since 2026-01-15) python-binance 1.0.37 trips over.

    The signature must cover the payload as sent (percent-encoded). python-binance signs the raw
    values but aiohttp form-encodes the POST body, so a client order id with ':' or '/' (legal
    characters for Binance) is rejected with -1022. Keep client order ids to [A-Za-z0-9._-].
    """
    await expect_error(
        binance_client.order_market_buy(symbol="BTCUSDT", quantity="0.001", newClientOrderId="exec:1/buy"), 400, -1022
    )
    order = await binance_client.order_market_buy(symbol="BTCUSDT", quantity="0.001", newClientOrderId="exec.1-buy_0")
    assert order["clientOrderId"] == "exec.1-buy_0"


@pytest.mark.parametrize("api_key", ["who-is-this", "Zq7" * 21 + "XY", "Zq7" * 21 + "-", "Zq7" * 21])
async def test_a_malformed_api_key_is_not_an_unknown_one(
    fake_venue: FakeVenue, http: aiohttp.ClientSession, api_key: str
) -> None:
    """errors.md: -2014 BAD_API_KEY_FMT "API-key format invalid." for a key Binance could not have issued
    (its keys are 64 letters and digits), -2015 REJECTED_MBX_KEY for a well-formed key it does not know."""
    params = f"timestamp={fake_venue.now_ms()}"
    url = f"{fake_venue.rest_url}/v3/account?{params}&signature={sign(params)}"
    async with http.get(url, headers={"X-MBX-APIKEY": api_key}) as r:
        assert (r.status, await r.json()) == (401, {"code": -2014, "msg": "API-key format invalid."})
    async with http.get(url, headers={"X-MBX-APIKEY": "Zq7" * 21 + "X"}) as r:
        assert (r.status, (await r.json())["code"]) == (401, -2015)
    # The WebSocket API tells them apart the same way.
    async with http.ws_connect(fake_venue.ws_api_url) as ws:
        for key, code in ((api_key, -2014), ("Zq7" * 21 + "X", -2015)):
            ws_params = {"apiKey": key, "timestamp": fake_venue.now_ms()}
            payload = "&".join(f"{k}={v}" for k, v in sorted(ws_params.items()))
            await ws.send_json(
                {"id": 1, "method": "account.status", "params": {**ws_params, "signature": sign(payload)}}
            )
            answer = await ws.receive_json(timeout=3)
            assert (answer["status"], answer["error"]["code"]) == (401, code)
