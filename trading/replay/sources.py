"""The markets a replay reads: the recorded Binance spot and USD-M captures of one symbol, or a simulator
profile's two venues. Either way, two venues' top-of-book updates in time order."""

from __future__ import annotations

from decimal import Decimal, localcontext
from pathlib import Path

from arbitragex.money import MONEY_CONTEXT
from venues.simulated.calibration import BasisTracker, TopOfBook, capture_tops, tops_between, tops_merge
from venues.simulated.market import SimulatedMarket

__all__ = ["CAPTURES", "captured_tops", "simulated_tops"]

CAPTURES = {
    "BTCUSDT": ("spot_btcusdt_20240808.gz", "usdm_btcusdt_20240808.gz"),
    "ETHUSDT": ("spot_ethusdt_20240808.gz", "usdm_ethusdt_20240808.gz"),
}
VENUES = ("spot", "usdm")


class SourceMissing(Exception):
    """The captures asked for are not there."""


def captured_tops(
    data_dir: Path, symbol: str, *, duration_s: float | None, basis_window_s: float, tick: Decimal
) -> tuple[list[TopOfBook], tuple[str, str]]:
    """The spot (``spot``) and USD-M (``usdm``) bookTicker updates of ``symbol`` over the window both cover.

    The perpetual quotes a few bps away from spot for the whole window (its basis): its prices are divided by
    the basis (the median ratio of the mids over a trailing ``basis_window_s``, as the calibration measures
    it) and put back on the tick grid, so that a dislocation is a move of one venue against the other, not the
    basis. ``basis_window_s`` 0 compares raw prices."""
    if symbol not in CAPTURES:
        raise SourceMissing(f"no capture of {symbol}; recorded: {', '.join(CAPTURES)}")
    paths = [data_dir / "market" / name for name in CAPTURES[symbol]]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise SourceMissing(f"recorded captures not found: {', '.join(missing)} (set ARBX_SHARED_DATA or --data-dir)")
    spot = list(capture_tops(paths[0], venue=VENUES[0]))
    usdm = list(capture_tops(paths[1], venue=VENUES[1]))
    if not spot or not usdm:
        raise SourceMissing(f"no bookTicker updates in the {symbol} captures")
    start = max(spot[0].ts_us, usdm[0].ts_us)
    end = min(spot[-1].ts_us, usdm[-1].ts_us)
    if duration_s is not None:
        end = min(end, start + round(duration_s * 1e6))
    tracker = BasisTracker(window_us=round(basis_window_s * 1e6) or None)
    mids: dict[str, Decimal] = {}
    tops: list[TopOfBook] = []
    with localcontext(MONEY_CONTEXT):
        for top in tops_between(tops_merge(spot, usdm), start, end):
            mids[top.venue] = top.mid
            if len(mids) < 2:
                continue
            ratio = tracker.update(top.ts_us, mids[VENUES[0]], mids[VENUES[1]])
            if top.venue == VENUES[1] and ratio != 1:
                bid = (top.bid / ratio).quantize(tick)
                ask = max((top.ask / ratio).quantize(tick), bid + tick)
                top = TopOfBook(top.ts_us, top.venue, bid, top.bid_qty, ask, top.ask_qty)
            tops.append(top)
    return tops, VENUES


def simulated_tops(
    profile: str, symbol: str, *, seed: int, duration_s: float, taker_fee: Decimal
) -> tuple[list[TopOfBook], tuple[str, str]]:
    """A simulator profile's two venues (leader, follower), seeded, over ``duration_s`` of simulated time."""
    market = SimulatedMarket(
        symbols=[symbol], seed=seed, profile=profile, taker_fee=taker_fee, speed=None, depth_every=0,
        use_recorded=False,
    )  # fmt: skip
    tops = [top for _, top in market.generate_tops(duration_s)]
    return tops, (market.venues[0], market.venues[1])
