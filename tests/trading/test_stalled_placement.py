"""A worker frozen between claiming an execution's orders and sending them, past Celery's visibility
timeout, then resumed: the redelivered task places each leg once, and the resumed worker sends
nothing, or what it sends is refused by the venue itself. Exactly one venue order per leg, and a
ledger equal to the venues' fills.

The freeze is exact: the worker runs with a fault point (``arbitragex.faultpoints``) that makes it
SIGSTOP itself at that place of ``trading.placement``:

- ``placement.after_claim``: the claim is committed, nothing is sent. When it resumes, its claim is no
  longer the latest (the redelivered run claimed again): it sends nothing.
- ``placement.before_send``: its claim was proven still held, and the orders were about to go out.
  When it resumes it sends them, signed with its claim's time: the venue refuses them (-1021, past the
  recvWindow), since another run placed the legs meanwhile.

Both workers use a visibility timeout of a few seconds (production: 300 s), so that Redis redelivers
the frozen worker's task within the test.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest

from tests.fakevenue import fixtures as fakevenue_fixtures
from tests.trading import test_lifecycle_worker as lifecycle_worker
from tests.trading.binance_lifecycle_support import BinanceDesk, binance_desk_start, recorded_fills, venue_fills
from tests.trading.test_lifecycle_binance import assert_settled_from_the_fills, legs_of, settle
from tests.trading.test_lifecycle_worker import DONE_TIMEOUT_S, wait_for
from trading.enums import ExecutionStatus, IncidentKind, OrderStatus
from trading.models import Incident, Order

pytestmark = pytest.mark.slow

workers = lifecycle_worker.workers
fast_binance_websockets = fakevenue_fixtures.fast_binance_websockets

VISIBILITY_TIMEOUT_S = "6"


@pytest.fixture
def binance_desk(transactional_db) -> Iterator[Callable[..., BinanceDesk]]:
    desks: list[BinanceDesk] = []

    def start(**options: object) -> BinanceDesk:
        desks.append(binance_desk_start(**options))  # type: ignore[arg-type]
        return desks[-1]

    yield start
    for desk in desks:
        desk.stop()


@pytest.mark.parametrize("point", ["placement.after_claim", "placement.before_send"])
def test_a_worker_frozen_between_claim_and_send_past_the_visibility_timeout_never_sends_late(
    binance_desk, workers, point
):
    desk = binance_desk()
    frozen = workers(ARBX_FAULT_POINTS=f"{point}=stop*1", CELERY_VISIBILITY_TIMEOUT=VISIBILITY_TIMEOUT_S)
    execution = desk.create()

    wait_for(frozen.frozen, DONE_TIMEOUT_S, f"the worker to freeze at {point}", frozen)
    claimed = {order.client_order_id: order.place_attempts for order in Order.objects.filter(execution=execution)}
    assert set(claimed.values()) == {1}
    assert not desk.buy.orders() and not desk.sell.orders()  # frozen before anything went out

    # Redis hands the task of the frozen worker to another once the visibility timeout has passed.
    second = workers(CELERY_VISIBILITY_TIMEOUT=VISIBILITY_TIMEOUT_S)
    execution = settle(execution, second)
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    placed = {leg.code: len(leg.orders()) for leg in desk.legs}

    resumed_at = len(frozen.lines)
    frozen.resume()
    # The resumed run finishes its task (or asks for a retry): it must leave every venue as it was.
    wait_for(
        lambda: (
            re.search(r"execution_place_orders\[[^\]]+\] (succeeded|retry)", "".join(frozen.lines[resumed_at:]))
            is not None
        ),
        DONE_TIMEOUT_S,
        "the resumed run to end",
        frozen,
    )

    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.COMPLETED
    assert {leg.code: len(leg.orders()) for leg in desk.legs} == placed == {desk.buy.code: 1, desk.sell.code: 1}
    for order in legs_of(execution).values():
        assert order.status == OrderStatus.FILLED
        remote = desk.leg_of(order).order(order.client_order_id)  # exactly one venue order with our id
        assert order.exchange_order_id == str(remote.order_id)
        assert (order.filled_qty, recorded_fills(order)) == (remote.executed_qty, venue_fills(remote))
    if point == "placement.before_send":
        # The leg frozen at the point of sending did go out when the worker resumed, and was refused by the
        # venue: too late for its recvWindow. (The other leg's run may have noticed its lost lease first.)
        refused = 0
        for leg, order in zip(desk.legs, legs_of(execution).values(), strict=True):
            sends = leg.requests("order", "POST", newClientOrderId=order.client_order_id)
            assert sends[0].status == 200 and {r.status for r in sends[1:]} <= {400}, sends
            refused += len(sends) - 1
        assert refused >= 1
        assert "resyncing the clock offset" in frozen.log()
    else:
        assert "a later run holds its claim" in "".join(frozen.lines), "".join(frozen.lines)[-3000:]
    assert not Order.objects.filter(execution=execution, adopted_from__isnull=False).exists()
    assert not Incident.objects.filter(kind=IncidentKind.DUPLICATE_AT_VENUE).exists()
    assert_settled_from_the_fills(desk, execution)
