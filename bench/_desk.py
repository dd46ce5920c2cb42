"""The trading desk of the flow benchmarks: Binance venues pointed at the fake venues, their
instruments, live accounts with funded balances, the risk state and the runtime config.

Rows are written with the ORM into the current (benchmark) database; the fake venues get the same
accounts, symbols and books through ``VenueHost.call("setup", ...)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

D = Decimal

# (symbol, base, quote, tick, step, reference price): filters as the fake venue's defaults.
SYMBOLS = [
    ("BTCUSDT", "BTC", "USDT", "0.01", "0.00001", "60000"),
    ("ETHUSDT", "ETH", "USDT", "0.01", "0.0001", "2600"),
    ("BNBUSDT", "BNB", "USDT", "0.01", "0.001", "600"),
    ("SOLUSDT", "SOL", "USDT", "0.01", "0.001", "150"),
    ("XRPUSDT", "XRP", "USDT", "0.0001", "0.1", "0.6"),
    ("ADAUSDT", "ADA", "USDT", "0.0001", "0.1", "0.4"),
    ("DOGEUSDT", "DOGE", "USDT", "0.00001", "1", "0.12"),
    ("TRXUSDT", "TRX", "USDT", "0.00001", "0.1", "0.13"),
    ("DOTUSDT", "DOT", "USDT", "0.001", "0.01", "5"),
    ("LINKUSDT", "LINK", "USDT", "0.01", "0.01", "11"),
    ("LTCUSDT", "LTC", "USDT", "0.01", "0.001", "70"),
    ("AVAXUSDT", "AVAX", "USDT", "0.01", "0.01", "25"),
    ("ATOMUSDT", "ATOM", "USDT", "0.001", "0.01", "5"),
    ("UNIUSDT", "UNI", "USDT", "0.001", "0.01", "7"),
    ("XLMUSDT", "XLM", "USDT", "0.00001", "1", "0.1"),
    ("BCHUSDT", "BCH", "USDT", "0.1", "0.001", "350"),
    ("FILUSDT", "FIL", "USDT", "0.001", "0.01", "4"),
    ("NEARUSDT", "NEAR", "USDT", "0.001", "0.1", "5"),
    ("APTUSDT", "APT", "USDT", "0.01", "0.01", "7"),
    ("ARBUSDT", "ARB", "USDT", "0.0001", "0.1", "0.6"),
]
TAKER_FEE = D("0.001")


@dataclass
class Desk:
    venues: list[Any]  # marketdata.models.Venue
    accounts: dict[str, list[Any]] = field(default_factory=dict)  # venue code -> ExchangeAccount rows
    keys: dict[int, tuple[int, str, str]] = field(default_factory=dict)  # account pk -> (venue index, key, secret)


def symbol_specs(count: int) -> list[dict[str, Any]]:
    """The first ``count`` symbols, as fake-venue symbol specs (min notional 5, like Binance)."""
    return [
        {"symbol": symbol, "base": base, "quote": quote, "tick_size": tick, "min_price": tick, "step_size": step,
         "min_qty": step, "max_qty": "9000000", "min_notional": "5"}
        for symbol, base, quote, tick, step, _ in SYMBOLS[:count]
    ]  # fmt: skip


def desk_create(
    venue_urls: list[dict[str, Any]],
    *,
    codes: list[str],
    symbols: int = 1,
    accounts_per_venue: int = 1,
    balances: dict[str, str] | None = None,
    equity: str = "10000000",
) -> Desk:
    """Venues ``codes`` (kind binance) at ``venue_urls``, the first ``symbols`` symbols on each, and
    ``accounts_per_venue`` live accounts per venue whose local balances are ``balances``."""
    from marketdata.models import Instrument, Venue
    from risk.models import GLOBAL_SCOPE, RiskState
    from trading.enums import AccountMode
    from trading.models import AccountBalance, ExchangeAccount

    balances = balances or {}
    desk = Desk(venues=[])
    for index, (code, urls) in enumerate(zip(codes, venue_urls, strict=True)):
        venue = Venue.objects.create(
            code=code, name=f"Bench {code}", kind=Venue.Kind.BINANCE, rest_url=urls["rest_url"],
            stream_url=urls["stream_url"], ws_api_url=urls["ws_api_url"], default_taker_fee=TAKER_FEE,
            default_maker_fee=TAKER_FEE,
        )  # fmt: skip
        desk.venues.append(venue)
        Instrument.objects.bulk_create(
            Instrument(venue=venue, symbol=symbol, base_asset=base, quote_asset=quote, tick_size=D(tick),
                       step_size=D(step), min_qty=D(step), max_qty=D("9000000"), min_notional=D(5),
                       taker_fee=TAKER_FEE, maker_fee=TAKER_FEE)
            for symbol, base, quote, tick, step, _ in SYMBOLS[:symbols]
        )  # fmt: skip
        desk.accounts[code] = []
        for number in range(accounts_per_venue):
            key, secret = f"bench-{code}-{number}-key", f"bench-{code}-{number}-secret"
            account = ExchangeAccount(name=f"{code}-{number}", venue=venue, mode=AccountMode.LIVE, api_key=key)
            account.set_api_secret(secret)
            account.save()
            desk.accounts[code].append(account)
            desk.keys[account.pk] = (index, key, secret)
            AccountBalance.objects.bulk_create(
                AccountBalance(account=account, asset=asset, free=D(amount)) for asset, amount in balances.items()
            )
    RiskState.objects.update_or_create(
        account=GLOBAL_SCOPE,
        symbol="",
        defaults={"initial_equity": D(equity), "current_equity": D(equity), "peak_equity": D(equity)},
    )
    return desk


def venue_accounts(desk: Desk, balances: dict[str, str]) -> list[dict[str, Any]]:
    """The desk's accounts as the fake venues' ``setup`` wants them."""
    return [
        {"venue": index, "api_key": key, "api_secret": secret, "balances": balances, "taker_rate": str(TAKER_FEE)}
        for index, key, secret in desk.keys.values()
    ]


def configure(**values: Any) -> None:
    """Set SystemConfig values (committed; the config cache is dropped on commit)."""
    from arbitragex.services import config_seed_defaults, config_set

    config_seed_defaults()
    for key, value in values.items():
        config_set(key=key, value=value)


def rate_limits_raise(codes: list[str], weight_per_minute: int) -> None:
    """Give the venues' shared rate limiters a larger budget (the per-order polling baseline would
    otherwise wait minutes for the weight window to roll over, which is the point it makes)."""
    from venues.ratelimit import RateLimiter

    for code in codes:
        RateLimiter(code, "public").configure(
            [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": weight_per_minute},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100_000},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 10_000_000},
                {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 10_000_000},
            ]
        )


def rate_limit_keys_drop(codes: list[str]) -> None:
    from django.conf import settings
    from django_redis import get_redis_connection

    redis = get_redis_connection("default")
    for code in codes:
        keys = list(redis.scan_iter(match=f"{settings.KEY_PREFIX}:rl:{code}:*"))
        if keys:
            redis.delete(*keys)
