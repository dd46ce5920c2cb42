"""Admin helpers shared by the apps."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator

COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 rows, so a page of a table with millions of rows stays cheap.

    ``SELECT COUNT(*) FROM (SELECT ... LIMIT n)`` stops scanning at the cap; past it the admin shows
    the capped figure and still pages normally.
    """

    @cached_property
    def count(self) -> int:  # type: ignore[override]
        return self.object_list[: COUNT_CAP + 1].count()  # type: ignore[attr-defined]


class LargeTableAdmin(admin.ModelAdmin):
    """For tables that grow without bound: no full COUNT, no 'show all'."""

    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    list_max_show_all = 200


class ReadOnlyAdmin(admin.ModelAdmin):
    """For audit rows: viewable, never added, changed or deleted from the admin."""

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False
