"""End to end through a real Celery worker (a subprocess on this suite's broker and test database): a
breaker trip forced through the API reaches the receiver with its reason, a second trip within the window
arrives as "1 more", and a message to a receiver that is down is retried until it is up."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from notifications.models import Delivery
from tests.notifications.support import Receiver, channel_with_rule, free_port, staff_user, wait_until
from tests.trading.lifecycle_support import configure

pytestmark = pytest.mark.slow

DELIVERED_WITHIN_S = 30


@pytest.fixture
def fast_retries(monkeypatch):
    # The worker subprocess reads it from its environment: retries 1 s, 2 s, 4 s... apart (with jitter).
    monkeypatch.setenv("NOTIFICATIONS_DELIVERY_BACKOFF_S", "1")


@pytest.fixture
def api(transactional_db):
    client = APIClient()
    client.force_authenticate(staff_user("e2e-operator"))
    return client


def test_a_breaker_trip_through_the_api_reaches_the_receiver_and_a_second_one_becomes_one_more(
    api,
    receiver,
    workers,
    fast_retries,
):
    configure(notify_window_s=5)
    channel_with_rule(receiver)
    worker = workers()

    opened = api.post("/api/v1/risk/breaker/open/", {"reason": "e2e venue maintenance", "cooldown_seconds": 600})
    assert opened.status_code == 200

    (first,) = receiver.wait_for(1, timeout=DELIVERED_WITHIN_S)
    assert first.title == "Breaker tripped (global/*): e2e venue maintenance"
    assert "Opened by e2e-operator" in first.message and first.type == "failure"

    # A second trip within the 5 s window: held back, then told as "1 more" when the window ends.
    assert api.post("/api/v1/risk/breaker/open/", {"reason": "e2e second trip"}).status_code == 200
    summary = receiver.wait_for(2, timeout=DELIVERED_WITHIN_S)[1]
    assert summary.title.startswith("1 more since ")
    assert summary.title.endswith(": Breaker tripped (global/*): e2e second trip")
    assert len(receiver.messages) == 2, receiver.messages
    assert "notifications.tasks.throttle_flush" in worker.log()


def test_a_message_to_a_receiver_that_is_down_is_retried_by_the_worker_until_it_is_up(
    api,
    workers,
    fast_retries,
):
    receiver = Receiver(port=free_port())  # not listening yet
    channel_with_rule(receiver)
    worker = workers()
    try:
        assert api.post("/api/v1/risk/breaker/open/", {"reason": "while the hook is down"}).status_code == 200

        wait_until(
            lambda: Delivery.objects.filter(attempts__gte=1, error__contains="Connection error").exists(),
            DELIVERED_WITHIN_S,
            "a failed first attempt",
        )
        receiver.start()

        (message,) = receiver.wait_for(1, timeout=DELIVERED_WITHIN_S)
        assert message.title == "Breaker tripped (global/*): while the hook is down"
        # The receiver has the message before the worker records the attempt that sent it.
        wait_until(
            lambda: Delivery.objects.filter(status=Delivery.Status.SENT).exists(),
            DELIVERED_WITHIN_S,
            "the delivery recorded as sent",
        )
        delivery = Delivery.objects.get()
        assert delivery.status == Delivery.Status.SENT and delivery.attempts >= 2, worker.log()
    finally:
        receiver.stop()
