"""Trading's Celery tasks. Thin: each calls one service and returns what it reports.

Every task here is idempotent, so each acknowledges late and is redelivered when a worker dies
mid-run (``reject_on_worker_lost``): placement never sends an order twice (see
``trading.placement``), and the others only move state forward.

The services enqueue these tasks (``trading.effects.task_on_commit(tasks.execution_settle, ...)``), so
each task imports its service when it runs: a module-level import would be a cycle.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from celery import Task, shared_task

from arbitragex import metrics

PLACE_MAX_RETRIES = 8

_IDEMPOTENT: dict[str, Any] = {"acks_late": True, "reject_on_worker_lost": True}


@shared_task(bind=True, name="trading.tasks.execution_place_orders", max_retries=PLACE_MAX_RETRIES, **_IDEMPOTENT)
def execution_place_orders(self: Task, execution_id: str) -> dict[str, Any]:
    from trading import placement

    result = placement.execution_place(execution_id=execution_id)
    if result.retry and self.request.retries < PLACE_MAX_RETRIES:
        raise self.retry(countdown=placement.retry_countdown(self.request.retries))
    # Out of retries: an order still unanswered is ended by the leg timeout (execution_settle).
    return result.as_dict()


@shared_task(name="trading.tasks.execution_settle", **_IDEMPOTENT)
def execution_settle(execution_id: str) -> str:
    from trading import finalise

    return finalise.execution_settle(execution_id=execution_id)


@shared_task(name="trading.tasks.orders_sync_open", **_IDEMPOTENT)
def orders_sync_open() -> dict[str, Any]:
    from trading import sync

    with metrics.sync_cycle_seconds.labels(job="orders").time():
        return asdict(sync.orders_sync_open())


@shared_task(name="trading.tasks.balances_sync", **_IDEMPOTENT)
def balances_sync(account_ids: list[int] | None = None) -> dict[str, int]:
    from trading import balances

    with metrics.sync_cycle_seconds.labels(job="balances").time():
        drifts = balances.balances_sync(account_ids=account_ids)
    return {str(account_id): len(found) for account_id, found in drifts.items()}


@shared_task(name="trading.tasks.instruments_sync", **_IDEMPOTENT)
def instruments_sync() -> int:
    from trading import sync

    with metrics.sync_cycle_seconds.labels(job="instruments").time():
        return sync.instruments_sync()


@shared_task(name="trading.tasks.reconcile", **_IDEMPOTENT)
def reconcile() -> dict[str, Any]:
    from trading import reconcile as reconciliation

    with metrics.sync_cycle_seconds.labels(job="reconcile").time():
        result = reconciliation.reconcile()
    return {"accounts": result.accounts, "incidents": result.incidents, "adopted": result.adopted}


@shared_task(name="trading.tasks.opportunities_expire", **_IDEMPOTENT)
def opportunities_expire() -> int:
    from trading import sync

    return sync.opportunities_expire()


@shared_task(name="trading.tasks.execution_rollups_refresh", **_IDEMPOTENT)
def execution_rollups_refresh() -> dict[str, int]:
    from trading import rollup

    return asdict(rollup.execution_rollups_refresh())
