"""Notification tasks, on the default queue. Thin: each calls a service.

Each is idempotent (a redelivered dispatch or flush finds its work done; a delivery is claimed under a
lease), so they acknowledge late and are redelivered when a worker dies mid-run.
"""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.dispatch import receiver

from notifications import checks, services, signals, summary

_IDEMPOTENT: dict[str, Any] = {"acks_late": True, "reject_on_worker_lost": True}

# Retries after the first attempt; with the default backoff (15 s doubling, capped at 240 s) a message is
# tried for about 8 minutes before it is recorded FAILED.
DELIVERY_MAX_RETRIES: int = settings.NOTIFICATIONS_DELIVERY_RETRIES
DELIVERY_BACKOFF_S: int = settings.NOTIFICATIONS_DELIVERY_BACKOFF_S
# Below the broker's visibility timeout, so that a retry's countdown never causes a redelivery.
DELIVERY_BACKOFF_MAX_S = 240


def delivery_retry_countdown(retries: int) -> int:
    """Exponential backoff with full jitter: a random wait up to base × 2^retries (capped)."""
    return int(
        get_exponential_backoff_interval(
            factor=DELIVERY_BACKOFF_S, retries=retries, maximum=DELIVERY_BACKOFF_MAX_S, full_jitter=True
        )
    )


@shared_task(name="notifications.tasks.event_dispatch", **_IDEMPOTENT)
def event_dispatch(event_id: int) -> str:
    return services.event_dispatch(event_id=event_id)


@shared_task(name="notifications.tasks.throttle_flush", **_IDEMPOTENT)
def throttle_flush(key: str, token: str) -> str:
    return services.throttle_flush(key=key, token=token)


@shared_task(
    bind=True,
    name="notifications.tasks.delivery_send",
    max_retries=DELIVERY_MAX_RETRIES,
    time_limit=60,
    soft_time_limit=45,
    **_IDEMPOTENT,
)
def delivery_send(self: Task, delivery_id: int) -> str:
    retries = self.request.retries
    final = retries >= DELIVERY_MAX_RETRIES
    countdown = max(1, delivery_retry_countdown(retries))
    try:
        outcome = services.delivery_send(delivery_id=delivery_id, final=final, retry_in_s=countdown)
    except SoftTimeLimitExceeded:
        outcome = services.delivery_failure_record(
            delivery_id=delivery_id,
            reason="the send took longer than the time limit",
            final=final,
            retry_in_s=countdown,
        )
    if outcome == services.DeliveryOutcome.RETRY:
        raise self.retry(countdown=countdown)
    return str(outcome)


@shared_task(name="notifications.tasks.notifications_sweep", **_IDEMPOTENT)
def notifications_sweep() -> dict[str, int]:
    return services.notifications_sweep()


@shared_task(name="notifications.tasks.checks_run", **_IDEMPOTENT)
def checks_run() -> dict[str, list[int]]:
    return {"venues": checks.venues_check().events, "orders": checks.orders_unknown_check().events}


@shared_task(name="notifications.tasks.daily_summary", **_IDEMPOTENT)
def daily_summary() -> int | None:
    event = summary.daily_summary_send()
    return event.pk if event is not None else None


@receiver(signals.dispatch_due, dispatch_uid="notifications.tasks.dispatch_due")
def _dispatch_due(*, event_id: int, **_: Any) -> None:
    event_dispatch.apply_async(args=(event_id,))


@receiver(signals.send_due, dispatch_uid="notifications.tasks.send_due")
def _send_due(*, delivery_id: int, **_: Any) -> None:
    delivery_send.apply_async(args=(delivery_id,))


@receiver(signals.flush_due, dispatch_uid="notifications.tasks.flush_due")
def _flush_due(*, key: str, token: str, countdown: float | None = None, **_: Any) -> None:
    throttle_flush.apply_async(args=(key, token), countdown=countdown)
