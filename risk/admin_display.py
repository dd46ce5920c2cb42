"""How risk figures are shown in the admin (``arbitragex.admin_display``): a scope's equity and PnL are
sums of profits in the quote assets traded, so they are shown in its symbol's quote asset, or for a
desk-wide scope in the quote asset all instruments share (8 places without a unit when they do not)."""

from __future__ import annotations

from arbitragex.admin_display import InstrumentAt, Money
from marketdata.admin_display import figures

RISK_STATE_FIGURES = figures(
    {name: Money() for name in ("initial_equity", "current_equity", "peak_equity", "daily_pnl")},
    instruments={"": InstrumentAt(None, "symbol")},
)
