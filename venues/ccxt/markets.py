"""Symbols, assets and client order ids, normalised once for every ccxt venue.

**Symbols.** The platform names a spot market by its assets run together (``BTCUSDT``), as Binance
does; ccxt by its unified symbol (``BTC/USDT``); OKX by its instrument id (``BTC-USDT``). A
``MarketIndex`` is built from ccxt's loaded markets and answers any of the three spellings (and
``btc_usdt``), with the ccxt symbol to call ccxt with and the platform symbol to report.

**Assets.** ccxt already maps each venue's currency ids to common codes (``XBT`` -> ``BTC``); the
platform takes those codes, upper-cased.

**Client order ids.** Ours are ``ax-<26 base32>-<leg><attempt>`` (``trading/client_ids.py``), which
Binance accepts as they are. OKX's ``clOrdId`` is 1-32 letters and digits only, so on such venues the
id travels as ``<26 base32><leg><attempt>`` (32 characters at most) and is turned back into ours on
every answer. Any other id that is already letters and digits travels unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ClientIdCodec",
    "MarketIndex",
    "SymbolUnknown",
    "asset_code",
    "client_id_codec",
    "symbol_key",
]

_NOT_ALNUM = re.compile(r"[^A-Z0-9]")


def symbol_key(symbol: str) -> str:
    """``BTC/USDT``, ``BTC-USDT``, ``btc_usdt`` and ``BTCUSDT`` all become ``BTCUSDT``."""
    return _NOT_ALNUM.sub("", symbol.upper())


def asset_code(code: Any) -> str:
    return str(code or "").strip().upper()


class SymbolUnknown(LookupError):
    """No spot market of the venue answers to this symbol."""


@dataclass(frozen=True, slots=True)
class Market:
    symbol: str  # the platform's: BTCUSDT
    ccxt_symbol: str  # BTC/USDT
    venue_id: str  # BTC-USDT on OKX, BTCUSDT on Binance
    base: str
    quote: str
    info: Mapping[str, Any]  # ccxt's market structure


class MarketIndex:
    """ccxt's spot markets of one venue, reachable by any spelling of their symbol."""

    def __init__(self, markets: Iterable[Mapping[str, Any]]) -> None:
        self._by_key: dict[str, Market] = {}
        self._by_ccxt: dict[str, Market] = {}
        for market in markets:
            if not market.get("spot") or market.get("type") not in (None, "spot"):
                continue
            base, quote = asset_code(market.get("base")), asset_code(market.get("quote"))
            if not base or not quote:
                continue
            entry = Market(
                symbol=base + quote,
                ccxt_symbol=str(market["symbol"]),
                venue_id=str(market.get("id") or ""),
                base=base,
                quote=quote,
                info=market,
            )
            self._by_ccxt[entry.ccxt_symbol] = entry
            for spelling in (entry.symbol, entry.ccxt_symbol, entry.venue_id):
                # The first market wins a clash (a spot market and its margin twin share a symbol).
                self._by_key.setdefault(symbol_key(spelling), entry)

    def __len__(self) -> int:
        return len(self._by_ccxt)

    def __iter__(self) -> Any:
        return iter(self._by_ccxt.values())

    def get(self, symbol: str) -> Market:
        """The market of ``symbol`` in any spelling; raises ``SymbolUnknown``."""
        market = self._by_ccxt.get(symbol) or self._by_key.get(symbol_key(symbol))
        if market is None:
            raise SymbolUnknown(symbol)
        return market

    def platform_symbol(self, ccxt_symbol: Any, default: str = "") -> str:
        if not ccxt_symbol:
            return default
        try:
            return self.get(str(ccxt_symbol)).symbol
        except SymbolUnknown:
            return symbol_key(str(ccxt_symbol)) or default


# --- client order ids ---------------------------------------------------------------------------------------

_OURS = re.compile(r"^ax-(?P<body>[a-z2-7]{26}-[A-Z](?:[1-9][0-9]{0,4})?)$")
_OURS_ON_VENUE = re.compile(r"^(?P<uuid>[a-z2-7]{26})(?P<leg>[A-Z](?:[1-9][0-9]{0,4})?)$")
_ALNUM_32 = re.compile(r"^[A-Za-z0-9]{1,32}$")


class ClientIdCodec:
    """Our client order id <-> the venue's (identity where the venue takes ours as it is)."""

    def to_venue(self, client_order_id: str) -> str:
        return client_order_id

    def from_venue(self, venue_id: Any) -> str:
        return str(venue_id or "")


class AlphanumericClientIds(ClientIdCodec):
    """Venues whose client order ids are 1-32 letters and digits (OKX's ``clOrdId``)."""

    def to_venue(self, client_order_id: str) -> str:
        match = _OURS.fullmatch(client_order_id)
        if match is not None:
            return match["body"].replace("-", "")
        if _ALNUM_32.fullmatch(client_order_id):
            return client_order_id
        raise ValueError(f"client order id {client_order_id!r} cannot be sent: 1-32 letters and digits only")

    def from_venue(self, venue_id: Any) -> str:
        text = str(venue_id or "")
        match = _OURS_ON_VENUE.fullmatch(text)
        if match is not None:
            return f"ax-{match['uuid']}-{match['leg']}"
        return text


_CODECS: dict[str, ClientIdCodec] = {"okx": AlphanumericClientIds()}
_IDENTITY = ClientIdCodec()


def client_id_codec(exchange_id: str) -> ClientIdCodec:
    return _CODECS.get(exchange_id, _IDENTITY)
