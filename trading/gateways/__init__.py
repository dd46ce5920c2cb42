"""Venue gateways: ``gateway_for(account)`` picks the one an account trades through."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from asgiref.sync import async_to_sync
from django.db import transaction

from arbitragex.background import background_run, background_submit
from arbitragex.errors import ApplicationError, ErrorCode
from trading.enums import AccountMode
from trading.gateways.paper import PaperGateway
from venues.registry import VenueKindUnknown, family_get

if TYPE_CHECKING:
    from trading.models import ExchangeAccount
    from venues.gateway import Gateway

T = TypeVar("T")

GatewayFactory = Callable[["ExchangeAccount"], "Gateway"]
"""How a service gets the gateway of an account: ``gateway_for`` in production; tests pass their own."""


def gateway_for(account: ExchangeAccount) -> Gateway:
    """The gateway of ``account``: the paper venue for a paper account, else its venue family's (a live
    account). From async code, load the account with ``select_related("venue")`` first."""
    if account.mode == AccountMode.PAPER:
        return PaperGateway(account)
    venue = account.venue
    try:
        factory = family_get(venue.kind).gateway
    except VenueKindUnknown as exc:
        detail = {"account": account.pk, "venue": venue.code}
        raise ApplicationError(ErrorCode.INVALID_CONFIG, str(exc), detail) from None
    if factory is None:
        raise ApplicationError(
            ErrorCode.INVALID_CONFIG,
            f"account {account.name} is live on venue {venue.code} ({venue.kind}), which trades on paper only",
            {"account": account.pk, "venue": venue.code, "mode": account.mode},
        )
    return factory(account)


_shared: dict[int, tuple[tuple[Any, ...], Gateway]] = {}
_shared_lock = threading.Lock()


def _shared_close() -> None:
    """At exit: close the shared gateways' sessions on the loop they belong to."""
    with _shared_lock:
        gateways = [gateway for _, gateway in _shared.values()]
        _shared.clear()

    async def close_all() -> None:
        await asyncio.gather(*(gateway.close() for gateway in gateways), return_exceptions=True)

    if gateways:
        with contextlib.suppress(Exception):
            background_run(close_all(), timeout_s=5)


def gateway_shared(account: ExchangeAccount) -> Gateway | None:
    """This process's long-lived gateway of a live Binance account, or None for any other account.

    Its python-binance client (HTTP session, clock offset) is kept between calls instead of being
    created for each placement, which pings the venue and asks its time first. A client belongs to
    the event loop it was made on: use the gateway on ``arbitragex.background`` only, and never close
    it. An account or venue saved since (new credentials, URLs) gets a new gateway.
    """
    venue = account.venue
    if account.mode != AccountMode.LIVE or family_get(venue.kind).gateway is None:
        return None
    version = (account.updated_at, venue.updated_at)
    with _shared_lock:
        if not _shared:
            atexit.register(_shared_close)
        held = _shared.get(account.pk)
        if held is None or held[0] != version:
            if held is not None:
                background_submit(held[1].close())  # on the loop its session belongs to
            _shared[account.pk] = held = (version, gateway_for(account))
    return held[1]


def gateway_run(
    account: ExchangeAccount,
    work: Callable[[Gateway], Coroutine[Any, Any, T]],
    *,
    factory: Callable[[ExchangeAccount], Gateway] | None = None,
) -> T:
    """Run ``work`` (venue calls only) with the account's gateway, from sync code.

    A live account uses the process's one gateway on the process's one event loop (``gateway_shared``):
    one venue client per process and loop, never re-created, closed at shutdown. Inside a transaction
    (tests), or with a ``factory``, a gateway of its own is made and closed after, on a loop of its own.
    """
    if factory is None and not transaction.get_connection().in_atomic_block:
        shared = gateway_shared(account)
        if shared is not None:
            return background_run(work(shared))
    gateway = (factory or gateway_for)(account)

    async def run() -> T:
        try:
            return await work(gateway)
        finally:
            await gateway.close()

    return async_to_sync(run)()


def gateways_close() -> None:
    """Close this process's shared gateways (a worker process shutting down, the end of a command)."""
    _shared_close()


__all__ = ["gateway_for", "gateway_run", "gateway_shared", "gateways_close"]
