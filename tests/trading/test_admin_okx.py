"""Operators add OKX from the admin: a ccxt venue of exchange okx, then a live account with its key, secret
and passphrase, the last two write-only (stored encrypted, never rendered back); the operations page's venue
health covers the ccxt venue like a Binance one."""

from __future__ import annotations

import pytest
from django.urls import reverse

from marketdata.models import Venue
from tests.factories import VenueFactory
from trading.models import ExchangeAccount

pytestmark = pytest.mark.django_db

SECRET = "okx-Secret-7f3a9c1e55"
PASSPHRASE = "Pass-phrase-9Q"


def venue_form(**fields: str) -> dict[str, str]:
    return {
        "code": "okx", "name": "OKX", "kind": "ccxt", "enabled": "on", "rest_url": "", "stream_url": "",
        "ws_api_url": "", "tld": "com", "ccxt_exchange": "okx", "ccxt_urls": "{}",
        "default_taker_fee": "0.001", "default_maker_fee": "0.0008",
        "instruments-TOTAL_FORMS": "0", "instruments-INITIAL_FORMS": "0",
        **fields,
    }  # fmt: skip


def account_form(venue: Venue, **fields: str) -> dict[str, str]:
    return {
        "name": "okx-main", "venue": str(venue.pk), "mode": "live", "enabled": "on", "api_key": "okx-key-1",
        "api_secret": SECRET, "api_passphrase": PASSPHRASE,
        "balances-TOTAL_FORMS": "0", "balances-INITIAL_FORMS": "0",
        **fields,
    }  # fmt: skip


@pytest.fixture
def okx() -> Venue:
    venue: Venue = VenueFactory(code="okx", kind=Venue.Kind.CCXT, ccxt_exchange="okx")
    return venue


def test_an_okx_venue_is_added_with_its_ccxt_exchange(admin_client):
    response = admin_client.post(reverse("admin:marketdata_venue_add"), venue_form())

    assert response.status_code == 302, response.content.decode()[:2000]
    venue = Venue.objects.get(code="okx")
    assert (venue.kind, venue.ccxt_exchange, venue.ccxt_urls) == ("ccxt", "okx", {})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"ccxt_exchange": "okex5"}, "ccxt has no exchange &#x27;okex5&#x27;"),
        ({"ccxt_exchange": ""}, "A ccxt venue needs the ccxt exchange id"),
        ({"ccxt_urls": "[1, 2]"}, "The URL overrides are a JSON object"),
    ],
)
def test_a_ccxt_venue_with_an_unknown_exchange_or_bad_overrides_is_refused_with_why(admin_client, fields, message):
    response = admin_client.post(reverse("admin:marketdata_venue_add"), venue_form(**fields))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Venue.objects.filter(code="okx").exists()


def test_an_okx_account_keeps_its_secret_and_passphrase_encrypted_and_never_shows_them(admin_client, okx):
    response = admin_client.post(reverse("admin:trading_exchangeaccount_add"), account_form(okx))

    assert response.status_code == 302, response.content.decode()[:2000]
    account = ExchangeAccount.objects.get(name="okx-main")
    assert (account.get_api_secret(), account.get_api_passphrase()) == (SECRET, PASSPHRASE)
    assert SECRET not in account.api_secret_encrypted and PASSPHRASE not in account.api_passphrase_encrypted
    pages = [
        admin_client.get(reverse("admin:trading_exchangeaccount_change", args=[account.pk])),
        admin_client.get(reverse("admin:trading_exchangeaccount_changelist")),
    ]
    for page in pages:
        html = page.content.decode()
        assert page.status_code == 200
        assert SECRET not in html and PASSPHRASE not in html
    change = pages[0].content.decode()
    assert 'name="api_passphrase"' in change and 'type="password"' in change
    assert "••••••••" in change  # says a passphrase is stored, and nothing of it


def test_leaving_the_passphrase_blank_on_edit_keeps_the_stored_one(admin_client, okx):
    admin_client.post(reverse("admin:trading_exchangeaccount_add"), account_form(okx))
    account = ExchangeAccount.objects.get(name="okx-main")

    response = admin_client.post(
        reverse("admin:trading_exchangeaccount_change", args=[account.pk]),
        account_form(okx, name="okx-renamed", api_secret="", api_passphrase=""),
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    account.refresh_from_db()
    assert (account.name, account.get_api_secret(), account.get_api_passphrase()) == ("okx-renamed", SECRET, PASSPHRASE)


def test_a_live_okx_account_without_a_passphrase_is_refused_with_why(admin_client, okx):
    response = admin_client.post(reverse("admin:trading_exchangeaccount_add"), account_form(okx, api_passphrase=""))

    assert response.status_code == 200
    assert "needs the API passphrase chosen with its key" in response.content.decode()
    assert not ExchangeAccount.objects.filter(name="okx-main").exists()


def test_a_binance_account_needs_no_passphrase(admin_client):
    binance: Venue = VenueFactory(code="bn", kind=Venue.Kind.BINANCE)

    response = admin_client.post(
        reverse("admin:trading_exchangeaccount_add"), account_form(binance, name="bn-main", api_passphrase="")
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    assert ExchangeAccount.objects.get(name="bn-main").api_passphrase_encrypted == ""


def test_the_venue_health_panel_lists_a_ccxt_venue_with_its_kind(admin_client, okx):
    VenueFactory(code="bn", kind=Venue.Kind.BINANCE)

    html = admin_client.get(reverse("admin:index")).content.decode()

    panel = html[html.index('id="ops-venues"') :]
    assert "<td>ccxt · okx</td>" in panel
    assert "<td>binance</td>" in panel
