"""Point the real python-binance clients at a FakeVenue.

python-binance keeps its base URLs in class attributes and ``.format()``s them in ``__init__``
(``API_URL``, ``WS_API_URL``; the socket manager's ``STREAM_URL``). A URL with no ``{}``
placeholder survives the format, so a subclass (or an instance attribute set before use) is all
it takes. ``WS_API_URL`` must be right *before* ``__init__`` runs, because the ``WebsocketAPI``
connection object is built there - hence the subclass.
"""

from __future__ import annotations

from typing import Any, Protocol

from binance import AsyncClient, BinanceSocketManager, Client


class HasUrls(Protocol):
    @property
    def rest_url(self) -> str: ...

    @property
    def stream_url(self) -> str: ...

    @property
    def ws_api_url(self) -> str: ...


def async_client_class(venue: HasUrls) -> type[AsyncClient]:
    return type("FakeVenueAsyncClient", (AsyncClient,), {"API_URL": venue.rest_url, "WS_API_URL": venue.ws_api_url})


def client_class(venue: HasUrls) -> type[Client]:
    return type("FakeVenueClient", (Client,), {"API_URL": venue.rest_url, "WS_API_URL": venue.ws_api_url})


async def create_async_client(
    venue: HasUrls, api_key: str | None, api_secret: str | None, **kwargs: Any
) -> AsyncClient:
    """``AsyncClient.create`` (pings and takes the clock offset from the fake's server time)."""
    return await async_client_class(venue).create(api_key, api_secret, **kwargs)


def create_client(venue: HasUrls, api_key: str | None, api_secret: str | None, **kwargs: Any) -> Client:
    return client_class(venue)(api_key, api_secret, **kwargs)


def create_socket_manager(client: AsyncClient, venue: HasUrls, **kwargs: Any) -> BinanceSocketManager:
    manager = BinanceSocketManager(client, **kwargs)
    manager.STREAM_URL = venue.stream_url
    return manager
