"""Order sync at 10,000 open orders across 20 symbols: venue requests, weight and seconds per cycle.

The service measured is the periodic ``trading.sync.orders_sync_open`` (the Celery task
``orders_sync_open`` runs nothing else), through ``BinanceGateway`` and python-binance against two
fake Binance venues in their own process. The desk: 2 venues, 2 live accounts on each, 20 symbols;
the orders are the legs of 5,000 executions (a buy on one venue, a sell on the other), spread evenly
over the 80 (account, symbol) pairs, resting at the venues as LIMIT GTC orders away from the market
and SUBMITTED in the database.

Cycles measured, each with its venue requests (as the venues logged them), the request weight they
were charged and the wall time of the whole cycle (venue calls, the row locks and the bulk writes):

- ``steady``: nothing changed since the last cycle: one ``openOrders`` per (account, symbol).
- ``after_changes``: 1 % of the orders were cancelled at the venues behind the platform's back: they
  left the open lists, so each is queried once and its new status written.
- ``fewer_orders``: the same 80 pairs holding a fifth of the orders (measured first, in steady
  state): the request count follows the pairs, not the orders.

Baseline, same run and same code: the cycle with the list call taken away (a gateway whose
``open_orders`` answers nothing), so that every open order is queried on its own: per-order polling,
as the original design did it. Binance allows 6,000 weight a minute per IP; the benchmark raises the
shared limiter's budget so that the baseline is not paced by it, and reports the weight instead.
"""

from __future__ import annotations

import time
from decimal import ROUND_UP, Decimal
from typing import Any

from bench._desk import SYMBOLS, configure, desk_create, rate_limit_keys_drop, rate_limits_raise, symbol_specs
from bench._support import FULL, Mode, VenueHost, cache_clear, database_fresh

TITLE = "order sync: 10,000 open orders, 20 symbols, 4 accounts on 2 venues"

DATABASE = "arbx_bench_sync"
CODES = ["bench-a", "bench-b"]
SYMBOL_COUNT = 20
ACCOUNTS_PER_VENUE = 2
BINANCE_WEIGHT_PER_MINUTE = 6_000
TARGET_FEWER_REQUESTS = 20

D = Decimal


