"""The Celery app. Tasks subclass Celery's Django task class, so ``delay_on_commit`` is available."""

from __future__ import annotations

import os

from celery import Celery
from kombu.transport import TRANSPORT_ALIASES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbitragex.settings")

# The Redis transport with the fix for a Redis that goes away (``arbitragex.broker``).
for _scheme in ("redis", "rediss"):
    TRANSPORT_ALIASES[_scheme] = "arbitragex.broker:Transport"

# Nothing here reads the settings: the configuration is loaded lazily, at the app's first use.
app = Celery("arbitragex", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
