"""``/dashboard/``: for logged-in users only; the page gets the symbols to subscribe to, the venue codes
and the API routes, and it loads nothing from outside the platform."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders
from django.urls import reverse

from arbitragex import display
from tests.factories import InstrumentFactory, VenueFactory

STATIC = ("arbitragex/dashboard.js", "arbitragex/dashboard.css", "arbitragex/admin_operations.css")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def instruments(db):
    a, b = VenueFactory(code="sim-a"), VenueFactory(code="sim-b")
    off = VenueFactory(code="sim-off", enabled=False)
    InstrumentFactory(venue=a, symbol="BTCUSDT")
    InstrumentFactory(venue=b, symbol="BTCUSDT")
    InstrumentFactory(venue=b, symbol="ETHUSDT", base_asset="ETH")
    InstrumentFactory(venue=a, symbol="BNBUSDT", base_asset="BNB", enabled=False)
    InstrumentFactory(venue=off, symbol="SOLUSDT", base_asset="SOL")
    return a, b, off


def test_an_anonymous_visitor_is_sent_to_the_admin_login(client, db):
    response = client.get("/dashboard/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/dashboard/"


def test_the_page_gets_the_enabled_symbols_venue_codes_and_api_routes(admin_client, instruments):
    a, b, off = instruments

    response = admin_client.get(reverse("dashboard"))

    assert response.status_code == 200
    assert response.templates[0].name == "dashboard.html"
    config = response.context["dashboard_config"]
    assert config["symbols"] == ["BTCUSDT", "ETHUSDT"]  # not the disabled instrument, nor the disabled venue's
    assert config["venues"] == {str(a.pk): "sim-a", str(b.pk): "sim-b", str(off.pk): "sim-off"}
    assert config["staff"] is True
    assert config["ws_path"] == "/ws/market/"
    assert config["api"]["statistics"] == "/api/v1/executions/statistics/"
    assert config["api"]["breaker_open"] == "/api/v1/risk/breaker/open/"
    assert config["api"]["config"] == "/api/v1/config/"
    assert config["api"]["instruments"] == "/api/v1/instruments/"  # tick and step sizes, assets
    assert config["display"] == {"max_places": 8, "money_places_fiat": 2, "money_places_coin": 8,
                                 "usd_like": sorted(display.USD_LIKE_ASSETS)}  # fmt: skip
    html = response.content.decode()
    assert '<script id="dashboard-config" type="application/json">' in html
    assert f'src="{settings.STATIC_URL}arbitragex/dashboard.js"' in html
    assert f'href="{settings.STATIC_URL}arbitragex/dashboard.css"' in html
    # The staff controls send the CSRF token from its cookie.
    assert "csrftoken" in response.cookies


def test_a_user_who_is_not_staff_gets_the_page_without_the_controls(client, instruments):
    reader = get_user_model().objects.create_user(username="reader", password="pw")
    client.force_login(reader)

    response = client.get("/dashboard/")

    assert response.status_code == 200
    assert response.context["dashboard_config"]["staff"] is False


def test_the_dashboard_is_read_with_get_only(admin_client, db):
    assert admin_client.post("/dashboard/").status_code == 405


def test_the_page_renders_with_no_instrument_at_all(admin_client, db):
    response = admin_client.get("/dashboard/")

    assert response.status_code == 200
    assert response.context["dashboard_config"]["symbols"] == []


@pytest.mark.parametrize("name", STATIC)
def test_the_static_files_are_part_of_the_app(name):
    assert finders.find(name), f"{name} is not found by the static files finders"


def test_nothing_is_loaded_from_outside_the_platform(admin_client, instruments):
    html = admin_client.get("/dashboard/").content.decode()
    css = Path(finders.find("arbitragex/dashboard.css")).read_text()
    js = Path(finders.find("arbitragex/dashboard.js")).read_text()

    assert not re.search(r"""(src|href)=["'](https?:)?//""", html), "the page links an outside resource"
    assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", css), "the stylesheet loads an outside resource"
    # The only absolute URL in the script is the SVG namespace, which is a name, not a download.
    assert set(re.findall(r"https?://[^\s\"'`]+", js)) == {"http://www.w3.org/2000/svg"}
    assert "innerHTML" not in js, "API values are put in the page as text only"
