"""Fault injection for the OKX fake, kept in the venue-neutral ``tests.fakevenue.faults.FaultRegistry``.

A fault matches by target, endpoint (a glob) and HTTP method, can be limited to ``times``
occurrences and/or ``duration`` seconds, and counts its hits. Targets and what ``endpoint`` names:

- ``rest``: the REST path ("trade/order", "/api/v5/trade/order", "trade/*");
- ``ws_op``: a WebSocket operation ("login", "subscribe", "order", "batch-orders", "cancel-order");
- ``ws_public``: a public channel's pushes ("books", "bbo-tbt", "tickers", "books5", "trades");
- ``ws_private``: a private channel's pushes ("orders", "account").
"""

from __future__ import annotations

import fnmatch
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Literal

from . import errors

Target = Literal["rest", "ws_op", "ws_public", "ws_private"]


class FaultKind(StrEnum):
    LATENCY = "latency"  # delay the answer (or each matching frame) by ``delay`` seconds
    DROP = "drop"  # cut the connection, no answer (``process=True``: executed first, the answer is lost)
    HTTP_5XX = "http_5xx"  # ``status`` (500) with 50026, not executed unless process=True
    TIMEOUT_50004 = "timeout_50004"  # 50004 endpoint timeout: executed unless process=False
    RATE_LIMIT_50011 = "rate_limit_50011"  # 429 50011
    TIMESTAMP_50102 = "timestamp_50102"  # 401 50102 timestamp expired
    ERROR = "error"  # any ``status``/``code``/``msg`` for the whole request
    ORDER_ERROR = "order_error"  # order writes: every order fails with sCode ``code`` / sMsg ``msg``
    MAINTENANCE = "maintenance"  # REST 503 50001; WebSockets get notice 64008 and close after ``delay``
    SILENT = "silent"  # WebSocket pushes of the channel are not sent (the socket stays up)
    DUPLICATE = "duplicate"  # private pushes are sent twice
    REORDER = "reorder"  # a private push is held back and sent after the next one
    SEQ_GAP = "seq_gap"  # a books update whose prevSeqId is not the last seqId sent


_PASS_THROUGH = {FaultKind.LATENCY}
_DEFAULT_TARGETS: dict[str, str] = {
    FaultKind.SILENT: "ws_public",
    FaultKind.DUPLICATE: "ws_private",
    FaultKind.REORDER: "ws_private",
    FaultKind.SEQ_GAP: "ws_public",
}


@dataclass
class Fault:
    kind: FaultKind
    target: Target = "rest"
    endpoint: str | None = None
    method: str | None = None
    times: int | None = None
    duration: float | None = None
    delay: float = 0.0
    status: int | None = None
    code: str | None = None
    msg: str | None = None
    process: bool | None = None
    id: int = 0
    hits: int = 0
    created: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.kind = FaultKind(self.kind)
        if self.method:
            self.method = self.method.upper()
        if self.code is not None:
            self.code = str(self.code)

    @property
    def executes_request(self) -> bool:
        if self.process is not None:
            return self.process
        return self.kind == FaultKind.TIMEOUT_50004

    @property
    def answers(self) -> bool:
        return self.kind not in _PASS_THROUGH

    def expired(self) -> bool:
        if self.times is not None and self.times <= 0:
            return True
        return self.duration is not None and time.monotonic() - self.created > self.duration

    def matches(self, target: str, endpoint: str, method: str | None) -> bool:
        if self.target != target or self.expired():
            return False
        if self.method and method and self.method != method.upper():
            return False
        if self.endpoint is None:
            return True
        return any(fnmatch.fnmatchcase(name, self.endpoint) for name in _names(endpoint))

    def error(self) -> errors.OkxError:
        """The request-level answer of this fault."""
        kind = self.kind
        if kind == FaultKind.HTTP_5XX:
            return errors.OkxError(self.code or "50026", self.msg or errors.SYSTEM_ERROR_MSG, self.status or 500)
        if kind == FaultKind.TIMEOUT_50004:
            return errors.endpoint_timeout()
        if kind == FaultKind.RATE_LIMIT_50011:
            return errors.rate_limited()
        if kind == FaultKind.TIMESTAMP_50102:
            return errors.timestamp_expired()
        if kind == FaultKind.MAINTENANCE:
            return errors.maintenance()
        status = self.status or 200
        return errors.OkxError(
            self.code or "50026", self.msg or errors.SYSTEM_ERROR_MSG, status, short=status in (401, 429)
        )

    def order_error(self) -> errors.OrderError:
        return errors.OrderError(
            self.code or "51008", self.msg or "Order failed. Insufficient USDT balance in account."
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = str(self.kind)
        data.pop("created")
        return data


def _names(endpoint: str) -> list[str]:
    """A REST path matches as "/api/v5/trade/order", "api/v5/trade/order" and "trade/order"."""
    stripped = endpoint.lstrip("/")
    names = [endpoint, stripped]
    if stripped.startswith("api/v5/"):
        names.append(stripped[len("api/v5/") :])
    return names


DEFAULT_TARGETS = _DEFAULT_TARGETS
