"""Serializers of the trading API. Money and quantities leave as plain decimal strings, and arrive
only as decimal strings (or integers): a JSON float has already lost precision."""

from __future__ import annotations

from dataclasses import asdict
from decimal import Decimal
from typing import Any

from django.db import models
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from arbitragex.views import NamedChoiceField, PlainDecimalField, ReadFastSerializerMixin, UTCDateTimeField
from marketdata.api.serializers import SymbolField
from marketdata.models import Venue
from trading.enums import (
    ExecutionPolicy,
    ExecutionStatus,
    LegFailurePolicy,
    OpportunityStatus,
    OrderLeg,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)
from trading.models import AccountBalance, ArbitrageOpportunity, Fill, Order, TradeExecution
from trading.repair import repair_steps
from trading.statistics import STATISTICS_GROUPS


class _DecimalModelSerializer(ReadFastSerializerMixin, serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        **{field: PlainDecimalField for field, mapped in serializers.ModelSerializer.serializer_field_mapping.items()
           if mapped is serializers.DecimalField},
        models.DateTimeField: UTCDateTimeField,
    }  # fmt: skip


class DecimalInputField(PlainDecimalField):
    """A decimal sent as a string ("0.01") or an integer; floats are refused. Must be positive."""

    default_error_messages = {
        "float": 'send a decimal string, e.g. "0.01", not a JSON number with a fraction',
        "not_positive": "must be greater than zero",
    }

    def to_internal_value(self, data: Any) -> Decimal:
        if isinstance(data, float | bool):
            self.fail("float")
        value: Decimal = super().to_internal_value(data)
        if value <= 0:
            self.fail("not_positive")
        return value


class FillSerializer(_DecimalModelSerializer):
    class Meta:
        model = Fill
        fields = [
            "trade_id",
            "price",
            "qty",
            "quote_qty",
            "commission",
            "commission_asset",
            "commission_rate_to_quote",
            "commission_quote",
            "is_maker",
            "filled_at",
            "book_age_ms",
        ]
        read_only_fields = fields


class OrderSerializer(_DecimalModelSerializer):
    execution = serializers.UUIDField(source="execution_id", read_only=True)
    account: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="name", read_only=True)
    venue: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="code", read_only=True)
    leg = NamedChoiceField(OrderLeg.choices, enum_name="OrderLeg", read_only=True)
    side = NamedChoiceField(OrderSide.choices, enum_name="OrderSide", read_only=True)
    type = NamedChoiceField(OrderType.choices, enum_name="OrderType", read_only=True)
    time_in_force = NamedChoiceField(TimeInForce.choices, enum_name="TimeInForce", allow_blank=True, read_only=True)
    status = NamedChoiceField(OrderStatus.choices, enum_name="OrderStatus", read_only=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "execution",
            "account",
            "venue",
            "leg",
            "attempt",
            "client_order_id",
            "exchange_order_id",
            "symbol",
            "side",
            "type",
            "time_in_force",
            "price",
            "quantity",
            "filled_qty",
            "cumulative_quote",
            "avg_price",
            "fee_quote",
            "status",
            "error_code",
            "error_message",
            "place_attempts",
            "submitted_at",
            "acknowledged_at",
            "filled_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class OrderWithFillsSerializer(OrderSerializer):
    fills = FillSerializer(many=True, read_only=True)

    class Meta(OrderSerializer.Meta):
        fields = [*OrderSerializer.Meta.fields, "fills"]
        read_only_fields = fields


class ExecutionSerializer(_DecimalModelSerializer):
    buy_venue: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="code", read_only=True)
    sell_venue: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="code", read_only=True)
    buy_account: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="name", read_only=True)
    sell_account: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="name", read_only=True)
    created_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="Who created a manual execution."
    )
    status = NamedChoiceField(ExecutionStatus.choices, enum_name="ExecutionStatus", read_only=True)
    leg_failure_policy = NamedChoiceField(LegFailurePolicy.choices, enum_name="LegFailurePolicy", read_only=True)
    policy = NamedChoiceField(ExecutionPolicy.choices, enum_name="ExecutionPolicy", read_only=True)
    first_leg = serializers.CharField(
        read_only=True, help_text="Sequential policy: the leg sent first, B or S (empty for simultaneous)."
    )

    class Meta:
        model = TradeExecution
        fields = [
            "id",
            "opportunity",
            "symbol",
            "base_asset",
            "quote_asset",
            "status",
            "buy_venue",
            "sell_venue",
            "buy_account",
            "sell_account",
            "buy_price",
            "sell_price",
            "quantity",
            "expected_profit",
            "actual_profit",
            "fees_quote",
            "profit_diff_fees",
            "profit_diff_slippage",
            "profit_diff_latency",
            "residual_qty",
            "reserved_quote",
            "reserved_base",
            "leg_failure_policy",
            "policy",
            "first_leg",
            "band_bps",
            "error_code",
            "error_message",
            "is_manual",
            "created_by",
            "detected_at",
            "started_at",
            "submitted_at",
            "acknowledged_at",
            "filled_at",
            "completed_at",
            "updated_at",
        ]
        read_only_fields = fields


