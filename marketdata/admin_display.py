"""The instruments behind the admin's figures (``arbitragex.admin_display``): tick and step sizes and
assets by (venue, symbol), for a whole page of rows in one query; and how market data's own numbers are
shown (fees in bps, candles at the tick and step sizes)."""

from __future__ import annotations

from collections.abc import Mapping

from arbitragex.admin_display import (
    SELF,
    Figure,
    FigureSet,
    Increment,
    InstrumentAt,
    InstrumentFigures,
    Key,
    Money,
    Price,
    Quantity,
    Rate,
)
from arbitragex.money import ZERO
from marketdata.models import Instrument


def instrument_figures(keys: set[Key]) -> dict[Key, InstrumentFigures]:
    """The instruments at ``keys`` (venue id, symbol). A key without a venue takes the symbol on any venue
    (the one with the lowest id: the assets are the same everywhere); ``(None, "")``, the desk, is the
    quote asset every instrument shares, if they all share one (its sizes are zero): the desk's figures
    (risk equity, daily PnL) add up profits in the quote assets of whatever was traded."""
    symbols = {symbol for _, symbol in keys if symbol}
    venues = {venue for venue, symbol in keys if venue is not None}
    any_venue = any(venue is None for venue, symbol in keys if symbol)
    found: dict[Key, InstrumentFigures] = {}
    if symbols:
        rows = Instrument.objects.filter(symbol__in=symbols)
        if not any_venue:
            rows = rows.filter(venue_id__in=venues)
        for venue, symbol, tick, step, base, quote in rows.order_by("venue_id").values_list(
            "venue_id", "symbol", "tick_size", "step_size", "base_asset", "quote_asset"
        ):
            figures = InstrumentFigures(tick_size=tick, step_size=step, base_asset=base, quote_asset=quote)
            found[(venue, symbol)] = figures
            found.setdefault((None, symbol), figures)
    if (None, "") in keys:
        quotes = list(Instrument.objects.order_by().values_list("quote_asset", flat=True).distinct()[:2])
        if len(quotes) == 1:
            found[(None, "")] = InstrumentFigures(tick_size=ZERO, step_size=ZERO, base_asset="", quote_asset=quotes[0])
    return {key: value for key, value in found.items() if key in keys}


def figures(fields: Mapping[str, Figure], instruments: Mapping[str, InstrumentAt] | None = None) -> FigureSet:
    """A model admin's figures, its instruments looked up here."""
    return FigureSet(fields=fields, instruments=instruments or {}, loader=instrument_figures)


INSTRUMENT_FIGURES = figures(
    {
        "tick_size": Increment(),
        "step_size": Increment(),
        "min_qty": Quantity(),
        "max_qty": Quantity(),
        "min_notional": Money(),
        "taker_fee": Rate(),
        "maker_fee": Rate(),
    },
    instruments={"": SELF},
)

VENUE_FIGURES = figures({"default_taker_fee": Rate(), "default_maker_fee": Rate()})

KLINE_FIGURES = figures(
    {"open": Price(), "high": Price(), "low": Price(), "close": Price(), "volume": Quantity()},
    instruments={"": InstrumentAt("venue_id", "symbol")},
)
