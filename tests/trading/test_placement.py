"""Placement: both legs sent concurrently, idempotently. A rerun (a retry, a redelivery after a worker
died) never places an order twice; an ambiguous answer is resolved by query, never by resending."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from arbitragex.celery import app as celery_app
from arbitragex.errors import ErrorCode
from tests.factories import ArbitrageOpportunityFactory
from tests.trading.lifecycle_support import (
    SYMBOL,
    AmbiguousGateway,
    CountingGateways,
    DyingGateway,
    WorkerKilled,
    configure,
    fund,
    gateways,
)
from trading import services, tasks
from trading.enums import ExecutionStatus, OrderLeg, OrderStatus
from trading.models import Fill, Order, PaperOrder
from trading.placement import execution_lease, execution_place, retry_countdown
from venues.gateway import RetryableVenueError

D = Decimal


@pytest.fixture
def execution(desk):
    opportunity = ArbitrageOpportunityFactory(
        buy_venue=desk.buy_venue,
        sell_venue=desk.sell_venue,
        symbol=SYMBOL,
        buy_price=D("50000"),
        sell_price=D("50200"),
        quantity=D("0.01"),
    )
    return services.execution_create_from_opportunity(opportunity=opportunity)


def legs(execution):
    return {order.leg: order for order in Order.objects.filter(execution=execution)}


def venue_orders(execution):
    """How many orders the paper venues hold per client order id."""
    ids = Order.objects.filter(execution=execution).values_list("client_order_id", flat=True)
    return {cid: PaperOrder.objects.filter(client_order_id=cid).count() for cid in ids}


def send_windows_pass(execution) -> None:
    """Time passes until no send of the orders' last claims can still reach a venue (their windows close)."""
    past = timezone.now() - timedelta(milliseconds=settings.VENUE_CLOCK_MARGIN_MS + 1)
    Order.objects.filter(execution=execution, send_deadline__isnull=False).update(send_deadline=past)


def test_both_legs_are_placed_and_their_fills_recorded(desk, execution):
    counting = CountingGateways()

    result = execution_place(execution_id=str(execution.id), gateway_factory=counting)

    assert not result.retry
    assert set(result.outcomes.values()) == {"placed"}
    assert counting.total("place_order") == 2
    assert counting.total("get_order") == 0
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.EXECUTING
    assert execution.submitted_at is not None
    assert execution.acknowledged_at >= execution.submitted_at
    assert execution.filled_at is not None
    for order in legs(execution).values():
        assert (order.status, order.filled_qty, order.place_attempts) == (OrderStatus.FILLED, D("0.01"), 1)
        assert order.exchange_order_id
        assert order.submitted_at <= order.acknowledged_at
        assert order.fills.count() == 1
        assert order.fills.get().book_age_ms is not None  # the paper venue says how old the book it met was
    buy, sell = legs(execution)[OrderLeg.BUY], legs(execution)[OrderLeg.SELL]
    assert (buy.avg_price, buy.cumulative_quote, buy.fee_quote) == (D("50000"), D("500"), D("0.5"))
    assert (sell.avg_price, sell.cumulative_quote, sell.fee_quote) == (D("50200"), D("502"), D("0.502"))


def test_the_two_legs_are_sent_concurrently(desk, execution):
    configure(paper_fill_latency_ms=500)  # each paper venue call waits half a second, like a round trip

    started = time.monotonic()
    execution_place(execution_id=str(execution.id))
    elapsed = time.monotonic() - started

    assert 0.5 <= elapsed < 0.9, elapsed  # one round trip, not two
    assert {o.status for o in legs(execution).values()} == {OrderStatus.FILLED}


def test_a_second_run_sends_nothing(desk, execution):
    execution_place(execution_id=str(execution.id))
    counting = CountingGateways()

    result = execution_place(execution_id=str(execution.id), gateway_factory=counting)

    assert result.outcomes == {}
    assert counting.calls == {}
    assert venue_orders(execution) == dict.fromkeys(venue_orders(execution), 1)


