"""ccxt clients pointed at a FakeOkx (see README: ``urls.api`` for live, ``urls.test`` for demo)."""

from __future__ import annotations

from typing import Any

import ccxt.async_support
import ccxt.pro

from .defaults import DEFAULT_API_KEY, DEFAULT_API_SECRET, DEFAULT_PASSPHRASE


def ccxt_config(
    venue: Any,
    api_key: str = DEFAULT_API_KEY,
    secret: str = DEFAULT_API_SECRET,
    passphrase: str = DEFAULT_PASSPHRASE,
    *,
    spot_only: bool = True,
) -> dict[str, Any]:
    """ccxt.okx's config for ``venue`` (a FakeOkx or its thread-safe proxy).

    ``spot_only`` cuts load_markets down to one instruments call (ccxt otherwise also asks for
    FUTURES, SWAP and two OPTION underlyings, which the fake answers with empty lists).
    """
    config: dict[str, Any] = {"apiKey": api_key, "secret": secret, "password": passphrase, "urls": venue.ccxt_urls()}
    if spot_only:
        config["options"] = {"fetchMarkets": {"types": ["spot"]}}
    return config


def create_ccxt_client(venue: Any, *args: Any, sandbox: bool = False, **kwargs: Any) -> ccxt.async_support.okx:
    client = ccxt.async_support.okx(ccxt_config(venue, *args, **kwargs))
    client.set_sandbox_mode(sandbox)
    return client


def create_ccxt_pro_client(venue: Any, *args: Any, sandbox: bool = False, **kwargs: Any) -> ccxt.pro.okx:
    client = ccxt.pro.okx(ccxt_config(venue, *args, **kwargs))
    client.set_sandbox_mode(sandbox)
    return client
