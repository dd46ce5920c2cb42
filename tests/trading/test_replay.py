"""``manage.py replay``: deterministic by seed, one row per grid point, a progress bar, a self-contained report
kept and served by the admin, clear errors; and the engine's venue model on a hand-made market."""

from __future__ import annotations

import io
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.urls import reverse

from arbitragex.config import defaults
from trading.models import ReplayReport
from trading.replay.engine import ReplaySettings, replay_run
from venues.simulated.calibration import TopOfBook

D = Decimal
CAPTURES = settings.SHARED_DATA_DIR / "market" / "spot_btcusdt_20240808.gz"
needs_captures = pytest.mark.skipif(
    not CAPTURES.is_file(), reason=f"recorded market data not found at {CAPTURES} (ARBX_SHARED_DATA)"
)


def replay(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("replay", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if ": detected " in line]


# --- the engine, on a market made by hand --------------------------------------------------------------------


def top(ms: float, venue: str, bid: str, ask: str, qty: str = "1") -> TopOfBook:
    return TopOfBook(round(ms * 1000), venue, D(bid), D(qty), D(ask), D(qty))


def run(tops: list[TopOfBook], **values: object):
    settings_ = ReplaySettings(
        symbol="BTCUSDT", venues=("a", "b"), values={**defaults(), "leg_failure_policy": "escalate", **values},
        latency_ms=10, seed=3, taker_fee=D("0.001"),
    )  # fmt: skip
    return replay_run(tops, settings_)


def test_a_dislocation_that_lasts_beyond_the_latency_is_captured_at_the_touch():
    market = [
        top(0, "a", "59990", "60000"), top(1, "b", "59990", "60000"),
        top(2, "b", "60300", "60310"),  # b's bid jumps 50 bps above a's ask, and stays
        top(100, "a", "59990", "60000"), top(100, "b", "60300", "60310"),
    ]  # fmt: skip

    result = run(market, execution_policy="simultaneous", cost_aware_firing=False)

    (execution,) = result.executions
    assert execution.outcome == "completed"
    assert (execution.bought, execution.sold) == (execution.quantity, execution.quantity)
    fees = execution.quantity * (D("60000") + D("60300")) * D("0.001")
    assert execution.pnl == execution.quantity * (D("60300") - D("60000")) - fees
    assert execution.book_ages_ms and all(age >= 8 for age in execution.book_ages_ms)  # the book at arrival


def test_a_leg_whose_venue_moves_before_the_order_arrives_is_retried_then_unwound():
    market = [
        top(0, "a", "59990", "60000"), top(1, "b", "59990", "60000"),
        top(2, "b", "60300", "60310"),
        top(5, "b", "59995", "60005"),  # gone 3 ms later, before the sell arrives
        top(200, "a", "59990", "60000"),
    ]  # fmt: skip

    result = run(market, execution_policy="simultaneous", cost_aware_firing=False)

    (execution,) = result.executions
    assert execution.outcome == "unwound"
    assert [step.split(":")[0] for step in execution.steps] == [
        f"leg BUY {execution.quantity} on a", f"leg SELL {execution.quantity} on b",
        f"retry SELL {execution.quantity} on b", f"unwind SELL {execution.quantity} on a",
    ]  # fmt: skip
    assert execution.pnl < 0 and execution.legging_loss == -execution.pnl


def test_sequential_sends_the_lagging_venue_first_and_a_miss_there_costs_nothing():
    market = [
        top(0, "a", "59990", "60000"), top(1, "b", "59990", "60000"),
        top(30, "a", "60300", "60310"),  # a moves; b, the laggard, still quotes 60000 (its quote is 29 ms old)
        top(35, "b", "60295", "60305"),  # b catches up before the first leg arrives
    ]  # fmt: skip

    result = run(market, execution_policy="sequential", cost_aware_firing=False)

    (execution,) = result.executions
    assert (execution.buy_venue, execution.first_leg) == ("b", "B")  # buy on b, the lagging venue, first
    assert execution.outcome == "failed" and execution.pnl == 0 and execution.fees == 0


def test_cost_aware_firing_declines_once_the_pair_has_shown_its_legs_miss():
    # The same losing pattern ten times over: b's bid jumps, and is gone before an order arrives.
    market = [top(0, "a", "59990", "60000"), top(1, "b", "59990", "60000")]
    for i in range(10):
        t = 2_000 * (i + 1)
        market += [top(t - 1, "a", "59990", "60000"), top(t, "b", "60300", "60310"), top(t + 3, "b", "59995", "60005")]

    result = run(market, execution_policy="simultaneous", debounce_refire_ms=1000)

    assert len(result.executions) < 10
    assert result.declined["2014 expected gain below the expected repair cost"] >= 1
    assert result.executions[0].outcome == "unwound"


# --- the command ----------------------------------------------------------------------------------------------


@needs_captures
@pytest.mark.django_db
def test_a_replay_of_the_captures_is_deterministic_by_seed_and_sweeps_its_grid(tmp_path: Path):
    args = ["--duration", "60", "--taker-fee", "0", "--set", "min_profit_rate=0", "--seed", "5", "--no-progress",
            "--grid", "execution_policy=simultaneous,sequential", "--grid", "latency_ms=5,20"]  # fmt: skip

    first, _ = replay(*args, "--out", str(tmp_path / "one.html"))
    second, _ = replay(*args, "--out", str(tmp_path / "two.html"))

    assert run_lines(first) == run_lines(second)
    assert len(run_lines(first)) == 4  # one per grid point
    assert any(int(re.search(r"taken (\d+)", line)[1]) > 0 for line in run_lines(first))
    assert (tmp_path / "one.html").read_text() == (tmp_path / "two.html").read_text()
    report = ReplayReport.objects.latest("created_at")
    assert (report.source, report.symbol, report.seed, report.grid_points) == (
        "recorded captures (Binance spot vs USD-M)", "BTCUSDT", 5, 4,
    )  # fmt: skip


@needs_captures
@pytest.mark.django_db
def test_the_report_is_self_contained_with_its_plots_and_tables(tmp_path: Path):
    out = tmp_path / "report.html"
    replay("--duration", "60", "--taker-fee", "0", "--set", "min_profit_rate=0", "--no-progress", "--out", str(out))

    html = out.read_text()
    assert html.count("<svg") >= 5  # PnL curve, by pair, capture, legging, latency, sweep
    for section in ("Cumulative PnL", "By venue pair", "Latency", "Declined, and why", "Sweep", "Parameters"):
        assert section in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing fetched from anywhere
    assert "<script" not in html
    assert not re.search(r"\d\.\d{9,}", html)  # no number with more than 8 decimals


@pytest.mark.django_db
def test_a_simulator_replay_shows_progress_and_the_admin_lists_and_serves_it(tmp_path: Path, admin_client, capsys):
    _, err = replay("--source", "demo", "--duration", "30", "--seed", "2", "--out", str(tmp_path / "sim.html"))

    assert "replay [" in err and "100%" in err and "updates  run 1/1" in err
    report = ReplayReport.objects.get()
    listing = admin_client.get(reverse("admin:trading_replayreport_changelist")).content.decode()
    assert "simulator profile demo" in listing
    assert reverse("admin:trading_replayreport_html", args=[report.pk]) in listing
    served = admin_client.get(reverse("admin:trading_replayreport_html", args=[report.pk]))
    assert served.status_code == 200 and served["Content-Type"].startswith("text/html")
    assert served.content.decode() == (tmp_path / "sim.html").read_text()


@pytest.mark.django_db
def test_the_report_is_for_staff_only(client):
    report = ReplayReport.objects.create(source="demo", symbol="BTCUSDT", seed=1, html="<p>figures</p>")

    response = client.get(reverse("admin:trading_replayreport_html", args=[report.pk]))

    assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "nonsense=1"], "'nonsense': not a config key"),
        (["--set", "min_profit_rate"], "expected KEY=VALUE"),
        (["--set", "min_profit_rate=lots"], "min_profit_rate='lots'"),
        (["--grid", "execution_policy=sideways"], "execution_policy='sideways'"),
        (["--grid", "latency_ms="], "no values"),
        (["--grid", "latency_ms=-5"], "must not be negative"),
        (["--taker-fee", "2"], "a fraction between 0 and 1"),
        (["--duration", "0"], "--duration must be positive"),
        (["--symbol", "DOGEUSDT"], "DOGEUSDT"),
    ],
)
@pytest.mark.django_db
def test_bad_arguments_are_refused_with_why(args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        replay(*args, "--no-progress", "--source", "demo" if "--symbol" in args else "captures")
