"""Numbers a person can read in the admin (``arbitragex.display``), declared once per model admin.

A model admin (or inline) names how each of its decimal fields is shown in a ``FigureSet``: a price at
its instrument's tick size, a quantity at its step size, money in an asset at that asset's precision, a
rate in basis points. ``FiguresAdminMixin`` then shows every such field through a display method of its
own (``<field>_shown``) wherever the field is read, never edited: the list columns, the read-only fields
of a change page, and every field of a view-only page or inline. An editable field keeps its input with
the exact value (only the padding zeros of DECIMAL(36,18) dropped): saving a form writes back what it
shows, so an input is never rounded. A shown figure carries the exact stored value as its tooltip.

The instruments are looked up by (venue, symbol) once per batch of rows, not per row: the admin's
queryset attaches them when it is evaluated (a changelist page, a change page's object, an inline's
rows), in one query through the loader the set was built with (``marketdata.admin_display``: the core
knows no model of the apps above it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any, ClassVar

from django import forms
from django.contrib import admin
from django.contrib.admin.options import InlineModelAdmin
from django.db import models
from django.db.models.query import ModelIterable, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from arbitragex import display
from arbitragex.money import fmt

__all__ = [
    "SELF",
    "BasisPoints",
    "ExactDecimalFormField",
    "FigureSet",
    "FiguresAdminMixin",
    "Increment",
    "InstrumentAt",
    "InstrumentFigures",
    "Key",
    "Money",
    "Price",
    "Quantity",
    "Rate",
    "shown_name",
]

# (venue id, symbol); a venue of None: the symbol on any venue (its assets are the same everywhere). The
# symbol "" with no venue: the desk, whose money is in the one quote asset all instruments share, if any.
Key = tuple[int | None, str]
SHOWN_SUFFIX = "_shown"
_ATTRIBUTE = "_arbx_figures"


@dataclass(frozen=True, slots=True)
class InstrumentFigures:
    """What showing a price, a quantity or an amount of an instrument needs."""

    tick_size: Decimal
    step_size: Decimal
    base_asset: str
    quote_asset: str


Loader = Callable[[set[Key]], Mapping[Key, InstrumentFigures]]


@dataclass(frozen=True, slots=True)
class InstrumentAt:
    """Where a row names its instrument: attribute paths (``__`` between relations, like a lookup) to
    the venue id and the symbol. ``venue=None``: the symbol on any venue."""

    venue: str | None
    symbol: str
    itself: bool = False


SELF = InstrumentAt(venue=None, symbol="", itself=True)  # the row is the instrument (its own tick and step)


def _path(obj: Any, path: str) -> Any:
    for part in path.split("__"):
        if obj is None:
            return None
        obj = getattr(obj, part)
    return obj


# --- how one field is shown --------------------------------------------------------------------------------------


class Figure:
    """How one field is shown, from its value and the row's instruments (by role)."""

    def text(self, value: Decimal, obj: Any, instruments: Mapping[str, InstrumentFigures | None]) -> str:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Price(Figure):
    """At the tick size of the row's instrument (named by its role); 8 places at most without one."""

    instrument: str = ""

    def text(self, value: Decimal, obj: Any, instruments: Mapping[str, InstrumentFigures | None]) -> str:
        found = instruments.get(self.instrument)
        return display.price(value, found.tick_size if found else 0)


@dataclass(frozen=True, slots=True)
class Quantity(Figure):
    """At the step size of the row's instrument; 8 places at most without one."""

    instrument: str = ""

    def text(self, value: Decimal, obj: Any, instruments: Mapping[str, InstrumentFigures | None]) -> str:
        found = instruments.get(self.instrument)
        return display.quantity(value, found.step_size if found else 0)


AssetOf = Callable[[Any, InstrumentFigures | None], str | None]


@dataclass(frozen=True, slots=True)
class Money(Figure):
    """An amount at the precision of its asset (2 places for USD-like assets, 8 for coins).

    The asset is the row's attribute at ``asset`` (a path), or what ``asset`` returns for the row and its
    instrument, else the instrument's quote asset; unknown: 8 places at most, without a unit."""

    asset: str | AssetOf | None = None
    instrument: str = ""
    unit: bool = True

    def text(self, value: Decimal, obj: Any, instruments: Mapping[str, InstrumentFigures | None]) -> str:
        found = instruments.get(self.instrument)
        if callable(self.asset):
            asset = self.asset(obj, found)
        elif self.asset:
            asset = _path(obj, self.asset)
        else:
            asset = None
        if not asset and found is not None:
            asset = found.quote_asset
        if not asset:
            return display.quantity(value, 0)
        return display.money(value, asset, with_asset=self.unit)


@dataclass(frozen=True, slots=True)
class Rate(Figure):
    """A fraction (a fee, a spread rate) in basis points to 2 places."""

    instrument: str = ""

    def text(self, value: Decimal, obj: Any, instruments: Mapping[str, InstrumentFigures | None]) -> str:
        return display.bps(value)


