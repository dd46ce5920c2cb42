from typing import Any

from django.apps import AppConfig


class TradingConfig(AppConfig):
    name = "trading"
    verbose_name = "Trading"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from celery.signals import worker_process_shutdown, worker_shutdown

        import trading.tasks  # noqa: F401  (connects the receivers that send the work the services announce)
        from arbitragex.metrics import scrape_collector_register

        scrape_collector_register(executions_by_status)
        scrape_collector_register(execution_quality_gauges)
        # A worker (or one of its pool processes) closes its venue clients before it exits, on the loop
        # they belong to: no session is left for the garbage collector to find unclosed.
        worker_process_shutdown.connect(_gateways_close, weak=False, dispatch_uid="trading.gateways_close")
        worker_shutdown.connect(_gateways_close, weak=False, dispatch_uid="trading.gateways_close_main")


def _gateways_close(**_: Any) -> None:
    from trading.gateways import gateways_close

    gateways_close()


def executions_by_status() -> list[Any]:
    """Executions per status, counted in the database at scrape time (one grouped query)."""
    from django.db.models import Count
    from prometheus_client.core import GaugeMetricFamily

    from arbitragex.metrics import NAMESPACE
    from trading.enums import ExecutionStatus
    from trading.models import TradeExecution

    counts = dict(TradeExecution.objects.order_by().values_list("status").annotate(n=Count("pk")))
    family = GaugeMetricFamily(
        f"{NAMESPACE}_executions", "Trade executions by status (from the database at scrape time).", labels=["status"]
    )
    for status in ExecutionStatus:
        family.add_metric([status.value], float(counts.get(status.value, 0)))
    return [family]


def execution_quality_gauges() -> list[Any]:
    """Execution quality per venue pair over the last hour (``trading.quality``), at scrape time."""
    from prometheus_client.core import GaugeMetricFamily

    from arbitragex.metrics import NAMESPACE
    from trading.quality import execution_quality

    labels = ["buy_venue", "sell_venue"]
    capture = GaugeMetricFamily(f"{NAMESPACE}_pair_capture_rate", "Completed / taken, last hour.", labels=labels)
    realised = GaugeMetricFamily(
        f"{NAMESPACE}_pair_realised_to_expected", "Actual over expected profit, last hour.", labels=labels
    )
    legging = GaugeMetricFamily(
        f"{NAMESPACE}_pair_legging_loss_share", "Legging losses over gross profit, last hour.", labels=labels
    )
    latency = GaugeMetricFamily(
        f"{NAMESPACE}_pair_latency_ms",
        "Stage latency percentiles of the last hour's executions, ms.",
        labels=[*labels, "stage", "quantile"],
    )
    for pair in execution_quality(window_s=3600).pairs:
        key = [pair.buy_venue, pair.sell_venue]
        for family, value in ((capture, pair.capture_rate), (realised, pair.realised_to_expected),
                              (legging, pair.legging_loss_share)):  # fmt: skip
            if value is not None:
                family.add_metric(key, float(value))
        for stage, percentiles in pair.latency_ms.items():
            for quantile in ("p50", "p99"):
                ms = percentiles.get(quantile)
                if ms is not None:
                    latency.add_metric([*key, stage, quantile], float(ms))
    return [capture, realised, legging, latency]