def run(mode: Mode = FULL) -> dict[str, Any]:
    orders = mode.pick(10_000, 10_000, 400)
    database_fresh(mode.database(DATABASE))
    cache_clear()
    rate_limit_keys_drop(CODES)
    host = VenueHost(2, name="sync-venues")
    try:
        balances = {"USDT": "1000000000", **{base: "1000000000" for _, base, *_ in SYMBOLS[:SYMBOL_COUNT]}}
        desk = desk_create(
            host.venues, codes=CODES, symbols=SYMBOL_COUNT, accounts_per_venue=ACCOUNTS_PER_VENUE, balances=balances
        )
        host.call(
            "setup",
            symbols=symbol_specs(SYMBOL_COUNT),
            accounts=[
                {"venue": index, "api_key": key, "api_secret": secret, "balances": balances}
                for index, key, secret in desk.keys.values()
            ],
        )
        configure(leg_timeout_s=3600)  # the sweep of timed-out legs finds nothing: only the sync is measured
        rate_limits_raise(CODES, 10_000_000)
        pairs = len(desk.keys) * SYMBOL_COUNT

        first = orders // 5
        _orders_create(host, desk, 0, first)
        _cycle(host)  # the first cycle writes what the venues answered (exchange order ids)
        fewer = _cycle(host)
        _orders_create(host, desk, first, orders)
        _cycle(host)  # a first full cycle, so that each measured one starts from the same state
        steady = _cycle(host)
        baseline = _cycle(host, per_order=True)
        changed = _orders_cancel(host, desk, orders // 100)
        after_changes = _cycle(host)
        if after_changes["updated"] != changed:
            raise AssertionError(f"{changed} orders left the venue's open lists, {after_changes['updated']} updated")
    finally:
        host.stop()
    figures: dict[str, Any] = {"open_orders": orders, "symbols": SYMBOL_COUNT, "account_symbol_pairs": pairs}
    for name, cycle in (("steady", steady), ("after_changes", after_changes), ("fewer_orders", fewer)):
        figures.update({f"{name}_{key}": value for key, value in cycle.items()})
    baseline.pop("open_orders_calls")  # counted by the service, but the baseline's gateway never calls
    figures.update({f"baseline_per_order_{key}": value for key, value in baseline.items()})
    ratio = baseline["requests"] / steady["requests"]
    figures.update(
        {
            "fewer_orders_open": first,
            "requests_ratio_baseline_to_sync": round(ratio, 1),
            "weight_ratio_baseline_to_sync": round(baseline["weight"] / steady["weight"], 1),
            "binance_weight_per_minute": BINANCE_WEIGHT_PER_MINUTE,
            "baseline_minutes_per_cycle_at_binance_limit": round(baseline["weight"] / BINANCE_WEIGHT_PER_MINUTE, 1),
            "target_fewer_requests": TARGET_FEWER_REQUESTS,
            "meets_fewer_requests": ratio >= TARGET_FEWER_REQUESTS,
            "meets_requests_follow_pairs": fewer["requests"] == steady["requests"],
        }
    )
    return figures


def _order_rows(desk: Any, start: int, stop: int) -> list[tuple[Any, ...]]:
    """The orders numbered [start, stop): pairs of legs (buy on venue a, sell on venue b) of one
    execution, round-robin over accounts and symbols."""
    rows = []
    accounts_a, accounts_b = desk.accounts[CODES[0]], desk.accounts[CODES[1]]
    for number in range(start // 2, stop // 2):
        symbol, base, quote, tick, step, reference = SYMBOLS[number % SYMBOL_COUNT]
        account_index = (number // SYMBOL_COUNT) % ACCOUNTS_PER_VENUE
        price = D(reference)
        qty = (D(20) / price).quantize(D(step), rounding=ROUND_UP)
        buy_price = (price * D("0.9")).quantize(D(tick))
        sell_price = (price * D("1.1")).quantize(D(tick))
        rows.append((number, symbol, base, quote, accounts_a[account_index], accounts_b[account_index], qty,
                     buy_price, sell_price))  # fmt: skip
    return rows


def _orders_create(host: VenueHost, desk: Any, start: int, stop: int) -> None:
    """The executions and SUBMITTED orders in the database, and the same orders resting at the venues."""
    from django.utils import timezone

    from trading.client_ids import uuid7
    from trading.enums import ExecutionStatus, OrderLeg, OrderSide, OrderStatus, OrderType, TimeInForce
    from trading.models import Order, TradeExecution

    now = timezone.now()
    executions, orders = [], []
    at_venue: dict[tuple[int, str], list[list[str]]] = {}
    for number, symbol, base, quote, buyer, seller, qty, buy_price, sell_price in _order_rows(desk, start, stop):
        execution = TradeExecution(
            id=uuid7(), symbol=symbol, base_asset=base, quote_asset=quote, buy_account=buyer, sell_account=seller,
            buy_venue=buyer.venue, sell_venue=seller.venue, buy_price=buy_price, sell_price=sell_price, quantity=qty,
            status=ExecutionStatus.EXECUTING, started_at=now, submitted_at=now, detected_at=now,
        )  # fmt: skip
        executions.append(execution)
        for account, leg, side, price in ((buyer, OrderLeg.BUY, OrderSide.BUY, buy_price),
                                          (seller, OrderLeg.SELL, OrderSide.SELL, sell_price)):  # fmt: skip
            client_order_id = f"bench-{number}-{leg}"
            orders.append(
                Order(
                    execution=execution, account=account, venue=account.venue, leg=leg, client_order_id=client_order_id,
                    symbol=symbol, side=side, type=OrderType.LIMIT, time_in_force=TimeInForce.GTC, price=price,
                    quantity=qty, status=OrderStatus.SUBMITTED, place_attempts=1, submitted_at=now,
                )
            )  # fmt: skip
            venue_index, key, _ = desk.keys[account.pk]
            at_venue.setdefault((venue_index, key), []).append([client_order_id, symbol, side, str(price), str(qty)])
    TradeExecution.objects.bulk_create(executions, batch_size=2000)
    Order.objects.bulk_create(orders, batch_size=2000)
    for (venue_index, key), resting in at_venue.items():
        host.call("resting", venue=venue_index, api_key=key, orders=resting)


def _orders_cancel(host: VenueHost, desk: Any, count: int) -> int:
    """Cancel ``count`` open orders at the venues (spread over the pairs), as a user or the venue might."""
    from trading.models import Order

    chosen = list(Order.objects.order_by("?").values_list("account_id", "client_order_id", "symbol")[:count])
    at_venue: dict[tuple[int, str], list[list[str]]] = {}
    for account_id, client_order_id, symbol in chosen:
        venue_index, key, _ = desk.keys[account_id]
        at_venue.setdefault((venue_index, key), []).append([client_order_id, symbol])
    for (venue_index, key), cancels in at_venue.items():
        host.call("cancel", venue=venue_index, api_key=key, orders=cancels)
    return len(chosen)


def _cycle(host: VenueHost, *, per_order: bool = False) -> dict[str, Any]:
    from trading.sync import orders_sync_open

    host.call("requests", clear=True)
    started = time.perf_counter()
    result = orders_sync_open(gateway_factory=_per_order_polling if per_order else None)
    seconds = time.perf_counter() - started
    requests = host.call("requests", clear=True)
    return {
        "requests": requests["requests"],
        "weight": requests["weight"],
        "seconds": round(seconds, 3),
        "requests_by_endpoint": requests["by_endpoint"],
        "open_orders_calls": result.open_orders_calls,
        "order_queries": result.order_queries,
        "updated": result.updated,
    }


def _per_order_polling(account: Any) -> Any:
    from trading.gateways import gateway_for
    from venues.gateway import Gateway

    class PerOrderPolling(Gateway):
        """The account's real gateway without the list call: every open order is queried on its own."""

        def __init__(self, inner: Gateway) -> None:
            self.inner = inner

        async def open_orders(self, *, symbol: str) -> list[Any]:
            return []

        async def get_order(self, *, symbol: str, client_order_id: str) -> Any:
            return await self.inner.get_order(symbol=symbol, client_order_id=client_order_id)

        async def place_order(self, request: Any) -> Any:
            return await self.inner.place_order(request)

        async def cancel_order(self, *, symbol: str, client_order_id: str) -> Any:
            return await self.inner.cancel_order(symbol=symbol, client_order_id=client_order_id)

        async def balances(self) -> list[Any]:
            return await self.inner.balances()

        async def symbol_rules(self) -> list[Any]:
            return await self.inner.symbol_rules()

        async def close(self) -> None:
            await self.inner.close()

    return PerOrderPolling(gateway_for(account))
