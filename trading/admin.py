from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from arbitragex.admin_confirm import Button, action_confirmation, is_confirmed, operation_confirmation
from arbitragex.admin_display import FiguresAdminMixin
from arbitragex.admin_ledger import LedgerAdmin, ReadOnlyInline
from arbitragex.admin_utils import LargeTableAdmin, ReadOnlyAdmin
from arbitragex.errors import ApplicationError
from arbitragex.money import fmt
from marketdata.admin import InstrumentSymbolFilter
from trading import admin_display as figures
from trading import selectors, services
from trading.enums import AccountMode, ExecutionStatus
from trading.models import (
    AccountBalance,
    ArbitrageOpportunity,
    ExchangeAccount,
    ExecutionDayRollup,
    Fill,
    Incident,
    Order,
    PaperFill,
    PaperOrder,
    ReplayReport,
    TradeExecution,
)
from trading.tasks import reconcile as reconcile_task
from venues.ccxt.exchange import requires_passphrase
from venues.registry import family_get

# Venue API keys and secrets are printable ASCII: whitespace or a control character would end up in an
# HTTP header (the key) or in what is signed (the secret), and no venue would accept it.
_CREDENTIAL = re.compile(r"[\x21-\x7e]+")


def _credential(value: str, what: str) -> str:
    if value and not _CREDENTIAL.fullmatch(value):
        raise forms.ValidationError(f"The {what} is printable ASCII, without spaces or control characters.")
    return value


def _needs_passphrase(venue: Any) -> bool:
    """A ccxt venue whose exchange signs with a passphrase (OKX)."""
    if venue.kind != "ccxt" or not venue.ccxt_exchange:
        return False
    try:
        return requires_passphrase(str(venue.ccxt_exchange))
    except ValueError:
        return False  # the venue's own form refuses an unknown exchange


class ExchangeAccountForm(forms.ModelForm):
    api_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only: stored encrypted, never shown again. Leave blank to keep the current secret.",
    )
    api_passphrase = forms.CharField(
        required=False,
        label="API passphrase",
        widget=forms.PasswordInput(render_value=False),
        help_text="OKX (and the venues that sign with one): the passphrase chosen with the key. Write-only: stored "
        "encrypted, never shown again. Leave blank to keep the current passphrase.",
    )

    class Meta:
        model = ExchangeAccount
        fields = ["name", "venue", "mode", "enabled", "api_key"]

    def clean_api_key(self) -> str:
        return _credential(self.cleaned_data.get("api_key") or "", "API key")

    def clean_api_secret(self) -> str:
        return _credential(self.cleaned_data.get("api_secret") or "", "API secret")

    def clean_api_passphrase(self) -> str:
        return _credential(self.cleaned_data.get("api_passphrase") or "", "API passphrase")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        mode = cleaned.get("mode")
        has_secret = bool(cleaned.get("api_secret")) or bool(self.instance.api_secret_encrypted)
        if mode == "live" and (not cleaned.get("api_key") or not has_secret):
            raise forms.ValidationError("A live account needs an API key and an API secret.")
        venue = cleaned.get("venue")
        has_passphrase = bool(cleaned.get("api_passphrase")) or bool(self.instance.api_passphrase_encrypted)
        if mode == "live" and venue is not None and _needs_passphrase(venue) and not has_passphrase:
            self.add_error(
                "api_passphrase",
                f"A live account on {venue.code} ({venue.ccxt_exchange}) needs the API passphrase chosen with its key.",
            )
        return cleaned

    def save(self, commit: bool = True) -> ExchangeAccount:
        account = super().save(commit=False)
        secret = self.cleaned_data.get("api_secret")
        if secret:
            account.set_api_secret(secret)
        passphrase = self.cleaned_data.get("api_passphrase")
        if passphrase:
            account.set_api_passphrase(passphrase)
        if commit:
            account.save()
        return account


class BalanceInline(FiguresAdminMixin, ReadOnlyInline, admin.TabularInline):
    model = AccountBalance
    figure_set = figures.BALANCE_FIGURES
    fields = ["asset", "free", "locked", "reserved", "synced_at", "updated_at"]
    readonly_fields = ["synced_at", "updated_at"]


