from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from arbitragex import crypto, display
from arbitragex.fields import MoneyField
from marketdata.models import Venue
from trading.client_ids import uuid7
from trading.enums import (
    AccountMode,
    ExecutionPolicy,
    ExecutionStatus,
    IncidentKind,
    LegFailurePolicy,
    OpportunityStatus,
    OrderLeg,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)


class ExchangeAccount(models.Model):
    """An account on a venue. The API secret is stored encrypted and never shown back in full."""

    name = models.CharField(max_length=100, unique=True)
    venue = models.ForeignKey(Venue, on_delete=models.PROTECT, related_name="accounts")
    mode = models.CharField(max_length=8, choices=AccountMode.choices, default=AccountMode.PAPER)
    enabled = models.BooleanField(default=True)
    api_key = models.CharField(max_length=128, blank=True)
    api_secret_encrypted = models.TextField(blank=True, editable=False)
    # OKX (and a few other venues) sign with a third credential, the passphrase chosen with the key.
    api_passphrase_encrypted = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def set_api_secret(self, secret: str) -> None:
        self.api_secret_encrypted = crypto.encrypt(secret) if secret else ""

    def get_api_secret(self) -> str:
        return crypto.decrypt(self.api_secret_encrypted) if self.api_secret_encrypted else ""

    @property
    def api_secret_masked(self) -> str:
        return crypto.mask(self.get_api_secret()) if self.api_secret_encrypted else ""

    def set_api_passphrase(self, passphrase: str) -> None:
        self.api_passphrase_encrypted = crypto.encrypt(passphrase) if passphrase else ""

    def get_api_passphrase(self) -> str:
        return crypto.decrypt(self.api_passphrase_encrypted) if self.api_passphrase_encrypted else ""

    @property
    def api_passphrase_masked(self) -> str:
        """Whether a passphrase is stored, never any of it: a passphrase is short, so even its end would tell."""
        return "••••••••" if self.api_passphrase_encrypted else ""


