"""Writes of the notifications app: recording events, dispatching them under the rate limit, delivering
messages, and the channels' lifecycle.

The path of an event:

1. ``event_record`` writes the ``Event`` row in the transaction of the action that raised it (a signal
   receiver), in a savepoint, so that a failure here never fails that action; ``event_dispatch`` is
   enqueued after commit.
2. ``event_dispatch`` (worker) picks the channels from the rules, then applies the rate limit of the
   event's key: the first event of a window becomes one ``Delivery`` per channel; the next ones within
   ``notify_window_s`` are HELD and counted on the key's ``Throttle``.
3. ``throttle_flush`` (worker, when the window ends) sends the held events as one "N more since …"
   message, which starts a new window.
4. ``delivery_send`` (worker) makes one attempt; the Celery task retries with exponential backoff and,
   after its last attempt, the delivery is recorded FAILED with the reason.

``notifications_sweep`` (beat) re-enqueues whatever a lost broker message would have left behind.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from arbitragex.errors import ApplicationError, ErrorCode
from arbitragex.services import audit_record, config_values
from notifications import redaction, sending, signals
from notifications.events import EventSpec, Severity, held_back_summary, when
from notifications.models import Channel, Delivery, Event, Throttle
from notifications.selectors import channels_for

__all__ = [
    "DeliveryOutcome",
    "channel_create",
    "channel_delete",
    "channel_test",
    "channel_update",
    "delivery_failure_record",
    "delivery_send",
    "event_dispatch",
    "event_record",
    "notifications_sweep",
    "throttle_flush",
]

logger = logging.getLogger(__name__)

# A flush task's countdown stays well under the broker's visibility timeout (300 s by default): a longer
# window is waited out in several hops.
MAX_FLUSH_COUNTDOWN_S = 240
# How long one attempt may hold a delivery before another worker may try it (a lease, not a lock).
SEND_LEASE = timedelta(seconds=sending.SEND_TIMEOUT_S * 3)
# The sweep leaves fresh rows to the tasks already enqueued for them.
SWEEP_EVENT_AFTER = timedelta(seconds=30)
SWEEP_DELIVERY_AFTER = timedelta(minutes=10)
SWEEP_FLUSH_AFTER = timedelta(seconds=60)
SWEEP_BATCH = 500

Actor = AbstractBaseUser | AnonymousUser | None


def _due(signal: Any, **kwargs: Any) -> None:
    signal.send(sender=Event, **kwargs)


def _due_on_commit(signal: Any, **kwargs: Any) -> None:
    # robust: the rows are committed when the broker is asked; if it fails, the sweep finds them.
    transaction.on_commit(partial(_due, signal, **kwargs), robust=True)


# --- recording -------------------------------------------------------------------------------------------------


def event_record(spec: EventSpec) -> Event | None:
    """Record ``spec`` in the caller's transaction and dispatch it after commit. Never raises for a
    database error: the action that raised the event must go on (the failure is logged)."""
    try:
        with transaction.atomic():
            event = Event.objects.create(
                kind=spec.kind,
                severity=spec.severity,
                key=spec.key[:200],
                title=spec.title[:300],
                body=spec.body,
                detail=dict(spec.detail),
            )
    except DatabaseError:
        logger.exception("could not record the %s event %s", spec.kind, spec.key)
        return None
    _due_on_commit(signals.dispatch_due, event_id=event.pk)
    return event


# --- dispatching under the rate limit ---------------------------------------------------------------------------


def _window() -> timedelta:
    return timedelta(seconds=int(config_values()["notify_window_s"]))


def _throttle_locked(key: str) -> Throttle:
    Throttle.objects.bulk_create([Throttle(key=key)], ignore_conflicts=True)
    return Throttle.objects.select_for_update().get(key=key)


def _countdown(due: datetime, now: datetime) -> float:
    return max(0.0, min((due - now).total_seconds(), MAX_FLUSH_COUNTDOWN_S))


def _flush_schedule(throttle: Throttle, now: datetime, window: timedelta) -> None:
    """Give the key a new flush token (superseding any earlier flush task) and enqueue its flush."""
    throttle.flush_token = uuid.uuid4().hex
    due = (throttle.last_sent_at or now) + window
    _due_on_commit(signals.flush_due, key=throttle.key, token=throttle.flush_token, countdown=_countdown(due, now))


def _deliveries_create(
    channels: list[Channel], *, event: Event, kind: str, title: str, body: str, held_count: int, now: datetime
) -> list[Delivery]:
    deliveries = [
        Delivery.objects.create(
            event=event,
            channel=channel,
            channel_name=channel.name,
            kind=kind,
            severity=event.severity,
            held_count=held_count,
            title=title[:400],
            body=body,
            next_attempt_at=now,
        )
        for channel in channels
    ]
    for delivery in deliveries:
        _due_on_commit(signals.send_due, delivery_id=delivery.pk)
    return deliveries


@transaction.atomic
def event_dispatch(*, event_id: int, now: datetime | None = None) -> str:
    """Send a recorded event to its channels, or hold it back when its key sent a message within the
    window. Idempotent: an event is dispatched once."""
    now = now or timezone.now()
    event = Event.objects.select_for_update().filter(pk=event_id).first()
    if event is None or event.status != Event.Status.NEW:
        return "nothing to do"
    event.dispatched_at = now
    channels = channels_for(kind=event.kind, severity=event.severity)
    if not channels:
        event.status = Event.Status.NO_CHANNEL
        event.save(update_fields=["status", "dispatched_at"])
        return "no channel"
    window = _window()
    throttle = _throttle_locked(event.key)
    if throttle.last_sent_at is not None and now < throttle.last_sent_at + window:
        throttle.held_count += 1
        throttle.held_since = throttle.held_since or event.created_at
        throttle.latest_held = event
        if not throttle.flush_token:
            _flush_schedule(throttle, now, window)
        throttle.save()
        event.status = Event.Status.HELD
        event.save(update_fields=["status", "dispatched_at"])
        return f"held ({throttle.held_count} in this window)"
    body = event.body
    folded = throttle.held_count
    if folded:
        # Held events whose summary has not gone out (its flush is late): this message carries their count.
        assert throttle.held_since is not None
        body += f"\n({folded} more since {when(throttle.held_since)} before this one.)"
        Event.objects.filter(key=event.key, status=Event.Status.HELD).update(status=Event.Status.SUMMARISED)
    throttle.last_sent_at = now
    throttle.held_count, throttle.held_since, throttle.latest_held, throttle.flush_token = 0, None, None, ""
    throttle.save()
    event.status = Event.Status.SENT
    event.save(update_fields=["status", "dispatched_at"])
    _deliveries_create(
        channels, event=event, kind=Delivery.Kind.EVENT, title=event.title, body=body, held_count=folded, now=now
    )
    return f"sent to {len(channels)} channel(s)"


@transaction.atomic
def throttle_flush(*, key: str, token: str, now: datetime | None = None) -> str:
    """When the key's window has ended, send what it held back as one "N more since …" message."""
    now = now or timezone.now()
    throttle = Throttle.objects.select_for_update().filter(key=key).first()
    if throttle is None or not token or throttle.flush_token != token:
        return "superseded"
    window = _window()
    if throttle.last_sent_at is not None and now < throttle.last_sent_at + window:
        _flush_schedule(throttle, now, window)  # a long window is waited out in hops
        throttle.save(update_fields=["flush_token"])
        return "not due yet"
    latest, count, since = throttle.latest_held, throttle.held_count, throttle.held_since
    throttle.flush_token = ""
    if not count or latest is None or since is None:
        throttle.save(update_fields=["flush_token"])
        return "nothing held"
    Event.objects.filter(key=key, status=Event.Status.HELD).update(status=Event.Status.SUMMARISED)
    throttle.held_count, throttle.held_since, throttle.latest_held = 0, None, None
    throttle.last_sent_at = now
    throttle.save()
    channels = channels_for(kind=latest.kind, severity=latest.severity)
    title, body = held_back_summary(count=count, since=since, latest_title=latest.title, latest_body=latest.body)
    _deliveries_create(
        channels, event=latest, kind=Delivery.Kind.SUMMARY, title=title, body=body, held_count=count, now=now
    )
    return f"{count} more: sent to {len(channels)} channel(s)"