@dataclass(frozen=True, slots=True)
class BasisPoints(Figure):
    """A figure stored in basis points already (a band), to 2 places."""

    instrument: str = ""

    def text(self, value: Decimal, obj: Any, instruments: Mapping[str, InstrumentFigures | None]) -> str:
        return display.bps(value / 10_000)


@dataclass(frozen=True, slots=True)
class Increment(Figure):
    """A tick or step size itself: exact, without padding zeros (it is what the others round to)."""

    instrument: str = ""

    def text(self, value: Decimal, obj: Any, instruments: Mapping[str, InstrumentFigures | None]) -> str:
        return fmt(value) or "0"


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str):
        try:
            parsed = Decimal(value.strip())
        except InvalidOperation:
            return None
        return parsed if parsed.is_finite() else None
    return None


# --- a model admin's figures ---------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class FigureSet:
    """How the decimal fields of one model are shown, and where its rows name their instruments (by role:
    an execution has a ``buy`` and a ``sell`` one, an order just one, ``""``)."""

    fields: Mapping[str, Figure]
    instruments: Mapping[str, InstrumentAt] = field(default_factory=dict)
    loader: Loader | None = None

    def select_related(self) -> list[str]:
        """The relations the instrument paths go through, to be joined rather than fetched per row."""
        related = set()
        for where in self.instruments.values():
            for path in (where.venue, where.symbol):
                if path and "__" in path:
                    related.add(path.rsplit("__", 1)[0])
        return sorted(related)

    def _key(self, obj: Any, where: InstrumentAt) -> Key | None:
        symbol = _path(obj, where.symbol) if where.symbol else ""
        venue = _path(obj, where.venue) if where.venue else None
        if symbol is None or (where.venue and venue is None):
            return None
        return (venue, symbol)

    def attach(self, objects: Iterable[Any]) -> None:
        """Look the instruments of ``objects`` up in one call of the loader and keep them on each row."""
        rows = [obj for obj in objects if obj is not None]
        if not rows:
            return
        keyed: list[tuple[Any, dict[str, Key | None]]] = []
        wanted: set[Key] = set()
        for obj in rows:
            keys: dict[str, Key | None] = {}
            for role, where in self.instruments.items():
                if where.itself:
                    continue
                keys[role] = key = self._key(obj, where)
                if key is not None:
                    wanted.add(key)
            keyed.append((obj, keys))
        found: Mapping[Key, InstrumentFigures] = self.loader(wanted) if wanted and self.loader else {}
        for obj, keys in keyed:
            figures: dict[str, InstrumentFigures | None] = {
                role: found.get(key) if key is not None else None for role, key in keys.items()
            }
            for role, where in self.instruments.items():
                if where.itself:
                    figures[role] = InstrumentFigures(obj.tick_size, obj.step_size, obj.base_asset, obj.quote_asset)
            obj.__dict__[_ATTRIBUTE] = figures

    def instruments_of(self, obj: Any) -> Mapping[str, InstrumentFigures | None]:
        if _ATTRIBUTE not in obj.__dict__:
            self.attach([obj])  # a row that did not come through the admin's queryset: one lookup for it
        figures: Mapping[str, InstrumentFigures | None] = obj.__dict__[_ATTRIBUTE]
        return figures

    def text(self, obj: Any, name: str) -> str | None:
        """The field as shown, as plain text; None for no value."""
        raw = getattr(obj, name)
        if raw is None or raw == "":
            return None
        value = _decimal(raw)
        if value is None:
            return str(raw)  # a text field that holds something else than a number (a status)
        return self.fields[name].text(value, obj, self.instruments_of(obj))

    def html(self, obj: Any, name: str) -> str | SafeString | None:
        """The field as shown, with the exact stored value as its tooltip when it differs."""
        shown = self.text(obj, name)
        if shown is None:
            return None
        value = _decimal(getattr(obj, name))
        exact = fmt(value) if value is not None else None
        if exact is None or exact == shown.split(" ", 1)[0]:
            return shown
        return format_html('<span class="figure" title="{}">{}</span>', exact, shown)


def shown_name(name: str) -> str:
    return f"{name}{SHOWN_SUFFIX}"


def _display_method(figure_set: FigureSet, name: str) -> Callable[[Any, Any], Any]:
    @admin.display(description=name.replace("_", " "), ordering=name)
    def shown(self: Any, obj: Any) -> str | SafeString | None:
        return figure_set.html(obj, name)

    shown.__name__ = shown_name(name)
    return shown


class _AttachFigures:
    """A queryset that attaches its rows' instruments (one lookup) when it is evaluated."""

    _figure_set: ClassVar[FigureSet]

    def _fetch_all(self) -> None:
        fresh = self._result_cache is None  # type: ignore[attr-defined]
        super()._fetch_all()  # type: ignore[misc]
        if fresh and self._iterable_class is ModelIterable:  # type: ignore[attr-defined]
            self._figure_set.attach(self._result_cache)  # type: ignore[attr-defined]


