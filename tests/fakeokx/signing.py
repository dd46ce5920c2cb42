"""OKX request signing: base64(HMAC-SHA256(secret, prehash)).

REST: prehash = timestamp + METHOD + requestPath (with ``?query`` for GET) + body, the timestamp being
ISO-8601 UTC with milliseconds. WebSocket login: prehash = unix seconds + "GET" + "/users/self/verify".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

WS_LOGIN_PATH = "/users/self/verify"


def sign(secret: str, prehash: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), prehash.encode(), hashlib.sha256).digest()).decode()


def rest_prehash(timestamp: str, method: str, request_path: str, body: str) -> str:
    return f"{timestamp}{method.upper()}{request_path}{body}"


def ws_login_prehash(timestamp: str) -> str:
    return f"{timestamp}GET{WS_LOGIN_PATH}"


def iso_ms(epoch_ms: int) -> str:
    """``2020-12-08T09:08:57.715Z``."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def parse_iso_ms(text: str) -> int | None:
    """Epoch milliseconds of an OK-ACCESS-TIMESTAMP, None when it is not ISO-8601 UTC with milliseconds."""
    try:
        moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(moment.timestamp() * 1000)
