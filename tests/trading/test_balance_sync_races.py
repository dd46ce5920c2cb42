"""Balance syncs that race the fills, or each other, find no drift that is not there.

Found by the chaos run (tests/chaos): under load the balance reconciliation reported drift on an
account whose venue balance was exactly what its fills said, and opened the breaker, which stopped all
trading. A sync was dated when it wrote, not when it read the venue: a fill made in between was in
neither the stored balance nor the fills after that date. And several syncs run at once (one per
finished execution, plus the periodic one), so an older read could be written over a newer one.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.utils import timezone

from marketdata.models import Venue
from tests.factories import ExchangeAccountFactory, FillFactory, OrderFactory, TradeExecutionFactory, VenueFactory
from tests.trading.lifecycle_support import fund, make_venue
from trading import balances
from trading.balances import DRIFT_GUARD, account_balances_sync, balances_sync
from trading.enums import AccountMode, IncidentKind, OrderLeg, OrderStatus
from trading.gateways.paper import PaperGateway
from trading.models import AccountBalance, ExchangeAccount, Incident
from venues.gateway import BalanceReport

D = Decimal


@pytest.fixture
def live(db) -> Iterator[tuple[ExchangeAccount, ExchangeAccount]]:
    """A live account whose venue is played by a paper account (its balance rows), last synced 1 min ago."""
    venue_side = ExchangeAccountFactory(venue=make_venue(), mode=AccountMode.PAPER)
    account = ExchangeAccountFactory(venue=VenueFactory(kind=Venue.Kind.BINANCE), mode=AccountMode.LIVE)
    last_sync = timezone.now() - timedelta(minutes=1)
    for asset, amount in (("USDT", "1000"), ("BTC", "0")):
        AccountBalance.objects.create(account=account, asset=asset, free=D(amount), synced_at=last_sync)
        fund(venue_side, asset, amount)
    yield account, venue_side


def _gateways(account: ExchangeAccount, venue_side: ExchangeAccount):
    return lambda acct: PaperGateway(venue_side) if acct.pk == account.pk else PaperGateway(acct)


def _buy(account: ExchangeAccount, venue_side: ExchangeAccount, at: datetime) -> None:
    """0.01 BTC bought at 50000 at the venue (its balance) and recorded here (a fill at ``at``)."""
    execution = TradeExecutionFactory(buy_account=account, sell_account=ExchangeAccountFactory())
    order = OrderFactory(execution=execution, leg=OrderLeg.BUY, status=OrderStatus.FILLED, filled_qty=D("0.01"))
    FillFactory(order=order, price=D("50000"), qty=D("0.01"), commission=D("0"), filled_at=at)
    usdt = AccountBalance.objects.get(account=venue_side, asset="USDT")
    btc = AccountBalance.objects.get(account=venue_side, asset="BTC")
    fund(venue_side, "USDT", usdt.free - D("500"))
    fund(venue_side, "BTC", btc.free + D("0.01"))


def _drift_incidents() -> list[Incident]:
    return list(Incident.objects.filter(kind=IncidentKind.BALANCE_DRIFT))


def test_a_fill_made_between_the_read_and_the_write_is_not_drift(live, monkeypatch):
    account, venue_side = live
    factory = _gateways(account, venue_side)
    read_at = timezone.now()
    clock = iter([read_at, read_at + timedelta(seconds=30)])  # the write comes 30 s after the read started
    monkeypatch.setattr(balances, "timezone", SimpleNamespace(now=lambda: next(clock, timezone.now())))

    balances_sync(account_ids=[account.pk], gateway_factory=factory)  # reads 1000 USDT
    _buy(account, venue_side, at=read_at + DRIFT_GUARD + timedelta(seconds=5))  # between the read and the write
    monkeypatch.setattr(balances, "timezone", timezone)

    found = balances_sync(account_ids=[account.pk], gateway_factory=factory)  # at rest: judged

    assert found[account.pk] == []
    assert not _drift_incidents()
    assert AccountBalance.objects.get(account=account, asset="USDT").free == D("500")


def test_an_older_read_written_after_a_newer_one_is_dropped(live):
    account, _ = live
    newer, older = timezone.now(), timezone.now() - timedelta(seconds=2)

    account_balances_sync(account=account, reports=[BalanceReport("USDT", D("500"), D("0"))], now=newer)
    account_balances_sync(account=account, reports=[BalanceReport("USDT", D("1000"), D("0"))], now=older)

    row = AccountBalance.objects.get(account=account, asset="USDT")
    assert (row.free, row.synced_at) == (D("500"), newer)


def test_drift_is_not_judged_while_a_fill_lies_within_the_guard_of_the_last_sync(live):
    account, venue_side = live
    factory = _gateways(account, venue_side)
    last_sync = AccountBalance.objects.get(account=account, asset="USDT").synced_at
    _buy(account, venue_side, at=last_sync + DRIFT_GUARD / 2)  # may or may not be in the last read
    fund(venue_side, "USDT", "400")  # and 100 USDT left the account: real drift

    assert balances_sync(account_ids=[account.pk], gateway_factory=factory)[account.pk] == []
    assert not _drift_incidents()  # not judged on an ambiguous base

    fund(venue_side, "USDT", "300")  # another 100 leave; the next sync has a clean base
    found = balances_sync(account_ids=[account.pk], gateway_factory=factory)[account.pk]

    assert [(d.asset, d.drift) for d in found] == [("USDT", D("-100"))]


def test_a_venue_clock_ten_seconds_ahead_makes_no_false_drift(live):
    """Fill times are the venue's clock: the sync compares them with its read on that clock too."""
    account, venue_side = live
    offset_ms = 10_000
    read_at = timezone.now()
    # The first sync: the venue's clock was 10 s ahead of ours when it read.
    reports = [BalanceReport("USDT", D("1000"), D(0)), BalanceReport("BTC", D(0), D(0))]
    account_balances_sync(account=account, reports=reports, now=read_at, venue_offset_ms=offset_ms)
    # A fill the venue made 5 s before that read (its time is 5 s AFTER the read on our clock): it is in the
    # balance read above, and in the next.
    _buy(account, venue_side, at=read_at + timedelta(milliseconds=offset_ms) - timedelta(seconds=5))
    after = [BalanceReport("USDT", D("1000"), D(0)), BalanceReport("BTC", D(0), D(0))]
    AccountBalance.objects.filter(account=account).update(free=D(0))  # what the first sync wrote, restored below
    AccountBalance.objects.filter(account=account, asset="USDT").update(free=D("1000"))

    found = account_balances_sync(
        account=account, reports=after, now=read_at + timedelta(seconds=30), venue_offset_ms=offset_ms
    )

    assert found == []
    assert not _drift_incidents()


def test_the_breaker_that_drift_opened_closes_itself_when_a_later_sync_finds_none(live):
    from arbitragex.models import AuditLog
    from risk.breaker import TripReason
    from risk.models import GLOBAL_SCOPE, RiskState

    account, venue_side = live
    RiskState.objects.get_or_create(account=GLOBAL_SCOPE, symbol="")
    factory = _gateways(account, venue_side)
    fund(venue_side, "USDT", "900")  # 100 USDT left the venue account behind our back
    balances_sync(gateway_factory=factory)
    tripped = RiskState.objects.get(account=GLOBAL_SCOPE, symbol="")
    assert tripped.breaker_open and tripped.breaker_reason == TripReason.RECONCILIATION_DRIFT
    assert tripped.breaker_until is not None  # with a cooldown, not open until a person closes it

    balances_sync(gateway_factory=factory)  # the stored balance is the venue's now: no drift

    assert not RiskState.objects.get(account=GLOBAL_SCOPE, symbol="").breaker_open
    closed = AuditLog.objects.filter(action="breaker.close").latest("pk")
    assert "no drift" in closed.note and closed.actor is None
    (drift,) = _drift_incidents()  # resolved too, saying what made it go
    assert drift.resolved_at is not None and "as the fills say" in drift.resolution
