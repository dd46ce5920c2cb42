"""Synchronous use: FakeOkxThread with the synchronous ccxt.okx client, and the CLI process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal

import ccxt
import pytest
import requests

from tests.fakeokx import DEFAULT_API_KEY, DEFAULT_API_SECRET, DEFAULT_PASSPHRASE, FaultKind, ThreadSafeOkx
from tests.fakevenue.paths import PROJECT_ROOT


def test_the_sync_client_against_a_venue_thread(fake_okx_thread: ThreadSafeOkx) -> None:
    venue = fake_okx_thread
    exchange = ccxt.okx(
        {
            "apiKey": DEFAULT_API_KEY,
            "secret": DEFAULT_API_SECRET,
            "password": DEFAULT_PASSPHRASE,
            "urls": {"api": {"rest": venue.rest_url}},
            "options": {"fetchMarkets": {"types": ["spot"]}},
        }
    )
    order = exchange.create_order("ETH/USDT", "market", "sell", 0.5, None, {"clientOrderId": "sync1"})
    assert exchange.fetch_order("", "ETH/USDT", {"clOrdId": "sync1"})["status"] == "closed"

    venue.inject_fault(FaultKind.TIMEOUT_50004, endpoint="trade/batch-orders", times=1)
    with pytest.raises(ccxt.RequestTimeout):
        exchange.create_order("ETH/USDT", "market", "sell", 0.5, None, {"clientOrderId": "sync2"})
    assert [o.cl_ord_id for o in venue.list_orders(inst_id="ETH-USDT")] == ["sync1", "sync2"]
    assert venue.find_order(DEFAULT_API_KEY, "sync1").ord_id == order["id"]

    venue.set_book("ETH-USDT", bids=[("2500", "1")], asks=[("2501", "1")])
    assert exchange.fetch_ticker("ETH/USDT")["bid"] == 2500.0
    assert venue.balances(DEFAULT_API_KEY)["ETH"] == (Decimal("29"), Decimal("0"))


@pytest.fixture
def cli_process() -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    credentials = ["--api-key", "cli-key", "--api-secret", "cli-secret", "--passphrase", "cli-pass"]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakeokx", "--port", "0", *credentials],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    try:
        printed: dict[str, str] = {}
        deadline = time.monotonic() + 20
        assert process.stdout is not None
        while "PASSPHRASE" not in printed and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            key, _, value = line.strip().partition("=")
            printed[key] = value
        assert "PASSPHRASE" in printed, process.stderr.read() if process.stderr else "no output"
        yield process, printed
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def test_the_cli_serves_the_default_market_and_key(cli_process: tuple[subprocess.Popen[str], dict[str, str]]) -> None:
    process, printed = cli_process
    assert printed["REST_URL"].startswith("http://127.0.0.1:")
    assert printed["WS_PUBLIC_URL"] == printed["WS_URL"] + "/public"
    assert printed["WS_PRIVATE_URL"] == printed["WS_URL"] + "/private"
    assert printed["DEMO_WS_URL"].endswith("/demo/ws/v5")
    assert (printed["API_KEY"], printed["API_SECRET"], printed["PASSPHRASE"], printed["KEY_MODE"]) == (
        "cli-key",
        "cli-secret",
        "cli-pass",
        "live",
    )
    exchange = ccxt.okx(
        {
            "apiKey": "cli-key",
            "secret": "cli-secret",
            "password": "cli-pass",
            "urls": {"api": {"rest": printed["REST_URL"]}},
            "options": {"fetchMarkets": {"types": ["spot"]}},
        }
    )
    ticker = exchange.fetch_ticker("BTC/USDT")
    assert 59000 < ticker["bid"] < ticker["ask"] < 61000
    assert exchange.fetch_balance()["USDT"]["free"] == 100000.0
    response = requests.post(
        f"{printed['CONTROL_URL']}/faults",
        json={"kind": "rate_limit_50011", "endpoint": "account/balance", "times": 1},
        timeout=5,
    )
    assert response.status_code == 200
    with pytest.raises(ccxt.RateLimitExceeded):
        exchange.fetch_balance()
    assert process.poll() is None
