"""Every benchmark runs, end to end, in its tiny mode (``python -m bench --tiny <name>``).

Not timed: the figures of a tiny run mean nothing (see docs/benchmarks.md for the real ones). What is
checked is that each benchmark completes and reports its figures, in the last line of its output, as
JSON. Each run is a subprocess with the benchmark settings (its own databases, suffixed ``_smoke``,
and its own Redis key prefix and Celery queues), on this suite's ``DATABASE_URL``/``REDIS_URL``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

# benchmark -> figures its report must carry
EXPECTED = {
    "pipeline": ["pipeline_msgs_per_s", "bare_parse_msgs_per_s", "ratio_to_bare_parse"],
    "tick_to_order": ["in_process_p50_ms", "worker_p99_ms", "baseline_bare_order_p50_ms", "baseline_two_venues_p50_ms"],
    "order_sync": ["steady_requests", "steady_weight", "steady_seconds", "baseline_per_order_requests"],
    "api": ["executions_first_p99_ms", "executions_deep_queries", "statistics_p99_ms", "admin_changelist_queries"],
    "stream_memory": ["rss_warmup_end_mib", "rss_middle_mib", "rss_end_mib", "rss_slope_mib_per_min"],
}


def _run(name: str) -> dict:
    token = uuid.uuid4().hex[:8]
    env = {**os.environ, "BENCH_KEY_PREFIX": f"arbx-bench-smoke-{token}", "BENCH_QUEUE_PREFIX": f"smoke-{token}-"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", name], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, f"bench {name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    last = done.stdout.strip().splitlines()[-1]
    return json.loads(last)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_a_benchmark_runs_in_its_tiny_mode_and_reports_its_figures(name: str) -> None:
    report = _run(name)

    assert report["mode"] == "tiny"
    figures = report[name]
    assert "error" not in figures
    if "skipped" in figures:
        pytest.skip(f"{name}: {figures['skipped']}")
    for key in EXPECTED[name]:
        assert key in figures, f"{name} did not report {key}: {sorted(figures)}"
