"""Signals the risk app sends, inside the transaction of the change (see ``arbitragex.signals``)."""

from __future__ import annotations

from django.dispatch import Signal

# The breaker of a scope was opened: by a threshold (``risk_state_record_trade``), by reconciliation
# drift or by an operator (``breaker_open``).
# kwargs: state (the saved RiskState), reason (str), actor (a user, or None for the platform).
breaker_tripped = Signal()

# The breaker of a scope was closed by an operator (``breaker_close``).
# kwargs: state (the saved RiskState), previous ({"open": bool, "reason": str} before), actor (a user or None).
breaker_closed = Signal()
