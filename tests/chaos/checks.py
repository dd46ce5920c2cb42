"""The chaos run's invariants, checked on a platform at rest once the faults have stopped, and the report.

1. every execution was created (a risk refusal only delays one; an open breaker stalls the run);
2. every execution is terminal within two order-sync cycles of the faults' end;
3. the venues' orders are the database's: every order that reached a venue is there exactly once,
   with the status, quantity and fills the database holds, no venue order of ours is unknown, and no
   order-status incident is left unresolved (fills missing at settlement, a malformed update);
4. balances reconcile: each venue balance is the starting balance plus what the recorded fills say,
   no balance sync found drift during the run or after it, and no reservation is left;
5. every settled execution's profit is the sum over its fills minus fees (``trading.pnl``, from the
   ``Fill`` rows and again from the venues' own fills);
6. every execution's residual exposure (its fills' base quantity bought minus sold) is zero, or the
   execution is NEEDS_ATTENTION with an incident;
7. no manual step: nobody acted as an operator (no audit row has a user), every breaker is closed (by
   itself: the harness never closes one), and every incident is resolved by the platform or belongs
   to an execution parked as NEEDS_ATTENTION;
8. no platform process printed "Unclosed client session" or a CRITICAL line.

Each violation found so far was a bug, fixed with a test of its own: the placement lease of a killed
worker (tests/trading/test_placement_lease.py), fills of an order resolved by query
(test_binance_query_fills.py), and balance syncs racing fills and each other
(test_balance_sync_races.py).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any

from arbitragex.models import AuditLog
from arbitragex.money import ZERO, fmt, to_storage
from risk.models import GLOBAL_SCOPE, RiskState
from tests.chaos.faults import FaultDriver, FaultPointThawer
from tests.chaos.harness import CLIENT_ID_PREFIX, EPOCH, STALL_S, ChaosSettings, Created, Report
from tests.chaos.processes import SupervisedPlatform
from tests.chaos.venues import FUNDS, ChaosVenue, VenueOrder
from trading import pnl
from trading.balances import balances_sync, fill_deltas
from trading.enums import (
    EXECUTION_TERMINAL_STATUSES,
    ORDER_TERMINAL_STATUSES,
    ExecutionStatus,
    IncidentKind,
    OrderLeg,
    OrderSide,
    OrderStatus,
)
from trading.models import AccountBalance, Fill, Incident, Order, TradeExecution


def check_created(report: Report, created: Created, settings: ChaosSettings) -> None:
    name = f"all {settings.executions} executions created through the service despite the faults"
    report.invariant(name)
    if len(created.ids) < settings.executions:
        report.violation(name, f"only {len(created.ids)} created; refused: {dict(created.refused)}")


def check_terminal(report: Report, settle_s: float | None, settings: ChaosSettings) -> None:
    cycles, period = settings.settle_cycles, settings.sync_s
    name = (
        f"every execution terminal within {cycles} order-sync cycles ({cycles} × {period} s) once the faults "
        f"stop (the driver stopped, the last frozen process resumed)"
    )
    report.invariant(name)
    if settle_s is None:
        open_ = list(TradeExecution.objects.exclude(status__in=EXECUTION_TERMINAL_STATUSES).values_list("pk", "status"))
        for pk, status in open_:
            report.violation(name, f"execution {pk} still {status} after {settings.patience_s} s")
    elif settle_s > settings.settle_cycles * settings.sync_s:
        report.violation(name, f"terminal only after {settle_s:.1f} s ({settle_s / settings.sync_s:.1f} cycles)")
    for order in Order.objects.exclude(status__in=ORDER_TERMINAL_STATUSES).filter(
        execution__status__in=EXECUTION_TERMINAL_STATUSES
    ):
        report.violation(name, f"order {order.client_order_id} {order.status} under a terminal execution")


def check_orders(report: Report, venues: list[ChaosVenue]) -> dict[str, list[VenueOrder]]:
    """Orders at the venues against the database; returns the venue orders by client order id."""
    name = "orders at the venues = orders in the database (none lost, none duplicated, same status, quantity and fills)"
    report.invariant(name)
    venue_orders: dict[tuple[int, str], list[VenueOrder]] = defaultdict(list)
    by_cid: dict[str, list[VenueOrder]] = defaultdict(list)
    total_venue = 0
    for venue in venues:
        assert venue.account is not None
        for order in venue.orders():  # under our client order ids (OKX's clOrdId decoded)
            if not order.client_order_id.startswith(CLIENT_ID_PREFIX):
                continue
            total_venue += 1
            venue_orders[(venue.account.pk, order.client_order_id)].append(order)
            by_cid[order.client_order_id].append(order)
    db_orders = list(Order.objects.select_related("account").order_by("pk"))
    known = {(order.account_id, order.client_order_id) for order in db_orders}
    fills: dict[int, list[Fill]] = defaultdict(list)
    for fill in Fill.objects.all():
        fills[fill.order_id].append(fill)
    reached = 0
    for order in db_orders:
        at_venue = venue_orders.get((order.account_id, order.client_order_id), [])
        cid = order.client_order_id
        if len(at_venue) > 1:
            report.violation(name, f"{cid}: placed {len(at_venue)} times at {order.account}")
        if not at_venue:
            if order.exchange_order_id or order.status not in (OrderStatus.EXPIRED, OrderStatus.REJECTED):
                report.violation(name, f"{cid}: {order.status} (exchange id {order.exchange_order_id or '-'}) "
                                       f"in the database, no such order at {order.account.venue_id}")  # fmt: skip
            continue
        reached += 1
        remote = at_venue[-1]
        if remote.status != order.status or remote.executed_qty != order.filled_qty:
            report.violation(name, f"{cid}: venue {remote.raw_status} {fmt(remote.executed_qty)}, "
                                   f"database {order.status} {fmt(order.filled_qty)}")  # fmt: skip
        if remote.order_id != order.exchange_order_id:
            report.violation(name, f"{cid}: venue order id {remote.order_id}, database {order.exchange_order_id!r}")
        mine = sorted((f.trade_id, f.price, f.qty, f.commission, f.commission_asset) for f in fills[order.pk])
        theirs = sorted((f.trade_id, f.price, f.qty, f.commission, f.commission_asset) for f in remote.fills)
        if mine != theirs:
            report.violation(name, f"{cid}: fills differ: venue {theirs}, database {mine}")
    for (account_id, cid), orders in venue_orders.items():
        if (account_id, cid) not in known:
            report.violation(name, f"{cid}: at the venue ({orders[-1].raw_status}), unknown to the database")
    # Unresolved: fills missing at settlement, a malformed update, an order finished here and open there.
    for incident in Incident.objects.filter(kind=IncidentKind.ORDER_STATUS_DRIFT, resolved_at__isnull=True):
        report.violation(name, f"execution {incident.execution_id}: {incident.detail.get('reason', incident.detail)}")
    report.say(f"  orders: {len(db_orders)} in the database, {reached} reached a venue; "
               f"{total_venue} of ours at the venues")  # fmt: skip
    return by_cid


def check_balances(report: Report, venues: list[ChaosVenue]) -> None:
    name = "balances reconcile (venue = start + recorded fills; no sync found drift, during or after; nothing reserved)"
    report.invariant(name)
    for incident in Incident.objects.filter(kind=IncidentKind.BALANCE_DRIFT).order_by("pk"):
        report.violation(name, f"drift recorded during the run: account {incident.account_id} {incident.asset} "
                               f"local {incident.local_value}, venue {incident.venue_value} "
                               f"at {incident.detected_at:%H:%M:%S.%f}")  # fmt: skip
    for venue in venues:
        assert venue.account is not None
        final = venue.totals()
        deltas = fill_deltas(account_id=venue.account.pk, since=EPOCH)
        for asset in sorted(set(final) | set(venue.initial) | set(deltas)):
            expected = venue.initial.get(asset, ZERO) + deltas.get(asset, ZERO)
            if final.get(asset, ZERO) != expected:
                report.violation(name, f"{venue.code} {asset}: venue {fmt(final.get(asset, ZERO))}, "
                                       f"start + fills {fmt(expected)}")  # fmt: skip
        moved = ", ".join(f"{asset} {fmt(final.get(asset, ZERO) - venue.initial.get(asset, ZERO))}" for asset in FUNDS)
        report.say(f"  {venue.code}: balance change {moved}")
    drifts = balances_sync()
    for account_id, found in drifts.items():
        for drift in found:
            report.violation(name, f"balance sync of account {account_id}: {drift.asset} expected "
                                   f"{fmt(drift.expected)}, venue {fmt(drift.venue)}")  # fmt: skip
    for venue in venues:
        assert venue.account is not None
        balances = venue.balances()
        for row in AccountBalance.objects.filter(account=venue.account):
            free, locked = balances.get(row.asset, (ZERO, ZERO))
            if (row.free, row.locked) != (to_storage(free), to_storage(locked)):
                report.violation(name, f"{venue.code} {row.asset}: local {fmt(row.free)}/{fmt(row.locked)}, "
                                       f"venue {fmt(free)}/{fmt(locked)} after a sync")  # fmt: skip
            if row.reserved != 0:
                report.violation(name, f"{venue.code} {row.asset}: {fmt(row.reserved)} still reserved")
    for execution in TradeExecution.objects.exclude(reserved_quote=0, reserved_base=0):
        report.violation(name, f"execution {execution.pk} ({execution.status}) still holds its reservation")


def _records(orders: list[Order], fills: dict[int, list[Any]], *, venue_fills: bool) -> dict[str, list[pnl.FillRecord]]:
    groups: dict[str, list[pnl.FillRecord]] = {"buy": [], "sell": [], "unwind": []}
    for order in orders:
        group = "unwind" if order.leg == OrderLeg.UNWIND else "buy" if order.side == OrderSide.BUY else "sell"
        for fill in fills.get(order.client_order_id if venue_fills else order.pk, []):
            groups[group].append(
                pnl.FillRecord(
                    side=OrderSide(order.side),
                    price=fill.price,
                    qty=fill.qty,
                    quote_qty=fill.price * fill.qty,
                    commission=fill.commission,
                    commission_asset=fill.commission_asset,
                    commission_rate_to_quote=None if venue_fills else fill.commission_rate_to_quote,
                )
            )
    return groups


def check_profit(report: Report, venue_orders: dict[str, list[VenueOrder]]) -> None:
    name = "profit = Σ fills − fees for every settled execution (trading.pnl over the Fill rows and the venues' fills)"
    report.invariant(name)
    db_fills: dict[int, list[Fill]] = defaultdict(list)
    for fill in Fill.objects.all():
        db_fills[fill.order_id].append(fill)
    remote_fills = {cid: [f for order in orders for f in order.fills] for cid, orders in venue_orders.items()}
    orders_by_execution: dict[Any, list[Order]] = defaultdict(list)
    for order in Order.objects.order_by("pk"):
        orders_by_execution[order.execution_id].append(order)
    settled = total = ZERO
    count = 0
    for execution in TradeExecution.objects.order_by("started_at"):
        orders = orders_by_execution[execution.pk]
        if execution.actual_profit is None:
            if execution.status in (ExecutionStatus.COMPLETED, ExecutionStatus.UNWOUND):
                report.violation(name, f"execution {execution.pk} is {execution.status} without a profit")
            continue
        count += 1
        base, quote = execution.base_asset, execution.quote_asset
        for source, fills, venue_side in (("Fill rows", db_fills, False), ("venue fills", remote_fills, True)):
            groups = _records(orders, fills, venue_fills=venue_side)
            recomputed = to_storage(pnl.actual_profit(groups["buy"], groups["sell"], groups["unwind"], base, quote))
            if recomputed != execution.actual_profit:
                report.violation(name, f"execution {execution.pk}: recorded {fmt(execution.actual_profit)}, "
                                       f"{source} give {fmt(recomputed)}")  # fmt: skip
        settled += execution.actual_profit
        total += execution.expected_profit
    report.say(f"  settled executions: {count}; expected profit {fmt(total)}, actual profit {fmt(settled)} USDT")


def _signed_qty(orders: list[Order], fills: dict[Any, list[Any]], *, venue_fills: bool) -> Decimal:
    total = ZERO
    for order in orders:
        for fill in fills.get(order.client_order_id if venue_fills else order.pk, []):
            total += fill.qty if order.side == OrderSide.BUY else -fill.qty
    return total


def check_exposure(report: Report, venue_orders: dict[str, list[VenueOrder]]) -> None:
    name = ("residual exposure of every execution zero (base bought − sold over its fills), or the execution "
            "NEEDS_ATTENTION with an incident")  # fmt: skip
    report.invariant(name)
    db_fills: dict[Any, list[Fill]] = defaultdict(list)
    for fill in Fill.objects.all():
        db_fills[fill.order_id].append(fill)
    remote_fills = {cid: [f for order in orders for f in order.fills] for cid, orders in venue_orders.items()}
    orders_by_execution: dict[Any, list[Order]] = defaultdict(list)
    for order in Order.objects.order_by("pk"):
        orders_by_execution[order.execution_id].append(order)
    with_incident = set(Incident.objects.exclude(execution=None).values_list("execution_id", flat=True))
    exposed = 0
    for execution in TradeExecution.objects.order_by("started_at"):
        orders = orders_by_execution[execution.pk]
        at_venues = _signed_qty(orders, remote_fills, venue_fills=True)
        recorded = _signed_qty(orders, db_fills, venue_fills=False)
        residual = at_venues  # the venues' fills are what the account really holds
        if residual != 0:
            exposed += 1
            if execution.status != ExecutionStatus.NEEDS_ATTENTION or execution.pk not in with_incident:
                incident = "an incident" if execution.pk in with_incident else "no incident"
                report.violation(name, f"execution {execution.pk} {execution.status} with {incident}: "
                                       f"{fmt(residual)} {execution.base_asset} unhedged at the venues "
                                       f"(Fill rows say {fmt(recorded)})")  # fmt: skip
        if execution.status in (ExecutionStatus.COMPLETED, ExecutionStatus.UNWOUND, ExecutionStatus.FAILED) and (
            execution.residual_qty != to_storage(recorded)
        ):
            report.violation(name, f"execution {execution.pk} {execution.status}: residual recorded "
                                   f"{fmt(execution.residual_qty)}, its Fill rows give {fmt(recorded)}")  # fmt: skip
    report.say(f"  executions with a residual exposure: {exposed}")


def check_no_manual_step(report: Report) -> None:
    name = ("no manual step: no operator acted, every breaker closed by itself, every incident resolved by the "
            "platform or parked with its NEEDS_ATTENTION execution")  # fmt: skip
    report.invariant(name)
    for row in AuditLog.objects.exclude(actor=None).order_by("at"):
        report.violation(name, f"audit row by a user: {row}")
    for state in RiskState.objects.filter(breaker_open=True):
        until = f" until {state.breaker_until:%H:%M:%S}" if state.breaker_until else " with no end"
        report.violation(name, f"breaker of {state.account or GLOBAL_SCOPE}/{state.symbol or '-'} still open"
                               f"{until}: {state.breaker_reason}")  # fmt: skip
    unresolved = Incident.objects.filter(resolved_at=None).exclude(execution__status=ExecutionStatus.NEEDS_ATTENTION)
    for incident in unresolved.select_related("execution").order_by("detected_at"):
        execution = f"execution {incident.execution_id} ({incident.execution.status})" if incident.execution else ""
        report.violation(name, f"incident {incident.pk} {incident.kind} of {execution or 'no execution'} "
                               f"unresolved since {incident.detected_at:%H:%M:%S}: {incident.detail}")  # fmt: skip
    actions = Counter(AuditLog.objects.filter(action__startswith="breaker.").values_list("action", flat=True))
    resolved = Incident.objects.exclude(resolved_at=None).count()
    report.say(f"  breaker: {dict(actions) or 'never tripped'}; incidents resolved by the platform: {resolved}")


def check_logs(report: Report, platform: SupervisedPlatform) -> None:
    name = 'no "Unclosed client session" and no CRITICAL line in any platform process log'
    report.invariant(name)
    for what, process, line in platform.scan().forbidden:
        report.violation(name, f"{process}: {what}: {line.strip()[:300]}")


def summary(
    report: Report,
    created: Created,
    faults: FaultDriver,
    thawer: FaultPointThawer,
    platform: SupervisedPlatform,
    timings: dict[str, float],
) -> None:
    statuses = Counter(TradeExecution.objects.values_list("status", flat=True))
    orders = Counter(Order.objects.values_list("status", flat=True))
    legs = Counter(Order.objects.values_list("leg", flat=True))
    incidents = Counter(Incident.objects.values_list("kind", flat=True))
    risk = RiskState.objects.filter(account=GLOBAL_SCOPE, symbol="").first()
    if created.stalled:
        report.say(f"CREATION STALLED: every attempt refused for {STALL_S} s (see the refusals and the risk state)")
    report.say(f"executions created: {len(created.ids)} of {report.settings.executions} "
               f"(refused meanwhile: {dict(created.refused) or 'none'})")  # fmt: skip
    settle = timings.get("settle", float("nan"))
    report.say(f"chaos phase {timings['chaos']:.1f} s, faults wound down in {timings['finish']:.1f} s; every "
               f"execution terminal {settle:.1f} s after the faults ended (order sync every "
               f"{report.settings.sync_s} s)")  # fmt: skip
    recovered = timings.get("recovered")
    when = f"{recovered:.1f} s later" if recovered is not None else "NOT within a reconciliation cycle"
    report.say(f"recovered by itself (every incident resolved or parked, every breaker closed): {when}")
    report.say("faults injected:")
    mixed = len({venue.family for venue in faults.venues}) > 1
    for what, count in sorted(faults.done.items(), key=lambda item: -item[1]):
        families = faults.by_family.get(what)
        split = f" ({', '.join(f'{f} {n}' for f, n in sorted(families.items()))})" if mixed and families else ""
        report.say(f"  {count:5d}  {what}{split}")
    seen = platform.scan()
    points = ", ".join(f"{point} {count}" for point, count in sorted(seen.fault_points.items()))
    report.say(f"  {thawer.frozen:5d}  worker frozen at a fault point ({points or 'none logged'}); resumed by "
               f"SIGCONT after the visibility timeout: {thawer.resumed} (orphans of a dead worker by then: "
               f"{thawer.orphans}), died frozen: {thawer.gone}")  # fmt: skip
    if faults.outages:
        report.say(f"  server outages: {', '.join(faults.outages)}")
    if faults.errors:
        report.say(f"  fault driver errors: {faults.errors[:5]}")
    report.say("process kills (to the supervisor's pids): "
               + (", ".join(f"{what} {count}" for what, count in sorted(faults.kills.items())) or "none"))  # fmt: skip
    deaths = Counter(incarnation.name for incarnation in seen.exits)
    codes: dict[str, Counter[int]] = defaultdict(Counter)
    for incarnation in seen.exits:
        codes[incarnation.name][incarnation.exit_code or 0] += 1
    starts = platform.starts()
    report.say(f"supervisor: {len(seen.exits)} deaths, {sum(n - 1 for n in starts.values() if n)} restarts")
    for name in platform.names:
        rcs = ", ".join(f"rc={rc} ×{n}" for rc, n in sorted(codes[name].items()))
        report.say(f"  {name:<10} started {starts[name]} time(s), died {deaths[name]}" + (f" ({rcs})" if rcs else ""))
    report.say(f"executions by status: {dict(statuses)}")
    report.say(f"orders by status: {dict(orders)}; by leg: {dict(legs)}")
    report.say(f"incidents: {dict(incidents) or 'none'}")
    for incident in Incident.objects.filter(kind=IncidentKind.BALANCE_DRIFT).order_by("pk")[:5]:
        report.say(f"  balance drift: account {incident.account_id} {incident.asset} local {incident.local_value} "
                   f"venue {incident.venue_value} at {incident.detected_at:%H:%M:%S.%f}")  # fmt: skip
    for execution in TradeExecution.objects.filter(status=ExecutionStatus.NEEDS_ATTENTION)[:5]:
        report.say(f"  needs attention: {execution.pk}: {execution.error_message}")
    if risk is not None:
        report.say(f"risk: breaker {'OPEN (' + risk.breaker_reason + ')' if risk.breaker_open else 'closed'}, "
                   f"daily pnl {fmt(risk.daily_pnl)}")  # fmt: skip
