"""State of the fake OKX venue: accounts, orders and fills. Amounts are Decimal throughout."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from tests.fakevenue.money import ZERO

Side = Literal["buy", "sell"]
ORDER_TYPES = ("market", "limit", "post_only", "fok", "ioc")
# Order types with a price (they may rest, or lock their funds while they take).
PRICED_TYPES = ("limit", "post_only", "fok", "ioc")
PENDING_STATES = frozenset({"live", "partially_filled"})


@dataclass
class Balance:
    avail: Decimal = ZERO
    frozen: Decimal = ZERO
    u_time: int = 0

    @property
    def cash(self) -> Decimal:
        return self.avail + self.frozen


@dataclass
class Account:
    api_key: str
    secret: str
    passphrase: str
    uid: str
    demo: bool = False
    balances: dict[str, Balance] = field(default_factory=dict)
    # Positive rates are charged (rendered negative, as OKX does); a negative maker rate is a rebate.
    maker_rate: Decimal = Decimal("0.0008")
    taker_rate: Decimal = Decimal("0.001")
    can_trade: bool = True
    label: str = "fakeokx"

    def balance(self, ccy: str) -> Balance:
        found = self.balances.get(ccy)
        if found is None:
            found = self.balances[ccy] = Balance()
        return found


@dataclass
class Fill:
    """One execution of an order (a row of trade/fills)."""

    api_key: str
    inst_id: str
    ord_id: str
    cl_ord_id: str
    tag: str
    side: Side
    trade_id: str
    bill_id: str
    px: Decimal
    sz: Decimal
    fee: Decimal  # signed as OKX renders it: negative is a charge
    fee_ccy: str
    fee_rate: Decimal  # signed like fee
    exec_type: Literal["T", "M"]
    ts: int
    quote_ccy: str

    @property
    def notional(self) -> Decimal:
        return self.px * self.sz


@dataclass
class Order:
    api_key: str
    inst_id: str
    ord_id: str
    cl_ord_id: str
    tag: str
    side: Side
    ord_type: str
    px: Decimal | None
    sz: Decimal
    tgt_ccy: str  # as sent: "", "base_ccy" or "quote_ccy"
    c_time: int
    fee_ccy: str
    rebate_ccy: str
    state: str = "live"
    u_time: int = 0
    acc_fill_sz: Decimal = ZERO
    acc_notional: Decimal = ZERO
    fee: Decimal = ZERO  # cumulative, signed like Fill.fee
    fills: list[Fill] = field(default_factory=list)
    cancel_source: str = ""
    lock_ccy: str | None = None
    locked: Decimal = ZERO
    # Market orders sized in the quote currency spend a budget rather than fill a size.
    quote_sized: bool = False

    @property
    def is_pending(self) -> bool:
        return self.state in PENDING_STATES

    @property
    def remaining(self) -> Decimal:
        """Base size still to fill (orders sized in the base currency)."""
        return self.sz - self.acc_fill_sz

    @property
    def avg_px(self) -> Decimal | None:
        return self.acc_notional / self.acc_fill_sz if self.acc_fill_sz else None

    @property
    def last_fill(self) -> Fill | None:
        return self.fills[-1] if self.fills else None


@dataclass
class PublicTrade:
    inst_id: str
    trade_id: str
    px: Decimal
    sz: Decimal
    side: Side  # the taker's side
    ts: int
