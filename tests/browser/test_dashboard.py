"""The dashboard in a real browser: log in, see quotes arrive over the WebSocket feed (each new value
replaces the last), execution status changes and opportunities as they happen, the cumulative PnL
chart of the settled executions, and the feed coming back after the socket drops. Every figure is shown
as a person reads it: at the instrument's tick and step sizes, money at its asset's precision, spreads
in bps to 2 places, never more than 8 decimals, rounded half-even exactly as ``arbitragex.display``."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from arbitragex import display
from marketdata import fanout
from risk.models import GLOBAL_SCOPE, RiskState
from tests.browser.conftest import PASSWORD, log_in, run_in_thread, screenshot_if_asked
from tests.factories import (
    AccountBalanceFactory,
    ExchangeAccountFactory,
    InstrumentFactory,
    TradeExecutionFactory,
    VenueFactory,
)
from tests.ledger_data import filled_execution
from trading.effects import execution_payload
from trading.enums import ExecutionStatus

D = Decimal
LONG_FRACTION = re.compile(r"\d\.\d{9,}")
SPREAD = re.compile(r"^-?\d+(?:\.\d+)? \((-?\d+(?:\.(\d+))?) bps gross\)$")

pytestmark = pytest.mark.slow


@pytest.fixture
def desk(transactional_db):
    """Two venues quoting BTCUSDT and ETHUSDT, an account on each, three executions settled today from
    their fills (two profits and a loss, carried to 18 places) and one still executing."""
    get_user_model().objects.create_superuser(username="operator", password=PASSWORD, email="op@example.com")
    a, b = VenueFactory(code="sim-a", name="Simulated A"), VenueFactory(code="sim-b", name="Simulated B")
    for venue in (a, b):
        InstrumentFactory(venue=venue, symbol="BTCUSDT")
        InstrumentFactory(venue=venue, symbol="ETHUSDT", base_asset="ETH")
    account_a = ExchangeAccountFactory(name="paper-a", venue=a)
    account_b = ExchangeAccountFactory(name="paper-b", venue=b)
    for account in (account_a, account_b):
        AccountBalanceFactory(account=account, asset="USDT", free=D("9950.125"), reserved=D("500"),
                              locked=D("123.456789012345678"))  # fmt: skip
        AccountBalanceFactory(account=account, asset="BTC", free=D("0.987654321987654321"))
    now = timezone.now()
    settled = [
        filled_execution(account_a, account_b, started_at=now - timedelta(hours=5), trade_ids=7000),
        filled_execution(account_a, account_b, started_at=now - timedelta(hours=3), trade_ids=7100,
                         buy_fills=(("61850.12", "0.01"),), sell_fills=(("61861.03", "0.01"),)),
        filled_execution(account_b, account_a, started_at=now - timedelta(hours=1), trade_ids=7200,
                         buy_fills=(("61790.01", "0.00512"), ("61790.02", "0.00488")),
                         sell_fills=(("61880.47", "0.01"),)),
    ]  # fmt: skip
    total = sum((e.actual_profit for e in settled), D(0))
    RiskState.objects.create(
        account=GLOBAL_SCOPE, symbol="", initial_equity=D("20000"), current_equity=D("20000") + total,
        peak_equity=D("20000") + total, daily_pnl=total,
    )  # fmt: skip
    running = TradeExecutionFactory(
        buy_account=account_b, sell_account=account_a, status=ExecutionStatus.EXECUTING, started_at=now,
        buy_price=D("61840.11"), sell_price=D("61902.5"), quantity=D("0.01"), expected_profit=D("0.31460345"),
    )  # fmt: skip
    return {"venues": (a, b), "running": running, "settled": settled, "total": total}


def quote(venue: str, bid: str, ask: str, symbol: str = "BTCUSDT", bid_qty: str = "0.8421") -> dict:
    ms = time.time_ns() // 1_000_000
    return {"type": "quote", "venue": venue, "symbol": symbol, "bid": bid, "bid_qty": bid_qty, "ask": ask,
            "ask_qty": "1.25", "ts": ms, "exchange_ts": ms - 3}  # fmt: skip


def assert_readable(page) -> None:
    """No figure on the page has more than 8 decimals, and every spread's bps at most 2."""
    text = page.locator("body").inner_text()
    assert not LONG_FRACTION.findall(text), LONG_FRACTION.findall(text)
    spreads = page.locator(".spread-value").all_inner_texts()
    assert spreads
    for spread in spreads:
        match = SPREAD.match(spread)
        assert match, spread
        assert len(match.group(2) or "") <= 2, spread


