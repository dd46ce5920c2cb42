"""Who may reach what, over every route the platform serves (the URL resolver and the OpenAPI document,
not a list kept by hand): anonymous users are refused everywhere but an explicit public list, other
users are refused the staff actions, and the WebSocket feed closes anonymous connections with 4401.

``tests/api/test_permissions.py`` checks the API's routes one by one with their error shapes; this
module derives the routes, so that a new route is refused by default or fails here until it is
classified. ``manage.py check --deploy`` under production settings is
``tests/arbitragex/test_settings.py::test_production_with_proper_secrets_passes_the_deployment_checks``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from config.asgi import application
from marketdata.consumers import CLOSE_UNAUTHENTICATED
from marketdata.routing import websocket_urlpatterns

METHODS = ("get", "post", "put", "patch", "delete")
# Every route an anonymous user may use, and nothing more.
PUBLIC = {
    "api/v1/schema/",  # the OpenAPI document
    "api/v1/docs/",  # its UI
    "api/v1/auth/token/",  # where a user exchanges a password for a token
    "healthz",  # liveness for the orchestrator: reachability only, no figures
    "admin/login/",
}
# POST only: it ends whatever session the caller has, and shows nothing.
LOGOUT = "admin/logout/"
# The writes only staff may make; every other authenticated user gets 403.
STAFF_WRITES = {
    ("post", "/api/v1/executions/"),
    ("post", "/api/v1/executions/{id}/cancel/"),
    ("post", "/api/v1/risk/breaker/open/"),
    ("post", "/api/v1/risk/breaker/close/"),
    ("post", "/api/v1/risk/reset-daily/"),
    ("patch", "/api/v1/config/"),
    ("post", "/api/v1/notifications/channels/"),
    ("put", "/api/v1/notifications/channels/{id}/"),
    ("patch", "/api/v1/notifications/channels/{id}/"),
    ("delete", "/api/v1/notifications/channels/{id}/"),
    ("post", "/api/v1/notifications/channels/{id}/test/"),
    ("post", "/api/v1/notifications/rules/"),
    ("put", "/api/v1/notifications/rules/{id}/"),
    ("patch", "/api/v1/notifications/rules/{id}/"),
    ("delete", "/api/v1/notifications/rules/{id}/"),
}
# The reads only staff may make: notification channels and rules (where operators are reached).
STAFF_READS = {
    ("get", "/api/v1/notifications/channels/"),
    ("get", "/api/v1/notifications/channels/{id}/"),
    ("get", "/api/v1/notifications/rules/"),
    ("get", "/api/v1/notifications/rules/{id}/"),
}
_PARAM = re.compile(r"\(\?P<[^>]+>[^)]*\)|<(?:[^:>]+:)?[^>]+>")


def _routes(patterns: list[object], prefix: str = "") -> Iterator[str]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def _url(route: str) -> str:
    """A concrete URL for a route: every parameter becomes a well-formed but unknown id."""
    route = route.replace("^", "").replace("$", "").replace("\\.", ".")
    route = _PARAM.sub(str(uuid.uuid4()), route)
    route = re.sub(r"\(\?:[^)]*\)\??", "", route).replace("?", "")  # optional format suffixes
    return "/" + route


def all_routes() -> list[str]:
    routes = {route.replace("^", "").replace("$", "") for route in _routes(get_resolver().url_patterns)}
    return sorted(routes)


API_ROUTES = [route for route in all_routes() if route.startswith("api/")]
SITE_ROUTES = [route for route in all_routes() if not route.startswith("api/")]


def test_the_route_lists_are_not_empty_and_every_public_route_exists():
    assert len(API_ROUTES) >= 18
    assert set(all_routes()) >= PUBLIC


@pytest.mark.django_db
@pytest.mark.parametrize("route", API_ROUTES)
def test_every_api_route_refuses_anonymous_users_with_401_except_the_public_ones(route):
    client = APIClient()
    url = _url(route)
    refused = []
    for method in METHODS:
        response = getattr(client, method)(url, {}, format="json") if method != "get" else client.get(url)
        refused.append(response.status_code == 401)
        if response.status_code == 401:
            body = response.json()
            assert set(body) == {"code", "message", "detail"}, body
            assert response["WWW-Authenticate"] == "Token"
    if route in PUBLIC:
        assert not all(refused), f"{route} is public but refuses anonymous users"
    else:
        assert all(refused), f"{route}: {url} answers an anonymous user"


@pytest.mark.django_db
@pytest.mark.parametrize("route", [r for r in SITE_ROUTES if r not in PUBLIC and r != LOGOUT])
def test_every_other_page_refuses_anonymous_users(route):
    """The admin, the dashboard and the metrics: a redirect to the login page, or 401."""
    client = APIClient()
    url = _url(route)
    if "static" in route or "media" in route:
        pytest.skip("static files")
    response = client.get(url)
    assert response.status_code in (302, 401, 404), (route, response.status_code)
    if response.status_code == 302:
        assert response["Location"].startswith("/admin/login/"), response["Location"]
    if response.status_code == 404:
        # Only for an object that does not exist, and never with anything but the not-found page.
        assert b"password" not in response.content.lower()


@pytest.mark.django_db
def test_the_public_list_is_exactly_what_answers_anonymous_users():
    client = APIClient()
    open_routes = set()
    for route in all_routes():
        if route == LOGOUT:
            continue
        url = _url(route)
        response = client.get(url)
        refused = response.status_code in (301, 302, 401, 403, 404, 405)
        if response.status_code == 405:  # a POST-only route: is it open to a POST?
            refused = client.post(url, {}, format="json").status_code in (401, 403)
        if not refused:
            open_routes.add(route)
    assert open_routes == PUBLIC


@pytest.fixture
def reader_client(db) -> APIClient:
    user = get_user_model().objects.create_user(username="reader", password="a-long-reader-password-1")
    client = APIClient()
    client.force_authenticate(user)
    return client


def _operations() -> list[tuple[str, str]]:
    client = APIClient()
    document = client.get("/api/v1/schema/?format=json").json()
    return [(method, path) for path, item in document["paths"].items() for method in item if method in METHODS]


@pytest.mark.django_db
def test_the_staff_writes_are_every_write_the_schema_documents_but_the_token_exchange():
    writes = {(method, path) for method, path in _operations() if method != "get"}
    assert writes - {("post", "/api/v1/auth/token/")} == STAFF_WRITES


@pytest.mark.parametrize(("method", "path"), sorted(STAFF_WRITES))
def test_every_staff_write_refuses_other_users_with_403(reader_client, method, path):
    url = path.replace("{id}", str(uuid.uuid4()))
    response = getattr(reader_client, method)(url, {"reason": "x", "trading_enabled": False}, format="json")
    assert response.status_code == 403, response.content
    assert response.json()["code"] == 1003


@pytest.mark.django_db
def test_every_read_is_open_to_any_authenticated_user(reader_client):
    for method, path in _operations():
        if method != "get" or path in ("/api/v1/schema/", "/api/v1/docs/"):
            continue
        response = reader_client.get(path.replace("{id}", str(uuid.uuid4())))
        if (method, path) in STAFF_READS:
            assert (response.status_code, response.json()["code"]) == (403, 1003), path
            continue
        assert response.status_code in (200, 400, 404), (path, response.status_code)  # never 401/403


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("route", [str(pattern.pattern) for pattern in websocket_urlpatterns])
async def test_every_websocket_route_closes_anonymous_connections_with_4401(route):
    communicator = WebsocketCommunicator(application, "/" + route, headers=[(b"origin", b"http://localhost")])
    connected, _ = await communicator.connect()
    assert connected  # accepted, then closed with a code a browser can read
    message = await communicator.receive_output(timeout=5)
    assert message == {"type": "websocket.close", "code": CLOSE_UNAUTHENTICATED}
    await communicator.wait()


@pytest.mark.django_db(transaction=True)
async def test_a_websocket_from_another_origin_is_refused_before_authentication():
    communicator = WebsocketCommunicator(application, "/ws/market/", headers=[(b"origin", b"https://evil.example")])
    connected, _ = await communicator.connect()
    assert not connected
    await communicator.wait()
