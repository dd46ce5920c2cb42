"""Run every benchmark in ``bench/``: a table per benchmark, then one JSON line with every figure.

A benchmark is a module of this package with ``TITLE`` and ``run() -> dict`` (its figures). The
settings are the project's: Redis from ``REDIS_URL``, else the embedded one (stopped again at the end
if this run started it).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from pathlib import Path
from typing import Any

import orjson


def main(names: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arbitragex.settings")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import django

    django.setup()
    from django.conf import settings

    from arbitragex import embedded

    package = Path(__file__).resolve().parent
    modules = sorted(info.name for info in pkgutil.iter_modules([str(package)]) if not info.name.startswith("_"))
    if names:
        modules = [name for name in modules if name in names]
    figures: dict[str, Any] = {}
    try:
        for name in modules:
            module = importlib.import_module(f"bench.{name}")
            if not callable(getattr(module, "run", None)):
                continue
            print(f"== {name}: {getattr(module, 'TITLE', name)}", flush=True)
            result = module.run()
            figures[name] = result
            width = max(len(key) for key in result)
            for key, value in result.items():
                shown = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else value
                print(f"  {key:<{width}}  {shown}")
            print(flush=True)
    finally:
        if embedded.started_here:
            embedded.stop_embedded_redis(settings.DATA_DIR)
    print(orjson.dumps(figures).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
