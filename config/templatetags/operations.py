"""Template tags of the operations surfaces: the admin index panel's figures, and decimals as the API
shows them (plain strings, no exponent or padding zeros)."""

from __future__ import annotations

from decimal import Decimal

from django import template

from arbitragex.money import fmt
from config.operations import OperationsOverview, operations_overview

register = template.Library()


@register.simple_tag(name="operations_overview")
def operations_overview_tag() -> OperationsOverview:
    return operations_overview()


@register.filter
def plain_decimal(value: Decimal | None) -> str:
    """``Decimal("0.650000000000000000")`` -> ``"0.65"``; None -> an em dash."""
    if value is None:
        return "—"
    return fmt(value) or "0"
