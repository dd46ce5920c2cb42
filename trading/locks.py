"""Every row lock trading takes, and the one order in which a transaction takes them.

A transaction that needs several of these takes them top to bottom, never back up; two writers
then never wait on each other in a circle (PostgreSQL would break the deadlock by failing one of
them). Within a level, rows are locked in primary-key order.

1. **An execution** (``execution_lock``, or the placement claim's ``UPDATE`` of its status). One
   execution per transaction; the batch jobs that lock many (``executions_lock``) take no other lock
   first.
2. **Its orders** (``order_lock``, ``orders_lock``, ``orders_claim_for_sync``). ``order_lock`` takes
   the execution first, so an update from the user stream and a settlement never cross.
3. **A paper venue's book** (``paper_book_lock``, a transaction-level advisory lock per venue and
   symbol): a paper taker order holds it while it takes the liquidity earlier fills left.
   **Account balances** (``balances_lock``, ``account_balances_lock``): reservations at creation,
   releases at settlement, the balance sync and the paper venue's fills.
4. **Paper venue orders** (``paper_orders_lock``), after the balances they move.
5. **Incidents** and **instruments**, which nothing above waits for.

Risk's state rows, the system configuration and notification rows are locked by their own apps'
services, in transactions of their own, never inside one of these.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet

from arbitragex.errors import NotFoundError
from marketdata.models import Instrument
from trading.models import AccountBalance, ExchangeAccount, Incident, Order, PaperOrder, TradeExecution

__all__ = [
    "account_balances_lock",
    "balances_lock",
    "execution_lock",
    "executions_lock",
    "incidents_lock",
    "instruments_lock",
    "order_lock",
    "orders_claim_for_sync",
    "orders_lock",
    "paper_book_lock",
    "paper_orders_lock",
]


def execution_lock(execution_id: uuid.UUID | str) -> TradeExecution | None:
    """Level 1: lock one execution (None when there is no such execution)."""
    return TradeExecution.objects.select_for_update(of=("self",)).filter(pk=execution_id).first()


def executions_lock(queryset: QuerySet[TradeExecution]) -> list[Any]:
    """Level 1, for batch jobs taking no other lock first: lock a set of executions; their ids."""
    return list(queryset.select_for_update(of=("self",)).order_by("pk").values_list("pk", flat=True))


def order_lock(
    *, order_id: int | None = None, client_order_id: str | None = None, account_id: int | None = None
) -> Order:
    """Levels 1 and 2: lock an order's execution, then the order (with its execution and venue)."""
    lookup: dict[str, Any] = {"pk": order_id} if order_id is not None else {"client_order_id": client_order_id}
    if account_id is not None:
        lookup["account_id"] = account_id
    ref = Order.objects.filter(**lookup).values_list("pk", "execution_id").first()
    if ref is None:
        raise NotFoundError(f"order {order_id or client_order_id} not found", {"order": order_id or client_order_id})
    execution_lock(ref[1])
    return Order.objects.select_for_update(of=("self",)).select_related("execution", "venue").get(pk=ref[0])


def orders_lock(queryset: QuerySet[Order]) -> list[Order]:
    """Level 2: lock orders, in primary-key order. Call with their execution locked."""
    return list(queryset.select_for_update(of=("self",)).order_by("pk"))


def orders_claim_for_sync(queryset: QuerySet[Order]) -> list[Order]:
    """Levels 1 and 2 at once, skipping what another writer holds: the periodic sync takes the orders
    nobody is working on, with their executions, and leaves the rest to the next run."""
    return list(
        queryset.select_related("execution", "venue")
        .select_for_update(skip_locked=True, of=("self", "execution"))
        .order_by("pk")
    )


def balances_lock(pairs: Iterable[tuple[int, str]]) -> dict[tuple[int, str], AccountBalance]:
    """Level 3: lock the existing balance rows of (account id, asset) pairs, in primary-key order."""
    wanted = set(pairs)
    if not wanted:
        return {}
    condition = Q()
    for account_id, asset in wanted:
        condition |= Q(account_id=account_id, asset=asset)
    rows = AccountBalance.objects.select_for_update(of=("self",)).filter(condition).order_by("pk")
    return {(row.account_id, row.asset): row for row in rows}


def account_balances_lock(account: ExchangeAccount) -> dict[str, AccountBalance]:
    """Level 3: lock every balance row of an account, in primary-key order; asset -> row."""
    rows = AccountBalance.objects.select_for_update(of=("self",)).filter(account=account).order_by("pk")
    return {row.asset: row for row in rows}


def paper_orders_lock(queryset: QuerySet[PaperOrder]) -> list[PaperOrder]:
    """Level 4: lock paper venue orders, in primary-key order. Call with their balances locked."""
    return list(queryset.select_for_update(of=("self",)).order_by("pk"))


def incidents_lock(queryset: QuerySet[Incident]) -> list[Incident]:
    """Level 5: lock incidents, in primary-key order."""
    return list(queryset.select_for_update(of=("self",)).order_by("pk"))


def instruments_lock(venue_id: int) -> dict[str, Instrument]:
    """Level 5: lock a venue's instruments; symbol -> instrument."""
    rows = Instrument.objects.select_for_update().filter(venue_id=venue_id).order_by("pk")
    return {row.symbol: row for row in rows}


def paper_book_lock(venue_id: int, symbol: str) -> None:
    """Level 3, before the balances: one paper taker at a time on a venue's book, until commit."""
    key = int.from_bytes(hashlib.blake2b(f"paper-book:{venue_id}:{symbol}".encode(), digest_size=8).digest(), "big")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key - (1 << 63)])  # a signed 64-bit key
