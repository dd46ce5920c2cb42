"""Settings read the environment: production (DEBUG off) refuses to start on missing or weak secrets and
passes Django's deployment checks; the embedded default keeps its generated secrets in the data dir.

Each case runs Django in a fresh interpreter, because settings are read once at import.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings

LOAD_SETTINGS = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
PRINT_SECRETS = (
    "import json, django; django.setup(); from django.conf import settings; "
    "print(json.dumps([settings.SECRET_KEY, settings.FIELD_ENCRYPTION_KEY]))"
)
CONFIG_NAMES = ("DEBUG", "SECRET_KEY", "FIELD_ENCRYPTION_KEY", "ALLOWED_HOSTS", "ARBX_TESTING", "DATABASE_URL")


def _django(args: list[str], data_dir: Path, **config: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if name not in CONFIG_NAMES}
    env.update(
        DJANGO_SETTINGS_MODULE="arbitragex.settings",
        ARBX_DATA_DIR=str(data_dir),
        # The Redis and database this suite runs on: a fresh data dir must not start a second redis-server.
        REDIS_URL=settings.REDIS_URL,
        **({"DATABASE_URL": settings.DATABASE_URL} if settings.DATABASE_URL else {}),
        **config,
    )
    return subprocess.run(
        [sys.executable, *args], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )


def _production(**overrides: str) -> dict[str, str]:
    config = {
        "DEBUG": "False",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "arbx.example.com",
    }
    config.update(overrides)
    return {name: value for name, value in config.items() if value is not None}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"SECRET_KEY": None}, "set SECRET_KEY to a random value of at least 32 characters"),
        ({"SECRET_KEY": "short-and-guessable"}, "set SECRET_KEY to a random value of at least 32 characters"),
        ({"SECRET_KEY": "django-insecure-" + "x" * 40}, "set SECRET_KEY to a random value of at least 32 characters"),
        ({"FIELD_ENCRYPTION_KEY": None}, "set FIELD_ENCRYPTION_KEY (a Fernet key)"),
        ({"ALLOWED_HOSTS": None}, "set ALLOWED_HOSTS"),
    ],
    ids=["no-secret-key", "short-secret-key", "insecure-secret-key", "no-encryption-key", "no-allowed-hosts"],
)
def test_production_refuses_to_start_without_proper_secrets(tmp_path, overrides, message):
    result = _django(["-c", LOAD_SETTINGS], tmp_path, **_production(**overrides))

    assert result.returncode != 0
    assert "django.core.exceptions.ImproperlyConfigured: DEBUG is off: " in result.stderr
    assert message in result.stderr
    assert not (tmp_path / "secret_key").exists()  # nothing is generated behind the operator's back


def test_production_with_proper_secrets_passes_the_deployment_checks(tmp_path):
    result = _django(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], tmp_path, **_production())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "security.W" not in result.stdout + result.stderr


def test_production_settings_load_with_debug_off(tmp_path):
    result = _django(["-c", LOAD_SETTINGS], tmp_path, **_production())

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_the_embedded_default_generates_its_secrets_once_and_keeps_them_private(tmp_path):
    first = _django(["-c", PRINT_SECRETS], tmp_path)
    second = _django(["-c", PRINT_SECRETS], tmp_path)

    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    secret_key, encryption_key = json.loads(first.stdout)
    assert json.loads(second.stdout) == [secret_key, encryption_key]  # every process of the platform agrees
    assert len(secret_key) >= 50
    Fernet(encryption_key.encode())  # a valid Fernet key
    for name in ("secret_key", "field_encryption_key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
