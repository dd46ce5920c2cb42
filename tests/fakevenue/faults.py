"""Fault injection: what can go wrong between a client and Binance, switchable from a test.

A fault matches requests (REST or WebSocket API) or stream frames by target, endpoint and
method, can be limited to ``times`` occurrences and/or ``duration`` seconds, and counts its hits.
``FaultRegistry`` is venue-neutral (the OKX fake keeps its own faults in one); ``Fault`` and
``FaultKind`` are Binance's.
"""

from __future__ import annotations

import fnmatch
import itertools
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Generic, Literal, Protocol, TypeVar

from . import errors

Target = Literal["rest", "ws_api", "stream", "user_stream"]


class FaultKind(StrEnum):
    LATENCY = "latency"  # delay the answer (or each stream frame) by ``delay`` seconds
    DROP = "drop"  # close the connection with no answer (``process``: execute the request first)
    HTTP_5XX = "http_5xx"  # a 5XX answer (``status``), execution status unknown
    TIMEOUT_1007 = "timeout_1007"  # -1007; the request IS executed unless process=False
    RATE_LIMIT_429 = "rate_limit_429"  # 429 -1003 with Retry-After
    BAN_418 = "ban_418"  # 418 -1003 with Retry-After
    TIMESTAMP_1021 = "timestamp_1021"  # -1021 outside of the recvWindow
    INSUFFICIENT_2010 = "insufficient_2010"  # -2010 insufficient balance
    ERROR = "error"  # any Binance error: ``status``, ``code``, ``msg``
    SILENT = "silent"  # streams (or user data events): the socket stays open, no frames are sent
    DUPLICATE = "duplicate"  # user data events: sent twice (the copy ``delay`` seconds later, default at once)
    REORDER = "reorder"  # user data events: held back ``delay`` seconds (default 1), so later ones overtake it


# Kinds that do not answer the request themselves.
_PASS_THROUGH = {FaultKind.LATENCY}
_DEFAULT_TARGETS: dict[str, str] = {
    FaultKind.SILENT: "stream",
    FaultKind.DUPLICATE: "user_stream",
    FaultKind.REORDER: "user_stream",
}
# Every venue's fault kinds name their delay "latency": the registry adds those delays up.
LATENCY = "latency"


@dataclass
class Fault:
    kind: FaultKind
    target: Target = "rest"
    endpoint: str | None = None  # REST path ("order", "/api/v3/order"), WS-API method or stream name; globs ok
    method: str | None = None  # HTTP method for REST (GET/POST/DELETE)
    times: int | None = None  # occurrences left; None = until cleared
    duration: float | None = None  # seconds from injection; None = until cleared
    delay: float = 0.0
    status: int | None = None
    code: int | None = None
    msg: str | None = None
    retry_after: int = 1
    process: bool | None = None  # execute the request before failing (ambiguous outcomes)
    id: int = 0
    hits: int = 0
    created: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.kind = FaultKind(self.kind)
        if self.method:
            self.method = self.method.upper()

    @property
    def executes_request(self) -> bool:
        if self.process is not None:
            return self.process
        return self.kind == FaultKind.TIMEOUT_1007

    @property
    def answers(self) -> bool:
        return self.kind not in _PASS_THROUGH

    def expired(self) -> bool:
        if self.times is not None and self.times <= 0:
            return True
        return self.duration is not None and time.monotonic() - self.created > self.duration

    def matches(self, target: Target, endpoint: str, method: str | None) -> bool:
        if self.target != target or self.expired():
            return False
        if self.method and method and self.method != method.upper():
            return False
        if self.endpoint is None:
            return True
        return any(fnmatch.fnmatchcase(name, self.endpoint) for name in _names(endpoint))

    def error(self) -> errors.BinanceError:
        """The error answer of this fault (for kinds that answer with one)."""
        kind = self.kind
        if kind == FaultKind.HTTP_5XX:
            return errors.BinanceError(self.code or -1001, self.msg or errors.DISCONNECTED_MSG, self.status or 503)
        if kind == FaultKind.TIMEOUT_1007:
            return errors.BinanceError(-1007, self.msg or errors.TIMEOUT_MSG, self.status or 503)
        if kind == FaultKind.RATE_LIMIT_429:
            return errors.too_many_requests(6000, self.retry_after)
        if kind == FaultKind.BAN_418:
            until = int(time.time() * 1000) + self.retry_after * 1000
            return errors.banned(until, self.retry_after)
        if kind == FaultKind.TIMESTAMP_1021:
            return errors.outside_recv_window()
        if kind == FaultKind.INSUFFICIENT_2010:
            return errors.insufficient_balance()
        return errors.BinanceError(self.code or -1000, self.msg or errors.UNKNOWN_ERROR, self.status or 400)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = str(self.kind)
        data.pop("created")
        return data


