"""Execution policies: how an opportunity's two legs are sent. Pure functions over plain values.

- **simultaneous**: both legs at once, each an IOC limit at the detected touch widened by the band.
- **sequential**: the fragile leg first (the lagging venue's, whose quote is the older; else the venue
  and side that fill least often in the desk's own history), then, once its fill is known, the hedge
  for what it filled, at its touch widened by the band. A first leg that does not fill costs nothing; a
  hedge rarely misses, since it goes to the venue that did not move.

The band is a share of the venues' recent one-minute range (their volatility), capped by
``leg_band_max_bps`` and by half the edge above the minimum profit rate, so that both legs filled at the
far end of their band still make that minimum.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext

from arbitragex.config import parse_pair_policies
from arbitragex.money import MONEY_CONTEXT, ONE, ZERO
from trading.enums import ExecutionPolicy, OrderLeg

__all__ = [
    "FiringOdds",
    "LegFillRate",
    "band_bps",
    "banded_price",
    "firing_odds",
    "first_leg_choose",
    "policy_for_pair",
]

BPS = Decimal(10_000)


def policy_for_pair(*, default: str, overrides: str, buy_venue: str, sell_venue: str) -> ExecutionPolicy:
    """The policy of a venue pair: its override in ``execution_policy_pairs``, else the default."""
    pairs = parse_pair_policies(overrides) if overrides else {}
    return ExecutionPolicy(pairs.get((buy_venue, sell_venue), default))


def band_bps(
    *,
    volatility_bps: Decimal | None,
    volatility_share: Decimal,
    max_bps: Decimal,
    net_rate: Decimal,
    min_profit_rate: Decimal,
) -> Decimal:
    """The slippage band of each leg, in bps (see the module docstring). Unknown volatility: the cap."""
    with localcontext(MONEY_CONTEXT):
        wanted = max_bps if volatility_bps is None else min(max_bps, volatility_share * volatility_bps)
        room = max(ZERO, (net_rate - min_profit_rate) * BPS / 2)
        return max(ZERO, min(wanted, room))


def banded_price(*, price: Decimal, side: str, band: Decimal, tick: Decimal) -> Decimal:
    """A leg's limit: a buy up to ``band`` bps above its touch, a sell down to as far below, on the tick
    grid, never on the wrong side of the touch."""
    with localcontext(MONEY_CONTEXT):
        if side == "BUY":
            limit = price * (ONE + band / BPS)
            return max(price, (limit / tick).to_integral_value(ROUND_FLOOR) * tick) if tick > 0 else limit
        limit = price * (ONE - band / BPS)
        return min(price, (limit / tick).to_integral_value(ROUND_CEILING) * tick) if tick > 0 else limit


@dataclass(frozen=True, slots=True)
class LegFillRate:
    """A venue and side's recent main-leg orders: how many were sent, how many filled in full."""

    sent: int
    filled: int

    def rate(self, prior_sent: int = 4, prior_filled: int = 3) -> Decimal:
        """Filled / sent with a weak prior (3 of 4), so a venue with no history is neither trusted nor
        shunned."""
        return Decimal(self.filled + prior_filled) / Decimal(self.sent + prior_sent)

    def rate_with_prior(self, prior_rate: Decimal, weight: int) -> Decimal:
        """Filled / sent, starting from ``prior_rate`` as if ``weight`` orders had been seen at it."""
        with localcontext(MONEY_CONTEXT):
            return (Decimal(self.filled) + prior_rate * weight) / Decimal(self.sent + weight)


LAG_MS = 5
"""Quote ages this far apart name the lagging venue."""


def first_leg_choose(
    *,
    buy_rate: LegFillRate,
    sell_rate: LegFillRate,
    buy_qty_available: Decimal | None,
    sell_qty_available: Decimal | None,
    buy_quote_age_ms: int | None = None,
    sell_quote_age_ms: int | None = None,
) -> OrderLeg:
    """The fragile leg, which goes first.

    A dislocation is mostly one venue lagging another: the lagging venue's quote is the older one and is
    about to catch up, so its leg is the one likely to miss. When the quotes' ages do not tell (within
    ``LAG_MS``), the leg that filled less often in the desk's history; then the thinner touch. (History
    alone would reinforce itself: a hedge is sent only after its first leg filled, so the leg sent first
    is the only one seen missing.)"""
    if (
        buy_quote_age_ms is not None
        and sell_quote_age_ms is not None
        and abs(buy_quote_age_ms - sell_quote_age_ms) >= LAG_MS
    ):
        return OrderLeg.BUY if buy_quote_age_ms > sell_quote_age_ms else OrderLeg.SELL
    buy, sell = buy_rate.rate(), sell_rate.rate()
    if buy != sell:
        return OrderLeg.BUY if buy < sell else OrderLeg.SELL
    if buy_qty_available is not None and sell_qty_available is not None and buy_qty_available != sell_qty_available:
        return OrderLeg.BUY if buy_qty_available < sell_qty_available else OrderLeg.SELL
    return OrderLeg.SELL


@dataclass(frozen=True, slots=True)
class FiringOdds:
    """What an opportunity is worth once the desk's own misses are counted (cost-aware firing).

    ``p_complete``: both legs fill; ``p_legged``: one leg fills and the other misses, which the repair
    pays for; the rest (the first leg misses, or both miss) costs nothing. The edge is the expected
    profit after fees; the repair cost what a legged execution of this size is expected to cost."""

    p_complete: Decimal
    p_legged: Decimal
    edge: Decimal
    repair_cost: Decimal

    @property
    def gain(self) -> Decimal:
        with localcontext(MONEY_CONTEXT):
            return self.p_complete * self.edge

    @property
    def loss(self) -> Decimal:
        with localcontext(MONEY_CONTEXT):
            return self.p_legged * self.repair_cost

    @property
    def fire(self) -> bool:
        """Fire only when the expected gain beats the expected repair cost."""
        return self.edge > 0 and self.gain > self.loss


def firing_odds(
    *,
    policy: ExecutionPolicy,
    first_leg: OrderLeg | None,
    p_buy: Decimal,
    p_sell: Decimal,
    edge: Decimal,
    repair_cost: Decimal,
) -> FiringOdds:
    """The odds of an opportunity under its policy, from each leg's fill probability on its venue and side.

    Simultaneous: both legs go out; a miss on either one alone legs the execution. Sequential: the hedge
    is sent only once the first leg filled, so only a missed hedge legs it; the first leg's own rate
    cancels out of the comparison, which becomes p(hedge) x edge > (1 - p(hedge)) x repair cost."""
    with localcontext(MONEY_CONTEXT):
        if policy == ExecutionPolicy.SEQUENTIAL and first_leg is not None:
            p_first, p_hedge = (p_buy, p_sell) if first_leg == OrderLeg.BUY else (p_sell, p_buy)
            return FiringOdds(p_first * p_hedge, p_first * (ONE - p_hedge), edge, repair_cost)
        return FiringOdds(p_buy * p_sell, p_buy * (ONE - p_sell) + p_sell * (ONE - p_buy), edge, repair_cost)