@admin.register(ExchangeAccount)
class ExchangeAccountAdmin(admin.ModelAdmin):
    form = ExchangeAccountForm
    list_display = ["name", "venue", "mode", "enabled", "api_key", "secret", "passphrase", "updated_at"]
    list_filter = ["mode", "enabled", "venue"]
    search_fields = ["name", "api_key"]
    readonly_fields = ["secret", "passphrase", "created_at", "updated_at"]
    inlines = [BalanceInline]
    actions = ["test_connectivity"]

    @admin.display(description="API secret")
    def secret(self, obj: ExchangeAccount) -> str:
        return obj.api_secret_masked or "—"

    @admin.display(description="API passphrase")
    def passphrase(self, obj: ExchangeAccount) -> str:
        return obj.api_passphrase_masked or "—"

    @admin.action(description="Test connectivity (the venue, then the account's keys)")
    def test_connectivity(self, request: HttpRequest, queryset: QuerySet[ExchangeAccount]) -> None:
        for account in queryset.select_related("venue"):
            check = family_get(account.venue.kind).connectivity_check
            if check is None or account.mode != AccountMode.LIVE:
                self.message_user(request, f"{account.name}: a {account.mode} account on a {account.venue.kind} venue "
                                  "has no connection to test", messages.WARNING)  # fmt: skip
                continue
            report = async_to_sync(check)(account.venue, account)
            self.message_user(request, f"{account.name}: {report.summary()}",
                              messages.SUCCESS if report.ok else messages.ERROR)  # fmt: skip


@admin.register(ArbitrageOpportunity)
class ArbitrageOpportunityAdmin(FiguresAdminMixin, LargeTableAdmin, ReadOnlyAdmin):
    figure_set = figures.OPPORTUNITY_FIGURES
    list_display = ["detected_at", "symbol", "buy_venue", "sell_venue", "buy_price", "sell_price", "quantity",
                    "net_rate", "estimated_profit", "status", "reject_reason"]  # fmt: skip
    list_filter = ["status", InstrumentSymbolFilter, "buy_venue", "sell_venue"]
    search_fields = ["symbol", "reject_reason"]
    date_hierarchy = "detected_at"
    list_select_related = ["buy_venue", "sell_venue"]


ORDER_FIELDS = ["client_order_id", "leg", "side", "type", "account", "price", "quantity", "filled_qty", "avg_price",
                "fee_quote", "status", "exchange_order_id", "error_message", "submitted_at", "acknowledged_at",
                "filled_at"]  # fmt: skip


class OrderInline(FiguresAdminMixin, ReadOnlyInline, admin.TabularInline):
    model = Order
    figure_set = figures.ORDER_FIGURES
    fields = tuple(ORDER_FIELDS)
    readonly_fields = ORDER_FIELDS
    show_change_link = True


FILL_FIELDS = ["trade_id", "price", "qty", "quote_qty", "commission", "commission_asset", "commission_quote",
               "is_maker", "filled_at", "book_age_ms"]  # fmt: skip


class FillInline(FiguresAdminMixin, ReadOnlyInline, admin.TabularInline):
    model = Fill
    figure_set = figures.FILL_FIGURES
    fields = tuple(FILL_FIELDS)
    readonly_fields = FILL_FIELDS


EXECUTION_READONLY = [
    "id", "opportunity", "symbol", "base_asset", "quote_asset", "buy_account", "sell_account", "buy_venue",
    "sell_venue", "buy_price", "sell_price", "quantity", "expected_profit", "actual_profit", "fees_quote",
    "profit_diff_fees", "profit_diff_slippage", "profit_diff_latency", "residual_qty", "status",
    "leg_failure_policy", "policy", "first_leg", "band_bps", "error_code", "error_message", "reserved_quote",
    "reserved_base", "is_manual", "created_by", "detected_at", "started_at", "submitted_at", "acknowledged_at",
    "filled_at", "completed_at", "updated_at", "fills_table", "repair_steps_table",
]  # fmt: skip


