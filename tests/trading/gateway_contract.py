"""What every venue gateway must do, whichever venue is behind it: a behavioural suite.

Use it from a test module that provides a ``gateway_env`` fixture (see ``GatewayEnv``)::

    class TestPaperGatewayContract(GatewayContract):
        pass

The paper gateway runs it against the quote cache and its database rows; the Binance gateway runs it
against the fake venue server. The venue-specific set-up (books, balances) lives in the fixture.

The symbol has Binance's BTCUSDT filters: tickSize 0.01, stepSize 0.00001, minQty 0.00001,
minNotional 5. Order statuses are the platform's: a venue's NEW is SUBMITTED, CANCELED is CANCELLED.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Protocol

import pytest

from arbitragex.errors import ErrorCode
from trading.enums import OrderSide, OrderStatus, OrderType, TimeInForce
from venues.gateway import BalanceReport, FinalVenueError, Gateway, OrderReport, OrderRequest

D = Decimal
Levels = Sequence[tuple[Decimal, Decimal]]


class GatewayEnv(Protocol):
    """A gateway on a venue the test controls."""

    gateway: Gateway
    symbol: str  # tradable, with the filters above
    base_asset: str
    quote_asset: str
    taker_fee: Decimal
    maker_fee: Decimal

    async def set_book(self, symbol: str, bids: Levels, asks: Levels) -> None:
        """Replace the venue's book; resting orders that it crosses fill as the venue would."""

    async def fund(self, asset: str, amount: Decimal) -> None:
        """Set the account's free balance of ``asset`` to ``amount`` (nothing locked)."""

    async def balance(self, asset: str) -> BalanceReport:
        """The account's balance of ``asset`` as the venue holds it."""


def new_client_id() -> str:
    # Letters and digits only: every venue takes it as it is (OKX's clOrdId refuses "-").
    return f"ct{uuid.uuid4().hex[:24]}"


def market(side: str, qty: str, symbol: str, client_order_id: str | None = None) -> OrderRequest:
    return OrderRequest(
        symbol=symbol,
        side=OrderSide(side),
        type=OrderType.MARKET,
        quantity=D(qty),
        client_order_id=client_order_id or new_client_id(),
    )


def limit(
    side: str, qty: str, price: str, symbol: str, tif: str = "GTC", client_order_id: str | None = None
) -> OrderRequest:
    return OrderRequest(
        symbol=symbol,
        side=OrderSide(side),
        type=OrderType.LIMIT,
        quantity=D(qty),
        price=D(price),
        time_in_force=TimeInForce(tif),
        client_order_id=client_order_id or new_client_id(),
    )


def levels(*pairs: tuple[str, str]) -> list[tuple[Decimal, Decimal]]:
    return [(D(price), D(qty)) for price, qty in pairs]


async def assert_balance(env: GatewayEnv, asset: str, free: str, locked: str = "0") -> None:
    report = await env.balance(asset)
    assert (report.free, report.locked) == (D(free), D(locked)), f"{asset}: {report}"


def fills_as_tuples(report: OrderReport) -> list[tuple[Decimal, Decimal]]:
    return [(fill.price, fill.qty) for fill in report.fills]


