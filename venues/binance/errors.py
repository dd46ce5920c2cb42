"""Binance's errors, classified once into the three kinds of ``venues.gateway`` (see ``classify``):

=====================================  ===================  =================================
what happened                          kind                 code
=====================================  ===================  =================================
could not connect (nothing sent)       Retryable            VENUE_UNAVAILABLE
timeout / dropped connection, 5XX,     Retryable on reads,  VENUE_UNAVAILABLE /
-1006/-1007 "execution unknown"        Ambiguous on writes  VENUE_STATUS_UNKNOWN
429 (-1003, -1015), with Retry-After   Retryable            VENUE_RATE_LIMITED
418 (IP banned)                        Retryable            VENUE_BANNED (venue blocked)
-1021 timestamp outside recvWindow     Retryable            VENUE_TIMESTAMP
-2010 insufficient balance             Final                VENUE_INSUFFICIENT_BALANCE
-2010 "Duplicate order sent."          Final                VENUE_DUPLICATE_ORDER
-2010 other (market closed, ...)       Final                VENUE_ORDER_REJECTED
-1013 filter, -1111 precision          Final                VENUE_FILTER_FAILURE
-1121 invalid symbol                   Final                VENUE_INVALID_SYMBOL
-2011 / -2013 unknown order            Final                VENUE_UNKNOWN_ORDER
-1002, -1022, -2014, -2015             Final                VENUE_AUTH
other codes                            Final                VENUE_ORDER_REJECTED (placement)
                                                            / VENUE_ERROR
malformed answer                       Final                VENUE_BAD_PAYLOAD
malformed answer to a placement,       Ambiguous            VENUE_STATUS_UNKNOWN
any other failure of a placement
=====================================  ===================  =================================

Writes are placement and cancel. An ambiguous placement may have created the order: the caller
marks it UNKNOWN and resolves it with ``get_order``, never by sending it again. A malformed 2XX
answer to a placement is ambiguous rather than final for the same reason: the venue accepted the
order, only its answer is unreadable.

-1021 means the venue refused the request before executing it, so the gateway resyncs the clock
offset from the server time and sends the call once more (placement included: nothing was
placed). A second -1021 is raised as retryable, with the offset already corrected.
"""

from __future__ import annotations

import asyncio
from enum import Enum

import aiohttp
from binance.exceptions import BinanceAPIException, BinanceRequestException

from arbitragex import metrics
from arbitragex.errors import ApplicationError, ErrorCode
from arbitragex.money import InvalidAmount
from venues.binance.client import _now_ms, ban_until_ms, retry_after_s
from venues.binance.parsing import MalformedFrame
from venues.gateway import AmbiguousVenueError, FinalVenueError, RetryableVenueError, VenueError
from venues.ratelimit import VenueBannedError

__all__ = ["DUPLICATE_ORDER_MSG", "INSUFFICIENT_BALANCE_MSG", "Call", "classify"]

INSUFFICIENT_BALANCE_MSG = "Account has insufficient balance for requested action."
DUPLICATE_ORDER_MSG = "Duplicate order sent."

_NOT_CONNECTED: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectorError,
    *((aiohttp.ConnectionTimeoutError,) if hasattr(aiohttp, "ConnectionTimeoutError") else ()),
)
_AUTH_CODES = frozenset({-1002, -1022, -2014, -2015})
_FILTER_CODES = frozenset({-1013, -1111})
# "Execution status unknown" by Binance's own words: the request may have been executed.
_UNKNOWN_EXECUTION_CODES = frozenset({-1006, -1007})
# What reading a hostile answer raises: python-binance and json on bodies that are not what Binance
# sends (deep nesting is a RecursionError, 1e400 an infinity that int() refuses with OverflowError).
_MALFORMED: tuple[type[BaseException], ...] = (
    BinanceRequestException, ValueError, KeyError, TypeError, AttributeError, IndexError, ArithmeticError,
    RecursionError, MalformedFrame, InvalidAmount,
)  # fmt: skip


class Call(Enum):
    READ = "read"
    PLACE = "place"
    CANCEL = "cancel"

    @property
    def writes(self) -> bool:
        return self is not Call.READ


# --- classification ----------------------------------------------------------------------------------------


def classify(exc: BaseException, *, venue: str, operation: str, call: Call) -> VenueError:
    """The one place where a python-binance / aiohttp failure becomes a venue error of one kind.

    429 and 418 are classified here as well, but honouring them (``RateLimiter.retry_after`` /
    ``ban_async``) needs the limiter; ``BinanceGateway`` does that before raising.
    """
    error = _classify(exc, venue=venue, operation=operation, call=call)
    if error is not exc:  # an error classified earlier has been counted already
        metrics.venue_errors.labels(venue=venue, error_class=_ERROR_CLASS.get(type(error), "final")).inc()
    return error


_ERROR_CLASS: dict[type, str] = {
    RetryableVenueError: "retryable",
    AmbiguousVenueError: "ambiguous",
    FinalVenueError: "final",
}


