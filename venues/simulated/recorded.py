"""Recorded Binance market data: gzip captures of combined-stream frames, for replay and benchmarks.

One frame per line: ``<local receive time, ns since epoch> <raw JSON frame>``. Each capture also
holds one REST depth snapshot line, a JSON object without a ``"stream"`` key.

The captures live in the shared data directory, outside the repository: ``settings.SHARED_DATA_DIR``
(``ARBX_SHARED_DATA``, ``<project root>/../shared/data`` by default).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from django.conf import settings

from venues.binance.parsing import MalformedFrame


class RecordedFrame(NamedTuple):
    recv_ns: int
    stream: str
    data: dict[str, Any]


class RecordedSnapshot(NamedTuple):
    """The REST depth snapshot line of a capture (``lastUpdateId``, ``bids``, ``asks``)."""

    recv_ns: int
    data: dict[str, Any]


def shared_data_dir() -> Path:
    return Path(settings.SHARED_DATA_DIR)


def market_capture_path(name: str) -> Path:
    """Path of a capture in ``<shared data>/market``, e.g. ``spot_btcusdt_20240808.gz``."""
    return shared_data_dir() / "market" / name


def iter_raw_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Yield ``(recv_ns, raw frame bytes)`` for every line, snapshot included, undecoded."""
    with gzip.open(path, "rb") as lines:
        for line in lines:
            stamp, sep, frame = line.partition(b" ")
            if not sep:
                continue
            try:
                recv_ns = int(stamp)
            except ValueError:
                raise MalformedFrame(f"{path.name}: line does not start with a receive time") from None
            yield recv_ns, frame.rstrip(b"\r\n")


def iter_capture(path: Path, *, stream_suffix: str | None = None) -> Iterator[RecordedFrame]:
    """Yield the stream frames of a capture as ``(recv_ns, stream, data)``, skipping the snapshot line.

    ``stream_suffix`` (e.g. ``"@bookTicker"``) filters on the raw bytes before decoding, which makes
    replaying one stream out of a mixed capture cheap.
    """
    needle = f'{stream_suffix}"'.encode() if stream_suffix else None
    for recv_ns, frame in iter_raw_lines(path):
        if needle is not None and needle not in frame:
            continue
        try:
            message = orjson.loads(frame)
        except orjson.JSONDecodeError:
            raise MalformedFrame(f"{path.name}: a line at {recv_ns} is not JSON") from None
        stream = message.get("stream")
        if stream is None:
            continue
        yield RecordedFrame(recv_ns, stream, message["data"])


def read_depth_snapshot(path: Path) -> RecordedSnapshot:
    """The capture's REST depth snapshot line."""
    for recv_ns, frame in iter_raw_lines(path):
        if frame.startswith(b'{"stream"'):
            continue
        data = orjson.loads(frame)
        if isinstance(data, dict) and "lastUpdateId" in data:
            return RecordedSnapshot(recv_ns, data)
    raise MalformedFrame(f"{path.name}: no depth snapshot line")
