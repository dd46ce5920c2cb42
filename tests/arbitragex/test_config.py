"""SystemConfig: typed runtime settings validated against the registry, audited, cached until a save."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.cache import cache
from django.urls import reverse

from arbitragex import config
from arbitragex.errors import ApplicationError, ErrorCode
from arbitragex.models import AuditLog, SystemConfig
from arbitragex.services import config_get, config_seed_defaults, config_set, config_snapshot, config_values

D = Decimal


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # admin_user hashes a password; the default PBKDF2 rounds would dominate these tests' time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _refused(key: str, value: object) -> ApplicationError:
    with pytest.raises(ApplicationError) as exc:
        config.get_key(key).parse(value)
    return exc.value


# --- parsing every kind -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(True, True), (False, False), ("true", True), (" Yes ", True), ("on", True), ("1", True),
     ("false", False), ("OFF", False), ("no", False), ("0", False)],
)  # fmt: skip
def test_a_bool_key_accepts_booleans_and_their_usual_spellings(raw, expected):
    assert config.get_key("trading_enabled").parse(raw) is expected


@pytest.mark.parametrize("raw", ["maybe", "", 1, 0, None, 1.0, [True]])
def test_a_bool_key_refuses_anything_else_and_says_what_is_allowed(raw):
    error = _refused("trading_enabled", raw)

    assert error.code == ErrorCode.INVALID_CONFIG == 4001
    assert error.message == "trading_enabled: must be true or false"
    assert error.detail == {"key": "trading_enabled", "kind": "bool", "allowed": "bool"}


@pytest.mark.parametrize(("raw", "expected"), [(7, 7), ("12", 12), (" 40 ", 40), (0, 0)])
def test_an_int_key_accepts_whole_numbers_and_their_text(raw, expected):
    value = config.get_key("max_open_executions").parse(raw)
    assert value == expected and type(value) is int


@pytest.mark.parametrize("raw", ["1.5", 2.0, True, "ten", "", None, D("3")])
def test_an_int_key_refuses_anything_but_a_whole_number(raw):
    error = _refused("max_open_executions", raw)

    assert error.code == ErrorCode.INVALID_CONFIG
    assert error.message == "max_open_executions: must be a whole number"
    assert error.detail["allowed"] == "int >= 0 and <= 10000"


@pytest.mark.parametrize(("raw", "expected"), [("0.001", D("0.001")), (D("0.25"), D("0.25")), (1, D(1))])
def test_a_decimal_key_accepts_decimal_text_decimals_and_ints(raw, expected):
    value = config.get_key("min_profit_rate").parse(raw)
    assert value == expected and isinstance(value, Decimal)


@pytest.mark.parametrize(
    ("raw", "why"),
    [(0.001, "float is not accepted"), ("NaN", "not finite"), ("abc", "not a decimal number"),
     (True, "bool is not accepted"), ("1e400", "not finite|too large")],
)  # fmt: skip
def test_a_decimal_key_refuses_floats_and_non_numbers(raw, why):
    error = _refused("min_profit_rate", raw)

    assert error.code == ErrorCode.INVALID_CONFIG
    assert error.message.startswith("min_profit_rate: ")
    assert any(part in error.message for part in why.split("|"))
    assert error.detail["allowed"] == "decimal >= -0.01 and <= 1"


@pytest.mark.parametrize("raw", ["unwind", "retry", "alert"])
def test_a_choice_key_accepts_each_of_its_choices(raw):
    assert config.get_key("leg_failure_policy").parse(raw) == raw


@pytest.mark.parametrize("raw", ["RETRY", "cancel", "", 1, None])
def test_a_choice_key_refuses_anything_else_and_lists_the_choices(raw):
    error = _refused("leg_failure_policy", raw)

    assert error.code == ErrorCode.INVALID_CONFIG
    assert error.message == "leg_failure_policy: must be one of unwind, retry, escalate, alert"
    assert error.detail["allowed"] == "unwind | retry | escalate | alert"


def test_a_text_key_accepts_text_up_to_500_characters():
    key = config.ConfigKey("note", "str", "", "free text")

    assert key.parse("x" * 500) == "x" * 500
    with pytest.raises(ApplicationError, match="note: must be text of at most 500 characters"):
        key.parse("x" * 501)
    with pytest.raises(ApplicationError):
        key.parse(5)


# --- bounds -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "low", "high"),
    [("max_quote_age_ms", 50, 600000), ("breaker_max_consecutive_losses", 1, 1000),
     ("min_profit_rate", D("-0.01"), D("1")), ("breaker_max_drawdown_rate", D("0"), D("1"))],
)  # fmt: skip
def test_bounds_are_inclusive_and_a_value_outside_says_which_bound(key, low, high):
    spec = config.get_key(key)
    step = 1 if spec.kind == "int" else D("0.0001")

    assert spec.parse(str(low)) == low
    assert spec.parse(str(high)) == high
    assert _refused(key, str(low - step)).message == f"{key}: must be at least {low}"
    assert _refused(key, str(high + step)).message == f"{key}: must be at most {high}"


def test_every_registered_default_is_valid_for_its_own_key():
    for name, spec in config.REGISTRY.items():
        assert spec.parse(spec.to_json(spec.default)) == spec.default, name


def test_an_unknown_key_is_refused_with_its_own_code():
    with pytest.raises(ApplicationError) as exc:
        config.get_key("max_leverage")
    assert exc.value.code == ErrorCode.UNKNOWN_CONFIG_KEY == 4002
    assert "max_leverage" in exc.value.message


# --- the services ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_without_rows_every_value_is_its_default():
    assert config_values() == config.defaults()
    assert config_get("leg_failure_policy") == "unwind"


@pytest.mark.django_db
def test_config_set_stores_the_typed_value_and_config_get_returns_it(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert config_set(key="max_open_executions", value="8") == 8
        assert config_set(key="trading_enabled", value="off") is False

    assert config_get("max_open_executions") == 8
    assert config_get("trading_enabled") is False
    assert SystemConfig.objects.get(key="max_open_executions").value == 8


@pytest.mark.django_db
def test_decimals_are_stored_as_strings_never_as_json_numbers():
    config_set(key="min_profit_rate", value=D("0.00123456789012345678"))
    config_set(key="max_notional", value="2500.50")

    stored = dict(SystemConfig.objects.values_list("key", "value"))
    assert stored == {"min_profit_rate": "0.00123456789012345678", "max_notional": "2500.50"}


@pytest.mark.django_db
def test_decimals_round_trip_exactly_through_the_cache(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        config_set(key="min_profit_rate", value="0.00123456789012345678")

    assert config_values()["min_profit_rate"] == D("0.00123456789012345678")  # from the database
    assert config_values()["min_profit_rate"] == D("0.00123456789012345678")  # from the cache


@pytest.mark.django_db
@pytest.mark.parametrize(("key", "value"), [("max_open_executions", -1), ("leg_failure_policy", "panic")])
def test_config_set_refuses_a_bad_value_and_stores_nothing(key, value):
    with pytest.raises(ApplicationError) as exc:
        config_set(key=key, value=value)

    assert exc.value.code == ErrorCode.INVALID_CONFIG
    assert exc.value.message.startswith(f"{key}: ")
    assert not SystemConfig.objects.exists()
    assert not AuditLog.objects.exists()


@pytest.mark.django_db
def test_an_unknown_key_is_refused_by_set_and_get():
    with pytest.raises(ApplicationError) as set_error:
        config_set(key="nope", value=1)
    with pytest.raises(ApplicationError) as get_error:
        config_get("nope")
    assert set_error.value.code == get_error.value.code == ErrorCode.UNKNOWN_CONFIG_KEY


@pytest.mark.django_db
def test_config_set_writes_an_audit_row_with_the_previous_and_new_value(admin_user):
    config_set(key="min_profit_rate", value="0.001", actor=admin_user)
    config_set(key="min_profit_rate", value="0.002", actor=admin_user)

    first, second = AuditLog.objects.filter(action="config.set").order_by("pk")
    assert (first.target, first.previous, first.new) == ("min_profit_rate", "0.0005", "0.001")  # from the default
    assert (second.previous, second.new) == ("0.001", "0.002")
    assert (second.actor, second.actor_label) == (admin_user, admin_user.username)
    assert SystemConfig.objects.get(key="min_profit_rate").updated_by == admin_user


@pytest.mark.django_db
def test_a_change_without_a_user_is_audited_as_the_system():
    config_set(key="auto_execute", value=False)

    assert AuditLog.objects.get().actor_label == "system"


@pytest.mark.django_db
def test_values_are_cached_until_a_save_commits(django_assert_num_queries, django_capture_on_commit_callbacks):
    with django_assert_num_queries(1):
        config_values()
    with django_assert_num_queries(0):
        assert config_get("max_open_executions") == 3

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        config_set(key="max_open_executions", value=5)
    assert config_get("max_open_executions") == 3  # not committed yet
    for callback in callbacks:
        callback()

    assert cache.get(config.CACHE_KEY) is None
    assert config_get("max_open_executions") == 5


@pytest.mark.django_db
def test_a_row_with_a_value_the_registry_refuses_falls_back_to_the_default():
    # A row edited behind the registry's back (SQL console, an old release) must not stop trading.
    SystemConfig.objects.create(key="max_open_executions", value="lots")
    SystemConfig.objects.create(key="retired_key", value=1)

    assert config_values()["max_open_executions"] == 3  # read from the database
    assert config_values()["max_open_executions"] == 3  # read from the cache
    assert "retired_key" not in config_values()


@pytest.mark.django_db
def test_seeding_creates_every_missing_row_once_and_never_overwrites(django_capture_on_commit_callbacks):
    config_set(key="leg_failure_policy", value="alert")

    with django_capture_on_commit_callbacks(execute=True):
        created = config_seed_defaults()
    again = config_seed_defaults()

    assert created == len(config.REGISTRY) - 1
    assert again == 0
    assert SystemConfig.objects.count() == len(config.REGISTRY)
    assert SystemConfig.objects.get(key="leg_failure_policy").value == "alert"
    assert SystemConfig.objects.get(key="min_profit_rate").value == "0.0005"
    assert config_values() == {**config.defaults(), "leg_failure_policy": "alert"}


# --- the admin form ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_admin_refuses_a_bad_new_value_and_shows_why(admin_client):
    response = admin_client.post(
        reverse("admin:arbitragex_systemconfig_add"), {"key": "max_open_executions", "value": "-4"}
    )

    assert response.status_code == 200
    assert "max_open_executions: must be at least 0" in response.content.decode()
    assert not SystemConfig.objects.exists()


@pytest.mark.django_db
def test_the_admin_adds_a_valid_value_through_the_service(admin_client, admin_user):
    response = admin_client.post(
        reverse("admin:arbitragex_systemconfig_add"), {"key": "min_profit_rate", "value": "0.0007"}
    )

    assert response.status_code == 302
    assert SystemConfig.objects.get(key="min_profit_rate").value == "0.0007"
    assert AuditLog.objects.get(action="config.set").actor == admin_user


@pytest.mark.django_db
def test_the_admin_change_form_refuses_a_bad_value_and_keeps_the_stored_one(admin_client):
    config_seed_defaults()
    row = SystemConfig.objects.get(key="leg_failure_policy")
    url = reverse("admin:arbitragex_systemconfig_change", args=[row.pk])

    page = admin_client.get(url).content.decode()
    refused = admin_client.post(url, {"value": "sideways"})
    accepted = admin_client.post(url, {"value": "retry"})

    assert "Allowed: unwind | retry | escalate | alert." in page
    assert refused.status_code == 200
    assert "leg_failure_policy: must be one of unwind, retry, escalate, alert" in refused.content.decode()
    assert accepted.status_code == 302
    row.refresh_from_db()
    assert row.value == "retry"
    audit = AuditLog.objects.get(action="config.set")
    assert (audit.previous, audit.new) == ("unwind", "retry")


@pytest.mark.django_db
def test_the_admin_key_cannot_be_changed_on_an_existing_row(admin_client):
    config_seed_defaults()
    row = SystemConfig.objects.get(key="max_open_executions")

    admin_client.post(
        reverse("admin:arbitragex_systemconfig_change", args=[row.pk]), {"key": "leg_failure_policy", "value": "9"}
    )

    row.refresh_from_db()
    assert (row.key, row.value) == ("max_open_executions", 9)
    assert SystemConfig.objects.get(key="leg_failure_policy").value == "unwind"


@pytest.mark.django_db
def test_inside_a_snapshot_the_config_is_read_once_and_stays_the_same(django_capture_on_commit_callbacks):
    config_set(key="max_open_executions", value=7)
    cache.delete(config.CACHE_KEY)

    with config_snapshot():
        first = config_values()
        with django_capture_on_commit_callbacks(execute=True):
            config_set(key="max_open_executions", value=9)  # as another process would, meanwhile
        assert config_values()["max_open_executions"] == first["max_open_executions"] == 7
        config_values()["max_open_executions"] = 0  # a caller's copy: the snapshot is not changed by it
        assert config_values()["max_open_executions"] == 7

    assert config_values()["max_open_executions"] == 9  # outside, every read sees the latest


@pytest.mark.django_db
def test_a_snapshot_reads_the_cache_once(django_assert_num_queries, monkeypatch):
    config_values()  # the cache is warm
    calls = []
    original = cache.get

    def counting_get(key, *args, **kwargs):
        calls.append(key)
        return original(key, *args, **kwargs)

    monkeypatch.setattr(cache, "get", counting_get)
    with config_snapshot(), django_assert_num_queries(0):
        for _ in range(3):
            config_values()
    assert calls.count(config.CACHE_KEY) == 1
