"""Reads of the trading app: one execution (cache-aside), the API's lists, an execution's orders, and the
accounts that trade on a venue. The statistics are in ``trading.statistics``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import Prefetch, QuerySet

from arbitragex.db import db_errors
from arbitragex.errors import ApplicationError, ErrorCode
from marketdata.models import Venue
from trading.enums import EXECUTION_FINAL_STATUSES, EXECUTION_OPEN_STATUSES
from trading.models import AccountBalance, ArbitrageOpportunity, ExchangeAccount, Fill, Order, TradeExecution

# A final execution changes only when an operator reopens it; an open one changes by the millisecond.
# Every write drops the entry after commit (``trading.effects``); the short life of an open one's entry
# bounds what a write path that forgot to would cost.
EXECUTION_CACHE_TTL_FINAL = 300
EXECUTION_CACHE_TTL_OPEN = 10
EXECUTION_MISS_TTL = 60
_MISS = "__missing__"


def execution_cache_key(execution_id: uuid.UUID | str) -> str:
    return f"trade:execution:{execution_id}"


def execution_get(*, execution_id: uuid.UUID | str) -> TradeExecution:
    """One execution with its orders and their fills (``execution_detail``), through the cache.

    Cache-aside, as the original design has it: the cache first, then the database, whose answer is
    kept. A miss is kept too, as a marker, for a minute, so that lookups of ids that do not exist
    (typos, scans) do not reach the database every time. The API's detail and the admin read here.
    """
    key = execution_cache_key(execution_id)
    cached = cache.get(key)
    if cached == _MISS:
        raise ApplicationError(ErrorCode.DB_NOT_FOUND, f"execution {execution_id} not found")
    if cached is not None:
        return cached
    try:
        ident = uuid.UUID(str(execution_id))
    except ValueError:
        raise ApplicationError(ErrorCode.INVALID_PARAMETER, f"{execution_id!r} is not an execution id") from None
    try:
        execution = execution_detail(execution_id=ident)
    except ApplicationError as exc:
        if exc.code == ErrorCode.DB_NOT_FOUND:
            cache.set(key, _MISS, timeout=EXECUTION_MISS_TTL)
            raise ApplicationError(ErrorCode.DB_NOT_FOUND, f"execution {execution_id} not found") from None
        raise
    final = execution.status in EXECUTION_FINAL_STATUSES
    cache.set(key, execution, timeout=EXECUTION_CACHE_TTL_FINAL if final else EXECUTION_CACHE_TTL_OPEN)
    return execution


def orders_by_execution(*, execution_id: uuid.UUID | str, related: Sequence[str] = ()) -> list[Order]:
    """An execution's orders in the order they were created (main legs, then retries and unwinds), with
    the ``related`` rows joined in (e.g. ``account__venue`` to reach the venue)."""
    queryset = Order.objects.filter(execution_id=uuid.UUID(str(execution_id)))
    if related:
        queryset = queryset.select_related(*related)
    return list(queryset.order_by("pk"))


def executions_open_count() -> int:
    """Executions not yet in a terminal status, for the ``max_open_executions`` check."""
    return TradeExecution.objects.filter(status__in=EXECUTION_OPEN_STATUSES).count()


def account_for_venue(*, venue_id: int) -> ExchangeAccount | None:
    """The account that trades on a venue: its enabled account with the lowest pk."""
    accounts = ExchangeAccount.objects.filter(venue_id=venue_id, enabled=True).select_related("venue")
    return accounts.order_by("pk").first()


def accounts_for_venues(*, venue_ids: list[int]) -> dict[int, ExchangeAccount]:
    """``account_for_venue`` of several venues in one query: venue id -> account."""
    accounts: dict[int, ExchangeAccount] = {}
    queryset = ExchangeAccount.objects.filter(venue_id__in=venue_ids, enabled=True).select_related("venue")
    for account in queryset.order_by("-pk"):
        accounts[account.venue_id] = account  # the lowest pk comes last and stays
    return accounts


EXECUTION_NAMED_RELATIONS = ("buy_venue", "sell_venue", "buy_account", "sell_account", "created_by")


def executions_list() -> QuerySet[TradeExecution]:
    """Executions, newest first. A page's venue codes, account names and creators are attached by
    ``executions_names_attach`` rather than joined in: PostgreSQL spends several milliseconds planning
    the six-table join (more than running it), on every page of the API."""
    return TradeExecution.objects.order_by("-started_at", "-id")


def executions_names_attach(executions: Sequence[TradeExecution]) -> None:
    """Attach the venues, accounts and creators of a page of executions: one query per table (two or
    three, whatever the page's size), each a primary-key lookup in a small table."""
    if not executions:
        return
    venues = Venue.objects.in_bulk({e.buy_venue_id for e in executions} | {e.sell_venue_id for e in executions})
    accounts = ExchangeAccount.objects.in_bulk(
        {e.buy_account_id for e in executions} | {e.sell_account_id for e in executions}
    )
    creator_ids = {e.created_by_id for e in executions if e.created_by_id is not None}
    creators = get_user_model().objects.in_bulk(creator_ids) if creator_ids else {}
    for execution in executions:
        execution.buy_venue = venues[execution.buy_venue_id]
        execution.sell_venue = venues[execution.sell_venue_id]
        execution.buy_account = accounts[execution.buy_account_id]
        execution.sell_account = accounts[execution.sell_account_id]
        if execution.created_by_id is not None:
            execution.created_by = creators[execution.created_by_id]


def execution_detail(*, execution_id: uuid.UUID | str) -> TradeExecution:
    """One execution from the database with its orders and their fills: three queries, whatever the
    number of orders and fills."""
    orders = Order.objects.select_related("account", "venue").order_by("created_at", "id")
    fills = Fill.objects.order_by("filled_at", "id")
    queryset = (
        executions_list()
        .select_related(*EXECUTION_NAMED_RELATIONS)
        .prefetch_related(Prefetch("orders", queryset=orders), Prefetch("orders__fills", queryset=fills))
    )
    with db_errors("execution"):
        return queryset.get(pk=uuid.UUID(str(execution_id)))


def orders_list() -> QuerySet[Order]:
    return Order.objects.select_related("account", "venue").order_by("-id")


def opportunities_list() -> QuerySet[ArbitrageOpportunity]:
    return ArbitrageOpportunity.objects.select_related("buy_venue", "sell_venue").order_by("-detected_at", "-id")


def balances_list() -> QuerySet[AccountBalance]:
    return AccountBalance.objects.select_related("account__venue").order_by("account__name", "asset")
