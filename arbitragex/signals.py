"""Signals the core app sends, for the apps above it to act on (notifications, for one).

Sent inside the transaction of the change: a receiver that writes rows writes them in that transaction,
and work that must wait for the commit is its own business (``transaction.on_commit``). A receiver
must never make the change fail.
"""

from __future__ import annotations

from django.dispatch import Signal

# A SystemConfig value was stored (``arbitragex.services.config_set``).
# kwargs: key (str), previous (the JSON value before), value (the JSON value now), actor (a user or None).
config_changed = Signal()