def publish(group: str, payload: dict) -> None:
    assert run_in_thread(fanout.publish, group, payload), f"publish to {group} failed"


def test_the_dashboard_shows_live_quotes_executions_opportunities_and_the_pnl_chart(page, desk):
    from playwright.sync_api import expect

    log_in(page, "/dashboard/", "operator")
    expect(page.locator("#conn-state")).to_have_attribute("data-state", "live")
    expect(page.locator("#feed-banner")).to_be_hidden()

    # Quotes: every new value replaces the last one in its venue's row, as it arrives.
    btc = fanout.symbol_group("BTCUSDT")
    sim_a_bid = page.locator('tbody[data-symbol="BTCUSDT"] tr[data-venue="sim-a"] td.bid')
    publish(btc, quote("sim-a", bid="61000.10", ask="61000.20"))
    expect(sim_a_bid).to_have_text("61000.1")  # at the 0.01 tick, without a trailing zero
    publish(btc, quote("sim-a", bid="61000.35", ask="61000.45", bid_qty="0.842154999"))
    expect(sim_a_bid).to_have_text("61000.35")
    bid_qty = page.locator('tbody[data-symbol="BTCUSDT"] tr[data-venue="sim-a"] td.bid-qty')
    expect(bid_qty).to_have_text("0.84215")  # at the 0.00001 step, half-even
    expect(bid_qty).to_have_attribute("title", "0.842154999")  # the exact value on hover
    publish(btc, quote("sim-b", bid="61012.5", ask="61012.6"))
    expect(page.locator('tbody[data-symbol="BTCUSDT"] tr[data-venue="sim-b"] td.ask')).to_have_text("61012.6")
    # The cross-venue spread is exact decimal arithmetic on the strings: 61012.5 - 61000.45 = 12.05, and
    # 12.05 / 61000.45 = 1.97539... bps, rounded (not cut) to 2 places.
    expect(page.locator('tbody[data-symbol="BTCUSDT"] .spread-value')).to_have_text("12.05 (1.98 bps gross)")
    publish(fanout.symbol_group("ETHUSDT"), quote("sim-b", bid="2650.31", ask="2650.35", symbol="ETHUSDT"))
    publish(fanout.symbol_group("ETHUSDT"), quote("sim-a", bid="2650.12", ask="2650.2", symbol="ETHUSDT"))
    expect(page.locator('tbody[data-symbol="ETHUSDT"] tr[data-venue="sim-a"] td.bid')).to_have_text("2650.12")

    # The PnL chart: the three settled executions, cumulated exactly, shown to the cent.
    chart = page.locator("svg#pnl-chart")
    expect(chart).to_have_attribute("data-points", "3")
    line = chart.locator("path.pnl-line")
    expect(line).to_have_count(1)
    assert line.get_attribute("d").count("V") == 3
    total = desk["total"]
    expect(page.locator("#pnl-total")).to_have_text(display.money(total, "USDT", with_asset=False))
    expect(page.locator("#pnl-total")).to_have_attribute("title", f"{total.normalize():f}")
    expect(page.locator("#risk-daily-pnl")).to_have_text(display.money(total, "USDT"))
    expect(page.locator("#risk-equity")).to_have_text(display.money(D("20000") + total, "USDT"))
    for execution in desk["settled"]:
        settled = page.locator(f'#executions-table tr[data-id="{execution.id}"]')
        actual = display.money(execution.actual_profit, "USDT", with_asset=False)
        expect(settled.locator("td.actual")).to_have_text(actual)
        expect(settled.locator("td.quantity")).to_have_text(display.quantity(execution.quantity, "0.00001"))

    # Executions: the REST list first, then status changes from the executions group.
    running = desk["running"]
    row = page.locator(f'#executions-table tr[data-id="{running.id}"]')
    expect(row.locator("td.status")).to_have_text("EXECUTING")
    running.status, running.actual_profit = ExecutionStatus.COMPLETED, D("0.31")
    running.completed_at = timezone.now()
    publish(fanout.EXECUTIONS_GROUP, execution_payload(running))
    expect(row.locator("td.status")).to_have_text("COMPLETED")
    expect(row.locator("td.actual")).to_have_text("0.31")
    expect(row.locator("td.route")).to_have_text("sim-b → sim-a")

    # Opportunities as they are detected.
    publish(btc, {"type": "opportunity", "id": 4242, "status": "TAKEN", "reject_code": None, "reject_reason": "",
                  "execution_id": None, "symbol": "BTCUSDT", "buy_venue": "sim-a", "sell_venue": "sim-b",
                  "buy_price": "61000.45", "sell_price": "61012.5", "quantity": "0.01", "notional": "610.0045",
                  "gross_rate": "0.000197", "net_rate": "-0.00180049", "estimated_profit": "-1.098765432",
                  "ts": time.time_ns() // 1_000_000})  # fmt: skip
    opportunity = page.locator('#opps-table tr[data-id="4242"]')
    expect(opportunity).to_contain_text("TAKEN")
    expect(opportunity.locator("td.net")).to_have_text("-18")  # -18.0049 bps to 2 places
    expect(opportunity.locator("td.profit")).to_have_text("-1.1")  # USDT, to the cent

    # Balances (each at its asset's precision) and the risk controls from the API.
    expect(page.locator("#balances-table tbody tr")).to_have_count(4)
    usdt = page.locator('#balances-table tr[data-key="paper-a|USDT"] td')
    expect(usdt.nth(3)).to_have_text("9950.12")  # 9950.125, half-even
    expect(usdt.nth(4)).to_have_text("123.46")
    expect(page.locator('#balances-table tr[data-key="paper-a|BTC"] td').nth(3)).to_have_text("0.98765432")
    assert_readable(page)
    expect(page.locator("#kill-state")).to_have_text("Trading ON")
    expect(page.locator("#breaker-state")).to_have_text("closed")
    expect(page.locator("#kill-toggle")).to_be_visible()

    screenshot_if_asked(page, "dashboard.png")

    # The socket drops: the page says so, reconnects by itself, and live updates resume.
    page.evaluate("window.arbxDashboard.feedDrop()")
    expect(page.locator("#conn-state")).to_have_attribute("data-state", "reconnecting")
    expect(page.locator("#feed-banner")).to_be_visible()
    expect(page.locator("#conn-state")).to_have_attribute("data-state", "live")
    expect(page.locator("#feed-banner")).to_be_hidden()
    publish(btc, quote("sim-a", bid="61001.05", ask="61001.15"))
    expect(sim_a_bid).to_have_text("61001.05")
    assert_readable(page)

    assert page.js_errors == []


CASES = [
    # (what, value, increment or asset): the page's rounding against arbitragex.display's, ties included.
    ("price", "61828.574", "BTCUSDT"), ("price", "61828.575", "BTCUSDT"), ("price", "61828.565", "BTCUSDT"),
    ("price", "-0.004", "BTCUSDT"), ("price", "0.005", "BTCUSDT"),
    ("price", "123456789012345678.123456789012345678", "BTCUSDT"), ("price", "2650.15", "ETHUSDT"),
    ("price", "2650.25", "ETHUSDT"), ("price", "7.5", "FIVEUSDT"), ("price", "12.5", "FIVEUSDT"),
    ("price", "-12.5", "FIVEUSDT"), ("price", "0.123456785", "UNKNOWN"), ("quantity", "0.012345", "BTCUSDT"),
    ("quantity", "0.000015", "BTCUSDT"), ("quantity", "0.000025", "BTCUSDT"), ("quantity", "3", "BTCUSDT"),
    ("money", "1234.565", "USDT"), ("money", "1234.575", "USDC"), ("money", "-0.004", "FDUSD"),
    ("money", "0.000123456789", "BTC"), ("money", "-12.000000015", "BNB"), ("money", "100.00", "EUR"),
    ("bps", "0.00123456", None), ("bps", "0.0005", None), ("bps", "-0.000012345", None),
    ("bps", "0.000000005", None), ("bps", "0.000000015", None), ("bps", "-0.0018004999", None),
]  # fmt: skip


def test_the_page_rounds_exactly_like_the_servers_display(page, transactional_db):
    get_user_model().objects.create_superuser(username="operator", password=PASSWORD, email="op@example.com")
    venue = VenueFactory(code="sim-a")
    InstrumentFactory(venue=venue, symbol="BTCUSDT", tick_size=D("0.01000000"), step_size=D("0.00001000"))
    InstrumentFactory(venue=venue, symbol="ETHUSDT", base_asset="ETH", tick_size=D("0.1"), step_size=D("0.001"))
    InstrumentFactory(venue=venue, symbol="FIVEUSDT", base_asset="FIVE", tick_size=D("5"), step_size=D("1"))
    sizes = {"BTCUSDT": ("0.01", "0.00001"), "ETHUSDT": ("0.1", "0.001"), "FIVEUSDT": ("5", "1"), "UNKNOWN": ("0", "0")}

    log_in(page, "/dashboard/", "operator")
    # The instruments are loaded once 1.005 is shown at the 0.01 tick (8 places before).
    page.wait_for_function("window.arbxDashboard.showPrice('1.005', 'sim-a', 'BTCUSDT') === '1'")
    shown = page.evaluate(
        """cases => cases.map(([what, value, arg]) => {
            const d = window.arbxDashboard;
            if (what === "price") return d.showPrice(value, "sim-a", arg);
            if (what === "quantity") return d.showQty(value, "sim-a", arg);
            if (what === "money") return d.showMoney(value, arg);
            return d.showBps(value);
        })""",
        CASES,
    )

    expected = []
    for what, value, arg in CASES:
        if what == "price":
            expected.append(display.price(D(value), sizes[arg][0]))
        elif what == "quantity":
            expected.append(display.quantity(D(value), sizes[arg][1]))
        elif what == "money":
            expected.append(display.money(D(value), arg, with_asset=False))
        else:
            expected.append(display.bps(D(value), with_unit=False))
    assert shown == expected
    assert page.js_errors == []


def test_the_pnl_chart_renders_without_any_settled_execution(page, transactional_db):
    from playwright.sync_api import expect

    get_user_model().objects.create_superuser(username="operator", password=PASSWORD, email="op@example.com")

    log_in(page, "/dashboard/", "operator")

    chart = page.locator("svg#pnl-chart")
    expect(chart).to_have_attribute("data-points", "0")
    expect(chart.locator("path.pnl-line")).to_have_count(1)
    expect(chart).to_contain_text("No settled execution")
    expect(page.locator("#pnl-total")).to_have_text("0")
    assert page.js_errors == []


def test_the_execution_quality_panel_shows_each_venue_pair(page, transactional_db):
    from playwright.sync_api import expect

    get_user_model().objects.create_superuser(username="operator", password=PASSWORD, email="op@example.com")
    a, b = VenueFactory(code="sim-a"), VenueFactory(code="sim-b")
    buy, sell = ExchangeAccountFactory(venue=a), ExchangeAccountFactory(venue=b)
    end = timezone.now() - timedelta(minutes=5)
    for status, expected, actual in (
        (ExecutionStatus.COMPLETED, "1", "0.9"),
        (ExecutionStatus.COMPLETED, "1", "1.1"),
        (ExecutionStatus.COMPLETED, "2", "1.6"),
        (ExecutionStatus.UNWOUND, "1", "-0.45"),
    ):
        TradeExecutionFactory(
            buy_account=buy, sell_account=sell, status=status, expected_profit=D(expected), actual_profit=D(actual),
            detected_at=end - timedelta(milliseconds=50), submitted_at=end - timedelta(milliseconds=30),
            acknowledged_at=end - timedelta(milliseconds=25), filled_at=end - timedelta(milliseconds=20),
            completed_at=end,
        )  # fmt: skip

    log_in(page, "/dashboard/", "operator")

    row = page.locator('#quality-table tr[data-pair="sim-a>sim-b"]')
    # 3 of 4 completed; 3.15 realised of 5 expected; 0.45 lost legging against 3.6 gross.
    expect(row.locator("td")).to_have_text(
        ["sim-a → sim-b", "4", "75 %", "63 %", "12.5 %", "20.0 ms / 20.0 ms", "5.0 ms", "—"]
    )
    expect(page.locator("#quality-empty")).to_be_hidden()
    assert page.js_errors == []
