"""Decimal helpers for money and quantities.

Nothing on the path from a quote to a ledger row may touch float: venue payloads carry prices as
strings (or JSON numbers, which orjson would turn into floats), so every value is parsed here with a
strict parser that refuses NaN, infinities, floats and absurd magnitudes.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_UP, Context, Decimal, InvalidOperation

ZERO = Decimal(0)
ONE = Decimal(1)

# DECIMAL(36, 18): 18 digits before the point, 18 after.
MAX_DIGITS = 36
DECIMAL_PLACES = 18
QUANTUM = Decimal(1).scaleb(-DECIMAL_PLACES)
MAX_ABS = Decimal(10) ** (MAX_DIGITS - DECIMAL_PLACES)

# Enough precision that intermediate products of two DECIMAL(36,18) values never round.
MONEY_CONTEXT = Context(prec=80, rounding=ROUND_HALF_EVEN)


class InvalidAmount(ValueError):
    """A value that cannot be a price, quantity or amount."""


def to_decimal(value: object, *, field: str = "value") -> Decimal:
    """Parse a venue or user value into a finite Decimal that fits DECIMAL(36,18).

    Accepts str, int and Decimal. Refuses float (it has already lost precision), bool, NaN,
    infinities and magnitudes that do not fit the column.
    """
    if isinstance(value, str):  # venue payloads: the common case first
        text = value.strip()
        if not text or len(text) > 64:
            raise InvalidAmount(f"{field}: {value!r} is not a decimal number")
        try:
            result = Decimal(text)
        except InvalidOperation:
            raise InvalidAmount(f"{field}: {value!r} is not a decimal number") from None
    elif isinstance(value, bool | float):
        raise InvalidAmount(f"{field}: {type(value).__name__} is not accepted, send a decimal string")
    elif isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    else:
        raise InvalidAmount(f"{field}: {type(value).__name__} is not a decimal number")
    if not result.is_finite():
        raise InvalidAmount(f"{field}: {value!r} is not finite")
    if result.copy_abs() >= MAX_ABS:  # copy_abs is exact; abs() rounds to 28 digits
        raise InvalidAmount(f"{field}: {value!r} is too large")
    # A non-zero value this small cannot be stored and would make later divisions overflow.
    if result and result.adjusted() < -(DECIMAL_PLACES + 12):
        raise InvalidAmount(f"{field}: {value!r} is too small")
    return result


def to_positive(value: object, *, field: str = "value") -> Decimal:
    result = to_decimal(value, field=field)
    if result <= 0:
        raise InvalidAmount(f"{field}: must be greater than zero")
    return result


def to_non_negative(value: object, *, field: str = "value") -> Decimal:
    result = to_decimal(value, field=field)
    if result < 0:
        raise InvalidAmount(f"{field}: must not be negative")
    return result


def _to_step(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    if step <= 0:
        return value
    units = (value / step).to_integral_value(rounding=rounding, context=MONEY_CONTEXT)
    result = units * step
    exponent = step.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < 0:
        return result.quantize(Decimal(1).scaleb(exponent), context=MONEY_CONTEXT)
    return result


def quantize_down(value: Decimal, step: Decimal) -> Decimal:
    """Round down to a multiple of ``step`` (stepSize/tickSize). A zero step means no filter."""
    return _to_step(value, step, ROUND_DOWN)


def quantize_up(value: Decimal, step: Decimal) -> Decimal:
    """Round up to a multiple of ``step``."""
    return _to_step(value, step, ROUND_UP)


def to_storage(value: Decimal) -> Decimal:
    """Round to the 18 places the database keeps (half-even, as accountants do)."""
    return value.quantize(QUANTUM, rounding=ROUND_HALF_EVEN, context=MONEY_CONTEXT)


def fmt(value: Decimal | None) -> str | None:
    """Plain string without exponent or trailing zeros, as venues and the API send decimals."""
    if value is None:
        return None
    normal = value.normalize()
    if normal == 0:
        return "0"
    text = format(normal, "f")
    return text