@admin.register(TradeExecution)
class TradeExecutionAdmin(FiguresAdminMixin, LedgerAdmin, LargeTableAdmin):
    figure_set = figures.EXECUTION_FIGURES
    list_display = ["started_at", "symbol", "buy_venue", "sell_venue", "quantity", "expected_profit",
                    "actual_profit", "status", "completed_at"]  # fmt: skip
    list_filter = ["status", InstrumentSymbolFilter, "buy_venue", "sell_venue", "is_manual"]
    search_fields = ["=id", "symbol", "error_message"]
    date_hierarchy = "started_at"
    list_select_related = ["buy_venue", "sell_venue"]
    readonly_fields = EXECUTION_READONLY
    inlines = [OrderInline]
    actions = ["cancel_open_orders", "resolve_completed", "resolve_unwound", "resolve_failed"]

    @admin.action(description="Cancel the open orders of the selected executions", permissions=["change"])
    def cancel_open_orders(self, request: HttpRequest, queryset: QuerySet[TradeExecution]) -> HttpResponse | None:
        """Through ``trading.services.execution_cancel``, which audits each cancel."""
        if not is_confirmed(request):
            return action_confirmation(
                self,
                request,
                queryset,
                action="cancel_open_orders",
                describe=lambda e: f"{e.symbol} {e.pk} ({e.status}, {e.buy_venue} → {e.sell_venue})",
                title="Cancel open orders",
                question="Cancel the open orders of these executions at their venues?",
                confirm_label="Yes, cancel their open orders",
                consequences=[
                    "Each open order is cancelled at its venue; what already filled stays filled.",
                    "A leg left filled on one side is then handled by the leg-failure policy (unwind, retry or "
                    "alert), and the execution is settled with its actual profit.",
                    "Executions already finished are refused and reported below.",
                ],
            )
        reason = f"admin: cancelled by {request.user.get_username()}"
        self._each(
            request,
            queryset,
            lambda e: services.execution_cancel(execution_id=str(e.pk), actor=request.user, reason=reason),
            done="Cancel sent for {n}",
            refused="Not cancelled",
        )
        return None

    def _each(
        self,
        request: HttpRequest,
        queryset: QuerySet[TradeExecution],
        call: Callable[[TradeExecution], object],
        *,
        done: str,
        refused: str,
    ) -> None:
        """Call a service for each selected execution, oldest first; report what it did (``done``, with ``{n}``)
        and what it refused."""
        succeeded, failed = [], []
        for execution in queryset.order_by("started_at", "id"):
            try:
                call(execution)
            except ApplicationError as exc:
                failed.append(f"{execution.symbol} {execution.pk}: {exc.message}")
            else:
                succeeded.append(f"{execution.symbol} {execution.pk}")
        if succeeded:
            self.message_user(request, f"{done.format(n=len(succeeded))}: {'; '.join(succeeded)}.", messages.SUCCESS)
        if failed:
            self.message_user(request, f"{refused} ({len(failed)}): {'; '.join(failed)}", messages.ERROR)

    def _resolve(self, request: HttpRequest, queryset: QuerySet[TradeExecution], status: str) -> HttpResponse | None:
        action = f"resolve_{status.lower()}"
        if not is_confirmed(request):
            return action_confirmation(
                self,
                request,
                queryset,
                action=action,
                describe=lambda e: f"{e.symbol} {e.pk} ({e.status}: {e.error_message or 'no reason recorded'})",
                title=f"Resolve as {status}",
                question=f"Mark these executions {status}, with the figures recorded?",
                confirm_label=f"Yes, resolve them as {status}",
                consequences=[
                    "Check the orders at the venues first: the execution's fills and profit are taken as recorded.",
                    "Only executions needing attention with no order open at a venue are resolved; the others are "
                    "refused and reported below.",
                    "Each resolution is written to the audit log with your name.",
                ],
            )
        note = f"admin: resolved by {request.user.get_username()}"
        self._each(
            request,
            queryset,
            lambda e: services.execution_resolve(execution_id=str(e.pk), status=status, actor=request.user, note=note),
            done="Resolved {n} as " + status,
            refused="Not resolved",
        )
        return None

    @admin.action(description="Resolve as COMPLETED (needing attention, checked at the venues)", permissions=["change"])
    def resolve_completed(self, request: HttpRequest, queryset: QuerySet[TradeExecution]) -> HttpResponse | None:
        return self._resolve(request, queryset, ExecutionStatus.COMPLETED)

    @admin.action(description="Resolve as UNWOUND (needing attention, checked at the venues)", permissions=["change"])
    def resolve_unwound(self, request: HttpRequest, queryset: QuerySet[TradeExecution]) -> HttpResponse | None:
        return self._resolve(request, queryset, ExecutionStatus.UNWOUND)

    @admin.action(description="Resolve as FAILED (needing attention, checked at the venues)", permissions=["change"])
    def resolve_failed(self, request: HttpRequest, queryset: QuerySet[TradeExecution]) -> HttpResponse | None:
        return self._resolve(request, queryset, ExecutionStatus.FAILED)

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        """The execution page reads through the cache (``trading.selectors.execution_get``)."""
        if from_field is not None:
            return super().get_object(request, object_id, from_field)
        try:
            return selectors.execution_get(execution_id=object_id)
        except ApplicationError:
            return None

    @admin.display(description="fills")
    def fills_table(self, obj: TradeExecution) -> str | SafeString:
        return figures.fills_table(obj)

    @admin.display(description="Repair steps")
    def repair_steps_table(self, obj: TradeExecution) -> str | SafeString:
        return figures.repair_steps_table(obj)


