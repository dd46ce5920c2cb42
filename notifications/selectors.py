"""Reads of the notifications app."""

from __future__ import annotations

from notifications.events import severity_at_least
from notifications.models import Channel, Rule


def channels_for(*, kind: str, severity: str) -> list[Channel]:
    """The enabled channels of the enabled rules that take ``kind`` at ``severity``, each once, by pk.

    Rules are few, so they are matched here rather than in SQL (SQLite cannot search a JSON list).
    """
    chosen: dict[int, Channel] = {}
    for rule in Rule.objects.filter(enabled=True).prefetch_related("channels").order_by("pk"):
        if rule.kinds and kind not in rule.kinds:
            continue
        if not severity_at_least(severity, rule.min_severity):
            continue
        for channel in rule.channels.all():
            if channel.enabled:
                chosen[channel.pk] = channel
    return [chosen[pk] for pk in sorted(chosen)]
