"""The Celery app. Tasks subclass Celery's Django task class, so ``delay_on_commit`` is available."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbitragex.settings")

# Nothing here reads the settings: the configuration is loaded lazily, at the app's first use.
app = Celery("arbitragex", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
