"""Numbers a person can read: prices at the tick size, quantities at the step size, money at a fixed
precision per asset, rates in basis points (DESIGN.md, "Display").

Pure functions over ``Decimal`` (no Django, no models): messages, admin pages and reports format with
them; the API keeps its exact decimal strings. Every function

- refuses floats (a float has already lost the exact value) and non-finite values;
- rounds with ``Decimal.quantize`` in a context wide enough for any DECIMAL(36,18) value, never
  through float;
- shows at most ``MAX_PLACES`` (8) decimals and never trailing zeros ("12.5", not "12.50"; "12",
  not "12.00"), nor an exponent, nor "-0".

Rounding is half-even (banker's rounding). A displayed figure is informative, never the amount an
order is sent with (orders are rounded by ``arbitragex.money.quantize_down``/``quantize_up``, in the
direction the venue requires), so what matters here is being the closest figure: half-even keeps the
displayed value within half a unit of the true one, like half-up, but without half-up's upward bias
when many displayed figures are added up by eye or in a spreadsheet. It is also how the platform
rounds to its 18 stored places (``arbitragex.money.to_storage``), so both roundings agree.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal

__all__ = [
    "MAX_PLACES",
    "MONEY_PLACES_COIN",
    "MONEY_PLACES_FIAT",
    "USD_LIKE_ASSETS",
    "bps",
    "money",
    "money_places",
    "percent",
    "price",
    "quantity",
]

MAX_PLACES = 8
MONEY_PLACES_FIAT = 2
MONEY_PLACES_COIN = 8
# Quote assets shown like cash, to the cent.
USD_LIKE_ASSETS = frozenset({"USDT", "USDC", "USD", "BUSD", "FDUSD", "EUR"})

BPS_PER_UNIT = Decimal(10_000)
ROUNDING = ROUND_HALF_EVEN
# Wide enough that quantizing any DECIMAL(36,18) value (or a product of two) never overflows the
# context precision: 36 digits + 8 places, with room to spare.
_CONTEXT = Context(prec=80, rounding=ROUNDING)


def _decimal(value: Decimal | int | str, what: str) -> Decimal:
    if isinstance(value, bool | float):
        raise TypeError(f"{what}: {type(value).__name__} is not accepted; pass a Decimal, an int or a decimal string")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        result = Decimal(value.strip())
    else:
        raise TypeError(f"{what}: {type(value).__name__} is not a decimal number")
    if not result.is_finite():
        raise ValueError(f"{what}: {value!r} is not a finite number")
    return result


def _plain(value: Decimal) -> str:
    """Fixed-point text without trailing zeros, exponent or a negative zero."""
    if value.is_zero():
        return "0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _at_places(value: Decimal, places: int) -> str:
    quantum = Decimal(1).scaleb(-places)
    return _plain(value.quantize(quantum, rounding=ROUNDING, context=_CONTEXT))


def _at_increment(value: Decimal, increment: Decimal | int | str, what: str) -> str:
    """The nearest multiple of ``increment`` (a tick or step size), shown with at most MAX_PLACES
    decimals. An increment finer than that (or zero: no filter) shows MAX_PLACES decimals."""
    step = _decimal(increment, f"{what} increment")
    if step < 0:
        raise ValueError(f"{what} increment: must not be negative")
    if step.is_zero():
        return _at_places(value, MAX_PLACES)
    exponent = step.normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # finite, checked by _decimal
    places = max(-exponent, 0)
    if places > MAX_PLACES:
        return _at_places(value, MAX_PLACES)
    units = _CONTEXT.divide(value, step).to_integral_value(rounding=ROUNDING, context=_CONTEXT)
    return _at_places(_CONTEXT.multiply(units, step), places)


def price(value: Decimal | int | str, tick_size: Decimal | int | str) -> str:
    """A price at the venue's tick size: ``price(Decimal("61828.574"), "0.01") == "61828.57"``."""
    return _at_increment(_decimal(value, "price"), tick_size, "price")


def quantity(value: Decimal | int | str, step_size: Decimal | int | str) -> str:
    """A quantity at the venue's step size: ``quantity(Decimal("0.012345"), "0.0001") == "0.0123"``."""
    return _at_increment(_decimal(value, "quantity"), step_size, "quantity")


def money_places(asset: str) -> int:
    """2 places for the USD-like assets (and EUR), 8 for coins."""
    return MONEY_PLACES_FIAT if asset.strip().upper() in USD_LIKE_ASSETS else MONEY_PLACES_COIN


def money(value: Decimal | int | str, asset: str, *, with_asset: bool = True) -> str:
    """An amount in ``asset`` at its fixed precision: ``money(Decimal("1234.565"), "USDT") == "1234.56 USDT"``
    (half-even), ``money(Decimal("0.000123456789"), "BTC") == "0.00012346 BTC"``."""
    text = _at_places(_decimal(value, "money"), money_places(asset))
    return f"{text} {asset.strip().upper()}" if with_asset else text


def bps(rate: Decimal | int | str, *, with_unit: bool = True) -> str:
    """A rate (a fraction: 0.0012 is 0.12 %) in basis points to 2 places: ``bps(Decimal("0.00123456"))
    == "12.35 bps"``."""
    value = _CONTEXT.multiply(_decimal(rate, "rate"), BPS_PER_UNIT)
    text = _at_places(value, 2)
    return f"{text} bps" if with_unit else text


def percent(numerator: int | Decimal, denominator: int | Decimal) -> str:
    """A ratio in percent to 2 places ("66.67 %"), or "n/a" when the denominator is zero."""
    top, bottom = _decimal(numerator, "numerator"), _decimal(denominator, "denominator")
    if bottom.is_zero():
        return "n/a"
    return f"{_at_places(_CONTEXT.divide(top * 100, bottom), 2)} %"
