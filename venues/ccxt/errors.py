"""ccxt's errors, classified once into the three kinds of ``venues.gateway`` (see ``classify``).

ccxt raises one exception class per kind of failure and keeps the venue's answer in the message
(``"okx {"code":"1","data":[{"sCode":"51008",...}]}"``). Where its class is too coarse (OKX's 51016
duplicate id is a plain ``InvalidOrder``, 50004 a ``RequestTimeout`` that may have executed), the
venue's own code decides; the venue's own words stay the message.

==========================================  =====================  ===============================
what happened                               kind                   code
==========================================  =====================  ===============================
could not connect (nothing was sent)        Retryable              VENUE_UNAVAILABLE
timeout, dropped connection, 5XX,           Retryable on reads,    VENUE_UNAVAILABLE /
OKX 50004 / 50013 / 50026, Binance -1006/7  Ambiguous on writes    VENUE_STATUS_UNKNOWN
maintenance (OKX 50001, ``OnMaintenance``)  Retryable              VENUE_UNAVAILABLE
rate limited (429, OKX 50011)               Retryable              VENUE_RATE_LIMITED
418 (Binance IP ban)                        Retryable              VENUE_BANNED
clock (OKX 50102, Binance -1021)            Retryable              VENUE_TIMESTAMP
request past its deadline (OKX 50037)       Retryable              VENUE_TIMESTAMP
insufficient balance (51008, -2010)         Final                  VENUE_INSUFFICIENT_BALANCE
duplicate client id (51016, -2010 dup.)     Final                  VENUE_DUPLICATE_ORDER
size/price filters (51020, 51121, -1013)    Final                  VENUE_FILTER_FAILURE
unknown symbol (51001, -1121, ccxt's own)   Final                  VENUE_INVALID_SYMBOL
unknown / closed order (51400-51402,        Final                  VENUE_UNKNOWN_ORDER
51603, -2011, -2013)
key, signature, passphrase, permissions     Final                  VENUE_AUTH
other refusals of a placement               Final                  VENUE_ORDER_REJECTED
malformed answer                            Final (Ambiguous for   VENUE_BAD_PAYLOAD /
                                            a placement)           VENUE_STATUS_UNKNOWN
==========================================  =====================  ===============================
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

import aiohttp
import ccxt

from arbitragex import metrics
from arbitragex.errors import ApplicationError, ErrorCode
from arbitragex.money import InvalidAmount
from venues.gateway import AmbiguousVenueError, FinalVenueError, RetryableVenueError, VenueError
from venues.ratelimit import VenueBannedError

__all__ = ["Call", "VenueAnswer", "classify", "venue_answer"]

INSUFFICIENT_CODES = frozenset({51008, 51119, 51127, 51131})
DUPLICATE_CODES = frozenset({51016})
FILTER_CODES = frozenset({51020, 51121, 51201, 51202, 51203, -1013, -1111})
INVALID_SYMBOL_CODES = frozenset({51001, -1121})
UNKNOWN_ORDER_CODES = frozenset({51400, 51401, 51402, 51603, -2011, -2013})
AUTH_CODES = frozenset({50100, 50101, 50103, 50104, 50105, 50106, 50107, 50111, 50113, 50114, 50119, 50120,
                        -1002, -1022, -2014, -2015})  # fmt: skip
CLOCK_CODES = frozenset({50102, -1021})
EXPIRED_REQUEST_CODES = frozenset({50037})
# The venue could not say whether it executed the request (OKX: "does not indicate success or failure
# of order, please check order status"; Binance: "execution status unknown").
UNKNOWN_EXECUTION_CODES = frozenset({50004, 50013, 50026, -1006, -1007})
MAINTENANCE_CODES = frozenset({50001})
RATE_LIMIT_CODES = frozenset({50011, 50061, -1003, -1015})
BINANCE_DUPLICATE_MSG = "Duplicate order sent."
BINANCE_INSUFFICIENT_MSG = "Account has insufficient balance for requested action."
_BANNED_UNTIL = re.compile(r"banned until (\d{13})")

_NOT_CONNECTED: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectorError,
    socket.gaierror,
    *((aiohttp.ConnectionTimeoutError,) if hasattr(aiohttp, "ConnectionTimeoutError") else ()),
)
_MALFORMED: tuple[type[BaseException], ...] = (
    ValueError, KeyError, TypeError, AttributeError, IndexError, ArithmeticError, RecursionError, InvalidAmount,
)  # fmt: skip


class Call(Enum):
    READ = "read"
    PLACE = "place"
    CANCEL = "cancel"

    @property
    def writes(self) -> bool:
        return self is not Call.READ


@dataclass(frozen=True, slots=True)
class VenueAnswer:
    """The venue's code and words, read from a ccxt exception's message (None when it holds none)."""

    code: int | None
    message: str


def venue_answer(exc: BaseException, body: str | None = None) -> VenueAnswer:
    """``"okx {json}"`` -> the first failing item's ``sCode``/``sMsg``, else the envelope's ``code``/``msg``.

    ccxt.binance puts only Binance's words in the message of an error it matched by its text; the
    answer's body (``body``: ccxt's ``last_http_response``) then gives the code.
    """
    text = str(exc)
    if "{" not in text and body and body.lstrip().startswith("{"):
        text = body
    start = text.find("{")
    if start < 0:
        return VenueAnswer(None, text)
    try:
        body = json.loads(text[start:])
    except ValueError:
        return VenueAnswer(None, text)
    if not isinstance(body, dict):
        return VenueAnswer(None, text)
    for item in body.get("data") or ():
        if isinstance(item, dict) and str(item.get("sCode") or "0") != "0":
            return VenueAnswer(_int(item.get("sCode")), str(item.get("sMsg") or "").strip())
    return VenueAnswer(_int(body.get("code")), str(body.get("msg") or "").strip())


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def classify(exc: BaseException, *, venue: str, operation: str, call: Call, body: str | None = None) -> VenueError:
    """The one place where a ccxt / aiohttp failure becomes a venue error of one kind. ``body``: the
    venue's last answer as ccxt read it, for the code ccxt leaves out of some messages."""
    if isinstance(exc, VenueError):
        return exc
    error = _classify(exc, venue=venue, operation=operation, call=call, body=body)
    metrics.venue_errors.labels(venue=venue, error_class=_ERROR_CLASS.get(type(error), "retryable")).inc()
    return error