# --- delivering ----------------------------------------------------------------------------------------------------


class DeliveryOutcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    NOTHING = "nothing to do"


def _claim(delivery_id: int, now: datetime) -> Delivery | None:
    """Take the delivery for one attempt, unless it is done or another attempt holds it."""
    claimed = (
        Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.PENDING)
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
        .update(last_attempt_at=now, leased_until=now + SEND_LEASE, attempts=F("attempts") + 1)
    )
    if not claimed:
        return None
    return Delivery.objects.select_related("channel").get(pk=delivery_id)


def delivery_failure_record(*, delivery_id: int, reason: str, final: bool, retry_in_s: float) -> DeliveryOutcome:
    """Record a failed attempt: FAILED with the reason after the last one, else the time of the next."""
    now = timezone.now()
    # The lease ends with the attempt, so that the retry may claim it.
    changes: dict[str, Any] = {"error": reason, "leased_until": None}
    if final:
        changes["status"] = Delivery.Status.FAILED
        changes["next_attempt_at"] = None
        logger.warning("delivery %s failed after its last attempt: %s", delivery_id, reason)
    else:
        changes["next_attempt_at"] = now + timedelta(seconds=retry_in_s)  # when it is due, for the sweep
        logger.info("delivery %s failed, retrying in %.0f s: %s", delivery_id, retry_in_s, reason)
    Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.PENDING).update(**changes)
    return DeliveryOutcome.FAILED if final else DeliveryOutcome.RETRY