def _names(endpoint: str) -> list[str]:
    """A REST path matches as "/api/v3/order", "api/v3/order" and "order"."""
    names = [endpoint]
    stripped = endpoint.lstrip("/")
    names.append(stripped)
    if stripped.startswith("api/v3/"):
        names.append(stripped[len("api/v3/") :])
    return names


class MatchableFault(Protocol):
    """What ``FaultRegistry`` needs of a venue's fault."""

    id: int
    hits: int
    times: int | None
    delay: float
    target: Any

    @property
    def kind(self) -> Any: ...

    @property
    def answers(self) -> bool: ...

    def expired(self) -> bool: ...

    def matches(self, target: Any, endpoint: str, method: str | None) -> bool: ...


F = TypeVar("F", bound=MatchableFault)


class FaultRegistry(Generic[F]):
    """The active faults of one venue, in injection order.

    ``default_targets`` moves a fault injected with the default target "rest" to the target its
    kind is about (a silent stream, say).
    """

    def __init__(self, default_targets: Mapping[str, str] = _DEFAULT_TARGETS) -> None:
        self._faults: list[F] = []
        self._ids = itertools.count(1)
        self._default_targets = dict(default_targets)

    def add(self, fault: F) -> F:
        fault.id = next(self._ids)
        if fault.target == "rest" and fault.kind in self._default_targets:
            fault.target = self._default_targets[fault.kind]
        self._faults.append(fault)
        return fault

    def remove(self, fault_id: int) -> None:
        self._faults = [f for f in self._faults if f.id != fault_id]

    def clear(self) -> None:
        self._faults.clear()

    def list_active(self) -> list[F]:
        self._faults = [f for f in self._faults if not f.expired()]
        return list(self._faults)

    def take(self, target: str, endpoint: str, method: str | None = None) -> list[F]:
        """Matching faults, each consuming one occurrence: latency first, then at most one answer."""
        delays: list[F] = []
        answer: F | None = None
        for fault in self._faults:
            if not fault.matches(target, endpoint, method):
                continue
            if not fault.answers:
                delays.append(fault)
            elif answer is None:
                answer = fault
        chosen = [*delays, *([answer] if answer else [])]
        for fault in chosen:
            fault.hits += 1
            if fault.times is not None:
                fault.times -= 1
        return chosen

    def latency(self, target: str, endpoint: str, method: str | None = None) -> float:
        """Total delay of matching LATENCY faults (each consumes one occurrence)."""
        delay = 0.0
        for fault in self._faults:
            if fault.kind == LATENCY and fault.matches(target, endpoint, method):
                self.consume(fault)
                delay += fault.delay
        return delay

    def active(self, target: str, endpoint: str, kind: str) -> F | None:
        """A matching fault of ``kind`` without consuming it (for stream state checks)."""
        for fault in self._faults:
            if fault.kind == kind and fault.matches(target, endpoint, None):
                return fault
        return None

    def consume(self, fault: F) -> None:
        fault.hits += 1
        if fault.times is not None:
            fault.times -= 1