@admin.register(Order)
class OrderAdmin(FiguresAdminMixin, LedgerAdmin, LargeTableAdmin):
    figure_set = figures.ORDER_FIGURES
    list_display = ["created_at", "client_order_id", "symbol", "side", "leg", "venue", "price", "quantity",
                    "filled_qty", "status"]  # fmt: skip
    list_filter = ["status", "side", "leg", "venue", InstrumentSymbolFilter]
    search_fields = ["=client_order_id", "=exchange_order_id", "symbol"]
    date_hierarchy = "created_at"
    list_select_related = ["venue"]
    readonly_fields = [*ORDER_FIELDS, "execution", "venue", "symbol", "time_in_force", "cumulative_quote",
                       "last_update_ms", "error_code", "place_attempts", "created_at", "updated_at"]  # fmt: skip
    inlines = [FillInline]
    actions = ["resync_orders"]

    @admin.action(description="Resync the selected orders from their venues", permissions=["change"])
    def resync_orders(self, request: HttpRequest, queryset: QuerySet[Order]) -> HttpResponse | None:
        """Runs the order sync service (``trading.sync.orders_sync_open``) now, which audits the run and
        every order it changed; reports what became of the selected ones."""
        if not is_confirmed(request):
            return action_confirmation(
                self,
                request,
                queryset,
                action="resync_orders",
                describe=lambda o: f"{o.client_order_id}: {o.side} {o.symbol} on {o.venue}, {o.status}",
                title="Resync orders",
                question="Ask the venues for the state of the open orders now?",
                confirm_label="Yes, resync now",
                consequences=[
                    "Runs the order sync at once, for every open order (the selected ones included): one open-orders "
                    "request per account and symbol, and a query for each order that left that list.",
                    "What the venue says (status, fills) is applied through the order state machine.",
                    "Orders not yet placed (PENDING) or already final are not asked about.",
                ],
            )
        before = {order.pk: (order.client_order_id, order.status) for order in queryset}
        try:
            result = services.orders_sync_open(actor=request.user)
        except ApplicationError as exc:
            self.message_user(request, f"Order sync failed: {exc.message}", messages.ERROR)
            return None
        after = dict(Order.objects.filter(pk__in=before).values_list("pk", "status"))
        changed = [
            f"{client_order_id} {status} → {after[pk]}"
            for pk, (client_order_id, status) in sorted(before.items())
            if after.get(pk, status) != status
        ]
        summary = (
            f"Order sync ran: {result.open_orders_calls} open-orders request(s), {result.order_queries} order "
            f"query(ies), {result.updated} order(s) updated."
        )
        detail = f" Selected orders changed: {'; '.join(changed)}." if changed else " No selected order changed."
        self.message_user(request, summary + detail, messages.SUCCESS)
        return None

    def get_urls(self) -> list[URLPattern]:
        # Before the stock routes: their "<path:object_id>/" would take "reconcile/" for a row.
        view = self.admin_site.admin_view(self.reconcile_view)
        return [path("reconcile/", view, name="trading_order_reconcile"), *super().get_urls()]

    def reconcile_view(self, request: HttpRequest) -> HttpResponse:
        """Run reconciliation now: queued for a worker (``trading.tasks.reconcile``) or run in this request."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        if is_confirmed(request):
            return reconcile_run(self, request, mode=request.POST.get("mode", "queue"))
        return operation_confirmation(
            request,
            admin_site=self.admin_site,
            opts=Incident._meta,
            title="Run reconciliation",
            question="Compare the orders and balances of every enabled account with their venues now?",
            confirm_label="Queue it for a worker",
            consequences=[
                "Orders open here but gone at the venue, venue orders unknown here and status drift become incidents.",
                "Balances are synced; drift above the threshold opens the breaker.",
                "Queued, a Celery worker runs it; run here, this page waits for every venue to answer.",
            ],
            buttons=[
                Button(label="Queue it for a worker", name="mode", value="queue"),
                Button(label="Run it now, here", name="mode", value="now", primary=False),
            ],
            cancel_url=reverse("admin:trading_incident_changelist"),
        )


@admin.register(Fill)
class FillAdmin(FiguresAdminMixin, LargeTableAdmin, ReadOnlyAdmin):
    figure_set = figures.FILL_FIGURES
    list_display = ["filled_at", "order", "trade_id", "price", "qty", "commission", "commission_asset", "is_maker"]
    search_fields = ["=trade_id", "=order__client_order_id"]
    date_hierarchy = "filled_at"
    list_select_related = ["order"]


@admin.register(AccountBalance)
class AccountBalanceAdmin(FiguresAdminMixin, LedgerAdmin):
    figure_set = figures.BALANCE_FIGURES
    list_display = ["account", "asset", "free", "locked", "reserved", "synced_at", "updated_at"]
    list_filter = ["account", "asset"]
    search_fields = ["asset", "account__name"]
    readonly_fields = ["synced_at", "updated_at"]
    list_select_related = ["account"]
    actions = ["resync_balances"]

    @admin.action(description="Resync the selected balances from their venues", permissions=["change"])
    def resync_balances(self, request: HttpRequest, queryset: QuerySet[AccountBalance]) -> HttpResponse | None:
        """Runs the balance sync service (``trading.balances.balances_sync``) for the accounts of the
        selected rows; it audits each account with its figures before and after."""
        if not is_confirmed(request):
            return action_confirmation(
                self,
                request,
                queryset.select_related("account"),
                action="resync_balances",
                describe=lambda b: f"{b.account.name} {b.asset}: free {fmt(b.free)}, locked {fmt(b.locked)}",
                title="Resync balances",
                question="Replace these balances with what their venues say now?",
                confirm_label="Yes, resync them",
                consequences=[
                    "Every balance of the selected rows' accounts is read from the venue; a live account's free and "
                    "locked figures are replaced (reservations are kept).",
                    "Drift from what the recorded fills explain becomes an incident; drift above the threshold opens "
                    "the breaker.",
                    "A paper account's balances are the simulated venue itself: they are only marked as synced.",
                ],
            )
        rows = list(queryset.select_related("account").order_by("pk"))
        try:
            drifts = services.balances_sync(account_ids=sorted({row.account_id for row in rows}), actor=request.user)
        except ApplicationError as exc:
            self.message_user(request, f"Balance sync failed: {exc.message}", messages.ERROR)
            return None
        skipped = sorted({row.account.name for row in rows if row.account_id not in drifts})
        found = sum(len(found) for found in drifts.values())
        self.message_user(
            request,
            f"Balances synced for {len(drifts)} account(s); {found} drift incident(s) recorded.",
            messages.SUCCESS if not found else messages.WARNING,
        )
        if skipped:
            self.message_user(request, f"Not synced (venue unreachable): {', '.join(skipped)}.", messages.ERROR)
        return None


@admin.register(Incident)
class IncidentAdmin(FiguresAdminMixin, LargeTableAdmin, ReadOnlyAdmin):
    figure_set = figures.INCIDENT_FIGURES
    list_display = ["detected_at", "kind", "account", "symbol", "asset", "local_value", "venue_value", "drift",
                    "resolved_at"]  # fmt: skip
    list_filter = ["kind", "account"]
    search_fields = ["symbol", "asset"]
    date_hierarchy = "detected_at"


@admin.register(ExecutionDayRollup)
class ExecutionDayRollupAdmin(FiguresAdminMixin, LargeTableAdmin, ReadOnlyAdmin):
    """Derived figures (``trading.rollup``): rewritten by the statistics rollup job, never by hand."""

    figure_set = figures.ROLLUP_FIGURES

    list_display = ["day", "symbol", "total", "completed", "failed", "settled", "wins", "expected_profit",
                    "actual_profit", "fees_quote", "computed_at"]  # fmt: skip
    search_fields = ["=symbol"]
    date_hierarchy = "day"


class PaperFillInline(FiguresAdminMixin, ReadOnlyInline, admin.TabularInline):
    model = PaperFill
    figure_set = figures.PAPER_FILL_FIGURES
    fields = ("id", "price", "qty", "commission", "commission_asset", "is_maker", "time_ms")
    readonly_fields = fields


@admin.register(PaperOrder)
class PaperOrderAdmin(FiguresAdminMixin, LargeTableAdmin, ReadOnlyAdmin):
    """The paper venue's own records: written by the paper gateway only."""

    figure_set = figures.PAPER_ORDER_FIGURES

    list_display = ["id", "client_order_id", "account", "symbol", "side", "type", "time_in_force", "price",
                    "quantity", "filled_qty", "locked", "status"]  # fmt: skip
    list_filter = ["status", "side", "type", "account", "symbol"]
    search_fields = ["=client_order_id", "symbol"]
    list_select_related = ["account"]
    inlines = [PaperFillInline]


