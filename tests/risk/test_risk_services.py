"""The original risk-state DAO (SaveState, LoadState, UpdateEquity, RecordTrade, the circuit breaker) as
selectors and services over the ``RiskState`` row, its cache (``risk:state:{scope}``) and row locks.
"""

from __future__ import annotations

import threading
import time
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection, connections, transaction
from django.utils import timezone

from arbitragex.models import AuditLog
from arbitragex.services import config_set
from risk import selectors, services
from risk.breaker import BreakerThresholds, TripReason
from risk.models import GLOBAL_SCOPE, RiskState
from tests.factories import RiskStateFactory

D = Decimal

# Only the consecutive-loss condition is live, so each test trips exactly what it means to.
THREE_LOSSES = BreakerThresholds(
    max_consecutive_losses=3, max_daily_loss=D(0), max_drawdown_rate=D(0), cooldown_seconds=600
)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # admin_user hashes a password; the default PBKDF2 rounds would dominate these tests' time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- upsert and load --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_scope_without_state_has_no_figures():
    assert selectors.risk_figures_get(account="acct-1", symbol="BTCUSDT") is None
    assert selectors.breaker_is_open(account="acct-1", symbol="BTCUSDT") is False


@pytest.mark.django_db
def test_upsert_creates_the_scope_with_its_starting_equity():
    services.risk_state_upsert(account="acct-1", symbol="BTCUSDT", initial_equity=D("5000"), state_data={"v": 1})

    figures = selectors.risk_figures_get(account="acct-1", symbol="BTCUSDT")
    assert (figures.initial_equity, figures.current_equity, figures.peak_equity) == (D(5000), D(5000), D(5000))
    assert (figures.daily_pnl, figures.consecutive_losses, figures.breaker_open) == (D(0), 0, False)
    assert RiskState.objects.get(account="acct-1", symbol="BTCUSDT").state_data == {"v": 1}
    # Other scopes are separate rows.
    assert selectors.risk_figures_get(account="acct-1") is None


@pytest.mark.django_db
def test_upsert_of_an_existing_scope_resets_its_equity_and_keeps_one_row():
    state = RiskStateFactory(account=GLOBAL_SCOPE, current_equity=D("7000"), peak_equity=D("12000"))

    services.risk_state_upsert(initial_equity=D("9000"))

    state.refresh_from_db()
    assert (state.initial_equity, state.current_equity, state.peak_equity) == (D(9000), D(9000), D(9000))
    assert RiskState.objects.filter(account=GLOBAL_SCOPE, symbol="").count() == 1


@pytest.mark.django_db
def test_upsert_refuses_a_negative_equity():
    with pytest.raises(ValueError, match="initial_equity"):
        services.risk_state_upsert(initial_equity=D("-1"))
    assert not RiskState.objects.exists()


# --- equity -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_update_equity_moves_the_peak_up_but_never_down():
    RiskStateFactory(account=GLOBAL_SCOPE, initial_equity=D("1000"))

    services.risk_state_update_equity(equity=D("1200"))
    services.risk_state_update_equity(equity=D("1100"))

    state = RiskState.objects.get(account=GLOBAL_SCOPE)
    assert (state.current_equity, state.peak_equity, state.initial_equity) == (D(1100), D(1200), D(1000))


@pytest.mark.django_db
def test_update_equity_of_a_new_scope_creates_it():
    services.risk_state_update_equity(account="acct-9", equity=D("250.5"))

    state = RiskState.objects.get(account="acct-9", symbol="")
    assert (state.current_equity, state.peak_equity) == (D("250.5"), D("250.5"))


# --- record trade and the breaker ---------------------------------------------------------------------


@pytest.mark.django_db
def test_recording_trades_books_equity_daily_pnl_and_the_trade_count():
    RiskStateFactory(account=GLOBAL_SCOPE, initial_equity=D("1000"))

    services.risk_state_record_trade(pnl=D("12.5"), thresholds=THREE_LOSSES)
    services.risk_state_record_trade(pnl=D("-2.25"), thresholds=THREE_LOSSES)

    state = RiskState.objects.get(account=GLOBAL_SCOPE)
    assert state.current_equity == D("1010.25")
    assert state.peak_equity == D("1012.5")
    assert state.daily_pnl == D("10.25")
    assert (state.consecutive_losses, state.total_trades, state.breaker_open) == (1, 2, False)


