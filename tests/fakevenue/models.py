"""State of the fake venue: accounts, orders, fills and trades."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from .money import ZERO

OrderSide = Literal["BUY", "SELL"]
OrderType = Literal["LIMIT", "LIMIT_MAKER", "MARKET"]
TimeInForce = Literal["GTC", "IOC", "FOK"]
RespType = Literal["ACK", "RESULT", "FULL"]

OPEN_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED"})


@dataclass
class Balance:
    free: Decimal = ZERO
    locked: Decimal = ZERO


@dataclass
class Account:
    api_key: str
    api_secret: str
    uid: int
    balances: dict[str, Balance] = field(default_factory=dict)
    maker_rate: Decimal = Decimal("0.001")
    taker_rate: Decimal = Decimal("0.001")
    # Pay commission in BNB (Binance's "use BNB to pay for fees") with this discount off the rate.
    pay_fees_in_bnb: bool = False
    bnb_discount: Decimal = Decimal("0.25")
    can_trade: bool = True
    update_time: int = 0

    def balance(self, asset: str) -> Balance:
        found = self.balances.get(asset)
        if found is None:
            found = self.balances[asset] = Balance()
        return found


@dataclass
class Fill:
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    trade_id: int
    time: int
    is_maker: bool

    @property
    def quote_qty(self) -> Decimal:
        return self.price * self.qty


@dataclass
class Order:
    api_key: str
    symbol: str
    order_id: int
    client_order_id: str
    side: OrderSide
    type: OrderType
    time_in_force: TimeInForce
    price: Decimal  # 0 for MARKET orders, as Binance reports them
    orig_qty: Decimal
    orig_quote_order_qty: Decimal
    time: int
    stp_mode: str
    status: str = "NEW"
    executed_qty: Decimal = ZERO
    cummulative_quote_qty: Decimal = ZERO
    update_time: int = 0
    working_time: int = 0
    fills: list[Fill] = field(default_factory=list)
    lock_asset: str | None = None
    locked: Decimal = ZERO
    cancel_client_order_id: str | None = None
    # Why an EXPIRED order expired (enums.md, Expiry Reasons); None otherwise.
    expiry_reason: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty


@dataclass
class AccountTrade:
    """A row of GET /api/v3/myTrades."""

    symbol: str
    id: int
    order_id: int
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_buyer: bool
    is_maker: bool

    @property
    def quote_qty(self) -> Decimal:
        return self.price * self.qty


@dataclass(frozen=True)
class MarketTrade:
    """A public trade (the ``<symbol>@trade`` stream)."""

    symbol: str
    trade_id: int
    price: Decimal
    qty: Decimal
    time: int
    buyer_is_maker: bool


@dataclass
class OrderRequest:
    symbol: str
    side: OrderSide
    type: OrderType
    time_in_force: TimeInForce | None = None
    quantity: Decimal | None = None
    quote_order_qty: Decimal | None = None
    price: Decimal | None = None
    client_order_id: str | None = None
