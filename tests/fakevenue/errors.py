"""Binance error codes and messages, as the Spot API returns them: ``{"code": -XXXX, "msg": "..."}``."""

from __future__ import annotations

from typing import Any


class BinanceError(Exception):
    """An error answer: HTTP status plus Binance's JSON body (and optional headers such as Retry-After)."""

    def __init__(self, code: int, msg: str, status: int = 400, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "msg": self.msg}


UNKNOWN_ERROR = "An unknown error occurred while processing the request."
DISCONNECTED_MSG = "Internal error; unable to process your request. Please try again."
TIMEOUT_MSG = "Timeout waiting for response from backend server. Send status unknown; execution status unknown."
INSUFFICIENT_BALANCE = "Account has insufficient balance for requested action."
DUPLICATE_ORDER = "Duplicate order sent."
CLIENT_ORDER_ID_PATTERN = r"^[\.A-Z\:/a-z0-9_-]{1,36}$"


def mandatory(param: str) -> BinanceError:
    return BinanceError(-1102, f"Mandatory parameter '{param}' was not sent, was empty/null, or malformed.")


def illegal_chars(param: str, pattern: str) -> BinanceError:
    return BinanceError(-1100, f"Illegal characters found in parameter '{param}'; legal range is '{pattern}'.")


def too_much_precision(param: str) -> BinanceError:
    return BinanceError(-1111, f"Parameter '{param}' has too much precision.")


def not_required(param: str) -> BinanceError:
    return BinanceError(-1106, f"Parameter '{param}' sent when not required.")


def invalid_symbol() -> BinanceError:
    return BinanceError(-1121, "Invalid symbol.")


def filter_failure(filter_type: str) -> BinanceError:
    return BinanceError(-1013, f"Filter failure: {filter_type}")


def insufficient_balance() -> BinanceError:
    return BinanceError(-2010, INSUFFICIENT_BALANCE)


def new_order_rejected(msg: str) -> BinanceError:
    return BinanceError(-2010, msg)


def unknown_order_cancel() -> BinanceError:
    return BinanceError(-2011, "Unknown order sent.")


def no_such_order() -> BinanceError:
    return BinanceError(-2013, "Order does not exist.")


def client_order_id_mismatch() -> BinanceError:
    # -2039 CLIENT_ORDER_ID_INVALID, for queries since 2025-04-08.
    return BinanceError(-2039, "Client order ID is not correct for this order ID.")


def outside_recv_window() -> BinanceError:
    return BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")


def ahead_of_server() -> BinanceError:
    return BinanceError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")


def bad_recv_window() -> BinanceError:
    return BinanceError(-1131, "recvWindow must be less than 60000")


def invalid_signature() -> BinanceError:
    return BinanceError(-1022, "Signature for this request is not valid.")


def bad_api_key_format() -> BinanceError:
    return BinanceError(-2014, "API-key format invalid.", status=401)


def rejected_api_key() -> BinanceError:
    return BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)


def duplicate_param(param: str) -> BinanceError:
    return BinanceError(-1101, f"Duplicate values for parameter '{param}'.")


def too_many_requests(limit: int, retry_after: int) -> BinanceError:
    # errors.md, -1003 TOO_MANY_REQUESTS: "current limit is %s request weight per %s".
    return BinanceError(
        -1003,
        f"Too much request weight used; current limit is {limit} request weight per 1 MINUTE. "
        "Please use WebSocket Streams for live updates to avoid polling the API.",
        status=429,
        headers={"Retry-After": str(retry_after)},
    )


def too_many_raw_requests(limit: int, retry_after: int) -> BinanceError:
    # errors.md gives no wording for RAW_REQUESTS; this one follows the request weight's.
    return BinanceError(
        -1003,
        f"Too many requests; current limit is {limit} requests per 5 MINUTE. "
        "Please use WebSocket Streams for live updates to avoid polling the API.",
        status=429,
        headers={"Retry-After": str(retry_after)},
    )


def banned(until_ms: int, retry_after: int) -> BinanceError:
    # errors.md, -1003 TOO_MANY_REQUESTS: "IP banned until %s".
    return BinanceError(
        -1003,
        f"Way too much request weight used; IP banned until {until_ms}. "
        "Please use WebSocket Streams for live updates to avoid bans.",
        status=418,
        headers={"Retry-After": str(retry_after)},
    )


def too_many_orders(limit: int, interval: str, retry_after: int) -> BinanceError:
    return BinanceError(
        -1015,
        f"Too many new orders; current limit is {limit} orders per {interval}.",
        status=429,
        headers={"Retry-After": str(retry_after)},
    )
