"""Delivery: a message whose receiver is down is retried and arrives once it is up; one that still cannot
be delivered after its retries is recorded FAILED with the reason. Nothing is dropped silently."""

from __future__ import annotations

import pytest

from notifications import services, tasks
from notifications.events import EventKind, EventSpec, Severity
from notifications.models import Delivery
from tests.notifications.support import SECRET_TOKEN, Receiver, channel_with_rule, drain, free_port

pytestmark = pytest.mark.django_db


def record(title: str = "venue down") -> None:
    services.event_record(
        EventSpec(kind=EventKind.VENUE_BANNED, severity=Severity.CRITICAL, key=title, title=title, body="b")
    )


def test_a_message_to_a_receiver_that_is_down_is_retried_and_arrives_when_it_is_up():
    receiver = Receiver(port=free_port())  # not listening yet: connection refused
    channel_with_rule(receiver)
    record()

    drain()

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.PENDING, 1)
    assert "A Connection error occurred sending JSON notification" in delivery.error
    assert delivery.next_attempt_at is not None

    receiver.start()
    try:
        drain()
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts, delivery.error) == (Delivery.Status.SENT, 2, "")
        assert [m.title for m in receiver.wait_for(1)] == ["venue down"]
    finally:
        receiver.stop()


def test_a_message_still_refused_after_its_retries_is_recorded_failed_with_the_reason(receiver):
    receiver.fail_with = 500
    channel_with_rule(receiver)
    record()
    drain_dispatch_only()
    delivery = Delivery.objects.get()

    # The Celery task as a worker runs it, its retries included (run in this process: Task.apply).
    tasks.delivery_send.apply(args=[delivery.pk])

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    assert delivery.attempts == tasks.DELIVERY_MAX_RETRIES + 1 == receiver.requests
    assert "Failed to send JSON POST notification" in delivery.error and "error=500" in delivery.error
    assert SECRET_TOKEN not in delivery.error
    assert not receiver.messages


def test_a_failed_delivery_is_never_attempted_again():
    receiver = Receiver(port=free_port())
    channel_with_rule(receiver)
    record()
    drain(final=True)
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.FAILED

    assert services.delivery_send(delivery_id=delivery.pk, final=True, retry_in_s=0) == "nothing to do"
    assert Delivery.objects.get().attempts == 1


def test_a_delivery_being_attempted_is_not_claimed_twice(receiver):
    channel_with_rule(receiver)
    record()
    drain_dispatch_only()
    delivery = Delivery.objects.get()
    assert services._claim(delivery.pk, delivery.created_at) is not None  # another worker's attempt, under way

    assert services.delivery_send(delivery_id=delivery.pk, final=False, retry_in_s=0) == "nothing to do"
    assert not receiver.messages


def test_the_retry_backoff_is_exponential_with_jitter_and_capped():
    for retries in range(8):
        ceiling = min(tasks.DELIVERY_BACKOFF_S * 2**retries, tasks.DELIVERY_BACKOFF_MAX_S)
        waits = {tasks.delivery_retry_countdown(retries) for _ in range(200)}
        assert max(waits) <= ceiling
        assert len(waits) > 1  # jittered, so that workers do not retry in step
    assert max(tasks.delivery_retry_countdown(20) for _ in range(200)) <= tasks.DELIVERY_BACKOFF_MAX_S


def test_the_delivery_task_runs_on_the_default_queue_with_a_time_limit():
    from django.conf import settings

    task = tasks.delivery_send
    assert (task.time_limit, task.soft_time_limit, task.acks_late) == (60, 45, True)
    assert task.name not in settings.CELERY_TASK_ROUTES  # unrouted: the default queue


def drain_dispatch_only() -> None:
    from notifications.models import Event

    for event in Event.objects.filter(status=Event.Status.NEW):
        services.event_dispatch(event_id=event.pk)