_ERROR_CLASS: dict[type, str] = {
    RetryableVenueError: "retryable",
    AmbiguousVenueError: "ambiguous",
    FinalVenueError: "final",
}


def _no_answer(where: str, exc: BaseException, call: Call, code: int | None = None) -> VenueError:
    if call.writes:
        return AmbiguousVenueError(
            ErrorCode.VENUE_STATUS_UNKNOWN,
            f"{where}: no definite answer ({type(exc).__name__}: {_short(exc)}); the request may have been executed, "
            "resolve by query",
            venue_code=code,
        )
    return RetryableVenueError(ErrorCode.VENUE_UNAVAILABLE, f"{where}: no answer ({type(exc).__name__}: {_short(exc)})",
                               venue_code=code)  # fmt: skip


def _short(exc: BaseException) -> str:
    return str(exc)[:500]


def _bad_payload(where: str, exc: BaseException, call: Call) -> VenueError:
    message = f"{where}: malformed answer: {type(exc).__name__}: {_short(exc)}"
    if call is Call.PLACE:
        return AmbiguousVenueError(
            ErrorCode.VENUE_STATUS_UNKNOWN, f"{message}; the order may have been placed, resolve by query"
        )
    return FinalVenueError(ErrorCode.VENUE_BAD_PAYLOAD, message)


