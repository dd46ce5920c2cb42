from __future__ import annotations

from rest_framework import serializers

from arbitragex.views import NamedChoiceField, UTCDateTimeField
from notifications.events import EventKind, Severity
from notifications.models import Channel, Rule


class ChannelSerializer(serializers.ModelSerializer):
    url = serializers.CharField(
        write_only=True,
        required=False,
        max_length=2000,
        trim_whitespace=True,
        help_text="Apprise URL, e.g. tgram://<bot token>/<chat id>, slack://..., ntfys://ntfy.sh/<topic>, "
        "json://host/path. Write-only: stored encrypted, never returned. Required to create; omit to keep.",
    )
    url_display = serializers.CharField(read_only=True, help_text="Only the scheme is shown, e.g. 'tgram://…'.")
    created_at = UTCDateTimeField(read_only=True)
    updated_at = UTCDateTimeField(read_only=True)

    class Meta:
        model = Channel
        fields = ["id", "name", "url", "url_display", "scheme", "enabled", "created_at", "updated_at"]
        read_only_fields = ["id", "scheme", "url_display", "created_at", "updated_at"]


class ChannelTestResultSerializer(serializers.Serializer):
    sent = serializers.BooleanField()
    reason = serializers.CharField(allow_blank=True, help_text="Why it failed (secrets removed); '' when sent.")


class RuleSerializer(serializers.ModelSerializer):
    kinds = serializers.ListField(
        child=NamedChoiceField(EventKind.choices, enum_name="NotificationEventKind"),
        required=False,
        allow_empty=True,
        help_text="Event kinds this rule sends; an empty list means every kind.",
    )
    min_severity = NamedChoiceField(Severity.choices, enum_name="NotificationSeverity", required=False)
    channels = serializers.PrimaryKeyRelatedField(many=True, queryset=Channel.objects.all())
    created_at = UTCDateTimeField(read_only=True)
    updated_at = UTCDateTimeField(read_only=True)

    class Meta:
        model = Rule
        fields = ["id", "name", "kinds", "min_severity", "channels", "enabled", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate_kinds(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))  # once each, in the order given
