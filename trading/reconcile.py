"""Reconciliation (DESIGN.md, lifecycle step 8): the database against the venues.

For every enabled account, per symbol it trades or has orders in:

- a venue open order with one of our client order ids that the database does not know becomes an
  ``ORDER_UNKNOWN_LOCALLY`` incident, and is adopted (an ``Order`` row under its execution, then its
  report applied) when the id parses to an execution that exists;
- an order open in the database that the venue no longer lists is queried: unknown to the venue, it
  becomes ``ORDER_MISSING_AT_VENUE``; known, its report is applied, and a status that had to change
  is recorded as ``ORDER_STATUS_DRIFT``;
- an order the database holds as finished but the venue still lists as open is ``ORDER_STATUS_DRIFT``;
- balances are synced with drift detection (``trading.balances.account_balances_sync``): drift
  becomes ``BALANCE_DRIFT`` and drift above ``reconcile_drift_threshold`` trips the breaker.

Order incidents are recorded once per client order id while unresolved, so a drift that persists
does not add a row every run. Orders placed by hand on the venue (ids not in our format) are ignored.

Incidents resolve themselves when their cause is gone (``incidents_resolve``, each run): an order
incident once its order is final with every fill recorded, a balance drift once a later sync found
that asset as expected (``trading.balances``), a leg failure once an operator settled its execution.
The resolution says what made it go. A duplicate at the venue stays for an operator to review.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from arbitragex.money import fmt
from arbitragex.services import audit_record
from marketdata.models import Instrument
from trading.balances import BalanceDrift, account_balances_sync
from trading.client_ids import parse_client_order_id
from trading.enums import (
    EXECUTION_FINAL_STATUSES,
    ORDER_TERMINAL_STATUSES,
    IncidentKind,
    OrderStatus,
    OrderType,
    TimeInForce,
)
from trading.gateways import GatewayFactory, gateway_run
from trading.locks import incidents_lock
from trading.models import ExchangeAccount, Incident, Order, TradeExecution
from trading.orders import order_apply_update
from trading.signals import incident_raised
from trading.state_machine import UpdateSource
from trading.sync import SYNCED_STATUSES
from venues.gateway import BalanceReport, Gateway, OrderReport, VenueError

__all__ = ["ReconcileResult", "incidents_resolve", "reconcile"]

logger = logging.getLogger(__name__)


@dataclass
class ReconcileResult:
    accounts: int = 0
    incidents: list[int] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    balance_drifts: dict[int, list[BalanceDrift]] = field(default_factory=dict)
    resolved: list[int] = field(default_factory=list)


@dataclass
class _VenueView:
    open_orders: dict[str, list[OrderReport]] = field(default_factory=dict)
    queried: dict[str, OrderReport | None] = field(default_factory=dict)
    balances: list[BalanceReport] | None = None
    balances_read_at: datetime | None = None
    offset_ms: int | None = None


def reconcile(
    *,
    gateway_factory: GatewayFactory | None = None,
    now: datetime | None = None,
    actor: Any = None,
    actor_label: str = "",
) -> ReconcileResult:
    """Compare every enabled account's orders and balances with its venue. Each account is written in a
    transaction of its own; the run is audited at the end (always when an operator asked for it:
    ``actor``, or ``actor_label`` for one who queued it; else when it found something)."""
    now = now or timezone.now()
    result = ReconcileResult()
    for account in ExchangeAccount.objects.filter(enabled=True).select_related("venue").order_by("pk"):
        local_open = {
            order.client_order_id: order
            for order in Order.objects.filter(account=account, status__in=SYNCED_STATUSES).order_by("pk")
        }
        symbols = sorted(
            set(Instrument.objects.filter(venue=account.venue, enabled=True).values_list("symbol", flat=True))
            | {order.symbol for order in local_open.values()}
        )
        try:
            view = _fetch(account, symbols, local_open, gateway_factory)
        except VenueError as exc:
            logger.warning("reconciliation of %s skipped: %s", account, exc)
            continue
        result.accounts += 1
        _orders_compare(account, view, local_open, result)
        if view.balances is not None:
            result.balance_drifts[account.pk] = account_balances_sync(
                account=account, reports=view.balances, now=view.balances_read_at or now, venue_offset_ms=view.offset_ms
            )
    result.resolved = incidents_resolve(now=timezone.now())
    if actor is not None or actor_label or result.incidents or result.adopted:
        with transaction.atomic():
            audit_record(
                action="reconcile.run",
                target="every enabled account",
                actor=actor,
                actor_label=actor_label or ("" if actor is not None else "reconciliation"),
                new={
                    "accounts": result.accounts,
                    "incidents": len(result.incidents),
                    "adopted": len(result.adopted),
                    "resolved": len(result.resolved),
                },
            )
    return result


_ORDER_INCIDENTS = (
    IncidentKind.ORDER_MISSING_AT_VENUE,
    IncidentKind.ORDER_STATUS_DRIFT,
    IncidentKind.ORDER_UNKNOWN_LOCALLY,
)


@transaction.atomic
def incidents_resolve(*, now: datetime) -> list[int]:
    """Resolve the open incidents whose cause is gone; returns their ids."""
    resolved: list[int] = []
    for incident in incidents_lock(
        Incident.objects.filter(resolved_at__isnull=True)
        .exclude(kind__in=[IncidentKind.BALANCE_DRIFT, IncidentKind.DUPLICATE_AT_VENUE])
        .select_related("order", "execution")
    ):
        resolution = _cause_gone(incident)
        if resolution is not None:
            incident.resolved_at, incident.resolution = now, resolution
            incident.save(update_fields=["resolved_at", "resolution"])
            resolved.append(incident.pk)
    if resolved:
        logger.info("incidents resolved, their cause gone: %s", resolved)
    return resolved


def _cause_gone(incident: Incident) -> str | None:
    if incident.kind in _ORDER_INCIDENTS and incident.order is not None:
        order = incident.order
        recorded = sum((fill.qty for fill in order.fills.all()), Decimal(0))
        if order.status in ORDER_TERMINAL_STATUSES and recorded == order.filled_qty:
            return f"order {order.client_order_id} is {order.status} with every fill recorded ({fmt(recorded) or 0})"
    if incident.kind == IncidentKind.LEG_FAILURE and incident.execution is not None:
        execution = incident.execution
        if execution.status in EXECUTION_FINAL_STATUSES:
            return f"execution {execution.pk} was settled as {execution.status}"
    return None


def _fetch(
    account: ExchangeAccount, symbols: list[str], local_open: dict[str, Order], factory: GatewayFactory | None
) -> _VenueView:
    async def fetch(gateway: Gateway) -> _VenueView:
        view = _VenueView()
        for symbol in symbols:
            view.open_orders[symbol] = await gateway.open_orders(symbol=symbol)
        listed = {report.client_order_id for reports in view.open_orders.values() for report in reports}
        for cid, order in local_open.items():
            if cid not in listed:
                view.queried[cid] = await gateway.get_order(symbol=order.symbol, client_order_id=cid)
        view.balances_read_at = timezone.now()
        view.balances = await gateway.balances()
        view.offset_ms = gateway.time_offset_ms
        return view

    return gateway_run(account, fetch, factory=factory)


def _incident_once(kind: IncidentKind, *, account: ExchangeAccount, client_order_id: str, **fields: Any) -> int | None:
    """Record an order incident unless one for this id is still unresolved."""
    if Incident.objects.filter(
        kind=kind, account=account, resolved_at__isnull=True, detail__client_order_id=client_order_id
    ).exists():
        return None
    detail = {"client_order_id": client_order_id, **fields.pop("detail", {})}
    incident = Incident.objects.create(kind=kind, account=account, detail=detail, **fields)
    incident_raised.send(sender=Incident, incident=incident)
    return incident.pk


def _orders_compare(
    account: ExchangeAccount, view: _VenueView, local_open: dict[str, Order], result: ReconcileResult
) -> None:
    venue_open = {report.client_order_id: report for reports in view.open_orders.values() for report in reports}
    known = {
        order.client_order_id: order
        for order in Order.objects.filter(account=account, client_order_id__in=list(venue_open))
    }
    for cid, report in venue_open.items():
        order = known.get(cid)
        if order is None:
            if parse_client_order_id(cid) is not None:
                _unknown_locally(account, report, result)
            continue
        if order.status in ORDER_TERMINAL_STATUSES:
            incident = _incident_once(
                IncidentKind.ORDER_STATUS_DRIFT,
                account=account,
                client_order_id=cid,
                execution_id=order.execution_id,
                order=order,
                symbol=order.symbol,
                local_value=order.status,
                venue_value=report.status,
                detail={"note": "finished locally, open at the venue"},
            )
            if incident is not None:
                result.incidents.append(incident)
        elif order.status != report.status:
            order_apply_update(order_id=order.pk, update=report, source=UpdateSource.POLL)
    for cid, queried in view.queried.items():
        order = local_open[cid]
        if queried is None:
            incident = _incident_once(
                IncidentKind.ORDER_MISSING_AT_VENUE,
                account=account,
                client_order_id=cid,
                execution_id=order.execution_id,
                order=order,
                symbol=order.symbol,
                local_value=order.status,
                venue_value="not found",
            )
            if incident is not None:
                result.incidents.append(incident)
            continue
        applied = order_apply_update(order_id=order.pk, update=queried, source=UpdateSource.POLL)
        if applied.status_changed:
            corrected = Incident.objects.create(
                kind=IncidentKind.ORDER_STATUS_DRIFT,
                account=account,
                execution_id=order.execution_id,
                order=order,
                symbol=order.symbol,
                local_value=order.status,
                venue_value=queried.status,
                detail={"client_order_id": cid, "note": "corrected from the venue"},
                resolved_at=timezone.now(),
                resolution="the order was corrected from the venue's report",
            )
            incident_raised.send(sender=Incident, incident=corrected)
            result.incidents.append(corrected.pk)


def _unknown_locally(account: ExchangeAccount, report: OrderReport, result: ReconcileResult) -> None:
    parsed = parse_client_order_id(report.client_order_id)
    assert parsed is not None
    execution = TradeExecution.objects.filter(pk=parsed.execution_id).first()
    adopted = execution is not None and execution.symbol == report.symbol
    incident = _incident_once(
        IncidentKind.ORDER_UNKNOWN_LOCALLY,
        account=account,
        client_order_id=report.client_order_id,
        execution=execution,
        symbol=report.symbol,
        venue_value=f"{report.status} {fmt(report.filled_qty)}/{fmt(report.quantity)}",
        detail={"exchange_order_id": report.exchange_order_id, "adopted": adopted},
    )
    if incident is not None:
        result.incidents.append(incident)
    if not adopted:
        return
    assert execution is not None
    try:
        with transaction.atomic():
            order = Order.objects.create(
                execution=execution,
                account=account,
                venue=account.venue,
                leg=parsed.leg,
                attempt=parsed.attempt,
                client_order_id=report.client_order_id,
                exchange_order_id=report.exchange_order_id,
                symbol=report.symbol,
                side=report.side,
                type=OrderType.LIMIT if report.price else OrderType.MARKET,
                time_in_force=TimeInForce.GTC if report.price else "",
                price=report.price or None,
                quantity=report.quantity,
                status=OrderStatus.PENDING,
                place_attempts=1,
            )
    except IntegrityError:
        return  # adopted by a concurrent run
    order_apply_update(order_id=order.pk, update=report, source=UpdateSource.POLL)
    result.adopted.append(report.client_order_id)
