"""The admin forms of venues, instruments and exchange accounts refuse bad values with a message, and
store nothing; they never fail with an error page (an IntegrityError from a check constraint is a 500).

``tests/arbitragex/test_config.py`` covers the SystemConfig form; this covers the rest of what an
operator types: fees and filters (NaN, infinities, negatives, too many digits or places), base URLs
(wrong schemes, not URLs at all), and API credentials (whitespace or control characters that would end
up in an HTTP header).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse

from marketdata.models import Instrument, Venue
from tests.factories import ExchangeAccountFactory, InstrumentFactory, VenueFactory
from trading.models import ExchangeAccount

D = Decimal

BAD_DECIMALS = ["NaN", "nan", "sNaN", "Infinity", "-Infinity", "inf", "1e400", "abc", "", " ", "1,5", "0x10",
                "0." + "1" * 19, "9" * 19, "1e-19"]  # fmt: skip
BAD_FEES = [*BAD_DECIMALS, "-0.001", "1", "1.5", "-1"]
BAD_FILTERS = [*BAD_DECIMALS, "0", "-0.01"]  # tick and step sizes must be positive
BAD_HTTP_URLS = ["not a url", "javascript:alert(1)", "ftp://example.com/api", "http://", "ws://127.0.0.1:9900/api",
                 "http://" + "a" * 300 + ".com/api", "file:///etc/passwd"]  # fmt: skip
BAD_WS_URLS = ["not a url", "http://127.0.0.1:9900/", "javascript:alert(1)", "ws://", "ws:// spaced .com/",
               "wss://" + "a" * 300 + ".com/"]  # fmt: skip
BAD_CREDENTIALS = ["with space", "new\nline", "tab\there", "nul\x00byte", "carriage\rreturn", "ünïcode", " "]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _venue_form(**overrides: Any) -> dict[str, Any]:
    form = {
        "code": "fuzz-venue", "name": "Fuzz", "kind": "binance", "enabled": "on", "rest_url": "http://127.0.0.1:9900/api",
        "stream_url": "ws://127.0.0.1:9900/", "ws_api_url": "ws://127.0.0.1:9900/ws-api/v3", "tld": "com",
        "default_taker_fee": "0.001", "default_maker_fee": "0.001",
        "instruments-TOTAL_FORMS": "0", "instruments-INITIAL_FORMS": "0",
    }  # fmt: skip
    form.update(overrides)
    return form


def _instrument_form(venue: Venue, **overrides: Any) -> dict[str, Any]:
    form = {
        "venue": venue.pk, "symbol": "BTCUSDT", "base_asset": "BTC", "quote_asset": "USDT", "enabled": "on",
        "status": "TRADING", "tick_size": "0.01", "step_size": "0.00001", "min_qty": "0.00001", "max_qty": "9000",
        "min_notional": "5", "taker_fee": "0.001", "maker_fee": "0.001",
    }  # fmt: skip
    form.update(overrides)
    return form


def _account_form(account_venue: Venue, **overrides: Any) -> dict[str, Any]:
    form = {
        "name": "fuzz-account", "venue": account_venue.pk, "mode": "live", "enabled": "on", "api_key": "valid-key-123",
        "api_secret": "valid-secret-456", "balances-TOTAL_FORMS": "0", "balances-INITIAL_FORMS": "0",
    }  # fmt: skip
    form.update(overrides)
    return form


def _refused(response: Any) -> None:
    assert response.status_code == 200, f"status {response.status_code}: not the form with its errors"
    assert b"errornote" in response.content or b"errorlist" in response.content


# --- venues ---------------------------------------------------------------------------------------------------


def test_a_valid_venue_is_stored(admin_client):
    response = admin_client.post(reverse("admin:marketdata_venue_add"), _venue_form())
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Venue.objects.filter(code="fuzz-venue").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("default_taker_fee", value) for value in BAD_FEES]
    # A negative maker fee is a rebate, allowed down to -1 (exclusive).
    + [("default_maker_fee", value) for value in BAD_FEES if value != "-0.001"],
)
def test_a_venue_fee_that_is_not_a_sane_rate_is_refused(admin_client, field, value):
    _refused(admin_client.post(reverse("admin:marketdata_venue_add"), _venue_form(**{field: value})))
    assert not Venue.objects.filter(code="fuzz-venue").exists()


@pytest.mark.parametrize("value", BAD_HTTP_URLS)
def test_a_rest_url_that_is_not_an_http_url_is_refused(admin_client, value):
    _refused(admin_client.post(reverse("admin:marketdata_venue_add"), _venue_form(rest_url=value)))
    assert not Venue.objects.filter(code="fuzz-venue").exists()


@pytest.mark.parametrize("field", ["stream_url", "ws_api_url"])
@pytest.mark.parametrize("value", BAD_WS_URLS)
def test_a_websocket_url_that_is_not_a_ws_url_is_refused(admin_client, field, value):
    _refused(admin_client.post(reverse("admin:marketdata_venue_add"), _venue_form(**{field: value})))
    assert not Venue.objects.filter(code="fuzz-venue").exists()


@pytest.mark.parametrize("value", ["bad code", "UPPER/slash", "", "x" * 40, "ünï"])
def test_a_venue_code_that_is_not_a_short_slug_is_refused(admin_client, value):
    _refused(admin_client.post(reverse("admin:marketdata_venue_add"), _venue_form(code=value)))
    assert not Venue.objects.exists()


def test_the_change_form_refuses_a_bad_value_and_keeps_the_stored_one(admin_client):
    venue = VenueFactory(code="kept", default_taker_fee=D("0.001"))
    url = reverse("admin:marketdata_venue_change", args=[venue.pk])
    _refused(admin_client.post(url, _venue_form(code="kept", default_taker_fee="NaN")))
    venue.refresh_from_db()
    assert venue.default_taker_fee == D("0.001")


# --- instruments ------------------------------------------------------------------------------------------------


@pytest.fixture
def venue(db) -> Venue:
    return VenueFactory(code="fuzz-instruments")


def test_a_valid_instrument_is_stored(admin_client, venue):
    response = admin_client.post(reverse("admin:marketdata_instrument_add"), _instrument_form(venue))
    assert response.status_code == 302, response.content.decode()[:2000]


@pytest.mark.parametrize("field", ["tick_size", "step_size"])
@pytest.mark.parametrize("value", BAD_FILTERS)
def test_a_tick_or_step_size_that_is_not_positive_and_finite_is_refused(admin_client, venue, field, value):
    _refused(admin_client.post(reverse("admin:marketdata_instrument_add"), _instrument_form(venue, **{field: value})))
    assert not Instrument.objects.exists()


@pytest.mark.parametrize("field", ["min_qty", "max_qty", "min_notional"])
@pytest.mark.parametrize("value", [*BAD_DECIMALS, "-1"])
def test_a_lot_or_notional_filter_that_is_negative_or_not_finite_is_refused(admin_client, venue, field, value):
    _refused(admin_client.post(reverse("admin:marketdata_instrument_add"), _instrument_form(venue, **{field: value})))
    assert not Instrument.objects.exists()


@pytest.mark.parametrize("field", ["taker_fee", "maker_fee"])
@pytest.mark.parametrize("value", [v for v in BAD_FEES if v != "-0.001"])
def test_an_instrument_fee_that_is_not_a_sane_rate_is_refused(admin_client, venue, field, value):
    _refused(admin_client.post(reverse("admin:marketdata_instrument_add"), _instrument_form(venue, **{field: value})))
    assert not Instrument.objects.exists()


def test_a_second_instrument_of_the_same_symbol_on_a_venue_is_refused(admin_client, venue):
    InstrumentFactory(venue=venue, symbol="BTCUSDT")
    _refused(admin_client.post(reverse("admin:marketdata_instrument_add"), _instrument_form(venue)))
    assert Instrument.objects.count() == 1


# --- exchange accounts -------------------------------------------------------------------------------------


def test_a_valid_account_is_stored_with_its_secret_encrypted(admin_client, venue):
    response = admin_client.post(reverse("admin:trading_exchangeaccount_add"), _account_form(venue))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert ExchangeAccount.objects.get(name="fuzz-account").get_api_secret() == "valid-secret-456"


@pytest.mark.parametrize("field", ["api_key", "api_secret"])
@pytest.mark.parametrize("value", BAD_CREDENTIALS)
def test_credentials_with_whitespace_or_control_characters_are_refused(admin_client, venue, field, value):
    # They would be sent in an HTTP header (the key) or signed as text (the secret): never valid at a venue.
    _refused(admin_client.post(reverse("admin:trading_exchangeaccount_add"), _account_form(venue, **{field: value})))
    assert not ExchangeAccount.objects.exists()


@pytest.mark.parametrize("overrides", [{"api_key": ""}, {"api_secret": ""}, {"api_key": "", "api_secret": ""}])
def test_a_live_account_without_credentials_is_refused(admin_client, venue, overrides):
    _refused(admin_client.post(reverse("admin:trading_exchangeaccount_add"), _account_form(venue, **overrides)))
    assert not ExchangeAccount.objects.exists()


@pytest.mark.parametrize("overrides", [{"mode": "margin"}, {"venue": "999999"}, {"name": ""}, {"api_key": "k" * 129}])
def test_an_account_with_a_bad_mode_venue_name_or_key_length_is_refused(admin_client, venue, overrides):
    _refused(admin_client.post(reverse("admin:trading_exchangeaccount_add"), _account_form(venue, **overrides)))
    assert not ExchangeAccount.objects.exists()


def test_a_second_account_with_the_same_name_is_refused(admin_client, venue):
    ExchangeAccountFactory(name="fuzz-account", venue=venue)
    _refused(admin_client.post(reverse("admin:trading_exchangeaccount_add"), _account_form(venue)))
    assert ExchangeAccount.objects.count() == 1


def test_the_balance_inline_adds_no_balance_whatever_is_posted(admin_client, venue):
    """Balances are ledger rows (they come from the venues, through the balance sync): the account page
    shows them read-only, and a balance posted with the account, good or bad, is ignored, never a 500."""
    account = ExchangeAccountFactory(name="with-balances", venue=venue)
    url = reverse("admin:trading_exchangeaccount_change", args=[account.pk])
    for amount in ("100", "NaN", "-1", "1e400", "abc", "0." + "1" * 19):
        form = _account_form(venue, name="with-balances", mode="paper", api_key="", api_secret="")
        form.update({"balances-TOTAL_FORMS": "1", "balances-0-asset": "USDT", "balances-0-free": amount,
                     "balances-0-locked": "0", "balances-0-reserved": "0"})  # fmt: skip
        response = admin_client.post(url, form)
        assert response.status_code == 302, response.content.decode()[:2000]
    assert not account.balances.exists()
