from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import URLPattern, path, reverse

from arbitragex.admin_confirm import action_confirmation, is_confirmed, operation_confirmation
from arbitragex.admin_display import FiguresAdminMixin
from risk import services
from risk.admin_display import RISK_STATE_FIGURES
from risk.breaker import TripReason
from risk.models import GLOBAL_SCOPE, RiskState


@admin.register(RiskState)
class RiskStateAdmin(FiguresAdminMixin, admin.ModelAdmin):
    figure_set = RISK_STATE_FIGURES
    list_display = ["account", "symbol", "current_equity", "peak_equity", "daily_pnl", "consecutive_losses",
                    "breaker_open", "breaker_until", "last_reset_date", "updated_at"]  # fmt: skip
    list_filter = ["breaker_open"]
    search_fields = ["account", "symbol"]
    readonly_fields = ["created_at", "updated_at"]
    actions = ["open_breaker", "close_breaker", "reset_daily_figures"]

    # --- operations: each goes through risk.services, which writes the audit row with the actor ---

    @admin.action(description="Open the breaker of the selected scopes", permissions=["change"])
    def open_breaker(self, request: HttpRequest, queryset: QuerySet[RiskState]) -> HttpResponse | None:
        if not is_confirmed(request):
            return action_confirmation(
                self,
                request,
                queryset,
                action="open_breaker",
                describe=_scope_state,
                title="Open the breaker",
                question="Open the circuit breaker of these scopes?",
                confirm_label="Yes, open the breaker",
                consequences=[
                    "No new execution starts in these scopes until the breaker is closed by hand.",
                    "Executions already running are followed to the end.",
                ],
            )
        for row in queryset.order_by("pk"):
            services.breaker_open(account=row.account, symbol=row.symbol, reason=TripReason.MANUAL, actor=request.user)
        self.message_user(request, f"Breaker opened: {', '.join(r.scope for r in queryset)}.", messages.WARNING)
        return None

    @admin.action(description="Close the breaker of the selected scopes", permissions=["change"])
    def close_breaker(self, request: HttpRequest, queryset: QuerySet[RiskState]) -> HttpResponse | None:
        if not is_confirmed(request):
            return action_confirmation(
                self,
                request,
                queryset,
                action="close_breaker",
                describe=_scope_state,
                title="Close the breaker",
                question="Close the circuit breaker of these scopes?",
                confirm_label="Yes, close the breaker",
                consequences=[
                    "Trading resumes in these scopes (the kill switch and the risk checks still apply).",
                    "The figures that tripped it (losses, drawdown) are not reset.",
                ],
            )
        for row in queryset.order_by("pk"):
            services.breaker_close(account=row.account, symbol=row.symbol, actor=request.user)
        self.message_user(request, f"Breaker closed: {', '.join(r.scope for r in queryset)}.", messages.SUCCESS)
        return None

    @admin.action(description="Reset the daily figures (every scope)", permissions=["change"])
    def reset_daily_figures(self, request: HttpRequest, queryset: QuerySet[RiskState]) -> HttpResponse | None:
        if not is_confirmed(request):
            return action_confirmation(
                self,
                request,
                queryset,
                action="reset_daily_figures",
                title="Reset the daily figures",
                question="Zero the daily PnL of every scope for today (UTC)?",
                confirm_label="Yes, reset them",
                consequences=[
                    "This applies to every scope, not only the selected ones: the daily reset is desk-wide.",
                    "A scope already reset today is left as it is (the reset is once per UTC day).",
                    "The daily-loss limit of the breaker then counts from zero.",
                ],
            )
        changed = services.risk_daily_reset(actor=request.user)
        self.message_user(request, f"Daily figures reset: {changed} scope(s) zeroed for today.", messages.SUCCESS)
        return None

    def get_urls(self) -> list[URLPattern]:
        # Before the stock routes: their "<path:object_id>/" would take "breaker/open/" for a row.
        view = self.admin_site.admin_view(self.desk_breaker_view)
        return [path("breaker/<str:operation>/", view, name="risk_riskstate_desk_breaker"), *super().get_urls()]

    def desk_breaker_view(self, request: HttpRequest, operation: str) -> HttpResponse:
        """Open or close the desk-wide (global) breaker, whether or not its row exists yet."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        if operation not in ("open", "close"):
            self.message_user(request, f"{operation!r}: the breaker is opened or closed", messages.ERROR)
            return redirect("admin:index")
        row = RiskState.objects.filter(account=GLOBAL_SCOPE, symbol="").first()
        if is_confirmed(request):
            if operation == "open":
                services.breaker_open(reason=TripReason.MANUAL, actor=request.user)
                self.message_user(request, "Desk breaker opened: no new execution starts.", messages.WARNING)
            else:
                services.breaker_close(actor=request.user)
                self.message_user(request, "Desk breaker closed: trading may resume.", messages.SUCCESS)
            return redirect("admin:index")
        if operation == "open":
            consequences = [
                "No new execution starts anywhere until the breaker is closed by hand.",
                "Executions already running are followed to the end.",
            ]
        else:
            consequences = [
                "Trading resumes (the kill switch and the risk checks still apply).",
                "The figures that tripped it (losses, drawdown) are not reset.",
            ]
        current = "closed"
        if row is not None and row.breaker_open:
            current = f"open ({row.breaker_reason or 'no reason given'})"
        return operation_confirmation(
            request,
            admin_site=self.admin_site,
            opts=self.model._meta,
            title=f"{operation.capitalize()} the desk breaker",
            question=f"{operation.capitalize()} the desk-wide circuit breaker?",
            current=f"the desk breaker is {current}",
            consequences=consequences,
            confirm_label=f"Yes, {operation} the breaker",
            cancel_url=reverse("admin:index"),
        )


def _scope_state(row: RiskState) -> str:
    if not row.breaker_open:
        return f"{row}: breaker closed"
    return f"{row}: breaker open ({row.breaker_reason or 'no reason given'})"
