"""Spot instruments and their ``GET /api/v5/public/instruments`` rendering (the 2026 docs' field set)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .numbers import num


@dataclass
class InstrumentSpec:
    """One spot instrument: tickSz is the price step, lotSz the size step, minSz the minimum size."""

    inst_id: str
    base_ccy: str
    quote_ccy: str
    tick_sz: Decimal
    lot_sz: Decimal
    min_sz: Decimal
    inst_id_code: int | None = None
    max_lmt_sz: Decimal = Decimal("9999999999")
    max_mkt_sz: Decimal = Decimal("1000000")
    max_lmt_amt: Decimal = Decimal("20000000")
    max_mkt_amt: Decimal = Decimal("1000000")
    state: str = "live"
    list_time: int = 1606468572000
    lever: str = "10"

    def to_json(self) -> dict[str, Any]:
        return {
            "alias": "",
            "auctionEndTime": "",
            "baseCcy": self.base_ccy,
            "category": "1",
            "ctMult": "",
            "ctType": "",
            "ctVal": "",
            "ctValCcy": "",
            "contTdSwTime": str(self.list_time),
            "expTime": "",
            "futureSettlement": False,
            "groupId": "1",
            "instFamily": "",
            "instId": self.inst_id,
            "instType": "SPOT",
            "lever": self.lever,
            "listTime": str(self.list_time),
            "lotSz": num(self.lot_sz),
            "maxIcebergSz": num(self.max_lmt_sz),
            "maxLmtAmt": num(self.max_lmt_amt),
            "maxLmtSz": num(self.max_lmt_sz),
            "maxMktAmt": num(self.max_mkt_amt),
            "maxMktSz": num(self.max_mkt_sz),
            "maxStopSz": num(self.max_mkt_sz),
            "maxTriggerSz": num(self.max_lmt_sz),
            "maxTwapSz": num(self.max_lmt_sz),
            "minSz": num(self.min_sz),
            "optType": "",
            "openType": "",
            "preMktSwTime": "",
            "quoteCcy": self.quote_ccy,
            "tradeQuoteCcyList": [self.quote_ccy],
            "settleCcy": "",
            "state": self.state,
            "ruleType": "normal",
            "stk": "",
            "tickSz": num(self.tick_sz),
            "uly": "",
            **({"instIdCode": self.inst_id_code} if self.inst_id_code is not None else {}),
            "instCategory": "1",
            "upcChg": [],
        }


def default_instruments() -> list[InstrumentSpec]:
    """BTC-USDT and ETH-USDT with the steps of the live venue (see the recorded instruments list)."""
    return [
        InstrumentSpec("BTC-USDT", "BTC", "USDT", Decimal("0.1"), Decimal("0.00000001"), Decimal("0.00001"), 100001),
        InstrumentSpec("ETH-USDT", "ETH", "USDT", Decimal("0.01"), Decimal("0.000001"), Decimal("0.001"), 100002),
    ]
