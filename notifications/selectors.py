"""Reads of the notifications app."""

from __future__ import annotations

from django.db.models import Q

from notifications.events import severity_at_least
from notifications.models import Channel, Rule


def channels_for(*, kind: str, severity: str) -> list[Channel]:
    """The enabled channels of the enabled rules that take ``kind`` (an empty list takes every kind) at
    ``severity``, each once, by pk."""
    chosen: dict[int, Channel] = {}
    rules = Rule.objects.filter(Q(kinds=[]) | Q(kinds__contains=[kind]), enabled=True)
    for rule in rules.prefetch_related("channels").order_by("pk"):
        if not severity_at_least(severity, rule.min_severity):
            continue
        for channel in rule.channels.all():
            if channel.enabled:
                chosen[channel.pk] = channel
    return [chosen[pk] for pk in sorted(chosen)]
