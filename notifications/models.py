from __future__ import annotations

from django.db import models

from arbitragex import crypto
from notifications.events import EventKind, Severity


class Channel(models.Model):
    """Where messages go: one Apprise URL (Telegram, Slack, ntfy, a webhook...).

    The URL holds the service's tokens, so it is stored encrypted (``FIELD_ENCRYPTION_KEY``) and never
    shown again: only its scheme is kept in clear, for operators to tell channels apart.
    """

    name = models.CharField(max_length=100, unique=True)
    url_encrypted = models.TextField(editable=False)
    scheme = models.CharField(max_length=32, editable=False, help_text="The URL's scheme, e.g. tgram, slack, json.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.url_display})"

    @property
    def url_display(self) -> str:
        return f"{self.scheme}://…" if self.scheme else ""

    def set_url(self, url: str, scheme: str) -> None:
        self.url_encrypted = crypto.encrypt(url)
        self.scheme = scheme

    def get_url(self) -> str:
        return crypto.decrypt(self.url_encrypted)


class Rule(models.Model):
    """Which events go to which channels: the kinds (none listed: every kind) at or above a severity."""

    name = models.CharField(max_length=100, unique=True)
    kinds = models.JSONField(default=list, blank=True, help_text="Event kinds; an empty list means every kind.")
    min_severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.WARNING)
    channels = models.ManyToManyField(Channel, related_name="rules")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Event(models.Model):
    """One thing operators should hear about, recorded in the transaction that raised it."""

    class Status(models.TextChoices):
        NEW = "new", "Recorded, not dispatched yet"
        SENT = "sent", "Dispatched to its channels"
        HELD = "held", "Held back by the rate limit"
        SUMMARISED = "summarised", "Counted in an 'N more' message"
        NO_CHANNEL = "no_channel", "No rule sends it anywhere"

    kind = models.CharField(max_length=40, choices=EventKind.choices)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    key = models.CharField(max_length=200, help_text="Events with the same key are deduplicated together.")
    title = models.CharField(max_length=300)
    body = models.TextField()
    detail = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.NEW)
    created_at = models.DateTimeField(auto_now_add=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at"], name="notif_event_created_idx"),
            models.Index(fields=["key", "-created_at"], name="notif_event_key_idx"),
            models.Index(fields=["status", "created_at"], name="notif_event_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.key}"


class Throttle(models.Model):
    """The rate limit of one event key: when a message last went out, and what was held back since."""

    key = models.CharField(max_length=200, unique=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    held_count = models.PositiveIntegerField(default=0)
    held_since = models.DateTimeField(null=True, blank=True)
    latest_held = models.ForeignKey(Event, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    flush_token = models.CharField(
        max_length=32, blank=True, help_text="Identifies the one flush task that may send the 'N more' message."
    )

    def __str__(self) -> str:
        return self.key


class Delivery(models.Model):
    """One message to one channel, and what became of it. Nothing is dropped: a message that cannot be
    delivered after its retries is FAILED with the reason."""

    class Kind(models.TextChoices):
        EVENT = "event", "Event"
        SUMMARY = "summary", "'N more' summary"
        TEST = "test", "Test message"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    event = models.ForeignKey(Event, null=True, blank=True, on_delete=models.PROTECT, related_name="deliveries")
    channel = models.ForeignKey(Channel, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries")
    channel_name = models.CharField(max_length=100, help_text="The channel's name when the message was made.")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.EVENT)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    held_count = models.PositiveIntegerField(default=0, help_text="Events this summary stands for.")
    title = models.CharField(max_length=400)
    body = models.TextField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True, help_text="Why the last attempt failed (secrets removed).")
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    leased_until = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="An attempt under way holds the delivery until then."
    )
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["-created_at"], name="notif_delivery_created_idx"),
            models.Index(fields=["status", "next_attempt_at"], name="notif_delivery_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.channel_name}: {self.title[:60]}"
