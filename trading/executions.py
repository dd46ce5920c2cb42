"""Creating an execution: risk checks, then one transaction that reserves balances and writes the
execution and its two orders, then placement enqueued after commit (DESIGN.md, lifecycle step 3).

The quotes, the risk figures and the config are read before the transaction. The kill switch and
the breaker are checked on them first, so that a desk that is not trading takes no lock. Every
pre-trade check then runs once, in its usual order, inside the transaction, on the balances read
under their row locks and the open executions counted under them: two requests racing for one
balance serialise on its row, and the second sees what the first reserved. (Reading the balances
and the count a first time without locks cost two more round trips on the way to the venue.)
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext
from typing import Any

from django.db import transaction
from django.utils import timezone

from arbitragex.errors import ApplicationError, ErrorCode
from arbitragex.money import MONEY_CONTEXT, InvalidAmount, fmt, quantize_down, quantize_up, to_positive, to_storage
from arbitragex.services import audit_record, config_values
from marketdata import cache as quote_cache
from marketdata.cache import CachedQuote
from marketdata.models import Instrument, Venue
from risk.breaker import RiskFigures
from risk.checks import (
    PreTradeContext,
    check_breaker_closed,
    check_pair_open,
    check_price_band,
    check_trading_enabled,
    required_quote,
    run_pre_trade_checks,
)
from risk.selectors import risk_figures_get
from trading.client_ids import client_order_id, uuid7
from trading.effects import execution_published_on_commit, placement_due_on_commit
from trading.enums import (
    ExecutionPolicy,
    ExecutionStatus,
    LegFailurePolicy,
    OpportunityStatus,
    OrderLeg,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)
from trading.locks import balances_lock
from trading.models import AccountBalance, ArbitrageOpportunity, ExchangeAccount, Order, TradeExecution
from trading.pair_quality import pair_scope
from trading.pnl import expected_profit
from trading.policies import BPS, LegFillRate, band_bps, banded_price, firing_odds, first_leg_choose, policy_for_pair
from trading.policy_inputs import leg_fill_rates, pair_leg_fill_rates, pair_repair_history, recent_range_bps
from trading.selectors import accounts_for_venues, executions_open_count

__all__ = ["execution_create", "execution_create_from_opportunity"]


@dataclass(frozen=True, slots=True)
class _Leg:
    venue: Venue
    instrument: Instrument
    account: ExchangeAccount


@dataclass(frozen=True, slots=True)
class _Plan:
    symbol: str
    buy: _Leg
    sell: _Leg
    quantity: Decimal
    buy_price: Decimal
    sell_price: Decimal
    detected_at: datetime | None
    opportunity: ArbitrageOpportunity | None = None
    actor: Any = None


def execution_create_from_opportunity(*, opportunity: ArbitrageOpportunity) -> TradeExecution:
    """Execute a detected opportunity at its prices and size; raises ``ApplicationError`` to refuse it.

    The opportunity becomes TAKEN in the same transaction as the execution, and only from DETECTED,
    so one opportunity is executed at most once.
    """
    if opportunity.status != OpportunityStatus.DETECTED:
        raise ApplicationError(
            ErrorCode.CONFLICT,
            f"opportunity {opportunity.pk} is {opportunity.status}, not DETECTED",
            {"opportunity": opportunity.pk, "status": opportunity.status},
        )
    plan = _plan(
        symbol=opportunity.symbol,
        buy_venue=opportunity.buy_venue_id,
        sell_venue=opportunity.sell_venue_id,
        quantity=opportunity.quantity,
        buy_price=opportunity.buy_price,
        sell_price=opportunity.sell_price,
        detected_at=opportunity.detected_at,
        opportunity=opportunity,
    )
    return _execution_create(plan)


def execution_create(
    *,
    symbol: str,
    buy_venue: Venue | str,
    sell_venue: Venue | str,
    quantity: Decimal | str,
    buy_price: Decimal | str,
    sell_price: Decimal | str,
    actor: Any = None,
) -> TradeExecution:
    """A manual execution (the API's create): the same checks and transaction as an automatic one.

    Venues are rows or codes. The quantity is rounded down to both venues' step sizes, the buy price
    down and the sell price up to their tick sizes, so a rounded order never pays more or receives
    less than asked.
    """
    try:
        amounts = {
            "quantity": to_positive(quantity, field="quantity"),
            "buy_price": to_positive(buy_price, field="buy_price"),
            "sell_price": to_positive(sell_price, field="sell_price"),
        }
    except InvalidAmount as exc:
        raise ApplicationError(ErrorCode.INVALID_PARAMETER, str(exc)) from None
    plan = _plan(
        symbol=symbol.strip().upper(),
        buy_venue=_venue(buy_venue),
        sell_venue=_venue(sell_venue),
        quantity=amounts["quantity"],
        buy_price=amounts["buy_price"],
        sell_price=amounts["sell_price"],
        detected_at=None,
        actor=actor,
    )
    return _execution_create(plan)


def _venue(value: Venue | str) -> Venue:
    if isinstance(value, Venue):
        return value
    venue = Venue.objects.filter(code=value).first()
    if venue is None:
        raise ApplicationError(ErrorCode.INVALID_PARAMETER, f"unknown venue {value!r}", {"venue": value})
    return venue


def _venue_pk(venue: Venue | int) -> int:
    return venue.pk if isinstance(venue, Venue) else venue


def _legs(buy_venue: Venue | int, sell_venue: Venue | int, symbol: str) -> tuple[_Leg, _Leg]:
    """Both legs, from one query for the two instruments and one for the two venues' accounts (this
    runs on the path from a tick to the orders); checked buy leg first, as one leg at a time would be.

    Venues given by pk come with their instrument or account rows; they are read on their own only
    when a venue has neither (and the leg is refused)."""
    venue_ids = [_venue_pk(buy_venue), _venue_pk(sell_venue)]
    instruments = {
        instrument.venue_id: instrument
        for instrument in Instrument.objects.filter(venue_id__in=venue_ids, symbol=symbol, enabled=True).select_related(
            "venue"
        )
    }
    accounts = accounts_for_venues(venue_ids=venue_ids)
    venues = {venue.pk: venue for venue in (buy_venue, sell_venue) if isinstance(venue, Venue)}
    for rows in (instruments, accounts):
        for venue_id, row in rows.items():
            venues.setdefault(venue_id, row.venue)
    missing = [venue_id for venue_id in venue_ids if venue_id not in venues]
    if missing:
        venues.update(Venue.objects.in_bulk(missing))
    buy_id, sell_id = venue_ids
    return (
        _leg(venues[buy_id], symbol, "buy", instruments.get(buy_id), accounts.get(buy_id)),
        _leg(venues[sell_id], symbol, "sell", instruments.get(sell_id), accounts.get(sell_id)),
    )


def _leg(venue: Venue, symbol: str, side: str, instrument: Instrument | None, account: ExchangeAccount | None) -> _Leg:
    if not venue.enabled:
        raise ApplicationError(ErrorCode.INVALID_PARAMETER, f"venue {venue.code} is disabled", {"venue": venue.code})
    if instrument is None:
        raise ApplicationError(
            ErrorCode.INVALID_PARAMETER,
            f"{symbol} is not traded on {venue.code}",
            {"venue": venue.code, "symbol": symbol},
        )
    if account is None:
        raise ApplicationError(
            ErrorCode.INVALID_PARAMETER,
            f"no enabled account on {venue.code} for the {side} leg",
            {"venue": venue.code, "side": side},
        )
    return _Leg(venue=venue, instrument=instrument, account=account)


def _plan(
    *,
    symbol: str,
    buy_venue: Venue | int,
    sell_venue: Venue | int,
    quantity: Decimal,
    buy_price: Decimal,
    sell_price: Decimal,
    detected_at: datetime | None,
    opportunity: ArbitrageOpportunity | None = None,
    actor: Any = None,
) -> _Plan:
    if _venue_pk(buy_venue) == _venue_pk(sell_venue):
        raise ApplicationError(ErrorCode.INVALID_PARAMETER, "buy and sell venues must differ")
    buy, sell = _legs(buy_venue, sell_venue, symbol)
    if (buy.instrument.base_asset, buy.instrument.quote_asset) != (
        sell.instrument.base_asset,
        sell.instrument.quote_asset,
    ):
        raise ApplicationError(
            ErrorCode.INVALID_PARAMETER,
            f"{symbol} has different assets on {buy.venue.code} and {sell.venue.code}",
        )
    qty = quantize_down(quantize_down(quantity, buy.instrument.step_size), sell.instrument.step_size)
    rounded_buy = quantize_down(buy_price, buy.instrument.tick_size)
    rounded_sell = quantize_up(sell_price, sell.instrument.tick_size)
    for leg, price in ((buy, rounded_buy), (sell, rounded_sell)):
        rules = leg.instrument
        if qty <= 0 or qty < rules.min_qty or (rules.max_qty > 0 and qty > rules.max_qty):
            raise ApplicationError(
                ErrorCode.INVALID_QUANTITY,
                f"quantity {fmt(qty)} is outside the lot size of {symbol} on {leg.venue.code}",
                {"quantity": fmt(qty), "min_qty": fmt(rules.min_qty), "max_qty": fmt(rules.max_qty)},
            )
        if qty * price < rules.min_notional:
            raise ApplicationError(
                ErrorCode.INVALID_QUANTITY,
                f"notional {fmt(qty * price)} is below the minimum {fmt(rules.min_notional)} on {leg.venue.code}",
                {"notional": fmt(qty * price), "min_notional": fmt(rules.min_notional)},
            )
    return _Plan(
        symbol=symbol,
        buy=buy,
        sell=sell,
        quantity=qty,
        buy_price=rounded_buy,
        sell_price=rounded_sell,
        detected_at=detected_at,
        opportunity=opportunity,
        actor=actor,
    )


@dataclass(frozen=True, slots=True)
class _Sending:
    """How the legs go out (``trading.policies``): the policy, the leg sent first, the band, the limits."""

    policy: ExecutionPolicy
    first_leg: OrderLeg | None
    band_bps: Decimal
    buy_limit: Decimal
    sell_limit: Decimal


def _sending(plan: _Plan, values: dict[str, Any]) -> _Sending:
    """The pair's policy; for a detected opportunity, the band from the venues' recent range and, when
    sequential, the fragile leg from their fill rates. A manual execution keeps its prices exactly."""
    policy = policy_for_pair(
        default=values["execution_policy"],
        overrides=values["execution_policy_pairs"],
        buy_venue=plan.buy.venue.code,
        sell_venue=plan.sell.venue.code,
    )
    venue_ids = [plan.buy.venue.pk, plan.sell.venue.pk]
    band = Decimal(0)
    if plan.opportunity is not None:
        band = band_bps(
            volatility_bps=recent_range_bps(venue_ids=venue_ids, symbol=plan.symbol),
            volatility_share=values["leg_band_volatility_share"],
            max_bps=values["leg_band_max_bps"],
            net_rate=plan.opportunity.net_rate,
            min_profit_rate=values["min_profit_rate"],
        )
    first: OrderLeg | None = None
    if policy == ExecutionPolicy.SEQUENTIAL:
        rates = leg_fill_rates(venue_ids=venue_ids)
        opportunity = plan.opportunity
        first = first_leg_choose(
            buy_rate=rates.get((plan.buy.venue.pk, OrderSide.BUY), LegFillRate(0, 0)),
            sell_rate=rates.get((plan.sell.venue.pk, OrderSide.SELL), LegFillRate(0, 0)),
            buy_qty_available=opportunity.buy_qty_available if opportunity is not None else None,
            sell_qty_available=opportunity.sell_qty_available if opportunity is not None else None,
            buy_quote_age_ms=opportunity.buy_quote_age_ms if opportunity is not None else None,
            sell_quote_age_ms=opportunity.sell_quote_age_ms if opportunity is not None else None,
        )
    return _Sending(
        policy=policy,
        first_leg=first,
        band_bps=band,
        buy_limit=banded_price(price=plan.buy_price, side=OrderSide.BUY, band=band, tick=plan.buy.instrument.tick_size),
        sell_limit=banded_price(
            price=plan.sell_price, side=OrderSide.SELL, band=band, tick=plan.sell.instrument.tick_size
        ),
    )


def _check_expected_profit(plan: _Plan, minimum: Decimal) -> None:
    if minimum <= 0 or plan.opportunity is None:
        return
    expected = expected_profit(
        quantity=plan.quantity,
        buy_price=plan.buy_price,
        sell_price=plan.sell_price,
        buy_fee_rate=plan.buy.instrument.taker_fee,
        sell_fee_rate=plan.sell.instrument.taker_fee,
    )
    if expected < minimum:
        raise ApplicationError(
            ErrorCode.EXPECTED_PROFIT_TOO_LOW,
            f"Expected profit {fmt(expected)} {plan.buy.instrument.quote_asset} is below the minimum {fmt(minimum)}",
            {"expected": fmt(expected), "minimum": fmt(minimum)},
        )


def _check_price_bands(plan: _Plan, sending: _Sending, quotes: dict[str, CachedQuote]) -> None:
    """Each leg's limit within its venue's PERCENT_PRICE_BY_SIDE band, around the venue's cached mid (a leg
    whose venue has no band, or no quote yet, is judged by the pre-trade checks alone)."""
    legs = (
        (plan.buy, OrderSide.BUY, sending.buy_limit),
        (plan.sell, OrderSide.SELL, sending.sell_limit),
    )
    for leg, side, limit in legs:
        rules, cached = leg.instrument, quotes.get(leg.venue.code)
        if cached is None:
            continue
        if side == OrderSide.BUY:
            up, down = rules.band_bid_up, rules.band_bid_down
        else:
            up, down = rules.band_ask_up, rules.band_ask_down
        if up is None or down is None:
            continue
        with localcontext(MONEY_CONTEXT):
            mid = (cached.quote.bid + cached.quote.ask) / 2
        check_price_band(venue=leg.venue.code, side=str(side), price=limit, reference=mid, up=up, down=down)


FIRING_PRIOR_WEIGHT = 4
"""Cost-aware firing starts from its priors as if this many orders (or legged executions) had been seen."""


def _check_worth_the_risk(plan: _Plan, sending: _Sending, values: dict[str, Any]) -> None:
    """Cost-aware firing: decline an opportunity whose expected gain (p(complete) x edge) does not beat its
    expected repair cost (p(legged) x cost), both learned from this venue pair's own history per side
    (``trading.policy_inputs``). A manual execution is the operator's call and is not judged."""
    if plan.opportunity is None:
        return
    buy_id, sell_id, window_s = plan.buy.venue.pk, plan.sell.venue.pk, values["pair_window_s"]
    rates = pair_leg_fill_rates(buy_venue_id=buy_id, sell_venue_id=sell_id, window_s=window_s)
    prior = values["firing_prior_fill_rate"]
    with localcontext(MONEY_CONTEXT):
        edge = expected_profit(
            quantity=plan.quantity,
            buy_price=plan.buy_price,
            sell_price=plan.sell_price,
            buy_fee_rate=plan.buy.instrument.taker_fee,
            sell_fee_rate=plan.sell.instrument.taker_fee,
        )
        # Before any history, a legged execution costs both legs' fees and a band's worth of adverse price.
        prior_cost_rate = plan.buy.instrument.taker_fee + plan.sell.instrument.taker_fee
        prior_cost_rate += values["leg_band_max_bps"] / BPS
        history = pair_repair_history(buy_venue_id=buy_id, sell_venue_id=sell_id, window_s=window_s)
        cost = history.rate_with_prior(prior_cost_rate, FIRING_PRIOR_WEIGHT) * plan.quantity * plan.buy_price
        odds = firing_odds(
            policy=sending.policy,
            first_leg=sending.first_leg,
            p_buy=rates.get(OrderSide.BUY, LegFillRate(0, 0)).rate_with_prior(prior, FIRING_PRIOR_WEIGHT),
            p_sell=rates.get(OrderSide.SELL, LegFillRate(0, 0)).rate_with_prior(prior, FIRING_PRIOR_WEIGHT),
            edge=edge,
            repair_cost=cost,
        )
    if odds.fire:
        return
    quote = plan.buy.instrument.quote_asset
    figures = {
        "p_complete": fmt(odds.p_complete.quantize(Decimal("0.001"))),
        "p_legged": fmt(odds.p_legged.quantize(Decimal("0.001"))),
        "edge": fmt(edge),
        "repair_cost": fmt(cost.quantize(Decimal("0.00000001"))),
        "legged_in_window": str(history.incidents),
        "policy": str(sending.policy),
    }
    raise ApplicationError(
        ErrorCode.NOT_WORTH_THE_RISK,
        f"Declined: p(complete) {figures['p_complete']} x edge {figures['edge']} {quote} does not beat "
        f"p(legged) {figures['p_legged']} x repair cost {figures['repair_cost']} {quote} "
        f"({sending.policy}; {history.incidents} legged in the pair's window)",
        figures,
    )


