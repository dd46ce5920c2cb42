"""The admin's operations: each dangerous one shows a confirmation page first and changes nothing until
it is confirmed; then it goes through the service and leaves an audit row with who, what and the value
before. And the operations panel of the admin index."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from arbitragex.errors import ApplicationError, ErrorCode
from arbitragex.models import AuditLog, SystemConfig
from arbitragex.services import config_get, config_set
from config.operations import operations_overview
from risk.models import GLOBAL_SCOPE, RiskState
from tests.factories import (
    AccountBalanceFactory,
    ExchangeAccountFactory,
    InstrumentFactory,
    OrderFactory,
    RiskStateFactory,
    TradeExecutionFactory,
    VenueFactory,
)
from trading import services as trading_services
from trading.enums import AccountMode, ExecutionStatus, OrderLeg, OrderSide, OrderStatus
from trading.models import AccountBalance, Fill, Order, TradeExecution
from venues.gateway import BalanceReport, FillReport, Gateway, OrderReport

D = Decimal
CONFIRM_TEMPLATE = "admin/arbitragex/confirm_operation.html"
KILL_SWITCH = reverse("admin:arbitragex_systemconfig_kill_switch")
RECONCILE = reverse("admin:trading_order_reconcile")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def changelist(model: str) -> str:
    return reverse(f"admin:{model}_changelist")


def run_action(client, model: str, action: str, rows, *, confirmed: bool, **extra):
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(row.pk) for row in rows], **extra}
    if confirmed:
        data["confirmed"] = "yes"
    return client.post(changelist(model), data)


def assert_confirmation_page(response, *texts: str) -> str:
    assert response.status_code == 200, response.content[:500]
    assert CONFIRM_TEMPLATE in [t.name for t in response.templates]
    html = response.content.decode()
    assert 'name="confirmed" value="yes"' in html
    for text in texts:
        assert text in html, text
    return html


def messages_of(response) -> list[str]:
    return [str(m) for m in response.wsgi_request._messages]


def only_audit(action: str) -> AuditLog:
    rows = list(AuditLog.objects.filter(action=action))
    assert len(rows) == 1, rows
    return rows[0]


class ScriptedVenue(Gateway):
    """A venue that answers what the test scripted: order reports by client order id, and balances."""

    def __init__(self, *, orders=None, open_ids=(), balances=()):
        self.orders = orders or {}
        self.open_ids = set(open_ids)
        self.reports = list(balances)

    async def place_order(self, request):
        raise AssertionError("nothing is placed here")

    async def cancel_order(self, *, symbol, client_order_id):
        raise AssertionError("nothing is cancelled here")

    async def get_order(self, *, symbol, client_order_id):
        return self.orders.get(client_order_id)

    async def open_orders(self, *, symbol):
        return [r for cid, r in self.orders.items() if cid in self.open_ids and r.symbol == symbol]

    async def balances(self):
        return self.reports

    async def symbol_rules(self):
        return []


# --- kill switch -------------------------------------------------------------------------------------------


def test_the_kill_switch_asks_first_and_changes_nothing_until_confirmed(admin_client):
    response = admin_client.get(f"{KILL_SWITCH}?trading=off")

    html = assert_confirmation_page(response, "Turn trading off", "trading is ON", "No new execution starts")
    assert 'name="trading" value="off"' in html
    assert not SystemConfig.objects.exists()
    assert not AuditLog.objects.exists()
    # Posting the page without the confirmation field is not a confirmation either.
    assert_confirmation_page(admin_client.post(KILL_SWITCH, {"trading": "off"}))
    assert config_get("trading_enabled") is True


def test_the_kill_switch_turns_trading_off_then_on_with_an_audit_row_each(
    admin_client, admin_user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):  # the cached config is dropped on commit
        response = admin_client.post(KILL_SWITCH, {"trading": "off", "confirmed": "yes"})

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")
    assert config_get("trading_enabled") is False
    off = only_audit("config.set")
    assert (off.actor, off.target, off.previous, off.new) == (admin_user, "trading_enabled", True, False)

    page = admin_client.get(KILL_SWITCH)  # without ?trading=: the opposite of the current state
    assert_confirmation_page(page, "Turn trading on", "kill switch engaged")
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(KILL_SWITCH, {"trading": "on", "confirmed": "yes"})

    assert config_get("trading_enabled") is True
    on = AuditLog.objects.filter(action="config.set").latest("at")
    assert (on.actor, on.previous, on.new) == (admin_user, False, True)


def test_the_kill_switch_refuses_an_unknown_value(admin_client):
    response = admin_client.post(KILL_SWITCH, {"trading": "maybe", "confirmed": "yes"}, follow=True)

    assert "trading='maybe': use on or off" in messages_of(response)
    assert not AuditLog.objects.exists()


def test_the_kill_switch_needs_the_change_permission_on_system_config(client, db):
    viewer = get_user_model().objects.create_user(username="viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_systemconfig"))
    client.force_login(viewer)

    assert client.post(KILL_SWITCH, {"trading": "off", "confirmed": "yes"}).status_code == 403
    assert config_get("trading_enabled") is True


def test_the_system_config_list_links_the_kill_switch(admin_client):
    assert KILL_SWITCH in admin_client.get(changelist("arbitragex_systemconfig")).content.decode()


# --- breaker and daily figures --------------------------------------------------------------------------------


def test_opening_the_breaker_of_selected_scopes_asks_then_opens_it_and_audits(admin_client, admin_user):
    scope = RiskStateFactory(account="7", symbol="BTCUSDT")

    page = run_action(admin_client, "risk_riskstate", "open_breaker", [scope], confirmed=False)

    html = assert_confirmation_page(page, "Open the circuit breaker of these scopes?", "7/BTCUSDT")
    assert f'name="{ACTION_CHECKBOX_NAME}" value="{scope.pk}"' in html
    assert 'name="action" value="open_breaker"' in html
    scope.refresh_from_db()
    assert not scope.breaker_open

    done = run_action(admin_client, "risk_riskstate", "open_breaker", [scope], confirmed=True)

    assert done.status_code == 302
    scope.refresh_from_db()
    assert scope.breaker_open and scope.breaker_reason == "manual" and scope.breaker_until is None
    audit = only_audit("breaker.open")
    assert (audit.actor, audit.target, audit.previous["open"]) == (admin_user, "7/BTCUSDT", False)


def test_closing_the_breaker_of_selected_scopes(admin_client, admin_user):
    scope = RiskStateFactory(account="7", breaker_open=True, breaker_reason="daily_loss")

    assert_confirmation_page(run_action(admin_client, "risk_riskstate", "close_breaker", [scope], confirmed=False))
    run_action(admin_client, "risk_riskstate", "close_breaker", [scope], confirmed=True)

    scope.refresh_from_db()
    assert not scope.breaker_open
    audit = only_audit("breaker.close")
    assert (audit.actor, audit.previous) == (admin_user, {"open": True, "reason": "daily_loss"})


def test_resetting_the_daily_figures_zeroes_every_scope_not_yet_reset_today(admin_client, admin_user):
    yesterday = timezone.now().date() - timedelta(days=1)
    selected = RiskStateFactory(account="global", daily_pnl=D("-50"), last_reset_date=yesterday)
    other = RiskStateFactory(account="9", daily_pnl=D("12.5"), last_reset_date=yesterday)

    page = run_action(admin_client, "risk_riskstate", "reset_daily_figures", [selected], confirmed=False)
    assert_confirmation_page(page, "every scope")
    selected.refresh_from_db()
    assert selected.daily_pnl == D("-50")

    done = run_action(admin_client, "risk_riskstate", "reset_daily_figures", [selected], confirmed=True)

    assert done.status_code == 302
    for row in (selected, other):
        row.refresh_from_db()
        assert row.daily_pnl == 0 and row.last_reset_date == timezone.now().date()
    audit = only_audit("risk.daily_reset")
    assert audit.actor == admin_user
    assert set(audit.previous["daily_pnl"]) == {"global:*", "9:*"}
    assert D(audit.previous["daily_pnl"]["global:*"]) == D("-50")


def test_the_desk_breaker_is_opened_and_closed_from_its_own_page(admin_client, admin_user):
    open_url = reverse("admin:risk_riskstate_desk_breaker", args=["open"])

    assert_confirmation_page(admin_client.get(open_url), "the desk breaker is closed")
    assert not RiskState.objects.exists()
    admin_client.post(open_url, {"confirmed": "yes"})

    desk = RiskState.objects.get(account=GLOBAL_SCOPE, symbol="")
    assert desk.breaker_open
    assert only_audit("breaker.open").actor == admin_user

    close_url = reverse("admin:risk_riskstate_desk_breaker", args=["close"])
    assert_confirmation_page(admin_client.get(close_url), "the desk breaker is open (manual)")
    admin_client.post(close_url, {"confirmed": "yes"})

    desk.refresh_from_db()
    assert not desk.breaker_open
    assert only_audit("breaker.close").actor == admin_user


def test_the_desk_breaker_page_knows_only_open_and_close(admin_client):
    url = reverse("admin:risk_riskstate_desk_breaker", args=["explode"])

    response = admin_client.post(url, {"confirmed": "yes"}, follow=True)

    assert "'explode': the breaker is opened or closed" in messages_of(response)
    assert not AuditLog.objects.exists()


# --- cancel open orders -----------------------------------------------------------------------------------------


@pytest.fixture
def unfinished():
    execution = TradeExecutionFactory(status=ExecutionStatus.EXECUTING)
    OrderFactory(execution=execution, leg=OrderLeg.BUY, status=OrderStatus.SUBMITTED)
    OrderFactory(execution=execution, leg=OrderLeg.SELL, status=OrderStatus.SUBMITTED)
    return execution


def test_cancelling_asks_then_calls_the_lifecycle_service_for_each_execution(admin_client, admin_user, monkeypatch):
    calls = []

    def execution_cancel(*, execution_id, actor, reason=""):
        calls.append((str(execution_id), actor, reason))
        if len(calls) == 2:
            raise ApplicationError(ErrorCode.EXECUTION_NOT_CANCELLABLE, "execution is COMPLETED: nothing to cancel")

    monkeypatch.setattr(trading_services, "execution_cancel", execution_cancel, raising=False)
    now = timezone.now()
    first = TradeExecutionFactory(status=ExecutionStatus.EXECUTING, started_at=now - timedelta(seconds=5))
    finished = TradeExecutionFactory(status=ExecutionStatus.COMPLETED, started_at=now)

    page = run_action(admin_client, "trading_tradeexecution", "cancel_open_orders", [first, finished], confirmed=False)
    assert_confirmation_page(page, "Cancel the open orders of these executions")
    assert calls == []

    done = run_action(admin_client, "trading_tradeexecution", "cancel_open_orders", [first, finished], confirmed=True)

    assert [(cid, actor) for cid, actor, _ in calls] == [(str(first.id), admin_user), (str(finished.id), admin_user)]
    assert calls[0][2] == "admin: cancelled by admin"
    shown = messages_of(admin_client.get(done["Location"]))
    assert any(f"Cancel sent for 1: BTCUSDT {first.id}" in m for m in shown)
    assert any("execution is COMPLETED: nothing to cancel" in m for m in shown)


def test_cancelling_through_the_real_service_records_the_operator(admin_client, admin_user, unfinished):
    run_action(admin_client, "trading_tradeexecution", "cancel_open_orders", [unfinished], confirmed=True)

    row = AuditLog.objects.filter(target=str(unfinished.id)).latest("at")
    assert row.actor == admin_user


# --- order and balance resync -------------------------------------------------------------------------------------


def test_resyncing_orders_applies_what_the_venue_says_and_the_service_audits_the_run_and_each_change(
    admin_client, admin_user, monkeypatch
):
    execution = TradeExecutionFactory(status=ExecutionStatus.EXECUTING)
    submitted = timezone.now()
    buy = OrderFactory(execution=execution, leg=OrderLeg.BUY, status=OrderStatus.SUBMITTED, submitted_at=submitted)
    sell = OrderFactory(execution=execution, leg=OrderLeg.SELL, status=OrderStatus.SUBMITTED, submitted_at=submitted)
    venue = ScriptedVenue(
        orders={
            buy.client_order_id: OrderReport(
                client_order_id=buy.client_order_id, exchange_order_id="881", symbol="BTCUSDT", side=OrderSide.BUY,
                status=OrderStatus.FILLED, quantity=D("0.01"), filled_qty=D("0.01"), cumulative_quote=D("500"),
                price=D("50000"), update_time_ms=1_723_161_254_000,
                fills=(FillReport(trade_id="9001", price=D("50000"), qty=D("0.01"), commission=D("0.5"),
                                  commission_asset="USDT", time_ms=1_723_161_254_000),),
            ),
            sell.client_order_id: OrderReport(
                client_order_id=sell.client_order_id, exchange_order_id="882", symbol="BTCUSDT",
                side=OrderSide.SELL, status=OrderStatus.SUBMITTED, quantity=D("0.01"), filled_qty=D("0"),
                cumulative_quote=D("0"), price=D("50100"),
            ),
        },
        open_ids={sell.client_order_id},
    )  # fmt: skip
    monkeypatch.setattr("trading.gateways.gateway_for", lambda account: venue)

    page = run_action(admin_client, "trading_order", "resync_orders", [buy, sell], confirmed=False)
    assert_confirmation_page(page, "Ask the venues for the state of the open orders now?")
    assert Order.objects.get(pk=buy.pk).status == OrderStatus.SUBMITTED

    done = run_action(admin_client, "trading_order", "resync_orders", [buy, sell], confirmed=True)

    buy.refresh_from_db()
    assert (buy.status, buy.filled_qty) == (OrderStatus.FILLED, D("0.01"))
    assert Fill.objects.filter(order=buy, trade_id="9001").exists()
    audits = {row.target: row for row in AuditLog.objects.filter(action="order.sync")}
    assert set(audits) == {buy.client_order_id}  # the sell order did not change
    assert audits[buy.client_order_id].actor == admin_user
    assert audits[buy.client_order_id].previous == {"status": "SUBMITTED", "filled_qty": "0"}
    assert audits[buy.client_order_id].new == {"status": "FILLED", "filled_qty": "0.01"}
    run = only_audit("orders.sync")
    assert run.actor == admin_user and run.new["updated"] == 2  # both rows written (the sell got its venue id)
    shown = messages_of(admin_client.get(done["Location"]))
    assert any(f"{buy.client_order_id} SUBMITTED → FILLED" in m for m in shown)


def test_resyncing_a_live_balance_replaces_it_with_the_venues_and_audits_the_old_figures(
    admin_client, admin_user, monkeypatch
):
    account = ExchangeAccountFactory(name="live-1", mode=AccountMode.LIVE)
    usdt = AccountBalanceFactory(account=account, asset="USDT", free=D("1000"), locked=D("0"))
    venue = ScriptedVenue(balances=[BalanceReport(asset="USDT", free=D("987.65"), locked=D("12.35"))])
    monkeypatch.setattr("trading.gateways.gateway_for", lambda acct: venue)

    page = run_action(admin_client, "trading_accountbalance", "resync_balances", [usdt], confirmed=False)
    assert_confirmation_page(page, "Replace these balances with what their venues say now?", "live-1")
    assert AccountBalance.objects.get(pk=usdt.pk).free == D("1000")

    run_action(admin_client, "trading_accountbalance", "resync_balances", [usdt], confirmed=True)

    usdt.refresh_from_db()
    assert (usdt.free, usdt.locked) == (D("987.65"), D("12.35"))
    audit = only_audit("balance.sync")
    assert (audit.actor, audit.target) == (admin_user, "live-1")
    assert audit.previous == {"USDT": {"free": "1000", "locked": "0"}}
    assert audit.new == {"USDT": {"free": "987.65", "locked": "12.35"}}


def test_a_balance_whose_venue_does_not_answer_is_reported_and_audited_as_skipped(admin_client, monkeypatch):
    from venues.gateway import RetryableVenueError

    class Down(ScriptedVenue):
        async def balances(self):
            raise RetryableVenueError(ErrorCode.VENUE_UNAVAILABLE, "venue unreachable")

    account = ExchangeAccountFactory(name="live-down", mode=AccountMode.LIVE)
    row = AccountBalanceFactory(account=account, asset="USDT")
    monkeypatch.setattr("trading.gateways.gateway_for", lambda acct: Down())

    done = run_action(admin_client, "trading_accountbalance", "resync_balances", [row], confirmed=True)

    assert any(
        "Not synced (venue unreachable): live-down" in m for m in messages_of(admin_client.get(done["Location"]))
    )
    audit = only_audit("balance.sync")
    assert audit.new is None and audit.note.startswith("skipped")


# --- reconciliation -----------------------------------------------------------------------------------------------


def test_reconciliation_asks_whether_to_queue_it_or_run_it_here(admin_client):
    html = assert_confirmation_page(admin_client.get(RECONCILE), "Queue it for a worker", "Run it now, here")

    assert 'name="mode" value="now"' in html
    assert not AuditLog.objects.exists()


def test_reconciliation_run_here_reports_what_it_found_and_audits_the_run(admin_client, admin_user, monkeypatch):
    ExchangeAccountFactory(name="paper-1")
    monkeypatch.setattr("trading.gateways.gateway_for", lambda account: ScriptedVenue())

    response = admin_client.post(RECONCILE, {"confirmed": "yes", "mode": "now"})

    assert response["Location"] == changelist("trading_incident")
    assert any("Reconciliation ran over 1 account(s)" in m for m in messages_of(admin_client.get(response["Location"])))
    audit = only_audit("reconcile.run")
    assert audit.actor == admin_user
    assert audit.new == {"accounts": 1, "incidents": 0, "adopted": 0, "resolved": 0}


def test_reconciliation_queued_for_a_worker_is_audited_by_the_run_with_who_queued_it(admin_client, monkeypatch):
    from trading import tasks

    sent = []
    monkeypatch.setattr("trading.tasks.reconcile.apply_async", lambda **kwargs: sent.append(kwargs))
    ExchangeAccountFactory(name="paper-1")
    monkeypatch.setattr("trading.gateways.gateway_for", lambda account: ScriptedVenue())

    admin_client.post(RECONCILE, {"confirmed": "yes", "mode": "queue"})

    assert len(sent) == 1 and sent[0]["kwargs"] == {"requested_by": "admin"}
    assert not AuditLog.objects.exists()  # nothing ran yet
    tasks.reconcile(**sent[0]["kwargs"])  # what the worker runs
    audit = only_audit("reconcile.run")
    assert audit.actor_label == "admin (queued from the admin)"
    assert audit.new["accounts"] == 1


def test_reconciliation_says_so_when_the_broker_is_down(admin_client, monkeypatch):
    def refuse(**kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr("trading.tasks.reconcile.apply_async", refuse)

    response = admin_client.post(RECONCILE, {"confirmed": "yes", "mode": "queue"}, follow=True)

    assert any("Could not queue reconciliation: ConnectionError" in m for m in messages_of(response))
    assert not AuditLog.objects.exists()


def test_the_order_and_incident_lists_link_the_reconciliation(admin_client):
    assert RECONCILE in admin_client.get(changelist("trading_order")).content.decode()
    assert RECONCILE in admin_client.get(changelist("trading_incident")).content.decode()


# --- the operations panel of the admin index ------------------------------------------------------------------------


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def day_of_trading(db):
    """2024-08-08, 10:00 UTC: three executions completed today and one unwound, one completed yesterday,
    one failed, two open."""
    now = at("2024-08-08 10:00")
    for completed, profit, status in (
        ("2024-08-08 00:00:00", "0.4", ExecutionStatus.COMPLETED),
        ("2024-08-08 09:59:00", "-0.15", ExecutionStatus.COMPLETED),
        ("2024-08-08 09:30:00", "0.000000000000000001", ExecutionStatus.COMPLETED),
        ("2024-08-07 23:59:59", "100", ExecutionStatus.COMPLETED),  # yesterday
        ("2024-08-08 09:00:00", "-3", ExecutionStatus.FAILED),  # traded nothing
        ("2024-08-08 08:00:00", "-0.05", ExecutionStatus.UNWOUND),  # a loss booked today
    ):
        TradeExecutionFactory(status=status, actual_profit=D(profit), completed_at=at(completed),
                              started_at=at(completed) - timedelta(seconds=3))  # fmt: skip
    TradeExecutionFactory(status=ExecutionStatus.EXECUTING, started_at=now)
    TradeExecutionFactory(status=ExecutionStatus.UNWINDING, started_at=now)
    TradeExecutionFactory(status=ExecutionStatus.NEEDS_ATTENTION, started_at=now)  # parked: not open
    return now


def test_the_overview_figures(day_of_trading):
    RiskStateFactory(account=GLOBAL_SCOPE, breaker_open=True, breaker_reason="daily_loss")
    RiskStateFactory(account="5", symbol="ETHUSDT", breaker_open=True, breaker_reason="manual")
    RiskStateFactory(account="6", breaker_open=True, breaker_until=day_of_trading - timedelta(minutes=1))  # cooled
    quiet = VenueFactory(code="zz-quiet", last_event_at=day_of_trading - timedelta(minutes=5), reconnect_count=3)
    banned = VenueFactory(code="zz-banned", last_event_at=day_of_trading - timedelta(seconds=2), used_weight=1180,
                          banned_until=day_of_trading + timedelta(minutes=2))  # fmt: skip
    config_set(key="trading_enabled", value=False)
    InstrumentFactory(venue=quiet, symbol="BTCUSDT")  # every instrument quoted in USDT: the desk's asset

    overview = operations_overview(now=day_of_trading)

    expected = D("0.200000000000000001")
    assert overview.day == date(2024, 8, 8)
    assert overview.pnl_today == expected
    assert overview.pnl_today_display == "0.2 USDT"  # the exact sum, shown to the cent
    assert overview.completed_today == 4
    assert overview.open_executions == 2
    assert overview.trading_enabled is False
    assert (overview.breaker_open, overview.breaker_reason) == (True, "daily_loss")
    assert overview.other_breakers_open == ["5:ETHUSDT"]
    health = {v.code: v for v in overview.venues}
    assert (health[quiet.code].silent, health[quiet.code].reconnect_count) == (True, 3)
    assert (health[banned.code].silent, health[banned.code].banned, health[banned.code].used_weight) == (
        False,
        True,
        1180,
    )


def test_the_overview_takes_a_fixed_number_of_queries(day_of_trading, django_assert_max_num_queries):
    for n in range(5):
        VenueFactory(code=f"venue-extra-{n}")
        RiskStateFactory(account=str(100 + n), breaker_open=True)
    config_get("trading_enabled")  # the runtime config comes from the cache

    with django_assert_max_num_queries(5):  # today's figures, open executions, breakers, venues, desk asset
        operations_overview(now=day_of_trading)


def test_the_overview_of_an_empty_desk(db):
    overview = operations_overview()

    assert (overview.pnl_today, overview.completed_today, overview.open_executions) == (0, 0, 0)
    assert (overview.breaker_open, overview.trading_enabled, overview.venues) == (False, True, [])


def test_the_admin_index_shows_the_operations_panel_with_its_controls(admin_client):
    now = timezone.now()
    TradeExecutionFactory(status=ExecutionStatus.COMPLETED, actual_profit=D("1.25"), completed_at=now)
    TradeExecutionFactory(status=ExecutionStatus.COMPLETED, actual_profit=D("-0.5"), completed_at=now)
    TradeExecutionFactory(status=ExecutionStatus.PENDING)
    VenueFactory(code="sim-a", reconnect_count=4, used_weight=321, last_event_at=now)
    config_set(key="trading_enabled", value=True)

    html = admin_client.get(reverse("admin:index")).content.decode()

    assert 'id="operations-panel"' in html
    assert ">0.75</div>" in html  # today's PnL, as a plain decimal
    assert "2 executions settled since 00:00 UTC" in html
    assert 'id="ops-open-executions"' in html and ">1</div>" in html
    assert 'id="kill-switch-state">Trading ON' in html
    assert f"{KILL_SWITCH}?trading=off" in html
    assert 'id="breaker-state">closed' in html
    assert reverse("admin:risk_riskstate_desk_breaker", args=["open"]) in html
    assert RECONCILE in html
    assert "sim-a" in html and "<td>4</td>" in html and "<td>321</td>" in html
    assert reverse("dashboard") in html
    # The stock index is still there under the panel.
    assert 'id="content-main"' in html and "app-trading" in html


def test_the_index_panel_shows_the_breaker_open_and_trading_off(admin_client):
    RiskStateFactory(account=GLOBAL_SCOPE, breaker_open=True, breaker_reason="drawdown")
    config_set(key="trading_enabled", value=False)

    html = admin_client.get(reverse("admin:index")).content.decode()

    assert 'id="kill-switch-state">Trading OFF' in html
    assert f"{KILL_SWITCH}?trading=on" in html
    assert 'id="breaker-state">OPEN' in html and "drawdown" in html
    assert reverse("admin:risk_riskstate_desk_breaker", args=["close"]) in html


def test_staff_without_change_permissions_see_the_panel_without_the_controls(client, db):
    viewer = get_user_model().objects.create_user(username="viewer", password="pw", is_staff=True)
    client.force_login(viewer)

    html = client.get(reverse("admin:index")).content.decode()

    assert 'id="kill-switch-state"' in html
    assert 'id="kill-switch-toggle"' not in html
    assert 'id="breaker-toggle"' not in html
    assert 'id="reconcile-run"' not in html


def test_resolving_asks_then_resolves_each_parked_execution_and_reports_the_others(admin_client, admin_user):
    now = timezone.now()
    parked = TradeExecutionFactory(status=ExecutionStatus.NEEDS_ATTENTION, started_at=now - timedelta(seconds=5))
    running = TradeExecutionFactory(status=ExecutionStatus.EXECUTING, started_at=now)

    page = run_action(admin_client, "trading_tradeexecution", "resolve_unwound", [parked, running], confirmed=False)
    assert_confirmation_page(page, "Mark these executions UNWOUND, with the figures recorded?")
    assert TradeExecution.objects.get(pk=parked.pk).status == ExecutionStatus.NEEDS_ATTENTION

    done = run_action(admin_client, "trading_tradeexecution", "resolve_unwound", [parked, running], confirmed=True)

    assert TradeExecution.objects.get(pk=parked.pk).status == ExecutionStatus.UNWOUND
    assert TradeExecution.objects.get(pk=running.pk).status == ExecutionStatus.EXECUTING
    shown = messages_of(admin_client.get(done["Location"]))
    assert any(f"Resolved 1 as UNWOUND: BTCUSDT {parked.id}" in m for m in shown)
    assert any(f"Not resolved (1): BTCUSDT {running.id}" in m for m in shown)
    assert only_audit("execution.resolve").actor == admin_user
