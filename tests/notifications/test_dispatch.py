"""Dispatch: rules pick the channels; the rate limit per event key turns a burst into one message and
one "N more since …"; recording an event never makes the action that raised it fail."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from arbitragex.services import config_set
from notifications import services
from notifications.events import EventKind, EventSpec, Severity
from notifications.models import Delivery, Event, Throttle
from notifications.services import notifications_sweep
from risk import services as risk_services
from risk.models import RiskState
from tests.notifications.support import Receiver, channel_with_rule, drain, flush
from tests.trading.lifecycle_support import configure

pytestmark = pytest.mark.django_db


def spec(key: str = "k", title: str = "t", severity: str = Severity.WARNING, kind: str = EventKind.PAIR_PAUSED):
    return EventSpec(kind=kind, severity=severity, key=key, title=title, body=f"body of {title}")


def test_a_second_breaker_trip_within_the_window_becomes_one_more(receiver):
    channel_with_rule(receiver)
    configure(notify_window_s=600)
    start = timezone.now()

    risk_services.breaker_open(reason="first trip")
    drain(now=start)
    risk_services.breaker_close()
    risk_services.breaker_open(reason="second trip")
    drain(now=start + timedelta(seconds=30))

    messages = receiver.wait_for(2)  # the trip and the close (a key of its own)
    assert [m.title for m in messages] == ["Breaker tripped (global/*): first trip", "Breaker closed (global/*)"]
    held = Event.objects.get(title="Breaker tripped (global/*): second trip")
    assert held.status == Event.Status.HELD
    assert flush("breaker.tripped:global/*", now=start + timedelta(seconds=300)) == "not due yet"

    assert flush("breaker.tripped:global/*", now=start + timedelta(seconds=601)).startswith("1 more")
    drain(now=start + timedelta(seconds=601))

    summary = receiver.wait_for(3)[2]
    assert summary.title.startswith("1 more since ") and summary.title.endswith(
        ": Breaker tripped (global/*): second trip"
    )
    assert "Latest: The circuit breaker of global/* opened: second trip." in summary.message
    assert Event.objects.get(pk=held.pk).status == Event.Status.SUMMARISED
    assert Delivery.objects.get(kind=Delivery.Kind.SUMMARY).held_count == 1


def test_during_an_outage_one_message_then_a_single_n_more_then_normal_again(receiver):
    channel_with_rule(receiver)
    configure(notify_window_s=60)
    start = timezone.now()
    for i in range(5):
        services.event_record(spec(title=f"drop {i}"))
        drain(now=start + timedelta(seconds=i))
    assert [m.title for m in receiver.wait_for(1)] == ["drop 0"]
    throttle = Throttle.objects.get(key="k")
    assert (throttle.held_count, throttle.latest_held.title) == (4, "drop 4")

    flush("k", now=start + timedelta(seconds=61))
    drain(now=start + timedelta(seconds=61))
    assert receiver.wait_for(2)[1].title.startswith("4 more since ")
    # The summary opened a new window: an event within it is held, one after it goes out at once.
    services.event_record(spec(title="drop 5"))
    drain(now=start + timedelta(seconds=90))
    services.event_record(spec(title="back"))
    drain(now=start + timedelta(seconds=200))

    assert [m.title for m in receiver.wait_for(3)][2].startswith("back")
    back = receiver.messages[2]
    assert "(1 more since " in back.message  # drop 5 rides along with the next message
    assert len(receiver.messages) == 3
    assert Event.objects.get(title="drop 5").status == Event.Status.SUMMARISED


def test_a_superseded_flush_task_does_nothing(receiver):
    channel_with_rule(receiver)
    start = timezone.now()
    for i in range(2):
        services.event_record(spec(title=f"e{i}"))
        drain(now=start)
    token = Throttle.objects.get(key="k").flush_token
    assert token

    assert services.throttle_flush(key="k", token="not-the-token", now=start + timedelta(days=1)) == "superseded"
    assert services.throttle_flush(key="k", token=token, now=start + timedelta(days=1)).startswith("1 more")
    assert services.throttle_flush(key="k", token=token, now=start + timedelta(days=1)) == "superseded"  # redelivered
    assert Delivery.objects.filter(kind=Delivery.Kind.SUMMARY).count() == 1


def test_rules_pick_channels_by_kind_and_minimum_severity(receiver):
    other = Receiver().start()
    try:
        channel_with_rule(receiver, kinds=[EventKind.PAIR_PAUSED], min_severity=Severity.WARNING, name="pairs")
        channel_with_rule(other, kinds=[], min_severity=Severity.CRITICAL, name="pager")

        services.event_record(spec(key="a", title="pair warning"))
        services.event_record(spec(key="b", title="pair info", severity=Severity.INFO))
        services.event_record(
            spec(key="c", title="critical ban", severity=Severity.CRITICAL, kind=EventKind.VENUE_BANNED)
        )
        services.event_record(spec(key="d", title="critical pair", severity=Severity.CRITICAL))
        drain()

        assert sorted(m.title for m in receiver.wait_for(2)) == ["critical pair", "pair warning"]
        assert sorted(m.title for m in other.wait_for(2)) == ["critical ban", "critical pair"]
        assert Event.objects.get(key="b").status == Event.Status.NO_CHANNEL
    finally:
        other.stop()


def test_a_disabled_rule_or_channel_sends_nothing():
    dead = Receiver()  # never started
    channel = channel_with_rule(dead)
    services.channel_update(channel=channel, enabled=False)
    services.event_record(spec())
    drain()
    assert Event.objects.get().status == Event.Status.NO_CHANNEL


def test_the_event_is_recorded_in_the_transaction_of_the_action(receiver):
    channel_with_rule(receiver)
    with pytest.raises(RuntimeError), transaction.atomic():
        risk_services.breaker_open(reason="rolled back")
        raise RuntimeError("the action failed after the trip")

    assert not Event.objects.exists()
    assert not RiskState.objects.filter(breaker_open=True).exists()


def test_a_failing_receiver_never_fails_the_action(receiver, monkeypatch, caplog):
    channel_with_rule(receiver)

    def broken(*args, **kwargs):
        raise RuntimeError("notifications are broken")

    monkeypatch.setattr("notifications.receivers.event_record", broken)
    row = risk_services.breaker_open(reason="still opens")

    assert RiskState.objects.get(pk=row.pk).breaker_open
    assert "the on_breaker_tripped receiver failed" in caplog.text


def test_a_database_error_while_recording_leaves_the_action_usable(receiver, monkeypatch):
    """The event's insert fails inside the action's transaction: rolled back to its savepoint, the
    action's own writes still commit (on PostgreSQL a failed statement would otherwise poison it)."""
    channel_with_rule(receiver)
    monkeypatch.setattr(
        "notifications.services.Event.objects.create",
        lambda **kwargs: connection.cursor().execute("SELECT * FROM no_such_table"),
    )

    config_set(key="trading_enabled", value=False)
    config_set(key="max_open_executions", value=5)  # the transaction goes on

    assert not Event.objects.exists()


def test_the_sweep_re_enqueues_events_left_behind(receiver, monkeypatch):
    enqueued: list[tuple[str, tuple]] = []
    monkeypatch.setattr(
        "notifications.tasks.event_dispatch.apply_async", lambda args, **_: enqueued.append(("event_dispatch", args))
    )
    channel_with_rule(receiver)
    event = services.event_record(spec())
    Event.objects.filter(pk=event.pk).update(created_at=timezone.now() - timedelta(minutes=5))

    assert notifications_sweep()["events"] == 1
    assert enqueued == [("event_dispatch", (event.pk,))]