@pytest.mark.django_db
def test_the_breaker_trips_on_the_nth_consecutive_loss():
    RiskStateFactory(account=GLOBAL_SCOPE, initial_equity=D("1000"))
    now = timezone.now()

    reasons = [services.risk_state_record_trade(pnl=D("-1"), now=now, thresholds=THREE_LOSSES) for _ in range(3)]

    assert reasons == [None, None, TripReason.CONSECUTIVE_LOSSES]
    state = RiskState.objects.get(account=GLOBAL_SCOPE)
    assert state.breaker_open is True
    assert state.breaker_until == now + timedelta(seconds=THREE_LOSSES.cooldown_seconds)
    assert state.breaker_reason == TripReason.CONSECUTIVE_LOSSES
    trip = AuditLog.objects.get(action="breaker.trip")
    assert trip.new == {"reason": "consecutive_losses"}
    assert trip.actor_label == "risk"


@pytest.mark.django_db
def test_a_win_resets_the_losing_streak():
    RiskStateFactory(account=GLOBAL_SCOPE, initial_equity=D("1000"))

    for pnl in ["-1", "-1", "0.5", "-1", "-1"]:
        assert services.risk_state_record_trade(pnl=D(pnl), thresholds=THREE_LOSSES) is None

    state = RiskState.objects.get(account=GLOBAL_SCOPE)
    assert (state.consecutive_losses, state.breaker_open) == (2, False)


@pytest.mark.django_db
def test_the_breaker_trips_on_the_daily_loss_and_on_drawdown():
    RiskStateFactory(account="daily", initial_equity=D("1000"))
    RiskStateFactory(account="drawdown", initial_equity=D("1000"))
    daily = BreakerThresholds(max_consecutive_losses=0, max_daily_loss=D("50"), max_drawdown_rate=D(0),
                              cooldown_seconds=60)  # fmt: skip
    drawdown = BreakerThresholds(max_consecutive_losses=0, max_daily_loss=D(0), max_drawdown_rate=D("0.1"),
                                 cooldown_seconds=60)  # fmt: skip

    assert services.risk_state_record_trade(account="daily", pnl=D("-49.99"), thresholds=daily) is None
    assert services.risk_state_record_trade(account="daily", pnl=D("-0.01"), thresholds=daily) == TripReason.DAILY_LOSS
    assert services.risk_state_record_trade(account="drawdown", pnl=D("-99"), thresholds=drawdown) is None
    assert services.risk_state_record_trade(account="drawdown", pnl=D("-1"), thresholds=drawdown) == TripReason.DRAWDOWN


@pytest.mark.django_db
def test_record_trade_without_thresholds_uses_the_system_config():
    RiskStateFactory(account=GLOBAL_SCOPE, initial_equity=D("1000"))
    config_set(key="breaker_max_consecutive_losses", value=2)
    config_set(key="breaker_cooldown_s", value=120)
    cache.clear()  # the config cache is dropped on commit, which the test transaction never reaches
    now = timezone.now()

    reasons = [services.risk_state_record_trade(pnl=D("-1"), now=now) for _ in range(2)]

    assert reasons == [None, TripReason.CONSECUTIVE_LOSSES]
    assert RiskState.objects.get(account=GLOBAL_SCOPE).breaker_until == now + timedelta(seconds=120)


@pytest.mark.django_db
def test_record_trade_refuses_a_float_profit():
    RiskStateFactory(account=GLOBAL_SCOPE)
    with pytest.raises(ValueError, match="float"):
        services.risk_state_record_trade(pnl=-1.5, thresholds=THREE_LOSSES)
    assert RiskState.objects.get(account=GLOBAL_SCOPE).total_trades == 0


@pytest.mark.django_db
def test_an_operator_opens_and_closes_the_breaker_with_audit_rows(admin_user, django_capture_on_commit_callbacks):
    RiskStateFactory(account=GLOBAL_SCOPE)

    with django_capture_on_commit_callbacks(execute=True):
        services.breaker_open(reason=TripReason.MANUAL, actor=admin_user)
    assert selectors.breaker_is_open() is True
    assert RiskState.objects.get(account=GLOBAL_SCOPE).breaker_until is None  # open until closed by hand

    with django_capture_on_commit_callbacks(execute=True):
        services.breaker_close(actor=admin_user)
    assert selectors.breaker_is_open() is False

    opened, closed = AuditLog.objects.filter(action__startswith="breaker.").order_by("pk")
    assert (opened.action, opened.actor, opened.previous["open"], opened.new) == (
        "breaker.open", admin_user, False, {"open": True, "reason": "manual"}
    )  # fmt: skip
    assert (closed.action, closed.actor, closed.previous, closed.new) == (
        "breaker.close", admin_user, {"open": True, "reason": "manual"}, {"open": False}
    )  # fmt: skip


