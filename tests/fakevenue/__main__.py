"""Run the fake venue as a process.

    python -m tests.fakevenue --port 9900 [--api-key K --api-secret S] [--replay FILE --speed 1.0]

Prints the REST, stream, WebSocket-API and control URLs, then serves until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from .defaults import DEFAULT_API_KEY, DEFAULT_API_SECRET, seed_default_account, seed_default_market
from .venue import FakeVenue


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.fakevenue", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--api-secret", default=DEFAULT_API_SECRET)
    parser.add_argument(
        "--replay",
        type=Path,
        action="append",
        default=[],
        help="capture (.gz) to replay into the book and streams; repeat for several symbols",
    )
    parser.add_argument("--speed", type=float, default=1.0, help="replay speed factor; 0 = as fast as possible")
    parser.add_argument("--loop", action="store_true", help="replay the captures again when they end")
    parser.add_argument("--ping-interval", type=float, default=20.0)
    parser.add_argument("--enforce-rate-limits", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


async def _replay_forever(venue: FakeVenue, path: Path, speed: float, repeat: bool) -> None:
    while True:
        stats = await venue.replay(path, speed=speed)
        print(f"REPLAYED {path.name}: {stats.frames} frames", flush=True)
        if not repeat:
            return


async def serve(args: argparse.Namespace) -> None:
    venue = FakeVenue(ping_interval=args.ping_interval, enforce_rate_limits=args.enforce_rate_limits)
    await venue.start(args.host, args.port)
    seed_default_account(venue, args.api_key, args.api_secret)
    if not args.replay:
        seed_default_market(venue)
    else:
        seed_default_market(venue, ["BNBUSDT"])  # BNB fees need a BNB price
    print(f"REST_URL={venue.rest_url}")
    print(f"STREAM_URL={venue.stream_url}")
    print(f"WS_API_URL={venue.ws_api_url}")
    print(f"CONTROL_URL={venue.control_url}")
    print(f"API_KEY={args.api_key}")
    print(f"API_SECRET={args.api_secret}", flush=True)

    replays = [asyncio.create_task(_replay_forever(venue, path, args.speed, args.loop)) for path in args.replay]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for task in replays:
            task.cancel()
        await asyncio.gather(*replays, return_exceptions=True)
        await venue.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    for path in args.replay:
        if not path.is_file():
            print(f"no such capture: {path}", file=sys.stderr)
            return 2
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
