"""The default OPPORTUNITY_HANDLER (``trading.opportunities.opportunity_handle``): every detected
opportunity is recorded, then taken or rejected with its reason by the execution hook."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from arbitragex import config
from arbitragex.errors import ApplicationError, ErrorCode
from arbitragex.services import config_set
from marketdata.stream import HandlerResult, handler_load
from marketdata.types import DetectedOpportunity
from tests.factories import VenueFactory
from trading import opportunities
from trading.enums import OpportunityStatus
from trading.models import ArbitrageOpportunity

D = Decimal
pytestmark = pytest.mark.django_db

hook_calls: list[ArbitrageOpportunity] = []


class Execution:
    pk = "01900000-0000-7000-8000-000000000001"


def hook_taking(*, opportunity: ArbitrageOpportunity) -> Execution:
    hook_calls.append(opportunity)
    return Execution()


def hook_refusing(*, opportunity: ArbitrageOpportunity) -> None:
    hook_calls.append(opportunity)
    raise ApplicationError(ErrorCode.INSUFFICIENT_BALANCE, "USDT on sim-a: 12.5 available, 500.1 needed")


def hook_crashing(*, opportunity: ArbitrageOpportunity) -> None:
    raise RuntimeError("bug")


@pytest.fixture(autouse=True)
def _clean():
    opportunities.venue_ids_cache_clear()
    hook_calls.clear()
    yield
    opportunities.venue_ids_cache_clear()


@pytest.fixture
def venues():
    return VenueFactory(code="sim-a"), VenueFactory(code="sim-b")


def detected(**overrides: object) -> DetectedOpportunity:
    values: dict[str, object] = {
        "symbol": "BTCUSDT", "buy_venue": "sim-a", "sell_venue": "sim-b", "buy_price": D("61000.10"),
        "sell_price": D("61120.50"), "buy_qty_available": D("0.8"), "sell_qty_available": D("1.2"),
        "quantity": D("0.01639"), "notional": D("999.791639"), "gross_rate": D("0.001973767257594660"),
        "net_rate": D("0.000224"), "estimated_profit": D("0.00000000000012345678912"),
        "detected_ts_ms": 1_723_161_254_321, "buy_quote_age_ms": 12, "sell_quote_age_ms": 40,
    }  # fmt: skip
    values.update(overrides)
    return DetectedOpportunity(**values)  # type: ignore[arg-type]


def use_hook(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Stand ``name`` in for the execution service (``trading.executions.execution_create_from_opportunity``)."""
    monkeypatch.setattr("trading.executions.execution_create_from_opportunity", globals()[name])


def set_auto_execute(value: bool) -> None:
    config_set(key="auto_execute", value=value)
    cache.delete(config.CACHE_KEY)


def test_the_settings_name_this_handler():
    assert settings.OPPORTUNITY_HANDLER == "trading.opportunities.opportunity_handle"
    assert handler_load() is opportunities.opportunity_handle


def test_an_opportunity_is_recorded_as_detected_with_aware_times(venues, monkeypatch):
    set_auto_execute(False)

    result = opportunities.opportunity_handle(detected())

    row = ArbitrageOpportunity.objects.get()
    assert result == HandlerResult(row.pk, OpportunityStatus.DETECTED)
    assert (row.symbol, row.buy_venue, row.sell_venue) == ("BTCUSDT", venues[0], venues[1])
    assert (row.buy_price, row.sell_price, row.quantity) == (D("61000.10"), D("61120.50"), D("0.01639"))
    assert (row.buy_qty_available, row.sell_qty_available) == (D("0.8"), D("1.2"))
    assert (row.gross_rate, row.net_rate) == (D("0.001973767257594660"), D("0.000224"))
    assert row.estimated_profit == D("0.000000000000123457")  # rounded to the column's 18 places
    assert row.detected_at == datetime(2024, 8, 8, 23, 54, 14, 321_000, tzinfo=UTC)
    assert (row.buy_quote_age_ms, row.sell_quote_age_ms) == (12, 40)
    assert (row.status, row.reject_code, row.reject_reason) == (OpportunityStatus.DETECTED, None, "")


def test_with_auto_execute_the_hook_takes_it(venues, monkeypatch):
    use_hook(monkeypatch, "hook_taking")

    result = opportunities.opportunity_handle(detected())

    row = ArbitrageOpportunity.objects.get()
    assert hook_calls == [row]
    assert result == HandlerResult(row.pk, OpportunityStatus.TAKEN, execution_id=Execution.pk)
    assert row.status == OpportunityStatus.TAKEN


def test_a_refusal_of_the_hook_rejects_it_with_the_code_and_reason(venues, monkeypatch):
    use_hook(monkeypatch, "hook_refusing")

    result = opportunities.opportunity_handle(detected())

    row = ArbitrageOpportunity.objects.get()
    reason = "USDT on sim-a: 12.5 available, 500.1 needed"
    assert result == HandlerResult(row.pk, OpportunityStatus.REJECTED, 2001, reason)
    assert (row.status, row.reject_code, row.reject_reason) == (OpportunityStatus.REJECTED, 2001, reason)


def test_an_unexpected_failure_of_the_hook_rejects_it_as_an_internal_error(venues, monkeypatch):
    use_hook(monkeypatch, "hook_crashing")

    result = opportunities.opportunity_handle(detected())

    row = ArbitrageOpportunity.objects.get()
    assert result.status == row.status == OpportunityStatus.REJECTED
    assert (row.reject_code, row.reject_reason) == (1999, "internal error: RuntimeError")


def test_without_auto_execute_the_hook_is_not_called(venues, monkeypatch):
    use_hook(monkeypatch, "hook_taking")
    set_auto_execute(False)

    result = opportunities.opportunity_handle(detected())

    assert hook_calls == []
    assert result.status == ArbitrageOpportunity.objects.get().status == OpportunityStatus.DETECTED


def test_venue_rows_are_looked_up_once_and_refreshed_when_a_venue_is_added(venues, monkeypatch):
    set_auto_execute(False)
    opportunities.opportunity_handle(detected())

    with CaptureQueriesContext(connection) as queries:
        opportunities.opportunity_handle(detected(symbol="ETHUSDT"))
    assert not [query for query in queries if "marketdata_venue" in query["sql"]]

    VenueFactory(code="sim-c")
    opportunities.opportunity_handle(detected(sell_venue="sim-c"))
    assert ArbitrageOpportunity.objects.filter(sell_venue__code="sim-c").count() == 1


def test_an_unknown_venue_is_refused_before_anything_is_written(venues):
    with pytest.raises(ApplicationError) as error:
        opportunities.opportunity_handle(detected(buy_venue="nowhere"))

    assert error.value.code == ErrorCode.NOT_FOUND
    assert not ArbitrageOpportunity.objects.exists()
