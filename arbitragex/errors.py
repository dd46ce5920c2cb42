"""One error family for the whole platform, mapped once to HTTP.

The numeric codes keep the original design's (0 OK, 5000-5005 database) and extend them with
domain ranges: 1xxx request, 2xxx risk and trading, 3xxx venue, 4xxx configuration.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ErrorCode(IntEnum):
    OK = 0

    # 1xxx: the request itself
    INVALID_PARAMETER = 1001
    NOT_AUTHENTICATED = 1002
    PERMISSION_DENIED = 1003
    NOT_FOUND = 1004
    THROTTLED = 1005
    METHOD_NOT_ALLOWED = 1006
    UNSUPPORTED_MEDIA = 1007
    CONFLICT = 1008
    SERVICE_UNAVAILABLE = 1009
    INTERNAL_ERROR = 1999

    # 2xxx: risk and trading
    INSUFFICIENT_BALANCE = 2001
    BREAKER_OPEN = 2002
    INVALID_PRICE = 2003
    PROFIT_RATE_TOO_LOW = 2004
    TRADING_DISABLED = 2005
    STALE_QUOTE = 2006
    MAX_NOTIONAL_EXCEEDED = 2007
    TOO_MANY_OPEN_EXECUTIONS = 2008
    INVALID_QUANTITY = 2009
    INVALID_STATE_TRANSITION = 2010
    EXECUTION_NOT_CANCELLABLE = 2011
    EXPECTED_PROFIT_TOO_LOW = 2012
    PAIR_PAUSED = 2013
    NOT_WORTH_THE_RISK = 2014
    PRICE_OUTSIDE_BAND = 2015

    # 3xxx: venues
    VENUE_ERROR = 3000
    VENUE_UNAVAILABLE = 3001
    VENUE_STATUS_UNKNOWN = 3002
    VENUE_RATE_LIMITED = 3003
    VENUE_BANNED = 3004
    VENUE_INSUFFICIENT_BALANCE = 3005
    VENUE_FILTER_FAILURE = 3006
    VENUE_INVALID_SYMBOL = 3007
    VENUE_UNKNOWN_ORDER = 3008
    VENUE_TIMESTAMP = 3009
    VENUE_AUTH = 3010
    VENUE_DUPLICATE_ORDER = 3011
    VENUE_BAD_PAYLOAD = 3012
    VENUE_ORDER_REJECTED = 3013

    # 4xxx: configuration
    INVALID_CONFIG = 4001
    UNKNOWN_CONFIG_KEY = 4002

    # 5xxx: database (the original design's codes)
    DB_ERROR = 5000
    DB_NOT_FOUND = 5001
    DB_DUPLICATE = 5002
    DB_UPDATE_FAILED = 5003
    DB_DELETE_FAILED = 5004
    DB_TRANSACTION_FAILED = 5005
    DB_UNAVAILABLE = 5006


DEFAULT_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.OK: "OK",
    ErrorCode.INVALID_PARAMETER: "Invalid parameter",
    ErrorCode.NOT_AUTHENTICATED: "Authentication required",
    ErrorCode.PERMISSION_DENIED: "Permission denied",
    ErrorCode.NOT_FOUND: "Not found",
    ErrorCode.THROTTLED: "Too many requests",
    ErrorCode.METHOD_NOT_ALLOWED: "Method not allowed",
    ErrorCode.UNSUPPORTED_MEDIA: "Unsupported media type",
    ErrorCode.CONFLICT: "Conflict",
    ErrorCode.SERVICE_UNAVAILABLE: "Redis (cache and broker) is unavailable: retry shortly",
    ErrorCode.INTERNAL_ERROR: "Internal error",
    ErrorCode.INSUFFICIENT_BALANCE: "Insufficient balance",
    ErrorCode.BREAKER_OPEN: "Circuit breaker is open",
    ErrorCode.INVALID_PRICE: "Invalid price",
    ErrorCode.PROFIT_RATE_TOO_LOW: "Profit rate too low",
    ErrorCode.TRADING_DISABLED: "Trading is disabled",
    ErrorCode.STALE_QUOTE: "Quote is stale",
    ErrorCode.MAX_NOTIONAL_EXCEEDED: "Maximum notional exceeded",
    ErrorCode.TOO_MANY_OPEN_EXECUTIONS: "Too many open executions",
    ErrorCode.INVALID_QUANTITY: "Invalid quantity",
    ErrorCode.INVALID_STATE_TRANSITION: "Invalid state transition",
    ErrorCode.EXECUTION_NOT_CANCELLABLE: "Execution cannot be cancelled",
    ErrorCode.EXPECTED_PROFIT_TOO_LOW: "Expected profit below the minimum",
    ErrorCode.PAIR_PAUSED: "Venue pair paused",
    ErrorCode.NOT_WORTH_THE_RISK: "Expected gain below the expected repair cost",
    ErrorCode.PRICE_OUTSIDE_BAND: "Price outside the venue's price band",
    ErrorCode.VENUE_ERROR: "Venue error",
    ErrorCode.VENUE_UNAVAILABLE: "Venue unavailable",
    ErrorCode.VENUE_STATUS_UNKNOWN: "Order status unknown at the venue",
    ErrorCode.VENUE_RATE_LIMITED: "Venue rate limit reached",
    ErrorCode.VENUE_BANNED: "Venue has banned this client",
    ErrorCode.VENUE_INSUFFICIENT_BALANCE: "Venue refused: insufficient balance",
    ErrorCode.VENUE_FILTER_FAILURE: "Venue refused: filter failure",
    ErrorCode.VENUE_INVALID_SYMBOL: "Venue refused: invalid symbol",
    ErrorCode.VENUE_UNKNOWN_ORDER: "Venue does not know this order",
    ErrorCode.VENUE_TIMESTAMP: "Venue refused: timestamp outside recvWindow",
    ErrorCode.VENUE_AUTH: "Venue refused the API key or signature",
    ErrorCode.VENUE_DUPLICATE_ORDER: "Venue refused: duplicate client order id",
    ErrorCode.VENUE_BAD_PAYLOAD: "Venue sent a malformed payload",
    ErrorCode.VENUE_ORDER_REJECTED: "Venue rejected the order",
    ErrorCode.INVALID_CONFIG: "Invalid configuration value",
    ErrorCode.UNKNOWN_CONFIG_KEY: "Unknown configuration key",
    ErrorCode.DB_ERROR: "Database error",
    ErrorCode.DB_NOT_FOUND: "Record not found",
    ErrorCode.DB_DUPLICATE: "Duplicate record",
    ErrorCode.DB_UPDATE_FAILED: "Update failed",
    ErrorCode.DB_DELETE_FAILED: "Delete failed",
    ErrorCode.DB_TRANSACTION_FAILED: "Transaction failed",
    ErrorCode.DB_UNAVAILABLE: "The database is unavailable: retry shortly",
}

HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_PARAMETER: 400,
    ErrorCode.NOT_AUTHENTICATED: 401,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.DB_NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.UNSUPPORTED_MEDIA: 415,
    ErrorCode.CONFLICT: 409,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
    ErrorCode.DB_UNAVAILABLE: 503,
    ErrorCode.DB_DUPLICATE: 409,
    ErrorCode.INVALID_STATE_TRANSITION: 409,
    ErrorCode.EXECUTION_NOT_CANCELLABLE: 409,
    ErrorCode.THROTTLED: 429,
    ErrorCode.INVALID_CONFIG: 400,
    ErrorCode.UNKNOWN_CONFIG_KEY: 404,
    ErrorCode.INVALID_QUANTITY: 400,
    ErrorCode.INVALID_PRICE: 422,
    ErrorCode.INSUFFICIENT_BALANCE: 422,
    ErrorCode.BREAKER_OPEN: 422,
    ErrorCode.PROFIT_RATE_TOO_LOW: 422,
    ErrorCode.TRADING_DISABLED: 422,
    ErrorCode.STALE_QUOTE: 422,
    ErrorCode.MAX_NOTIONAL_EXCEEDED: 422,
    ErrorCode.TOO_MANY_OPEN_EXECUTIONS: 422,
    ErrorCode.EXPECTED_PROFIT_TOO_LOW: 422,
    ErrorCode.PAIR_PAUSED: 422,
    ErrorCode.NOT_WORTH_THE_RISK: 422,
    ErrorCode.PRICE_OUTSIDE_BAND: 422,
}


def http_status_for(code: ErrorCode) -> int:
    if code in HTTP_STATUS:
        return HTTP_STATUS[code]
    if 3000 <= code < 4000:
        return 502
    return 500


class ApplicationError(Exception):
    """A domain error with a numeric code, a human message and optional structured detail."""

    def __init__(self, code: ErrorCode, message: str | None = None, detail: Any = None) -> None:
        self.code = ErrorCode(code)
        self.message = message or DEFAULT_MESSAGES.get(self.code, self.code.name)
        self.detail = detail
        super().__init__(f"[{int(self.code)}] {self.message}")

    def as_dict(self) -> dict[str, Any]:
        return {"code": int(self.code), "message": self.message, "detail": self.detail}


class NotFoundError(ApplicationError):
    def __init__(self, message: str = "Record not found", detail: Any = None) -> None:
        super().__init__(ErrorCode.DB_NOT_FOUND, message, detail)


class DatabaseUnavailable(ApplicationError):
    """The database could not be reached (restarting, connection lost): nothing was decided, so the
    caller may try again shortly. Celery tasks retry it; the API answers 503 with Retry-After."""

    def __init__(self, message: str = "", detail: Any = None) -> None:
        super().__init__(ErrorCode.DB_UNAVAILABLE, message, detail)


class ValidationFailed(ApplicationError):
    def __init__(self, message: str, detail: Any = None) -> None:
        super().__init__(ErrorCode.INVALID_PARAMETER, message, detail)