@pytest.mark.parametrize("when", ["before_send", "after_send"])
def test_a_worker_killed_around_the_send_neither_loses_nor_duplicates_an_order(desk, execution, when):
    dying = gateways(**{account.name: (lambda inner: DyingGateway(inner, when)) for account in
                        (desk.buy_account, desk.sell_account)})  # fmt: skip

    with pytest.raises(WorkerKilled):
        execution_place(execution_id=str(execution.id), gateway_factory=dying)

    sent = 1 if when == "after_send" else 0
    assert set(venue_orders(execution).values()) == {sent}
    for order in legs(execution).values():
        # The claim committed before the send: the next run knows the order may exist.
        assert (order.status, order.place_attempts) == (OrderStatus.PENDING, 1)

    # Right after, the dead run's send may still be on its way: the next run neither looks up nor sends.
    counting = CountingGateways()
    waiting = execution_place(execution_id=str(execution.id), gateway_factory=counting)
    assert waiting.retry and waiting.outcomes == {} and counting.calls == {}

    send_windows_pass(execution)
    result = execution_place(execution_id=str(execution.id), gateway_factory=counting)

    assert counting.total("get_order") == 2  # looked up first, because it may have been sent
    assert counting.total("place_order") == 2 - 2 * sent
    assert set(result.outcomes.values()) == {"found" if sent else "placed"}
    assert set(venue_orders(execution).values()) == {1}
    for order in legs(execution).values():
        assert (order.status, order.filled_qty, order.fills.count()) == (OrderStatus.FILLED, D("0.01"), 1)


def test_an_ambiguous_answer_makes_the_order_unknown_and_a_query_resolves_it(desk, execution):
    lost_answer = gateways(**{desk.sell_account.name: lambda inner: AmbiguousGateway(inner, delivered=True)})

    first = execution_place(execution_id=str(execution.id), gateway_factory=lost_answer)

    assert first.retry
    sell = legs(execution)[OrderLeg.SELL]
    assert (sell.status, sell.error_code) == (OrderStatus.UNKNOWN, -1007)
    assert legs(execution)[OrderLeg.BUY].status == OrderStatus.FILLED

    counting = CountingGateways()
    second = execution_place(execution_id=str(execution.id), gateway_factory=counting)

    assert second.outcomes == {sell.client_order_id: "found"}
    assert counting.total("place_order") == 0
    assert PaperOrder.objects.filter(client_order_id=sell.client_order_id).count() == 1
    sell.refresh_from_db()
    assert (sell.status, sell.filled_qty, sell.fills.count()) == (OrderStatus.FILLED, D("0.01"), 1)
    assert sell.place_attempts == 1


def test_an_unknown_order_the_venue_never_received_is_not_resent(desk, execution):
    lost_request = gateways(**{desk.sell_account.name: lambda inner: AmbiguousGateway(inner, delivered=False)})
    execution_place(execution_id=str(execution.id), gateway_factory=lost_request)
    counting = CountingGateways()

    result = execution_place(execution_id=str(execution.id), gateway_factory=counting)

    sell = legs(execution)[OrderLeg.SELL]
    assert result.outcomes == {sell.client_order_id: "not_found"}
    assert result.retry
    assert counting.total("place_order") == 0
    assert sell.status == OrderStatus.UNKNOWN
    assert not PaperOrder.objects.filter(client_order_id=sell.client_order_id).exists()


def test_a_retryable_error_leaves_the_order_pending_and_asks_for_another_run(desk, execution):
    desk.clear()  # the paper venue refuses an IOC order without a current book, as retryable

    first = execution_place(execution_id=str(execution.id))

    assert first.retry
    assert set(first.outcomes.values()) == {"retryable"}
    assert {o.status for o in legs(execution).values()} == {OrderStatus.PENDING}
    assert "No current order book" in legs(execution)[OrderLeg.BUY].error_message

    desk.books()
    second = execution_place(execution_id=str(execution.id))

    assert not second.retry
    assert {o.status for o in legs(execution).values()} == {OrderStatus.FILLED}
    assert set(venue_orders(execution).values()) == {1}


def test_a_final_refusal_rejects_that_order_only(desk, execution):
    fund(desk.sell_account, "BTC", "0")  # withdrawn after the checks passed

    result = execution_place(execution_id=str(execution.id))

    assert not result.retry
    sell, buy = legs(execution)[OrderLeg.SELL], legs(execution)[OrderLeg.BUY]
    assert (sell.status, sell.error_code) == (OrderStatus.REJECTED, -2010)
    assert "insufficient balance" in sell.error_message
    assert sell.acknowledged_at is not None
    assert buy.status == OrderStatus.FILLED


def test_a_run_that_finds_the_lease_taken_sends_nothing_and_asks_to_be_retried(desk, execution):
    counting = CountingGateways()

    with execution_lease(str(execution.id)) as leased:
        assert leased
        result = execution_place(execution_id=str(execution.id), gateway_factory=counting)

    assert (result.busy, result.retry) == (True, True)
    assert counting.calls == {}
    assert legs(execution)[OrderLeg.BUY].place_attempts == 0


