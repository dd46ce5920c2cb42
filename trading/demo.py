"""The demo setup of the embedded default: two simulated venues, two symbols, two paper accounts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction

from arbitragex.models import SystemConfig
from arbitragex.services import config_seed_defaults, config_set
from marketdata.models import Instrument, Venue
from risk.models import GLOBAL_SCOPE, RiskState
from trading.enums import AccountMode
from trading.models import AccountBalance, ExchangeAccount

D = Decimal

# Realistic Binance spot filters (exchangeInfo, 2024-2026) and the standard 0.1% taker fee.
DEMO_INSTRUMENTS: dict[str, dict[str, Any]] = {
    "BTCUSDT": {"base_asset": "BTC", "quote_asset": "USDT", "tick_size": D("0.01"), "step_size": D("0.00001"),
                "min_qty": D("0.00001"), "max_qty": D("9000"), "min_notional": D("5")},
    "ETHUSDT": {"base_asset": "ETH", "quote_asset": "USDT", "tick_size": D("0.01"), "step_size": D("0.0001"),
                "min_qty": D("0.0001"), "max_qty": D("9000"), "min_notional": D("5")},
}  # fmt: skip
DEMO_VENUES: dict[str, dict[str, Any]] = {
    "sim-a": {"name": "Simulated venue A", "taker": D("0.001"), "maker": D("0.001")},
    "sim-b": {"name": "Simulated venue B", "taker": D("0.00075"), "maker": D("0.00075")},
}
DEMO_BALANCES = {"USDT": D("100000"), "BTC": D("2"), "ETH": D("40")}
# What the demo desk runs with, where the registry's default is not what a desk would pick on these venues:
# the fragile leg first, and a missed leg repaired by escalation (docs/benchmarks.md, execution quality).
DEMO_CONFIG: dict[str, Any] = {"execution_policy": "sequential", "leg_failure_policy": "escalate"}


@transaction.atomic
def demo_seed() -> bool:
    """Create the demo rows that are missing; never touches rows that exist. Returns whether it created any."""
    stored = set(SystemConfig.objects.filter(key__in=list(DEMO_CONFIG)).values_list("key", flat=True))
    for key, value in DEMO_CONFIG.items():
        if key not in stored:
            config_set(key=key, value=value)
    created_any = config_seed_defaults() > 0 or len(stored) < len(DEMO_CONFIG)
    for code, spec in DEMO_VENUES.items():
        venue, created = Venue.objects.get_or_create(
            code=code,
            defaults={"name": spec["name"], "kind": Venue.Kind.SIMULATED, "default_taker_fee": spec["taker"],
                      "default_maker_fee": spec["maker"]},
        )  # fmt: skip
        created_any |= created
        for symbol, filters in DEMO_INSTRUMENTS.items():
            _, created = Instrument.objects.get_or_create(
                venue=venue, symbol=symbol, defaults={**filters, "taker_fee": spec["taker"], "maker_fee": spec["maker"]}
            )
            created_any |= created
        account, created = ExchangeAccount.objects.get_or_create(
            name=f"paper-{code}", defaults={"venue": venue, "mode": AccountMode.PAPER}
        )
        created_any |= created
        if created:
            AccountBalance.objects.bulk_create(
                AccountBalance(account=account, asset=asset, free=amount) for asset, amount in DEMO_BALANCES.items()
            )
    _, created = RiskState.objects.get_or_create(
        account=GLOBAL_SCOPE,
        symbol="",
        defaults={"initial_equity": D("200000"), "current_equity": D("200000"), "peak_equity": D("200000")},
    )
    return created_any | created