@dataclass(frozen=True, slots=True)
class _Reads:
    """What the checks need that is read before the transaction (no lock is held for it)."""

    values: dict[str, Any]
    figures: RiskFigures | None
    quotes: dict[str, CachedQuote]
    now: datetime
    sending: _Sending


def _pre_trade_context(
    plan: _Plan,
    reads: _Reads,
    *,
    open_executions: int,
    quote_balance: AccountBalance | None,
    base_balance: AccountBalance | None,
) -> PreTradeContext:
    """The checks' figures: the balances and the open executions as the caller read them (locked)."""
    values, figures, now = reads.values, reads.figures, reads.now
    base, quote = plan.buy.instrument.base_asset, plan.buy.instrument.quote_asset
    buy_quote, sell_quote = reads.quotes.get(plan.buy.venue.code), reads.quotes.get(plan.sell.venue.code)
    now_ms = time.time_ns() // 1_000_000
    return PreTradeContext(
        trading_enabled=values["trading_enabled"],
        breaker_open=figures.breaker_open if figures is not None else False,
        breaker_until=figures.breaker_until if figures is not None else None,
        now=now,
        buy_quote_age_ms=max(0, now_ms - buy_quote.quote.received_ts_ms) if buy_quote else None,
        sell_quote_age_ms=max(0, now_ms - sell_quote.quote.received_ts_ms) if sell_quote else None,
        max_quote_age_ms=values["max_quote_age_ms"],
        buy_price=plan.buy_price,
        sell_price=plan.sell_price,
        quantity=plan.quantity,
        buy_venue_best_ask=buy_quote.quote.ask if buy_quote else None,
        sell_venue_best_bid=sell_quote.quote.bid if sell_quote else None,
        price_band_bps=Decimal(values["price_band_bps"]),
        buy_taker_fee=plan.buy.instrument.taker_fee,
        sell_taker_fee=plan.sell.instrument.taker_fee,
        min_profit_rate=values["min_profit_rate"],
        max_notional=values["max_notional"],
        open_executions=open_executions,
        max_open_executions=values["max_open_executions"],
        buy_venue_quote_free=quote_balance.free if quote_balance else Decimal(0),
        buy_venue_quote_reserved=quote_balance.reserved if quote_balance else Decimal(0),
        sell_venue_base_free=base_balance.free if base_balance else Decimal(0),
        sell_venue_base_reserved=base_balance.reserved if base_balance else Decimal(0),
        base_asset=base,
        quote_asset=quote,
        buy_venue=plan.buy.venue.code,
        sell_venue=plan.sell.venue.code,
        buy_limit_price=reads.sending.buy_limit,
    )


