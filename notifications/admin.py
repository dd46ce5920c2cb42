from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from arbitragex.admin_confirm import action_confirmation, is_confirmed
from arbitragex.admin_utils import LargeTableAdmin, ReadOnlyAdmin
from notifications import sending, services
from notifications.events import EventKind
from notifications.models import Channel, Delivery, Event, Rule


class ChannelForm(forms.ModelForm):
    url = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off", "size": 80}),
        help_text="An Apprise URL, e.g. tgram://<bot token>/<chat id>, slack://<tokens>/#channel, "
        "ntfys://ntfy.sh/<topic>, json://host/path (README, 'Notifications'). Write-only: stored encrypted and "
        "never shown again. Leave blank to keep the current one.",
    )

    class Meta:
        model = Channel
        fields = ["name", "enabled"]

    def clean_url(self) -> str:
        url = (self.cleaned_data.get("url") or "").strip()
        if not url and not self.instance.pk:
            raise forms.ValidationError("An Apprise URL is required.")
        problem = sending.url_check(url) if url else None
        if problem is not None:
            # Says what is wrong with the URL, never the URL (the field is not rendered back either).
            raise forms.ValidationError(problem[0].upper() + problem[1:] + ".")
        return url


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = ["name", "url_display", "enabled", "updated_at"]
    list_filter = ["enabled"]
    search_fields = ["name"]
    readonly_fields = ["url_display", "created_at", "updated_at"]
    fields = ["name", "url", "url_display", "enabled", "created_at", "updated_at"]
    actions = ["send_test_message"]

    @admin.display(description="URL")
    def url_display(self, obj: Channel) -> str:
        return obj.url_display or "—"

    def save_model(self, request: Any, obj: Channel, form: Any, change: bool) -> None:
        # Through the services: URL check, encryption and the audit row in one place.
        data = form.cleaned_data
        if change:
            saved = services.channel_update(
                channel=obj, name=data["name"], url=data.get("url") or None, enabled=data["enabled"], actor=request.user
            )
        else:
            saved = services.channel_create(
                name=data["name"], url=data["url"], enabled=data["enabled"], actor=request.user
            )
        obj.pk, obj.scheme, obj.url_encrypted = saved.pk, saved.scheme, saved.url_encrypted

    def delete_model(self, request: Any, obj: Channel) -> None:
        services.channel_delete(channel=obj, actor=request.user)

    def delete_queryset(self, request: Any, queryset: QuerySet[Channel]) -> None:
        for channel in queryset.order_by("pk"):
            services.channel_delete(channel=channel, actor=request.user)

    @admin.action(description="Send a test message to the selected channels…")
    def send_test_message(self, request: HttpRequest, queryset: QuerySet[Channel]) -> HttpResponse | None:
        if not is_confirmed(request):
            return action_confirmation(
                self,
                request,
                queryset,
                action="send_test_message",
                title="Send a test message",
                question="Send a test message to these channels now?",
                confirm_label="Yes, send the test message",
                consequences=[
                    "Each channel receives one message now, whatever the rules say (one attempt, no retry).",
                    "The outcome is recorded in the delivery log and the audit log.",
                ],
            )
        for channel in queryset.order_by("name"):
            result = services.channel_test(channel=channel, actor=request.user)
            if result.ok:
                self.message_user(request, f"{channel.name}: test message sent.", messages.SUCCESS)
            else:
                self.message_user(request, f"{channel.name}: not delivered: {result.reason}", messages.ERROR)
        return None


class RuleForm(forms.ModelForm):
    kinds = forms.MultipleChoiceField(
        choices=EventKind.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Tick none to send every kind.",
    )

    class Meta:
        model = Rule
        fields = ["name", "kinds", "min_severity", "channels", "enabled"]


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    form = RuleForm
    list_display = ["name", "kinds_display", "min_severity", "channels_display", "enabled"]
    list_filter = ["enabled", "min_severity"]
    search_fields = ["name"]
    filter_horizontal = ["channels"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Rule]:
        return super().get_queryset(request).prefetch_related("channels")

    @admin.display(description="kinds")
    def kinds_display(self, obj: Rule) -> str:
        return ", ".join(obj.kinds) if obj.kinds else "every kind"

    @admin.display(description="channels")
    def channels_display(self, obj: Rule) -> str:
        return ", ".join(channel.name for channel in obj.channels.all()) or "—"


class DeliveryInline(admin.TabularInline):
    model = Delivery
    fields = ("created_at", "channel_name", "kind", "status", "attempts", "error", "sent_at")
    readonly_fields = ("created_at", "channel_name", "kind", "status", "attempts", "error", "sent_at")
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin, LargeTableAdmin):
    list_display = ["created_at", "severity", "kind", "title", "status"]
    list_filter = ["severity", "kind", "status"]
    search_fields = ["key", "title"]
    date_hierarchy = "created_at"
    inlines = [DeliveryInline]


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin, LargeTableAdmin):
    """The delivery log: every message, its channel, attempts and outcome (read-only)."""

    list_display = ["created_at", "channel_name", "kind", "severity", "title", "status", "attempts", "error"]
    list_filter = ["status", "kind", "severity"]
    search_fields = ["title", "channel_name", "error"]
    date_hierarchy = "created_at"
    list_select_related = ["event"]
