"""Synchronous use: FakeVenueThread with the sync python-binance Client, and the CLI process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from binance.exceptions import BinanceAPIException

from tests.fakevenue import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    FaultKind,
    ThreadSafeVenue,
    create_client,
    shared_data_dir,
)
from tests.fakevenue.paths import PROJECT_ROOT


def test_sync_client_against_a_venue_thread(fake_venue_thread: ThreadSafeVenue) -> None:
    venue = fake_venue_thread
    client = create_client(venue, DEFAULT_API_KEY, DEFAULT_API_SECRET)  # pings in __init__
    try:
        assert client.get_server_time()["serverTime"] > 0
        order = client.order_market_buy(symbol="ETHUSDT", quantity="0.5", newClientOrderId="sync-1")
        assert order["status"] == "FILLED"
        assert client.get_order(symbol="ETHUSDT", origClientOrderId="sync-1")["orderId"] == order["orderId"]

        venue.inject_fault(FaultKind.TIMEOUT_1007, endpoint="order", method="POST", times=1)
        with pytest.raises(BinanceAPIException) as err:
            client.order_market_sell(symbol="ETHUSDT", quantity="0.5", newClientOrderId="sync-2")
        assert err.value.code == -1007
        assert [o.client_order_id for o in venue.list_orders(symbol="ETHUSDT")] == ["sync-1", "sync-2"]

        venue.set_book("ETHUSDT", bids=[("2500", "1")], asks=[("2501", "1")])
        assert client.get_orderbook_ticker(symbol="ETHUSDT")["bidPrice"] == "2500.00000000"
        assert venue.balances(DEFAULT_API_KEY)["ETH"][0] == Decimal("30") + Decimal("0.4995") - Decimal("0.5")
        assert venue.count_requests("order", "POST") == 2
    finally:
        client.close_connection()


@pytest.fixture
def cli_process(request: pytest.FixtureRequest) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    args: list[str] = getattr(request, "param", [])
    credentials = ["--api-key", "cli-key", "--api-secret", "cli-secret"]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakevenue", "--port", "0", *credentials, *args],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    try:
        urls: dict[str, str] = {}
        deadline = time.monotonic() + 20
        assert process.stdout is not None
        while "API_SECRET" not in urls and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            key, _, value = line.strip().partition("=")
            urls[key] = value
        assert "API_SECRET" in urls, process.stderr.read() if process.stderr else "no output"
        yield process, urls
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def test_cli_serves_the_default_market(cli_process: tuple[subprocess.Popen[str], dict[str, str]]) -> None:
    process, urls = cli_process
    assert urls["REST_URL"].startswith("http://127.0.0.1:")
    assert urls["STREAM_URL"].startswith("ws://127.0.0.1:")
    assert urls["WS_API_URL"].endswith("/ws-api/v3")
    assert (urls["API_KEY"], urls["API_SECRET"]) == ("cli-key", "cli-secret")

    class Urls:
        rest_url = urls["REST_URL"]
        stream_url = urls["STREAM_URL"]
        ws_api_url = urls["WS_API_URL"]

    client = create_client(Urls(), "cli-key", "cli-secret")
    try:
        ticker = client.get_orderbook_ticker(symbol="BTCUSDT")
        assert Decimal("59000") < Decimal(ticker["bidPrice"]) < Decimal(ticker["askPrice"]) < Decimal("61000")
        ticker = client.get_orderbook_ticker(symbol="ETHUSDT")
        assert Decimal("2500") < Decimal(ticker["bidPrice"]) < Decimal("2700")
        balances = {b["asset"]: Decimal(b["free"]) for b in client.get_account()["balances"]}
        assert balances["USDT"] > 0
        assert balances["BTC"] > 0
        response = requests.post(
            f"{urls['CONTROL_URL']}/faults", json={"kind": "rate_limit_429", "retry_after": 3, "times": 1}, timeout=5
        )
        assert response.status_code == 200
        with pytest.raises(BinanceAPIException) as err:
            client.get_account()
        assert err.value.status_code == 429
        assert err.value.response.headers["Retry-After"] == "3"
    finally:
        client.close_connection()
    assert process.poll() is None


CAPTURE = shared_data_dir() / "market" / "spot_ethusdt_20240808.gz"


@pytest.mark.skipif(not CAPTURE.is_file(), reason=f"recorded capture not found at {CAPTURE}")
@pytest.mark.parametrize("cli_process", [["--replay", str(CAPTURE), "--speed", "50"]], indirect=True)
def test_cli_replays_a_capture(cli_process: tuple[subprocess.Popen[str], dict[str, str]]) -> None:
    _, urls = cli_process
    deadline = time.monotonic() + 15
    book: dict[str, object] = {}
    while time.monotonic() < deadline:
        book = requests.get(f"{urls['REST_URL']}/v3/depth", params={"symbol": "ETHUSDT"}, timeout=5).json()
        if book["bids"]:
            break
        time.sleep(0.1)
    bids = book["bids"]
    assert isinstance(bids, list)
    assert bids
    assert Decimal("2000") < Decimal(bids[0][0]) < Decimal("3000")  # the recorded 2024-08-08 ETH price


def test_cli_rejects_a_missing_capture(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.fakevenue", "--replay", str(tmp_path / "missing.gz")],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    assert result.returncode == 2
    assert "no such capture" in result.stderr
