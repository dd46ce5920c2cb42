"""Prometheus metrics shared by every process, kept in Redis.

Why Redis and not prometheus_client's multiprocess mode: web, worker, beat and stream are separate
processes, and in production they run on several hosts (DESIGN.md, "Production"). Only the web
process serves ``/metrics``. Multiprocess mode aggregates the mmap files of one host only, so the
workers on other hosts would never be seen. Redis is already shared by all of them, so every process
adds its figures to the same Redis hashes and any web process can expose the sum.

What it costs and how that is kept small:
- ``inc()`` and ``observe()`` only add to a buffer in the process (a dict under a lock). A daemon
  thread per process flushes the buffer every ``METRICS_FLUSH_INTERVAL`` seconds (default 1) in one
  pipeline: HINCRBYFLOAT for counters and histogram sums, HINCRBY for bucket counts, HSET for gauges.
  The hot path (a tick) therefore never waits for Redis.
- A failed flush keeps the buffer and tries again on the next one, so a Redis outage loses nothing
  but the figures of a process that dies meanwhile. Metrics never raise into the caller.
- After a fork (Celery prefork) the child starts with an empty buffer and its own flusher, so the
  parent's pending figures are not counted twice. A process that exits normally flushes at exit; a
  child killed with ``os._exit`` loses at most one interval of figures.

Semantics: counters and histograms are sums over every process since the Redis data was last
cleared (Prometheus treats a drop as a counter reset). Gauges are "last writer wins" across
processes, so only ``set()`` is offered. ``executions`` is not stored at all: it is computed from the
database at scrape time.

Usage from other modules::

    from arbitragex import metrics

    metrics.ticks_ingested.labels(venue="binance").inc()
    with metrics.order_placement_seconds.labels(venue="binance").time():
        ...
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django_redis import get_redis_connection
from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

logger = logging.getLogger(__name__)

NAMESPACE = "arbx"
KEY_PREFIX = "metrics"
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

LabelValues = tuple[str, ...]


def _redis() -> Any:
    return get_redis_connection("default")


def _redis_key(name: str) -> str:
    # Through the cache's own key scheme, so the key carries the installation's (or the tests') prefix.
    return str(cache.make_key(f"{KEY_PREFIX}:{name}"))


def _field(values: LabelValues) -> str:
    return json.dumps(values, separators=(",", ":"))


def _labels_from_field(labelnames: Sequence[str], field: str) -> dict[str, str]:
    return dict(zip(labelnames, json.loads(field), strict=True))


# --- the per-process buffer and its flusher -----------------------------------------------------------------


class _Buffer:
    """Pending figures of this process, flushed to Redis by a daemon thread."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)
        atexit.register(self.flush)

    def _reset(self) -> None:
        self.lock = threading.Lock()
        self.increments: dict[tuple[str, str], float] = {}  # (redis key, field) -> amount (HINCRBYFLOAT)
        self.counts: dict[tuple[str, str], int] = {}  # (redis key, field) -> amount (HINCRBY)
        self.values: dict[tuple[str, str], float] = {}  # (redis key, field) -> value (HSET)
        self.thread: threading.Thread | None = None

    def add(self, key: str, field: str, amount: float) -> None:
        with self.lock:
            self.increments[(key, field)] = self.increments.get((key, field), 0.0) + amount
        self._ensure_thread()

    def count(self, key: str, field: str, amount: int = 1) -> None:
        with self.lock:
            self.counts[(key, field)] = self.counts.get((key, field), 0) + amount
        self._ensure_thread()

    def set(self, key: str, field: str, value: float) -> None:
        with self.lock:
            self.values[(key, field)] = value
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        if self.thread is not None and self.thread.is_alive():
            return
        with self.lock:
            if self.thread is not None and self.thread.is_alive():
                return
            self.thread = threading.Thread(target=self._run, name="arbx-metrics-flush", daemon=True)
            self.thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(flush_interval())
            self.flush()

    def flush(self) -> bool:
        """Write the pending figures in one pipeline. Returns False (and keeps them) if Redis failed."""
        with self.lock:
            increments, counts, values = self.increments, self.counts, self.values
            self.increments, self.counts, self.values = {}, {}, {}
        if not (increments or counts or values):
            return True
        try:
            pipe = _redis().pipeline(transaction=False)
            for (key, field), amount in increments.items():
                pipe.hincrbyfloat(key, field, amount)
            for (key, field), amount in counts.items():
                pipe.hincrby(key, field, amount)
            for (key, field), value in values.items():
                pipe.hset(key, field, repr(float(value)))
            pipe.execute()
        except Exception:  # noqa: BLE001 (metrics must never break the caller; the figures are kept for the next flush)
            logger.warning("metrics flush to Redis failed; keeping %d pending figures", len(increments) + len(counts))
            with self.lock:
                for item, amount in increments.items():
                    self.increments[item] = self.increments.get(item, 0.0) + amount
                for item, n in counts.items():
                    self.counts[item] = self.counts.get(item, 0) + n
                for item, value in values.items():
                    self.values.setdefault(item, value)
            return False
        return True


