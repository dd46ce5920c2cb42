"""Signals the trading app sends, inside the transaction of the change (see ``arbitragex.signals``).

Receivers run in the sender's transaction and must never make it fail. Several are sent from code that
also runs under an event loop's thread pool (``sync_to_async``), never from a coroutine itself.
"""

from __future__ import annotations

from django.dispatch import Signal

# An execution was parked as NEEDS_ATTENTION for an operator (``trading.finalise``).
# kwargs: execution (TradeExecution, saved), reason (str).
execution_needs_attention = Signal()

# An execution reached COMPLETED, FAILED or UNWOUND (``trading.finalise``); its residual exposure is recorded.
# kwargs: execution (TradeExecution, saved).
execution_finished = Signal()

# Reconciliation (or an order update it could not apply) recorded a difference between the database and a
# venue (``trading.reconcile``, ``trading.balances``, ``trading.orders``).
# kwargs: incident (Incident, saved).
incident_raised = Signal()

# A venue pair was paused because its legging budget (rolling leg-failure rate or loss budget) is spent.
# kwargs: buy_venue (str, venue code), sell_venue (str, venue code), symbol (str, "" = every symbol),
# reason (str), until (aware datetime, or None until an operator resumes it), figures (dict of str -> str:
# e.g. {"leg_failure_rate": "0.25", "legging_loss": "41.2", "budget": "40"}).
pair_paused = Signal()

# Work that is due once the change commits, sent after commit by ``trading.effects`` and turned into a
# Celery task by ``trading.tasks``, which connects to them. The services name the work; the tasks module,
# above them, decides how it runs. (A direct reference from a service to its task would be an import
# cycle: each task calls a service.)
# kwargs: execution_id (str), countdown (float or None: seconds before it runs).
placement_due = Signal()
settlement_due = Signal()
# kwargs: account_ids (list of int).
balances_sync_due = Signal()
