"""The receivers that turn the work the services announce into tasks."""

from __future__ import annotations

import pytest

from trading import signals, tasks
from trading.models import TradeExecution


@pytest.fixture
def sent(monkeypatch):
    calls: list[dict] = []
    monkeypatch.setattr(tasks.balances_sync, "apply_async", lambda **kwargs: calls.append(kwargs))
    return calls


def test_balance_reads_after_a_burst_of_settlements_are_coalesced_per_account(sent):
    signals.balances_sync_due.send(sender=TradeExecution, account_ids=[1, 2])
    signals.balances_sync_due.send(sender=TradeExecution, account_ids=[1])
    signals.balances_sync_due.send(sender=TradeExecution, account_ids=[2, 3])

    assert sent == [
        {"args": ([1, 2],), "countdown": tasks.BALANCE_SYNC_COALESCE_S},
        {"args": ([3],), "countdown": tasks.BALANCE_SYNC_COALESCE_S},
    ]


def test_once_the_window_has_passed_an_account_is_read_again(sent):
    from django.core.cache import cache

    signals.balances_sync_due.send(sender=TradeExecution, account_ids=[7])
    cache.delete("trade:balance-sync-due:7")  # the window of the first read has passed
    signals.balances_sync_due.send(sender=TradeExecution, account_ids=[7])

    assert [call["args"] for call in sent] == [([7],), ([7],)]


def test_placement_and_settlement_are_sent_as_their_tasks(monkeypatch):
    placed, settled = [], []
    monkeypatch.setattr(tasks.execution_place_orders, "apply_async", lambda **kwargs: placed.append(kwargs))
    monkeypatch.setattr(tasks.execution_settle, "apply_async", lambda **kwargs: settled.append(kwargs))

    signals.placement_due.send(sender=TradeExecution, execution_id="e-1", countdown=None)
    signals.settlement_due.send(sender=TradeExecution, execution_id="e-1", countdown=31)

    assert placed == [{"args": ("e-1",), "countdown": None}]
    assert settled == [{"args": ("e-1",), "countdown": 31}]
