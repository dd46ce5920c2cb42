"""Account balances: reservations for executions, and the sync of free/locked from the venues.

``reserved`` is what executions hold locally on top of what the venue knows: the quote asset of a buy
leg and the base asset of a sell leg, from creation until the execution ends. Every change locks the
rows it touches in primary-key order (``trading.locks``, level 3), the same order the paper
venue uses, so that two writers never wait on each other in opposite orders.

Sync: for a live account the venue's ``free``/``locked`` replace the local ones. Before that, the
venue's total is compared with what the local figures plus the fills recorded since the last sync
say it should be; the difference is drift (a deposit, a withdrawal, a trade we did not place), which
becomes a ``BALANCE_DRIFT`` incident, and drift above ``reconcile_drift_threshold`` trips the breaker.

A sync is dated by when its venue read started, not when it was written, and a read older than the one
already written is dropped: otherwise a fill made between the read and the write (or a slower sync
writing after a newer one) is in neither the stored balance nor the fills after its date, and shows
up as drift that trips the breaker. Fill times are the venue's clock, which may run seconds apart from
ours: the read's start is also kept on the venue's clock (ours shifted by the offset the gateway
measured), and fills are compared with that. Whether a fill made while the last read was under way is
in that read cannot be known, so drift is not judged while a fill lies within ``DRIFT_GUARD`` of the
last sync; a later sync judges it. Found by the chaos run, the last with a venue clock 10 s off.

The breaker that drift opens has a cooldown (``breaker_cooldown_s``), and a later sync of every live
account that finds no drift closes it at once, both audited: trading never waits on a person for a
drift that has gone.
A paper account's balance rows are the simulated venue itself: they are never overwritten, only
marked as synced.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

from django.db import transaction
from django.utils import timezone

from arbitragex.money import MONEY_CONTEXT, ZERO, fmt, to_storage
from arbitragex.services import audit_record, config_values
from risk.breaker import TripReason
from risk.models import GLOBAL_SCOPE, RiskState
from risk.services import breaker_close, breaker_open
from trading.enums import ORDER_OPEN_STATUSES, AccountMode, IncidentKind, OrderSide
from trading.gateways import GatewayFactory, gateway_run
from trading.locks import account_balances_lock, balances_lock
from trading.models import AccountBalance, ExchangeAccount, Fill, Incident, Order
from trading.signals import incident_raised
from venues.gateway import BalanceReport, Gateway, VenueError

__all__ = [
    "BalanceDrift",
    "account_balances_sync",
    "balances_lock",
    "balances_release",
    "balances_sync",
]

logger = logging.getLogger(__name__)

DRIFT_GUARD = timedelta(seconds=2)  # a venue read's duration, with margin (the clock offset is corrected)


def balances_release(*, reservations: Iterable[tuple[int, str, Decimal]]) -> None:
    """Give back what executions reserved: (account id, asset, amount). Call inside a transaction.

    A reservation never takes a row below zero: a balance row that an operator reset in the meantime
    simply ends at zero.
    """
    amounts: dict[tuple[int, str], Decimal] = defaultdict(lambda: ZERO)
    for account_id, asset, amount in reservations:
        if amount > 0:
            amounts[(account_id, asset)] += amount
    rows = balances_lock(amounts)
    for key, row in rows.items():
        row.reserved = to_storage(max(ZERO, row.reserved - amounts[key]))
        row.save(update_fields=["reserved", "updated_at"])


# --- sync ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BalanceDrift:
    asset: str
    expected: Decimal
    venue: Decimal

    @property
    def drift(self) -> Decimal:
        with localcontext(MONEY_CONTEXT):
            return self.venue - self.expected


def fill_deltas(*, account_id: int, since: datetime) -> dict[str, Decimal]:
    """What the fills recorded after ``since`` changed on the account, per asset (commissions included)."""
    deltas: dict[str, Decimal] = defaultdict(lambda: ZERO)
    fills = Fill.objects.filter(order__account_id=account_id, filled_at__gt=since).select_related("order__execution")
    with localcontext(MONEY_CONTEXT):
        for fill in fills:
            base, quote = fill.order.execution.base_asset, fill.order.execution.quote_asset
            sign = 1 if fill.order.side == OrderSide.BUY else -1
            deltas[base] += sign * fill.qty
            deltas[quote] -= sign * fill.quote_qty
            if fill.commission and fill.commission_asset:
                deltas[fill.commission_asset] -= fill.commission
    return dict(deltas)


def balance_drifts(
    *, rows: dict[str, AccountBalance], reports: dict[str, BalanceReport], deltas: dict[str, Decimal]
) -> list[BalanceDrift]:
    """Venue total (free + locked) against local total plus fill deltas, for every asset either side knows."""
    drifts = []
    with localcontext(MONEY_CONTEXT):
        for asset in sorted(set(rows) | set(reports) | set(deltas)):
            row = rows.get(asset)
            report = reports.get(asset)
            expected = (row.free + row.locked if row is not None else ZERO) + deltas.get(asset, ZERO)
            venue = report.free + report.locked if report is not None else ZERO
            if venue != expected:
                drifts.append(BalanceDrift(asset=asset, expected=expected, venue=venue))
    return drifts


@transaction.atomic
def account_balances_sync(
    *,
    account: ExchangeAccount,
    reports: list[BalanceReport],
    now: datetime | None = None,
    check_drift: bool = True,
    venue_offset_ms: int | None = None,
    actor: Any = None,
) -> list[BalanceDrift]:
    """Write the venue's balances of one account; returns the drift found (live accounts only).

    ``now`` is when the venue read of ``reports`` started (default: now), and ``venue_offset_ms`` the
    venue's clock minus ours as the gateway measured it (None: taken as 0). The figures that changed
    are audited in this transaction (every figure, changed or not, when an operator asked: ``actor``).
    """
    now = now or timezone.now()
    venue_now = now + timedelta(milliseconds=venue_offset_ms or 0)
    if account.mode == AccountMode.PAPER:
        # The rows are the paper venue: writing back what was read could undo a fill made in between.
        AccountBalance.objects.filter(account=account).update(synced_at=now)
        if actor is not None:
            audit_record(action="balance.sync", target=account.name, actor=actor, note="paper: marked as synced")
        return []
    by_asset = {report.asset: report for report in reports}
    AccountBalance.objects.bulk_create(
        [AccountBalance(account=account, asset=asset) for asset in sorted(by_asset)], ignore_conflicts=True
    )
    rows = account_balances_lock(account)
    drifts: list[BalanceDrift] = []
    synced_before = [row.synced_at for row in rows.values() if row.synced_at is not None]
    if synced_before and max(synced_before) > now:
        # A read that started later is written already: this one is older, and would undo it.
        return []
    in_flight = Order.objects.filter(account=account, status__in=ORDER_OPEN_STATUSES).exists()
    if check_drift and synced_before and not in_flight:
        # Fills of orders still open may not all be recorded yet, so drift is only judged at rest.
        since = min(row.synced_at_venue or row.synced_at for row in rows.values() if row.synced_at is not None)
        if not Fill.objects.filter(
            order__account_id=account.pk, filled_at__range=(since - DRIFT_GUARD, since + DRIFT_GUARD)
        ).exists():
            deltas = fill_deltas(account_id=account.pk, since=since)
            drifts = balance_drifts(rows=rows, reports=by_asset, deltas=deltas)
            _drift_record(account, drifts)
            _drift_resolve(account, clear=set(rows) - {drift.asset for drift in drifts}, now=now)
    previous: dict[str, Any] = {}
    new: dict[str, Any] = {}
    for asset, row in rows.items():
        report = by_asset.get(asset)
        free = report.free if report is not None else ZERO
        locked = report.locked if report is not None else ZERO
        if actor is not None or (free, locked) != (row.free, row.locked):
            previous[asset] = {"free": fmt(row.free), "locked": fmt(row.locked)}
            new[asset] = {"free": fmt(free), "locked": fmt(locked)}
        row.free, row.locked = free, locked
        row.synced_at = now
        row.synced_at_venue = venue_now
        row.save(update_fields=["free", "locked", "synced_at", "synced_at_venue", "updated_at"])
    if new or actor is not None:
        audit_record(
            action="balance.sync",
            target=account.name,
            actor=actor,
            actor_label="" if actor is not None else "balance sync",
            previous=previous,
            new=new,
            note=f"{len(drifts)} drift incident(s)" if drifts else "",
        )
    return drifts


def _drift_resolve(account: ExchangeAccount, *, clear: set[str], now: datetime) -> None:
    """Open drift incidents of assets this sync found as expected: their cause is gone."""
    if clear:
        Incident.objects.filter(
            kind=IncidentKind.BALANCE_DRIFT, account=account, asset__in=clear, resolved_at__isnull=True
        ).update(resolved_at=now, resolution="a later balance sync found the asset as the fills say it should be")


def _drift_record(account: ExchangeAccount, drifts: list[BalanceDrift]) -> None:
    if not drifts:
        return
    threshold: Decimal = config_values()["reconcile_drift_threshold"]
    tripped = []
    for drift in drifts:
        incident = Incident.objects.create(
            kind=IncidentKind.BALANCE_DRIFT,
            account=account,
            asset=drift.asset,
            local_value=fmt(drift.expected) or "0",
            venue_value=fmt(drift.venue) or "0",
            drift=to_storage(drift.drift),
            detail={"threshold": fmt(threshold)},
        )
        incident_raised.send(sender=Incident, incident=incident)
        if abs(drift.drift) > threshold:
            tripped.append(drift.asset)
    if tripped:
        logger.warning("balance drift on %s (%s) above %s: opening the breaker", account, tripped, threshold)
        breaker_open(reason=TripReason.RECONCILIATION_DRIFT, cooldown_seconds=config_values()["breaker_cooldown_s"])


def balances_sync(
    *, account_ids: Iterable[int] | None = None, gateway_factory: GatewayFactory | None = None, actor: Any = None
) -> dict[int, list[BalanceDrift]]:
    """Fetch every enabled account's balances (or those of ``account_ids``) and write them, each account
    in a transaction of its own with its audit row (``actor``: the operator who asked, if one did). An
    account whose venue does not answer is left out of the result, and audited as skipped."""
    accounts = ExchangeAccount.objects.filter(enabled=True).select_related("venue").order_by("pk")
    if account_ids is not None:
        accounts = accounts.filter(pk__in=list(account_ids))
    result: dict[int, list[BalanceDrift]] = {}
    judged_live: list[bool] = []
    for account in accounts:
        read_at = timezone.now()
        try:
            reports, offset_ms = _fetch_balances(account, gateway_factory)
        except VenueError as exc:
            logger.warning("balance sync of %s skipped: %s", account, exc)
            if account.mode == AccountMode.LIVE:
                judged_live.append(False)
            if actor is not None:
                with transaction.atomic():
                    audit_record(
                        action="balance.sync",
                        target=account.name,
                        actor=actor,
                        note=f"skipped: the venue did not answer: {exc}",
                    )
            continue
        result[account.pk] = account_balances_sync(
            account=account, reports=reports, now=read_at, venue_offset_ms=offset_ms, actor=actor
        )
        if account.mode == AccountMode.LIVE:
            judged_live.append(not result[account.pk])
    if account_ids is None and judged_live and all(judged_live):
        drift_breaker_close_if_clear()
    return result


def drift_breaker_close_if_clear() -> bool:
    """Close the desk breaker that balance drift opened, once a sync of every live account found none."""
    state = RiskState.objects.filter(account=GLOBAL_SCOPE, symbol="").first()
    if state is None or not state.breaker_open or state.breaker_reason != TripReason.RECONCILIATION_DRIFT:
        return False
    logger.warning("balance sync found no drift on any live account: closing the drift breaker")
    breaker_close(note="a later balance sync found no drift on any live account")
    return True


def _fetch_balances(account: ExchangeAccount, factory: GatewayFactory | None) -> tuple[list[BalanceReport], int | None]:
    """The balances, and the venue's clock offset the gateway measured meanwhile."""

    async def fetch(gateway: Gateway) -> tuple[list[BalanceReport], int | None]:
        return await gateway.balances(), gateway.time_offset_ms

    return gateway_run(account, fetch, factory=factory)