def flush_interval() -> float:
    return float(settings.METRICS_FLUSH_INTERVAL)


_buffer = _Buffer()


def flush() -> bool:
    """Write this process's pending figures to Redis now (the /metrics view and tests call it)."""
    return _buffer.flush()


# --- metric types ---------------------------------------------------------------------------------------------


class _Metric:
    kind = ""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        self.name = f"{NAMESPACE}_{name}"
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        REGISTRY.append(self)

    @property
    def key(self) -> str:
        return _redis_key(self.name)

    def _values(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> LabelValues:
        if args and kwargs:
            raise ValueError("pass label values either by position or by name, not both")
        if kwargs:
            if set(kwargs) != set(self.labelnames):
                raise ValueError(f"{self.name} takes the labels {self.labelnames}, got {tuple(kwargs)}")
            return tuple(str(kwargs[name]) for name in self.labelnames)
        if len(args) != len(self.labelnames):
            raise ValueError(f"{self.name} takes the labels {self.labelnames}, got {len(args)} values")
        return tuple(str(value) for value in args)

    def _no_labels(self) -> LabelValues:
        if self.labelnames:
            raise ValueError(f"{self.name} has labels {self.labelnames}: call .labels(...) first")
        return ()

    def read(self, raw: dict[str, str]) -> Metric:
        raise NotImplementedError


class _CounterChild:
    def __init__(self, metric: Counter, values: LabelValues) -> None:
        self._metric, self._field = metric, _field(values)

    def inc(self, amount: float = 1) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        _buffer.add(self._metric.key, self._field, float(amount))


class Counter(_Metric):
    """A monotonically increasing count, summed over every process."""

    kind = "counter"

    def labels(self, *args: Any, **kwargs: Any) -> _CounterChild:
        return _CounterChild(self, self._values(args, kwargs))

    def inc(self, amount: float = 1) -> None:
        _CounterChild(self, self._no_labels()).inc(amount)

    def read(self, raw: dict[str, str]) -> Metric:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for field, value in sorted(raw.items()):
            family.add_metric(json.loads(field), float(value))
        return family


class _GaugeChild:
    def __init__(self, metric: Gauge, values: LabelValues) -> None:
        self._metric, self._field = metric, _field(values)

    def set(self, value: float) -> None:
        _buffer.set(self._metric.key, self._field, float(value))


class Gauge(_Metric):
    """A value that goes up and down; across processes the last ``set()`` wins."""

    kind = "gauge"

    def labels(self, *args: Any, **kwargs: Any) -> _GaugeChild:
        return _GaugeChild(self, self._values(args, kwargs))

    def set(self, value: float) -> None:
        _GaugeChild(self, self._no_labels()).set(value)

    def read(self, raw: dict[str, str]) -> Metric:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for field, value in sorted(raw.items()):
            family.add_metric(json.loads(field), float(value))
        return family


class _HistogramChild:
    def __init__(self, metric: Histogram, values: LabelValues) -> None:
        self._metric, self._field = metric, _field(values)

    def observe(self, value: float) -> None:
        value = float(value)
        key = self._metric.key
        # Each observation lands in the first bucket that holds it; cumulated at scrape time.
        bucket = next((bound for bound in self._metric.buckets if value <= bound), float("inf"))
        _buffer.count(key, f"{self._field}|b|{bucket!r}")
        _buffer.count(key, f"{self._field}|count")
        _buffer.add(key, f"{self._field}|sum", value)

    @contextmanager
    def time(self) -> Iterator[None]:
        """Observe the duration of the block, in seconds (also when it raises)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.observe(time.perf_counter() - started)


class Histogram(_Metric):
    """Observations in buckets (upper bounds in seconds for durations), summed over every process."""

    kind = "histogram"

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str] = (), buckets: Iterable[float] = DEFAULT_BUCKETS
    ) -> None:
        super().__init__(name, documentation, labelnames)
        self.buckets = tuple(sorted(float(bound) for bound in buckets))

    def labels(self, *args: Any, **kwargs: Any) -> _HistogramChild:
        return _HistogramChild(self, self._values(args, kwargs))

    def observe(self, value: float) -> None:
        _HistogramChild(self, self._no_labels()).observe(value)

    def time(self) -> Any:
        return _HistogramChild(self, self._no_labels()).time()

    def read(self, raw: dict[str, str]) -> Metric:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        series: dict[str, dict[str, float]] = {}
        for field, value in raw.items():
            # Split from the right: a label value may itself contain "|".
            if field.endswith(("|count", "|sum")):
                labels_field, part = field.rsplit("|", 1)
            else:
                labels_field, upper = field.rsplit("|b|", 1)
                part = f"b|{upper}"
            series.setdefault(labels_field, {})[part] = float(value)
        bounds = [*self.buckets, float("inf")]
        for labels_field, parts in sorted(series.items()):
            cumulative, buckets = 0.0, []
            for bound in bounds:
                cumulative += parts.get(f"b|{bound!r}", 0.0)
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            family.add_metric(json.loads(labels_field), buckets, parts.get("sum", 0.0))
        return family


REGISTRY: list[_Metric] = []

# --- the platform's metrics -------------------------------------------------------------------------------------

ticks_ingested = Counter(
    "ticks_ingested",
    "Market data frames turned into quotes by the stream process. Labels: venue.",
    ["venue"],
)
opportunities_detected = Counter(
    "opportunities_detected",
    "Cross-venue spreads detected after debounce, whether taken or not. Labels: symbol.",
    ["symbol"],
)
opportunities_rejected = Counter(
    "opportunities_rejected",
    "Detected opportunities not executed. Labels: reason (the ErrorCode name, e.g. PROFIT_RATE_TOO_LOW).",
    ["reason"],
)
order_placement_seconds = Histogram(
    "order_placement_seconds",
    "Time from sending an order to the venue's answer (acknowledgement or refusal). Labels: venue.",
    ["venue"],
)
sync_cycle_seconds = Histogram(
    "sync_cycle_seconds",
    "Duration of one periodic sync cycle. Labels: job (orders, balances, instruments, reconcile).",
    ["job"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
)
venue_errors = Counter(
    "venue_errors",
    "Errors answered by or on the way to a venue. Labels: venue, error_class (retryable, ambiguous, final).",
    ["venue", "error_class"],
)
rate_limit_used = Gauge(
    "rate_limit_used",
    "Rate-limit units used in the current window, from X-MBX-USED-WEIGHT-* / X-MBX-ORDER-COUNT-*. "
    "Labels: venue, limit (e.g. weight_1m, orders_10s).",
    ["venue", "limit"],
)
rate_limit_waits = Counter(
    "rate_limit_waits",
    "Requests delayed or refused by the shared rate limiter (incl. Retry-After and 418 bans). Labels: venue.",
    ["venue"],
)
stream_reconnects = Counter(
    "stream_reconnects",
    "WebSocket stream reconnections (watchdog, error or 24 h rotation). Labels: venue, stream (market, user).",
    ["venue", "stream"],
)


# --- exposition ---------------------------------------------------------------------------------------------------


# Figures an app counts at scrape time (in its database, say), registered by the app in AppConfig.ready().
ScrapeCollector = Callable[[], Iterable[Metric]]
_scrape_collectors: list[ScrapeCollector] = []


def scrape_collector_register(collector: ScrapeCollector) -> None:
    """Add figures computed at each scrape; an app registers its own in ``AppConfig.ready()``."""
    if collector not in _scrape_collectors:
        _scrape_collectors.append(collector)


class _RedisCollector(Collector):
    def collect(self) -> Iterable[Metric]:
        pipe = _redis().pipeline(transaction=False)
        for metric in REGISTRY:
            pipe.hgetall(metric.key)
        for metric, raw in zip(REGISTRY, pipe.execute(), strict=True):
            decoded = {
                (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                for k, v in raw.items()
            }
            yield metric.read(decoded)
        for collector in _scrape_collectors:
            yield from collector()


exposition_registry = CollectorRegistry(auto_describe=False)
exposition_registry.register(_RedisCollector())


def render() -> bytes:
    """The text exposition of every metric: this process's buffer is flushed first."""
    flush()
    return generate_latest(exposition_registry)


def reset() -> None:
    """Delete every stored figure (tests; or an operator starting the counters afresh)."""
    with _buffer.lock:
        _buffer.increments, _buffer.counts, _buffer.values = {}, {}, {}
    _redis().delete(*(metric.key for metric in REGISTRY))
