"""Run the benchmarks: a table per benchmark, then one JSON line with every figure.

    python -m bench                    # every benchmark, full size (make bench)
    python -m bench --quick            # short windows and smaller tables (make bench-quick)
    python -m bench --quick api sync   # some of them

A benchmark is a module of this package with ``TITLE`` and ``run(mode) -> dict`` (its figures). The
settings are ``bench.settings``: the project's (``DATABASE_URL``/``REDIS_URL``, else the embedded
PostgreSQL and Redis) with the benchmark's own databases, Redis key prefix and Celery queues. The
embedded servers are up for the run (the explicit step of ``arbitragex.embedded``) and stopped at its
end unless the platform still uses them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import orjson

# In the order they run; the long memory replay goes last.
BENCHMARKS = ["pipeline", "tick_to_order", "execution_quality", "order_sync", "api", "stream_memory"]


def _shown(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="short windows and smaller tables")
    size.add_argument("--tiny", action="store_true", help="seconds per benchmark, for the smoke test")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")

    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from arbitragex import embedded

    with embedded.servers():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    import django

    django.setup()
    from django.conf import settings

    from bench._support import Mode, db_vendor, machine

    mode = Mode("tiny" if args.tiny else "quick" if args.quick else "full")
    names = args.names or BENCHMARKS
    database = settings.DATABASES["default"]
    figures: dict[str, Any] = {
        "mode": mode.name,
        "machine": machine(),
        "database": f"{db_vendor()} {database.get('HOST') or ''}".strip(),
        "redis": "embedded" if settings.EMBEDDED_REDIS else settings.REDIS_URL.split("@")[-1],
    }
    failed = False
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"== {name}: {module.TITLE}", flush=True)
        started = time.perf_counter()
        try:
            result = module.run(mode)
        except Exception as exc:
            traceback.print_exc()
            result = {"error": f"{type(exc).__name__}: {exc}"}
            failed = True
        result["bench_seconds"] = round(time.perf_counter() - started, 1)
        figures[name] = result
        width = max(len(key) for key in result)
        for key, value in result.items():
            print(f"  {key:<{width}}  {_shown(value)}")
        print(flush=True)
    figures["machine"]["load_average_end"] = [round(value, 2) for value in os.getloadavg()]
    print(orjson.dumps(figures).decode(), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
