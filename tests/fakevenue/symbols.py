"""Symbols, their filters and the exchangeInfo rendering (shaped like a live exchangeInfo recording)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from . import errors
from .money import ZERO, dec, decimal_places, fmt, is_multiple

ORDER_TYPES = ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"]
# TRANSFER is allowed on all symbols since 2026-04-02 (CHANGELOG 2026-03-27).
STP_MODES = ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT", "TRANSFER"]

# Binance raised ICEBERG_PARTS to 25 (2025-12-18), 50 (2026-02-11) and 100 (2026-03-12) for all symbols.
ICEBERG_PARTS_LIMIT = 100


@dataclass
class SymbolSpec:
    """One tradable symbol with the filters the fake enforces.

    ``use_min_notional`` renders the legacy MIN_NOTIONAL filter instead of NOTIONAL (some
    venues / older recordings still carry it); both give ``-1013 Filter failure: ...``.
    """

    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal = Decimal("0.01")
    min_price: Decimal = Decimal("0.01")
    max_price: Decimal = Decimal("1000000")
    step_size: Decimal = Decimal("0.00001")
    min_qty: Decimal = Decimal("0.00001")
    max_qty: Decimal = Decimal("9000")
    market_min_qty: Decimal = ZERO
    market_max_qty: Decimal = Decimal("100")
    market_step_size: Decimal = ZERO
    min_notional: Decimal = Decimal("5")
    max_notional: Decimal = Decimal("9000000")
    apply_min_to_market: bool = True
    apply_max_to_market: bool = False
    use_min_notional: bool = False
    # PERCENT_PRICE_BY_SIDE, as on every symbol of the live recording.
    bid_multiplier_up: Decimal = Decimal("5")
    bid_multiplier_down: Decimal = Decimal("0.2")
    ask_multiplier_up: Decimal = Decimal("5")
    ask_multiplier_down: Decimal = Decimal("0.2")
    avg_price_mins: int = 5
    base_precision: int = 8
    quote_precision: int = 8
    status: str = "TRADING"
    max_num_orders: int = 200
    default_stp_mode: str = "EXPIRE_MAKER"
    permission_sets: list[list[str]] = field(default_factory=lambda: [["SPOT"]])

    def filters(self) -> list[dict[str, Any]]:
        notional: dict[str, Any]
        if self.use_min_notional:
            notional = {
                "filterType": "MIN_NOTIONAL",
                "minNotional": fmt(self.min_notional),
                "applyToMarket": self.apply_min_to_market,
                "avgPriceMins": self.avg_price_mins,
            }
        else:
            notional = {
                "filterType": "NOTIONAL",
                "minNotional": fmt(self.min_notional),
                "applyMinToMarket": self.apply_min_to_market,
                "maxNotional": fmt(self.max_notional),
                "applyMaxToMarket": self.apply_max_to_market,
                "avgPriceMins": self.avg_price_mins,
            }
        return [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": fmt(self.min_price),
                "maxPrice": fmt(self.max_price),
                "tickSize": fmt(self.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": fmt(self.min_qty),
                "maxQty": fmt(self.max_qty),
                "stepSize": fmt(self.step_size),
            },
            {"filterType": "ICEBERG_PARTS", "limit": ICEBERG_PARTS_LIMIT},
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": fmt(self.market_min_qty),
                "maxQty": fmt(self.market_max_qty),
                "stepSize": fmt(self.market_step_size),
            },
            {
                "filterType": "TRAILING_DELTA",
                "minTrailingAboveDelta": 10,
                "maxTrailingAboveDelta": 2000,
                "minTrailingBelowDelta": 10,
                "maxTrailingBelowDelta": 2000,
            },
            {
                "filterType": "PERCENT_PRICE_BY_SIDE",
                "bidMultiplierUp": _multiplier(self.bid_multiplier_up),
                "bidMultiplierDown": _multiplier(self.bid_multiplier_down),
                "askMultiplierUp": _multiplier(self.ask_multiplier_up),
                "askMultiplierDown": _multiplier(self.ask_multiplier_down),
                "avgPriceMins": self.avg_price_mins,
            },
            notional,
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": self.max_num_orders},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
        ]

    def exchange_info_entry(self, show_permission_sets: bool = True) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "status": self.status,
            "baseAsset": self.base_asset,
            "baseAssetPrecision": self.base_precision,
            "quoteAsset": self.quote_asset,
            "quotePrecision": self.quote_precision,
            "quoteAssetPrecision": self.quote_precision,
            "baseCommissionPrecision": self.base_precision,
            "quoteCommissionPrecision": self.quote_precision,
            "orderTypes": list(ORDER_TYPES),
            "icebergAllowed": True,
            "ocoAllowed": True,
            "otoAllowed": True,
            # OPO on all symbols since 2025-12-18, pegged orders since 2025-08-28 (the fake answers
            # -1020 to both, as to OCO/OTO).
            "opoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True,
            "cancelReplaceAllowed": True,
            "amendAllowed": True,
            "pegInstructionsAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": self.filters(),
            "permissions": [],
            "permissionSets": [list(s) for s in self.permission_sets] if show_permission_sets else [],
            "defaultSelfTradePreventionMode": self.default_stp_mode,
            "allowedSelfTradePreventionModes": list(STP_MODES),
        }

    # --- order checks -------------------------------------------------------------------------

    def check_precision(self, param: str, value: Decimal, precision: int) -> None:
        if decimal_places(value) > precision:
            raise errors.too_much_precision(param)

    def check_price(self, price: Decimal) -> None:
        if price <= 0:
            raise errors.BinanceError(-1013, "Invalid price.")
        if price < self.min_price or (self.max_price > 0 and price > self.max_price):
            raise errors.filter_failure("PRICE_FILTER")
        if not is_multiple(price, self.tick_size, self.min_price):
            raise errors.filter_failure("PRICE_FILTER")

    def check_lot(self, qty: Decimal, market: bool) -> None:
        if qty <= 0:
            raise errors.BinanceError(-1013, "Invalid quantity.")
        if qty < self.min_qty or qty > self.max_qty or not is_multiple(qty, self.step_size, self.min_qty):
            raise errors.filter_failure("LOT_SIZE")
        if market:
            too_small = self.market_min_qty > 0 and qty < self.market_min_qty
            too_big = self.market_max_qty > 0 and qty > self.market_max_qty
            off_step = not is_multiple(qty, self.market_step_size, self.market_min_qty)
            if too_small or too_big or off_step:
                raise errors.filter_failure("MARKET_LOT_SIZE")

    def check_percent_price_by_side(self, side: str, price: Decimal, average_price: Decimal) -> None:
        """The price band around the average price, per side (filters.md, PERCENT_PRICE_BY_SIDE)."""
        if side == "BUY":
            up, down = self.bid_multiplier_up, self.bid_multiplier_down
        else:
            up, down = self.ask_multiplier_up, self.ask_multiplier_down
        if price > average_price * up or price < average_price * down:
            raise errors.filter_failure("PERCENT_PRICE_BY_SIDE")

    def check_notional(self, notional: Decimal, market: bool) -> None:
        name = "MIN_NOTIONAL" if self.use_min_notional else "NOTIONAL"
        if (not market or self.apply_min_to_market) and notional < self.min_notional:
            raise errors.filter_failure(name)
        if (
            not self.use_min_notional
            and (not market or self.apply_max_to_market)
            and self.max_notional > 0
            and notional > self.max_notional
        ):
            raise errors.filter_failure(name)


def _multiplier(value: Decimal) -> str:
    # Binance renders these multipliers unpadded ("5", "0.2"), unlike prices and quantities.
    return format(value.normalize(), "f")


def default_symbols() -> list[SymbolSpec]:
    """BTCUSDT and ETHUSDT with the filters of the live recording, plus BNBUSDT for BNB fees."""
    return [
        SymbolSpec(
            symbol="BTCUSDT",
            base_asset="BTC",
            quote_asset="USDT",
            tick_size=dec("0.01"),
            min_price=dec("0.01"),
            max_price=dec("1000000"),
            step_size=dec("0.00001"),
            min_qty=dec("0.00001"),
            max_qty=dec("9000"),
            market_max_qty=dec("97.09521512"),
            min_notional=dec("5"),
        ),
        SymbolSpec(
            symbol="ETHUSDT",
            base_asset="ETH",
            quote_asset="USDT",
            tick_size=dec("0.01"),
            min_price=dec("0.01"),
            max_price=dec("1000000"),
            step_size=dec("0.0001"),
            min_qty=dec("0.0001"),
            max_qty=dec("9000"),
            market_max_qty=dec("2357.34408702"),
            min_notional=dec("5"),
        ),
        SymbolSpec(
            symbol="BNBUSDT",
            base_asset="BNB",
            quote_asset="USDT",
            tick_size=dec("0.01"),
            min_price=dec("0.01"),
            max_price=dec("100000"),
            step_size=dec("0.001"),
            min_qty=dec("0.001"),
            max_qty=dec("900000"),
            market_max_qty=dec("12000"),
            min_notional=dec("5"),
        ),
    ]


def generic_symbol(symbol: str) -> SymbolSpec:
    """A symbol seen in a replayed capture that has no explicit spec: guess base/quote."""
    for quote in ("USDT", "USDC", "FDUSD", "BUSD", "BTC", "ETH", "BNB", "EUR", "TRY"):
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return SymbolSpec(symbol=symbol, base_asset=symbol[: -len(quote)], quote_asset=quote)
    return SymbolSpec(symbol=symbol, base_asset=symbol[:-4], quote_asset=symbol[-4:])