# --- operations ----------------------------------------------------------------------------------------------


def reconcile_run(model_admin: OrderAdmin, request: HttpRequest, *, mode: str) -> HttpResponse:
    """Run ``trading.reconcile.reconcile`` here, or queue its task for a worker; the service audits the
    run with who asked for it."""
    if mode == "now":
        try:
            result = services.reconcile(actor=request.user)
        except ApplicationError as exc:
            model_admin.message_user(request, f"Reconciliation failed: {exc.message}", messages.ERROR)
            return redirect("admin:trading_incident_changelist")
        model_admin.message_user(
            request,
            f"Reconciliation ran over {result.accounts} account(s): {len(result.incidents)} new incident(s), "
            f"{len(result.adopted)} venue order(s) adopted.",
            messages.WARNING if result.incidents else messages.SUCCESS,
        )
        return redirect("admin:trading_incident_changelist")
    task_id = str(uuid.uuid4())
    try:
        reconcile_task.apply_async(kwargs={"requested_by": request.user.get_username()}, task_id=task_id)
    except Exception as exc:  # noqa: BLE001 (any broker failure: said to the operator instead of a 500)
        model_admin.message_user(
            request, f"Could not queue reconciliation: {type(exc).__name__}: {exc}", messages.ERROR
        )
        return redirect("admin:trading_incident_changelist")
    model_admin.message_user(
        request, f"Reconciliation queued (task {task_id}): its incidents appear here when a worker has run it."
    )
    return redirect("admin:trading_incident_changelist")


