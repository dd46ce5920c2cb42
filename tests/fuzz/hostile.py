"""Hostile input shared by the fuzz tests: crafted values, and seeded random mutations of good frames.

What a venue (or anything pretending to be one) can send: numbers too large or too small to store,
NaN and the infinities in every spelling, floats where decimal strings belong, wrong types, missing
fields, deep nesting, very long strings, and bytes that are not JSON at all.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from typing import Any

import orjson

DEEP = 5000  # levels: far beyond orjson's 1024 and Python's recursion limit

# Values a JSON decoder can hand over (python-binance decodes with orjson).
JSON_VALUES: list[Any] = [
    None, True, False, 0, -1, 1.5, -0.0, 1e308, 2**63 - 1, -(2**63),
    "", " ", "NaN", "nan", "-NaN", "sNaN", "Infinity", "-Infinity", "inf", "1e400", "-1e400", "1e-400",
    "1e999999999", "0e-9999999999", "1E+1000000000000000000000", "-0.00000001", "0x10", "1,5", "1_0", "١٢٣",
    "12345678901234567890123456789012345678901234567890.5", "9" * 5000, "x" * 200_000, "\u0000", "\ud7ff",
    [], {}, ["1", "2"], [["1", "2"]], {"a": "1"}, [[[]]],
]  # fmt: skip

# Values only in-process callers can produce (a decoded dict handed straight to the parser).
PYTHON_VALUES: list[Any] = [float("nan"), float("inf"), -float("inf"), 10**5000, b"1", object(), (1, 2), {1, 2}]


def deep_list(depth: int = DEEP) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def deep_dict(depth: int = DEEP) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"d": value}
    return value


def deep_json(depth: int = DEEP) -> bytes:
    return b"[" * depth + b"]" * depth


# Whole frames that are not what they claim to be.
RAW_FRAMES: list[bytes] = [
    b"", b" ", b"null", b"true", b"0", b"[]", b"{}", b'"text"', b"{", b"}", b"[1,2", b"NaN", b"Infinity",
    b'{"e": NaN}', b"\xff\xfe\x00", b"<html>502 Bad Gateway</html>", b'{"stream": "x"}', b'{"data": {}}',
    b'{"stream": 1, "data": {}}', b'{"stream": "a@b", "data": []}', b'{"stream": "a@b", "data": "x"}',
    deep_json(), b'{"a":' * 2000 + b"1" + b"}" * 2000, b"[" + b"1," * 100_000 + b"1]",
    b'{"e": "' + b"x" * 1_000_000 + b'"}', b'{"u": 1, "s": "BTCUSDT", "b": "1", "B": "1", "a": "1"',
]  # fmt: skip


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value inside a decoded frame (dict keys and list indexes), to a depth of 6."""
    if len(prefix) >= 6:
        return
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*prefix, key)
            yield from _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield (*prefix, index)
            yield from _paths(inner, (*prefix, index))


def _parent(frame: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        frame = frame[step]
    return frame


def mutate(frame: dict[str, Any], rng: random.Random, *, python_values: bool = False) -> dict[str, Any]:
    """A copy of ``frame`` with one to three of: a value replaced by a hostile one, a field removed,
    a field added, a level made deep."""
    result = copy.deepcopy(frame)
    pool = JSON_VALUES + (PYTHON_VALUES if python_values else [])
    for _ in range(rng.randint(1, 3)):
        paths = list(_paths(result))
        if not paths:
            break
        path = rng.choice(paths)
        parent, last = _parent(result, path), path[-1]
        action = rng.random()
        if action < 0.6:
            parent[last] = rng.choice(pool)
        elif action < 0.8 and isinstance(parent, dict):
            del parent[last]
        elif action < 0.9 and isinstance(parent, dict):
            parent[rng.choice(["e", "s", "u", "E", "x", "zz", "data", "stream"])] = rng.choice(pool)
        else:
            parent[last] = deep_list(rng.choice([10, 300, 1100])) if rng.random() < 0.5 else deep_dict(50)
    return result


def encode(frame: Any) -> bytes | None:
    """The frame as JSON text, or None when JSON cannot carry it."""
    try:
        return orjson.dumps(frame)
    except (TypeError, orjson.JSONEncodeError):
        return None


def corrupt_bytes(raw: bytes, rng: random.Random) -> bytes:
    """Byte-level damage: truncation, a flipped byte, a spliced-in token."""
    data = bytearray(raw)
    action = rng.random()
    if action < 0.3 and data:
        return bytes(data[: rng.randrange(len(data))])
    if action < 0.6 and data:
        data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    token = rng.choice([b"NaN", b"1e400", b'"', b"{", b"]", b",", b"null", b"\x00", b"-"])
    index = rng.randrange(len(data) + 1)
    return bytes(data[:index] + token + data[index:])
