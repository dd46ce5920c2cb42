"""Status and kind enumerations shared by models, services and the pure state machine."""

from __future__ import annotations

from django.db import models

# The order vocabulary is the venues' (every gateway reports in it); trading stores it.
from venues.types import ORDER_OPEN_STATUSES, ORDER_TERMINAL_STATUSES, OrderSide, OrderStatus, OrderType, TimeInForce

__all__ = [
    "EXECUTION_FINAL_STATUSES",
    "EXECUTION_OPEN_STATUSES",
    "EXECUTION_PNL_STATUSES",
    "EXECUTION_TERMINAL_STATUSES",
    "EXECUTION_TRANSITIONS",
    "ORDER_OPEN_STATUSES",
    "ORDER_TERMINAL_STATUSES",
    "AccountMode",
    "ExecutionStatus",
    "IncidentKind",
    "LegFailurePolicy",
    "OpportunityStatus",
    "OrderLeg",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "TimeInForce",
]


class AccountMode(models.TextChoices):
    PAPER = "paper", "Paper"
    LIVE = "live", "Live"


class OrderLeg(models.TextChoices):
    """Which part of an execution an order is; part of its deterministic client order id."""

    BUY = "B", "Buy leg"
    SELL = "S", "Sell leg"
    UNWIND = "U", "Unwind"
    RETRY = "R", "Retry"


class ExecutionStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    EXECUTING = "EXECUTING", "Executing"
    COMPLETED = "COMPLETED", "Completed"
    FAILED = "FAILED", "Failed"
    UNWINDING = "UNWINDING", "Unwinding"
    UNWOUND = "UNWOUND", "Unwound"
    NEEDS_ATTENTION = "NEEDS_ATTENTION", "Needs attention"


EXECUTION_OPEN_STATUSES = frozenset({ExecutionStatus.PENDING, ExecutionStatus.EXECUTING, ExecutionStatus.UNWINDING})
EXECUTION_TERMINAL_STATUSES = frozenset(
    {ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.UNWOUND, ExecutionStatus.NEEDS_ATTENTION}
)
# The settled executions whose profit is booked (a failed one traded nothing; a parked one waits for
# an operator): the day's PnL and the risk state's daily PnL add up the same executions.
EXECUTION_PNL_STATUSES = frozenset({ExecutionStatus.COMPLETED, ExecutionStatus.UNWOUND})
# Terminal and never left again (NEEDS_ATTENTION is terminal for the lifecycle, but an operator resolves it).
EXECUTION_FINAL_STATUSES = frozenset({ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.UNWOUND})


class ExecutionPolicy(models.TextChoices):
    SIMULTANEOUS = "simultaneous", "Both legs at once"
    SEQUENTIAL = "sequential", "The fragile leg first, then the hedge"


class LegFailurePolicy(models.TextChoices):
    UNWIND = "unwind", "Unwind the filled leg"
    RETRY = "retry", "Re-price the missing leg"
    ESCALATE = "escalate", "Retry in the band, reprice to the loss cap, then flatten"
    ALERT = "alert", "Park for an operator"


class OpportunityStatus(models.TextChoices):
    DETECTED = "DETECTED", "Detected"
    TAKEN = "TAKEN", "Taken"
    REJECTED = "REJECTED", "Rejected"
    EXPIRED = "EXPIRED", "Expired"


class IncidentKind(models.TextChoices):
    ORDER_MISSING_AT_VENUE = "order_missing_at_venue", "Order missing at venue"
    ORDER_UNKNOWN_LOCALLY = "order_unknown_locally", "Venue order unknown locally"
    ORDER_STATUS_DRIFT = "order_status_drift", "Order status drift"
    BALANCE_DRIFT = "balance_drift", "Balance drift"
    LEG_FAILURE = "leg_failure", "Leg failure"
    DUPLICATE_AT_VENUE = "duplicate_at_venue", "Order of ours at the venue we did not record"


# Where an execution may go from each status. Forward only; NEEDS_ATTENTION is parked for an
# operator, who resolves it to one of the terminal outcomes.
EXECUTION_TRANSITIONS: dict[str, frozenset[str]] = {
    ExecutionStatus.PENDING: frozenset({ExecutionStatus.EXECUTING, ExecutionStatus.FAILED}),
    ExecutionStatus.EXECUTING: frozenset(
        {ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.UNWINDING, ExecutionStatus.NEEDS_ATTENTION}
    ),
    ExecutionStatus.UNWINDING: frozenset({ExecutionStatus.UNWOUND, ExecutionStatus.NEEDS_ATTENTION}),
    ExecutionStatus.NEEDS_ATTENTION: frozenset(
        {ExecutionStatus.UNWINDING, ExecutionStatus.UNWOUND, ExecutionStatus.COMPLETED, ExecutionStatus.FAILED}
    ),
    # A final execution goes back to an operator only when the venue shows an order of it that we did
    # not record (adopted by trading.orders.order_adopt): its figures were wrong.
    ExecutionStatus.COMPLETED: frozenset({ExecutionStatus.NEEDS_ATTENTION}),
    ExecutionStatus.FAILED: frozenset({ExecutionStatus.NEEDS_ATTENTION}),
    ExecutionStatus.UNWOUND: frozenset({ExecutionStatus.NEEDS_ATTENTION}),
}
