"""OKX's number format: every amount is a JSON string, plain and without trailing zeros ("0.1", "68600")."""

from __future__ import annotations

import re
from decimal import Decimal

from tests.fakevenue.money import parse_decimal

_PLAIN = re.compile(r"^[0-9]+(\.[0-9]+)?$")


def num(value: Decimal) -> str:
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def opt_num(value: Decimal | None) -> str:
    """An absent value is ``""``."""
    return "" if value is None else num(value)


def parse_amount(value: object) -> Decimal | None:
    """A request amount: a plain non-negative decimal string (OKX takes numbers as strings)."""
    if not isinstance(value, str) or not _PLAIN.match(value):
        return None
    return parse_decimal(value)