def _execution_create(plan: _Plan) -> TradeExecution:
    values = config_values()
    figures = risk_figures_get()
    quotes = quote_cache.quotes_for_symbol(plan.symbol, [plan.buy.venue.code, plan.sell.venue.code])
    now = timezone.now()
    check_trading_enabled(trading_enabled=values["trading_enabled"])
    check_breaker_closed(
        breaker_open=figures.breaker_open if figures is not None else False,
        breaker_until=figures.breaker_until if figures is not None else None,
        now=now,
    )
    pair = pair_scope(plan.buy.venue.code, plan.sell.venue.code)
    paused = risk_figures_get(account=pair)
    if paused is not None:
        check_pair_open(
            pair=pair.removeprefix("pair:"),
            paused=paused.breaker_open,
            until=paused.breaker_until,
            reason=paused.breaker_reason,
            now=now,
        )
    _check_expected_profit(plan, values["min_expected_profit"])
    sending = _sending(plan, values)
    _check_price_bands(plan, sending, quotes)
    if values["cost_aware_firing"]:
        _check_worth_the_risk(plan, sending, values)
    reads = _Reads(values=values, figures=figures, quotes=quotes, now=now, sending=sending)
    with transaction.atomic():
        execution = _execution_insert(plan, reads)
    return execution