def delivery_send(*, delivery_id: int, final: bool, retry_in_s: float) -> DeliveryOutcome:
    """One attempt at a delivery. ``final``: no retry follows, so a failure is recorded as FAILED.

    No transaction is held while the service is called; the claim is a lease, so a duplicate task
    does not send the message a second time while this attempt runs.
    """
    now = timezone.now()
    delivery = _claim(delivery_id, now)
    if delivery is None:
        return DeliveryOutcome.NOTHING
    channel = delivery.channel
    if channel is None:
        return delivery_failure_record(delivery_id=delivery_id, reason="the channel was deleted", final=True,
                                       retry_in_s=0)  # fmt: skip
    if not channel.enabled:
        return delivery_failure_record(delivery_id=delivery_id, reason="the channel is disabled", final=True,
                                       retry_in_s=0)  # fmt: skip
    try:
        url = channel.get_url()
    except ImproperlyConfigured:
        reason = "the channel's URL cannot be decrypted with FIELD_ENCRYPTION_KEY"
        return delivery_failure_record(delivery_id=delivery_id, reason=reason, final=True, retry_in_s=0)
    result = sending.send(url, title=delivery.title, body=delivery.body, severity=delivery.severity)
    if not result.ok:
        return delivery_failure_record(
            delivery_id=delivery_id, reason=result.reason, final=final, retry_in_s=retry_in_s
        )
    Delivery.objects.filter(pk=delivery_id).update(
        status=Delivery.Status.SENT, sent_at=timezone.now(), error="", next_attempt_at=None, leased_until=None
    )
    return DeliveryOutcome.SENT


# --- the sweep -------------------------------------------------------------------------------------------------------


