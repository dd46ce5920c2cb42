"""Work the notification services find due, turned into Celery tasks by ``notifications.tasks``, which
connects to these. The services name the work; the tasks module, above them, decides how it runs (a
direct reference from a service to its task would be an import cycle: each task calls a service)."""

from __future__ import annotations

from django.dispatch import Signal

# kwargs: event_id (int).
dispatch_due = Signal()
# kwargs: delivery_id (int).
send_due = Signal()
# kwargs: key (str), token (str), countdown (float or None).
flush_due = Signal()