@admin.register(ReplayReport)
class ReplayReportAdmin(ReadOnlyAdmin):
    """The reports ``manage.py replay`` kept: listed with their best figures, each opened as written."""

    list_display = ["created_at", "source", "symbol", "seed", "grid_points", "best_point", "best_pnl", "report"]
    list_filter = ["source", "symbol"]
    fields = ("created_at", "source", "symbol", "seed", "grid_points", "parameters", "best", "pnl", "report")
    readonly_fields = fields

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)  # an old report may go; a report is never edited

    @admin.display(description="best grid point")
    def best_point(self, obj: ReplayReport) -> str:
        overrides = (obj.best or {}).get("overrides") or {}
        return ", ".join(f"{k}={v}" for k, v in overrides.items()) or "—"

    @admin.display(description="PnL of the best point", ordering="pnl")
    def best_pnl(self, obj: ReplayReport) -> str:
        return fmt(obj.pnl) or "0"

    @admin.display(description="report")
    def report(self, obj: ReplayReport) -> SafeString:
        url = reverse("admin:trading_replayreport_html", args=[obj.pk])
        return format_html('<a href="{}" target="_blank">open the report</a>', url)

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.html_view)
        return [path("<int:pk>/html/", view, name="trading_replayreport_html"), *super().get_urls()]

    def html_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        report = ReplayReport.objects.filter(pk=pk).first()
        if report is None:
            return HttpResponse("No such report.", status=404, content_type="text/plain")
        return HttpResponse(report.html, content_type="text/html; charset=utf-8")