class RepairStepSerializer(serializers.Serializer):
    step = serializers.CharField(help_text="Retry within the band, reprice up to the loss cap, or flatten.")
    client_order_id = serializers.CharField()
    side = serializers.CharField()
    status = serializers.CharField()
    price = PlainDecimalField(allow_null=True)
    filled_qty = PlainDecimalField()
    avg_price = PlainDecimalField(allow_null=True)
    cost = PlainDecimalField(
        help_text="Against the missing leg's expected price, fees included, in the quote asset (positive: lost)."
    )
    latency_ms = serializers.IntegerField(allow_null=True, help_text="From the step's decision to its last fill.")


class ExecutionDetailSerializer(ExecutionSerializer):
    orders = OrderWithFillsSerializer(many=True, read_only=True)
    repair_steps = serializers.SerializerMethodField()

    class Meta(ExecutionSerializer.Meta):
        fields = [*ExecutionSerializer.Meta.fields, "orders", "repair_steps"]
        read_only_fields = fields

    @extend_schema_field(RepairStepSerializer(many=True))
    def get_repair_steps(self, execution: TradeExecution) -> list[dict[str, Any]]:
        steps = repair_steps(execution, execution.orders.all())
        return RepairStepSerializer([asdict(step) for step in steps], many=True).data  # type: ignore[return-value]


class VenueCodeField(serializers.SlugRelatedField):
    """A venue named by its code. PostgreSQL refuses a NUL character in a text parameter (a DataError, so
    a 500, found by the API fuzzing): such a value is refused before the query."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) and "\x00" in data:
            self.fail("invalid")
        return super().to_internal_value(data)


class ExecutionCreateSerializer(serializers.Serializer):
    """A manual execution. Prices and quantity are rounded to the venues' filters by the service."""

    symbol = SymbolField(help_text="Symbol traded on both venues, e.g. BTCUSDT.")
    buy_venue = VenueCodeField(slug_field="code", queryset=Venue.objects.all(), help_text="Venue code to buy on.")
    sell_venue = VenueCodeField(slug_field="code", queryset=Venue.objects.all(), help_text="Venue code to sell on.")
    quantity = DecimalInputField(help_text='Base-asset quantity, as a decimal string, e.g. "0.01".')
    buy_price = DecimalInputField(help_text="Limit price of the buy leg, as a decimal string.")
    sell_price = DecimalInputField(help_text="Limit price of the sell leg, as a decimal string.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["buy_venue"].pk == attrs["sell_venue"].pk:
            raise serializers.ValidationError({"sell_venue": ["must differ from buy_venue"]})
        return attrs


class ExecutionCancelSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="Why, for the audit log."
    )


class OpportunitySerializer(_DecimalModelSerializer):
    buy_venue: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="code", read_only=True)
    sell_venue: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="code", read_only=True)
    status = NamedChoiceField(OpportunityStatus.choices, enum_name="OpportunityStatus", read_only=True)

    class Meta:
        model = ArbitrageOpportunity
        fields = [
            "id",
            "symbol",
            "status",
            "buy_venue",
            "sell_venue",
            "buy_price",
            "sell_price",
            "buy_qty_available",
            "sell_qty_available",
            "quantity",
            "gross_rate",
            "net_rate",
            "estimated_profit",
            "detected_at",
            "buy_quote_age_ms",
            "sell_quote_age_ms",
            "reject_code",
            "reject_reason",
        ]
        read_only_fields = fields


class BalanceSerializer(_DecimalModelSerializer):
    account: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="name", read_only=True)
    venue = serializers.CharField(source="account.venue.code", read_only=True)
    available = PlainDecimalField(read_only=True, help_text="free - reserved")

    class Meta:
        model = AccountBalance
        fields = ["account", "venue", "asset", "free", "locked", "reserved", "available", "updated_at", "synced_at"]
        read_only_fields = fields


