"""Beat's scheduler waits for a database that is away at start (a restart), instead of dying."""

from __future__ import annotations

import threading

import pytest
from django.db import OperationalError, connection, connections
from django_celery_beat.models import PeriodicTask

from arbitragex import beat
from arbitragex.celery import app as celery_app


@pytest.fixture
def database_away_for():
    database = connections.settings["default"]
    host = database["HOST"]
    timers: list[threading.Timer] = []

    def away(seconds: float) -> None:
        connection.close()
        database["HOST"] = "/nonexistent-socket-dir"

        def back() -> None:
            database["HOST"] = host

        timers.append(threading.Timer(seconds, back))
        timers[-1].start()

    yield away
    for timer in timers:
        timer.cancel()
    database["HOST"] = host
    connection.close()


@pytest.mark.django_db(transaction=True)
def test_the_scheduler_reads_its_schedule_once_the_database_is_back(database_away_for, caplog):
    database_away_for(1.5)

    scheduler = beat.DatabaseScheduler(app=celery_app)

    assert scheduler.startup_attempts >= 3  # 0.25 + 0.5 + 1 s of pauses before the database was back
    assert "celery.backend_cleanup" in scheduler.schedule
    assert PeriodicTask.objects.filter(name="celery.backend_cleanup").exists()
    assert "the database is not reachable" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_past_its_wait_the_scheduler_raises_as_before(database_away_for, monkeypatch):
    monkeypatch.setattr(beat, "STARTUP_WAIT_S", 0.5)
    database_away_for(30)

    with pytest.raises(OperationalError):
        beat.DatabaseScheduler(app=celery_app)
