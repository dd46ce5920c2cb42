"""The platform's own code paths record the Prometheus metrics (not only the metrics module)."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

import pytest
from prometheus_client.parser import text_string_to_metric_families

from arbitragex import metrics
from arbitragex.errors import ApplicationError, ErrorCode
from arbitragex.services import config_set
from marketdata.stream import StreamOptions, stream_plan, stream_runner_build
from tests.factories import VenueFactory
from tests.marketdata.test_opportunity_handler import detected as detected_opportunity
from tests.trading.lifecycle_support import make_desk
from trading.demo import demo_seed
from trading.opportunities import opportunity_handle
from trading.placement import execution_place
from trading.services import execution_create
from venues import ratelimit
from venues.binance.errors import Call, classify
from venues.gateway import RetryableVenueError

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_metrics():
    metrics.reset()
    yield
    metrics.reset()


def samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    metrics.flush()
    found = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_placing_an_execution_records_the_placement_latency_per_venue():
    desk = make_desk()
    desk.books()
    try:
        execution = execution_create(
            symbol="BTCUSDT",
            buy_venue=desk.buy_venue,
            sell_venue=desk.sell_venue,
            quantity=D("0.01"),
            buy_price=D("50000"),
            sell_price=D("50200"),
        )
        execution_place(execution_id=str(execution.pk))
    finally:
        desk.clear()

    found = samples()

    for venue in (desk.buy_venue.code, desk.sell_venue.code):
        assert found[("arbx_order_placement_seconds_count", (("venue", venue),))] == 1


def refuse_as_unprofitable(*, opportunity):
    raise ApplicationError(ErrorCode.PROFIT_RATE_TOO_LOW, "below the minimum")


def test_a_rejected_opportunity_is_counted_by_its_reason(monkeypatch):
    VenueFactory(code="sim-a"), VenueFactory(code="sim-b")
    monkeypatch.setattr("trading.executions.execution_create_from_opportunity", refuse_as_unprofitable)
    detected = detected_opportunity()

    opportunity_handle(detected)

    found = samples()
    assert found[("arbx_opportunities_detected_total", (("symbol", detected.symbol),))] == 1
    assert found[("arbx_opportunities_rejected_total", (("reason", "PROFIT_RATE_TOO_LOW"),))] == 1


def test_a_classified_binance_failure_is_counted_by_class():
    classify(ConnectionResetError("reset"), venue="bin-x", operation="place", call=Call.PLACE)
    classify(ConnectionResetError("reset"), venue="bin-x", operation="open orders", call=Call.READ)

    found = samples()

    assert found[("arbx_venue_errors_total", (("error_class", "ambiguous"), ("venue", "bin-x")))] == 1
    assert found[("arbx_venue_errors_total", (("error_class", "retryable"), ("venue", "bin-x")))] == 1


def test_the_rate_limiter_records_venue_usage_and_waits():
    limiter = ratelimit.RateLimiter("rl-metrics", "1", max_wait_s=0, record_health=False)
    limiter.observe_headers({"X-MBX-USED-WEIGHT-1M": "42"})
    limiter.retry_after(30)

    with pytest.raises(RetryableVenueError):
        limiter.acquire()

    found = samples()
    assert found[("arbx_rate_limit_used", (("limit", "weight_1m"), ("venue", "rl-metrics")))] == 42
    assert found[("arbx_rate_limit_waits_total", (("venue", "rl-metrics"),))] == 1


def test_the_stream_counts_the_ticks_it_ingests():
    demo_seed()
    config_set(key="auto_execute", value=False)
    plan = stream_plan(symbols=["BTCUSDT"], seed=3, speed=None)
    runner = stream_runner_build(plan, StreamOptions(speed=None, max_events=300))

    report = asyncio.run(runner.run())

    found = samples()
    ingested = sum(value for (name, _), value in found.items() if name == "arbx_ticks_ingested_total")
    assert ingested == report.pipeline["events"] > 0
