"""How the trading ledger's numbers are shown in the admin (``arbitragex.admin_display``): prices at the
tick size and quantities at the step size of each row's instrument, money in its asset, rates in bps."""

from __future__ import annotations

from typing import Any

from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from arbitragex import display
from arbitragex.admin_display import BasisPoints, InstrumentAt, InstrumentFigures, Money, Price, Quantity, Rate
from marketdata.admin_display import figures
from trading.enums import OrderSide
from trading.models import Fill, TradeExecution
from trading.repair import repair_steps

_QUOTE = "quote_asset"
_COIN_STEP = "0.00000001"

EXECUTION_FIGURES = figures(
    {
        "buy_price": Price("buy"),
        "sell_price": Price("sell"),
        "quantity": Quantity("buy"),
        "expected_profit": Money(_QUOTE),
        "actual_profit": Money(_QUOTE),
        "fees_quote": Money(_QUOTE),
        "profit_diff_fees": Money(_QUOTE),
        "profit_diff_slippage": Money(_QUOTE),
        "profit_diff_latency": Money(_QUOTE),
        "residual_qty": Quantity("buy"),
        "reserved_quote": Money(_QUOTE),
        "reserved_base": Quantity("sell"),  # held on the sell venue
        "band_bps": BasisPoints(),
    },
    instruments={"buy": InstrumentAt("buy_venue_id", "symbol"), "sell": InstrumentAt("sell_venue_id", "symbol")},
)

ORDER_FIGURES = figures(
    {
        "price": Price(),
        "avg_price": Price(),
        "quantity": Quantity(),
        "filled_qty": Quantity(),
        "cumulative_quote": Money(),
        "fee_quote": Money(),
    },
    instruments={"": InstrumentAt("venue_id", "symbol")},
)

FILL_FIGURES = figures(
    {
        "price": Price(),
        "qty": Quantity(),
        "quote_qty": Money(),
        "commission": Money("commission_asset"),
        "commission_rate_to_quote": Money(),
        "commission_quote": Money(),
    },
    instruments={"": InstrumentAt("order__venue_id", "order__symbol")},
)

# The asset is a column of its own: the amounts go without it.
BALANCE_FIGURES = figures({name: Money("asset", unit=False) for name in ("free", "locked", "reserved")})

OPPORTUNITY_FIGURES = figures(
    {
        "buy_price": Price("buy"),
        "sell_price": Price("sell"),
        "buy_qty_available": Quantity("buy"),
        "sell_qty_available": Quantity("sell"),
        "quantity": Quantity("buy"),
        "gross_rate": Rate(),
        "net_rate": Rate(),
        "estimated_profit": Money(instrument="buy"),
    },
    instruments={"buy": InstrumentAt("buy_venue_id", "symbol"), "sell": InstrumentAt("sell_venue_id", "symbol")},
)

# A balance drift is an amount of its asset; a leg failure's drift is a residual quantity (no asset).
INCIDENT_FIGURES = figures({name: Money("asset") for name in ("local_value", "venue_value", "drift")})

ROLLUP_FIGURES = figures(
    {name: Money() for name in ("expected_profit", "actual_profit", "fees_quote")},
    instruments={"": InstrumentAt(None, "symbol")},
)


def _locked_asset(order: Any, instrument: InstrumentFigures | None) -> str | None:
    """A paper buy locks quote, a sell locks base."""
    if instrument is None:
        return None
    return instrument.quote_asset if order.side == OrderSide.BUY else instrument.base_asset


PAPER_ORDER_FIGURES = figures(
    {
        "price": Price(),
        "quantity": Quantity(),
        "filled_qty": Quantity(),
        "cumulative_quote": Money(),
        "locked": Money(_locked_asset),
    },
    instruments={"": InstrumentAt("account__venue_id", "symbol")},
)

PAPER_FILL_FIGURES = figures(
    {"price": Price(), "qty": Quantity(), "commission": Money("commission_asset")},
    instruments={"": InstrumentAt("order__account__venue_id", "order__symbol")},
)


def fills_table(execution: TradeExecution) -> str | SafeString:
    """The fills of an execution's orders (fills belong to orders, an inline of an inline Django has not),
    figures shown like the fills' own admin."""
    fills = list(Fill.objects.filter(order__execution=execution).select_related("order").order_by("filled_at", "id"))
    if not fills:
        return "—"
    FILL_FIGURES.attach(fills)
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (f.order.client_order_id, f.order.side, f.trade_id, FILL_FIGURES.html(f, "price"),
             FILL_FIGURES.html(f, "qty"), FILL_FIGURES.html(f, "quote_qty"), FILL_FIGURES.html(f, "commission"),
             FILL_FIGURES.html(f, "commission_quote"), formats.localize(timezone.localtime(f.filled_at)))
            for f in fills
        ),
    )  # fmt: skip
    return format_html(
        '<table class="fills"><tr><th>order</th><th>side</th><th>trade</th><th>price</th><th>qty</th><th>quote qty</th>'
        "<th>fee</th><th>fee in quote</th><th>at</th></tr>{}</table>",
        rows,
    )


def repair_steps_table(execution: TradeExecution) -> str | SafeString:
    """The execution's repair steps (``trading.repair``): each retry or unwind, its cost and latency."""
    steps = repair_steps(execution, execution.orders.all())
    if not steps:
        return "—"
    asset = execution.quote_asset

    def price(value: Any) -> str:
        return "—" if value is None else display.money(value, asset, with_asset=False)

    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (s.step, s.client_order_id, s.status, price(s.price), display.quantity(s.filled_qty, _COIN_STEP),
             price(s.avg_price), display.money(s.cost, asset),
             "—" if s.latency_ms is None else f"{s.latency_ms} ms")
            for s in steps
        ),
    )  # fmt: skip
    return format_html(
        '<table class="fills"><tr><th>step</th><th>order</th><th>status</th><th>limit</th><th>filled</th>'
        "<th>avg price</th><th>cost</th><th>latency</th></tr>{}</table>",
        rows,
    )
