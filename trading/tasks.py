"""Trading's Celery tasks. Thin: each calls one service and returns what it reports.

Every task here is idempotent, so each acknowledges late and is redelivered when a worker dies
mid-run (``reject_on_worker_lost``): placement never sends an order twice (see
``trading.placement``), and the others only move state forward.

The services announce the work that is due after a commit (``trading.effects``, through
``trading.signals``); the receivers at the end of this module send the task that does it. The services
never import this module, which imports them.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from celery import Task, shared_task
from django.core.cache import cache
from django.db import InterfaceError, OperationalError
from django.dispatch import receiver

from arbitragex import metrics
from arbitragex.errors import DatabaseUnavailable
from trading import balances, finalise, placement, rollup, signals, sync
from trading import reconcile as reconciliation

PLACE_MAX_RETRIES = 8

# A database out of reach (restarting, connection lost) decided nothing: the task runs again after a
# backoff (1 s doubling to 30 s, with jitter), which an idempotent task can always do.
DATABASE_OUT_OF_REACH = (DatabaseUnavailable, OperationalError, InterfaceError)

_IDEMPOTENT: dict[str, Any] = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": DATABASE_OUT_OF_REACH,
    "retry_backoff": 1,
    "retry_backoff_max": 30,
    "retry_jitter": True,
    "max_retries": 20,
}


@shared_task(
    bind=True, name="trading.tasks.execution_place_orders", **{**_IDEMPOTENT, "max_retries": PLACE_MAX_RETRIES}
)
def execution_place_orders(self: Task, execution_id: str) -> dict[str, Any]:
    result = placement.execution_place(execution_id=execution_id)
    if result.retry and self.request.retries < PLACE_MAX_RETRIES:
        raise self.retry(countdown=placement.retry_countdown(self.request.retries))
    # Out of retries: an order still unanswered is ended by the leg timeout (execution_settle).
    return result.as_dict()


@shared_task(name="trading.tasks.execution_settle", **_IDEMPOTENT)
def execution_settle(execution_id: str) -> str:
    return finalise.execution_settle(execution_id=execution_id)


@shared_task(name="trading.tasks.orders_sync_open", **_IDEMPOTENT)
def orders_sync_open() -> dict[str, Any]:
    with metrics.sync_cycle_seconds.labels(job="orders").time():
        return asdict(sync.orders_sync_open())


@shared_task(name="trading.tasks.executions_sweep", **_IDEMPOTENT)
def executions_sweep() -> dict[str, Any]:
    return asdict(sync.executions_sweep())


@shared_task(name="trading.tasks.balances_sync", **_IDEMPOTENT)
def balances_sync(account_ids: list[int] | None = None) -> dict[str, int]:
    with metrics.sync_cycle_seconds.labels(job="balances").time():
        drifts = balances.balances_sync(account_ids=account_ids)
    return {str(account_id): len(found) for account_id, found in drifts.items()}


@shared_task(name="trading.tasks.instruments_sync", **_IDEMPOTENT)
def instruments_sync() -> int:
    with metrics.sync_cycle_seconds.labels(job="instruments").time():
        return sync.instruments_sync()


@shared_task(name="trading.tasks.reconcile", **_IDEMPOTENT)
def reconcile(requested_by: str = "") -> dict[str, Any]:
    """``requested_by``: the operator who queued this run from the admin (its audit row names them)."""
    label = f"{requested_by} (queued from the admin)" if requested_by else ""
    with metrics.sync_cycle_seconds.labels(job="reconcile").time():
        result = reconciliation.reconcile(actor_label=label)
    return {"accounts": result.accounts, "incidents": result.incidents, "adopted": result.adopted}


@shared_task(name="trading.tasks.opportunities_expire", **_IDEMPOTENT)
def opportunities_expire() -> int:
    return sync.opportunities_expire()


@shared_task(name="trading.tasks.execution_rollups_refresh", **_IDEMPOTENT)
def execution_rollups_refresh() -> dict[str, int]:
    return asdict(rollup.execution_rollups_refresh())


@receiver(signals.placement_due, dispatch_uid="trading.tasks.placement_due")
def _placement_due(*, execution_id: str, countdown: float | None = None, **_: Any) -> None:
    execution_place_orders.apply_async(args=(execution_id,), countdown=countdown)


@receiver(signals.settlement_due, dispatch_uid="trading.tasks.settlement_due")
def _settlement_due(*, execution_id: str, countdown: float | None = None, **_: Any) -> None:
    execution_settle.apply_async(args=(execution_id,), countdown=countdown)


# A live account's balances are read again after each of its executions settles; the reads of a burst
# are coalesced into one per account, BALANCE_SYNC_COALESCE_S after the first: the read then sees every
# fill settled meanwhile, and an account's balance read (weight 20 on Binance) is not spent per execution.
BALANCE_SYNC_COALESCE_S = 2


@receiver(signals.balances_sync_due, dispatch_uid="trading.tasks.balances_sync_due")
def _balances_sync_due(*, account_ids: list[int], **_: Any) -> None:
    due = []
    for account_id in account_ids:
        try:
            first = cache.add(f"trade:balance-sync-due:{account_id}", 1, timeout=BALANCE_SYNC_COALESCE_S)
        except Exception:  # noqa: BLE001 (the cache is out of reach: read now rather than not at all)
            first = True
        if first:
            due.append(account_id)
    if due:
        balances_sync.apply_async(args=(due,), countdown=BALANCE_SYNC_COALESCE_S)
