"""``/metrics``: Prometheus figures that every process adds to Redis, exposed by any web process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from arbitragex import metrics
from arbitragex.errors import ErrorCode
from tests.api.conftest import PASSWORD, assert_error
from tests.processes import process_environment
from trading.enums import ExecutionStatus

D = Decimal

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_metrics():
    metrics.reset()
    yield
    metrics.reset()


@pytest.fixture
def scrape(operator):
    client = APIClient()
    client.force_login(operator)

    def samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        response = client.get("/metrics")
        assert response.status_code == 200, response.content
        assert response["Content-Type"].startswith("text/plain")
        found = {}
        for family in text_string_to_metric_families(response.content.decode()):
            for sample in family.samples:
                found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return found

    return samples


def test_counters_are_summed_by_label_and_exposed_with_the_total_suffix(scrape):
    metrics.ticks_ingested.labels(venue="sim-a").inc()
    metrics.ticks_ingested.labels(venue="sim-a").inc(2)
    metrics.ticks_ingested.labels("sim-b").inc()
    metrics.opportunities_rejected.labels(reason="PROFIT_RATE_TOO_LOW").inc()
    metrics.venue_errors.labels(venue="binance", error_class="ambiguous").inc()
    metrics.stream_reconnects.labels(venue="binance", stream="user").inc()

    found = scrape()

    assert found[("arbx_ticks_ingested_total", (("venue", "sim-a"),))] == 3
    assert found[("arbx_ticks_ingested_total", (("venue", "sim-b"),))] == 1
    assert found[("arbx_opportunities_rejected_total", (("reason", "PROFIT_RATE_TOO_LOW"),))] == 1
    assert found[("arbx_venue_errors_total", (("error_class", "ambiguous"), ("venue", "binance")))] == 1
    assert found[("arbx_stream_reconnects_total", (("stream", "user"), ("venue", "binance")))] == 1


def test_histograms_have_cumulative_buckets_a_sum_and_a_count(scrape):
    child = metrics.order_placement_seconds.labels(venue="sim-a")
    for seconds in (0.003, 0.02, 0.02, 0.7, 30):
        child.observe(seconds)
    with metrics.sync_cycle_seconds.labels(job="orders").time():
        pass

    found = scrape()

    def bucket(le):
        return found[("arbx_order_placement_seconds_bucket", (("le", le), ("venue", "sim-a")))]

    assert (bucket("0.005"), bucket("0.025"), bucket("0.5"), bucket("1.0"), bucket("10.0"), bucket("+Inf")) == (
        1, 3, 3, 4, 4, 5,
    )  # fmt: skip
    assert found[("arbx_order_placement_seconds_count", (("venue", "sim-a"),))] == 5
    assert found[("arbx_order_placement_seconds_sum", (("venue", "sim-a"),))] == pytest.approx(30.743)
    assert found[("arbx_sync_cycle_seconds_count", (("job", "orders"),))] == 1


def test_a_gauge_keeps_the_last_value_set(scrape):
    metrics.rate_limit_used.labels(venue="binance", limit="weight_1m").set(120)
    metrics.flush()
    metrics.rate_limit_used.labels(venue="binance", limit="weight_1m").set(80)

    assert scrape()[("arbx_rate_limit_used", (("limit", "weight_1m"), ("venue", "binance")))] == 80


def test_executions_by_status_are_counted_in_the_database_at_scrape_time(scrape, desk):
    desk.execution(status=ExecutionStatus.COMPLETED)
    desk.execution(status=ExecutionStatus.COMPLETED)
    desk.execution(status=ExecutionStatus.FAILED)

    found = scrape()

    assert found[("arbx_executions", (("status", "COMPLETED"),))] == 2
    assert found[("arbx_executions", (("status", "FAILED"),))] == 1
    assert found[("arbx_executions", (("status", "PENDING"),))] == 0


def test_figures_from_another_process_are_added_up(scrape):
    metrics.ticks_ingested.labels(venue="sim-a").inc(2)
    child = textwrap.dedent(
        """
        import django
        django.setup()
        from arbitragex import metrics
        metrics.ticks_ingested.labels(venue="sim-a").inc(5)
        metrics.opportunities_detected.labels(symbol="BTCUSDT").inc()
        # No explicit flush: a process that exits normally flushes at exit.
        """
    )
    subprocess.run([sys.executable, "-c", child], env=process_environment(), check=True, timeout=60)

    found = scrape()

    assert found[("arbx_ticks_ingested_total", (("venue", "sim-a"),))] == 7
    assert found[("arbx_opportunities_detected_total", (("symbol", "BTCUSDT"),))] == 1


def test_a_forked_child_does_not_count_the_parents_pending_figures_again(scrape):
    metrics.ticks_ingested.labels(venue="sim-a").inc(4)  # pending in this process's buffer
    pid = os.fork()
    if pid == 0:  # the child: its buffer starts empty
        os._exit(0 if not metrics._buffer.increments else 1)
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    assert scrape()[("arbx_ticks_ingested_total", (("venue", "sim-a"),))] == 4


def test_a_redis_failure_never_reaches_the_caller_and_loses_nothing(scrape, monkeypatch):
    def down():
        raise ConnectionError("redis is down")

    monkeypatch.setattr(metrics, "_redis", down)
    metrics.ticks_ingested.labels(venue="sim-a").inc(3)
    metrics.order_placement_seconds.labels(venue="sim-a").observe(0.1)
    assert metrics.flush() is False
    monkeypatch.undo()

    found = scrape()

    assert found[("arbx_ticks_ingested_total", (("venue", "sim-a"),))] == 3
    assert found[("arbx_order_placement_seconds_count", (("venue", "sim-a"),))] == 1


def test_label_mistakes_are_caught_where_they_are_made():
    with pytest.raises(ValueError, match="labels"):
        metrics.ticks_ingested.labels(symbol="BTCUSDT")
    with pytest.raises(ValueError, match="labels"):
        metrics.ticks_ingested.inc()
    with pytest.raises(ValueError, match="only goes up"):
        metrics.ticks_ingested.labels(venue="sim-a").inc(-1)


def test_a_label_value_may_contain_any_character(scrape):
    metrics.order_placement_seconds.labels(venue='odd|b|"venue"').observe(0.2)

    assert scrape()[("arbx_order_placement_seconds_count", (("venue", 'odd|b|"venue"'),))] == 1


# --- who may scrape -----------------------------------------------------------------------------------------


def test_anonymous_scrapes_get_401_and_non_staff_403(reader):
    anonymous = APIClient().get("/metrics")
    assert_error(anonymous, 401, ErrorCode.NOT_AUTHENTICATED)
    assert anonymous["WWW-Authenticate"] == "Token"

    client = APIClient()
    assert client.login(username="reader", password=PASSWORD)
    assert_error(client.get("/metrics"), 403, ErrorCode.PERMISSION_DENIED)

    bad_token = APIClient().get("/metrics", HTTP_AUTHORIZATION="Token nope")
    assert_error(bad_token, 401, ErrorCode.NOT_AUTHENTICATED)


def test_a_staff_token_scrapes_as_prometheus_does(operator):
    token = Token.objects.create(user=operator)

    response = APIClient().get("/metrics", HTTP_AUTHORIZATION=f"Token {token.key}")

    assert response.status_code == 200
    assert b"# TYPE arbx_ticks_ingested_total counter" in response.content


@override_settings(METRICS_PUBLIC=True)
def test_metrics_public_opens_the_endpoint():
    assert APIClient().get("/metrics").status_code == 200


def test_execution_quality_per_pair_is_a_gauge_at_scrape_time(scrape, desk):
    now = timezone.now()
    for status, expected, actual in (("COMPLETED", "1", "0.9"), ("COMPLETED", "1", "1.1"), ("UNWOUND", "1", "-0.5")):
        desk.execution(
            status=status, expected_profit=D(expected), actual_profit=D(actual), completed_at=now,
            detected_at=now - timedelta(milliseconds=30), submitted_at=now - timedelta(milliseconds=10),
        )  # fmt: skip

    found = scrape()

    pair = (("buy_venue", "ven-a"), ("sell_venue", "ven-b"))
    assert found[("arbx_pair_capture_rate", pair)] == pytest.approx(2 / 3)
    assert found[("arbx_pair_realised_to_expected", pair)] == pytest.approx(1.5 / 3)
    assert found[("arbx_pair_legging_loss_share", pair)] == pytest.approx(0.5 / 2)
    labels = (("buy_venue", "ven-a"), ("quantile", "p50"), ("sell_venue", "ven-b"), ("stage", "detect_to_submit"))
    assert found[("arbx_pair_latency_ms", labels)] == 20
