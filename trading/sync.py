"""Periodic synchronisation with the venues: open orders, instruments; and opportunity expiry.

``orders_sync_open`` compensates for a missed user-data-stream update (DESIGN.md, lifecycle step 5).
Per (account, symbol) that has orders open in the database it makes one ``open_orders`` call, and
queries individually (``get_order``) only the orders that are no longer in that list (they filled,
were cancelled or expired) or are UNKNOWN. The answers are applied in one transaction: the orders are
claimed with ``select_for_update(skip_locked=True)`` together with their executions, so an order
that a stream update or a placement is writing right now is skipped this round rather than waited
for, and the new fills and the order figures are written in bulk. It then sweeps open executions
past the leg timeout into settlement, which ends their timed-out legs.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from arbitragex.money import fmt, to_storage
from arbitragex.services import audit_record, config_values
from marketdata.models import Instrument
from trading.effects import order_published_on_commit, placement_due_on_commit, settlement_due_on_commit
from trading.enums import (
    EXECUTION_OPEN_STATUSES,
    ORDER_OPEN_STATUSES,
    AccountMode,
    OpportunityStatus,
    OrderStatus,
)
from trading.gateways import GatewayFactory, gateway_for, gateway_run
from trading.locks import instruments_lock, orders_claim_for_sync
from trading.models import ArbitrageOpportunity, ExchangeAccount, Fill, Order, TradeExecution
from trading.orders import (
    ORDER_WRITTEN_FIELDS,
    execution_after_orders_changed,
    foreign_reason,
    order_adopt,
    order_update_prepare,
    update_from_report,
)
from trading.state_machine import UpdateSource
from venues.gateway import Gateway, OrderReport, SymbolRules, VenueError

__all__ = [
    "ExecutionsSweepResult",
    "OrdersSyncResult",
    "executions_sweep",
    "instruments_sync",
    "opportunities_expire",
    "orders_sync_open",
]

logger = logging.getLogger(__name__)


BULK_UPDATE_BATCH = 200

# What the venue has answered for: PENDING orders belong to their placement run.
SYNCED_STATUSES = (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.UNKNOWN)


@dataclass
class OrdersSyncResult:
    groups: int = 0
    open_orders_calls: int = 0
    order_queries: int = 0
    updated: int = 0
    skipped_locked: int = 0


@dataclass(frozen=True, slots=True)
class _Local:
    pk: int
    client_order_id: str
    status: str


def orders_sync_open(
    *, gateway_factory: GatewayFactory | None = None, now: datetime | None = None, actor: Any = None
) -> OrdersSyncResult:
    """Ask the venues about every open order and apply what they say. Each order the poll changed is
    audited in the transaction that changes it; a run an operator asked for (``actor``) is audited
    too, with its figures."""
    now = now or timezone.now()
    result = OrdersSyncResult()
    groups: dict[tuple[int, str], list[_Local]] = defaultdict(list)
    for pk, account_id, symbol, cid, status in (
        Order.objects.filter(status__in=SYNCED_STATUSES)
        .order_by("pk")
        .values_list("pk", "account_id", "symbol", "client_order_id", "status")
    ):
        groups[(account_id, symbol)].append(_Local(pk, cid, status))
    result.groups = len(groups)
    reports: dict[int, OrderReport] = {}
    if groups:
        accounts = ExchangeAccount.objects.select_related("venue").in_bulk({account for account, _ in groups})
        for account_id in sorted(accounts):
            account_groups = {symbol: orders for (acct, symbol), orders in groups.items() if acct == account_id}
            reports.update(_fetch(accounts[account_id], account_groups, result, gateway_factory))
    if reports:
        _apply_bulk(reports, now, result, actor)
    if actor is not None:
        with transaction.atomic():
            audit_record(action="orders.sync", target="every open order", actor=actor, new=asdict(result))
    return result


def _fetch(
    account: ExchangeAccount,
    groups: dict[str, list[_Local]],
    result: OrdersSyncResult,
    factory: GatewayFactory | None,
) -> dict[int, OrderReport]:
    async def fetch(gateway: Gateway) -> dict[int, OrderReport]:
        found: dict[int, OrderReport] = {}
        for symbol, local in groups.items():
            try:
                listed = await gateway.open_orders(symbol=symbol)
                result.open_orders_calls += 1
                by_id = {report.client_order_id: report for report in listed}
                for order in local:
                    if order.client_order_id in by_id:
                        found[order.pk] = by_id[order.client_order_id]
                        continue
                    # Left the open list (or never made it there): only its own query says how.
                    report = await gateway.get_order(symbol=symbol, client_order_id=order.client_order_id)
                    result.order_queries += 1
                    if report is not None:
                        found[order.pk] = report
            except VenueError as exc:
                logger.warning("order sync of %s skipped: %s", symbol, exc)
        return found

    return gateway_run(account, fetch, factory=factory)


def _apply_bulk(reports: dict[int, OrderReport], now: datetime, result: OrdersSyncResult, actor: Any = None) -> None:
    with transaction.atomic():
        orders = orders_claim_for_sync(Order.objects.filter(pk__in=list(reports), status__in=ORDER_OPEN_STATUSES))
        result.skipped_locked = len(reports) - len(orders)
        trade_ids: dict[int, set[str]] = defaultdict(set)
        for order_id, trade_id in Fill.objects.filter(order__in=orders).values_list("order_id", "trade_id"):
            trade_ids[order_id].add(trade_id)
        changed: list[Order] = []
        new_fills: list[Fill] = []
        touched: dict[str, TradeExecution] = {}
        for order in orders:
            previous, previous_filled = order.status, order.filled_qty
            report = reports[order.pk]
            update = update_from_report(report, UpdateSource.POLL)
            reason = foreign_reason(order, update, report.exchange_order_id)
            if reason is not None:
                # Another venue order under our client id: a row of its own, never absorbed (rare).
                order_adopt(order, update, exchange_order_id=report.exchange_order_id, reason=reason, now=now)
                continue
            applied = order_update_prepare(
                order, update, trade_ids[order.pk], now=now, exchange_order_id=report.exchange_order_id
            )
            if not applied.changed:
                continue
            if (order.status, order.filled_qty) != (previous, previous_filled):
                audit_record(
                    action="order.sync",
                    target=order.client_order_id,
                    actor=actor,
                    actor_label="" if actor is not None else "order sync",
                    previous={"status": previous, "filled_qty": fmt(previous_filled)},
                    new={"status": order.status, "filled_qty": fmt(order.filled_qty)},
                )
            changed.append(order)
            new_fills.extend(applied.fills)
            if order.status != previous:
                order_published_on_commit(order)
            touched[str(order.execution_id)] = order.execution
        if new_fills:
            Fill.objects.bulk_create(new_fills)
        if changed:
            # In batches: Django writes a bulk update as one CASE WHEN per field with a branch per row,
            # which PostgreSQL evaluates for every row: quadratic, minutes at 10,000 changed orders.
            Order.objects.bulk_update(changed, fields=ORDER_WRITTEN_FIELDS, batch_size=BULK_UPDATE_BATCH)
        for execution in touched.values():
            execution_after_orders_changed(execution)
        result.updated = len(changed)


@dataclass
class ExecutionsSweepResult:
    settlements: list[str] = field(default_factory=list)
    placements: list[str] = field(default_factory=list)


def executions_sweep(*, now: datetime | None = None) -> ExecutionsSweepResult:
    """What the broker may have lost, found again from the database (every few seconds, by beat):
    executions past their leg timeout or with every order done go to settlement, and executions with
    an order left to send and no placement at work are placed again. Two indexed queries."""
    now = now or timezone.now()
    return ExecutionsSweepResult(settlements=_sweep_timeouts(now), placements=_sweep_placements(now))


def _sweep_timeouts(now: datetime) -> list[str]:
    """Open executions with an order open past the leg timeout, or with every order done: settle them."""
    timeout = timedelta(seconds=config_values()["leg_timeout_s"])
    cutoff = now - timeout
    overdue = (
        Order.objects.filter(execution__status__in=EXECUTION_OPEN_STATUSES)
        .filter(
            Q(status__in=ORDER_OPEN_STATUSES, submitted_at__lte=cutoff)
            | Q(status__in=ORDER_OPEN_STATUSES, submitted_at__isnull=True, created_at__lte=cutoff)
            | (~Q(status__in=ORDER_OPEN_STATUSES) & Q(execution__updated_at__lte=cutoff))
        )
        .values_list("execution_id", flat=True)
        .distinct()
    )
    ids = sorted({str(execution_id) for execution_id in overdue})
    for execution_id in ids:
        settlement_due_on_commit(execution_id)
    return ids


PLACEMENT_STALE_S = 5


def _sweep_placements(now: datetime) -> list[str]:
    """Open executions with an order still to send that no placement is seen working on: place them again.

    The placement task is enqueued after commit, through Redis: a Redis restart (its data lost), or a
    worker that died with the message, may leave it undone. The database knows what is left to send
    (an order PENDING, unclaimed or with its last claim's window closed), so it is found again here, not
    only by the broker. Placement is idempotent: a run that finds another at work backs off.
    """
    quiet = now - timedelta(seconds=PLACEMENT_STALE_S)
    margin = timedelta(milliseconds=settings.VENUE_CLOCK_MARGIN_MS)
    left = (
        Order.objects.filter(
            execution__status__in=EXECUTION_OPEN_STATUSES, status=OrderStatus.PENDING, held=False, updated_at__lte=quiet
        )
        .filter(Q(send_deadline__isnull=True) | Q(send_deadline__lte=now - margin))
        .values_list("execution_id", flat=True)
        .distinct()
    )
    ids = sorted({str(execution_id) for execution_id in left})
    for execution_id in ids:
        logger.warning(
            "execution %s has an order left to send and no placement at work: placing it again", execution_id
        )
        placement_due_on_commit(execution_id)
    return ids


# --- instruments ---------------------------------------------------------------------------------------------


def instruments_sync(*, gateway_factory: GatewayFactory | None = None) -> int:
    """Write the filters and fees of every symbol of each live venue (one enabled live account per
    venue asks). Paper venues keep their seeded instruments. Returns how many rows were written."""
    factory = gateway_factory or gateway_for
    accounts: dict[int, ExchangeAccount] = {}
    for account in ExchangeAccount.objects.filter(enabled=True, mode=AccountMode.LIVE).select_related("venue"):
        accounts.setdefault(account.venue_id, account)
    written = 0
    for venue_id, account in sorted(accounts.items()):
        gateway = factory(account)

        async def fetch(gateway: Gateway = gateway) -> list[SymbolRules]:
            try:
                return await gateway.symbol_rules()
            finally:
                await gateway.close()

        try:
            rules = async_to_sync(fetch)()
        except VenueError as exc:
            logger.warning("instrument sync of %s skipped: %s", account.venue, exc)
            continue
        written += _instruments_write(venue_id, account.venue.default_taker_fee, account.venue.default_maker_fee, rules)
    return written


@transaction.atomic
def _instruments_write(venue_id: int, taker_default: object, maker_default: object, rules: list[SymbolRules]) -> int:
    existing = instruments_lock(venue_id)
    for rule in rules:
        instrument = existing.get(rule.symbol) or Instrument(venue_id=venue_id, symbol=rule.symbol)
        instrument.base_asset = rule.base_asset
        instrument.quote_asset = rule.quote_asset
        instrument.status = rule.status
        instrument.tick_size = to_storage(rule.tick_size)
        instrument.step_size = to_storage(rule.step_size)
        instrument.min_qty = to_storage(rule.min_qty)
        instrument.max_qty = to_storage(rule.max_qty)
        instrument.min_notional = to_storage(rule.min_notional)
        band = rule.price_band
        instrument.band_bid_up = to_storage(band.bid_up) if band else None
        instrument.band_bid_down = to_storage(band.bid_down) if band else None
        instrument.band_ask_up = to_storage(band.ask_up) if band else None
        instrument.band_ask_down = to_storage(band.ask_down) if band else None
        instrument.band_avg_price_mins = band.avg_price_mins if band else None
        if rule.taker_fee is not None:
            instrument.taker_fee = to_storage(rule.taker_fee)
        elif instrument.pk is None:
            instrument.taker_fee = taker_default
        if rule.maker_fee is not None:
            instrument.maker_fee = to_storage(rule.maker_fee)
        elif instrument.pk is None:
            instrument.maker_fee = maker_default
        instrument.save()
    return len(rules)


# --- opportunities --------------------------------------------------------------------------------------------


def opportunities_expire(*, now: datetime | None = None) -> int:
    """DETECTED opportunities older than ``opportunity_expiry_s`` become EXPIRED. Returns how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=config_values()["opportunity_expiry_s"])
    return ArbitrageOpportunity.objects.filter(status=OpportunityStatus.DETECTED, detected_at__lt=cutoff).update(
        status=OpportunityStatus.EXPIRED
    )