def _classify(exc: BaseException, *, venue: str, operation: str, call: Call, body: str | None) -> VenueError:  # noqa: C901 (a classification table)
    where = f"{venue} {operation}"
    cause = exc.__cause__
    if isinstance(exc, _NOT_CONNECTED) or isinstance(cause, _NOT_CONNECTED):
        # The connection was never established: nothing was sent, even for a write.
        return RetryableVenueError(ErrorCode.VENUE_UNAVAILABLE, f"{where}: cannot connect: {_short(cause or exc)}")
    if isinstance(cause, aiohttp.ClientError | asyncio.TimeoutError) and not isinstance(exc, ccxt.BadResponse):
        return _no_answer(where, exc, call)
    if not isinstance(exc, ccxt.BaseError):
        if isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | ConnectionError):
            return _no_answer(where, exc, call)
        if isinstance(exc, _MALFORMED) or (
            isinstance(exc, ApplicationError) and exc.code == ErrorCode.VENUE_BAD_PAYLOAD
        ):
            return _bad_payload(where, exc, call)
        if call is Call.PLACE:
            return AmbiguousVenueError(
                ErrorCode.VENUE_STATUS_UNKNOWN,
                f"{where}: {type(exc).__name__}: {_short(exc)}; the order may have been placed, resolve by query",
            )
        return FinalVenueError(ErrorCode.VENUE_ERROR, f"{where}: {type(exc).__name__}: {_short(exc)}")

    answer = venue_answer(exc, body if isinstance(exc, ccxt.ExchangeError) else None)
    code, words = answer.code, answer.message or f"{type(exc).__name__}"
    error: VenueError
    ban = _BANNED_UNTIL.search(words)
    if ban is not None:
        # Binance's 418: every call to the venue waits until the ban ends (the gateway tells the limiter).
        error = VenueBannedError(f"{where}: {words}", retry_after_s=max(int(ban[1]) / 1000 - time.time(), 0.0))
    elif code in RATE_LIMIT_CODES or isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
        # OKX sends no Retry-After: its windows are 2 s long.
        error = RetryableVenueError(ErrorCode.VENUE_RATE_LIMITED, f"{where}: {words}", venue_code=code,
                                    retry_after_s=2.0)  # fmt: skip
    elif code in CLOCK_CODES or isinstance(exc, ccxt.InvalidNonce):
        error = RetryableVenueError(ErrorCode.VENUE_TIMESTAMP, words, venue_code=code)
    elif code in EXPIRED_REQUEST_CODES:
        # Refused before execution: the request arrived after its expTime.
        error = RetryableVenueError(ErrorCode.VENUE_TIMESTAMP, words, venue_code=code)
    elif code in MAINTENANCE_CODES or isinstance(exc, ccxt.OnMaintenance):
        error = RetryableVenueError(ErrorCode.VENUE_UNAVAILABLE, f"{where}: {words}", venue_code=code)
    elif code in UNKNOWN_EXECUTION_CODES or isinstance(exc, ccxt.NetworkError):
        error = _no_answer(where, exc, call, code)
    elif code in DUPLICATE_CODES or isinstance(exc, ccxt.DuplicateOrderId) or words == BINANCE_DUPLICATE_MSG:
        error = FinalVenueError(ErrorCode.VENUE_DUPLICATE_ORDER, words, venue_code=code)
    elif code == -2010:
        kind = (
            ErrorCode.VENUE_INSUFFICIENT_BALANCE
            if words == BINANCE_INSUFFICIENT_MSG
            else ErrorCode.VENUE_ORDER_REJECTED
        )
        error = FinalVenueError(kind, words, venue_code=code)
    elif code in INSUFFICIENT_CODES or isinstance(exc, ccxt.InsufficientFunds):
        error = FinalVenueError(ErrorCode.VENUE_INSUFFICIENT_BALANCE, words, venue_code=code)
    elif code in FILTER_CODES:
        error = FinalVenueError(ErrorCode.VENUE_FILTER_FAILURE, words, venue_code=code)
    elif code in INVALID_SYMBOL_CODES or isinstance(exc, ccxt.BadSymbol):
        error = FinalVenueError(ErrorCode.VENUE_INVALID_SYMBOL, words, venue_code=code)
    elif code in UNKNOWN_ORDER_CODES or isinstance(exc, ccxt.OrderNotFound):
        error = FinalVenueError(ErrorCode.VENUE_UNKNOWN_ORDER, words, venue_code=code)
    elif code in AUTH_CODES or isinstance(exc, ccxt.AuthenticationError):
        error = FinalVenueError(ErrorCode.VENUE_AUTH, words, venue_code=code)
    elif isinstance(exc, ccxt.BadResponse):
        error = _bad_payload(where, exc, call)
    elif call is Call.PLACE and code is None and not isinstance(exc, ccxt.ExchangeError):
        error = AmbiguousVenueError(
            ErrorCode.VENUE_STATUS_UNKNOWN,
            f"{where}: {type(exc).__name__}: {_short(exc)}; the order may have been placed, resolve by query",
        )
    elif call is Call.PLACE:
        error = FinalVenueError(ErrorCode.VENUE_ORDER_REJECTED, words, venue_code=code)
    else:
        error = FinalVenueError(ErrorCode.VENUE_ERROR, f"{where}: {words}", venue_code=code)
    error.detail = {**(error.detail or {}), "venue_code": code, "where": where, "ccxt_error": type(exc).__name__}
    return error
