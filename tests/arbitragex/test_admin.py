"""The admin: every registered model's list, add and change pages work for a superuser; execution pages
show their orders and fills; large tables never run a full COUNT."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule
from rest_framework.authtoken.models import Token

from arbitragex import admin_utils
from arbitragex.admin_utils import CappedCountPaginator
from arbitragex.services import config_seed_defaults, config_set
from marketdata.models import Kline
from notifications import services as notification_services
from notifications.events import EventKind, Severity
from notifications.models import Delivery, Event, Rule
from tests.factories import (
    AccountBalanceFactory,
    ArbitrageOpportunityFactory,
    FillFactory,
    InstrumentFactory,
    OrderFactory,
    RiskStateFactory,
    TradeExecutionFactory,
)
from trading.enums import ExecutionStatus, IncidentKind, OrderLeg, OrderStatus
from trading.models import ExecutionDayRollup, Incident, PaperOrder, ReplayReport

D = Decimal


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # admin_user hashes a password; the default PBKDF2 rounds would dominate these tests' time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


REGISTRY = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)
LARGE_TABLES = [
    (model, model_admin) for model, model_admin in REGISTRY if model_admin.paginator is CappedCountPaginator
]


def _label(item) -> str:
    return item[0]._meta.label


def _url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def execution():
    """A completed execution with both legs filled."""
    execution = TradeExecutionFactory(status=ExecutionStatus.COMPLETED, actual_profit=D("0.4"))
    buy = OrderFactory(execution=execution, leg=OrderLeg.BUY, status=OrderStatus.FILLED, filled_qty=D("0.01"))
    sell = OrderFactory(execution=execution, leg=OrderLeg.SELL, status=OrderStatus.FILLED, filled_qty=D("0.01"))
    FillFactory(order=buy, trade_id="7001")
    FillFactory(order=sell, trade_id="7002")
    return execution


@pytest.fixture
def rows(admin_user, execution):
    """At least one row for every model registered in the admin."""
    Group.objects.create(name="operators")
    Token.objects.create(user=admin_user)
    every_minute = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="order sync", task="trading.tasks.orders_sync_open", interval=every_minute)
    CrontabSchedule.objects.create(minute="0", hour="0")
    SolarSchedule.objects.create(event="sunrise", latitude=D("51.5"), longitude=D("-0.1"))
    ClockedSchedule.objects.create(clocked_time=timezone.now() + timedelta(days=1))
    config_seed_defaults()
    config_set(key="max_open_executions", value=5, actor=admin_user)  # an AuditLog row
    InstrumentFactory(venue=execution.buy_venue)
    Kline.objects.create(
        venue=execution.buy_venue, symbol="BTCUSDT", open_time=timezone.now().replace(second=0, microsecond=0),
        open=D("50000"), high=D("50100"), low=D("49900"), close=D("50050"), volume=D("3.2"), trades=41,
    )  # fmt: skip
    RiskStateFactory()
    AccountBalanceFactory(account=execution.buy_account)
    ArbitrageOpportunityFactory(buy_venue=execution.buy_venue, sell_venue=execution.sell_venue)
    PaperOrder.objects.create(
        account=execution.buy_account, symbol="BTCUSDT", client_order_id="web-1", side="BUY", type="LIMIT",
        time_in_force="GTC", price=D("49000"), quantity=D("0.01"), locked=D("490"), status="SUBMITTED",
        created_ms=1, updated_ms=1,
    )  # fmt: skip
    Incident.objects.create(
        kind=IncidentKind.BALANCE_DRIFT, account=execution.buy_account, asset="USDT", local_value="100",
        venue_value="99.5", drift=D("0.5"),
    )  # fmt: skip
    ExecutionDayRollup.objects.create(day=date(2025, 3, 1), symbol="BTCUSDT", total=1, computed_at=timezone.now())
    ReplayReport.objects.create(source="demo", symbol="BTCUSDT", seed=1, best={"overrides": {"latency_ms": 5}},
                                html="<p>report</p>")  # fmt: skip
    channel = notification_services.channel_create(name="desk", url="json://127.0.0.1:9/hook")
    rule = Rule.objects.create(name="everything", kinds=[], min_severity=Severity.INFO)
    rule.channels.add(channel)
    event = Event.objects.create(
        kind=EventKind.KILL_SWITCH, severity=Severity.WARNING, key="kill", title="Kill switch on", body="by admin"
    )
    Delivery.objects.create(
        event=event, channel=channel, channel_name=channel.name, severity=Severity.WARNING, title=event.title,
        body=event.body,
    )  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize(("model", "model_admin"), REGISTRY, ids=[_label(item) for item in REGISTRY])
def test_every_model_has_working_list_add_and_change_pages(admin_client, rows, model, model_admin):
    changelist = admin_client.get(_url(model, "changelist"))
    add = admin_client.get(_url(model, "add"))

    assert changelist.status_code == 200
    assert add.status_code == (200 if model_admin.has_add_permission(changelist.wsgi_request) else 403)
    obj = model_admin.get_queryset(changelist.wsgi_request).first()
    assert obj is not None, f"no {model._meta.label} row: add one to the `rows` fixture to test its change page"
    assert changelist.context["cl"].result_count >= 1
    assert admin_client.get(_url(model, "change", obj.pk)).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    "label",
    ["trading.TradeExecution", "trading.Order", "trading.Fill", "trading.ArbitrageOpportunity", "trading.Incident",
     "arbitragex.AuditLog"],
)  # fmt: skip
def test_records_of_what_happened_cannot_be_added_or_deleted_in_the_admin(admin_client, rows, label):
    model, model_admin = next(item for item in REGISTRY if item[0]._meta.label == label)
    request = admin_client.get(_url(model, "changelist")).wsgi_request

    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_delete_permission(request, model.objects.first())


@pytest.mark.django_db
def test_the_execution_page_shows_its_orders_and_fills(admin_client, execution):
    page = admin_client.get(_url(type(execution), "change", execution.pk)).content.decode()

    for order in execution.orders.all():
        assert order.client_order_id in page
    assert "7001" in page and "7002" in page
    assert 'name="orders-TOTAL_FORMS"' in page  # the orders inline


@pytest.mark.django_db
@pytest.mark.parametrize(("model", "model_admin"), LARGE_TABLES, ids=[_label(item) for item in LARGE_TABLES])
def test_large_table_lists_count_at_most_a_capped_number_of_rows(admin_client, rows, model, model_admin):
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(_url(model, "changelist"))

    assert response.status_code == 200
    changelist = response.context["cl"]
    assert isinstance(changelist.paginator, CappedCountPaginator)
    assert changelist.show_full_result_count is False
    counts = [query["sql"] for query in queries.captured_queries if "COUNT(" in query["sql"].upper()]
    assert counts, "the list must still count (capped) to page"
    assert all("LIMIT" in sql.upper() for sql in counts), counts


@pytest.mark.django_db
def test_the_capped_count_stops_one_past_the_cap(admin_client, monkeypatch, execution):
    for attempt in range(1, 5):
        OrderFactory(execution=execution, leg=OrderLeg.UNWIND, attempt=attempt)
    monkeypatch.setattr(admin_utils, "COUNT_CAP", 3)

    response = admin_client.get(_url(type(execution.orders.first()), "changelist"))

    assert execution.orders.count() == 6
    assert response.context["cl"].paginator.count == 4


@pytest.mark.django_db
def test_a_filtered_large_list_does_not_count_the_whole_table(admin_client, rows):
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(_url(Incident, "changelist"), {"kind__exact": IncidentKind.BALANCE_DRIFT})

    assert response.status_code == 200
    counts = [query["sql"] for query in queries.captured_queries if "COUNT(" in query["sql"].upper()]
    assert len(counts) == 1 and "LIMIT" in counts[0].upper()
