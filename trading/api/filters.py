"""Query filters of the trading API. A bad value is refused with a 400 naming the filter."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField

from arbitragex.views import StrictBooleanFilter
from trading.enums import ExecutionStatus, OpportunityStatus, OrderLeg, OrderSide, OrderStatus
from trading.models import AccountBalance, ArbitrageOpportunity, Order, TradeExecution


class SymbolFilter(filters.CharFilter):
    """A symbol, matched upper-cased so that the (symbol, ...) indexes serve it."""

    def filter(self, qs: QuerySet[Any], value: Any) -> QuerySet[Any]:
        return super().filter(qs, value.strip().upper() if isinstance(value, str) else value)


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 instant, in UTC: PostgreSQL refuses a UTC offset beyond ±15:59 (a DataError, so a
    500, found by the API fuzzing), and an instant before year 1 in UTC does not exist."""

    def to_python(self, value: Any) -> Any:
        result = super().to_python(value)
        if result is None:
            return None
        try:
            return result.astimezone(UTC)
        except OverflowError:
            raise ValidationError("Enter a date and time from year 1 to 9999 in UTC.", code="invalid") from None


class UtcIsoDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


def _either_venue(queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
    return queryset.filter(Q(buy_venue__code=value) | Q(sell_venue__code=value)) if value else queryset


class ExecutionFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=ExecutionStatus.choices)
    symbol = SymbolFilter(help_text="Symbol, e.g. BTCUSDT (case-insensitive).")
    venue = filters.CharFilter(method=_either_venue, help_text="Venue code of the buy or the sell leg.")
    started_after = UtcIsoDateTimeFilter(
        field_name="started_at", lookup_expr="gte", help_text="ISO 8601; started at or after."
    )
    started_before = UtcIsoDateTimeFilter(
        field_name="started_at", lookup_expr="lt", help_text="ISO 8601; started before."
    )
    is_manual = StrictBooleanFilter(help_text="Manual (API or admin) executions only, or automatic only.")

    class Meta:
        model = TradeExecution
        fields: list[str] = []


class OrderFilter(filters.FilterSet):
    execution = filters.UUIDFilter(field_name="execution_id", help_text="Execution id.")
    status = filters.ChoiceFilter(choices=OrderStatus.choices)
    venue = filters.CharFilter(field_name="venue__code", help_text="Venue code.")
    symbol = SymbolFilter(help_text="Symbol, e.g. BTCUSDT (case-insensitive).")
    side = filters.ChoiceFilter(choices=OrderSide.choices)
    leg = filters.ChoiceFilter(choices=OrderLeg.choices)

    class Meta:
        model = Order
        fields: list[str] = []


class OpportunityFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=OpportunityStatus.choices)
    symbol = SymbolFilter(help_text="Symbol, e.g. BTCUSDT (case-insensitive).")
    venue = filters.CharFilter(method=_either_venue, help_text="Venue code of the buy or the sell side.")
    detected_after = UtcIsoDateTimeFilter(
        field_name="detected_at", lookup_expr="gte", help_text="ISO 8601; detected at or after."
    )
    detected_before = UtcIsoDateTimeFilter(
        field_name="detected_at", lookup_expr="lt", help_text="ISO 8601; detected before."
    )

    class Meta:
        model = ArbitrageOpportunity
        fields: list[str] = []


class BalanceFilter(filters.FilterSet):
    account = filters.CharFilter(field_name="account__name", help_text="Exchange account name.")
    venue = filters.CharFilter(field_name="account__venue__code", help_text="Venue code.")
    asset = SymbolFilter(help_text="Asset, e.g. USDT (case-insensitive).")

    class Meta:
        model = AccountBalance
        fields: list[str] = []
