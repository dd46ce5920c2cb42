"""Intermediate confirmation pages for the dangerous admin operations (kill switch, breaker, cancels,
resyncs, reconciliation), in the manner of Django's "delete selected" confirmation.

A changelist action returns ``action_confirmation(...)`` until the operator posts the page back; the
page re-posts the same action and selection with ``confirmed=yes``, and the action then does the work.
A dedicated admin view does the same with ``operation_confirmation(...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.admin import AdminSite, ModelAdmin, helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse

__all__ = ["CONFIRM_FIELD", "Button", "action_confirmation", "is_confirmed", "operation_confirmation"]

CONFIRM_FIELD = "confirmed"
TEMPLATE = "admin/arbitragex/confirm_operation.html"
# The page lists the selection; past this many rows it says how many more there are.
LISTED_OBJECTS = 50


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    name: str = ""
    value: str = ""
    primary: bool = True


def is_confirmed(request: HttpRequest) -> bool:
    """Whether this request is the operator's answer to a confirmation page."""
    return request.method == "POST" and request.POST.get(CONFIRM_FIELD) == "yes"


def operation_confirmation(
    request: HttpRequest,
    *,
    admin_site: AdminSite,
    opts: Any,
    title: str,
    question: str,
    confirm_label: str,
    current: str = "",
    consequences: Sequence[str] = (),
    hidden: Sequence[tuple[str, str]] = (),
    buttons: Sequence[Button] = (),
    objects: Sequence[str] = (),
    count: int | None = None,
    cancel_url: str | None = None,
) -> TemplateResponse:
    """The confirmation page; it posts back to the URL it was served from."""
    listed = list(objects[:LISTED_OBJECTS])
    total = len(objects) if count is None else count
    context = {
        **admin_site.each_context(request),
        "title": title,
        "question": question,
        "current": current,
        "consequences": list(consequences),
        "hidden": list(hidden),
        "buttons": list(buttons) or [Button(label=confirm_label)],
        "objects": listed,
        "more": max(0, total - len(listed)),
        "opts": opts,
        "app_label": opts.app_label,
        "confirm_field": CONFIRM_FIELD,
        "cancel_url": cancel_url or reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
    }
    request.current_app = admin_site.name
    return TemplateResponse(request, TEMPLATE, context)


def action_confirmation(
    modeladmin: ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[Any],
    *,
    action: str,
    title: str,
    question: str,
    confirm_label: str,
    consequences: Sequence[str] = (),
    describe: Callable[[Any], str] = str,
) -> TemplateResponse:
    """The confirmation page of the changelist action ``action`` over ``queryset``; ``describe`` says
    what each selected row is, in the list the page shows."""
    pks = [str(pk) for pk in queryset.values_list("pk", flat=True)]
    hidden = [("action", action), *((helpers.ACTION_CHECKBOX_NAME, pk) for pk in pks)]
    return operation_confirmation(
        request,
        admin_site=modeladmin.admin_site,
        opts=modeladmin.model._meta,
        title=title,
        question=question,
        confirm_label=confirm_label,
        consequences=consequences,
        hidden=hidden,
        objects=[describe(row) for row in queryset[:LISTED_OBJECTS]],
        count=len(pks),
    )
