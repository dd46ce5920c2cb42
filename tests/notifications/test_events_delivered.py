"""Every event kind, raised through its real source, reaches a channel: an Apprise ``json://`` URL posting
to an HTTP server this test runs. The message says what happened, in figures a person can read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import F
from django.utils import timezone
from rest_framework.test import APIClient

from arbitragex.services import config_set
from marketdata.models import Instrument, Venue
from notifications.checks import orders_unknown_check, venues_check
from notifications.events import EventKind
from notifications.models import Delivery, Event
from notifications.summary import daily_summary_send
from risk import services as risk_services
from risk.breaker import BreakerThresholds
from tests.factories import ExchangeAccountFactory, OrderFactory, TradeExecutionFactory, VenueFactory
from tests.notifications.support import channel_with_rule, drain, staff_user
from tests.trading.lifecycle_support import SYMBOL, configure, fund
from trading import services as trading_services
from trading import signals as trading_signals
from trading.enums import ExecutionStatus, IncidentKind, LegFailurePolicy, OpportunityStatus, OrderLeg, OrderStatus
from trading.finalise import execution_settle
from trading.models import ArbitrageOpportunity, Incident, Order
from trading.placement import execution_place
from trading.reconcile import reconcile
from venues.ratelimit import RateLimiter

D = Decimal
pytestmark = pytest.mark.django_db


def one_message(receiver, kind: str):
    drain()
    (event,) = Event.objects.filter(kind=kind)
    assert event.status == Event.Status.SENT
    (message,) = receiver.wait_for(1)
    (delivery,) = Delivery.objects.filter(event=event)
    assert (delivery.status, delivery.attempts) == (Delivery.Status.SENT, 1)
    return event, message


def test_a_breaker_opened_through_the_api_is_told_with_its_reason_and_who(receiver):
    channel_with_rule(receiver)
    client = APIClient()
    client.force_authenticate(staff_user("alice"))

    response = client.post("/api/v1/risk/breaker/open/", {"reason": "venue maintenance", "cooldown_seconds": 900})

    assert response.status_code == 200
    _event, message = one_message(receiver, EventKind.BREAKER_TRIPPED)
    assert message.title == "Breaker tripped (global/*): venue maintenance"
    assert "venue maintenance" in message.message and "Opened by alice" in message.message
    assert "closes automatically at" in message.message
    assert message.type == "failure"  # critical
    assert message.path.startswith("/hooks/")


def test_a_breaker_tripped_by_consecutive_losses_in_any_scope_is_told(receiver):
    channel_with_rule(receiver)
    thresholds = BreakerThresholds(
        max_consecutive_losses=2, max_daily_loss=D(0), max_drawdown_rate=D(0), cooldown_seconds=600
    )
    for _ in range(2):
        risk_services.risk_state_record_trade(account="17", symbol="ETHUSDT", pnl=D("-1.5"), thresholds=thresholds)

    event, message = one_message(receiver, EventKind.BREAKER_TRIPPED)
    assert event.key == "breaker.tripped:17/ETHUSDT"
    assert message.title == "Breaker tripped (17/ETHUSDT): consecutive_losses"
    assert "Opened by the platform" in message.message


def test_a_breaker_closed_through_the_api_is_told_with_the_reason_it_had(receiver):
    risk_services.breaker_open(reason="drill")
    channel_with_rule(receiver, kinds=[EventKind.BREAKER_CLOSED])
    client = APIClient()
    client.force_authenticate(staff_user("bob"))

    assert client.post("/api/v1/risk/breaker/close/", {}).status_code == 200

    _, message = one_message(receiver, EventKind.BREAKER_CLOSED)
    assert message.title == "Breaker closed (global/*)"
    assert "closed by bob (it had opened for: drill)" in message.message
    assert message.type == "info"


def test_the_kill_switch_is_told_with_who_turned_it(receiver):
    channel_with_rule(receiver)
    operator = staff_user("carol")

    config_set(key="trading_enabled", value=False, actor=operator)
    config_set(key="min_profit_rate", value="0.001", actor=operator)  # not the kill switch: no message

    event, message = one_message(receiver, EventKind.KILL_SWITCH)
    assert message.title == "Kill switch: trading OFF (by carol)"
    assert event.severity == "warning" and message.type == "warning"

    config_set(key="trading_enabled", value=True, actor=operator)
    drain()
    assert receiver.wait_for(2)[1].title == "Kill switch: trading ON (by carol)"


def test_an_execution_parked_as_needs_attention_is_told(desk, receiver):
    channel_with_rule(receiver)
    configure(leg_failure_policy=LegFailurePolicy.ALERT)
    execution = trading_services.execution_create(
        symbol=SYMBOL, buy_venue=desk.buy_venue, sell_venue=desk.sell_venue, quantity="0.01",
        buy_price="50000", sell_price="50200",
    )  # fmt: skip
    fund(desk.sell_account, "BTC", "0")
    execution_place(execution_id=str(execution.id))

    assert execution_settle(execution_id=str(execution.id)) == ExecutionStatus.NEEDS_ATTENTION

    _, message = one_message(receiver, EventKind.EXECUTION_NEEDS_ATTENTION)
    assert message.title == f"Execution needs attention: BTCUSDT {execution.id}"
    assert "policy is alert" in message.message
    assert "Residual exposure: 0.01 BTC." in message.message
    # The leg-failure incident is told as this event, not a second time as reconciliation drift.
    assert not Event.objects.filter(kind=EventKind.RECONCILIATION_DRIFT).exists()


def test_residual_exposure_above_the_threshold_is_told(desk, receiver):
    channel_with_rule(receiver)
    configure(notify_residual_notional="1")
    execution = trading_services.execution_create(
        symbol=SYMBOL, buy_venue=desk.buy_venue, sell_venue=desk.sell_venue, quantity="0.01",
        buy_price="50000", sell_price="50200",
    )  # fmt: skip
    # The buy leg fills 0.00991 of 0.01; the short 0.00009 left (4.52 USDT) is below the 5 USDT minimum
    # notional, so it cannot be unwound and the execution completes with it.
    desk.books(buy_asks=[("50000", "0.00991")])
    execution_place(execution_id=str(execution.id))

    assert execution_settle(execution_id=str(execution.id)) == ExecutionStatus.COMPLETED

    _, message = one_message(receiver, EventKind.EXECUTION_RESIDUAL)
    assert message.title == f"Residual exposure 4.52 USDT: BTCUSDT {execution.id}"
    assert "unhedged short exposure of 0.00009 BTC" in message.message
    assert "(threshold 1 USDT)" in message.message


def test_residual_exposure_within_the_threshold_is_not_told(desk, receiver):
    channel_with_rule(receiver)
    configure(notify_residual_notional="10")
    execution = trading_services.execution_create(
        symbol=SYMBOL, buy_venue=desk.buy_venue, sell_venue=desk.sell_venue, quantity="0.01",
        buy_price="50000", sell_price="50200",
    )  # fmt: skip
    desk.books(buy_asks=[("50000", "0.00991")])
    execution_place(execution_id=str(execution.id))
    assert execution_settle(execution_id=str(execution.id)) == ExecutionStatus.COMPLETED

    drain()

    assert not Event.objects.filter(kind=EventKind.EXECUTION_RESIDUAL).exists()


def test_a_reconciliation_drift_incident_is_told(desk, receiver):
    channel_with_rule(receiver)
    execution = TradeExecutionFactory(buy_account=desk.buy_account, sell_account=desk.sell_account)
    order = OrderFactory(execution=execution, leg=OrderLeg.BUY, status=OrderStatus.SUBMITTED, place_attempts=1)

    reconcile()
    reconcile()  # the same drift again: recorded once, told once

    _event, message = one_message(receiver, EventKind.RECONCILIATION_DRIFT)
    incident = Incident.objects.get(kind=IncidentKind.ORDER_MISSING_AT_VENUE)
    assert (
        message.title == f"Reconciliation: order missing at venue on {desk.buy_account.name} ({order.client_order_id})"
    )
    assert f"Here: SUBMITTED; at the venue: not found. Incident #{incident.pk}." in message.message


def test_a_venue_ban_is_told_when_the_limiter_records_it(receiver):
    channel_with_rule(receiver)
    venue = VenueFactory(code="bn-ban")
    until = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)

    RateLimiter(venue.code, "1").ban(until)

    _, message = one_message(receiver, EventKind.VENUE_BANNED)
    assert message.title == "Venue bn-ban banned us (418) until 2031-01-02 03:04:05 UTC"
    RateLimiter(venue.code, "1")._redis.delete(RateLimiter(venue.code, "1")._ban_key)


def test_a_long_retry_after_is_told_by_the_venue_check(receiver):
    channel_with_rule(receiver)
    configure(notify_rate_limited_s=60)
    venue = VenueFactory(code="bn-429")
    limiter = RateLimiter(venue.code, "1")
    limiter.retry_after(30)
    venues_check()
    assert not Event.objects.exists()  # 30 s is within the threshold

    limiter.retry_after(120)
    venues_check()
    venues_check()  # still limited: told once

    _, message = one_message(receiver, EventKind.VENUE_RATE_LIMITED)
    assert message.title.startswith("Venue bn-429 rate-limited us for 1")
    limiter._redis.delete(limiter._retry_key)


def test_a_stream_disconnect_is_told_by_the_venue_check(receiver):
    channel_with_rule(receiver)
    venue = VenueFactory(code="bn-drop", reconnect_count=4)
    venues_check()  # the first check only learns the count
    assert not Event.objects.exists()

    # What the stream's venue_health_record writes after two reconnects (it closes old connections first,
    # which a test transaction cannot have).
    Venue.objects.filter(code=venue.code).update(reconnect_count=F("reconnect_count") + 2)
    venues_check()

    _, message = one_message(receiver, EventKind.VENUE_DISCONNECTED)
    assert message.title == "Venue bn-drop: stream disconnected 2 times"
    assert "(6 reconnects in all)" in message.message


def test_a_stale_stream_is_told_once_while_it_lasts(receiver):
    channel_with_rule(receiver)
    configure(notify_stream_stale_s=60)
    now = timezone.now()
    VenueFactory(code="bn-live", last_event_at=now - timedelta(seconds=5))
    VenueFactory(code="bn-never", last_event_at=None)  # never streamed: not stale
    VenueFactory(code="bn-stale", last_event_at=now - timedelta(seconds=300))

    venues_check(now=now)
    venues_check(now=now + timedelta(seconds=30))

    _, message = one_message(receiver, EventKind.VENUE_STREAM_STALE)
    assert message.title == "Venue bn-stale: no market data for 300 s"


def test_an_order_unknown_for_longer_than_the_threshold_is_told_once(receiver):
    channel_with_rule(receiver)
    configure(notify_unknown_order_minutes=5)
    account = ExchangeAccountFactory()
    Instrument.objects.filter(venue=account.venue).delete()
    old = OrderFactory(account=account, venue=account.venue, status=OrderStatus.UNKNOWN, quantity=D("0.0123"))
    OrderFactory(account=account, venue=account.venue, status=OrderStatus.UNKNOWN)  # recent: not yet
    Order.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(minutes=6))

    orders_unknown_check()
    orders_unknown_check()

    _, message = one_message(receiver, EventKind.ORDER_UNKNOWN)
    assert message.title == f"Order {old.client_order_id} UNKNOWN for over 5 min ({account.venue.code} BTCUSDT)"
    assert f"({old.side} 0.0123 BTCUSDT on {account.venue.code}" in message.message


def test_a_pair_paused_by_its_legging_budget_is_told(receiver):
    channel_with_rule(receiver)

    trading_signals.pair_paused.send(
        sender=None, buy_venue="sim-a", sell_venue="sim-b", symbol="BTCUSDT", reason="legging loss budget spent",
        until=datetime(2031, 5, 6, 7, 0, tzinfo=UTC), figures={"legging_loss": "41.2", "budget": "40"},
    )  # fmt: skip

    _, message = one_message(receiver, EventKind.PAIR_PAUSED)
    assert message.title == "Pair sim-a/sim-b BTCUSDT paused: legging loss budget spent"
    assert "paused until 2031-05-06 07:00:00 UTC" in message.message
    assert "Figures: legging loss 41.2, budget 40." in message.message


def test_the_daily_summary_reports_pnl_statuses_capture_rate_and_fees(receiver):
    channel_with_rule(receiver)
    day = datetime(2030, 3, 4, tzinfo=UTC)
    venues = VenueFactory(), VenueFactory()
    settled_at = day + timedelta(hours=12)
    taken = []
    for _ in range(3):
        taken.append(
            ArbitrageOpportunity.objects.create(
                symbol="BTCUSDT", buy_venue=venues[0], sell_venue=venues[1], buy_price=D(50000), sell_price=D(50100),
                quantity=D("0.01"), gross_rate=D("0.002"), net_rate=D("0.0001"), estimated_profit=D("0.5"),
                detected_at=day + timedelta(hours=1), status=OpportunityStatus.TAKEN,
            )
        )  # fmt: skip
    for opportunity, status, profit, fees in [
        (taken[0], ExecutionStatus.COMPLETED, D("1.234567"), D("0.5")),
        (taken[1], ExecutionStatus.COMPLETED, D("2.5"), D("0.25")),
        (taken[2], ExecutionStatus.UNWOUND, D("-1.1"), D("0.1")),
    ]:
        TradeExecutionFactory(
            opportunity=opportunity, status=status, actual_profit=profit, fees_quote=fees,
            started_at=day + timedelta(hours=1), completed_at=settled_at,
        )  # fmt: skip
    TradeExecutionFactory(status=ExecutionStatus.FAILED, started_at=day + timedelta(hours=2))
    TradeExecutionFactory(status=ExecutionStatus.COMPLETED, actual_profit=D(100), started_at=day - timedelta(days=1),
                          completed_at=day - timedelta(hours=1))  # the day before: not counted  # fmt: skip

    daily_summary_send(now=day + timedelta(days=1, seconds=5))
    assert daily_summary_send(now=day + timedelta(days=1, seconds=50)) is None  # once per day

    _, message = one_message(receiver, EventKind.DAILY_SUMMARY)
    assert message.title == "Daily summary 2030-03-04 (UTC): PnL 2.63 USDT"
    assert message.message.splitlines() == [
        "PnL: 2.63 USDT",
        "Executions: 4 (COMPLETED 2, FAILED 1, UNWOUND 1)",
        "Capture rate: 66.67 % (2 completed of 3 taken)",
        "Fees: 0.85 USDT",
    ]


def test_the_beat_schedule_runs_the_summary_at_midnight_utc_and_the_checks_every_minute():
    from django.conf import settings

    schedules = {spec["task"]: spec for spec in settings.BEAT_DEFAULT_SCHEDULES.values()}
    daily = schedules["notifications.tasks.daily_summary"]["crontab"]
    assert (daily._orig_minute, daily._orig_hour) == ("0", "0")
    assert schedules["notifications.tasks.checks_run"]["every_seconds"] == 60
    assert schedules["notifications.tasks.notifications_sweep"]["every_seconds"] == 60