def notifications_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Re-enqueue what a lost broker message left behind: events never dispatched, deliveries whose retry
    never came, and windows whose "N more" message never went out."""
    now = now or timezone.now()
    events = list(
        Event.objects.filter(status=Event.Status.NEW, created_at__lt=now - SWEEP_EVENT_AFTER)
        .order_by("created_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    for event_id in events:
        _due(signals.dispatch_due, event_id=event_id)
    deliveries = list(
        Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lt=now - SWEEP_DELIVERY_AFTER)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    if deliveries:
        Delivery.objects.filter(pk__in=deliveries).update(next_attempt_at=now)
        for delivery_id in deliveries:
            _due(signals.send_due, delivery_id=delivery_id)
    window = _window()
    flushes = 0
    for key in Throttle.objects.filter(held_count__gt=0, last_sent_at__lt=now - window - SWEEP_FLUSH_AFTER).values_list(
        "key", flat=True
    )[:SWEEP_BATCH]:
        with transaction.atomic():
            throttle = Throttle.objects.select_for_update().get(key=key)
            _flush_schedule(throttle, now, window)
            throttle.save(update_fields=["flush_token"])
        flushes += 1
    return {"events": len(events), "deliveries": len(deliveries), "flushes": flushes}


# --- channels --------------------------------------------------------------------------------------------------------


def _url_valid(url: str) -> str:
    url = (url or "").strip()
    problem = sending.url_check(url) if url else "an Apprise URL is required"
    if problem is not None:
        # The message names the field and the scheme at most, never the URL.
        raise ApplicationError(ErrorCode.INVALID_PARAMETER, f"url: {problem}", {"url": [problem]})
    return url


def _channel_state(channel: Channel) -> dict[str, Any]:
    return {"name": channel.name, "scheme": channel.scheme, "enabled": channel.enabled}


@transaction.atomic
def channel_create(*, name: str, url: str, enabled: bool = True, actor: Actor = None) -> Channel:
    """A new channel; the URL is checked with Apprise and stored encrypted. Audited (without the URL)."""
    url = _url_valid(url)
    channel = Channel(name=name, enabled=enabled)
    channel.set_url(url, redaction.scheme_of(url))
    try:
        with transaction.atomic():
            channel.save()
    except IntegrityError:
        raise ApplicationError(
            ErrorCode.INVALID_PARAMETER, "name: a channel with this name exists", {"name": ["already used"]}
        ) from None
    audit_record(action="notification.channel.create", target=channel.name, actor=actor, new=_channel_state(channel))
    return channel


@transaction.atomic
def channel_update(
    *,
    channel: Channel,
    name: str | None = None,
    url: str | None = None,
    enabled: bool | None = None,
    actor: Actor = None,
) -> Channel:
    """Change a channel; a blank or missing ``url`` keeps the stored one. Audited (without the URL)."""
    locked = Channel.objects.select_for_update().get(pk=channel.pk)
    previous = _channel_state(locked)
    if name is not None:
        locked.name = name
    if enabled is not None:
        locked.enabled = enabled
    url_changed = bool(url and url.strip())
    if url_changed:
        valid = _url_valid(url or "")
        locked.set_url(valid, redaction.scheme_of(valid))
    try:
        with transaction.atomic():
            locked.save()
    except IntegrityError:
        raise ApplicationError(
            ErrorCode.INVALID_PARAMETER, "name: a channel with this name exists", {"name": ["already used"]}
        ) from None
    audit_record(
        action="notification.channel.update",
        target=locked.name,
        actor=actor,
        previous=previous,
        new={**_channel_state(locked), "url_changed": url_changed},
    )
    return locked


@transaction.atomic
def channel_delete(*, channel: Channel, actor: Actor = None) -> None:
    """Delete a channel; its deliveries stay in the log under its name. Audited."""
    previous = _channel_state(channel)
    channel.delete()
    audit_record(action="notification.channel.delete", target=previous["name"], actor=actor, previous=previous)


def channel_test(*, channel: Channel, actor: Actor = None) -> sending.SendResult:
    """Send a test message to ``channel`` now (one attempt, no retry), and record it in the delivery log
    and the audit log with its outcome."""
    try:
        result = sending.send(
            channel.get_url(),
            title="ArbitrageX test message",
            body=f"A test message to the channel '{channel.name}'. If you read this, it works.",
            severity=Severity.INFO,
        )
    except ImproperlyConfigured:
        result = sending.SendResult(False, "the channel's URL cannot be decrypted with FIELD_ENCRYPTION_KEY")
    now = timezone.now()
    with transaction.atomic():
        Delivery.objects.create(
            channel=channel,
            channel_name=channel.name,
            kind=Delivery.Kind.TEST,
            severity=Severity.INFO,
            title="ArbitrageX test message",
            body=f"Test message sent by {getattr(actor, 'username', '') or 'the platform'}.",
            status=Delivery.Status.SENT if result.ok else Delivery.Status.FAILED,
            attempts=1,
            error=result.reason,
            last_attempt_at=now,
            sent_at=now if result.ok else None,
        )
        audit_record(
            action="notification.test",
            target=channel.name,
            actor=actor,
            new={"scheme": channel.scheme, "sent": result.ok, "reason": result.reason},
        )
    return result
