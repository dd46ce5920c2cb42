from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.notifications.support import Receiver
from tests.trading.test_lifecycle_worker import workers  # noqa: F401 - the fixture that starts Celery workers


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()
