from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from trading.demo import demo_seed


class Command(BaseCommand):
    help = "Create the demo setup (simulated venues, instruments, paper accounts, config defaults) if missing."

    def handle(self, *args: Any, **options: Any) -> None:
        created = demo_seed()
        if options["verbosity"] > 0:
            self.stdout.write("demo setup created" if created else "demo setup already present")
