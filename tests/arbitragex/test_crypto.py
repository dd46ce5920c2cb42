"""Venue API secrets are encrypted at rest (Fernet), shown masked, and never rendered back in full."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from django.urls import reverse

from arbitragex import crypto
from tests.factories import ExchangeAccountFactory, VenueFactory
from trading.enums import AccountMode
from trading.models import ExchangeAccount

SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # admin_user hashes a password; the default PBKDF2 rounds would dominate these tests' time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _key() -> str:
    return Fernet.generate_key().decode()


@pytest.mark.django_db
def test_the_secret_is_stored_as_ciphertext_and_round_trips_through_the_database():
    account = ExchangeAccountFactory()
    account.set_api_secret(SECRET)
    account.save()

    stored = ExchangeAccount.objects.values_list("api_secret_encrypted", flat=True).get(pk=account.pk)
    assert stored and SECRET not in stored
    assert SECRET[-4:] not in stored
    assert ExchangeAccount.objects.get(pk=account.pk).get_api_secret() == SECRET


def test_encrypting_the_same_secret_twice_gives_different_ciphertexts():
    # Fernet uses a random IV: equal secrets cannot be spotted by comparing rows.
    assert crypto.encrypt(SECRET) != crypto.encrypt(SECRET)


def test_an_empty_secret_stores_nothing():
    account = ExchangeAccount()
    account.set_api_secret("")

    assert account.api_secret_encrypted == ""
    assert account.get_api_secret() == ""
    assert account.api_secret_masked == ""


@pytest.mark.parametrize(
    ("secret", "shown"),
    [(SECRET, "••••••••" + SECRET[-4:]), ("abcdefghi", "••••••••fghi"), ("abcdefgh", "••••••••"), ("", "")],
)
def test_the_mask_shows_at_most_the_last_four_characters(secret, shown):
    assert crypto.mask(secret) == shown


def test_the_masked_property_shows_only_the_last_four_characters():
    account = ExchangeAccount()
    account.set_api_secret(SECRET)

    assert account.api_secret_masked == "••••••••" + SECRET[-4:]
    assert SECRET[:-4] not in account.api_secret_masked


def test_key_rotation_new_key_first_still_decrypts_secrets_of_the_old_key():
    old, new = _key(), _key()
    with override_settings(FIELD_ENCRYPTION_KEY=old):
        under_old = crypto.encrypt(SECRET)

    with override_settings(FIELD_ENCRYPTION_KEY=f"{new}, {old}"):
        assert crypto.decrypt(under_old) == SECRET
        under_new = crypto.encrypt(SECRET)

    # The first key encrypts: once rotated, the old key alone can no longer read new secrets.
    with override_settings(FIELD_ENCRYPTION_KEY=new):
        assert crypto.decrypt(under_new) == SECRET
    with override_settings(FIELD_ENCRYPTION_KEY=old), pytest.raises(ImproperlyConfigured, match="cannot be decrypted"):
        crypto.decrypt(under_new)


def test_a_secret_under_a_different_key_cannot_be_decrypted():
    with override_settings(FIELD_ENCRYPTION_KEY=_key()):
        token = crypto.encrypt(SECRET)

    with override_settings(FIELD_ENCRYPTION_KEY=_key()), pytest.raises(ImproperlyConfigured) as exc:
        crypto.decrypt(token)
    assert SECRET not in str(exc.value)


@pytest.mark.parametrize("keys", ["", " , ", "not-a-fernet-key"])
def test_a_missing_or_malformed_key_is_a_configuration_error(keys):
    with (
        override_settings(FIELD_ENCRYPTION_KEY=keys),
        pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEY"),
    ):
        crypto.encrypt(SECRET)


# --- the admin ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_account_admin_pages_never_show_the_plaintext_secret(admin_client):
    account = ExchangeAccountFactory(api_key="key-123")
    account.set_api_secret(SECRET)
    account.save()

    change = admin_client.get(reverse("admin:trading_exchangeaccount_change", args=[account.pk])).content.decode()
    listing = admin_client.get(reverse("admin:trading_exchangeaccount_changelist")).content.decode()

    for page in (change, listing):
        assert SECRET not in page
        assert account.api_secret_encrypted not in page
        assert "••••••••" + SECRET[-4:] in page


def _account_form(venue, **fields):
    data = {
        "name": "binance-live",
        "venue": venue.pk,
        "mode": AccountMode.LIVE,
        "enabled": "on",
        "api_key": "key-123",
        "api_secret": "",
        # The balances inline, empty.
        "balances-TOTAL_FORMS": "0",
        "balances-INITIAL_FORMS": "0",
        "balances-MIN_NUM_FORMS": "0",
        "balances-MAX_NUM_FORMS": "1000",
    }
    data.update(fields)
    return data


@pytest.mark.django_db
def test_the_write_only_secret_field_stores_the_secret_encrypted(admin_client):
    venue = VenueFactory()

    response = admin_client.post(reverse("admin:trading_exchangeaccount_add"), _account_form(venue, api_secret=SECRET))

    assert response.status_code == 302
    account = ExchangeAccount.objects.get(name="binance-live")
    assert SECRET not in account.api_secret_encrypted
    assert account.get_api_secret() == SECRET


@pytest.mark.django_db
def test_leaving_the_secret_blank_on_change_keeps_the_stored_one(admin_client):
    account = ExchangeAccountFactory(name="binance-live", mode=AccountMode.LIVE, api_key="key-123")
    account.set_api_secret(SECRET)
    account.save()
    url = reverse("admin:trading_exchangeaccount_change", args=[account.pk])

    form_page = admin_client.get(url).content.decode()
    response = admin_client.post(url, _account_form(account.venue, api_key="key-456"))

    assert 'name="api_secret"' in form_page  # the field is there, rendered empty
    assert response.status_code == 302
    account.refresh_from_db()
    assert (account.api_key, account.get_api_secret()) == ("key-456", SECRET)


@pytest.mark.django_db
def test_a_live_account_without_a_secret_is_refused(admin_client):
    response = admin_client.post(reverse("admin:trading_exchangeaccount_add"), _account_form(VenueFactory()))

    assert response.status_code == 200
    assert "A live account needs an API key and an API secret." in response.content.decode()
    assert not ExchangeAccount.objects.exists()