class ArbitrageOpportunity(models.Model):
    """A detected cross-venue spread, recorded whether it was taken or rejected (and why)."""

    symbol = models.CharField(max_length=32)
    buy_venue = models.ForeignKey(Venue, on_delete=models.PROTECT, related_name="+")
    sell_venue = models.ForeignKey(Venue, on_delete=models.PROTECT, related_name="+")
    buy_price = MoneyField()
    sell_price = MoneyField()
    buy_qty_available = MoneyField(default=0)
    sell_qty_available = MoneyField(default=0)
    quantity = MoneyField()
    gross_rate = MoneyField()
    net_rate = MoneyField()
    estimated_profit = MoneyField()
    detected_at = models.DateTimeField()
    buy_quote_age_ms = models.PositiveIntegerField(default=0)
    sell_quote_age_ms = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=OpportunityStatus.choices, default=OpportunityStatus.DETECTED)
    reject_code = models.PositiveIntegerField(null=True, blank=True)
    reject_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        verbose_name_plural = "arbitrage opportunities"
        ordering = ["-detected_at"]
        indexes = [
            models.Index(fields=["-detected_at"], name="opp_detected_idx"),
            models.Index(fields=["symbol", "-detected_at"], name="opp_symbol_detected_idx"),
            models.Index(fields=["status", "-detected_at"], name="opp_status_detected_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(buy_price__gt=0) & Q(sell_price__gt=0) & Q(quantity__gt=0), name="opp_positive"
            ),
            models.CheckConstraint(condition=~Q(buy_venue=F("sell_venue")), name="opp_distinct_venues"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.buy_venue_id}->{self.sell_venue_id} {display.bps(self.net_rate)}"


class TradeExecution(models.Model):
    """One arbitrage: a buy leg on one venue and a sell leg on another, followed to the end."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    opportunity = models.ForeignKey(
        ArbitrageOpportunity, null=True, blank=True, on_delete=models.SET_NULL, related_name="executions"
    )
    symbol = models.CharField(max_length=32)
    base_asset = models.CharField(max_length=16)
    quote_asset = models.CharField(max_length=16)
    buy_account = models.ForeignKey(ExchangeAccount, on_delete=models.PROTECT, related_name="+")
    sell_account = models.ForeignKey(ExchangeAccount, on_delete=models.PROTECT, related_name="+")
    buy_venue = models.ForeignKey(Venue, on_delete=models.PROTECT, related_name="+")
    sell_venue = models.ForeignKey(Venue, on_delete=models.PROTECT, related_name="+")
    buy_price = MoneyField()
    sell_price = MoneyField()
    quantity = MoneyField()
    expected_profit = MoneyField(default=0)
    actual_profit = MoneyField(null=True, blank=True)
    fees_quote = MoneyField(null=True, blank=True, help_text="All fees in the quote asset.")
    profit_diff_fees = MoneyField(null=True, blank=True)
    profit_diff_slippage = MoneyField(null=True, blank=True)
    profit_diff_latency = MoneyField(null=True, blank=True)
    residual_qty = MoneyField(default=0, help_text="Base-asset exposure left unhedged (signed).")
    status = models.CharField(max_length=16, choices=ExecutionStatus.choices, default=ExecutionStatus.PENDING)
    leg_failure_policy = models.CharField(
        max_length=8, choices=LegFailurePolicy.choices, default=LegFailurePolicy.UNWIND
    )
    # db_default too: rows written outside the ORM (bulk loads, the API benchmark's seed) get them.
    policy = models.CharField(
        max_length=16, choices=ExecutionPolicy.choices, default=ExecutionPolicy.SIMULTANEOUS,
        db_default=ExecutionPolicy.SIMULTANEOUS,
        help_text="How the legs were sent (SystemConfig execution_policy, per venue pair).",
    )  # fmt: skip
    first_leg = models.CharField(
        max_length=1, choices=OrderLeg.choices, blank=True, default="", db_default="",
        help_text="Sequential policy: the leg sent first (the fragile one); the hedge waits for its fill.",
    )  # fmt: skip
    band_bps = MoneyField(default=0, db_default=0, help_text="The slippage band of each leg's limit price, in bps.")
    error_code = models.PositiveIntegerField(null=True, blank=True)
    error_message = models.TextField(blank=True)
    # Reserved amounts, released or settled at finalisation.
    reserved_quote = MoneyField(default=0)
    reserved_base = MoneyField(default=0)
    is_manual = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    detected_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    filled_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            # Covers the statistics aggregate (trading.statistics.execution_statistics_report): a range
            # of started_at is then read from the index alone, without visiting a row per execution.
            models.Index(
                fields=["-started_at"],
                name="exec_started_idx",
                include=["id", "status", "expected_profit", "actual_profit", "fees_quote"],
            ),
            models.Index(fields=["status", "-started_at"], name="exec_status_started_idx"),
            models.Index(fields=["symbol", "-started_at"], name="exec_symbol_started_idx"),
            # The day's settlements (config.operations.operations_overview): a range of completed_at.
            models.Index(fields=["completed_at"], name="exec_completed_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(buy_price__gt=0) & Q(sell_price__gt=0) & Q(quantity__gt=0), name="exec_positive"
            ),
            models.CheckConstraint(
                condition=Q(reserved_quote__gte=0) & Q(reserved_base__gte=0), name="exec_reserved_non_negative"
            ),
            models.CheckConstraint(condition=~Q(buy_account=F("sell_account")), name="exec_distinct_accounts"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.id}"


class Order(models.Model):
    execution = models.ForeignKey(TradeExecution, on_delete=models.PROTECT, related_name="orders")
    account = models.ForeignKey(ExchangeAccount, on_delete=models.PROTECT, related_name="orders")
    venue = models.ForeignKey(Venue, on_delete=models.PROTECT, related_name="orders")
    leg = models.CharField(max_length=1, choices=OrderLeg.choices)
    attempt = models.PositiveSmallIntegerField(default=0)
    client_order_id = models.CharField(max_length=36, unique=True)
    exchange_order_id = models.CharField(max_length=64, blank=True)
    symbol = models.CharField(max_length=32)
    side = models.CharField(max_length=4, choices=OrderSide.choices)
    type = models.CharField(max_length=8, choices=OrderType.choices, default=OrderType.LIMIT)
    time_in_force = models.CharField(max_length=3, choices=TimeInForce.choices, blank=True, default="")
    price = MoneyField(null=True, blank=True)
    quantity = MoneyField()
    filled_qty = MoneyField(default=0)
    cumulative_quote = MoneyField(default=0)
    avg_price = MoneyField(null=True, blank=True)
    fee_quote = MoneyField(default=0, help_text="Fees of the fills so far, in the quote asset.")
    status = models.CharField(max_length=16, choices=OrderStatus.choices, default=OrderStatus.PENDING)
    last_update_ms = models.BigIntegerField(default=0, help_text="Venue time of the last applied update.")
    error_code = models.IntegerField(null=True, blank=True)
    error_message = models.TextField(blank=True)
    place_attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Claims to send it so far: the fencing number a send must still hold."
    )
    adopted_from = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="adopted",
        help_text="A venue order under this order's client id that we did not place knowingly (a duplicate).",
    )
    send_deadline = models.DateTimeField(
        null=True, blank=True, help_text="After this, the venue refuses the last claim's send (its recvWindow)."
    )
    held = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Sequential policy's hedge: not sent until the first leg's fill is known.",
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    filled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["execution", "side"], name="order_execution_side_idx"),
            models.Index(fields=["status", "account", "symbol"], name="order_status_acct_sym_idx"),
            models.Index(fields=["symbol", "-created_at"], name="order_symbol_created_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_quantity_positive"),
            models.CheckConstraint(
                condition=Q(filled_qty__gte=0) & Q(filled_qty__lte=F("quantity")), name="order_filled_within_qty"
            ),
            models.CheckConstraint(condition=Q(price__isnull=True) | Q(price__gt=0), name="order_price_positive"),
        ]

    def __str__(self) -> str:
        return self.client_order_id


class Fill(models.Model):
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="fills")
    trade_id = models.CharField(max_length=64)
    price = MoneyField()
    qty = MoneyField()
    quote_qty = MoneyField()
    commission = MoneyField(default=0)
    commission_asset = models.CharField(max_length=16, blank=True)
    commission_rate_to_quote = MoneyField(
        null=True, blank=True, help_text="Price of the commission asset in the quote asset at fill time."
    )
    commission_quote = MoneyField(default=0)
    is_maker = models.BooleanField(default=False)
    filled_at = models.DateTimeField()
    book_age_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="Paper venue: how old the book this fill met was (ms); empty from real venues."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["filled_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["order", "trade_id"], name="fill_unique_trade_per_order"),
            models.CheckConstraint(
                condition=Q(price__gt=0) & Q(qty__gt=0) & Q(commission__gte=0), name="fill_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}#{self.trade_id}"


class AccountBalance(models.Model):
    account = models.ForeignKey(ExchangeAccount, on_delete=models.CASCADE, related_name="balances")
    asset = models.CharField(max_length=16)
    free = MoneyField(default=0)
    locked = MoneyField(default=0)
    reserved = MoneyField(default=0, help_text="Held locally for executions not yet placed.")
    updated_at = models.DateTimeField(auto_now=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    synced_at_venue = models.DateTimeField(
        null=True, blank=True, help_text="When the last sync's read started, on the venue's clock (fill times are)."
    )

    class Meta:
        ordering = ["account", "asset"]
        constraints = [
            models.UniqueConstraint(fields=["account", "asset"], name="balance_unique_asset"),
            models.CheckConstraint(
                condition=Q(free__gte=0) & Q(locked__gte=0) & Q(reserved__gte=0), name="balance_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id}:{self.asset}"

    @property
    def available(self):
        return self.free - self.reserved


class Incident(models.Model):
    """A difference found by reconciliation or a leg failure, kept for an operator."""

    kind = models.CharField(max_length=32, choices=IncidentKind.choices)
    account = models.ForeignKey(ExchangeAccount, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    execution = models.ForeignKey(
        TradeExecution, null=True, blank=True, on_delete=models.SET_NULL, related_name="incidents"
    )
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    asset = models.CharField(max_length=16, blank=True)
    symbol = models.CharField(max_length=32, blank=True)
    local_value = models.CharField(max_length=100, blank=True)
    venue_value = models.CharField(max_length=100, blank=True)
    drift = MoneyField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    detected_at = models.DateTimeField(auto_now_add=True, db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.TextField(blank=True, help_text="How it was resolved: by whom, or what made its cause go.")

    class Meta:
        ordering = ["-detected_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.detected_at:%Y-%m-%d %H:%M}"


PAPER_OPEN_STATUSES = (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED)


class PaperOrder(models.Model):
    """An order as the simulated venue of a paper account knows it (its ``orderId`` is the pk).

    This is the venue's side of the story, not the platform's ``Order``: resting paper orders live
    here so that they survive restarts and are matched when the cached book crosses them.
    """

    account = models.ForeignKey(ExchangeAccount, on_delete=models.CASCADE, related_name="paper_orders")
    symbol = models.CharField(max_length=32)
    client_order_id = models.CharField(max_length=36)
    side = models.CharField(max_length=4, choices=OrderSide.choices)
    type = models.CharField(max_length=8, choices=OrderType.choices)
    time_in_force = models.CharField(max_length=3, choices=TimeInForce.choices, blank=True, default="")
    price = MoneyField(null=True, blank=True)
    quantity = MoneyField()
    filled_qty = MoneyField(default=0)
    cumulative_quote = MoneyField(default=0)
    locked = MoneyField(default=0, help_text="What the order still holds: quote for a buy, base for a sell.")
    status = models.CharField(max_length=16, choices=OrderStatus.choices)
    matched_book = models.CharField(
        max_length=64, blank=True, help_text="Version of the last book it took liquidity from."
    )
    created_ms = models.BigIntegerField()
    updated_ms = models.BigIntegerField()

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["account", "symbol", "status"], name="paperorder_acct_sym_status_idx"),
            models.Index(fields=["symbol", "status"], name="paperorder_symbol_status_idx"),
            models.Index(fields=["account", "symbol", "client_order_id"], name="paperorder_acct_sym_client_idx"),
        ]
        constraints = [
            # Binance keeps a client order id unique among the open orders only.
            models.UniqueConstraint(
                fields=["account", "symbol", "client_order_id"],
                condition=Q(status__in=PAPER_OPEN_STATUSES),
                name="paperorder_open_client_id_unique",
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="paperorder_quantity_positive"),
            models.CheckConstraint(
                condition=Q(filled_qty__gte=0) & Q(filled_qty__lte=F("quantity")),
                name="paperorder_filled_within_qty",
            ),
            models.CheckConstraint(condition=Q(locked__gte=0), name="paperorder_locked_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.client_order_id} #{self.pk}"


class PaperFill(models.Model):
    """One trade of a paper order; its pk is the ``tradeId``."""

    order = models.ForeignKey(PaperOrder, on_delete=models.CASCADE, related_name="fills")
    price = MoneyField()
    qty = MoneyField()
    commission = MoneyField(default=0)
    commission_asset = models.CharField(max_length=16)
    is_maker = models.BooleanField(default=False)
    time_ms = models.BigIntegerField()
    book_age_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Age of the book met (ms).")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(price__gt=0) & Q(qty__gt=0) & Q(commission__gte=0), name="paperfill_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}#{self.pk}"


class ExecutionDayRollup(models.Model):
    """The statistics figures of one UTC day and symbol, over its executions in a final status.

    Written by ``trading.rollup.execution_rollups_refresh`` for days that ended a while ago, and read
    by ``trading.statistics.execution_statistics_report`` in place of those executions. Executions not
    yet final (open, or NEEDS_ATTENTION) are never in a row: the report reads them live. A day has
    rows for all its symbols or none; it loses them all when one of its executions becomes final.
    """

    day = models.DateField()
    symbol = models.CharField(max_length=32)
    total = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    settled = models.PositiveIntegerField(default=0, help_text="With an actual profit recorded.")
    wins = models.PositiveIntegerField(default=0, help_text="With an actual profit above zero.")
    expected_profit = MoneyField(default=0)
    actual_profit = MoneyField(default=0)
    fees_quote = MoneyField(default=0)
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["-day", "symbol"]
        constraints = [models.UniqueConstraint(fields=["day", "symbol"], name="exec_rollup_day_symbol_uniq")]

    def __str__(self) -> str:
        return f"{self.day} {self.symbol}"


class ReplayReport(models.Model):
    """A ``manage.py replay`` run: its parameters, the best grid point's figures and the self-contained HTML
    report, kept for the admin to list and show."""

    created_at = models.DateTimeField(auto_now_add=True)
    source = models.CharField(max_length=64, help_text="captures, or a simulator profile (demo, realistic)")
    symbol = models.CharField(max_length=32)
    seed = models.IntegerField()
    parameters = models.JSONField(default=dict)
    grid_points = models.PositiveIntegerField(default=1)
    best = models.JSONField(default=dict, help_text="The best grid point: its overrides and figures.")
    pnl = MoneyField(default=0, help_text="PnL of the best grid point, in the quote asset.")
    html = models.TextField()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"replay {self.pk} of {self.source} {self.symbol} (seed {self.seed})"
