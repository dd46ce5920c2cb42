"""What operators are told, as pure values: the event kinds, their severities, and one builder per kind
that turns plain figures into an ``EventSpec`` (kind, severity, dedup key, title, body).

Nothing here reads the database or a clock; figures are formatted with ``arbitragex.display``. The
receivers and periodic checks gather the figures and record the spec (``notifications.services``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from django.db import models

from arbitragex import display


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


SEVERITY_RANK = {Severity.INFO: 10, Severity.WARNING: 20, Severity.CRITICAL: 30}


def severity_at_least(severity: str, minimum: str) -> bool:
    return SEVERITY_RANK[Severity(severity)] >= SEVERITY_RANK[Severity(minimum)]


class EventKind(models.TextChoices):
    BREAKER_TRIPPED = "breaker.tripped", "Breaker tripped"
    BREAKER_CLOSED = "breaker.closed", "Breaker closed"
    KILL_SWITCH = "kill_switch.changed", "Kill switch changed"
    EXECUTION_NEEDS_ATTENTION = "execution.needs_attention", "Execution needs attention"
    EXECUTION_RESIDUAL = "execution.residual_exposure", "Residual exposure above the threshold"
    RECONCILIATION_DRIFT = "reconciliation.drift", "Reconciliation drift"
    VENUE_BANNED = "venue.banned", "Venue banned us (418)"
    VENUE_RATE_LIMITED = "venue.rate_limited", "Venue rate-limited us for long"
    VENUE_DISCONNECTED = "venue.disconnected", "Venue stream disconnected"
    VENUE_STREAM_STALE = "venue.stream_stale", "Venue stream stale"
    ORDER_UNKNOWN = "order.unknown", "Order still UNKNOWN"
    PAIR_PAUSED = "pair.paused", "Venue pair paused (legging budget)"
    DAILY_SUMMARY = "summary.daily", "Daily summary"


# The severity each kind is raised with (the kill switch: warning when trading stops, info when it resumes).
KIND_SEVERITY: dict[str, str] = {
    EventKind.BREAKER_TRIPPED: Severity.CRITICAL,
    EventKind.BREAKER_CLOSED: Severity.INFO,
    EventKind.KILL_SWITCH: Severity.WARNING,
    EventKind.EXECUTION_NEEDS_ATTENTION: Severity.CRITICAL,
    EventKind.EXECUTION_RESIDUAL: Severity.WARNING,
    EventKind.RECONCILIATION_DRIFT: Severity.WARNING,
    EventKind.VENUE_BANNED: Severity.CRITICAL,
    EventKind.VENUE_RATE_LIMITED: Severity.WARNING,
    EventKind.VENUE_DISCONNECTED: Severity.WARNING,
    EventKind.VENUE_STREAM_STALE: Severity.WARNING,
    EventKind.ORDER_UNKNOWN: Severity.CRITICAL,
    EventKind.PAIR_PAUSED: Severity.WARNING,
    EventKind.DAILY_SUMMARY: Severity.INFO,
}


@dataclass(frozen=True, slots=True)
class EventSpec:
    kind: str
    severity: str
    key: str
    """Events with the same key are deduplicated and rate-limited together."""
    title: str
    body: str
    detail: Mapping[str, Any] = field(default_factory=dict)
    """JSON-safe figures kept with the event row (strings for decimals)."""


def when(moment: datetime | None) -> str:
    """An aware timestamp as operators read it: UTC, to the second."""
    if moment is None:
        return "—"
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("an aware datetime is required")
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def scope_label(account: str, symbol: str) -> str:
    return f"{account}/{symbol or '*'}"


def _by(actor_label: str) -> str:
    return actor_label or "the platform"


# --- risk ----------------------------------------------------------------------------------------------------


def breaker_tripped(*, account: str, symbol: str, reason: str, until: datetime | None, actor_label: str) -> EventSpec:
    scope = scope_label(account, symbol)
    closes = f"closes automatically at {when(until)}" if until else "stays open until an operator closes it"
    return EventSpec(
        kind=EventKind.BREAKER_TRIPPED,
        severity=Severity.CRITICAL,
        key=f"breaker.tripped:{scope}",
        title=f"Breaker tripped ({scope}): {reason}",
        body=f"The circuit breaker of {scope} opened: {reason}. No new execution starts in this scope; it "
        f"{closes}. Opened by {_by(actor_label)}.",
        detail={"account": account, "symbol": symbol, "reason": reason, "until": until.isoformat() if until else None},
    )


def breaker_closed(*, account: str, symbol: str, previous_reason: str, actor_label: str) -> EventSpec:
    scope = scope_label(account, symbol)
    was = f" (it had opened for: {previous_reason})" if previous_reason else ""
    return EventSpec(
        kind=EventKind.BREAKER_CLOSED,
        severity=Severity.INFO,
        key=f"breaker.closed:{scope}",
        title=f"Breaker closed ({scope})",
        body=f"The circuit breaker of {scope} was closed by {_by(actor_label)}{was}. Trading may resume in this scope.",
        detail={"account": account, "symbol": symbol, "previous_reason": previous_reason},
    )


def kill_switch_changed(*, enabled: bool, actor_label: str) -> EventSpec:
    state = "on" if enabled else "off"
    if enabled:
        body = f"Trading was turned ON by {_by(actor_label)}: executions may start again (risk checks still apply)."
    else:
        body = (
            f"Trading was turned OFF (kill switch) by {_by(actor_label)}: no new execution starts; executions "
            "already running are followed to the end."
        )
    return EventSpec(
        kind=EventKind.KILL_SWITCH,
        severity=Severity.INFO if enabled else Severity.WARNING,
        key=f"kill_switch:{state}",
        title=f"Kill switch: trading {state.upper()} (by {_by(actor_label)})",
        body=body,
        detail={"trading_enabled": enabled, "actor": _by(actor_label)},
    )


# --- executions ---------------------------------------------------------------------------------------------


def execution_needs_attention(
    *, execution_id: str, symbol: str, reason: str, residual_qty: Decimal, base_asset: str, step_size: Decimal
) -> EventSpec:
    residual = display.quantity(residual_qty, step_size)
    return EventSpec(
        kind=EventKind.EXECUTION_NEEDS_ATTENTION,
        severity=Severity.CRITICAL,
        key=f"execution.needs_attention:{execution_id}",
        title=f"Execution needs attention: {symbol} {execution_id}",
        body=f"Execution {execution_id} ({symbol}) was parked for an operator: {reason}. Residual exposure: "
        f"{residual} {base_asset}.",
        detail={"execution": execution_id, "symbol": symbol, "reason": reason, "residual_qty": str(residual_qty)},
    )


def execution_residual_exposure(
    *,
    execution_id: str,
    symbol: str,
    status: str,
    residual_qty: Decimal,
    base_asset: str,
    step_size: Decimal,
    notional: Decimal,
    quote_asset: str,
    threshold: Decimal,
) -> EventSpec:
    side = "long" if residual_qty > 0 else "short"
    return EventSpec(
        kind=EventKind.EXECUTION_RESIDUAL,
        severity=Severity.WARNING,
        key=f"execution.residual_exposure:{execution_id}",
        title=f"Residual exposure {display.money(notional, quote_asset)}: {symbol} {execution_id}",
        body=f"Execution {execution_id} ({symbol}) ended {status} with an unhedged {side} exposure of "
        f"{display.quantity(abs(residual_qty), step_size)} {base_asset}, worth about "
        f"{display.money(notional, quote_asset)} (threshold {display.money(threshold, quote_asset)}).",
        detail={
            "execution": execution_id,
            "symbol": symbol,
            "residual_qty": str(residual_qty),
            "notional": str(notional),
            "threshold": str(threshold),
        },
    )


# --- reconciliation --------------------------------------------------------------------------------------------


def reconciliation_drift(
    *,
    incident_id: int,
    incident_kind: str,
    incident_label: str,
    account: str,
    subject: str,
    local_value: str,
    venue_value: str,
    drift: str,
    note: str,
) -> EventSpec:
    lines = [f"Reconciliation found a difference on {account or 'an account'}: {incident_label} ({subject})."]
    if local_value or venue_value:
        lines.append(f"Here: {local_value or '—'}; at the venue: {venue_value or '—'}.")
    if drift:
        lines.append(f"Drift: {drift}.")
    if note:
        lines.append(note[0].upper() + note[1:] + ".")
    lines.append(f"Incident #{incident_id}.")
    return EventSpec(
        kind=EventKind.RECONCILIATION_DRIFT,
        severity=Severity.WARNING,
        key=f"reconciliation.drift:{incident_kind}:{account}:{subject}",
        title=f"Reconciliation: {incident_label} on {account or '?'} ({subject})",
        body=" ".join(lines),
        detail={"incident": incident_id, "kind": incident_kind, "account": account, "subject": subject},
    )


# --- venues --------------------------------------------------------------------------------------------------


def venue_banned(*, venue: str, until: datetime) -> EventSpec:
    return EventSpec(
        kind=EventKind.VENUE_BANNED,
        severity=Severity.CRITICAL,
        key=f"venue.banned:{venue}",
        title=f"Venue {venue} banned us (418) until {when(until)}",
        body=f"{venue} answered 418: every call to it is refused until {when(until)}, in every process. Orders "
        "cannot be placed or followed there meanwhile; check the request weight used.",
        detail={"venue": venue, "until": until.isoformat()},
    )


def venue_rate_limited(*, venue: str, since: datetime, until: datetime, threshold_s: int) -> EventSpec:
    seconds = int((until - since).total_seconds())
    return EventSpec(
        kind=EventKind.VENUE_RATE_LIMITED,
        severity=Severity.WARNING,
        key=f"venue.rate_limited:{venue}",
        title=f"Venue {venue} rate-limited us for {seconds} s",
        body=f"{venue} answered 429 with a Retry-After: calls to it are held back from {when(since)} until "
        f"{when(until)} ({seconds} s, more than the {threshold_s} s threshold).",
        detail={"venue": venue, "since": since.isoformat(), "until": until.isoformat()},
    )


def venue_disconnected(*, venue: str, reconnects: int, total: int) -> EventSpec:
    times = "once" if reconnects == 1 else f"{reconnects} times"
    return EventSpec(
        kind=EventKind.VENUE_DISCONNECTED,
        severity=Severity.WARNING,
        key=f"venue.disconnected:{venue}",
        title=f"Venue {venue}: stream disconnected {times}",
        body=f"The market stream of {venue} dropped and reconnected {times} since the last check "
        f"({total} reconnects in all).",
        detail={"venue": venue, "reconnects": reconnects, "total": total},
    )


def venue_stream_stale(*, venue: str, last_event_at: datetime, silent_s: int, threshold_s: int) -> EventSpec:
    return EventSpec(
        kind=EventKind.VENUE_STREAM_STALE,
        severity=Severity.WARNING,
        key=f"venue.stream_stale:{venue}",
        title=f"Venue {venue}: no market data for {silent_s} s",
        body=f"The market stream of {venue} has had no event since {when(last_event_at)} ({silent_s} s, more than "
        f"the {threshold_s} s threshold). Its quotes are ignored as stale until it resumes.",
        detail={"venue": venue, "last_event_at": last_event_at.isoformat(), "silent_s": silent_s},
    )


# --- orders and pairs --------------------------------------------------------------------------------------------


def order_unknown(
    *,
    client_order_id: str,
    execution_id: str,
    venue: str,
    symbol: str,
    side: str,
    quantity: Decimal,
    step_size: Decimal,
    since: datetime,
    minutes: int,
) -> EventSpec:
    return EventSpec(
        kind=EventKind.ORDER_UNKNOWN,
        severity=Severity.CRITICAL,
        key=f"order.unknown:{client_order_id}",
        title=f"Order {client_order_id} UNKNOWN for over {minutes} min ({venue} {symbol})",
        body=f"Order {client_order_id} ({side} {display.quantity(quantity, step_size)} {symbol} on {venue}, "
        f"execution {execution_id}) has been UNKNOWN since {when(since)}: the venue's answer was ambiguous and no "
        "query has resolved it. Check it at the venue.",
        detail={"client_order_id": client_order_id, "execution": execution_id, "venue": venue, "symbol": symbol},
    )


def pair_paused(
    *, buy_venue: str, sell_venue: str, symbol: str, reason: str, until: datetime | None, figures: Mapping[str, str]
) -> EventSpec:
    pair = f"{buy_venue}/{sell_venue}" + (f" {symbol}" if symbol else "")
    resumes = f"until {when(until)}" if until else "until an operator resumes it"
    shown = ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in figures.items())
    return EventSpec(
        kind=EventKind.PAIR_PAUSED,
        severity=Severity.WARNING,
        key=f"pair.paused:{buy_venue}:{sell_venue}:{symbol}",
        title=f"Pair {pair} paused: {reason}",
        body=f"The venue pair {pair} is paused {resumes}: its legging budget is spent ({reason})."
        + (f" Figures: {shown}." if shown else ""),
        detail={"buy_venue": buy_venue, "sell_venue": sell_venue, "symbol": symbol, "reason": reason,
                "until": until.isoformat() if until else None, "figures": dict(figures)},
    )  # fmt: skip


# --- the daily summary -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DailyFigures:
    day: date
    pnl: Mapping[str, Decimal]
    """Actual profit of the executions settled that day (COMPLETED or UNWOUND), per quote asset."""
    fees: Mapping[str, Decimal]
    """Fees of those executions, in their quote asset."""
    by_status: Mapping[str, int]
    """Executions started that day, per status."""
    taken: int
    """Opportunities detected that day and taken (turned into an execution)."""
    completed: int
    """Of those, the executions that completed."""


def daily_summary(figures: DailyFigures) -> EventSpec:
    def amounts(values: Mapping[str, Decimal]) -> str:
        return ", ".join(display.money(v, asset) for asset, v in sorted(values.items())) or "0"

    statuses = ", ".join(f"{status} {count}" for status, count in sorted(figures.by_status.items())) or "none"
    capture = display.percent(figures.completed, figures.taken)
    body = "\n".join(
        [
            f"PnL: {amounts(figures.pnl)}",
            f"Executions: {sum(figures.by_status.values())} ({statuses})",
            f"Capture rate: {capture} ({figures.completed} completed of {figures.taken} taken)",
            f"Fees: {amounts(figures.fees)}",
        ]
    )
    return EventSpec(
        kind=EventKind.DAILY_SUMMARY,
        severity=Severity.INFO,
        key=f"summary.daily:{figures.day.isoformat()}",
        title=f"Daily summary {figures.day.isoformat()} (UTC): PnL {amounts(figures.pnl)}",
        body=body,
        detail={
            "day": figures.day.isoformat(),
            "pnl": {asset: str(v) for asset, v in figures.pnl.items()},
            "fees": {asset: str(v) for asset, v in figures.fees.items()},
            "by_status": dict(figures.by_status),
            "taken": figures.taken,
            "completed": figures.completed,
        },
    )


# --- rate limiting -------------------------------------------------------------------------------------------------


def held_back_summary(*, count: int, since: datetime, latest_title: str, latest_body: str) -> tuple[str, str]:
    """Title and body of the one message that stands for ``count`` events held back since ``since``."""
    more = f"{count} more since {when(since)}"
    return f"{more}: {latest_title}", f"{more} (the same event, held back by the rate limit). Latest: {latest_body}"
