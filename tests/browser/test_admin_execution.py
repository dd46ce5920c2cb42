"""An execution's admin page in a real browser: its figures, its orders inline and its fills, every one as
a person reads it (at the instrument's tick and step sizes, money in its asset, never more than 8
decimals, the exact stored value on hover), and nothing on it editable."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from arbitragex import display
from tests.browser.conftest import PASSWORD, log_in, screenshot_if_asked
from tests.factories import ExchangeAccountFactory, InstrumentFactory, VenueFactory
from tests.ledger_data import filled_execution
from trading.models import Fill

D = Decimal
LONG_FRACTION = re.compile(r"\d\.\d{9,}")

pytestmark = pytest.mark.slow


def test_the_execution_page_shows_its_orders_and_fills_with_readable_figures(page, transactional_db):
    from playwright.sync_api import expect

    get_user_model().objects.create_superuser(username="operator", password=PASSWORD, email="op@example.com")
    a, b = VenueFactory(code="binance-a", name="Binance A"), VenueFactory(code="okx-b", name="OKX B")
    InstrumentFactory(venue=a, symbol="BTCUSDT", tick_size=D("0.01"), step_size=D("0.00001"))
    InstrumentFactory(venue=b, symbol="BTCUSDT", tick_size=D("0.1"), step_size=D("0.00001"))
    execution = filled_execution(
        ExchangeAccountFactory(name="paper-binance", venue=a), ExchangeAccountFactory(name="paper-okx", venue=b),
        sell_fills=(("61891.4", "0.00734"), ("61891.3", "0.005")),
    )  # fmt: skip
    buy, sell = execution.orders.get(leg="B"), execution.orders.get(leg="S")

    log_in(page, f"/admin/trading/tradeexecution/{execution.pk}/change/", "operator")

    content = page.locator("#content-main")
    text = content.inner_text()
    assert not LONG_FRACTION.findall(text), LONG_FRACTION.findall(text)
    # The execution: its prices at each venue's tick, money to the cent with its asset.
    expect(page.locator(".field-buy_price_shown .readonly")).to_have_text("61828.57")
    expect(page.locator(".field-sell_price_shown .readonly")).to_have_text("61891.3")
    expect(page.locator(".field-quantity_shown .readonly")).to_have_text("0.01234")
    actual = page.locator(".field-actual_profit_shown .readonly span")
    expect(actual).to_have_text(display.money(execution.actual_profit, "USDT"))
    expect(actual).to_have_attribute("title", f"{execution.actual_profit.normalize():f}")
    # Its orders inline: the volume-weighted average price at the tick, fees in USDT.
    orders = page.locator("#orders-group tbody tr.has_original")
    expect(orders).to_have_count(2)
    for order, tick in ((buy, "0.01"), (sell, "0.1")):
        row = orders.filter(has_text=order.client_order_id)
        expect(row.locator("td.field-avg_price_shown")).to_have_text(display.price(order.avg_price, tick))
        expect(row.locator("td.field-fee_quote_shown")).to_have_text(display.money(order.fee_quote, "USDT"))
    # Its fills: a BNB fee to 8 places, a USDT one to the cent.
    fills = page.locator("table.fills tr")
    expect(fills).to_have_count(1 + Fill.objects.filter(order__execution=execution).count())
    for fill in Fill.objects.filter(order__execution=execution):
        row = fills.filter(has_text=fill.trade_id)
        expect(row).to_contain_text(display.money(fill.commission, fill.commission_asset))
        expect(row).to_contain_text(display.money(fill.quote_qty, "USDT"))
    # Nothing to edit or save: corrections go through the audited actions.
    expect(page.locator("#tradeexecution_form input:not([type=hidden]), #tradeexecution_form select")).to_have_count(0)
    expect(page.locator("input[name=_save]")).to_have_count(0)

    page.click("#toggle-nav-sidebar")  # the page at full width, as an operator reading it would
    expect(page.locator("#nav-sidebar")).to_be_hidden()
    screenshot_if_asked(page, "admin_execution.png")
    assert page.js_errors == []
