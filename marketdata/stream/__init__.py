"""The market-data stream process: feeds -> books -> quote cache -> detection -> channel layer.

Entry points: ``stream_run(StreamOptions(...))`` plans from the database and runs until stopped (the
``stream_marketdata`` command); ``stream_plan`` + ``stream_runner_build`` for more control;
``Pipeline`` and ``StreamRunner`` to assemble a stream without the database (tests, benchmarks).
"""

from marketdata.stream.build import (
    StreamOptions,
    StreamPlan,
    runtime_config_load,
    specs_load,
    stream_plan,
    stream_run,
    stream_runner_build,
    venues_touch,
)
from marketdata.stream.handoff import HandlerResult, OpportunityHandler, handler_load, opportunity_payload
from marketdata.stream.pipeline import Pipeline, PipelineStats, quote_payload
from marketdata.stream.runner import CacheWriter, FeedSource, RuntimeConfig, StreamReport, StreamRunner, StreamSettings

__all__ = [
    "CacheWriter",
    "FeedSource",
    "HandlerResult",
    "OpportunityHandler",
    "Pipeline",
    "PipelineStats",
    "RuntimeConfig",
    "StreamOptions",
    "StreamPlan",
    "StreamReport",
    "StreamRunner",
    "StreamSettings",
    "handler_load",
    "opportunity_payload",
    "quote_payload",
    "runtime_config_load",
    "specs_load",
    "stream_plan",
    "stream_run",
    "stream_runner_build",
    "venues_touch",
]
