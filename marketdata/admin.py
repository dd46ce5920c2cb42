from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django import forms
from django.contrib import admin, messages
from django.core.validators import URLValidator
from django.db.models import QuerySet
from django.http import HttpRequest

from arbitragex.admin_display import FiguresAdminMixin
from arbitragex.admin_utils import LargeTableAdmin
from marketdata.admin_display import INSTRUMENT_FIGURES, KLINE_FIGURES, VENUE_FIGURES
from marketdata.models import Instrument, Kline, Venue
from venues.ccxt.exchange import exchange_known
from venues.registry import family_get


class InstrumentSymbolFilter(admin.SimpleListFilter):
    """The symbol filter of a large table, its choices from the instruments: Django's filter on a
    field lists the field's distinct values, a full scan of the table on every changelist page."""

    title = "symbol"
    parameter_name = "symbol"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        symbols = Instrument.objects.order_by("symbol").values_list("symbol", flat=True).distinct()
        return [(symbol, symbol) for symbol in symbols]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(symbol=value) if value else queryset


class InstrumentInline(FiguresAdminMixin, admin.TabularInline):
    model = Instrument
    figure_set = INSTRUMENT_FIGURES
    extra = 0
    fields = ["symbol", "enabled", "tick_size", "step_size", "min_qty", "min_notional", "taker_fee", "maker_fee"]
    show_change_link = True


class VenueForm(forms.ModelForm):
    """Base URLs must be URLs of the scheme python-binance uses them with (the model takes any text for
    the WebSocket ones, and ftp:// for REST)."""

    class Meta:
        model = Venue
        fields = ["code", "name", "kind", "enabled", "rest_url", "stream_url", "ws_api_url", "tld", "testnet",
                  "ccxt_exchange", "ccxt_urls", "default_taker_fee", "default_maker_fee"]  # fmt: skip

    def clean(self) -> dict[str, Any]:
        """A ccxt venue names an exchange ccxt has; its URL overrides are an object, as ccxt's ``urls`` is."""
        cleaned = super().clean() or {}
        exchange = (cleaned.get("ccxt_exchange") or "").strip()
        if cleaned.get("kind") == Venue.Kind.CCXT:
            if not exchange:
                self.add_error("ccxt_exchange", "A ccxt venue needs the ccxt exchange id (okx, binance, bybit...).")
            elif not exchange_known(exchange):
                self.add_error("ccxt_exchange", f"ccxt has no exchange {exchange!r} (ids are lower case: okx...).")
        urls = cleaned.get("ccxt_urls")
        if urls not in (None, "") and not isinstance(urls, dict):
            self.add_error("ccxt_urls", 'The URL overrides are a JSON object, e.g. {"api": {"rest": "https://..."}}.')
        cleaned["ccxt_exchange"] = exchange
        return cleaned

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        schemes = {"rest_url": ("http", "https"), "stream_url": ("ws", "wss"), "ws_api_url": ("ws", "wss")}
        for name, allowed in schemes.items():
            if name in self.fields:
                self.fields[name].validators.append(
                    URLValidator(schemes=list(allowed), message=f"Enter a {' or '.join(allowed)} URL.")
                )


@admin.register(Venue)
class VenueAdmin(FiguresAdminMixin, admin.ModelAdmin):
    form = VenueForm
    figure_set = VENUE_FIGURES
    list_display = ["code", "name", "kind", "enabled", "default_taker_fee", "default_maker_fee", "last_event_at",
                    "reconnect_count", "used_weight", "banned_until"]  # fmt: skip
    list_filter = ["kind", "enabled", "testnet"]
    search_fields = ["code", "name"]
    readonly_fields = ["last_event_at", "reconnect_count", "used_weight", "banned_until", "created_at", "updated_at"]
    inlines = [InstrumentInline]
    fieldsets = [
        (None, {"fields": ["code", "name", "kind", "enabled"]}),
        ("Connection", {"fields": ["rest_url", "stream_url", "ws_api_url", "tld", "testnet"]}),
        ("ccxt (venues of kind ccxt)", {"fields": ["ccxt_exchange", "ccxt_urls"]}),
        ("Fees", {"fields": ["default_taker_fee", "default_maker_fee"]}),
        ("Health", {"fields": ["last_event_at", "reconnect_count", "used_weight", "banned_until"]}),
        ("Audit", {"fields": ["created_at", "updated_at"]}),
    ]
    actions = ["test_connectivity"]

    @admin.action(description="Test connectivity")
    def test_connectivity(self, request: HttpRequest, queryset: QuerySet[Venue]) -> None:
        """The venue's public side (its family's check: ping, server time); an account's keys are tested
        from *Exchange accounts*."""
        for venue in queryset:
            check = family_get(venue.kind).connectivity_check
            if check is None:
                self.message_user(request, f"{venue.code}: a {venue.kind} venue has no connection to test",
                                  messages.WARNING)  # fmt: skip
                continue
            report = async_to_sync(check)(venue, None)
            self.message_user(request, report.summary(), messages.SUCCESS if report.ok else messages.ERROR)


@admin.register(Instrument)
class InstrumentAdmin(FiguresAdminMixin, admin.ModelAdmin):
    figure_set = INSTRUMENT_FIGURES
    list_display = ["symbol", "venue", "enabled", "status", "tick_size", "step_size", "min_qty", "min_notional",
                    "taker_fee", "maker_fee", "updated_at"]  # fmt: skip
    list_filter = ["venue", "enabled", "status", "quote_asset"]
    search_fields = ["symbol", "base_asset", "quote_asset"]
    readonly_fields = ["updated_at"]
    list_select_related = ["venue"]


@admin.register(Kline)
class KlineAdmin(FiguresAdminMixin, LargeTableAdmin):
    figure_set = KLINE_FIGURES
    list_display = ["open_time", "venue", "symbol", "open", "high", "low", "close", "volume", "trades"]
    list_filter = ["venue", InstrumentSymbolFilter]
    search_fields = ["symbol"]
    date_hierarchy = "open_time"
    list_select_related = ["venue"]
