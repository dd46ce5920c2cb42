from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import URLPattern, path, reverse

from arbitragex import config
from arbitragex.admin_confirm import is_confirmed, operation_confirmation
from arbitragex.admin_utils import CappedCountPaginator, ReadOnlyAdmin
from arbitragex.errors import ApplicationError
from arbitragex.models import AuditLog, SystemConfig
from arbitragex.services import config_get, config_set

admin.site.site_header = "ArbitrageX operations"
admin.site.site_title = "ArbitrageX"
admin.site.index_title = "Operations"


class SystemConfigForm(forms.ModelForm):
    key = forms.ChoiceField(choices=[(name, name) for name in config.REGISTRY])
    value = forms.CharField(help_text="true/false, a whole number, a decimal, or one of the listed choices.")

    class Meta:
        model = SystemConfig
        fields = ["key", "value"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["key"].disabled = True
            spec = config.REGISTRY.get(self.instance.key)
            if spec is not None:
                self.fields["value"].help_text = f"{spec.description} Allowed: {spec.allowed()}."
            self.initial["value"] = self.instance.value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        key = cleaned.get("key") or self.instance.key
        if key and "value" in cleaned:
            try:
                cleaned["typed_value"] = config.get_key(key).parse(cleaned["value"])
            except ApplicationError as exc:
                self.add_error("value", exc.message)
        return cleaned


@admin.register(SystemConfig)
class SystemConfigAdmin(admin.ModelAdmin):
    form = SystemConfigForm
    list_display = ["key", "value", "description", "updated_at", "updated_by"]
    search_fields = ["key"]
    readonly_fields = ["updated_at", "updated_by"]

    @admin.display(description="description")
    def description(self, obj: SystemConfig) -> str:
        spec = config.REGISTRY.get(obj.key)
        return spec.description if spec else "(no longer used)"

    def save_model(self, request: Any, obj: SystemConfig, form: Any, change: bool) -> None:
        # Through the service: validation, audit row and cache invalidation in one place.
        key = form.cleaned_data.get("key") or obj.key
        config_set(key=key, value=form.cleaned_data["value"], actor=request.user)
        saved = SystemConfig.objects.get(key=key)
        obj.pk, obj.key, obj.value = saved.pk, saved.key, saved.value

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    # --- operations: the kill switch ---

    def get_urls(self) -> list[URLPattern]:
        # Before the stock routes: their "<path:object_id>/" would take "kill-switch/" for a row.
        view = self.admin_site.admin_view(self.kill_switch_view)
        return [path("kill-switch/", view, name="arbitragex_systemconfig_kill_switch"), *super().get_urls()]

    def kill_switch_view(self, request: HttpRequest) -> HttpResponse:
        """``?trading=off`` engages the kill switch, ``?trading=on`` releases it; confirmed first."""
        return kill_switch(self, request)


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_display = ["at", "actor_label", "action", "target", "previous", "new"]
    list_filter = ["action"]
    search_fields = ["target", "actor_label", "note"]
    date_hierarchy = "at"


# --- operations ------------------------------------------------------------------------------------------------

KILL_SWITCH_KEY = "trading_enabled"


def kill_switch(model_admin: SystemConfigAdmin, request: HttpRequest) -> HttpResponse:
    """The kill switch page: what turning trading off (or on) does, then the change through
    ``config_set``, which stores it, writes the audit row with the previous value, and drops the cache."""
    if not model_admin.has_change_permission(request):
        raise PermissionDenied
    enabled = bool(config_get(KILL_SWITCH_KEY))
    wanted = request.POST.get("trading") or request.GET.get("trading") or ("off" if enabled else "on")
    if wanted not in ("on", "off"):
        model_admin.message_user(request, f"trading={wanted!r}: use on or off", messages.ERROR)
        return redirect("admin:index")
    enable = wanted == "on"
    if is_confirmed(request):
        config_set(key=KILL_SWITCH_KEY, value=enable, actor=request.user)
        if enable:
            model_admin.message_user(request, "Trading is ON: new executions may start again.", messages.SUCCESS)
        else:
            model_admin.message_user(
                request,
                "Kill switch engaged: trading is OFF. No new execution starts; those already running finish.",
                messages.WARNING,
            )
        return redirect("admin:index")
    if enable:
        title, consequences = (
            "Turn trading on",
            [
                "Detected opportunities and manual executions may start executions again.",
                "The breaker and every other risk check still apply.",
            ],
        )
    else:
        title, consequences = (
            "Turn trading off",
            [
                "No new execution starts: opportunities are recorded and rejected as 'trading disabled'.",
                "Executions already running are not stopped: their orders are followed to the end.",
                "To stop those as well, cancel their open orders (Trade executions → Cancel open orders).",
            ],
        )
    return operation_confirmation(
        request,
        admin_site=model_admin.admin_site,
        opts=model_admin.model._meta,
        title=title,
        question=f"{title} (kill switch)?",
        current="trading is ON" if enabled else "trading is OFF (kill switch engaged)",
        consequences=consequences,
        confirm_label=f"Yes, {title.lower()}",
        hidden=[("trading", wanted)],
        cancel_url=reverse("admin:index"),
    )