@pytest.mark.django_db
def test_closing_the_breaker_resets_the_losing_streak():
    RiskStateFactory(account=GLOBAL_SCOPE)
    for _ in range(3):
        services.risk_state_record_trade(pnl=D("-1"), thresholds=THREE_LOSSES)

    services.breaker_close()

    state = RiskState.objects.get(account=GLOBAL_SCOPE)
    assert (state.breaker_open, state.breaker_until, state.consecutive_losses) == (False, None, 0)


@pytest.mark.django_db
def test_a_breaker_past_its_cooldown_counts_as_closed():
    RiskStateFactory(account=GLOBAL_SCOPE)
    services.breaker_open(cooldown_seconds=60)
    until = RiskState.objects.get(account=GLOBAL_SCOPE).breaker_until

    assert selectors.breaker_is_open(now=until - timedelta(seconds=1)) is True
    assert selectors.breaker_is_open(now=until) is False
    assert selectors.breaker_is_open(now=until + timedelta(hours=1)) is False


@pytest.mark.django_db
def test_the_daily_reset_zeroes_daily_pnl_once_per_day():
    RiskStateFactory(account="a", daily_pnl=D("-40"))
    RiskStateFactory(account="b", daily_pnl=D("15"))
    today = date(2026, 3, 2)

    assert services.risk_daily_reset(today=today) == 2
    assert services.risk_daily_reset(today=today) == 0

    assert set(RiskState.objects.values_list("daily_pnl", "last_reset_date")) == {(D(0), today)}


# --- the risk cache -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_risk_figures_are_read_from_the_cache_after_the_first_load(django_assert_num_queries):
    RiskStateFactory(account=GLOBAL_SCOPE, initial_equity=D("1000"))

    with django_assert_num_queries(1):
        first = selectors.risk_figures_get()
    with django_assert_num_queries(0):
        second = selectors.risk_figures_get()
        assert selectors.breaker_is_open() is False

    assert first == second
    assert 0 < cache.ttl(selectors.risk_cache_key(GLOBAL_SCOPE, "")) <= selectors.RISK_CACHE_TTL


@pytest.mark.django_db
def test_a_scope_without_state_is_cached_too(django_assert_num_queries):
    with django_assert_num_queries(1):
        assert selectors.risk_figures_get(account="nobody") is None
    with django_assert_num_queries(0):
        assert selectors.risk_figures_get(account="nobody") is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    "write",
    [
        lambda: services.risk_state_upsert(initial_equity=D("5000")),
        lambda: services.risk_state_update_equity(equity=D("1500")),
        lambda: services.risk_state_record_trade(pnl=D("-1"), thresholds=THREE_LOSSES),
        lambda: services.breaker_open(),
        lambda: services.breaker_close(),
        lambda: services.risk_daily_reset(today=date(2026, 1, 1)),
    ],
    ids=["upsert", "equity", "record_trade", "open", "close", "daily_reset"],
)
def test_every_risk_write_refreshes_the_cached_state_on_commit(
    write, django_capture_on_commit_callbacks, django_assert_num_queries
):
    RiskStateFactory(account=GLOBAL_SCOPE, initial_equity=D("1000"), daily_pnl=D("-3"), consecutive_losses=1)
    before = selectors.risk_figures_get()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        write()
    assert selectors.risk_figures_get() == before  # not committed yet: the cache still serves the old figures
    for callback in callbacks:
        callback()

    with django_assert_num_queries(0):  # the next opportunity reads the new figures from the cache
        after = selectors.risk_figures_get()
    assert after != before
    assert after == selectors.figures_from_row(RiskState.objects.get(account=GLOBAL_SCOPE, symbol=""))


