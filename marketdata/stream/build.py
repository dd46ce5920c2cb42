"""Building a stream process from the database: which venues and symbols, which feeds, which config.

Everything here is synchronous and reads the database; the command calls it before the event loop
starts, and the runner calls the loaders on a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from arbitragex.services import config_values
from marketdata.detection import Debouncer, DetectionConfig
from marketdata.klines import KlineAggregator, klines_upsert
from marketdata.models import Instrument, Venue
from marketdata.stream.handoff import OpportunityHandler, handler_load
from marketdata.stream.pipeline import Pipeline
from marketdata.stream.runner import FeedSource, RuntimeConfig, StreamReport, StreamRunner, StreamSettings
from venues.feed import Feed, FeedFactory, FeedRequest, FeedVenue, FrameParser
from venues.registry import VenueKindUnknown, family_get
from venues.types import InstrumentSpec

__all__ = [
    "StreamOptions",
    "StreamPlan",
    "runtime_config_load",
    "shard_symbols",
    "specs_load",
    "stream_plan",
    "stream_run",
    "stream_runner_build",
    "venues_touch",
]

# A spread must stay gone this long to count as closed, so a one-tick flicker does not fire it again.
DEBOUNCE_CLOSE_GRACE_MS = 1_000


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """What the command line (or a test) asks for. None means: from settings, or everything enabled."""

    symbols: tuple[str, ...] | None = None
    venues: tuple[str, ...] | None = None
    seed: int | None = None
    speed: float | None = 1.0
    duration_s: float | None = None
    max_events: int | None = None
    handler: str | None = None
    settings: StreamSettings = field(default_factory=StreamSettings)


@dataclass(frozen=True, slots=True)
class PlannedFeed:
    factory: FeedFactory
    request: FeedRequest


@dataclass(frozen=True, slots=True)
class StreamPlan:
    shard: tuple[str, ...]
    shard_source: str
    venues: tuple[FeedVenue, ...]
    specs: dict[str, dict[str, InstrumentSpec]]
    feeds: tuple[PlannedFeed, ...]
    unavailable: dict[str, str]  # venue kind -> why no feed serves it
    seed: int
    speed: float | None

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(sorted({symbol for venue in self.venues for symbol in venue.symbols}))

    @property
    def streamed_venues(self) -> tuple[FeedVenue, ...]:
        return tuple(venue for feed in self.feeds for venue in feed.request.venues)

    def describe(self) -> list[str]:
        """What the stream starts, one line each, for the command to print."""
        lines = [f"shard     {','.join(self.shard) if self.shard else '(all symbols)'}  ({self.shard_source})"]
        for venue in self.venues:
            served = "" if venue.kind not in self.unavailable else "  NOT STREAMED: " + self.unavailable[venue.kind]
            lines.append(f"venue     {venue.code:<12} {venue.kind:<10} {', '.join(venue.symbols)}{served}")
        for feed in self.feeds:
            request = feed.request
            speed = "as fast as possible" if not request.speed else f"speed {request.speed:g}"
            extra = f"  seed {request.seed}  {speed}" if request.kind == "simulated" else ""
            lines.append(f"feed      {request.kind:<12} venues {', '.join(v.code for v in request.venues)}{extra}")
        return lines


def shard_symbols(symbols: Sequence[str] | None) -> tuple[tuple[str, ...], str]:
    """The symbols of this shard and where they came from: the command line, STREAM_SHARD, or all."""
    if symbols:
        return tuple(sorted({s.strip().upper() for s in symbols if s.strip()})), "--symbols"
    configured = [s.strip().upper() for s in settings.STREAM_SHARD.split(",") if s.strip()]
    if configured:
        return tuple(sorted(set(configured))), "STREAM_SHARD"
    return (), "all enabled instruments"


def _spec(instrument: Instrument) -> InstrumentSpec:
    return InstrumentSpec(
        venue=instrument.venue.code,
        symbol=instrument.symbol,
        base_asset=instrument.base_asset,
        quote_asset=instrument.quote_asset,
        tick_size=instrument.tick_size,
        step_size=instrument.step_size,
        min_qty=instrument.min_qty,
        max_qty=instrument.max_qty,
        min_notional=instrument.min_notional,
        taker_fee=instrument.taker_fee,
        maker_fee=instrument.maker_fee,
    )


def _instruments(symbols: Iterable[str], venues: Iterable[str]) -> list[Instrument]:
    queryset = Instrument.objects.filter(enabled=True, venue__enabled=True).select_related("venue")
    symbols, venues = tuple(symbols), tuple(venues)
    if symbols:
        queryset = queryset.filter(symbol__in=symbols)
    if venues:
        queryset = queryset.filter(venue__code__in=venues)
    return list(queryset.order_by("venue__code", "symbol"))


def specs_load(symbols: Iterable[str] = (), venues: Iterable[str] = ()) -> dict[str, dict[str, InstrumentSpec]]:
    """symbol -> venue -> spec of the enabled, trading instruments: what detection may price."""
    return _specs(_instruments(symbols, venues))


def _specs(instruments: Iterable[Instrument]) -> dict[str, dict[str, InstrumentSpec]]:
    specs: dict[str, dict[str, InstrumentSpec]] = {}
    for instrument in instruments:
        if instrument.status == "TRADING":
            specs.setdefault(instrument.symbol, {})[instrument.venue.code] = _spec(instrument)
    return specs


def stream_plan(
    *,
    symbols: Sequence[str] | None = None,
    venues: Sequence[str] | None = None,
    seed: int | None = None,
    speed: float | None = 1.0,
    data_dir: Path | None = None,
    feed_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> StreamPlan:
    """Which enabled venues and instruments this stream serves, and the feed of each venue kind.

    ``feed_options`` passes extra options to the feed of a kind (e.g. ``{"simulated":
    {"profile": "realistic"}}``). Raises ``ValueError`` for a ``venues`` code that is
    not an enabled venue.
    """
    shard, source = shard_symbols(symbols)
    if venues:
        known = set(Venue.objects.filter(code__in=venues, enabled=True).values_list("code", flat=True))
        missing = sorted(set(venues) - known)
        if missing:
            raise ValueError(f"not an enabled venue: {', '.join(missing)}")
    instruments = _instruments(shard, venues or ())
    by_venue: dict[str, list[Instrument]] = {}
    for instrument in instruments:
        by_venue.setdefault(instrument.venue.code, []).append(instrument)
    feed_venues = []
    for rows in by_venue.values():
        venue = rows[0].venue
        feed_venues.append(
            FeedVenue(
                code=venue.code,
                kind=venue.kind,
                symbols=tuple(row.symbol for row in rows),
                taker_fee=max((row.taker_fee for row in rows), default=Decimal(0)),
                rest_url=venue.rest_url,
                stream_url=venue.stream_url,
                tld=venue.tld,
                testnet=venue.testnet,
                ccxt_exchange=venue.ccxt_exchange,
                ccxt_urls=dict(venue.ccxt_urls or {}),
            )
        )
    seed = settings.SIMULATION_SEED if seed is None else seed
    feeds, unavailable = [], {}
    for kind in sorted({venue.kind for venue in feed_venues}):
        request = FeedRequest(
            kind=kind,
            venues=tuple(venue for venue in feed_venues if venue.kind == kind),
            seed=seed,
            speed=speed,
            data_dir=data_dir if data_dir is not None else settings.SHARED_DATA_DIR,
            options=dict((feed_options or {}).get(kind, {})),
        )
        try:
            factory = family_get(kind).feed
        except VenueKindUnknown as exc:
            unavailable[kind] = str(exc)
            continue
        if factory is None:
            unavailable[kind] = f"the {kind} family streams no market data"
            continue
        feeds.append(PlannedFeed(factory, request))
    return StreamPlan(
        shard=shard,
        shard_source=source,
        venues=tuple(feed_venues),
        specs=_specs(instruments),
        feeds=tuple(feeds),
        unavailable=unavailable,
        seed=seed,
        speed=speed,
    )


def runtime_config_load() -> RuntimeConfig:
    values = config_values()
    refire_ms = int(values["debounce_refire_ms"])
    return RuntimeConfig(
        detection=DetectionConfig(
            min_profit_rate=values["min_profit_rate"],
            max_notional=values["max_notional"],
            max_quote_age_ms=int(values["max_quote_age_ms"]),
        ),
        debounce_change_bps=Decimal(values["debounce_change_bps"]),
        # 0 turns the time-based re-fire off: a persisting spread then fires again only when it changes.
        debounce_refire_ms=refire_ms or None,
        detect_interval_ms=int(values["detect_interval_ms"]),
    )


def venues_touch(codes: set[str], at: datetime) -> None:
    """Venue health: the venues had events up to ``at``."""
    Venue.objects.filter(code__in=codes).update(last_event_at=at)


def _frame_parser(kind: str) -> FrameParser | None:
    try:
        return family_get(kind).frame_parser
    except VenueKindUnknown:
        return None


def stream_runner_build(
    plan: StreamPlan,
    options: StreamOptions,
    *,
    handler: OpportunityHandler | None = None,
    channel_layer: object = None,
    handle_signals: bool = False,
) -> StreamRunner:
    """A runner for the plan: books for every streamed (venue, symbol), the configured handler, the
    project's channel layer, and the database loaders and writers."""
    streamed = plan.streamed_venues
    config = runtime_config_load()
    pipeline = Pipeline(
        pairs=[(venue.code, symbol) for venue in streamed for symbol in venue.symbols],
        specs=plan.specs,
        detection=config.detection,
        debouncer=Debouncer(
            rate_change_bps=config.debounce_change_bps,
            refire_interval_ms=config.debounce_refire_ms,
            close_grace_ms=DEBOUNCE_CLOSE_GRACE_MS,
        ),
        klines=KlineAggregator(),
        mid_kline_venues=[venue.code for venue in streamed if venue.kind == Venue.Kind.SIMULATED],
        frame_parsers={venue.code: parser for venue in streamed if (parser := _frame_parser(venue.kind))},
        # Unpaced (replay) runs price quotes by their own receive times.
        wall_clock=bool(plan.speed),
    )
    symbols, venues = plan.symbols, tuple(venue.code for venue in streamed)
    runner = StreamRunner(
        pipeline=pipeline,
        feeds=[
            FeedSource(
                name=feed.request.kind,
                venues=tuple(venue.code for venue in feed.request.venues),
                create=_feed_creator(feed),
            )
            for feed in plan.feeds
        ],
        settings=options.settings,
        channel_layer=channel_layer if channel_layer is not None else get_channel_layer(),
        handler=handler if handler is not None else handler_load(options.handler),
        config_loader=runtime_config_load,
        specs_loader=lambda: specs_load(symbols, venues),
        health_writer=venues_touch,
        kline_writer=klines_upsert,
        max_events=options.max_events,
        duration_s=options.duration_s,
        handle_signals=handle_signals,
    )
    pipeline.on_out_of_sync = runner.resync
    return runner


def _feed_creator(feed: PlannedFeed) -> Callable[[], Feed]:
    return lambda: feed.factory(feed.request)


def stream_run(options: StreamOptions, *, plan: StreamPlan | None = None, **build: object) -> StreamReport:
    """Plan (unless given), build and run a stream until it stops; returns its report."""
    if plan is None:
        plan = stream_plan(symbols=options.symbols, venues=options.venues, seed=options.seed, speed=options.speed)
    runner = stream_runner_build(plan, options, **build)  # type: ignore[arg-type]
    return asyncio.run(runner.run())
