from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

from arbitragex import config
from arbitragex.admin_utils import CappedCountPaginator, ReadOnlyAdmin
from arbitragex.errors import ApplicationError
from arbitragex.models import AuditLog, SystemConfig
from arbitragex.services import config_set

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


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_display = ["at", "actor_label", "action", "target", "previous", "new"]
    list_filter = ["action"]
    search_fields = ["target", "actor_label", "note"]
    date_hierarchy = "at"
