"""A raw OKX client for protocol-level tests: signed REST requests and JSON WebSocket frames."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import aiohttp

from tests.fakeokx import DEFAULT_API_KEY, DEFAULT_API_SECRET, DEFAULT_PASSPHRASE, FakeOkx
from tests.fakeokx.signing import iso_ms, rest_prehash, sign, ws_login_prehash
from tests.fakevenue.paths import shared_data_dir

OKX_DATA = shared_data_dir() / "okx"
OKX_DOCS = OKX_DATA / "docs_examples"


def load(name: str) -> Any:
    path = OKX_DATA / name
    if not path.exists():
        path = OKX_DOCS / name
    return json.loads(path.read_text())


class RestClient:
    """Signs like ccxt.okx: ISO-ms timestamp, path with query, the JSON body text as sent."""

    def __init__(
        self,
        venue: FakeOkx,
        key: str = DEFAULT_API_KEY,
        secret: str = DEFAULT_API_SECRET,
        passphrase: str = DEFAULT_PASSPHRASE,
        *,
        demo: bool = False,
    ) -> None:
        self.venue = venue
        self.key, self.secret, self.passphrase, self.demo = key, secret, passphrase, demo
        self.session = aiohttp.ClientSession()

    def as_user(self, key: str, secret: str, passphrase: str, *, demo: bool = False) -> RestClient:
        other = RestClient.__new__(RestClient)
        other.venue, other.session = self.venue, self.session
        other.key, other.secret, other.passphrase, other.demo = key, secret, passphrase, demo
        return other

    async def close(self) -> None:
        await self.session.close()

    async def request(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        body: Any = None,
        *,
        private: bool = True,
        timestamp: str | None = None,
        headers: dict[str, str] | None = None,
        skew_ms: int = 0,
    ) -> tuple[int, Any]:
        request_path = f"/api/v5/{path}"
        if params:
            request_path += "?" + urlencode(params)
        text = "" if body is None else json.dumps(body, separators=(",", ":"))
        sent: dict[str, str] = {}
        if private:
            ts = timestamp or iso_ms(int(time.time() * 1000) + skew_ms)
            sent = {
                "OK-ACCESS-KEY": self.key,
                "OK-ACCESS-SIGN": sign(self.secret, rest_prehash(ts, method, request_path, text)),
                "OK-ACCESS-TIMESTAMP": ts,
                "OK-ACCESS-PASSPHRASE": self.passphrase,
            }
        if self.demo:
            sent["x-simulated-trading"] = "1"
        if body is not None:
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        sent = {k: v for k, v in sent.items() if v is not None}
        async with self.session.request(
            method, self.venue.base_url + request_path, data=text or None, headers=sent
        ) as response:
            return response.status, await response.json(content_type=None)

    async def get(self, path: str, params: dict[str, str] | None = None, **kwargs: Any) -> tuple[int, Any]:
        return await self.request("GET", path, params, **kwargs)

    async def post(self, path: str, body: Any, **kwargs: Any) -> tuple[int, Any]:
        return await self.request("POST", path, body=body, **kwargs)

    async def place(self, **order: str) -> dict[str, Any]:
        """POST trade/order (tdMode cash) and return the answer's one data item."""
        status, answer = await self.post("trade/order", {"tdMode": "cash", **order})
        assert status == 200, answer
        return answer["data"][0]

    async def order(self, inst_id: str, ord_id: str) -> dict[str, Any]:
        status, answer = await self.get("trade/order", {"instId": inst_id, "ordId": ord_id})
        assert status == 200 and answer["code"] == "0", answer
        return answer["data"][0]


async def ws_connect(
    venue: FakeOkx, endpoint: str = "public", *, demo: bool = False
) -> aiohttp.ClientWebSocketResponse:
    session = aiohttp.ClientSession()
    base = venue.demo_ws_url if demo else venue.ws_url
    try:
        ws = await session.ws_connect(f"{base}/{endpoint}", autoclose=False, autoping=True)
    except BaseException:
        await session.close()
        raise
    ws._fake_session = session  # type: ignore[attr-defined]  # closed with the socket by ws_close
    return ws


async def ws_close(ws: aiohttp.ClientWebSocketResponse) -> None:
    await ws.close()
    await ws._fake_session.close()  # type: ignore[attr-defined]


async def next_frame(
    ws: aiohttp.ClientWebSocketResponse, match: Callable[[Any], bool] = lambda _: True, timeout: float = 3.0
) -> Any:
    """The next JSON (or text) frame that ``match`` accepts, skipping the others."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no matching frame")
        message = await ws.receive(timeout=left)
        if message.type != aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"socket ended: {message.type} {message.data!r}")
        frame = json.loads(message.data) if message.data.startswith(("{", "[")) else message.data
        if match(frame):
            return frame


async def collect(ws: aiohttp.ClientWebSocketResponse, until: Callable[[Any], bool], timeout: float = 3.0) -> list[Any]:
    """Every frame up to and including the first one ``until`` accepts."""
    frames: list[Any] = []
    deadline = time.monotonic() + timeout

    def keep(frame: Any) -> bool:
        frames.append(frame)
        return until(frame)

    await next_frame(ws, keep, max(0.0, deadline - time.monotonic()))
    return frames


def op_reply(op: str) -> Callable[[Any], bool]:
    return lambda frame: isinstance(frame, dict) and frame.get("op") == op and "code" in frame


def channel(name: str, action: str | None = None) -> Callable[[Any], bool]:
    def match(frame: Any) -> bool:
        return (
            isinstance(frame, dict)
            and frame.get("arg", {}).get("channel") == name
            and "data" in frame
            and (action is None or frame.get("action") == action)
        )

    return match


def event(name: str) -> Callable[[Any], bool]:
    return lambda frame: isinstance(frame, dict) and frame.get("event") == name


async def ws_login(
    ws: aiohttp.ClientWebSocketResponse,
    key: str = DEFAULT_API_KEY,
    secret: str = DEFAULT_API_SECRET,
    passphrase: str = DEFAULT_PASSPHRASE,
    *,
    timestamp: str | None = None,
) -> dict[str, Any]:
    ts = timestamp or str(int(time.time()))
    await ws.send_str(
        json.dumps(
            {
                "op": "login",
                "args": [
                    {
                        "apiKey": key,
                        "passphrase": passphrase,
                        "timestamp": ts,
                        "sign": sign(secret, ws_login_prehash(ts)),
                    }
                ],
            }
        )
    )
    return await next_frame(ws, lambda f: isinstance(f, dict) and f.get("event") in ("login", "error"))


async def subscribe(ws: aiohttp.ClientWebSocketResponse, *args: dict[str, Any], request_id: str | None = None) -> None:
    message: dict[str, Any] = {"op": "subscribe", "args": list(args)}
    if request_id:
        message["id"] = request_id
    await ws.send_str(json.dumps(message))


async def eventually(condition: Callable[[], bool | Awaitable[bool]], timeout: float = 3.0) -> None:
    """Wait for ``condition`` with a deadline (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def d(text: str) -> Decimal:
    return Decimal(text)