class StatisticsQuerySerializer(serializers.Serializer):
    start = serializers.DateTimeField(required=False, help_text="ISO 8601, inclusive. Default: end - 30 days.")
    end = serializers.DateTimeField(required=False, help_text="ISO 8601, exclusive. Default: now.")
    symbol = SymbolField(required=False, help_text="Only this symbol.")
    group_by = NamedChoiceField(
        list(STATISTICS_GROUPS),
        enum_name="StatisticsGroupBy",
        required=False,
        help_text="Also break the figures down per UTC day or symbol.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("start"), attrs.get("end")
        if start is not None and end is not None and start > end:
            raise serializers.ValidationError({"start": ["must not be after end"]})
        return attrs


class StatisticsFiguresSerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text="Executions started in the range.")
    completed = serializers.IntegerField()
    failed = serializers.IntegerField()
    settled = serializers.IntegerField(help_text="Executions with an actual profit recorded.")
    wins = serializers.IntegerField(help_text="Settled executions with a positive actual profit.")
    total_expected_profit = PlainDecimalField(help_text="Sum of the estimated profits, in the quote asset.")
    total_actual_profit = PlainDecimalField(help_text="Sum of the actual profits, in the quote asset.")
    average_profit = PlainDecimalField(allow_null=True, help_text="Actual profit per settled execution.")
    win_rate = PlainDecimalField(allow_null=True, help_text="wins / settled, from 0 to 1.")
    total_fees = PlainDecimalField(help_text="Sum of the fees, in the quote asset.")


class StatisticsGroupSerializer(StatisticsFiguresSerializer):
    key = serializers.CharField(help_text="The UTC day (YYYY-MM-DD) or the symbol.")


class ExecutionStatisticsSerializer(StatisticsFiguresSerializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    symbol = serializers.CharField(allow_null=True)
    group_by = serializers.CharField(allow_null=True)
    groups = StatisticsGroupSerializer(many=True, help_text="Empty without group_by.")

    def to_representation(self, instance: Any) -> Any:
        """From an ``ExecutionStatisticsReport``: the summary's figures at the top level."""
        figures = {name: getattr(instance.summary, str(name)) for name in StatisticsFiguresSerializer().fields}
        return super().to_representation(
            {
                **figures,
                "start": instance.start,
                "end": instance.end,
                "symbol": instance.symbol,
                "group_by": instance.group_by,
                "groups": instance.groups,
            }
        )


class QualityQuerySerializer(serializers.Serializer):
    window_s = serializers.IntegerField(
        required=False, min_value=60, max_value=604800, default=3600,
        help_text="The rolling window, in seconds, over the executions that ended in it. Default: one hour.",
    )  # fmt: skip


class StagePercentilesSerializer(serializers.Serializer):
    p50 = serializers.FloatField(allow_null=True)
    p90 = serializers.FloatField(allow_null=True)
    p99 = serializers.FloatField(allow_null=True)


class StageLatencySerializer(serializers.Serializer):
    detect_to_submit = StagePercentilesSerializer(help_text="Detection to the first order sent, ms.")
    submit_to_ack = StagePercentilesSerializer(help_text="Sent to every leg acknowledged by its venue, ms.")
    ack_to_fill = StagePercentilesSerializer(help_text="Acknowledged to every leg done, ms.")


class BookAgeSerializer(serializers.Serializer):
    p50 = serializers.FloatField(allow_null=True)
    p99 = serializers.FloatField(allow_null=True)


class PairQualitySerializer(serializers.Serializer):
    buy_venue = serializers.CharField()
    sell_venue = serializers.CharField()
    taken = serializers.IntegerField()
    completed = serializers.IntegerField()
    unwound = serializers.IntegerField()
    failed = serializers.IntegerField()
    capture_rate = PlainDecimalField(allow_null=True, help_text="COMPLETED / taken.")
    expected_profit = PlainDecimalField()
    actual_profit = PlainDecimalField()
    realised_to_expected = PlainDecimalField(allow_null=True, help_text="Actual over expected profit.")
    gross_profit = PlainDecimalField(help_text="Profit of the completed executions.")
    legging_loss = PlainDecimalField(help_text="What the unwound executions lost.")
    legging_loss_share = PlainDecimalField(allow_null=True, help_text="Legging loss over gross profit.")
    latency_ms = StageLatencySerializer()
    book_age_ms = BookAgeSerializer(help_text="Age of the paper book at fill, ms (empty for live venues).")


class QualityReportSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    window_s = serializers.IntegerField()
    pairs = PairQualitySerializer(many=True)
