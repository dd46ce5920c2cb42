"""The venue gateway interface: what trading needs from a venue, in plain values.

Every gateway (Binance through python-binance, paper) speaks this interface and classifies its
errors once, here, into three kinds:

- ``RetryableVenueError``: nothing happened at the venue, or the call was an idempotent read; the
  caller may retry with backoff.
- ``AmbiguousVenueError``: an order placement got no definite answer (timeout, 5XX, -1007). The
  order may exist. The caller marks it UNKNOWN and resolves it by query, never by resending.
- ``FinalVenueError``: the venue refused (insufficient balance, filters, unknown symbol...). It maps
  to a domain error code with a clear message.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from arbitragex.errors import ApplicationError, ErrorCode
from venues.types import OrderSide, OrderStatus, OrderType, PriceBand, TimeInForce


class VenueSettings(Protocol):
    """How to reach a venue: what an adapter reads of the platform's ``Venue`` (marketdata owns the row)."""

    code: str
    kind: str
    rest_url: str
    stream_url: str
    ws_api_url: str
    tld: str
    testnet: bool
    default_taker_fee: Decimal
    default_maker_fee: Decimal
    ccxt_exchange: str
    """A ccxt venue's exchange id (``okx``, ``binance``...); blank for other kinds."""
    ccxt_urls: Any
    """A ccxt venue's overrides of ccxt's ``urls`` (a dict, deep-merged); empty for other kinds."""


class AccountSettings(Protocol):
    """One account at a venue: what an adapter reads of the platform's ``ExchangeAccount`` (trading owns it)."""

    pk: Any
    name: str
    api_key: str

    @property
    def venue(self) -> VenueSettings: ...

    def get_api_secret(self) -> str: ...

    def get_api_passphrase(self) -> str:
        """The key's passphrase, decrypted (OKX signs with it); blank where the venue has none."""
        ...


class VenueError(ApplicationError):
    """Base of the three kinds. ``venue_code`` is Binance's negative code when there is one."""

    def __init__(
        self, code: ErrorCode, message: str, *, venue_code: int | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(code, message, {"venue_code": venue_code} if venue_code is not None else None)
        self.venue_code = venue_code
        self.retry_after_s = retry_after_s


class RetryableVenueError(VenueError):
    pass


class AmbiguousVenueError(VenueError):
    pass


class FinalVenueError(VenueError):
    pass


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """One order to place. ``claimed_at_ms`` and ``valid_for_ms`` bound when the venue may accept it.

    The placement claims an order before it sends it; a gateway signs the request with the claim's time
    (our clock, epoch ms, shifted by the venue's clock offset) and asks the venue to refuse it once
    ``valid_for_ms`` have passed since (Binance's ``recvWindow``: -1021). A send that was delayed past
    that (a worker frozen between claim and send) is refused by the venue itself, so it can never
    duplicate an order that another run placed meanwhile.
    """

    symbol: str
    side: OrderSide
    type: OrderType
    quantity: Decimal
    client_order_id: str
    price: Decimal | None = None
    time_in_force: TimeInForce | None = None
    claimed_at_ms: int | None = None
    valid_for_ms: int | None = None

    @property
    def not_after_ms(self) -> int | None:
        """The last moment (our clock, epoch ms) at which the venue may accept this request."""
        if self.claimed_at_ms is None or self.valid_for_ms is None:
            return None
        return self.claimed_at_ms + self.valid_for_ms


@dataclass(frozen=True, slots=True)
class FillReport:
    trade_id: str
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    is_maker: bool = False
    time_ms: int | None = None
    book_age_ms: int | None = None
    """A simulated venue's: how old the book this fill met was when the order arrived (None from a real venue)."""


@dataclass(frozen=True, slots=True)
class OrderReport:
    """What the venue says of one order (placement answer, query, stream update)."""

    client_order_id: str
    exchange_order_id: str
    symbol: str
    side: OrderSide
    status: OrderStatus
    quantity: Decimal
    filled_qty: Decimal
    cumulative_quote: Decimal
    price: Decimal | None = None
    update_time_ms: int | None = None
    fills: tuple[FillReport, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class BalanceReport:
    asset: str
    free: Decimal
    locked: Decimal


@dataclass(frozen=True, slots=True)
class SymbolRules:
    """A symbol's filters and fees, as exchangeInfo (and the account's commission) give them."""

    symbol: str
    base_asset: str
    quote_asset: str
    status: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal
    taker_fee: Decimal | None = None
    maker_fee: Decimal | None = None
    price_band: PriceBand | None = None


class Gateway(abc.ABC):
    """One account on one venue. Async, because placement sends both legs concurrently."""

    @abc.abstractmethod
    async def place_order(self, request: OrderRequest) -> OrderReport:
        """Send a new order with the request's deterministic client order id."""

    @abc.abstractmethod
    async def cancel_order(self, *, symbol: str, client_order_id: str) -> OrderReport: ...

    @abc.abstractmethod
    async def get_order(self, *, symbol: str, client_order_id: str) -> OrderReport | None:
        """Look an order up by client order id; None when the venue does not know it."""

    @abc.abstractmethod
    async def open_orders(self, *, symbol: str) -> list[OrderReport]: ...

    @abc.abstractmethod
    async def balances(self) -> list[BalanceReport]: ...

    async def balance(self, asset: str) -> BalanceReport:
        for report in await self.balances():
            if report.asset == asset:
                return report
        return BalanceReport(asset=asset, free=Decimal(0), locked=Decimal(0))

    @abc.abstractmethod
    async def symbol_rules(self) -> list[SymbolRules]: ...

    async def close(self) -> None:  # noqa: B027  (optional hook; most gateways hold no connection)
        """Release connections."""

    @property
    def time_offset_ms(self) -> int | None:
        """The venue's clock minus ours, as last measured (None: not known, or the venue is our own)."""
        return None


@dataclass
class ConnectivityReport:
    venue: str
    ok: bool = True
    checks: list[str] = field(default_factory=list)

    def summary(self) -> str:
        state = "OK" if self.ok else "FAILED"
        return f"{self.venue}: {state}: " + "; ".join(self.checks)
