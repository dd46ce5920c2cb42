from __future__ import annotations

from django.contrib import admin

from risk.models import RiskState


@admin.register(RiskState)
class RiskStateAdmin(admin.ModelAdmin):
    list_display = ["account", "symbol", "current_equity", "peak_equity", "daily_pnl", "consecutive_losses",
                    "breaker_open", "breaker_until", "last_reset_date", "updated_at"]  # fmt: skip
    list_filter = ["breaker_open"]
    search_fields = ["account", "symbol"]
    readonly_fields = ["created_at", "updated_at"]
