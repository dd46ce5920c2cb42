"""``/ws/market/``: the dashboards' live feed, over the real channel layer (channels_redis)."""

from __future__ import annotations

import time
from decimal import Decimal
from uuid import UUID

import pytest
from asgiref.sync import sync_to_async
from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django_redis import get_redis_connection

from config.asgi import application
from marketdata.consumers import CLOSE_UNAUTHENTICATED
from marketdata.fanout import EXECUTIONS_GROUP, envelope, publish, symbol_group
from marketdata.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)

NOT_A_LIST = 'symbols must be a non-empty list of symbols, e.g. ["BTCUSDT"]'
BAD_SYMBOL = "2 to 32 upper-case letters and digits"

ROUTES = URLRouter(websocket_urlpatterns)
D = Decimal


@pytest.fixture(autouse=True)
def _fresh_channel_layer(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    connection = get_redis_connection("default")
    keys = list(connection.scan_iter(f"{settings.KEY_PREFIX}:asgi*"))
    if keys:
        connection.delete(*keys)


@pytest.fixture
def user():
    return get_user_model().objects.create_user(username="dashboard", password="pw")


def quote(symbol: str = "BTCUSDT", venue: str = "sim-a", bid: str = "61000.10") -> dict:
    return {"type": "quote", "venue": venue, "symbol": symbol, "bid": bid, "bid_qty": "0.5",
            "ask": "61000.20", "ask_qty": "1.25", "ts": 1_723_161_254_000, "exchange_ts": None}  # fmt: skip


async def connected(user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(ROUTES, "/ws/market/")
    communicator.scope["user"] = user
    accepted, _ = await communicator.connect()
    assert accepted
    return communicator


async def group_send(group: str, payloads: list[dict], **kwargs) -> None:
    await get_channel_layer().group_send(group, envelope(payloads, **kwargs))


async def test_a_subscriber_receives_the_quotes_of_its_symbols_until_it_unsubscribes(user):
    client = await connected(user)

    await client.send_json_to({"type": "subscribe", "symbols": ["BTCUSDT", "ETHUSDT"]})
    assert await client.receive_json_from() == {"type": "subscribed", "symbols": ["BTCUSDT", "ETHUSDT"]}

    await group_send(symbol_group("BTCUSDT"), [quote(venue="sim-a"), quote(venue="sim-b", bid="61000.15")])
    assert await client.receive_json_from() == quote(venue="sim-a")
    assert await client.receive_json_from() == quote(venue="sim-b", bid="61000.15")
    await group_send(symbol_group("SOLUSDT"), [quote("SOLUSDT")])  # not subscribed
    assert await client.receive_nothing(timeout=0.2)

    await client.send_json_to({"type": "unsubscribe", "symbols": ["BTCUSDT"]})
    assert await client.receive_json_from() == {"type": "unsubscribed", "symbols": ["ETHUSDT"]}
    await group_send(symbol_group("BTCUSDT"), [quote()])
    assert await client.receive_nothing(timeout=0.2)
    await group_send(symbol_group("ETHUSDT"), [quote("ETHUSDT")])
    assert (await client.receive_json_from())["symbol"] == "ETHUSDT"
    await client.disconnect()


async def test_opportunities_of_subscribed_symbols_and_execution_updates_reach_the_client(user):
    client = await connected(user)
    await client.send_json_to({"type": "subscribe", "symbols": ["ETHUSDT"]})
    await client.receive_json_from()
    opportunity = {"type": "opportunity", "id": 7, "status": "DETECTED", "symbol": "ETHUSDT", "net_rate": "0.0011"}

    await group_send(symbol_group("ETHUSDT"), [opportunity])
    assert await client.receive_json_from() == opportunity

    # Trading code publishes from sync code, after its transaction commits; decimals become plain strings.
    execution = {"type": "execution", "id": UUID(int=7), "status": "COMPLETED", "actual_profit": D("0.4200")}
    sent = await sync_to_async(publish)(EXECUTIONS_GROUP, execution)
    assert sent is True
    assert await client.receive_json_from() == {
        "type": "execution",
        "id": "00000000-0000-0000-0000-000000000007",
        "status": "COMPLETED",
        "actual_profit": "0.42",
    }
    await client.disconnect()


async def test_an_envelope_older_than_its_max_age_is_dropped_not_sent_late(user):
    client = await connected(user)
    await client.send_json_to({"type": "subscribe", "symbols": ["BTCUSDT"]})
    await client.receive_json_from()
    stale = envelope([quote(bid="1")], max_age_ms=1_000)
    stale["sent_ms"] = time.time_ns() // 1_000_000 - 5_000

    await get_channel_layer().group_send(symbol_group("BTCUSDT"), stale)
    await group_send(symbol_group("BTCUSDT"), [quote(bid="2")], max_age_ms=1_000)

    assert (await client.receive_json_from())["bid"] == "2"
    assert await client.receive_nothing(timeout=0.2)
    await client.disconnect()


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("{not json", "message is not valid JSON"),
        ("[1, 2]", "message must be a JSON object with a 'type'"),
        ('{"type": "trade"}', "type must be one of: subscribe, unsubscribe, ping"),
        ('{"type": "subscribe"}', NOT_A_LIST),
        ('{"type": "subscribe", "symbols": "BTCUSDT"}', NOT_A_LIST),
        ('{"type": "subscribe", "symbols": ["btc usdt"]}', f"invalid symbol 'btc usdt': {BAD_SYMBOL}"),
        ('{"type": "unsubscribe", "symbols": [7]}', f"invalid symbol 7: {BAD_SYMBOL}"),
        ('{"type": "subscribe", "symbols": [' + ",".join(f'"S{i:02d}USDT"' for i in range(51)) + "]}",
         "at most 50 symbols per connection"),
    ],
)  # fmt: skip
async def test_a_bad_message_gets_an_error_reply_and_the_connection_stays_open(user, message, error):
    client = await connected(user)

    await client.send_to(text_data=message)
    assert await client.receive_json_from() == {"type": "error", "code": 1001, "message": error}

    await client.send_json_to({"type": "ping"})
    assert await client.receive_json_from() == {"type": "pong"}
    await client.disconnect()


