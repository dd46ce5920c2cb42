"""Execution quality per venue pair (``trading.quality``) and its API, over executions with known
outcomes, profits and timestamps."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories import ExchangeAccountFactory, FillFactory, OrderFactory, TradeExecutionFactory
from trading.enums import ExecutionStatus, OrderLeg
from trading.quality import execution_quality

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def pair():
    return ExchangeAccountFactory(), ExchangeAccountFactory()


def ended(pair, status, *, expected, actual, detect_to_submit_ms=10, ago_s=60, **fields):
    buy, sell = pair
    end = timezone.now() - timedelta(seconds=ago_s)
    detected = end - timedelta(milliseconds=200)
    submitted = detected + timedelta(milliseconds=detect_to_submit_ms)
    return TradeExecutionFactory(
        buy_account=buy,
        sell_account=sell,
        status=status,
        expected_profit=D(expected),
        actual_profit=D(actual),
        detected_at=detected,
        submitted_at=submitted,
        acknowledged_at=submitted + timedelta(milliseconds=5),
        filled_at=submitted + timedelta(milliseconds=7),
        completed_at=end,
        **fields,
    )


def test_capture_realised_over_expected_and_legging_share_per_pair(pair):
    ended(pair, ExecutionStatus.COMPLETED, expected="1", actual="0.9", detect_to_submit_ms=10)
    ended(pair, ExecutionStatus.COMPLETED, expected="1", actual="1.1", detect_to_submit_ms=20)
    ended(pair, ExecutionStatus.COMPLETED, expected="2", actual="1.6", detect_to_submit_ms=30)
    ended(pair, ExecutionStatus.UNWOUND, expected="1", actual="-0.45", detect_to_submit_ms=40)
    ended(pair, ExecutionStatus.FAILED, expected="1", actual="0", detect_to_submit_ms=50)
    ended(pair, ExecutionStatus.COMPLETED, expected="9", actual="9", ago_s=7200)  # outside the hour
    other = ExchangeAccountFactory(), ExchangeAccountFactory()
    ended(other, ExecutionStatus.COMPLETED, expected="1", actual="1")

    report = execution_quality(window_s=3600)

    figures = next(p for p in report.pairs if p.buy_venue == pair[0].venue.code)
    assert (figures.taken, figures.completed, figures.unwound, figures.failed) == (5, 3, 1, 1)
    assert figures.capture_rate == D("0.6")
    assert (figures.expected_profit, figures.actual_profit) == (D("6"), D("3.15"))
    assert figures.realised_to_expected == D("0.525")
    assert (figures.gross_profit, figures.legging_loss) == (D("3.6"), D("0.45"))
    assert figures.legging_loss_share == D("0.125")
    assert figures.latency_ms["detect_to_submit"] == {"p50": 30.0, "p90": 46.0, "p99": 49.6}
    assert figures.latency_ms["submit_to_ack"]["p50"] == 5.0
    assert figures.latency_ms["ack_to_fill"]["p99"] == 2.0
    assert len(report.pairs) == 2


def test_what_a_repair_cost_a_completed_execution_counts_as_legging(pair):
    clean = ended(pair, ExecutionStatus.COMPLETED, expected="1", actual="0.8")  # slippage, no repair
    repaired = ended(pair, ExecutionStatus.COMPLETED, expected="2", actual="1.5")
    OrderFactory(execution=repaired, leg=OrderLeg.RETRY, attempt=1)

    (figures,) = execution_quality(window_s=3600).pairs

    assert clean.actual_profit < clean.expected_profit
    assert (figures.gross_profit, figures.legging_loss) == (D("2.3"), D("0.5"))  # only the repaired one's 0.5


def test_the_book_age_at_fill_is_reported_per_pair(pair):
    order = OrderFactory(execution=ended(pair, ExecutionStatus.COMPLETED, expected="1", actual="1"))
    for age in (1, 2, 3, 4, 100):
        FillFactory(order=order, book_age_ms=age)

    (figures,) = execution_quality(window_s=3600).pairs

    assert figures.book_age_ms["p50"] == 3.0
    assert figures.book_age_ms["p99"] == pytest.approx(96.16)


def test_the_api_answers_the_figures_as_exact_decimal_strings_and_refuses_a_bad_window(pair):
    ended(pair, ExecutionStatus.COMPLETED, expected="1", actual="0.9")
    ended(pair, ExecutionStatus.UNWOUND, expected="1", actual="-0.3")
    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_user(username="desk-reader"))

    body = client.get("/api/v1/executions/quality/", {"window_s": 600}).json()

    assert body["window_s"] == 600
    (figures,) = body["pairs"]
    assert (figures["taken"], figures["completed"], figures["capture_rate"]) == (2, 1, "0.5")
    assert (figures["realised_to_expected"], figures["legging_loss_share"]) == ("0.3", "0.333333333333333333")
    refused = client.get("/api/v1/executions/quality/", {"window_s": 5})
    assert refused.status_code == 400 and isinstance(refused.json()["code"], int)
