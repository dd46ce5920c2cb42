"""Decimal helpers. Every price, quantity and balance in the fake venue is a Decimal."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation

ZERO = Decimal(0)
ONE = Decimal(1)
EIGHT_PLACES = Decimal("0.00000001")

Number = Decimal | int | str


def dec(value: Number) -> Decimal:
    """Build a Decimal from an int, a string or a Decimal (never from a float)."""
    if isinstance(value, float):  # pragma: no cover - guards against misuse
        raise TypeError("floats are not accepted for money; pass a string or a Decimal")
    return value if isinstance(value, Decimal) else Decimal(value)


def parse_decimal(text: str) -> Decimal | None:
    """Parse a request parameter; None when it is not a finite decimal number."""
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    if not value.is_finite():
        return None
    return value


def fmt(value: Decimal, places: int = 8) -> str:
    """Binance renders amounts with a fixed number of decimals: "0.00100000"."""
    quantum = ONE.scaleb(-places)
    return format(value.quantize(quantum, rounding=ROUND_HALF_UP), "f")


def round_fee(value: Decimal) -> Decimal:
    return value.quantize(EIGHT_PLACES, rounding=ROUND_HALF_UP)


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


def is_multiple(value: Decimal, step: Decimal, origin: Decimal = ZERO) -> bool:
    if step <= 0:
        return True
    return (value - origin) % step == 0


def decimal_places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0
