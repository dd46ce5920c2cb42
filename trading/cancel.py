"""Cancelling an execution by hand: end its open orders at the venues, then settle it.

Cancelling is the leg timeout brought forward: orders never sent are expired (under the execution's
lock, so a placement cannot claim them afterwards), orders that may have been sent are looked up,
and orders open at a venue are cancelled there, all under the placement lease. Whatever filled
before the cancel is then handled by the execution's leg-failure policy, as for any failed leg.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from arbitragex.errors import ApplicationError, ErrorCode
from arbitragex.services import audit_record
from trading.enums import EXECUTION_OPEN_STATUSES
from trading.finalise import execution_settle
from trading.gateways import GatewayFactory
from trading.leg_failure import orders_resolve_timed_out
from trading.locks import execution_lock
from trading.models import TradeExecution


def execution_cancel(
    *, execution_id: str, actor: Any = None, reason: str = "", gateway_factory: GatewayFactory | None = None
) -> TradeExecution:
    """Cancel the open orders of an unfinished execution and settle what filled. Audited."""
    with transaction.atomic():
        execution = execution_lock(execution_id)
        if execution is None:
            raise ApplicationError(ErrorCode.DB_NOT_FOUND, f"execution {execution_id} not found")
        if execution.status not in EXECUTION_OPEN_STATUSES:
            raise ApplicationError(
                ErrorCode.EXECUTION_NOT_CANCELLABLE,
                f"execution {execution_id} is {execution.status}; only unfinished executions can be cancelled",
                {"status": execution.status},
            )
        audit_record(
            action="execution.cancel",
            target=str(execution.pk),
            actor=actor,
            previous={"status": execution.status},
            note=reason,
        )
    now = timezone.now()
    orders_resolve_timed_out(
        execution_id=str(execution.pk), now=now, timeout=timedelta(0), gateway_factory=gateway_factory
    )
    execution_settle(execution_id=str(execution.pk), now=now, gateway_factory=gateway_factory)
    return TradeExecution.objects.get(pk=execution.pk)
