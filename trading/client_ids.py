"""Deterministic client order ids, and time-ordered UUIDs for the rows they come from.

A client order id is derived from the execution id and the leg, so a retried or redelivered placement
task computes the same id and can look the order up by `origClientOrderId` instead of placing it
twice. Layout, at most 36 characters as Binance allows (`^[.A-Z:/a-z0-9_-]{1,36}$`):

    ax-<26 lowercase base32 characters of the 16 UUID bytes>-<leg>[<attempt>]
    ax-abcdefghijklmnopqrstuvwxyz-B        31 characters
    ax-abcdefghijklmnopqrstuvwxyz-U12      retry/unwind attempt 12

The attempt number is written only when it is above zero, so first attempts have the plain form;
five digits fit, hence `MAX_ATTEMPT`.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
import uuid
from typing import NamedTuple

from trading.enums import OrderLeg

CLIENT_ID_PREFIX = "ax-"
MAX_CLIENT_ID_LENGTH = 36
MAX_ATTEMPT = 99_999

BINANCE_CLIENT_ID_PATTERN = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_LEGS = frozenset(leg.value for leg in OrderLeg)
_CLIENT_ID_PATTERN = re.compile(
    rf"^{re.escape(CLIENT_ID_PREFIX)}(?P<uuid>[a-z2-7]{{26}})-(?P<leg>[A-Z])(?P<attempt>[1-9][0-9]{{0,4}})?$"
)


class ParsedClientOrderId(NamedTuple):
    execution_id: uuid.UUID
    leg: OrderLeg
    attempt: int


def _encode_uuid(value: uuid.UUID) -> str:
    return base64.b32encode(value.bytes).decode("ascii").rstrip("=").lower()


def client_order_id(execution_id: uuid.UUID, leg: str, attempt: int = 0) -> str:
    """The client order id of one leg (an `OrderLeg` value) of an execution."""
    if leg not in _LEGS:
        raise ValueError(f"unknown leg {leg!r}, expected one of {sorted(_LEGS)}")
    if not 0 <= attempt <= MAX_ATTEMPT:
        raise ValueError(f"attempt must be between 0 and {MAX_ATTEMPT}, got {attempt}")
    suffix = str(attempt) if attempt > 0 else ""
    return f"{CLIENT_ID_PREFIX}{_encode_uuid(execution_id)}-{leg}{suffix}"


def parse_client_order_id(value: str) -> ParsedClientOrderId | None:
    """The execution, leg and attempt behind a client order id, or None if we did not make it.

    Orders placed by hand on the venue's web or app have ids of their own and must not be mistaken
    for ours, so anything not in the exact canonical form is None.
    """
    match = _CLIENT_ID_PATTERN.fullmatch(value)
    if match is None or match["leg"] not in _LEGS:
        return None
    encoded = match["uuid"]
    raw = base64.b32decode(encoded.upper() + "======")
    execution_id = uuid.UUID(bytes=raw)
    # 26 characters carry 130 bits for 128: the decoder drops the last two, so a non-zero tail would
    # alias another id. Only the canonical spelling is ours.
    if _encode_uuid(execution_id) != encoded:
        return None
    attempt = int(match["attempt"]) if match["attempt"] else 0
    return ParsedClientOrderId(execution_id, OrderLeg(match["leg"]), attempt)


def uuid7(*, unix_ms: int | None = None) -> uuid.UUID:
    """A version 7 UUID (RFC 9562): 48-bit Unix time in milliseconds, then 74 random bits.

    Ids sort by creation time across processes (to the millisecond), which keeps B-tree inserts
    local, and 74 random bits per millisecond make a collision between processes negligible.
    """
    if unix_ms is None:
        unix_ms = time.time_ns() // 1_000_000
    if not 0 <= unix_ms < 1 << 48:
        raise ValueError("unix_ms does not fit in 48 bits")
    rand_a = secrets.randbits(12)
    rand_b = secrets.randbits(62)
    value = (unix_ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return uuid.UUID(int=value)


def uuid7_unix_ms(value: uuid.UUID) -> int:
    """The millisecond timestamp of a version 7 UUID."""
    if value.version != 7:
        raise ValueError("not a version 7 UUID")
    return value.int >> 80
