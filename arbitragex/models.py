from __future__ import annotations

from django.conf import settings
from django.db import models


class SystemConfig(models.Model):
    """One typed runtime setting; the keys, types and bounds live in ``arbitragex.config.REGISTRY``."""

    key = models.CharField(max_length=64, unique=True)
    value = models.JSONField(help_text="Stored as JSON; decimals as strings.")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["key"]
        verbose_name = "system config"
        verbose_name_plural = "system config"

    def __str__(self) -> str:
        return f"{self.key} = {self.value}"


class AuditLog(models.Model):
    """Who changed what, when, and what it was before. Written in the same transaction as the change."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=150, blank=True, help_text="Username, or the system process.")
    action = models.CharField(max_length=64, db_index=True)
    target = models.CharField(max_length=200, blank=True)
    previous = models.JSONField(null=True, blank=True)
    new = models.JSONField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action} {self.target}"