async def test_a_binary_frame_gets_an_error_reply(user):
    client = await connected(user)

    await client.send_to(bytes_data=b"\x00\x01")

    assert await client.receive_json_from() == {
        "type": "error",
        "code": 1001,
        "message": "send JSON text frames, not binary",
    }
    await client.disconnect()


async def test_an_anonymous_connection_is_closed_with_4401():
    client = WebsocketCommunicator(AuthMiddlewareStack(ROUTES), "/ws/market/")

    accepted, _ = await client.connect()

    assert accepted  # accepted first, so that a browser can read the close code
    assert await client.receive_output() == {"type": "websocket.close", "code": CLOSE_UNAUTHENTICATED}
    await client.wait()


async def test_a_logged_in_session_is_accepted_by_the_platform_asgi_application(user):
    django_client = Client()
    await database_sync_to_async(django_client.force_login)(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={django_client.cookies[settings.SESSION_COOKIE_NAME].value}"
    headers = [(b"cookie", cookie.encode()), (b"origin", b"http://localhost"), (b"host", b"localhost")]
    client = WebsocketCommunicator(application, "/ws/market/", headers=headers)

    accepted, _ = await client.connect()
    assert accepted
    await client.send_json_to({"type": "ping"})
    assert await client.receive_json_from() == {"type": "pong"}
    await client.disconnect()

    anonymous = WebsocketCommunicator(application, "/ws/market/", headers=headers[1:])
    accepted, _ = await anonymous.connect()
    assert await anonymous.receive_output() == {"type": "websocket.close", "code": CLOSE_UNAUTHENTICATED}


def test_publish_refuses_an_invalid_group_or_payload_and_reports_a_layer_failure(settings):
    with pytest.raises(ValueError, match="invalid group name"):
        publish("md.BTC USDT", {"type": "quote"})
    with pytest.raises(ValueError, match="a payload is a dict with a string 'type'"):
        publish(EXECUTIONS_GROUP, {"id": 1})

    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}
    }
    from channels.layers import channel_layers

    channel_layers.backends.pop("default", None)
    try:
        assert publish(EXECUTIONS_GROUP, {"type": "execution", "id": 1}) is False  # nothing listens on port 1
    finally:
        channel_layers.backends.pop("default", None)
