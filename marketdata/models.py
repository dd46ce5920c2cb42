from __future__ import annotations

from django.db import models
from django.db.models import Q

from arbitragex.fields import MoneyField


class Venue(models.Model):
    class Kind(models.TextChoices):
        BINANCE = "binance", "Binance (python-binance)"
        CCXT = "ccxt", "ccxt (OKX and any exchange ccxt supports)"
        SIMULATED = "simulated", "Simulated"

    code = models.SlugField(max_length=32, unique=True, help_text="Short name used in keys and client ids.")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SIMULATED)
    enabled = models.BooleanField(default=True)
    # Base URLs: blank means python-binance's production default. A testnet, Binance.US (tld) or a
    # local fake venue is configured here.
    rest_url = models.URLField(blank=True, help_text="REST base, e.g. https://testnet.binance.vision/api")
    stream_url = models.CharField(max_length=200, blank=True, help_text="Market stream base (ws:// or wss://).")
    ws_api_url = models.CharField(max_length=200, blank=True, help_text="WebSocket API URL (user data).")
    tld = models.CharField(max_length=8, default="com", help_text="'us' for Binance.US.")
    testnet = models.BooleanField(
        default=False,
        help_text="The venue's test environment: Binance's spot testnet; for a ccxt venue, ccxt's sandbox mode "
        "(OKX demo trading: every request carries x-simulated-trading: 1, and the account needs a demo key).",
    )
    # A ccxt venue: which ccxt exchange class, and where it is reached when not at the exchange's own URLs.
    ccxt_exchange = models.CharField(
        max_length=32, blank=True, help_text="ccxt exchange id of a ccxt venue: okx, binance, bybit..."
    )
    ccxt_urls = models.JSONField(
        default=dict,
        blank=True,
        help_text='Overrides deep-merged into ccxt\'s "urls" of a ccxt venue, e.g. {"api": {"rest": '
        '"https://eea.okx.com"}}. With a REST or stream URL set above, every ccxt URL is first moved to that '
        "host (its path kept).",
    )
    default_taker_fee = MoneyField(default=0)
    default_maker_fee = MoneyField(default=0)

    # Health, written by the stream process and the gateway.
    last_event_at = models.DateTimeField(null=True, blank=True)
    reconnect_count = models.PositiveIntegerField(default=0)
    used_weight = models.PositiveIntegerField(default=0)
    banned_until = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(default_taker_fee__gte=0)
                & Q(default_taker_fee__lt=1)
                & Q(default_maker_fee__gt=-1)
                & Q(default_maker_fee__lt=1),
                name="venue_fees_sane",
            )
        ]

    def __str__(self) -> str:
        return self.code


class Instrument(models.Model):
    """A symbol on a venue with the venue's filters and fees (from exchangeInfo, or seeded)."""

    venue = models.ForeignKey(Venue, on_delete=models.CASCADE, related_name="instruments")
    symbol = models.CharField(max_length=32)
    base_asset = models.CharField(max_length=16)
    quote_asset = models.CharField(max_length=16)
    enabled = models.BooleanField(default=True)
    status = models.CharField(max_length=16, default="TRADING")
    tick_size = MoneyField(help_text="PRICE_FILTER tickSize")
    step_size = MoneyField(help_text="LOT_SIZE stepSize")
    min_qty = MoneyField(default=0)
    max_qty = MoneyField(default=0, help_text="0 = no limit")
    min_notional = MoneyField(default=0)
    # PERCENT_PRICE_BY_SIDE (null where the venue has no such band): a buy's limit within
    # [reference x bid_down, reference x bid_up], a sell's within the ask multipliers.
    band_bid_up = MoneyField(null=True, blank=True, help_text="PERCENT_PRICE_BY_SIDE bidMultiplierUp")
    band_bid_down = MoneyField(null=True, blank=True, help_text="PERCENT_PRICE_BY_SIDE bidMultiplierDown")
    band_ask_up = MoneyField(null=True, blank=True, help_text="PERCENT_PRICE_BY_SIDE askMultiplierUp")
    band_ask_down = MoneyField(null=True, blank=True, help_text="PERCENT_PRICE_BY_SIDE askMultiplierDown")
    band_avg_price_mins = models.PositiveIntegerField(null=True, blank=True, help_text="avgPriceMins")
    taker_fee = MoneyField()
    maker_fee = MoneyField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["venue__code", "symbol"]
        constraints = [
            models.UniqueConstraint(fields=["venue", "symbol"], name="instrument_unique_per_venue"),
            models.CheckConstraint(
                condition=Q(tick_size__gt=0)
                & Q(step_size__gt=0)
                & Q(min_qty__gte=0)
                & Q(max_qty__gte=0)
                & Q(min_notional__gte=0),
                name="instrument_filters_positive",
            ),
            models.CheckConstraint(
                condition=Q(taker_fee__gte=0) & Q(taker_fee__lt=1) & Q(maker_fee__gt=-1) & Q(maker_fee__lt=1),
                name="instrument_fees_sane",
            ),
        ]
        indexes = [models.Index(fields=["symbol"], name="instrument_symbol_idx")]

    def __str__(self) -> str:
        return f"{self.symbol}@{self.venue.code}" if self.venue_id else self.symbol


class Kline(models.Model):
    """A one-minute candle per venue and symbol, aggregated from trades or quotes."""

    venue = models.ForeignKey(Venue, on_delete=models.CASCADE, related_name="klines")
    symbol = models.CharField(max_length=32)
    open_time = models.DateTimeField()
    open = MoneyField()
    high = MoneyField()
    low = MoneyField()
    close = MoneyField()
    volume = MoneyField(default=0)
    trades = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-open_time"]
        constraints = [
            models.UniqueConstraint(fields=["venue", "symbol", "open_time"], name="kline_unique_minute"),
            models.CheckConstraint(condition=Q(low__lte=models.F("high")), name="kline_low_below_high"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol}@{self.venue_id} {self.open_time:%Y-%m-%d %H:%M}"
