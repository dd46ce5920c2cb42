"""The embedded runtime: set-up steps and the process table of ``manage.py run``."""

from __future__ import annotations

import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction


@dataclass(frozen=True, slots=True)
class PlatformProcess:
    name: str
    command: list[str]
    description: str


def platform_processes(*, host: str, port: int, concurrency: int, workers: int = 1) -> list[PlatformProcess]:
    """Every long-running process of the platform. A new capability adds its process here."""
    python = sys.executable
    manage = str(settings.BASE_DIR / "manage.py")
    queues = f"{settings.CELERY_TASK_DEFAULT_QUEUE},{settings.CELERY_ORDERS_QUEUE}"
    names = ["worker"] if workers == 1 else [f"worker{n}" for n in range(1, workers + 1)]
    return [
        PlatformProcess(
            "web",
            [python, "-m", "daphne", "-b", host, "-p", str(port), "config.asgi:application"],
            f"admin, API, dashboard and WebSocket feed on http://{host}:{port}/",
        ),
        *(
            PlatformProcess(
                name,
                [
                    python, "-m", "celery", "-A", "arbitragex", "worker", "-Q", queues,
                    "--concurrency", str(concurrency), "--loglevel", "INFO", "-n", f"{name}@%h",
                ],
                f"Celery worker on queues {settings.CELERY_TASK_DEFAULT_QUEUE} and {settings.CELERY_ORDERS_QUEUE}",
            )
            for name in names
        ),
        PlatformProcess(
            "beat",
            [
                python, "-m", "celery", "-A", "arbitragex", "beat", "--loglevel", "INFO",
                "-S", "arbitragex.beat:DatabaseScheduler",
            ],
            "Celery beat (schedules editable in the admin under Periodic tasks)",
        ),
        PlatformProcess(
            "stream",
            [python, manage, "stream_marketdata"],
            "market-data stream: feeds, books, quote cache, detection, WebSocket fan-out",
        ),
        PlatformProcess(
            "userstream",
            [python, manage, "stream_userdata", "--wait-for-accounts"],
            "user data streams of live accounts (waits for one while there is none)",
        ),
    ]  # fmt: skip


def available_processes(processes: list[PlatformProcess]) -> list[PlatformProcess]:
    """Drop processes whose management command is not part of this build."""
    from django.core.management import get_commands  # noqa: PLC0415  (needs the apps loaded)

    commands = get_commands()
    return [p for p in processes if not (len(p.command) > 2 and p.command[1].endswith("manage.py"))
            or p.command[2] in commands]  # fmt: skip


def admin_password_file() -> Path:
    return settings.DATA_DIR / "admin_password"


@transaction.atomic
def admin_ensure() -> tuple[str, str | None, bool]:
    """Create the admin user once. Returns (username, password to show or None, created).

    ``ADMIN_USERNAME``/``ADMIN_PASSWORD`` win; otherwise a password is generated, kept in the data
    directory (mode 0600) and shown on every start while it is still the account's password.
    """
    user_model = get_user_model()
    username = settings.ADMIN_USERNAME
    password = settings.ADMIN_PASSWORD or None
    user = user_model.objects.filter(username=username).first()
    created = user is None
    if user is None:
        if password is None:
            password = secrets.token_urlsafe(12)
            path = admin_password_file()
            path.write_text(password)
            path.chmod(0o600)
        user = user_model.objects.create_superuser(username=username, email="", password=password)
        return username, password, created
    if password is not None:
        if not user.check_password(password):
            user.set_password(password)
            user.save(update_fields=["password"])
        return username, password, created
    path = admin_password_file()
    if path.exists() and user.check_password(path.read_text().strip()):
        return username, path.read_text().strip(), created
    return username, None, created


def beat_schedules_sync() -> list[str]:
    """Write the default periodic tasks once; an operator's later edits are kept. Returns the new ones.

    Only tasks that this build registers are scheduled, so beat never sends an unknown task.
    """
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask  # noqa: PLC0415  (models: after setup)

    from arbitragex.celery import app  # noqa: PLC0415  (the Celery app reads the settings)

    app.loader.import_default_modules()
    created = []
    for name, spec in settings.BEAT_DEFAULT_SCHEDULES.items():
        if spec["task"] not in app.tasks or PeriodicTask.objects.filter(name=name).exists():
            continue
        fields: dict[str, object] = {"name": name, "task": spec["task"]}
        if "every_seconds" in spec:
            fields["interval"], _ = IntervalSchedule.objects.get_or_create(
                every=spec["every_seconds"], period=IntervalSchedule.SECONDS
            )
        else:
            cron = spec["crontab"]
            fields["crontab"], _ = CrontabSchedule.objects.get_or_create(
                minute=cron._orig_minute, hour=cron._orig_hour, day_of_week="*", day_of_month="*",
                month_of_year="*", timezone="UTC",
            )  # fmt: skip
        PeriodicTask.objects.create(**fields)
        created.append(name)
    return created
