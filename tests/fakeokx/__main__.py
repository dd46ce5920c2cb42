"""Run the fake OKX venue as a process.

    python -m tests.fakeokx --port 9910 --api-key K --api-secret S --passphrase X [--demo]

Prints the REST base, the WebSocket bases (live and demo), the control URL and the funded key, then
serves until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from .defaults import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    DEFAULT_PASSPHRASE,
    seed_default_accounts,
    seed_default_market,
)
from .venue import FakeOkx


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.fakeokx", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--api-secret", default=DEFAULT_API_SECRET)
    parser.add_argument("--passphrase", default=DEFAULT_PASSPHRASE)
    parser.add_argument("--demo", action="store_true", help="the key is a demo-trading key (x-simulated-trading: 1)")
    parser.add_argument("--idle-timeout", type=float, default=30.0, help="seconds before a quiet websocket is cut")
    parser.add_argument("--no-rate-limits", action="store_true", help="count but never refuse (no 50011)")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    venue = FakeOkx(idle_timeout=args.idle_timeout, enforce_rate_limits=not args.no_rate_limits)
    await venue.start(args.host, args.port)
    seed_default_accounts(venue, args.api_key, args.api_secret, args.passphrase, demo=args.demo)
    seed_default_market(venue)
    print(f"REST_URL={venue.rest_url}")
    print(f"WS_URL={venue.ws_url}")
    print(f"WS_PUBLIC_URL={venue.ws_public_url}")
    print(f"WS_PRIVATE_URL={venue.ws_private_url}")
    print(f"DEMO_WS_URL={venue.demo_ws_url}")
    print(f"CONTROL_URL={venue.control_url}")
    print(f"KEY_MODE={'demo' if args.demo else 'live'}")
    print(f"API_KEY={args.api_key}")
    print(f"API_SECRET={args.api_secret}")
    print(f"PASSPHRASE={args.passphrase}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await venue.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
