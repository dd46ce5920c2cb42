"""The API keeps exact decimal strings: how the admin and the dashboard show a figure (rounded to the
tick, the step, the asset's precision) never changes a stored value or an API answer."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from arbitragex.money import fmt
from tests.factories import InstrumentFactory
from tests.ledger_data import filled_execution
from trading.models import Fill

D = Decimal


@pytest.mark.django_db
def test_the_api_answers_the_exact_figures_the_pages_round(api, desk, admin_client):
    for venue in (desk.a, desk.b):
        InstrumentFactory(venue=venue, symbol="BTCUSDT", tick_size=D("0.01000000"), step_size=D("0.00001000"))
    execution = filled_execution(desk.account_a, desk.account_b)
    # The admin page shows these rounded: it is read first, to show that reading changes nothing.
    assert admin_client.get(reverse("admin:trading_tradeexecution_change", args=[execution.pk])).status_code == 200

    answer = api.get(f"/api/v1/executions/{execution.pk}/").json()
    instruments = api.get("/api/v1/instruments/", {"symbol": "BTCUSDT"}).json()

    execution.refresh_from_db()
    assert answer["actual_profit"] == fmt(execution.actual_profit)
    assert len(answer["actual_profit"].split(".")[1]) > 8  # the exact figure, not the one shown
    assert answer["fees_quote"] == fmt(execution.fees_quote)
    buy = next(o for o in answer["orders"] if o["leg"] == "B")
    assert buy["avg_price"] == fmt(execution.orders.get(leg="B").avg_price)
    assert len(buy["avg_price"].split(".")[1]) > 2  # finer than the 0.01 tick
    bnb = Fill.objects.get(order__execution=execution, commission_asset="BNB", trade_id="7001")
    fill = next(f for f in buy["fills"] if f["trade_id"] == "7001")
    assert fill["commission"] == fmt(bnb.commission) and len(fill["commission"].split(".")[1]) > 8
    assert {(i["venue"], i["tick_size"], i["step_size"]) for i in instruments} == {
        ("ven-a", "0.01", "0.00001"),
        ("ven-b", "0.01", "0.00001"),
    }
