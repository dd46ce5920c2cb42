from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.utils.html import format_html, format_html_join

from arbitragex.admin_utils import LargeTableAdmin, ReadOnlyAdmin
from trading.models import (
    AccountBalance,
    ArbitrageOpportunity,
    ExchangeAccount,
    Fill,
    Incident,
    Order,
    PaperFill,
    PaperOrder,
    TradeExecution,
)


class ExchangeAccountForm(forms.ModelForm):
    api_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only: stored encrypted, never shown again. Leave blank to keep the current secret.",
    )

    class Meta:
        model = ExchangeAccount
        fields = ["name", "venue", "mode", "enabled", "api_key"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        mode = cleaned.get("mode")
        has_secret = bool(cleaned.get("api_secret")) or bool(self.instance.api_secret_encrypted)
        if mode == "live" and (not cleaned.get("api_key") or not has_secret):
            raise forms.ValidationError("A live account needs an API key and an API secret.")
        return cleaned

    def save(self, commit: bool = True) -> ExchangeAccount:
        account = super().save(commit=False)
        secret = self.cleaned_data.get("api_secret")
        if secret:
            account.set_api_secret(secret)
        if commit:
            account.save()
        return account


class BalanceInline(admin.TabularInline):
    model = AccountBalance
    extra = 0
    fields = ["asset", "free", "locked", "reserved", "synced_at", "updated_at"]
    readonly_fields = ["synced_at", "updated_at"]


@admin.register(ExchangeAccount)
class ExchangeAccountAdmin(admin.ModelAdmin):
    form = ExchangeAccountForm
    list_display = ["name", "venue", "mode", "enabled", "api_key", "secret", "updated_at"]
    list_filter = ["mode", "enabled", "venue"]
    search_fields = ["name", "api_key"]
    readonly_fields = ["secret", "created_at", "updated_at"]
    inlines = [BalanceInline]

    @admin.display(description="API secret")
    def secret(self, obj: ExchangeAccount) -> str:
        return obj.api_secret_masked or "—"


@admin.register(ArbitrageOpportunity)
class ArbitrageOpportunityAdmin(LargeTableAdmin, ReadOnlyAdmin):
    list_display = ["detected_at", "symbol", "buy_venue", "sell_venue", "buy_price", "sell_price", "quantity",
                    "net_rate", "estimated_profit", "status", "reject_reason"]  # fmt: skip
    list_filter = ["status", "symbol", "buy_venue", "sell_venue"]
    search_fields = ["symbol", "reject_reason"]
    date_hierarchy = "detected_at"
    list_select_related = ["buy_venue", "sell_venue"]


ORDER_FIELDS = ["client_order_id", "leg", "side", "type", "account", "price", "quantity", "filled_qty", "avg_price",
                "fee_quote", "status", "exchange_order_id", "error_message", "submitted_at", "acknowledged_at",
                "filled_at"]  # fmt: skip


class OrderInline(admin.TabularInline):
    model = Order
    extra = 0
    fields = tuple(ORDER_FIELDS)
    readonly_fields = ORDER_FIELDS
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False


FILL_FIELDS = ["trade_id", "price", "qty", "quote_qty", "commission", "commission_asset", "commission_quote",
               "is_maker", "filled_at"]  # fmt: skip


class FillInline(admin.TabularInline):
    model = Fill
    extra = 0
    fields = tuple(FILL_FIELDS)
    readonly_fields = FILL_FIELDS
    can_delete = False

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False


EXECUTION_READONLY = [
    "id", "opportunity", "symbol", "base_asset", "quote_asset", "buy_account", "sell_account", "buy_venue",
    "sell_venue", "buy_price", "sell_price", "quantity", "expected_profit", "actual_profit", "fees_quote",
    "profit_diff_fees", "profit_diff_slippage", "profit_diff_latency", "residual_qty", "status",
    "leg_failure_policy", "error_code", "error_message", "reserved_quote", "reserved_base", "is_manual",
    "created_by", "detected_at", "started_at", "submitted_at", "acknowledged_at", "filled_at", "completed_at",
    "updated_at", "fills_table",
]  # fmt: skip


@admin.register(TradeExecution)
class TradeExecutionAdmin(LargeTableAdmin):
    list_display = ["started_at", "symbol", "buy_venue", "sell_venue", "quantity", "expected_profit",
                    "actual_profit", "status", "completed_at"]  # fmt: skip
    list_filter = ["status", "symbol", "buy_venue", "sell_venue", "is_manual"]
    search_fields = ["=id", "symbol", "error_message"]
    date_hierarchy = "started_at"
    list_select_related = ["buy_venue", "sell_venue"]
    readonly_fields = EXECUTION_READONLY
    inlines = [OrderInline]

    def has_add_permission(self, request: Any) -> bool:
        # Executions are created through the risk-checked services (API or opportunity handler).
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    @admin.display(description="fills")
    def fills_table(self, obj: TradeExecution) -> str:
        fills = Fill.objects.filter(order__execution=obj).select_related("order").order_by("filled_at", "id")
        if not fills:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} {}</td><td>{}</td></tr>",
            (
                (f.order.client_order_id, f.order.side, f.trade_id, f.price, f.qty, f.commission,
                 f.commission_asset, f.filled_at)
                for f in fills
            ),
        )  # fmt: skip
        return format_html(
            "<table><tr><th>order</th><th>side</th><th>trade</th><th>price</th><th>qty</th><th>fee</th>"
            "<th>at</th></tr>{}</table>",
            rows,
        )


