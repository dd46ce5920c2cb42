"""Keyset (cursor) pagination for the large tables, strict about its parameters.

The cursor holds the ordering key of the row at the edge of the page, e.g. ``(started_at, id)``, and
the next page is the rows strictly after that key::

    WHERE started_at <= :t AND (started_at < :t OR id < :id) ORDER BY started_at DESC, id DESC LIMIT :n

The first condition is a range on the ``started_at`` index; the ``id`` tie-break gives rows with the
same timestamp a fixed order, so every row is seen exactly once in either direction, even when many
share a timestamp and rows are inserted meanwhile. No OFFSET and no COUNT are ever run.

DRF's own ``CursorPagination`` keeps only the first field plus an offset among ties, and skips rows
when the direction changes inside a run of ties; this class keeps its URL parameters and schema.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q, QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.utils.urls import remove_query_param, replace_query_param


class KeysetCursorPagination(CursorPagination):
    """``?limit=`` (1..500, default 50) and ``?cursor=``; a bad value is a 400 naming it.

    ``ordering`` must end with a unique field so that the key of a row is unique.
    """

    page_size = 50
    max_page_size = 500
    page_size_query_param = "limit"
    cursor_query_param = "cursor"
    ordering: Any = ("-started_at", "-id")

    # --- parameters ---------------------------------------------------------------------------------

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None or raw == "":
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            raise ValidationError({self.page_size_query_param: ["must be a whole number"]}) from None
        if not 1 <= size <= self.max_page_size:
            raise ValidationError({self.page_size_query_param: [f"must be between 1 and {self.max_page_size}"]})
        return size

    def _invalid_cursor(self) -> ValidationError:
        return ValidationError({self.cursor_query_param: ["invalid cursor"]})

    def _decode(self, request: Request, queryset: QuerySet[Any]) -> tuple[list[Any], bool] | None:
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None:
            return None
        try:
            token = json.loads(base64.urlsafe_b64decode(encoded.encode("ascii")))
            raw_key, reverse = token["k"], bool(token.get("r", False))
            if not isinstance(raw_key, list) or len(raw_key) != len(self.ordering):
                raise ValueError("wrong key length")
            model = queryset.model
            key = [
                model._meta.get_field(name.lstrip("-")).to_python(value)
                for name, value in zip(self.ordering, raw_key, strict=True)
            ]
        except (ValueError, TypeError, KeyError, UnicodeError, binascii.Error, DjangoValidationError):
            raise self._invalid_cursor() from None
        if any(value is None for value in key):
            raise self._invalid_cursor()
        return key, reverse

    def _encode(self, row: Any, *, reverse: bool) -> str:
        key = []
        for name in self.ordering:
            value = getattr(row, name.lstrip("-"))
            key.append(value.isoformat() if hasattr(value, "isoformat") else str(value))
        token = json.dumps({"k": key, "r": int(reverse)}, separators=(",", ":"))
        encoded = base64.urlsafe_b64encode(token.encode("ascii")).decode("ascii")
        return str(replace_query_param(self.base_url or "", self.cursor_query_param, encoded))

    # --- the page -------------------------------------------------------------------------------------

    def _after(self, key: list[Any], *, reverse: bool) -> Q:
        """Rows strictly after ``key`` in the walking order (lexicographic over the ordering fields)."""
        names = [name.lstrip("-") for name in self.ordering]
        descending = [name.startswith("-") for name in self.ordering]
        ops = ["lt" if desc != reverse else "gt" for desc in descending]
        condition = Q()
        for i in range(len(names)):
            term = Q(**{f"{names[i]}__{ops[i]}": key[i]})
            for j in range(i):
                term &= Q(**{names[j]: key[j]})
            condition |= term
        # The redundant bound on the first field is what lets the database range-scan its index.
        return Q(**{f"{names[0]}__{ops[0]}e": key[0]}) & condition

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list[Any] | None:
        self.request = request
        self.page_size = self.get_page_size(request)
        self.base_url = request.build_absolute_uri()
        decoded = self._decode(request, queryset)
        key, reverse = decoded if decoded is not None else (None, False)
        order = [name if not reverse else (name[1:] if name.startswith("-") else f"-{name}") for name in self.ordering]
        queryset = queryset.order_by(*order)
        if key is not None:
            queryset = queryset.filter(self._after(key, reverse=reverse))
        rows = list(queryset[: self.page_size + 1])
        more = len(rows) > self.page_size
        rows = rows[: self.page_size]
        if reverse:
            rows.reverse()
            self.has_previous, self.has_next = more, True
        else:
            self.has_previous, self.has_next = key is not None, more
        self.page = rows
        return rows

    def get_next_link(self) -> str | None:
        if not self.has_next:
            return None
        if not self.page:
            # A backwards walk that found nothing: start again from the top.
            return str(remove_query_param(self.base_url or "", self.cursor_query_param))
        return self._encode(self.page[-1], reverse=False)

    def get_previous_link(self) -> str | None:
        if not self.has_previous or not self.page:
            return None
        return self._encode(self.page[0], reverse=True)


class ExecutionCursorPagination(KeysetCursorPagination):
    ordering = ("-started_at", "-id")


class OpportunityCursorPagination(KeysetCursorPagination):
    ordering = ("-detected_at", "-id")


class OrderCursorPagination(KeysetCursorPagination):
    # The primary key is indexed, unique, and grows with creation time.
    ordering = ("-id",)