def _classify(exc: BaseException, *, venue: str, operation: str, call: Call) -> VenueError:
    where = f"{venue} {operation}"
    if isinstance(exc, VenueError):
        return exc
    if isinstance(exc, BinanceAPIException):
        return _classify_api_error(exc, where=where, call=call)
    if isinstance(exc, _NOT_CONNECTED):
        # The connection was never established: nothing was sent, even for a write.
        return RetryableVenueError(ErrorCode.VENUE_UNAVAILABLE, f"{where}: cannot connect: {exc}")
    if isinstance(exc, aiohttp.ContentTypeError):
        return _bad_payload(f"{where}: answer is not JSON: {exc}", call)
    if isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | ConnectionError):
        kind = type(exc).__name__
        if call.writes:
            return AmbiguousVenueError(
                ErrorCode.VENUE_STATUS_UNKNOWN,
                f"{where}: no answer ({kind}: {exc}); the request may have been executed, resolve by query",
            )
        return RetryableVenueError(ErrorCode.VENUE_UNAVAILABLE, f"{where}: no answer ({kind}: {exc})")
    if isinstance(exc, _MALFORMED):
        return _bad_payload(f"{where}: malformed answer: {type(exc).__name__}: {_text(exc)[:500]}", call)
    if isinstance(exc, ApplicationError) and exc.code == ErrorCode.VENUE_BAD_PAYLOAD:
        return _bad_payload(f"{where}: {exc.message}", call)
    if call is Call.PLACE:
        # Whatever failed, the order may have reached the venue: final would lose it, a query tells.
        return AmbiguousVenueError(
            ErrorCode.VENUE_STATUS_UNKNOWN,
            f"{where}: {type(exc).__name__}: {exc}; the order may have been placed, resolve by query",
        )
    return FinalVenueError(ErrorCode.VENUE_ERROR, f"{where}: {type(exc).__name__}: {exc}")


def _text(exc: BaseException) -> str:
    return str(getattr(exc, "message", None) or exc)


def _bad_payload(message: str, call: Call) -> VenueError:
    if call is Call.PLACE:
        return AmbiguousVenueError(
            ErrorCode.VENUE_STATUS_UNKNOWN, f"{message}; the order may have been placed, resolve by query"
        )
    return FinalVenueError(ErrorCode.VENUE_BAD_PAYLOAD, message)


def _classify_api_error(exc: BinanceAPIException, *, where: str, call: Call) -> VenueError:  # noqa: C901 (a classification table of Binance's error codes)
    status = int(exc.status_code or 0)
    code = exc.code if isinstance(exc.code, int) else None
    msg = str(exc.message or "").strip() or f"HTTP {status}"
    headers = getattr(exc.response, "headers", None)
    error: VenueError
    if status == 418:
        seconds = max((ban_until_ms(msg, headers, _now_ms()) - _now_ms()) / 1000, 0.0)
        error = VenueBannedError(f"{where}: {msg}", retry_after_s=seconds)
    elif status == 429 or code == -1015:
        error = RetryableVenueError(
            ErrorCode.VENUE_RATE_LIMITED, f"{where}: {msg}", venue_code=code, retry_after_s=retry_after_s(headers)
        )
    elif status >= 500 or code in _UNKNOWN_EXECUTION_CODES:
        if call.writes:
            error = AmbiguousVenueError(
                ErrorCode.VENUE_STATUS_UNKNOWN,
                f"{where}: {msg} (HTTP {status}); execution status unknown, resolve by query",
                venue_code=code,
            )
        else:
            error = RetryableVenueError(ErrorCode.VENUE_UNAVAILABLE, f"{where}: {msg} (HTTP {status})", venue_code=code)
    elif code == -1021:
        error = RetryableVenueError(ErrorCode.VENUE_TIMESTAMP, msg, venue_code=code)
    elif code == -2010:
        if msg == INSUFFICIENT_BALANCE_MSG:
            error = FinalVenueError(ErrorCode.VENUE_INSUFFICIENT_BALANCE, msg, venue_code=code)
        elif msg == DUPLICATE_ORDER_MSG:
            error = FinalVenueError(ErrorCode.VENUE_DUPLICATE_ORDER, msg, venue_code=code)
        else:
            error = FinalVenueError(ErrorCode.VENUE_ORDER_REJECTED, msg, venue_code=code)
    elif code in _FILTER_CODES:
        error = FinalVenueError(ErrorCode.VENUE_FILTER_FAILURE, msg, venue_code=code)
    elif code == -1121:
        error = FinalVenueError(ErrorCode.VENUE_INVALID_SYMBOL, msg, venue_code=code)
    elif code in (-2011, -2013):
        error = FinalVenueError(ErrorCode.VENUE_UNKNOWN_ORDER, msg, venue_code=code)
    elif code in _AUTH_CODES or status == 401:
        error = FinalVenueError(ErrorCode.VENUE_AUTH, msg, venue_code=code)
    elif call is Call.PLACE:
        error = FinalVenueError(ErrorCode.VENUE_ORDER_REJECTED, msg, venue_code=code)
    else:
        error = FinalVenueError(ErrorCode.VENUE_ERROR, f"{where}: {msg}", venue_code=code)
    # Binance's own words stay the message (the contract compares them); where it happened goes here.
    error.detail = {**(error.detail or {}), "venue_code": code, "http_status": status, "where": where}
    return error
