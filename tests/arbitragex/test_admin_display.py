"""Numbers a person can read in the admin (``arbitragex.admin_display``): prices at the instrument's tick
size, quantities at its step size, money in its asset, rates in bps, in lists, change pages and inlines;
the instruments looked up once per page, not per row; editable inputs exact; ledger rows read-only."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from arbitragex.admin_display import FigureSet, InstrumentAt, Money, Price, Quantity
from marketdata.admin_display import instrument_figures
from marketdata.models import Instrument, Kline
from tests.factories import (
    AccountBalanceFactory,
    ArbitrageOpportunityFactory,
    ExchangeAccountFactory,
    InstrumentFactory,
    RiskStateFactory,
    VenueFactory,
)
from tests.ledger_data import filled_execution
from trading.models import AccountBalance, Fill, Order, TradeExecution

D = Decimal
LONG_FRACTION = re.compile(r"\d\.\d{9,}")
TITLE = re.compile(r'\stitle="[^"]*"')


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def shown(html: str) -> str:
    """The page as a person sees it: without the tooltips, which carry the exact stored values."""
    return TITLE.sub("", html)


@pytest.fixture
def desk(db):
    a, b = VenueFactory(code="sim-a"), VenueFactory(code="sim-b", default_taker_fee=D("0.00075"))
    for venue in (a, b):
        InstrumentFactory(venue=venue, symbol="BTCUSDT", tick_size=D("0.01"), step_size=D("0.00001"))
    # The same symbol with a coarser tick on one venue: each row is shown at its own venue's.
    InstrumentFactory(venue=a, symbol="ETHUSDT", base_asset="ETH", tick_size=D("0.1"), step_size=D("0.0001"))
    InstrumentFactory(venue=b, symbol="ETHUSDT", base_asset="ETH", tick_size=D("0.01"), step_size=D("0.001"))
    return {"a": a, "b": b, "buy": ExchangeAccountFactory(venue=a), "sell": ExchangeAccountFactory(venue=b)}


@pytest.fixture
def execution(desk):
    return filled_execution(desk["buy"], desk["sell"])


@pytest.mark.django_db
def test_the_execution_page_shows_prices_quantities_and_money_as_a_person_reads_them(admin_client, execution):
    stored = {f: getattr(execution, f) for f in ("actual_profit", "expected_profit", "fees_quote")}
    buy = execution.orders.get(leg="B")
    assert buy.avg_price.as_tuple().exponent == -18 and buy.avg_price % D("0.01")  # not on a tick

    html = admin_client.get(_url(TradeExecution, "change", execution.pk)).content.decode()

    assert not LONG_FRACTION.findall(shown(html)), LONG_FRACTION.findall(shown(html))[:5]
    # The execution's own figures: prices at the tick, the quantity at the step, money to the cent.
    assert '<div class="readonly">61828.57</div>' in html
    assert '<div class="readonly">0.01234</div>' in html
    actual = stored["actual_profit"].quantize(D("0.01"))
    assert f'title="{stored["actual_profit"].normalize():f}">{actual:f} USDT</span>' in html
    # The orders inline: the average price at the tick (its exact value as the tooltip), fees in USDT.
    avg = buy.avg_price.quantize(D("0.01"))
    assert f'title="{buy.avg_price.normalize():f}">{avg:f}</span>' in html
    assert f">{buy.fee_quote.quantize(D('0.01')):f} USDT<" in html
    # The fills: a BNB fee to 8 places, a USDT one to the cent.
    bnb = Fill.objects.filter(commission_asset="BNB").first()
    assert f">{bnb.commission.quantize(D('1E-8')).normalize():f} BNB<" in html
    # Nothing stored changed.
    execution.refresh_from_db()
    assert {f: getattr(execution, f) for f in stored} == stored


@pytest.mark.django_db
def test_list_columns_show_figures_and_keep_sorting_on_the_field(admin_client, execution, desk):
    ArbitrageOpportunityFactory(
        buy_venue=desk["a"], sell_venue=desk["b"], buy_price=D("61828.574"), net_rate=D("0.000123456"),
        estimated_profit=D("0.123456789"), quantity=D("0.0123456"),
    )  # fmt: skip

    executions = admin_client.get(_url(TradeExecution, "changelist")).content.decode()
    opportunities = admin_client.get(reverse("admin:trading_arbitrageopportunity_changelist")).content.decode()
    venues = admin_client.get(reverse("admin:marketdata_venue_changelist")).content.decode()
    by_profit = admin_client.get(_url(TradeExecution, "changelist") + "?o=-7").content.decode()  # actual profit

    assert not LONG_FRACTION.findall(shown(executions))
    assert f">{execution.actual_profit.quantize(D('0.01')):f} USDT<" in executions
    assert ">61828.57<" in opportunities and ">1.23 bps<" in opportunities and ">0.12 USDT<" in opportunities
    assert ">0.01235<" in opportunities  # 0.0123456 at the 0.00001 step, half-even
    assert ">7.5 bps<" in venues and ">10 bps<" in venues
    assert 'class="sortable column-actual_profit_shown sorted descending' in by_profit


@pytest.mark.django_db
@pytest.mark.parametrize("model", [TradeExecution, Order, Fill, Instrument, Kline], ids=lambda m: m.__name__)
def test_a_list_page_looks_its_instruments_up_once_not_per_row(admin_client, desk, model):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(_url(model, "changelist")).status_code == 200
        return len(captured)

    made = iter(range(1000))

    def more_rows(n: int) -> None:
        for i in (next(made) for _ in range(n)):
            if model is Kline:
                venue = desk["a"] if i % 2 else desk["b"]
                Kline.objects.create(
                    venue=venue, symbol="ETHUSDT" if i % 3 else "BTCUSDT",
                    open_time=datetime(2025, 3, 1, tzinfo=UTC) + timedelta(minutes=i),
                    open=D("2650.12"), high=D("2651"), low=D("2649.5"), close=D("2650.5"), volume=D("12.3456"),
                )  # fmt: skip
            elif model is Instrument:
                InstrumentFactory(venue=desk["a" if i % 2 else "b"], symbol=f"X{i}USDT", base_asset=f"X{i}")
            else:
                filled_execution(desk["buy"] if i % 2 else desk["sell"], desk["sell"] if i % 2 else desk["buy"],
                                 trade_ids=10000 + 10 * i)  # fmt: skip

    more_rows(2)
    few = queries()
    more_rows(8)
    many = queries()

    assert many == few


@pytest.mark.django_db
def test_each_row_is_shown_at_its_own_venues_increments(admin_client, desk):
    Kline.objects.create(
        venue=desk["a"], symbol="ETHUSDT", open_time="2025-03-01T10:00:00Z", open=D("2650.16"), high=D("2651"),
        low=D("2649.5"), close=D("2650.15"), volume=D("12.34567"),
    )  # fmt: skip
    Kline.objects.create(
        venue=desk["b"], symbol="ETHUSDT", open_time="2025-03-01T10:00:00Z", open=D("2650.16"), high=D("2651"),
        low=D("2649.5"), close=D("2650.15"), volume=D("12.34567"),
    )  # fmt: skip

    html = admin_client.get(reverse("admin:marketdata_kline_changelist")).content.decode()

    # sim-a: tick 0.1, step 0.0001; sim-b: tick 0.01, step 0.001 (half-even: 2650.15 -> 2650.2 at 0.1).
    assert ">2650.2<" in html and ">12.3457<" in html
    assert ">2650.15<" in html and ">12.346<" in html


# --- ledger rows are read-only --------------------------------------------------------------------------------


@pytest.fixture
def ledger(execution, desk):
    balance = AccountBalanceFactory(account=desk["buy"], asset="BTC", free=D("0.123456789012345678"))
    order = execution.orders.get(leg="B")
    return {"execution": execution, "order": order, "fill": order.fills.first(), "balance": balance}


@pytest.mark.django_db
@pytest.mark.parametrize("row", ["execution", "order", "fill", "balance"])
def test_a_ledger_row_is_view_only_and_cannot_be_added_or_deleted(admin_client, ledger, row):
    obj = ledger[row]
    model = type(obj)
    change = _url(model, "change", obj.pk)

    page = admin_client.get(change)
    posted = admin_client.post(change, {"status": "FAILED", "free": "1000", "price": "1"})

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert posted.status_code == 403
    assert admin_client.get(_url(model, "add")).status_code == 403
    assert admin_client.get(_url(model, "delete", obj.pk)).status_code == 403
    fresh = model.objects.get(pk=obj.pk)
    assert all(getattr(fresh, f.attname) == getattr(obj, f.attname) for f in model._meta.concrete_fields
               if f.attname != "updated_at")  # fmt: skip


@pytest.mark.django_db
def test_the_audited_actions_stay_on_the_read_only_lists(admin_client, ledger):
    for model, action in ((TradeExecution, "cancel_open_orders"), (Order, "resync_orders"),
                          (AccountBalance, "resync_balances")):  # fmt: skip
        html = admin_client.get(_url(model, "changelist")).content.decode()
        assert f'value="{action}"' in html, model


@pytest.mark.django_db
def test_an_execution_page_has_no_editable_field_and_its_inlines_none_either(admin_client, execution):
    html = admin_client.get(_url(TradeExecution, "change", execution.pk)).content.decode()

    form = html.split('id="tradeexecution_form"')[1].split("</form>")[0]
    inputs = re.findall(r"<(?:input|select|textarea)[^>]*>", form)
    # Only the CSRF token and the inline's management form.
    assert all('type="hidden"' in tag for tag in inputs), inputs
    assert 'name="orders-TOTAL_FORMS"' in form
    assert "Save" not in form


@pytest.mark.django_db
def test_an_accounts_balances_are_read_only_on_its_page_and_the_account_can_still_be_saved(admin_client, ledger, desk):
    account = desk["buy"]
    url = reverse("admin:trading_exchangeaccount_change", args=[account.pk])
    html = admin_client.get(url).content.decode()

    assert 'name="balances-0-free"' not in html
    assert ">0.12345679<" in html  # the BTC balance, 8 places
    total = AccountBalance.objects.filter(account=account).count()
    response = admin_client.post(
        url,
        {"name": "renamed", "venue": account.venue_id, "mode": account.mode, "enabled": "on", "api_key": "",
         "balances-TOTAL_FORMS": str(total), "balances-INITIAL_FORMS": str(total), "balances-MIN_NUM_FORMS": "0",
         "balances-MAX_NUM_FORMS": "0", "balances-0-free": "999"},
    )  # fmt: skip

    assert response.status_code == 302, response.content.decode()[:2000]
    account.refresh_from_db()
    assert account.name == "renamed"
    assert AccountBalance.objects.get(pk=ledger["balance"].pk).free == D("0.123456789012345678")


# --- editable numbers stay exact ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_editable_decimal_shows_its_exact_value_without_padding_zeros(admin_client, desk):
    instrument = InstrumentFactory(venue=desk["a"], symbol="PEPEUSDT", base_asset="PEPE", tick_size=D("1E-9"),
                                   step_size=D("1"), taker_fee=D("0.00075"))  # fmt: skip
    url = reverse("admin:marketdata_instrument_change", args=[instrument.pk])

    html = admin_client.get(url).content.decode()
    listing = admin_client.get(reverse("admin:marketdata_instrument_changelist")).content.decode()

    assert 'name="tick_size" value="0.000000001"' in html  # exact: an input is never rounded
    assert 'name="taker_fee" value="0.00075"' in html
    assert ">7.5 bps<" in listing and ">0.000000001<" in listing


# --- the figures themselves ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_desk_figures_are_in_the_quote_asset_every_instrument_shares(admin_client, desk):
    RiskStateFactory(account="global", current_equity=D("20000.505"), daily_pnl=D("-4.7079934537"))
    assert instrument_figures({(None, "")})[(None, "")].quote_asset == "USDT"

    html = admin_client.get(reverse("admin:risk_riskstate_changelist")).content.decode()
    assert ">20000.5 USDT<" in html and ">-4.71 USDT<" in html  # half-even: 20000.505 -> 20000.5

    InstrumentFactory(venue=desk["a"], symbol="ETHBTC", base_asset="ETH", quote_asset="BTC")
    assert (None, "") not in instrument_figures({(None, "")})
    html = admin_client.get(reverse("admin:risk_riskstate_changelist")).content.decode()
    assert ">-4.70799345<" in html  # two quote assets: no unit, 8 places


@pytest.mark.django_db
def test_a_row_without_a_known_instrument_is_shown_at_eight_places_at_most(desk):
    figure_set = FigureSet(
        fields={"price": Price(), "qty": Quantity(), "fee": Money("asset")},
        instruments={"": InstrumentAt("venue_id", "symbol")},
        loader=instrument_figures,
    )

    class Row:
        def __init__(self, venue_id, symbol, asset):
            self.venue_id, self.symbol, self.asset = venue_id, symbol, asset
            self.price, self.qty, self.fee = D("1.123456789123"), D("0.000000004"), D("1.005")

    known, unknown = Row(desk["a"].pk, "BTCUSDT", "USDT"), Row(desk["a"].pk, "NOPEUSDT", "")
    with CaptureQueriesContext(connection) as captured:
        figure_set.attach([known, unknown])
    assert len(captured) == 1
    assert [figure_set.text(known, n) for n in ("price", "qty", "fee")] == ["1.12", "0", "1 USDT"]
    assert [figure_set.text(unknown, n) for n in ("price", "qty", "fee")] == ["1.12345679", "0", "1.005"]


@pytest.mark.django_db
def test_a_user_who_may_only_view_sees_figures_not_inputs_inlines_included(client, desk):
    viewer = get_user_model().objects.create_user(username="viewer", password="a-long-password-1", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename__in=["view_venue", "view_instrument"]))
    client.force_login(viewer)

    html = client.get(reverse("admin:marketdata_venue_change", args=[desk["b"].pk])).content.decode()

    assert 'name="default_taker_fee"' not in html and 'name="instruments-0-taker_fee"' not in html
    assert ">7.5 bps<" in html  # the venue's default taker fee, and its instruments' inline
    assert 'class="field-taker_fee_shown"' in html
