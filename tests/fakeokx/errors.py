"""OKX error codes and bodies (``../shared/data/okx/rest_error_*.json`` and the docs' error table).

Two kinds of failure:
- ``OkxError``: the whole request fails. Header/auth errors (401) and the rate limit (429) come
  as ``{"msg": ..., "code": ...}`` with no data; the others as ``{"code", "data": [], "msg"}``.
- ``OrderError``: one order of a write fails; it rides in ``data[i].sCode``/``sMsg`` of an HTTP 200
  answer whose ``code`` is "1" (all failed) or "2" (some failed).
"""

from __future__ import annotations

from typing import Any


class OkxError(Exception):
    def __init__(self, code: str, msg: str, status: int = 200, *, short: bool = False) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status
        self.short = short

    def body(self) -> dict[str, Any]:
        if self.short:
            return {"msg": self.msg, "code": self.code}
        return {"code": self.code, "data": [], "msg": self.msg}


class OrderError(Exception):
    def __init__(self, s_code: str, s_msg: str) -> None:
        super().__init__(f"{s_code}: {s_msg}")
        self.s_code = s_code
        self.s_msg = s_msg


ALL_FAILED = "All operations failed"
PARTLY_FAILED = "Bulk operation partially succeeded."
MAINTENANCE_MSG = "Service temporarily unavailable. Please try again later."
SYSTEM_ERROR_MSG = "System error. Try again later"
TIMEOUT_MSG = (
    "API endpoint request timeout. (does not mean that the request was successful or failed, "
    "please check the request result)."
)


# --- request level -------------------------------------------------------------------------------


def missing_key() -> OkxError:
    # The recorded body (ccxt's okx.py comment) has curly quotes and underscores.
    return OkxError("50103", "Request header “OK_ACCESS_KEY“ can't be empty.", 401, short=True)


def missing_passphrase() -> OkxError:
    return OkxError("50104", 'Request header "OK-ACCESS-PASSPHRASE" cannot be empty.', 401, short=True)


def wrong_passphrase() -> OkxError:
    return OkxError("50105", 'Request header "OK-ACCESS-PASSPHRASE" incorrect.', 401, short=True)


def missing_sign() -> OkxError:
    return OkxError("50106", 'Request header "OK-ACCESS-SIGN" cannot be empty.', 401, short=True)


def missing_timestamp() -> OkxError:
    return OkxError("50107", 'Request header "OK-ACCESS-TIMESTAMP" cannot be empty.', 401, short=True)


def invalid_key() -> OkxError:
    return OkxError("50111", "Invalid OK-ACCESS-KEY", 401, short=True)


def invalid_timestamp() -> OkxError:
    return OkxError("50112", "Invalid OK-ACCESS-TIMESTAMP", 401, short=True)


def invalid_sign() -> OkxError:
    return OkxError("50113", "Invalid Sign", 401, short=True)


def timestamp_expired() -> OkxError:
    return OkxError("50102", "Timestamp request expired", 401, short=True)


def environment_mismatch() -> OkxError:
    return OkxError("50101", "APIKey does not match current environment.", 401, short=True)


def rate_limited() -> OkxError:
    return OkxError("50011", "Too Many Requests", 429, short=True)


def param_error(name: str) -> OkxError:
    return OkxError("51000", f"Parameter {name} error", 400)


def param_empty(name: str) -> OkxError:
    return OkxError("50014", f"Parameter {name} can not be empty.", 400)


def empty_body() -> OkxError:
    return OkxError("50000", "Body for POST request cannot be empty.", 400)


def json_syntax() -> OkxError:
    return OkxError("50002", "JSON syntax error", 400)


def maintenance() -> OkxError:
    return OkxError("50001", MAINTENANCE_MSG, 503)


def system_error(status: int = 500) -> OkxError:
    return OkxError("50026", SYSTEM_ERROR_MSG, status)


def endpoint_timeout() -> OkxError:
    return OkxError("50004", TIMEOUT_MSG, 400)


def instrument_not_exist() -> OkxError:
    return OkxError("51001", "Instrument ID, Instrument ID code or Spread ID doesn't exist.")


def order_not_exist() -> OkxError:
    return OkxError("51603", "Order does not exist.")


# --- order level (sCode) -------------------------------------------------------------------------


def request_expired() -> OrderError:
    """The request arrived after its ``expTime`` header (docs' error table: 50037 "Order expired.")."""
    return OrderError("50037", "Order expired.")


def order_param(name: str) -> OrderError:
    return OrderError("51000", f"Parameter {name} error")


def order_instrument() -> OrderError:
    return OrderError("51001", "Instrument ID, Instrument ID code or Spread ID doesn't exist.")


def account_mode() -> OrderError:
    return OrderError("51010", "You can't complete this request under your current account mode.")


def insufficient_balance(ccy: str) -> OrderError:
    return OrderError("51008", f"Order failed. Insufficient {ccy} balance in account.")


def lot_size() -> OrderError:
    return OrderError("51121", "Order quantity must be a multiple of the lot size.")


def below_minimum() -> OrderError:
    return OrderError("51020", "Your order should meet or exceed the minimum order amount.")


def duplicate_client_order_id() -> OrderError:
    return OrderError("51016", "Client order ID already exists.")


def limit_price_empty() -> OrderError:
    return OrderError("51204", "The price for the limit order cannot be empty.")


def cancel_failed() -> OrderError:
    return OrderError("51400", "Order cancellation failed as the order has been filled, canceled or does not exist.")


def trading_disabled() -> OrderError:
    return OrderError("51024", "Trading account is blocked.")
