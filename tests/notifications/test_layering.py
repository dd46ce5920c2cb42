"""notifications sits above trading: it imports every app, and no app imports it (DESIGN.md, "Apps")."""

from __future__ import annotations

import ast
from pathlib import Path

from django.conf import settings

APPS_BELOW = ("arbitragex", "marketdata", "risk", "trading")
# The composition root lives in the arbitragex package (settings, urls) and may name every app.
COMPOSITION_ROOT = {"arbitragex/settings.py", "arbitragex/urls.py"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_app_below_imports_notifications():
    offenders = []
    for app in APPS_BELOW:
        for path in sorted((settings.BASE_DIR / app).rglob("*.py")):
            relative = path.relative_to(settings.BASE_DIR).as_posix()
            if relative in COMPOSITION_ROOT or "/migrations/" in relative:
                continue
            if any(name == "notifications" or name.startswith("notifications.") for name in _imports(path)):
                offenders.append(relative)
    assert offenders == []
