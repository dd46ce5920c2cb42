"""Receivers of the signals the apps below send: each gathers the figures of its event and records it
(``notifications.services.event_record``) in the sender's transaction.

A receiver runs inside the action that raised the event, so it must never make that action fail: its
work runs in a savepoint, and any error is logged and swallowed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from functools import wraps
from typing import Any

from django.db import transaction

from arbitragex import signals as core_signals
from arbitragex.money import MONEY_CONTEXT, ZERO
from arbitragex.services import config_values
from marketdata.models import Instrument
from notifications import events
from notifications.services import event_record
from risk import signals as risk_signals
from risk.models import RiskState
from trading import signals as trading_signals
from trading.enums import IncidentKind
from trading.models import Incident, TradeExecution
from venues import signals as venue_signals

__all__ = ["connect"]

logger = logging.getLogger(__name__)

KILL_SWITCH_KEY = "trading_enabled"

Receiver = Callable[..., None]


def _never_fails(receiver: Receiver) -> Receiver:
    @wraps(receiver)
    def safe(sender: Any, **kwargs: Any) -> None:
        try:
            # A savepoint: a failed query here must not leave the sender's transaction unusable.
            with transaction.atomic():
                receiver(sender, **kwargs)
        except Exception:
            logger.exception("notifications: the %s receiver failed; the action goes on", receiver.__name__)

    return safe


def _actor_label(actor: Any) -> str:
    if actor is not None and getattr(actor, "is_authenticated", False):
        return str(actor.get_username())
    return ""


def _step_size(venue_id: int, symbol: str) -> Decimal:
    step = Instrument.objects.filter(venue_id=venue_id, symbol=symbol).values_list("step_size", flat=True).first()
    return step if step is not None else ZERO


@_never_fails
def on_config_changed(sender: Any, *, key: str, previous: Any, value: Any, actor: Any = None, **_: Any) -> None:
    if key != KILL_SWITCH_KEY or previous == value:
        return
    event_record(events.kill_switch_changed(enabled=bool(value), actor_label=_actor_label(actor)))


@_never_fails
def on_breaker_tripped(sender: Any, *, state: RiskState, reason: str, actor: Any = None, **_: Any) -> None:
    event_record(
        events.breaker_tripped(
            account=state.account,
            symbol=state.symbol,
            reason=reason,
            until=state.breaker_until,
            actor_label=_actor_label(actor),
        )
    )


@_never_fails
def on_breaker_closed(sender: Any, *, state: RiskState, previous: dict[str, Any], actor: Any = None, **_: Any) -> None:
    if not previous.get("open"):
        return  # closing a closed breaker changes nothing worth a message
    event_record(
        events.breaker_closed(
            account=state.account,
            symbol=state.symbol,
            previous_reason=str(previous.get("reason") or ""),
            actor_label=_actor_label(actor),
        )
    )


@_never_fails
def on_execution_needs_attention(sender: Any, *, execution: TradeExecution, reason: str, **_: Any) -> None:
    event_record(
        events.execution_needs_attention(
            execution_id=str(execution.pk),
            symbol=execution.symbol,
            reason=reason,
            residual_qty=execution.residual_qty,
            base_asset=execution.base_asset,
            step_size=_step_size(execution.buy_venue_id, execution.symbol),
        )
    )


def on_execution_finished(sender: Any, *, execution: TradeExecution, **_: Any) -> None:
    # Every execution ends here: most are hedged, and those cost no savepoint.
    if execution.residual_qty:
        _residual_exposure(sender, execution=execution)


@_never_fails
def _residual_exposure(sender: Any, *, execution: TradeExecution) -> None:
    residual = Decimal(execution.residual_qty)
    # Valued at the price of the leg that left it: bought too much at the buy price, sold too much at the sell.
    reference = execution.buy_price if residual > 0 else execution.sell_price
    notional = MONEY_CONTEXT.multiply(abs(residual), Decimal(reference))
    threshold: Decimal = config_values()["notify_residual_notional"]
    if notional <= threshold:
        return
    event_record(
        events.execution_residual_exposure(
            execution_id=str(execution.pk),
            symbol=execution.symbol,
            status=execution.status,
            residual_qty=residual,
            base_asset=execution.base_asset,
            step_size=_step_size(execution.buy_venue_id, execution.symbol),
            notional=notional,
            quote_asset=execution.quote_asset,
            threshold=threshold,
        )
    )


@_never_fails
def on_incident_raised(sender: Any, *, incident: Incident, **_: Any) -> None:
    if incident.kind == IncidentKind.LEG_FAILURE:
        return  # told as "execution needs attention", with the execution's figures
    detail = incident.detail if isinstance(incident.detail, dict) else {}
    subject = str(detail.get("client_order_id") or incident.asset or incident.symbol or "?")
    note = str(detail.get("note") or detail.get("error") or "")
    event_record(
        events.reconciliation_drift(
            incident_id=incident.pk,
            incident_kind=incident.kind,
            incident_label=str(IncidentKind(incident.kind).label).lower(),
            account=incident.account.name if incident.account_id and incident.account else "",
            subject=subject,
            local_value=incident.local_value,
            venue_value=incident.venue_value,
            drift=str(incident.drift.normalize()) if incident.drift is not None else "",
            note=note,
        )
    )


@_never_fails
def on_venue_banned(sender: Any, *, venue_code: str, until: datetime, **_: Any) -> None:
    event_record(events.venue_banned(venue=venue_code, until=until))


@_never_fails
def on_pair_paused(
    sender: Any,
    *,
    buy_venue: str,
    sell_venue: str,
    reason: str,
    symbol: str = "",
    until: datetime | None = None,
    figures: dict[str, str] | None = None,
    **_: Any,
) -> None:
    event_record(
        events.pair_paused(
            buy_venue=buy_venue,
            sell_venue=sell_venue,
            symbol=symbol,
            reason=reason,
            until=until,
            figures={str(k): str(v) for k, v in (figures or {}).items()},
        )
    )


_CONNECTIONS = [
    (core_signals.config_changed, on_config_changed),
    (risk_signals.breaker_tripped, on_breaker_tripped),
    (risk_signals.breaker_closed, on_breaker_closed),
    (trading_signals.execution_needs_attention, on_execution_needs_attention),
    (trading_signals.execution_finished, on_execution_finished),
    (trading_signals.incident_raised, on_incident_raised),
    (venue_signals.venue_banned, on_venue_banned),
    (trading_signals.pair_paused, on_pair_paused),
]


def connect() -> None:
    for signal, receiver in _CONNECTIONS:
        signal.connect(receiver, dispatch_uid=f"notifications.{receiver.__name__}")
