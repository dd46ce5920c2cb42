"""The dashboard in a real browser: log in, see quotes arrive over the WebSocket feed (each new value
replaces the last), execution status changes and opportunities as they happen, the cumulative PnL
chart of the settled executions, and the feed coming back after the socket drops."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from marketdata import fanout
from risk.models import GLOBAL_SCOPE, RiskState
from tests.browser.conftest import PASSWORD, log_in, run_in_thread
from tests.factories import (
    AccountBalanceFactory,
    ExchangeAccountFactory,
    InstrumentFactory,
    TradeExecutionFactory,
    VenueFactory,
)
from trading.effects import execution_payload
from trading.enums import ExecutionStatus

D = Decimal
SCREENSHOT = Path(settings.BASE_DIR) / "docs" / "dashboard.png"

pytestmark = pytest.mark.slow


@pytest.fixture
def desk(transactional_db):
    """Two venues quoting BTCUSDT and ETHUSDT, an account on each, three settled executions today
    (+0.4, -0.15, +0.25: 0.5 in all) and one still executing."""
    get_user_model().objects.create_superuser(username="operator", password=PASSWORD, email="op@example.com")
    a, b = VenueFactory(code="sim-a", name="Simulated A"), VenueFactory(code="sim-b", name="Simulated B")
    for venue in (a, b):
        InstrumentFactory(venue=venue, symbol="BTCUSDT")
        InstrumentFactory(venue=venue, symbol="ETHUSDT", base_asset="ETH")
    account_a = ExchangeAccountFactory(name="paper-a", venue=a)
    account_b = ExchangeAccountFactory(name="paper-b", venue=b)
    for account in (account_a, account_b):
        AccountBalanceFactory(account=account, asset="USDT", free=D("9950.125"), reserved=D("500"))
        AccountBalanceFactory(account=account, asset="BTC", free=D("0.98765432"))
    RiskState.objects.create(
        account=GLOBAL_SCOPE, symbol="", initial_equity=D("20000"), current_equity=D("20000.5"),
        peak_equity=D("20000.5"), daily_pnl=D("0.5"),
    )  # fmt: skip
    now = timezone.now()
    for hours_ago, profit in ((5, "0.4"), (3, "-0.15"), (1, "0.25")):
        started = now - timedelta(hours=hours_ago)
        TradeExecutionFactory(
            buy_account=account_a, sell_account=account_b, status=ExecutionStatus.COMPLETED,
            actual_profit=D(profit), fees_quote=D("0.1"), started_at=started,
            completed_at=started + timedelta(seconds=2),
        )  # fmt: skip
    running = TradeExecutionFactory(
        buy_account=account_b, sell_account=account_a, status=ExecutionStatus.EXECUTING, started_at=now
    )
    return {"venues": (a, b), "running": running}


def quote(venue: str, bid: str, ask: str, symbol: str = "BTCUSDT") -> dict:
    ms = time.time_ns() // 1_000_000
    return {"type": "quote", "venue": venue, "symbol": symbol, "bid": bid, "bid_qty": "0.8421", "ask": ask,
            "ask_qty": "1.25", "ts": ms, "exchange_ts": ms - 3}  # fmt: skip


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
    expect(sim_a_bid).to_have_text("61000.10")
    publish(btc, quote("sim-a", bid="61000.35", ask="61000.45"))
    expect(sim_a_bid).to_have_text("61000.35")
    publish(btc, quote("sim-b", bid="61012.5", ask="61012.6"))
    expect(page.locator('tbody[data-symbol="BTCUSDT"] tr[data-venue="sim-b"] td.ask')).to_have_text("61012.6")
    # The cross-venue spread is exact decimal arithmetic on the strings: 61012.5 - 61000.45.
    expect(page.locator('tbody[data-symbol="BTCUSDT"] .spread-value')).to_have_text("12.05 (1.97 bps gross)")
    publish(fanout.symbol_group("ETHUSDT"), quote("sim-b", bid="2650.31", ask="2650.35", symbol="ETHUSDT"))
    publish(fanout.symbol_group("ETHUSDT"), quote("sim-a", bid="2650.12", ask="2650.2", symbol="ETHUSDT"))
    expect(page.locator('tbody[data-symbol="ETHUSDT"] tr[data-venue="sim-a"] td.bid')).to_have_text("2650.12")

    # The PnL chart: the three settled executions, cumulated (0.4 - 0.15 + 0.25).
    chart = page.locator("svg#pnl-chart")
    expect(chart).to_have_attribute("data-points", "3")
    line = chart.locator("path.pnl-line")
    expect(line).to_have_count(1)
    assert line.get_attribute("d").count("V") == 3
    expect(page.locator("#pnl-total")).to_have_text("0.5")

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
                  "gross_rate": "0.000197", "net_rate": "-0.0018", "estimated_profit": "-1.098",
                  "ts": time.time_ns() // 1_000_000})  # fmt: skip
    expect(page.locator('#opps-table tr[data-id="4242"]')).to_contain_text("TAKEN")

    # Balances and the risk controls from the API.
    expect(page.locator("#balances-table tbody tr")).to_have_count(4)
    expect(page.locator("#kill-state")).to_have_text("Trading ON")
    expect(page.locator("#breaker-state")).to_have_text("closed")
    expect(page.locator("#kill-toggle")).to_be_visible()

    if os.environ.get("ARBX_WRITE_SCREENSHOT") == "1":
        page.wait_for_timeout(1200)  # let the change highlights fade
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)

    # The socket drops: the page says so, reconnects by itself, and live updates resume.
    page.evaluate("window.arbxDashboard.feedDrop()")
    expect(page.locator("#conn-state")).to_have_attribute("data-state", "reconnecting")
    expect(page.locator("#feed-banner")).to_be_visible()
    expect(page.locator("#conn-state")).to_have_attribute("data-state", "live")
    expect(page.locator("#feed-banner")).to_be_hidden()
    publish(btc, quote("sim-a", bid="61001.05", ask="61001.15"))
    expect(sim_a_bid).to_have_text("61001.05")

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