@cache
def _attaching(queryset_class: type[QuerySet[Any]], figure_set: FigureSet) -> type[QuerySet[Any]]:
    return type(f"Figures{queryset_class.__name__}", (_AttachFigures, queryset_class), {"_figure_set": figure_set})


class ExactDecimalFormField(forms.DecimalField):
    """An editable decimal shown exactly, without DECIMAL(36,18)'s padding zeros ("0.001", not
    "0.001000000000000000"); never rounded: the form writes back what its input holds."""

    def prepare_value(self, value: Any) -> Any:
        return fmt(value) if isinstance(value, Decimal) and value.is_finite() else value


Names = Sequence[Any]


class FiguresAdminMixin:
    """For a ModelAdmin or an inline: its ``figure_set`` fields are shown through ``<field>_shown`` where
    they are read (list columns, read-only and view-only fields), and edited exactly where they are not."""

    figure_set: ClassVar[FigureSet | None] = None
    formfield_overrides: Any = {models.DecimalField: {"form_class": ExactDecimalFormField}}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        figure_set = cls.__dict__.get("figure_set")
        if figure_set is not None:
            for name in figure_set.fields:
                setattr(cls, shown_name(name), _display_method(figure_set, name))

    # --- where a field is read rather than edited ---

    def _figures_read_only(self, request: HttpRequest, obj: Any) -> bool:
        """Every field of the page (or inline) is read-only: a view-only page of an existing row. An add
        page is for editing, whatever the change permission says."""
        if obj is None:
            return False
        if not self.has_change_permission(request, obj):  # type: ignore[attr-defined]
            return True
        if isinstance(self, InlineModelAdmin):
            # The inlines of a page the user cannot change are read-only as well.
            parent = self.admin_site._registry.get(self.parent_model)
            return parent is not None and not parent.has_change_permission(request, obj)
        return False

    def _figures_map(self, names: Names, shown: set[str] | None) -> list[Any]:
        """``names`` with each figure field (all, or those in ``shown``) replaced by its display method,
        once: nested tuples (fields on one line) are mapped inside."""
        figure_set = self.figure_set
        seen: set[str] = set()

        def one(name: Any) -> Any:
            if isinstance(name, list | tuple):
                return type(name)(item for item in (one(n) for n in name) if item is not None)
            if (
                isinstance(name, str)
                and figure_set is not None
                and name in figure_set.fields
                and (shown is None or name in shown)
            ):
                name = shown_name(name)
            if isinstance(name, str):
                if name in seen:
                    return None
                seen.add(name)
            return name

        return [item for item in (one(n) for n in names) if item is not None]

    def _figures_shown(self, request: HttpRequest, obj: Any) -> set[str] | None:
        """The figure fields to show rather than edit: all of them (None) on a read-only page, else
        those declared read-only."""
        if self._figures_read_only(request, obj):
            return None
        return {name for name in super().get_readonly_fields(request, obj) if isinstance(name, str)}  # type: ignore[misc]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        names = list(super().get_readonly_fields(request, obj))  # type: ignore[misc]
        if self.figure_set is None:
            return names
        read_only = self._figures_read_only(request, obj)
        mapped = self._figures_map(names, None)
        if read_only:
            # Every display method is read-only, so none of them is asked of the form.
            mapped += [shown_name(n) for n in self.figure_set.fields if shown_name(n) not in mapped]
        return mapped

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        excluded = super().get_exclude(request, obj)  # type: ignore[misc]
        if self.figure_set is None:
            return excluded
        # The declared read-only figures are read through their display methods: their fields stay out of
        # the form, as Django keeps any read-only field out (and so the page keeps the declared order).
        declared = [n for n in super().get_readonly_fields(request, obj) if n in self.figure_set.fields]  # type: ignore[misc]
        if not declared:
            return excluded
        if excluded is None:  # Django then takes the form's own Meta.exclude: keep it
            excluded = getattr(getattr(self.form, "_meta", None), "exclude", None) or []  # type: ignore[attr-defined]
        return [*excluded, *declared]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        names = super().get_fields(request, obj)  # type: ignore[misc]
        if self.figure_set is None:
            return names
        return self._figures_map(names, self._figures_shown(request, obj))

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)  # type: ignore[misc]
        if self.figure_set is None:
            return fieldsets
        shown = self._figures_shown(request, obj)
        return [
            (title, {**options, "fields": self._figures_map(options.get("fields", ()), shown)})
            for title, options in fieldsets
        ]

    def get_list_display(self, request: HttpRequest) -> Any:
        names = super().get_list_display(request)  # type: ignore[misc]
        if self.figure_set is None:
            return names
        editable = set(getattr(self, "list_editable", ()) or ())
        return self._figures_map(names, set(self.figure_set.fields) - editable)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset: QuerySet[Any] = super().get_queryset(request)  # type: ignore[misc]
        if self.figure_set is None:
            return queryset
        related = self.figure_set.select_related()
        if related:
            queryset = queryset.select_related(*related)
        queryset.__class__ = _attaching(type(queryset), self.figure_set)
        return queryset
