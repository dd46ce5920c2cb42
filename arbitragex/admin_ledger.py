"""Ledger rows in the admin: executions, orders, fills and balances are what happened (or what a venue
says), so they are never added, edited or deleted by hand. Corrections go through the audited actions
(cancel, resync, reconcile), which change them through the services.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest


class LedgerAdmin(admin.ModelAdmin):
    """No add, no delete, and every row's page is view-only (no form, no save button; a POST to it is
    refused). The model-wide change permission is kept as the user's: it is what the audited actions on
    the list (``permissions=["change"]``) require, and they are how a ledger row is corrected."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Called without a row for the list and its actions, with the row for its page.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(admin.options.InlineModelAdmin):
    """An inline of ledger rows: shown, never added, changed or deleted from the parent's page."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