def test_an_execution_that_is_no_longer_open_is_not_placed(desk, execution):
    execution.status = ExecutionStatus.FAILED
    execution.save(update_fields=["status"])

    result = execution_place(execution_id=str(execution.id))

    assert result.outcomes == {}
    assert not Fill.objects.exists()


def test_the_placement_task_is_routed_to_the_orders_queue_and_acknowledged_late():
    task = tasks.execution_place_orders
    route = celery_app.amqp.router.route({}, task.name)

    assert route["queue"].name == settings.CELERY_ORDERS_QUEUE
    assert (task.acks_late, task.reject_on_worker_lost) == (True, True)
    assert 0 < task.max_retries <= 10


@pytest.mark.parametrize("retries", [0, 1, 3, 10, 50])
def test_backoff_grows_exponentially_with_jitter_and_is_capped(retries):
    delays = [retry_countdown(retries) for _ in range(50)]
    nominal = min(30.0, 0.5 * 2**retries)

    assert all(0.5 * nominal <= delay <= 1.5 * nominal for delay in delays)
    assert len(set(delays)) > 1


def test_the_leg_timeout_settlement_is_scheduled_once_the_orders_are_out(
    desk, execution, monkeypatch, django_capture_on_commit_callbacks
):
    configure(leg_timeout_s=10)
    counting = CountingGateways()
    scheduled = []

    def settle_later(*, args, countdown=None, **_):
        # What the venues had received when the settlement was asked for.
        scheduled.append((args, countdown, counting.total("place_order")))

    monkeypatch.setattr(tasks.execution_settle, "apply_async", settle_later)
    with django_capture_on_commit_callbacks(execute=True):
        execution_place(execution_id=str(execution.id), gateway_factory=counting)

    # Not before the send (with eager tasks it would run then, its countdown ignored), and once. (The
    # filled legs also ask for a settlement right away.)
    timed = [call for call in scheduled if call[1] is not None]
    assert timed == [((str(execution.id),), 11, 2)]


def test_a_run_whose_claim_was_taken_over_sends_nothing(desk, execution):
    from trading.placement import _claim, _send_all

    claims, _ = _claim(str(execution.id))
    # Frozen here, the run lost its claim to another (a redelivery): the fencing numbers moved on.
    Order.objects.filter(execution=execution).update(place_attempts=F("place_attempts") + 1)
    counting = CountingGateways()

    outcomes = _send_all(claims, counting)

    assert [outcome.kind for outcome in outcomes] == ["claim_lost", "claim_lost"]
    assert counting.calls == {}
    assert set(venue_orders(execution).values()) == {0}


def test_the_paper_venue_refuses_an_order_sent_after_its_window(desk, execution):
    from trading.gateways.paper import PaperVenue
    from trading.placement import _claim

    claims, _ = _claim(str(execution.id))
    late = replace(claims[0].request, claimed_at_ms=claims[0].request.claimed_at_ms - 60_000)

    with pytest.raises(RetryableVenueError) as refused:
        PaperVenue(claims[0].account).place_order(late)

    assert (refused.value.code, refused.value.venue_code) == (ErrorCode.VENUE_TIMESTAMP, -1021)
    assert set(venue_orders(execution).values()) == {0}


def test_a_first_run_claims_in_one_short_transaction(desk, execution, django_assert_max_num_queries):
    # Mark and lock the execution (one UPDATE), lock its orders with their accounts and venues, one
    # UPDATE for the orders; the savepoint and its release stand for BEGIN and COMMIT here.
    from trading.placement import _claim

    with django_assert_max_num_queries(5):
        claims, waiting = _claim(str(execution.id))

    assert {claim.request.client_order_id for claim in claims} == {o.client_order_id for o in legs(execution).values()}
    assert all(claim.account.venue.code for claim in claims)  # no query left for the gateway
    assert not waiting
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.EXECUTING and execution.submitted_at is not None
    assert {o.place_attempts for o in legs(execution).values()} == {1}


def test_a_claim_with_nothing_to_send_changes_nothing(desk, execution):
    from trading.placement import _claim

    Order.objects.filter(execution=execution).update(status=OrderStatus.CANCELLED)

    assert _claim(str(execution.id)) == ([], False)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.PENDING and execution.submitted_at is None
