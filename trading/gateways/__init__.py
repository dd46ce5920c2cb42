"""Venue gateways: ``gateway_for(account)`` picks the one an account trades through."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from arbitragex.errors import ApplicationError, ErrorCode
from trading.enums import AccountMode

if TYPE_CHECKING:
    from trading.gateways.base import Gateway
    from trading.models import ExchangeAccount

BINANCE_GATEWAY_MODULE = "trading.gateways.binance"


def gateway_for(account: ExchangeAccount) -> Gateway:
    """The gateway of ``account``: paper for a paper account, Binance for a live account on a
    Binance venue. From async code, load the account with ``select_related("venue")`` first."""
    if account.mode == AccountMode.PAPER:
        from trading.gateways.paper import PaperGateway

        return PaperGateway(account)

    from marketdata.models import Venue

    venue = account.venue
    if account.mode == AccountMode.LIVE and venue.kind == Venue.Kind.BINANCE:
        try:
            module = importlib.import_module(BINANCE_GATEWAY_MODULE)
        except ModuleNotFoundError as exc:
            if exc.name != BINANCE_GATEWAY_MODULE:
                raise
            raise ApplicationError(
                ErrorCode.INVALID_CONFIG,
                f"account {account.name} trades live on {venue.code}, but the Binance gateway "
                f"({BINANCE_GATEWAY_MODULE}) is not installed",
                {"account": account.pk, "venue": venue.code},
            ) from None
        gateway: Gateway = module.BinanceGateway(account)
        return gateway
    raise ApplicationError(
        ErrorCode.INVALID_CONFIG,
        f"account {account.name} is {account.mode} on venue {venue.code} ({venue.kind}): no gateway trades that live",
        {"account": account.pk, "venue": venue.code, "mode": account.mode},
    )


__all__ = ["gateway_for"]
