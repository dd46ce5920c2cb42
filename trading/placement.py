"""Sending an execution's orders to the venues (DESIGN.md, lifecycle step 4), idempotently.

``execution_place`` sends every order of the execution that the venue has not answered yet (PENDING,
or UNKNOWN after an ambiguous answer), the legs of one execution concurrently. It is what the Celery
task ``execution_place_orders`` runs, and it may run any number of times for one execution (a retry,
a redelivery after a worker died): the protocol below never places an order twice.

1. Lease. A Redis lock per execution lets one run at a time talk to the venues for it; another run
   reports "busy" and is retried. It saves work; nothing below depends on it for correctness, since
   Redis may lose it (a restart) and a frozen holder may outlive it.
2. Claim (one transaction, execution row then order rows locked): each order still PENDING gets
   ``place_attempts`` + 1 (its fencing number), ``submitted_at`` and ``send_deadline`` = now +
   ``ORDER_SEND_WINDOW_MS`` before anything is sent. After that commit a crash leaves a trace: the
   next run knows the order may have reached the venue. An order claimed before whose last claim's
   window is still open (``send_deadline`` + the clock margin not yet passed) is not claimed again:
   that claim's send may still arrive, so neither a lookup nor a send could decide anything yet.
3. Send (no transaction, no row lock held while a venue answers). An order that may have been sent
   before (``place_attempts`` > 0 before this run, or UNKNOWN) is first looked up by client order id;
   if the venue has it, its report is applied and it is not sent again. An UNKNOWN order the venue
   does not know is never re-sent: the settlement ends it (see ``trading.leg_failure``) once its
   window has closed. Immediately before sending, the run proves against the database that its claim
   is still the latest (the fencing number unchanged, the order still PENDING); a run that lost its
   claim (frozen past a redelivery) sends nothing. The request is signed with the claim's time and the
   window (Binance's ``timestamp`` and ``recvWindow``), so a send delayed after that proof is refused
   by the venue itself (-1021) rather than duplicating an order another run placed.
4. Apply each answer through ``trading.orders`` (the state machine): a report is applied; an
   ambiguous error makes the order UNKNOWN; a retryable one leaves it PENDING; a final one rejects it.
   UNKNOWN and retryable outcomes ask the task to run again, with exponential backoff and jitter.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Case, F, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from redis.exceptions import LockError, RedisError

from arbitragex import metrics
from arbitragex.background import background_run
from arbitragex.errors import ErrorCode
from arbitragex.faultpoints import fault_point
from arbitragex.services import config_values
from trading.effects import EXECUTION_PAYLOAD_FIELDS, execution_published_on_commit, settlement_due_on_commit
from trading.enums import ExecutionStatus, OrderStatus, OrderType, TimeInForce
from trading.gateways import GatewayFactory, gateway_for, gateway_shared
from trading.locks import orders_lock
from trading.models import ExchangeAccount, Order, TradeExecution
from trading.orders import order_apply_update, order_mark
from trading.state_machine import UpdateSource
from venues.gateway import (
    AmbiguousVenueError,
    FinalVenueError,
    Gateway,
    OrderReport,
    OrderRequest,
    RetryableVenueError,
    VenueError,
)

__all__ = [
    "PLACEABLE_EXECUTION_STATUSES",
    "PlacementResult",
    "execution_lease",
    "execution_place",
    "retry_countdown",
]

logger = logging.getLogger(__name__)


PLACEABLE_EXECUTION_STATUSES = frozenset(
    {ExecutionStatus.PENDING, ExecutionStatus.EXECUTING, ExecutionStatus.UNWINDING}
)
LEASE_TTL_S = 15
"""How long a lease outlives its holder: renewed every third of it while held, so the lease of a run
that died lapses within this (a fixed 150 s lease kept a killed worker's executions stuck that long)."""
LEASE_TIMEOUT_S = 150
"""The longest a run holds a lease, renewals included: past the task's hard time limit (120 s), so a
run still sending always holds it, and a run that hangs cannot hold it for ever."""
RETRY_BASE_S = 0.5
RETRY_CAP_S = 30.0


def retry_countdown(retries: int, *, base: float = RETRY_BASE_S, cap: float = RETRY_CAP_S) -> float:
    """Exponential backoff with jitter: about base * 2**retries, capped, spread over ±50 %."""
    delay = min(cap, base * (2 ** max(0, retries)))
    return delay * random.uniform(0.5, 1.5)  # noqa: S311 (jitter, not a secret)


def send_window_ms(leg_timeout_s: int) -> int:
    """How long a claimed order may still be accepted by the venue: at most half the leg timeout."""
    return max(1, min(settings.ORDER_SEND_WINDOW_MS, leg_timeout_s * 1000 // 2))


def send_window_closed(order: Order, now: datetime) -> bool:
    """Whether no send of the order's last claim can reach the venue any more (or it was never claimed)."""
    if order.send_deadline is None:
        return True
    return now >= order.send_deadline + timedelta(milliseconds=settings.VENUE_CLOCK_MARGIN_MS)


class LeaseLost(threading.Event):
    """Set when the lease could not be renewed: the run stops sending (it is not relied upon: see step 3)."""


@contextmanager
def execution_lease(execution_id: str) -> Iterator[LeaseLost | None]:
    """Hold the execution's placement lease while the block runs; yields None if another run holds it,
    else an event that is set if the lease is lost meanwhile."""
    # django-redis's cache has lock(): a Redis lock with a token, released only by its holder. Not
    # thread-local: the renewing thread extends the lock that this thread took.
    lock = cast(Any, cache).lock(f"trade:place-lease:{execution_id}", timeout=LEASE_TTL_S, thread_local=False)
    try:
        acquired = lock.acquire(blocking=False)
    except RedisError as exc:
        # Redis is down: the claim and its fencing number keep the sends safe; go on without the lease.
        logger.warning("placement lease of %s unavailable (%s): going on under the claim alone", execution_id, exc)
        yield LeaseLost()
        return
    if not acquired:
        yield None
        return
    # A thread, not a task: the block runs venue calls through async_to_sync and database work that
    # would starve a renewal scheduled on its own event loop.
    stop = threading.Event()
    lost = LeaseLost()
    renewer = threading.Thread(
        target=_lease_renew, args=(lock, execution_id, stop, lost), name=f"lease-{execution_id}", daemon=True
    )
    renewer.start()
    try:
        yield lost
    finally:
        stop.set()
        renewer.join()
        try:
            lock.release()
        except Exception:  # noqa: BLE001 (expired meanwhile: nothing left to release)
            logger.warning("placement lease of %s had expired before release", execution_id)


def _lease_renew(lock: Any, execution_id: str, stop: threading.Event, lost: threading.Event) -> None:
    """Reset the lease's time to live every third of it, until released or ``LEASE_TIMEOUT_S`` is reached."""
    until = time.monotonic() + LEASE_TIMEOUT_S - LEASE_TTL_S
    while not stop.wait(LEASE_TTL_S / 3) and time.monotonic() < until:
        try:
            lock.reacquire()
        except LockError as exc:  # it lapsed during a stall, and may be another run's now
            logger.warning("placement lease of %s lost: %s; this run sends nothing more", execution_id, exc)
            lost.set()
            return
        except Exception as exc:  # noqa: BLE001 (Redis unreachable: the lease still has the rest of its time to live)
            logger.warning("placement lease of %s not renewed: %s: %s", execution_id, type(exc).__name__, exc)


@dataclass
class PlacementResult:
    execution_id: str
    outcomes: dict[str, str] = field(default_factory=dict)
    """client order id -> what happened: placed, found, unknown, not_found, retryable, rejected."""
    retry: bool = False
    busy: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"execution_id": self.execution_id, "outcomes": self.outcomes, "retry": self.retry, "busy": self.busy}


@dataclass(frozen=True, slots=True)
class _Claim:
    order_id: int
    account_id: int
    account: ExchangeAccount  # with its venue: what the gateway is made from
    venue_code: str
    request: OrderRequest
    look_up_first: bool
    resend_allowed: bool
    token: int
    """The order's fencing number after this claim: a send goes out only while it is still the latest."""


@dataclass(frozen=True, slots=True)
class _Outcome:
    kind: str
    report: OrderReport | None = None
    error: VenueError | None = None


def execution_place(*, execution_id: str, gateway_factory: GatewayFactory | None = None) -> PlacementResult:
    """Send the execution's unanswered orders; see the module docstring for the protocol."""
    result = PlacementResult(execution_id=str(execution_id))
    with execution_lease(str(execution_id)) as lease:
        if lease is None:
            result.retry = result.busy = True
            return result
        # A second round sends what the first one's answers released: the sequential policy's hedge,
        # once its first leg has filled (trading.sequential), without waiting for another task.
        for round_ in range(PLACEMENT_ROUNDS):
            if round_ and not _released_since(str(execution_id)):
                break
            claims, waiting = _claim(str(execution_id))
            result.retry = waiting
            if not claims:
                break
            _place_claims(str(execution_id), claims, gateway_factory, lease, result)
    return result


def _released_since(execution_id: str) -> bool:
    """An order never sent and no longer held: released by the round that just ended."""
    return Order.objects.filter(
        execution__pk=execution_id, status=OrderStatus.PENDING, held=False, place_attempts=0
    ).exists()


PLACEMENT_ROUNDS = 2


def _place_claims(
    execution_id: str,
    claims: list[_Claim],
    gateway_factory: GatewayFactory | None,
    lease: LeaseLost,
    result: PlacementResult,
) -> None:
    fault_point("placement.after_claim")
    try:
        outcomes = _send_all(claims, gateway_factory, lease)
        # The claim's change, published once the orders are out: the read, the cache round trip
        # and the fan-out need not delay them.
        _execution_published(execution_id)
        crash: BaseException | None = None
        for claim, outcome in zip(claims, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                crash = crash or outcome
                continue
            result.outcomes[claim.request.client_order_id] = outcome.kind
            result.retry |= _apply(claim, outcome)
        if crash is not None:
            raise crash
    finally:
        if any(claim.resend_allowed for claim in claims):
            _settle_schedule(execution_id)


def _execution_published(execution_id: str) -> None:
    execution = TradeExecution.objects.only(*EXECUTION_PAYLOAD_FIELDS).filter(pk=execution_id).first()
    if execution is not None:
        execution_published_on_commit(execution)


def _settle_schedule(execution_id: str) -> None:
    """Schedule the settlement that enforces the leg timeout (the periodic order sync does too).

    Scheduled once the legs are sent, not with the claim: on the way to the venue, the broker round
    trip (and, with eager tasks, the whole settlement, whose countdown eager mode ignores) would delay
    the orders. A run that dies in between leaves its orders PENDING and claimed: the redelivered run
    claims them again and schedules it then. A settlement of a finished execution does nothing.
    """
    timeout_s = config_values()["leg_timeout_s"]
    settlement_due_on_commit(execution_id, countdown=timeout_s + 1)


def _request(order: Order, *, claimed_at: datetime, window_ms: int) -> OrderRequest:
    is_limit = order.type == OrderType.LIMIT
    return OrderRequest(
        symbol=order.symbol,
        side=order.side,  # type: ignore[arg-type]
        type=OrderType(order.type),
        quantity=order.quantity,
        client_order_id=order.client_order_id,
        price=order.price if is_limit else None,
        time_in_force=TimeInForce(order.time_in_force) if is_limit and order.time_in_force else None,
        claimed_at_ms=int(claimed_at.timestamp() * 1000),
        valid_for_ms=window_ms,
    )


_CLAIM_ORDER_FIELDS = (
    "status",
    "place_attempts",
    "send_deadline",
    "symbol",
    "side",
    "type",
    "quantity",
    "price",
    "time_in_force",
    "client_order_id",
    "account",
    "venue__code",
)


def _claim(execution_id: str) -> tuple[list[_Claim], bool]:
    """The orders to send or look up, claimed; the execution EXECUTING, its first send time kept.

    Also says whether an order was left for later because its last claim's send may still arrive.
    """
    now = timezone.now()
    window_ms = send_window_ms(config_values()["leg_timeout_s"])
    deadline = now + timedelta(milliseconds=window_ms)
    with transaction.atomic():
        # The execution row is locked by the UPDATE that marks it (one round trip on the way to the
        # venue rather than a SELECT ... FOR UPDATE and an UPDATE); with no order to claim, that
        # UPDATE is rolled back.
        executing = TradeExecution.objects.filter(pk=execution_id, status__in=PLACEABLE_EXECUTION_STATUSES).update(
            status=Case(
                When(status=ExecutionStatus.PENDING, then=Value(ExecutionStatus.EXECUTING)), default=F("status")
            ),
            submitted_at=Coalesce("submitted_at", Value(now)),
            updated_at=now,
        )
        if not executing:
            return [], False
        # Only the columns used (Django's cost per query grows with its columns), and the whole
        # account and venue, which the gateway is made from.
        orders = orders_lock(
            Order.objects.filter(
                execution__pk=execution_id, status__in=[OrderStatus.PENDING, OrderStatus.UNKNOWN], held=False
            )
            .select_related("venue", "account__venue")
            .only(*_CLAIM_ORDER_FIELDS)
        )
        if not orders:
            transaction.set_rollback(True)
            return [], False
        claims = []
        claimed: list[int] = []
        waiting = False
        for order in orders:
            unknown = order.status == OrderStatus.UNKNOWN
            if not unknown and order.place_attempts > 0 and not send_window_closed(order, now):
                waiting = True  # the last claim's send may still reach the venue
                continue
            claims.append(
                _Claim(
                    order_id=order.pk,
                    account_id=order.account_id,
                    account=order.account,
                    venue_code=order.venue.code,
                    request=_request(order, claimed_at=now, window_ms=window_ms),
                    look_up_first=unknown or order.place_attempts > 0,
                    resend_allowed=not unknown,
                    token=order.place_attempts if unknown else order.place_attempts + 1,
                )
            )
            if unknown:
                continue
            claimed.append(order.pk)
        if claimed:
            # One statement for every order claimed (this is on the way to the venue): each attempt is
            # counted (the fencing number), and an order keeps the time it was first sent.
            Order.objects.filter(pk__in=claimed).update(
                place_attempts=F("place_attempts") + 1,
                send_deadline=Value(deadline),
                submitted_at=Coalesce("submitted_at", Value(now)),
                updated_at=now,
            )
        elif not claims:
            transaction.set_rollback(True)
    return claims, waiting


def claims_still_held(claims: list[_Claim]) -> set[int]:
    """The orders whose claim is still the latest: fencing number unchanged, still PENDING. One query."""
    if not claims:
        return set()
    tokens = {claim.order_id: claim.token for claim in claims}
    rows = Order.objects.filter(pk__in=list(tokens)).values_list("pk", "place_attempts", "status")
    return {pk for pk, attempts, status in rows if attempts == tokens[pk] and status == OrderStatus.PENDING}


async def _send(gateway: Gateway, claim: _Claim, lease: LeaseLost, fenced: bool) -> _Outcome:  # noqa: C901 (each branch is one answer a venue can give to a send; read as a table)
    """``fenced``: the claim was proven still held just before; else it is proven here, after the lookup."""
    request = claim.request
    if claim.look_up_first:
        try:
            found = await gateway.get_order(symbol=request.symbol, client_order_id=request.client_order_id)
        except VenueError as exc:
            return _Outcome("retryable", error=exc)
        if found is not None:
            return _Outcome("found", report=found)
        if not claim.resend_allowed:
            return _Outcome("not_found")
    if not fenced and claim.order_id not in await sync_to_async(claims_still_held)([claim]):
        return _Outcome("claim_lost")
    if lease.is_set():
        return _Outcome("claim_lost")
    fault_point("placement.before_send")
    try:
        with metrics.order_placement_seconds.labels(venue=claim.venue_code).time():
            report = await gateway.place_order(request)
        return _Outcome("placed", report=report)
    except AmbiguousVenueError as exc:
        return _Outcome("unknown", error=exc)
    except RetryableVenueError as exc:
        return _Outcome("retryable", error=exc)
    except FinalVenueError as exc:
        if exc.code == ErrorCode.VENUE_DUPLICATE_ORDER:
            # Our id is open at the venue already: that order is ours, so take its state.
            try:
                found = await gateway.get_order(symbol=request.symbol, client_order_id=request.client_order_id)
            except VenueError as lookup_error:
                return _Outcome("retryable", error=lookup_error)
            if found is not None:
                return _Outcome("found", report=found)
        return _Outcome("rejected", error=exc)


def _send_all(
    claims: list[_Claim], factory: GatewayFactory | None, lease: LeaseLost | None = None
) -> list[_Outcome | BaseException]:
    accounts = {claim.account_id: claim.account for claim in claims}
    lease = lease if lease is not None else LeaseLost()
    # The claims that send without a lookup are proven held here, in one query for all of them, just
    # before they go out; the others are proven after their lookup.
    direct = [claim for claim in claims if not claim.look_up_first]
    held = claims_still_held(direct)

    async def one(gateway: Gateway, claim: _Claim) -> _Outcome:
        if not claim.look_up_first and claim.order_id not in held:
            return _Outcome("claim_lost")
        return await _send(gateway, claim, lease, fenced=not claim.look_up_first)

    async def send_all(gateways: dict[int, Gateway]) -> list[_Outcome | BaseException]:
        # return_exceptions: one leg failing in an unexpected way must not lose the other's answer.
        return await asyncio.gather(
            *(one(gateways[claim.account_id], claim) for claim in claims), return_exceptions=True
        )

    if factory is None and not transaction.get_connection().in_atomic_block:
        shared = {pk: gateway_shared(account) for pk, account in accounts.items()}
        if all(gateway is not None for gateway in shared.values()):
            # Live Binance legs: the process's gateways, whose clients stay connected between runs.
            return background_run(send_all(cast(dict[int, Gateway], shared)))

    gateways = {pk: (factory or gateway_for)(account) for pk, account in accounts.items()}

    async def send_and_close() -> list[_Outcome | BaseException]:
        try:
            return await send_all(gateways)
        finally:
            for gateway in gateways.values():
                await gateway.close()

    return async_to_sync(send_and_close)()


def _apply(claim: _Claim, outcome: _Outcome) -> bool:
    """Record one outcome; True when the order needs another run."""
    if outcome.report is not None:
        source = UpdateSource.PLACE if outcome.kind == "placed" else UpdateSource.POLL
        order_apply_update(order_id=claim.order_id, update=outcome.report, source=source)
        return False
    error = outcome.error
    if outcome.kind == "claim_lost":
        logger.warning("placement of %s not sent: a later run holds its claim", claim.request.client_order_id)
        return False
    if outcome.kind == "unknown":
        logger.warning("placement of %s is ambiguous: %s", claim.request.client_order_id, error)
        order_mark(order_id=claim.order_id, status=OrderStatus.UNKNOWN, error=error)
        return True
    if outcome.kind == "rejected":
        order_mark(order_id=claim.order_id, status=OrderStatus.REJECTED, error=error)
        return False
    if outcome.kind == "retryable" and error is not None:
        # Nothing was placed: the claim's window need not be waited out by the next run. Only while this
        # run's claim is the latest: a late run's refused send says nothing of an order placed meanwhile.
        held = Order.objects.filter(pk=claim.order_id, status__in=[OrderStatus.PENDING, OrderStatus.UNKNOWN])
        if claim.resend_allowed:
            held = held.filter(place_attempts=claim.token)
        held.update(
            error_code=error.venue_code if error.venue_code is not None else int(error.code),
            error_message=error.message[:1000],
            send_deadline=None if claim.resend_allowed else F("send_deadline"),
            updated_at=timezone.now(),
        )
    return True
