from __future__ import annotations

from django.utils import timezone
from rest_framework import serializers

from arbitragex.views import PlainDecimalField
from risk.breaker import breaker_active
from risk.models import GLOBAL_SCOPE, RiskState

SCOPE_ACCOUNT_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"


class RiskStateSerializer(serializers.ModelSerializer):
    scope = serializers.CharField(read_only=True, help_text="account:symbol ('*' = every symbol).")
    breaker_effective = serializers.SerializerMethodField(
        help_text="Whether the breaker blocks trading now (an open breaker past its cooldown does not)."
    )
    initial_equity = PlainDecimalField(read_only=True)
    current_equity = PlainDecimalField(read_only=True)
    peak_equity = PlainDecimalField(read_only=True)
    daily_pnl = PlainDecimalField(read_only=True)

    class Meta:
        model = RiskState
        fields = [
            "account",
            "symbol",
            "scope",
            "initial_equity",
            "current_equity",
            "peak_equity",
            "daily_pnl",
            "consecutive_losses",
            "total_trades",
            "breaker_open",
            "breaker_until",
            "breaker_reason",
            "breaker_effective",
            "last_reset_date",
            "updated_at",
        ]
        read_only_fields = fields

    def get_breaker_effective(self, row: RiskState) -> bool:
        return breaker_active(breaker_open=row.breaker_open, breaker_until=row.breaker_until, now=timezone.now())


class ScopeSerializer(serializers.Serializer):
    account = serializers.RegexField(
        SCOPE_ACCOUNT_PATTERN,
        required=False,
        default=GLOBAL_SCOPE,
        help_text="'global' for the whole desk (default), else an exchange account id.",
    )
    symbol = serializers.RegexField(
        r"^[A-Za-z0-9]{0,32}$", required=False, default="", allow_blank=True, help_text="'' = every symbol."
    )

    def validate_symbol(self, value: str) -> str:
        return value.upper()


class BreakerOpenSerializer(ScopeSerializer):
    reason = serializers.CharField(
        required=False, default="manual", max_length=200, help_text="Why it is opened (kept on the state)."
    )
    cooldown_seconds = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        max_value=30 * 86400,
        help_text="Close automatically after this long; omit to keep it open until closed by hand.",
    )


class DailyResetSerializer(serializers.Serializer):
    date = serializers.DateField(required=False, help_text="The new trading day (UTC). Default: today.")


class DailyResetResultSerializer(serializers.Serializer):
    date = serializers.DateField()
    scopes_reset = serializers.IntegerField(help_text="Scopes whose daily figures were zeroed (0 if already done).")
