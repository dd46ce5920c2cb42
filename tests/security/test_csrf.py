"""CSRF: a write made with the session (the dashboard, the admin) needs the CSRF token; a write made with
an API token does not (no browser sends it on its own). Checked with the test clients' CSRF checks on,
as a browser would meet them.
"""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from arbitragex.models import AuditLog
from tests.security.test_access import STAFF_WRITES

PASSWORD = "a-long-staff-password-1"


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user(username="ops", password=PASSWORD, is_staff=True, is_superuser=True)


def _session_client(staff) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username=staff.username, password=PASSWORD)
    return client


def _body(path: str) -> dict[str, object]:
    return {"trading_enabled": True} if path.endswith("config/") else {"reason": "csrf test"}


@pytest.mark.parametrize(("method", "path"), sorted(STAFF_WRITES))
def test_a_session_write_without_the_csrf_token_is_refused_and_changes_nothing(staff, method, path):
    client = _session_client(staff)
    url = path.replace("{id}", str(uuid.uuid4()))

    response = getattr(client, method)(url, _body(path), format="json")

    assert response.status_code == 403, response.content
    body = response.json()
    assert set(body) == {"code", "message", "detail"} and "CSRF" in body["message"]
    assert not AuditLog.objects.exists()


@pytest.mark.parametrize(("method", "path"), sorted(STAFF_WRITES))
def test_a_session_write_with_the_csrf_token_gets_through(staff, method, path):
    client = _session_client(staff)
    client.get(reverse("admin:index"))  # sets the csrftoken cookie, as any page does
    token = client.cookies["csrftoken"].value
    url = path.replace("{id}", str(uuid.uuid4()))

    response = getattr(client, method)(url, _body(path), format="json", HTTP_X_CSRFTOKEN=token)

    assert response.status_code != 403, response.content  # past CSRF (and permissions): 200, 400, 404 or 422


@pytest.mark.parametrize(("method", "path"), sorted(STAFF_WRITES))
def test_a_token_write_needs_no_csrf_token(staff, method, path):
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff).key}")
    url = path.replace("{id}", str(uuid.uuid4()))

    response = getattr(client, method)(url, _body(path), format="json")

    assert response.status_code != 403, response.content


def test_the_token_exchange_is_not_a_session_write(db):
    """auth/token/ takes a password, not a session: no CSRF token needed, and a bad one is a plain 400."""
    response = APIClient(enforce_csrf_checks=True).post(
        "/api/v1/auth/token/", {"username": "nobody", "password": "wrong"}, format="json"
    )
    assert response.status_code == 400


def test_admin_writes_need_the_csrf_token(staff):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    for url, data in (
        (reverse("admin:arbitragex_systemconfig_add"), {"key": "trading_enabled", "value": "false"}),
        (reverse("admin:arbitragex_systemconfig_kill_switch"), {"trading": "off", "confirm": "yes"}),
        (reverse("admin:logout"), {}),
    ):
        response = client.post(url, data)
        assert response.status_code == 403, url
    assert not AuditLog.objects.exists()
