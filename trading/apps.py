from typing import Any

from django.apps import AppConfig


class TradingConfig(AppConfig):
    name = "trading"
    verbose_name = "Trading"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from celery.signals import worker_process_shutdown, worker_shutdown

        # A worker (or one of its pool processes) closes its venue clients before it exits, on the loop
        # they belong to: no session is left for the garbage collector to find unclosed.
        worker_process_shutdown.connect(_gateways_close, weak=False, dispatch_uid="trading.gateways_close")
        worker_shutdown.connect(_gateways_close, weak=False, dispatch_uid="trading.gateways_close_main")


def _gateways_close(**_: Any) -> None:
    from trading.gateways import gateways_close

    gateways_close()
