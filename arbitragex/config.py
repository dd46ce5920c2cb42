"""The registry of typed runtime settings that operators edit in the admin (``SystemConfig``).

Each key has a type, a default, bounds and a description. A value is validated against its key
before it is stored, so a bad value is refused with a message that says what is allowed. Reads go
through the cache (``system:config``), which is dropped whenever a value is saved.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from arbitragex.errors import ApplicationError, ErrorCode
from arbitragex.money import InvalidAmount, to_decimal

CACHE_KEY = "system:config"
CACHE_TTL = 300


@dataclass(frozen=True, slots=True)
class ConfigKey:
    name: str
    kind: str  # "bool" | "int" | "decimal" | "choice" | "str" | "pairs"
    default: Any
    description: str
    minimum: Decimal | int | None = None
    maximum: Decimal | int | None = None
    choices: tuple[str, ...] = ()

    def parse(self, raw: object) -> Any:
        """Turn a raw value (JSON value or form text) into the typed value, or raise ApplicationError."""
        try:
            value = _PARSERS[self.kind](self, raw)
        except (ValueError, TypeError, InvalidAmount) as exc:
            raise self._invalid(str(exc)) from None
        if self.minimum is not None and value < self.minimum:
            raise self._invalid(f"must be at least {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise self._invalid(f"must be at most {self.maximum}")
        return value

    def to_json(self, value: Any) -> Any:
        """Store decimals as strings so no float ever enters the JSON column."""
        return str(value) if self.kind == "decimal" else value

    def _invalid(self, why: str) -> ApplicationError:
        return ApplicationError(
            ErrorCode.INVALID_CONFIG,
            f"{self.name}: {why}",
            {"key": self.name, "kind": self.kind, "allowed": self.allowed()},
        )

    def allowed(self) -> str:
        if self.kind == "choice":
            return " | ".join(self.choices)
        bounds = []
        if self.minimum is not None:
            bounds.append(f">= {self.minimum}")
        if self.maximum is not None:
            bounds.append(f"<= {self.maximum}")
        return f"{self.kind} {' and '.join(bounds)}".strip()


def _parse_bool(key: ConfigKey, raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in {"true", "1", "yes", "on"}:
        return True
    if isinstance(raw, str) and raw.strip().lower() in {"false", "0", "no", "off"}:
        return False
    raise ValueError("must be true or false")


def _parse_int(key: ConfigKey, raw: object) -> int:
    if isinstance(raw, bool):
        raise ValueError("must be a whole number")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
        return int(raw.strip())
    raise ValueError("must be a whole number")


def _parse_decimal(key: ConfigKey, raw: object) -> Decimal:
    return to_decimal(raw, field=key.name)


def _parse_choice(key: ConfigKey, raw: object) -> str:
    if isinstance(raw, str) and raw in key.choices:
        return raw
    raise ValueError(f"must be one of {', '.join(key.choices)}")


def _parse_str(key: ConfigKey, raw: object) -> str:
    if not isinstance(raw, str) or len(raw) > 500:
        raise ValueError("must be text of at most 500 characters")
    return raw


EXECUTION_POLICIES = ("simultaneous", "sequential")
_VENUE_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


def parse_pair_policies(text: str) -> dict[tuple[str, str], str]:
    """``"binance>okx=sequential, okx>binance=simultaneous"`` as {(buy venue, sell venue): policy}."""
    pairs: dict[tuple[str, str], str] = {}
    for item in (part.strip() for part in text.replace(";", ",").split(",")):
        if not item:
            continue
        pair, _, policy = item.partition("=")
        buy, _, sell = pair.strip().partition(">")
        buy, sell, policy = buy.strip(), sell.strip(), policy.strip()
        if not (_VENUE_CODE.match(buy) and _VENUE_CODE.match(sell)) or policy not in EXECUTION_POLICIES:
            raise ValueError(
                f"{item!r} is not BUY_VENUE>SELL_VENUE=policy with a policy among {', '.join(EXECUTION_POLICIES)}"
            )
        pairs[(buy, sell)] = policy
    return pairs


def _parse_pairs(key: ConfigKey, raw: object) -> str:
    text = _parse_str(key, raw)
    pairs = parse_pair_policies(text)
    return ", ".join(f"{buy}>{sell}={policy}" for (buy, sell), policy in pairs.items())


_PARSERS: dict[str, Callable[[ConfigKey, object], Any]] = {
    "pairs": _parse_pairs,
    "bool": _parse_bool,
    "int": _parse_int,
    "decimal": _parse_decimal,
    "choice": _parse_choice,
    "str": _parse_str,
}

D = Decimal

REGISTRY: dict[str, ConfigKey] = {
    key.name: key
    for key in [
        ConfigKey("trading_enabled", "bool", True, "Kill switch: no new execution while false."),
        ConfigKey("auto_execute", "bool", True, "Create executions automatically from detected opportunities."),
        ConfigKey("min_profit_rate", "decimal", D("0.0005"), "Minimum net profit rate after both taker fees.",
                  D("-0.01"), D("1")),
        ConfigKey("max_notional", "decimal", D("1000"), "Maximum notional per trade, in the quote asset.",
                  D("0"), D("100000000")),
        ConfigKey("max_open_executions", "int", 3, "Maximum executions not yet terminal.", 0, 10000),
        ConfigKey("max_quote_age_ms", "int", 1500, "Quotes older than this are ignored.", 50, 600000),
        ConfigKey("price_band_bps", "int", 50, "Sanity band around the latest quotes for order prices.", 1, 10000),
        ConfigKey("debounce_change_bps", "int", 2,
                  "A persisting spread fires again only when its net rate moves by this much.", 0, 10000),
        ConfigKey("debounce_refire_ms", "int", 5000, "A persisting spread may fire again after this long.",
                  0, 3600000),
        ConfigKey("leg_timeout_s", "int", 10, "A leg still open after this long counts as failed.", 1, 3600),
        ConfigKey("leg_failure_policy", "choice", "unwind",
                  "What to do when one leg fills and the other fails. escalate: retry the missing leg within "
                  "retry_price_band_bps, then reprice it up to repair_loss_cap, then flatten at the market.",
                  choices=("unwind", "retry", "escalate", "alert")),
        ConfigKey("repair_loss_cap", "decimal", D("5"),
                  "escalate: the most (quote asset) the repriced missing leg may lose against its expected price "
                  "before the exposure is flattened at the market.", D("0"), D("1000000")),
        ConfigKey("retry_price_band_bps", "int", 20, "How far the retry leg may re-price.", 0, 10000),
        ConfigKey("retry_max_attempts", "int", 2, "Retry attempts for a missing leg.", 0, 10),
        ConfigKey("breaker_max_consecutive_losses", "int", 5, "Trip the breaker after this many losses in a row.",
                  1, 1000),
        ConfigKey("breaker_max_daily_loss", "decimal", D("100"), "Trip the breaker when the day's loss reaches this.",
                  D("0"), D("100000000")),
        ConfigKey("breaker_max_drawdown_rate", "decimal", D("0.05"), "Trip on this drawdown from peak equity.",
                  D("0"), D("1")),
        ConfigKey("breaker_cooldown_s", "int", 900, "How long a tripped breaker stays open.", 0, 604800),
        ConfigKey("reconcile_drift_threshold", "decimal", D("0.00000001"),
                  "Balance drift (in the asset) above which reconciliation trips the breaker.", D("0"), D("1000000")),
        ConfigKey("opportunity_expiry_s", "int", 60, "Detected opportunities older than this are expired.", 1, 86400),
        ConfigKey("execution_policy", "choice", "simultaneous",
                  "How the legs are sent. sequential: the fragile leg first (the venue and side that fill least "
                  "often in the desk's history), then the hedge within the band once its fill is known; a first "
                  "leg that does not fill costs nothing. simultaneous: both legs at once.",
                  choices=EXECUTION_POLICIES),
        ConfigKey("execution_policy_pairs", "pairs", "",
                  "Per venue pair overrides of execution_policy: BUY_VENUE>SELL_VENUE=policy, comma-separated."),
        ConfigKey("leg_band_max_bps", "decimal", D("2"),
                  "Largest slippage band on a leg's limit price beyond the detected touch, in bps.", D("0"), D("100")),
        ConfigKey("leg_band_volatility_share", "decimal", D("0.5"),
                  "The band is this share of the venues' recent one-minute range (bps), capped by leg_band_max_bps "
                  "and by half the edge above min_profit_rate, so a leg filled at its band still leaves that much.",
                  D("0"), D("10")),
        ConfigKey("pair_window_s", "int", 3600,
                  "The rolling window of a venue pair's execution quality (leg failures, legging losses).", 60, 604800),
        ConfigKey("pair_min_executions", "int", 10,
                  "A pair's leg-failure rate is judged once it has this many executions in the window.", 1, 100000),
        ConfigKey("pair_max_leg_failure_rate", "decimal", D("0.3"),
                  "A pair whose share of executions with a missed leg (unwound) exceeds this is paused.",
                  D("0"), D("1")),
        ConfigKey("pair_legging_loss_budget", "decimal", D("25"),
                  "A pair whose legging losses in the window exceed this (quote asset) is paused; 0: no budget.",
                  D("0"), D("100000000")),
        ConfigKey("pair_pause_s", "int", 900, "How long a pair paused by its execution quality stays paused.",
                  1, 604800),
        ConfigKey("detect_interval_ms", "int", 0,
                  "0: the stream prices a symbol as soon as a book changes. Else at most once per interval, as a "
                  "polling bot does (the execution-quality benchmark's taker baseline uses 1000).", 0, 60000),
        ConfigKey("leg_order_type", "choice", "limit",
                  "The legs' order type. limit: IOC limits at the touch widened by the band. market: market orders "
                  "on both legs, as a plain taker bot sends them (the execution-quality benchmark's baseline).",
                  choices=("limit", "market")),
        ConfigKey("min_expected_profit", "decimal", D("0"),
                  "Opportunities expected to make less than this (quote asset, after fees) are declined.",
                  D("0"), D("1000000")),
        ConfigKey("cost_aware_firing", "bool", True,
                  "Take an opportunity only when p(complete) x edge beats p(legged) x the expected repair cost, "
                  "with each leg's fill probability and the repair cost learned per venue pair and side over "
                  "pair_window_s (declined opportunities say why)."),
        ConfigKey("firing_prior_fill_rate", "decimal", D("0.9"),
                  "Cost-aware firing: the fill probability a leg starts from before the pair has history (weighed "
                  "as four orders).", D("0.01"), D("1")),
        ConfigKey("paper_fill_latency_ms", "int", 0, "Simulated venue latency of the paper gateway.", 0, 60000),
        ConfigKey("paper_book", "choice", "live",
                  "The book paper orders fill against. live: the book as the stream holds it when the order "
                  "arrives (asked of the stream when the cached one is older than paper_book_max_age_ms), and "
                  "our own fills take its liquidity until the venue's next update. cached: whatever the cache "
                  "holds, never consumed (the behaviour before 2026-12, kept as a benchmark baseline).",
                  choices=("live", "cached")),
        ConfigKey("paper_book_max_age_ms", "int", 5,
                  "A cached book younger than this is used as it is; an older one is asked of the stream.", 0, 1000),
        ConfigKey("paper_book_wait_ms", "int", 50,
                  "How long a paper order waits for the stream's live book before it is refused unplaced.", 1, 5000),
        ConfigKey("statistics_rollup_delay_s", "int", 86400,
                  "A UTC day's final executions are rolled up for the statistics this long after the day ended.",
                  0, 2592000),
        ConfigKey("notify_window_s", "int", 900,
                  "Notifications with the same event key within this window after a message are held back "
                  "and sent as one 'N more since ...' message when it ends.", 0, 86400),
        ConfigKey("notify_residual_notional", "decimal", D("10"),
                  "Notify when an execution ends with residual exposure worth more than this (quote asset).",
                  D("0"), D("100000000")),
        ConfigKey("notify_unknown_order_minutes", "int", 5,
                  "Notify when an order is still UNKNOWN this many minutes after its last update.", 1, 10080),
        ConfigKey("notify_rate_limited_s", "int", 60,
                  "Notify when a venue's Retry-After holds calls back for longer than this.", 1, 86400),
        ConfigKey("notify_stream_stale_s", "int", 60,
                  "Notify when an enabled venue's stream has had no event for this long.", 5, 86400),
    ]
}  # fmt: skip


def get_key(name: str) -> ConfigKey:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ApplicationError(ErrorCode.UNKNOWN_CONFIG_KEY, f"unknown configuration key: {name}") from None


def defaults() -> dict[str, Any]:
    return {name: key.default for name, key in REGISTRY.items()}
