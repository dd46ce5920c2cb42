"""Where the shared reference data lives: ``$ARBX_SHARED_DATA`` or ``<project root>/../shared/data``."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path:
    configured = os.environ.get("ARBX_SHARED_DATA")
    if configured:
        return Path(configured)
    return (PROJECT_ROOT / ".." / "shared" / "data").resolve()