def _execution_insert(plan: _Plan, reads: _Reads) -> TradeExecution:
    values, now = reads.values, reads.now
    quote_key = (plan.buy.account.pk, plan.buy.instrument.quote_asset)
    base_key = (plan.sell.account.pk, plan.buy.instrument.base_asset)
    rows = balances_lock([quote_key, base_key])
    quote_row, base_row = rows.get(quote_key), rows.get(base_key)
    # Counted under the balance locks: creations that share a balance row cannot both slip under the cap.
    ctx = _pre_trade_context(
        plan, reads, open_executions=executions_open_count(), quote_balance=quote_row, base_balance=base_row
    )
    run_pre_trade_checks(ctx)
    assert quote_row is not None and base_row is not None  # check_balances refused a missing row
    sending = reads.sending
    reserve_quote = to_storage(
        required_quote(quantity=plan.quantity, buy_price=sending.buy_limit, buy_taker_fee=ctx.buy_taker_fee)
    )
    reserve_base = to_storage(plan.quantity)
    quote_row.reserved += reserve_quote
    base_row.reserved += reserve_base
    quote_row.updated_at = base_row.updated_at = timezone.now()
    # One statement for both rows (bulk_update writes updated_at as set here: it skips auto_now).
    AccountBalance.objects.bulk_update([quote_row, base_row], ["reserved", "updated_at"])

    if plan.opportunity is not None:
        taken = ArbitrageOpportunity.objects.filter(pk=plan.opportunity.pk, status=OpportunityStatus.DETECTED).update(
            status=OpportunityStatus.TAKEN
        )
        if not taken:
            raise ApplicationError(
                ErrorCode.CONFLICT, f"opportunity {plan.opportunity.pk} was already taken or expired"
            )
        plan.opportunity.status = OpportunityStatus.TAKEN

    user = plan.actor if getattr(plan.actor, "is_authenticated", False) else None
    execution = TradeExecution.objects.create(
        id=uuid7(),
        opportunity=plan.opportunity,
        symbol=plan.symbol,
        base_asset=ctx.base_asset,
        quote_asset=ctx.quote_asset,
        buy_account=plan.buy.account,
        sell_account=plan.sell.account,
        buy_venue=plan.buy.venue,
        sell_venue=plan.sell.venue,
        buy_price=plan.buy_price,
        sell_price=plan.sell_price,
        quantity=plan.quantity,
        expected_profit=to_storage(
            expected_profit(
                quantity=plan.quantity,
                buy_price=plan.buy_price,
                sell_price=plan.sell_price,
                buy_fee_rate=ctx.buy_taker_fee,
                sell_fee_rate=ctx.sell_taker_fee,
            )
        ),
        status=ExecutionStatus.PENDING,
        leg_failure_policy=LegFailurePolicy(values["leg_failure_policy"]),
        policy=sending.policy,
        first_leg=sending.first_leg or "",
        band_bps=to_storage(sending.band_bps),
        reserved_quote=reserve_quote,
        reserved_base=reserve_base,
        is_manual=plan.opportunity is None,
        created_by=user,
        detected_at=plan.detected_at or now,
        started_at=now,
    )
    # Sequential: the hedge is held back until the first leg's fill is known (``trading.sequential``).
    market = values["leg_order_type"] == "market"
    Order.objects.bulk_create(
        [
            _leg_order(execution, plan.buy, OrderLeg.BUY, OrderSide.BUY, sending.buy_limit, plan.quantity, market),
            _leg_order(execution, plan.sell, OrderLeg.SELL, OrderSide.SELL, sending.sell_limit, plan.quantity, market),
        ],
    )
    if plan.opportunity is None:
        audit_record(
            action="execution.create",
            target=str(execution.pk),
            actor=plan.actor,
            new={
                "symbol": plan.symbol,
                "buy_venue": plan.buy.venue.code,
                "sell_venue": plan.sell.venue.code,
                "quantity": fmt(plan.quantity),
                "buy_price": fmt(plan.buy_price),
                "sell_price": fmt(plan.sell_price),
            },
        )
    # After commit, in this order: the dashboards' PENDING first (placement, eager in-process, would
    # publish EXECUTING), then placement, then the rest, which the orders need not wait for.
    execution_published_on_commit(execution, created=True)
    placement_due_on_commit(str(execution.pk))
    return execution


def _leg_order(
    execution: TradeExecution,
    leg: _Leg,
    leg_code: OrderLeg,
    side: OrderSide,
    price: Decimal,
    quantity: Decimal,
    market: bool = False,
) -> Order:
    first = execution.first_leg
    return Order(
        held=bool(first) and leg_code != first,
        execution=execution,
        account=leg.account,
        venue=leg.venue,
        leg=leg_code,
        attempt=0,
        client_order_id=client_order_id(uuid.UUID(str(execution.pk)), leg_code),
        symbol=execution.symbol,
        side=side,
        type=OrderType.MARKET if market else OrderType.LIMIT,
        time_in_force="" if market else TimeInForce.IOC,
        price=None if market else price,
        quantity=quantity,
        status=OrderStatus.PENDING,
    )
