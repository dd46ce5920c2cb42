"""Risk jobs run by Celery beat. Thin: they call a service."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from arbitragex.errors import DatabaseUnavailable
from risk.services import risk_daily_reset as _risk_daily_reset


@shared_task(
    name="risk.tasks.risk_daily_reset",
    acks_late=True,
    autoretry_for=(DatabaseUnavailable, OperationalError, InterfaceError),
    retry_backoff=1,
    retry_backoff_max=30,
    retry_jitter=True,
    max_retries=20,
)
def risk_daily_reset() -> int:
    # Idempotent per date, so a redelivery after a worker crash is harmless (hence acks_late).
    return _risk_daily_reset()
