"""Every operator action through the API leaves an audit row: who, when, what, and what it was before.
The rows are written by the services, in the same transaction as the change."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from arbitragex.models import AuditLog
from risk.models import GLOBAL_SCOPE
from tests.factories import RiskStateFactory

D = Decimal
pytestmark = pytest.mark.django_db


def only_row(action: str) -> AuditLog:
    rows = list(AuditLog.objects.filter(action=action))
    assert len(rows) == 1, rows
    return rows[0]


def assert_recent(row: AuditLog) -> None:
    assert timezone.now() - timedelta(minutes=1) < row.at <= timezone.now()


def test_a_config_change_records_the_actor_the_key_and_both_values(staff_api, operator):
    staff_api.patch("/api/v1/config/", {"max_notional": "2500.50", "leg_timeout_s": 30}, format="json")

    rows = {row.target: row for row in AuditLog.objects.filter(action="config.set")}
    assert set(rows) == {"max_notional", "leg_timeout_s"}
    notional = rows["max_notional"]
    assert (notional.actor, notional.actor_label, notional.previous, notional.new) == (
        operator,
        "operator",
        "1000",
        "2500.50",
    )
    assert (rows["leg_timeout_s"].previous, rows["leg_timeout_s"].new) == (10, 30)
    assert_recent(notional)


def test_the_kill_switch_is_a_config_change_with_its_previous_state(staff_api, operator):
    staff_api.patch("/api/v1/config/", {"trading_enabled": False}, format="json")
    staff_api.patch("/api/v1/config/", {"trading_enabled": True}, format="json")

    off, on = AuditLog.objects.filter(action="config.set", target="trading_enabled").order_by("pk")
    assert (off.actor, off.previous, off.new) == (operator, True, False)
    assert (on.actor, on.previous, on.new) == (operator, False, True)


def test_a_refused_config_change_leaves_no_audit_row(staff_api):
    staff_api.patch("/api/v1/config/", {"max_notional": "10", "leg_timeout_s": -1}, format="json")

    assert not AuditLog.objects.exists()


def test_opening_and_closing_the_breaker_record_the_actor_and_the_previous_state(staff_api, operator):
    staff_api.post("/api/v1/risk/breaker/open/", {"reason": "venue maintenance"}, format="json")
    staff_api.post("/api/v1/risk/breaker/close/", {}, format="json")

    opened, closed = only_row("breaker.open"), only_row("breaker.close")
    assert (opened.actor, opened.target, opened.previous["open"]) == (operator, "global/*", False)
    assert opened.new == {"open": True, "reason": "venue maintenance"}
    assert (closed.actor, closed.previous, closed.new) == (
        operator,
        {"open": True, "reason": "venue maintenance"},
        {"open": False},
    )
    assert_recent(closed)


def test_a_daily_reset_records_the_actor_the_day_and_how_many_scopes(staff_api, operator):
    RiskStateFactory(account=GLOBAL_SCOPE, daily_pnl=D("-40"), last_reset_date=date(2025, 3, 1))

    staff_api.post("/api/v1/risk/reset-daily/", {"date": "2025-03-02"}, format="json")

    row = only_row("risk.daily_reset")
    assert (row.actor, row.target, row.new) == (operator, "2025-03-02", {"scopes": 1})
    assert_recent(row)


def test_a_daily_reset_records_the_figures_it_zeroed(staff_api):
    RiskStateFactory(account=GLOBAL_SCOPE, daily_pnl=D("-40"), last_reset_date=date(2025, 3, 1))

    staff_api.post("/api/v1/risk/reset-daily/", {"date": "2025-03-02"}, format="json")

    zeroed = only_row("risk.daily_reset").previous["daily_pnl"]
    assert {scope: D(value) for scope, value in zeroed.items()} == {"global:*": D("-40")}


def test_a_manual_execution_records_the_actor_and_what_was_asked(staff_api, operator):
    from tests.trading.lifecycle_support import make_desk

    desk = make_desk()
    desk.books()
    try:
        response = staff_api.post(
            "/api/v1/executions/",
            {"symbol": "BTCUSDT", "buy_venue": desk.buy_venue.code, "sell_venue": desk.sell_venue.code,
             "quantity": "0.01", "buy_price": "50000", "sell_price": "50200"},
            format="json",
        )  # fmt: skip
    finally:
        desk.clear()

    row = only_row("execution.create")
    assert (row.actor, row.target) == (operator, response.json()["id"])
    assert row.new == {
        "symbol": "BTCUSDT",
        "buy_venue": desk.buy_venue.code,
        "sell_venue": desk.sell_venue.code,
        "quantity": "0.01",
        "buy_price": "50000",
        "sell_price": "50200",
    }
    assert_recent(row)


def test_a_cancel_records_the_actor(staff_api, operator, desk):
    execution = desk.execution()

    staff_api.post(f"/api/v1/executions/{execution.id}/cancel/", {"reason": "fat finger"}, format="json")

    row = AuditLog.objects.filter(target=str(execution.id)).latest("at")
    assert row.actor == operator
