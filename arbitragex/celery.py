"""The Celery app. Tasks subclass Celery's Django task class, so ``delay_on_commit`` is available."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbitragex.settings")

app = Celery("arbitragex", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")


def _queues() -> tuple[Queue, ...]:
    from django.conf import settings

    names = (settings.CELERY_TASK_DEFAULT_QUEUE, settings.CELERY_ORDERS_QUEUE)
    return tuple(Queue(name, Exchange(name, type="direct"), routing_key=name) for name in names)


app.conf.task_queues = _queues()
app.autodiscover_tasks()
