from __future__ import annotations

from django.db import models
from django.db.models import Q

from arbitragex.fields import MoneyField

GLOBAL_SCOPE = "global"


class RiskState(models.Model):
    """Persisted risk figures and the circuit breaker for one scope.

    The scope is an account key (``global`` for the whole desk, else an exchange account id) and an
    optional symbol ("" = every symbol). risk sits below trading, so the account is a key, not a
    foreign key.
    """

    account = models.CharField(max_length=64, default=GLOBAL_SCOPE)
    symbol = models.CharField(max_length=32, blank=True, default="")
    initial_equity = MoneyField(default=0)
    current_equity = MoneyField(default=0)
    peak_equity = MoneyField(default=0)
    daily_pnl = MoneyField(default=0)
    consecutive_losses = models.PositiveIntegerField(default=0)
    total_trades = models.PositiveIntegerField(default=0)
    breaker_open = models.BooleanField(default=False)
    breaker_until = models.DateTimeField(null=True, blank=True)
    breaker_reason = models.CharField(max_length=200, blank=True)
    last_reset_date = models.DateField(null=True, blank=True)
    state_data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["account", "symbol"]
        constraints = [
            models.UniqueConstraint(fields=["account", "symbol"], name="risk_state_unique_scope"),
            models.CheckConstraint(
                condition=Q(initial_equity__gte=0) & Q(peak_equity__gte=0), name="risk_state_equity_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account}/{self.symbol or '*'}"

    @property
    def scope(self) -> str:
        return f"{self.account}:{self.symbol or '*'}"
