from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from arbitragex.money import fmt
from marketdata.models import Instrument, Kline, Venue

SYMBOL_PATTERN = r"^[A-Z0-9]{2,32}$"
KLINES_MAX = 1440  # one day of one-minute candles


class PlainDecimalField(serializers.DecimalField):
    """A decimal as a plain string without exponent or padding zeros ("0.001", not "0.001000000000000000")."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", 36)
        kwargs.setdefault("decimal_places", 18)
        super().__init__(**kwargs)

    def to_representation(self, value: Decimal) -> str | None:  # type: ignore[override]
        return fmt(value)


class SymbolField(serializers.RegexField):
    """A symbol, upper-cased before it is checked."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("error_messages", {"invalid": "2 to 32 letters and digits, e.g. BTCUSDT"})
        super().__init__(SYMBOL_PATTERN, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        if isinstance(data, str):
            data = data.strip().upper()
        return super().to_internal_value(data)


class _DecimalModelSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        **{field: PlainDecimalField for field, mapped in serializers.ModelSerializer.serializer_field_mapping.items()
           if mapped is serializers.DecimalField},
    }  # fmt: skip


class VenueSerializer(_DecimalModelSerializer):
    class Meta:
        model = Venue
        fields = [
            "code",
            "name",
            "kind",
            "enabled",
            "testnet",
            "tld",
            "default_taker_fee",
            "default_maker_fee",
            "last_event_at",
            "reconnect_count",
            "banned_until",
        ]
        read_only_fields = fields


class InstrumentSerializer(_DecimalModelSerializer):
    venue: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = Instrument
        fields = [
            "venue",
            "symbol",
            "base_asset",
            "quote_asset",
            "enabled",
            "status",
            "tick_size",
            "step_size",
            "min_qty",
            "max_qty",
            "min_notional",
            "taker_fee",
            "maker_fee",
            "updated_at",
        ]
        read_only_fields = fields


class QuoteQuerySerializer(serializers.Serializer):
    symbol = SymbolField()


class QuoteSerializer(serializers.Serializer):
    venue = serializers.CharField()
    symbol = serializers.CharField()
    bid = PlainDecimalField()
    bid_qty = PlainDecimalField()
    ask = PlainDecimalField()
    ask_qty = PlainDecimalField()
    exchange_ts = serializers.DateTimeField(allow_null=True, help_text="The venue's time of the quote, when sent.")
    received_ts = serializers.DateTimeField(help_text="When the stream received it.")
    age_ms = serializers.IntegerField(help_text="Milliseconds since it was received.")


class KlineQuerySerializer(serializers.Serializer):
    venue = serializers.SlugField(max_length=32)
    symbol = SymbolField()
    start = serializers.DateTimeField(required=False, help_text="Inclusive; default: 24 hours before end.")
    end = serializers.DateTimeField(required=False, help_text="Exclusive; default: now.")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=KLINES_MAX, default=KLINES_MAX)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        end = attrs.get("end") or timezone.now()
        try:
            start = attrs.get("start") or end - timedelta(days=1)
        except OverflowError:  # an end less than a day after year 1 (was a 500)
            start = datetime.min.replace(tzinfo=UTC)
        if start >= end:
            raise serializers.ValidationError({"start": "must be before end"})
        attrs["start"], attrs["end"] = start, end
        return attrs


class KlineSerializer(_DecimalModelSerializer):
    class Meta:
        model = Kline
        fields = ["open_time", "open", "high", "low", "close", "volume", "trades"]
        read_only_fields = fields