class GatewayContract:
    """Behaviour shared by every ``Gateway``. Subclass it as ``Test...`` beside a ``gateway_env``."""

    # --- taking liquidity ---

    async def test_a_market_buy_walks_the_asks_and_pays_the_fee_in_the_base_asset(self, gateway_env):
        env = gateway_env
        await env.fund(env.quote_asset, D("1000"))
        await env.set_book(env.symbol, bids=levels(("49990", "1")), asks=levels(("50000", "0.004"), ("50010", "1")))

        report = await env.gateway.place_order(market("BUY", "0.01", env.symbol))

        assert report.status == OrderStatus.FILLED
        assert (report.quantity, report.filled_qty, report.cumulative_quote) == (D("0.01"), D("0.01"), D("500.06"))
        assert fills_as_tuples(report) == levels(("50000", "0.004"), ("50010", "0.006"))
        assert {fill.commission_asset for fill in report.fills} == {env.base_asset}
        assert sum(fill.commission for fill in report.fills) == D("0.01") * env.taker_fee
        assert not any(fill.is_maker for fill in report.fills)
        assert report.exchange_order_id
        assert len({fill.trade_id for fill in report.fills}) == 2
        await assert_balance(env, env.quote_asset, "499.94")
        await assert_balance(env, env.base_asset, str(D("0.01") * (1 - env.taker_fee)))

    async def test_a_market_sell_walks_the_bids_and_pays_the_fee_in_the_quote_asset(self, gateway_env):
        env = gateway_env
        await env.fund(env.base_asset, D("0.02"))
        await env.fund(env.quote_asset, D("0"))
        await env.set_book(env.symbol, bids=levels(("50000", "0.01"), ("49990", "1")), asks=levels(("50010", "1")))

        report = await env.gateway.place_order(market("SELL", "0.015", env.symbol))

        assert report.status == OrderStatus.FILLED
        assert report.cumulative_quote == D("749.95")
        assert fills_as_tuples(report) == levels(("50000", "0.01"), ("49990", "0.005"))
        assert {fill.commission_asset for fill in report.fills} == {env.quote_asset}
        await assert_balance(env, env.base_asset, "0.005")
        await assert_balance(env, env.quote_asset, str(D("749.95") * (1 - env.taker_fee)))

    async def test_a_market_order_larger_than_the_book_fills_what_there_is_and_expires(self, gateway_env):
        env = gateway_env
        await env.fund(env.quote_asset, D("1000"))
        await env.set_book(env.symbol, bids=levels(("49990", "1")), asks=levels(("50000", "0.004")))

        report = await env.gateway.place_order(market("BUY", "0.01", env.symbol))

        assert report.status == OrderStatus.EXPIRED
        assert (report.filled_qty, report.cumulative_quote) == (D("0.004"), D("200"))
        await assert_balance(env, env.quote_asset, "800")

    async def test_a_marketable_limit_buy_fills_at_the_better_book_price_and_holds_nothing(self, gateway_env):
        env = gateway_env
        await env.fund(env.quote_asset, D("1000"))
        await env.set_book(env.symbol, bids=levels(("49990", "1")), asks=levels(("50000", "1")))

        report = await env.gateway.place_order(limit("BUY", "0.01", "50100", env.symbol))

        assert report.status == OrderStatus.FILLED
        assert report.cumulative_quote == D("500")
        await assert_balance(env, env.quote_asset, "500")

    async def test_a_marketable_limit_gtc_fills_what_crosses_and_rests_the_rest(self, gateway_env):
        env = gateway_env
        await env.fund(env.quote_asset, D("1000"))
        await env.set_book(env.symbol, bids=levels(("49990", "1")), asks=levels(("50000", "0.004"), ("50200", "1")))

        report = await env.gateway.place_order(limit("BUY", "0.01", "50100", env.symbol))

        assert report.status == OrderStatus.PARTIALLY_FILLED
        assert (report.filled_qty, report.cumulative_quote) == (D("0.004"), D("200"))
        # The rest holds its full cost at the limit price: 0.006 * 50100.
        await assert_balance(env, env.quote_asset, "499.4", locked="300.6")
        open_ids = [o.client_order_id for o in await env.gateway.open_orders(symbol=env.symbol)]
        assert open_ids == [report.client_order_id]

    async def test_an_ioc_limit_fills_what_crosses_and_expires_the_rest(self, gateway_env):
        env = gateway_env
        await env.fund(env.quote_asset, D("1000"))
        await env.set_book(env.symbol, bids=levels(("49990", "1")), asks=levels(("50000", "0.004"), ("50200", "1")))

        report = await env.gateway.place_order(limit("BUY", "0.01", "50100", env.symbol, tif="IOC"))

        assert report.status == OrderStatus.EXPIRED
        assert report.filled_qty == D("0.004")
        await assert_balance(env, env.quote_asset, "800")
        assert await env.gateway.open_orders(symbol=env.symbol) == []

    async def test_a_fok_limit_that_cannot_fill_completely_expires_without_a_fill(self, gateway_env):
        env = gateway_env
        await env.fund(env.quote_asset, D("1000"))
        await env.set_book(env.symbol, bids=levels(("49990", "1")), asks=levels(("50000", "0.004"), ("50200", "1")))

        report = await env.gateway.place_order(limit("BUY", "0.01", "50100", env.symbol, tif="FOK"))

        assert report.status == OrderStatus.EXPIRED
        assert (report.filled_qty, report.fills) == (D("0"), ())
        await assert_balance(env, env.quote_asset, "1000")

    # --- resting orders ---

    async def test_a_limit_buy_below_the_book_rests_holding_its_quote_until_cancelled(self, gateway_env):
        env = gateway_env
        await env.fund(env.quote_asset, D("1000"))
        await env.set_book(env.symbol, bids=levels(("49990", "1")), asks=levels(("50000", "1")))

        placed = await env.gateway.place_order(limit("BUY", "0.01", "49000", env.symbol))

        assert placed.status == OrderStatus.SUBMITTED
        assert (placed.filled_qty, placed.price) == (D("0"), D("49000"))
        await assert_balance(env, env.quote_asset, "510", locked="490")

        cancelled = await env.gateway.cancel_order(symbol=env.symbol, client_order_id=placed.client_order_id)

        assert cancelled.status == OrderStatus.CANCELLED
        assert cancelled.exchange_order_id == placed.exchange_order_id
        await assert_balance(env, env.quote_asset, "1000")
        assert await env.gateway.open_orders(symbol=env.symbol) == []

    async def test_a_limit_sell_above_the_book_rests_holding_its_base(self, gateway_env):
        env = gateway_env
        await env.fund(env.base_asset, D("0.01"))
        await env.set_book(env.symbol, bids=levels(("49990", "1")), asks=levels(("50000", "1")))

        placed = await env.gateway.place_order(limit("SELL", "0.01", "51000", env.symbol))

        assert placed.status == OrderStatus.SUBMITTED
        await assert_balance(env, env.base_asset, "0", locked="0.01")
        await env.gateway.cancel_order(symbol=env.symbol, client_order_id=placed.client_order_id)
        await assert_balance(env, env.base_asset, "0.01")

    async def test_a_resting_buy_fills_as_a_maker_at_its_price_when_the_book_crosses_it(self, gateway_env):
        env = gateway_env
        await env.fund(env.quote_asset, D("1000"))
        await env.set_book(env.symbol, bids=levels(("49990", "1")), asks=levels(("50000", "1")))
        placed = await env.gateway.place_order(limit("BUY", "0.01", "49000", env.symbol))

        await env.set_book(env.symbol, bids=levels(("48980", "1")), asks=levels(("48990", "1")))

        report = await env.gateway.get_order(symbol=env.symbol, client_order_id=placed.client_order_id)
        assert report is not None
        assert report.status == OrderStatus.FILLED
        assert (report.filled_qty, report.cumulative_quote) == (D("0.01"), D("490"))
        await assert_balance(env, env.quote_asset, "510")
        await assert_balance(env, env.base_asset, str(D("0.01") * (1 - env.maker_fee)))
        assert await env.gateway.open_orders(symbol=env.symbol) == []

    async def test_a_resting_sell_fills_when_the_bids_rise_to_it(self, gateway_env):
        env = gateway_env
        await env.fund(env.base_asset, D("0.01"))
        await env.fund(env.quote_asset, D("0"))
        await env.set_book(env.symbol, bids=levels(("49990", "1")), asks=levels(("50000", "1")))
        placed = await env.gateway.place_order(limit("SELL", "0.01", "50500", env.symbol))

        await env.set_book(env.symbol, bids=levels(("50600", "1")), asks=levels(("50610", "1")))

        report = await env.gateway.get_order(symbol=env.symbol, client_order_id=placed.client_order_id)
        assert report is not None and report.status == OrderStatus.FILLED
        await assert_balance(env, env.base_asset, "0")
        await assert_balance(env, env.quote_asset, str(D("505") * (1 - env.maker_fee)))

    # --- queries ---

    async def test_an_order_is_found_by_its_client_order_id(self, gateway_env):
        env = gateway_env
        await env.fund(env.quote_asset, D("1000"))
        await env.set_book(env.symbol, bids=levels(("49990", "1")), asks=levels(("50000", "1")))
        placed = await env.gateway.place_order(market("BUY", "0.01", env.symbol))

        found = await env.gateway.get_order(symbol=env.symbol, client_order_id=placed.client_order_id)

        assert found is not None
        assert (found.exchange_order_id, found.status, found.side) == (
            placed.exchange_order_id,
            OrderStatus.FILLED,
            OrderSide.BUY,
        )
        assert (found.filled_qty, found.cumulative_quote) == (D("0.01"), D("500"))

    async def test_open_orders_lists_the_resting_orders_of_the_symbol_oldest_first(self, gateway_env):
        env = gateway_env
        await env.fund(env.quote_asset, D("1000"))
        await env.set_book(env.symbol, bids=levels(("49990", "1")), asks=levels(("50000", "1")))
        first = await env.gateway.place_order(limit("BUY", "0.001", "49000", env.symbol))
        second = await env.gateway.place_order(limit("BUY", "0.002", "48000", env.symbol))
        await env.gateway.place_order(market("BUY", "0.001", env.symbol))

        listed = await env.gateway.open_orders(symbol=env.symbol)

        assert [o.client_order_id for o in listed] == [first.client_order_id, second.client_order_id]
        assert [o.status for o in listed] == [OrderStatus.SUBMITTED, OrderStatus.SUBMITTED]

    async def test_balances_list_the_funded_assets(self, gateway_env):
        env = gateway_env
        await env.fund(env.quote_asset, D("123.45"))

        balances = {b.asset: b for b in await env.gateway.balances()}

        assert balances[env.quote_asset].free == D("123.45")
        assert (await env.gateway.balance(env.quote_asset)).free == D("123.45")

    async def test_symbol_rules_carry_the_filters(self, gateway_env):
        env = gateway_env

        rules = {r.symbol: r for r in await env.gateway.symbol_rules()}

        btc = rules[env.symbol]
        assert (btc.base_asset, btc.quote_asset, btc.status) == (env.base_asset, env.quote_asset, "TRADING")
        assert (btc.tick_size, btc.step_size, btc.min_qty, btc.min_notional) == (
            D("0.01"),
            D("0.00001"),
            D("0.00001"),
            D("5"),
        )

    # --- refusals ---

    @pytest.mark.parametrize(
        "request_for",
        [
            pytest.param(lambda s: market("BUY", "0.01", s), id="market buy"),
            pytest.param(lambda s: limit("BUY", "0.01", "49000", s), id="limit buy"),
            pytest.param(lambda s: market("SELL", "0.01", s), id="market sell without base"),
        ],
    )
    async def test_an_order_beyond_the_balance_is_refused_with_2010(self, gateway_env, request_for):
        env = gateway_env
        await env.fund(env.quote_asset, D("100"))
        await env.set_book(env.symbol, bids=levels(("49990", "1")), asks=levels(("50000", "1")))
        request = request_for(env.symbol)

        with pytest.raises(FinalVenueError) as caught:
            await env.gateway.place_order(request)

        assert caught.value.code == ErrorCode.VENUE_INSUFFICIENT_BALANCE
        assert caught.value.venue_code == -2010
        assert caught.value.message == "Account has insufficient balance for requested action."
        assert await env.gateway.get_order(symbol=env.symbol, client_order_id=request.client_order_id) is None
        await assert_balance(env, env.quote_asset, "100")

    @pytest.mark.parametrize(
        ("request_for", "filter_names"),
        [
            pytest.param(lambda s: market("BUY", "0.000001", s), {"LOT_SIZE"}, id="below minQty"),
            pytest.param(lambda s: limit("BUY", "0.000015", "49000", s), {"LOT_SIZE"}, id="off stepSize"),
            pytest.param(lambda s: limit("BUY", "0.01", "49000.005", s), {"PRICE_FILTER"}, id="off tickSize"),
            pytest.param(
                lambda s: limit("BUY", "0.00001", "49000", s), {"NOTIONAL", "MIN_NOTIONAL"}, id="below minNotional"
            ),
            pytest.param(
                lambda s: market("BUY", "0.00001", s), {"NOTIONAL", "MIN_NOTIONAL"}, id="market below minNotional"
            ),
        ],
    )
    async def test_an_order_that_breaks_a_filter_is_refused_with_1013(self, gateway_env, request_for, filter_names):
        env = gateway_env
        await env.fund(env.quote_asset, D("1000"))
        await env.set_book(env.symbol, bids=levels(("49990", "1")), asks=levels(("50000", "1")))

        with pytest.raises(FinalVenueError) as caught:
            await env.gateway.place_order(request_for(env.symbol))

        assert caught.value.code == ErrorCode.VENUE_FILTER_FAILURE
        assert caught.value.venue_code == -1013
        assert caught.value.message.removeprefix("Filter failure: ") in filter_names
        await assert_balance(env, env.quote_asset, "1000")

    async def test_an_unknown_symbol_is_refused_with_1121(self, gateway_env):
        env = gateway_env
        await env.fund(env.quote_asset, D("1000"))

        with pytest.raises(FinalVenueError) as caught:
            await env.gateway.place_order(market("BUY", "1", "NOPEUSDT"))

        assert (caught.value.code, caught.value.venue_code) == (ErrorCode.VENUE_INVALID_SYMBOL, -1121)
        assert caught.value.message == "Invalid symbol."

    async def test_an_unknown_order_is_none_on_query_and_refused_on_cancel(self, gateway_env):
        env = gateway_env

        assert await env.gateway.get_order(symbol=env.symbol, client_order_id=new_client_id()) is None
        with pytest.raises(FinalVenueError) as caught:
            await env.gateway.cancel_order(symbol=env.symbol, client_order_id=new_client_id())

        assert (caught.value.code, caught.value.venue_code) == (ErrorCode.VENUE_UNKNOWN_ORDER, -2011)

    async def test_a_filled_order_cannot_be_cancelled(self, gateway_env):
        env = gateway_env
        await env.fund(env.quote_asset, D("1000"))
        await env.set_book(env.symbol, bids=levels(("49990", "1")), asks=levels(("50000", "1")))
        placed = await env.gateway.place_order(market("BUY", "0.01", env.symbol))

        with pytest.raises(FinalVenueError) as caught:
            await env.gateway.cancel_order(symbol=env.symbol, client_order_id=placed.client_order_id)

        assert caught.value.code == ErrorCode.VENUE_UNKNOWN_ORDER

    async def test_a_client_order_id_of_an_open_order_is_refused_as_a_duplicate(self, gateway_env):
        env = gateway_env
        await env.fund(env.quote_asset, D("1000"))
        await env.set_book(env.symbol, bids=levels(("49990", "1")), asks=levels(("50000", "1")))
        client_id = new_client_id()
        first = await env.gateway.place_order(limit("BUY", "0.01", "49000", env.symbol, client_order_id=client_id))

        with pytest.raises(FinalVenueError) as caught:
            await env.gateway.place_order(limit("BUY", "0.01", "48000", env.symbol, client_order_id=client_id))

        assert caught.value.code == ErrorCode.VENUE_DUPLICATE_ORDER
        assert (caught.value.venue_code, caught.value.message) == (-2010, "Duplicate order sent.")
        listed = await env.gateway.open_orders(symbol=env.symbol)
        assert [o.exchange_order_id for o in listed] == [first.exchange_order_id]
        await assert_balance(env, env.quote_asset, "510", locked="490")

    async def test_a_client_order_id_is_free_again_once_its_order_is_closed(self, gateway_env):
        env = gateway_env
        await env.fund(env.quote_asset, D("1000"))
        await env.set_book(env.symbol, bids=levels(("49990", "1")), asks=levels(("50000", "1")))
        client_id = new_client_id()
        first = await env.gateway.place_order(limit("BUY", "0.01", "49000", env.symbol, client_order_id=client_id))
        await env.gateway.cancel_order(symbol=env.symbol, client_order_id=client_id)

        second = await env.gateway.place_order(market("BUY", "0.01", env.symbol, client_order_id=client_id))

        assert second.exchange_order_id != first.exchange_order_id
        found = await env.gateway.get_order(symbol=env.symbol, client_order_id=client_id)
        assert found is not None
        assert (found.exchange_order_id, found.status) == (second.exchange_order_id, OrderStatus.FILLED)