@admin.register(Order)
class OrderAdmin(LargeTableAdmin):
    list_display = ["created_at", "client_order_id", "symbol", "side", "leg", "venue", "price", "quantity",
                    "filled_qty", "status"]  # fmt: skip
    list_filter = ["status", "side", "leg", "venue", "symbol"]
    search_fields = ["=client_order_id", "=exchange_order_id", "symbol"]
    date_hierarchy = "created_at"
    list_select_related = ["venue"]
    readonly_fields = [*ORDER_FIELDS, "execution", "venue", "symbol", "time_in_force", "cumulative_quote",
                       "last_update_ms", "error_code", "place_attempts", "created_at", "updated_at"]  # fmt: skip
    inlines = [FillInline]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(Fill)
class FillAdmin(LargeTableAdmin, ReadOnlyAdmin):
    list_display = ["filled_at", "order", "trade_id", "price", "qty", "commission", "commission_asset", "is_maker"]
    search_fields = ["=trade_id", "=order__client_order_id"]
    date_hierarchy = "filled_at"
    list_select_related = ["order"]


@admin.register(AccountBalance)
class AccountBalanceAdmin(admin.ModelAdmin):
    list_display = ["account", "asset", "free", "locked", "reserved", "synced_at", "updated_at"]
    list_filter = ["account", "asset"]
    search_fields = ["asset", "account__name"]
    readonly_fields = ["synced_at", "updated_at"]
    list_select_related = ["account"]


@admin.register(Incident)
class IncidentAdmin(LargeTableAdmin, ReadOnlyAdmin):
    list_display = ["detected_at", "kind", "account", "symbol", "asset", "local_value", "venue_value", "drift",
                    "resolved_at"]  # fmt: skip
    list_filter = ["kind", "account"]
    search_fields = ["symbol", "asset"]
    date_hierarchy = "detected_at"


class PaperFillInline(admin.TabularInline):
    model = PaperFill
    fields = ("id", "price", "qty", "commission", "commission_asset", "is_maker", "time_ms")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(PaperOrder)
class PaperOrderAdmin(LargeTableAdmin, ReadOnlyAdmin):
    """The paper venue's own records: written by the paper gateway only."""

    list_display = ["id", "client_order_id", "account", "symbol", "side", "type", "time_in_force", "price",
                    "quantity", "filled_qty", "locked", "status"]  # fmt: skip
    list_filter = ["status", "side", "type", "account", "symbol"]
    search_fields = ["=client_order_id", "symbol"]
    list_select_related = ["account"]
    inlines = [PaperFillInline]