@pytest.mark.django_db
def test_a_refresh_never_replaces_newer_cached_figures_with_older_ones():
    row = RiskStateFactory(account=GLOBAL_SCOPE, initial_equity=D("1000"))
    older = RiskState.objects.get(pk=row.pk)  # as a slower process committed it, before the next save
    services.breaker_open(reason="newer")  # committed later: its figures are cached
    newer = selectors.risk_figures_get()
    assert newer is not None and newer.breaker_open

    selectors.risk_figures_cache_refresh(older)  # the slower process's refresh arrives last

    assert selectors.risk_figures_get() == newer


@pytest.mark.django_db
def test_a_cached_missing_scope_is_forgotten_once_it_is_created(django_capture_on_commit_callbacks):
    assert selectors.risk_figures_get(account="acct-new") is None

    with django_capture_on_commit_callbacks(execute=True):
        services.risk_state_upsert(account="acct-new", initial_equity=D("10"))

    assert selectors.risk_figures_get(account="acct-new").current_equity == D("10")


# --- row locks (PostgreSQL) ---------------------------------------------------------------------------


def _in_thread(target, *args):
    """Run a service in a thread with its own database connection; returns (thread, result list, errors)."""
    result: list = []
    errors: list = []

    def run():
        try:
            result.append(target(*args))
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result, errors


def _wait_for_a_lock_waiter(timeout: float = 10.0) -> None:
    """Block until another backend of this database waits on a lock (bounded)."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            # Inside a transaction PostgreSQL serves pg_stat_activity from a snapshot: refresh it.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] > 0:
                return
            time.sleep(0.02)
    raise AssertionError(f"no concurrent transaction waited on the row lock within {timeout} s")


@pytest.mark.django_db(transaction=True)
def test_concurrent_trade_records_wait_for_the_row_lock_and_lose_no_update():
    RiskStateFactory(account=GLOBAL_SCOPE, initial_equity=D("1000"))

    with transaction.atomic():
        # This transaction books a loss and still holds the row lock...
        services.risk_state_record_trade(pnl=D("-10"), thresholds=THREE_LOSSES)
        # ...so a second recorder, on its own connection, has to wait for the commit.
        thread, result, errors = _in_thread(
            lambda: services.risk_state_record_trade(pnl=D("-5"), thresholds=THREE_LOSSES)
        )
        _wait_for_a_lock_waiter()
        assert thread.is_alive()
    thread.join(timeout=20)

    assert not thread.is_alive() and errors == [] and result == [None]
    state = RiskState.objects.get(account=GLOBAL_SCOPE)
    assert state.current_equity == D("985")  # both losses booked, the second on top of the first
    assert state.daily_pnl == D("-15")
    assert (state.consecutive_losses, state.total_trades) == (2, 2)


@pytest.mark.django_db(transaction=True)
def test_concurrent_equity_updates_keep_the_higher_peak():
    RiskStateFactory(account=GLOBAL_SCOPE, initial_equity=D("1000"))

    with transaction.atomic():
        services.risk_state_update_equity(equity=D("1500"))
        thread, _, errors = _in_thread(lambda: services.risk_state_update_equity(equity=D("1200")))
        _wait_for_a_lock_waiter()
    thread.join(timeout=20)

    assert not thread.is_alive() and errors == []
    state = RiskState.objects.get(account=GLOBAL_SCOPE)
    # The second update saw the first one's peak; without the lock it would have written 1200.
    assert (state.current_equity, state.peak_equity) == (D(1200), D(1500))


@pytest.mark.django_db(transaction=True)
def test_many_concurrent_trade_records_all_count():
    RiskStateFactory(account=GLOBAL_SCOPE, initial_equity=D("1000"))
    start = threading.Barrier(2, timeout=10)
    per_thread = 15

    def record_many(pnl):
        start.wait()
        for _ in range(per_thread):
            services.risk_state_record_trade(pnl=pnl, thresholds=THREE_LOSSES)

    runs = [_in_thread(record_many, D("1")), _in_thread(record_many, D("0.5"))]
    for thread, _, _ in runs:
        thread.join(timeout=60)

    assert all(not thread.is_alive() and errors == [] for thread, _, errors in runs)
    state = RiskState.objects.get(account=GLOBAL_SCOPE)
    assert state.total_trades == 2 * per_thread
    assert state.current_equity == D("1000") + per_thread * (D("1") + D("0.5"))
    assert selectors.risk_figures_get().current_equity == state.current_equity
