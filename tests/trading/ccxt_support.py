"""Live accounts on ``ccxt`` venues served by the fake OKX (``ccxt.okx``) or the fake Binance
(``ccxt.binance``), for the ccxt gateway, user stream and lifecycle tests."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from marketdata.models import Venue
from tests.factories import ExchangeAccountFactory, VenueFactory
from trading.enums import AccountMode
from trading.models import ExchangeAccount

D = Decimal


def okx_venue_create(fake: Any, *, demo: bool = False, **fields: Any) -> Venue:
    """A ``ccxt`` venue of exchange ``okx`` on a fake OKX (anything with ``rest_url`` and ``ws_url``):
    every ccxt URL moved to the fake's host, and its demo WebSocket for the sandbox."""
    fields.setdefault("code", f"okx-{uuid.uuid4().hex[:10]}")
    fields.setdefault("default_taker_fee", D("0.001"))
    fields.setdefault("default_maker_fee", D("0.0008"))
    venue: Venue = VenueFactory(
        kind=Venue.Kind.CCXT, ccxt_exchange="okx", rest_url=fake.rest_url, stream_url=fake.ws_url, testnet=demo,
        ccxt_urls={"test": {"ws": fake.demo_ws_url}}, **fields,
    )  # fmt: skip
    return venue


def ccxt_binance_venue_create(fake: Any, **fields: Any) -> Venue:
    """A ``ccxt`` venue of exchange ``binance`` on a fake Binance: ccxt's Binance URLs on its host."""
    fields.setdefault("code", f"cbn-{uuid.uuid4().hex[:10]}")
    fields.setdefault("default_taker_fee", D("0.001"))
    fields.setdefault("default_maker_fee", D("0.001"))
    base = f"http://{fake.host}:{fake.port}"
    venue: Venue = VenueFactory(
        kind=Venue.Kind.CCXT, ccxt_exchange="binance", rest_url=base, stream_url=f"ws://{fake.host}:{fake.port}",
        **fields,
    )  # fmt: skip
    return venue


def ccxt_account_create(
    venue: Venue, api_key: str, api_secret: str, passphrase: str = "", **fields: Any
) -> ExchangeAccount:
    account: ExchangeAccount = ExchangeAccountFactory(venue=venue, mode=AccountMode.LIVE, api_key=api_key, **fields)
    account.set_api_secret(api_secret)
    account.set_api_passphrase(passphrase)
    account.save()
    return ExchangeAccount.objects.select_related("venue").get(pk=account.pk)
