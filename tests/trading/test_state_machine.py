"""The order state machine: forward-only status, monotonic fills, de-duplicated trades, any arrival order."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from arbitragex.errors import ApplicationError, ErrorCode
from trading.enums import OrderStatus
from trading.state_machine import (
    OrderSnapshot,
    OrderUpdate,
    UpdateSource,
    VenueFill,
    apply_update,
)
from venues.binance.status import status_from_binance

S = OrderStatus


def snapshot(status: OrderStatus = S.PENDING, **overrides: object) -> OrderSnapshot:
    values: dict[str, object] = {"status": status, "quantity": D("1")}
    values.update(overrides)
    return OrderSnapshot(**values)  # type: ignore[arg-type]


def fill(trade_id: str, qty: str = "0.4", price: str = "100") -> VenueFill:
    return VenueFill(
        trade_id=trade_id,
        price=D(price),
        qty=D(qty),
        commission=D("0.04"),
        commission_asset="USDT",
        is_maker=False,
        time_ms=1_000,
    )


def update(
    status: OrderStatus | None,
    filled: str = "0",
    quote: str | None = None,
    time_ms: int | None = 1_000,
    fills: tuple[VenueFill, ...] = (),
    source: UpdateSource = UpdateSource.STREAM,
) -> OrderUpdate:
    return OrderUpdate(
        status=status,
        filled_qty=D(filled),
        cumulative_quote=D(quote) if quote is not None else D(filled) * 100,
        update_time_ms=time_ms,
        source=source,
        fills=fills,
    )


class TestBinanceStatuses:
    @pytest.mark.parametrize(
        ("binance", "ours"),
        [
            ("NEW", S.SUBMITTED),
            ("PENDING_NEW", S.SUBMITTED),
            ("PARTIALLY_FILLED", S.PARTIALLY_FILLED),
            ("FILLED", S.FILLED),
            ("CANCELED", S.CANCELLED),
            ("REJECTED", S.REJECTED),
            ("EXPIRED", S.EXPIRED),
            ("EXPIRED_IN_MATCH", S.EXPIRED),
        ],
    )
    def test_mapping(self, binance: str, ours: OrderStatus) -> None:
        assert status_from_binance(binance) == ours

    def test_pending_cancel_is_ignored(self) -> None:
        assert status_from_binance("PENDING_CANCEL") is None

    def test_an_unheard_of_status_is_a_bad_payload(self) -> None:
        with pytest.raises(ApplicationError) as caught:
            status_from_binance("TELEPORTED")
        assert caught.value.code == ErrorCode.VENUE_BAD_PAYLOAD

    def test_an_ignored_status_changes_nothing_but_records_its_fill(self) -> None:
        before = snapshot(S.SUBMITTED)
        t = apply_update(before, update(None, "0.4", fills=(fill("t1"),)))
        assert t.ignored_reason is not None
        assert t.snapshot.status == S.SUBMITTED
        assert t.snapshot.filled_qty == D("0")
        assert [f.trade_id for f in t.new_fills] == ["t1"]


class TestForwardPath:
    def test_pending_to_submitted(self) -> None:
        t = apply_update(snapshot(), update(S.SUBMITTED, source=UpdateSource.PLACE))
        assert t.snapshot.status == S.SUBMITTED
        assert t.changed and t.status_changed
        assert t.ignored_reason is None
        assert t.new_fills == ()

    def test_submitted_to_partially_filled_to_filled(self) -> None:
        t1 = apply_update(snapshot(S.SUBMITTED), update(S.PARTIALLY_FILLED, "0.4", fills=(fill("t1"),)))
        assert t1.snapshot.status == S.PARTIALLY_FILLED
        assert t1.snapshot.filled_qty == D("0.4")
        assert t1.snapshot.cumulative_quote == D("40")
        assert t1.snapshot.trade_ids == frozenset({"t1"})

        t2 = apply_update(t1.snapshot, update(S.FILLED, "1", time_ms=1_001, fills=(fill("t2", "0.6"),)))
        assert t2.snapshot.status == S.FILLED
        assert t2.snapshot.filled_qty == D("1")
        assert t2.snapshot.update_time_ms == 1_001
        assert [f.trade_id for f in t2.new_fills] == ["t2"]
        assert t2.snapshot.trade_ids == frozenset({"t1", "t2"})

    def test_states_may_be_skipped_when_an_update_was_missed(self) -> None:
        t = apply_update(snapshot(S.PENDING), update(S.FILLED, "1", source=UpdateSource.POLL))
        assert t.snapshot.status == S.FILLED

    def test_more_fills_while_partially_filled_are_a_change(self) -> None:
        start = snapshot(S.PARTIALLY_FILLED, filled_qty=D("0.4"), cumulative_quote=D("40"), update_time_ms=1_000)
        t = apply_update(start, update(S.PARTIALLY_FILLED, "0.7", fills=(fill("t2", "0.3"),)))
        assert t.changed
        assert not t.status_changed
        assert t.snapshot.filled_qty == D("0.7")

    def test_several_reports_with_the_same_transaction_time_all_apply(self) -> None:
        # A taker order matching three makers: three reports, one transaction time.
        s = snapshot(S.SUBMITTED)
        for i, cumulative in enumerate(["0.2", "0.5", "1"], start=1):
            status = S.FILLED if cumulative == "1" else S.PARTIALLY_FILLED
            t = apply_update(s, update(status, cumulative, time_ms=5_000, fills=(fill(f"t{i}", "0.1"),)))
            assert t.ignored_reason is None
            s = t.snapshot
        assert s.status == S.FILLED
        assert s.trade_ids == frozenset({"t1", "t2", "t3"})

    @pytest.mark.parametrize("terminal", [S.CANCELLED, S.REJECTED, S.EXPIRED])
    def test_submitted_can_end_without_a_fill(self, terminal: OrderStatus) -> None:
        t = apply_update(snapshot(S.SUBMITTED), update(terminal))
        assert t.snapshot.status == terminal
        assert t.snapshot.filled_qty == D("0")

    def test_pending_can_be_rejected_outright(self) -> None:
        t = apply_update(snapshot(S.PENDING), update(S.REJECTED, time_ms=None, source=UpdateSource.PLACE))
        assert t.snapshot.status == S.REJECTED

    def test_an_identical_update_changes_nothing(self) -> None:
        start = snapshot(S.SUBMITTED, update_time_ms=1_000)
        t = apply_update(start, update(S.SUBMITTED))
        assert not t.changed
        assert t.snapshot == start
        assert t.ignored_reason is None


class TestPartialFillThenCancel:
    def test_cancel_after_a_partial_fill_keeps_the_fill(self) -> None:
        start = snapshot(
            S.PARTIALLY_FILLED,
            filled_qty=D("0.4"),
            cumulative_quote=D("40"),
            update_time_ms=1_000,
            trade_ids=frozenset({"t1"}),
        )
        t = apply_update(start, update(S.CANCELLED, "0.4", time_ms=2_000))
        assert t.snapshot.status == S.CANCELLED
        assert t.snapshot.filled_qty == D("0.4")
        assert t.snapshot.cumulative_quote == D("40")
        assert t.snapshot.trade_ids == frozenset({"t1"})

    def test_ioc_that_partly_fills_expires_with_its_fill(self) -> None:
        t = apply_update(snapshot(S.PENDING), update(S.EXPIRED, "0.3", fills=(fill("t1", "0.3"),)))
        assert t.snapshot.status == S.EXPIRED
        assert t.snapshot.filled_qty == D("0.3")
        assert len(t.new_fills) == 1


class TestTerminalStatesAreFinal:
    @pytest.mark.parametrize("terminal", [S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED])
    @pytest.mark.parametrize("later", [S.SUBMITTED, S.PARTIALLY_FILLED, S.CANCELLED, S.UNKNOWN, S.PENDING])
    def test_nothing_moves_a_terminal_order(self, terminal: OrderStatus, later: OrderStatus) -> None:
        start = snapshot(terminal, filled_qty=D("0"), update_time_ms=1_000)
        t = apply_update(start, update(later, time_ms=9_000))
        assert t.snapshot == start
        assert not t.changed
        assert t.ignored_reason == f"order is already {terminal}"

    def test_a_fill_that_arrives_after_the_final_status_is_still_recorded(self) -> None:
        # The poll saw FILLED first; the stream's last trade report comes after.
        start = snapshot(S.FILLED, filled_qty=D("1"), cumulative_quote=D("100"), trade_ids=frozenset({"t1"}))
        t = apply_update(start, update(S.FILLED, "1", fills=(fill("t2", "0.6"),)))
        assert [f.trade_id for f in t.new_fills] == ["t2"]
        assert t.changed
        assert t.snapshot.status == S.FILLED
        assert t.snapshot.trade_ids == frozenset({"t1", "t2"})


class TestOutOfOrder:
    def partly_filled(self) -> OrderSnapshot:
        return snapshot(
            S.PARTIALLY_FILLED,
            filled_qty=D("0.7"),
            cumulative_quote=D("70"),
            update_time_ms=2_000,
            trade_ids=frozenset({"t1", "t2"}),
        )

    def test_an_older_update_is_ignored(self) -> None:
        start = self.partly_filled()
        t = apply_update(start, update(S.PARTIALLY_FILLED, "0.9", time_ms=1_999))
        assert t.snapshot == start
        assert not t.changed
        assert t.ignored_reason is not None
        assert "out of order" in t.ignored_reason

    def test_a_lower_filled_quantity_is_ignored_even_without_times(self) -> None:
        start = snapshot(S.PARTIALLY_FILLED, filled_qty=D("0.7"), cumulative_quote=D("70"))
        t = apply_update(start, update(S.PARTIALLY_FILLED, "0.4", time_ms=None))
        assert t.snapshot.filled_qty == D("0.7")
        assert t.ignored_reason is not None

    def test_a_late_update_still_contributes_a_fill_not_yet_seen(self) -> None:
        start = self.partly_filled()
        t = apply_update(start, update(S.PARTIALLY_FILLED, "0.4", time_ms=1_500, fills=(fill("t0", "0.1"),)))
        assert t.ignored_reason is not None
        assert [f.trade_id for f in t.new_fills] == ["t0"]
        assert t.changed
        assert t.snapshot.filled_qty == D("0.7")
        assert t.snapshot.status == S.PARTIALLY_FILLED
        assert "t0" in t.snapshot.trade_ids

    def test_new_after_partially_filled_does_not_move_back(self) -> None:
        # The placement response (NEW) lands after the stream already reported fills.
        start = self.partly_filled()
        t = apply_update(start, update(S.SUBMITTED, "0", time_ms=None, source=UpdateSource.PLACE))
        assert t.snapshot == start
        assert t.ignored_reason is not None

    def test_a_lower_rank_with_the_same_quantity_is_ignored(self) -> None:
        start = snapshot(S.PARTIALLY_FILLED, filled_qty=D("0"), update_time_ms=1_000)
        t = apply_update(start, update(S.SUBMITTED, "0", time_ms=1_000))
        assert t.ignored_reason == "status would move backwards from PARTIALLY_FILLED to SUBMITTED"

    def test_the_update_time_never_goes_back(self) -> None:
        start = snapshot(S.SUBMITTED, update_time_ms=1_000)
        t = apply_update(start, update(S.PARTIALLY_FILLED, "0.1", time_ms=None))
        assert t.snapshot.update_time_ms == 1_000
        assert t.snapshot.status == S.PARTIALLY_FILLED

    def test_the_cumulative_quote_never_goes_back(self) -> None:
        start = snapshot(S.PARTIALLY_FILLED, filled_qty=D("0.5"), cumulative_quote=D("50.01"))
        t = apply_update(start, update(S.FILLED, "0.5", quote="50"))
        assert t.snapshot.status == S.FILLED
        assert t.snapshot.cumulative_quote == D("50.01")


class TestDuplicateTrades:
    def test_a_trade_already_recorded_is_not_returned_again(self) -> None:
        start = snapshot(S.PARTIALLY_FILLED, filled_qty=D("0.4"), trade_ids=frozenset({"t1"}))
        t = apply_update(start, update(S.PARTIALLY_FILLED, "0.4", fills=(fill("t1"),)))
        assert t.new_fills == ()

    def test_the_same_trade_twice_in_one_update_counts_once(self) -> None:
        t = apply_update(snapshot(S.SUBMITTED), update(S.PARTIALLY_FILLED, "0.4", fills=(fill("t1"), fill("t1"))))
        assert [f.trade_id for f in t.new_fills] == ["t1"]

    def test_stream_and_poll_reporting_the_same_trade_record_it_once(self) -> None:
        first = apply_update(snapshot(S.SUBMITTED), update(S.FILLED, "1", fills=(fill("t1", "1"),)))
        second = apply_update(first.snapshot, update(S.FILLED, "1", source=UpdateSource.POLL, fills=(fill("t1", "1"),)))
        assert second.new_fills == ()
        assert not second.changed


class TestUnknown:
    def test_an_ambiguous_placement_makes_a_pending_order_unknown(self) -> None:
        t = apply_update(snapshot(S.PENDING), update(S.UNKNOWN, time_ms=None, source=UpdateSource.PLACE))
        assert t.snapshot.status == S.UNKNOWN
        assert t.status_changed

    @pytest.mark.parametrize("status", [S.SUBMITTED, S.PARTIALLY_FILLED])
    def test_an_acknowledged_order_never_becomes_unknown(self, status: OrderStatus) -> None:
        start = snapshot(status)
        t = apply_update(start, update(S.UNKNOWN, time_ms=None, source=UpdateSource.PLACE))
        assert t.snapshot == start
        assert t.ignored_reason == f"UNKNOWN only follows PENDING, the order is {status}"

    @pytest.mark.parametrize(
        ("resolved", "filled"),
        [
            (S.SUBMITTED, "0"),
            (S.PARTIALLY_FILLED, "0.5"),
            (S.FILLED, "1"),
            (S.CANCELLED, "0"),
            (S.REJECTED, "0"),
            (S.EXPIRED, "0.2"),
        ],
    )
    def test_a_query_resolves_unknown_to_any_venue_status(self, resolved: OrderStatus, filled: str) -> None:
        t = apply_update(snapshot(S.UNKNOWN), update(resolved, filled, source=UpdateSource.POLL))
        assert t.snapshot.status == resolved
        assert t.snapshot.filled_qty == D(filled)

    def test_unknown_does_not_go_back_to_pending(self) -> None:
        t = apply_update(snapshot(S.UNKNOWN), update(S.PENDING))
        assert t.snapshot.status == S.UNKNOWN
        assert t.ignored_reason is not None


class TestMalformed:
    def test_filled_beyond_the_order_quantity_is_rejected(self) -> None:
        with pytest.raises(ApplicationError) as caught:
            apply_update(snapshot(S.SUBMITTED), update(S.FILLED, "1.00000001"))
        assert caught.value.code == ErrorCode.VENUE_BAD_PAYLOAD
        assert caught.value.detail["filled_qty"] == "1.00000001"

    def test_filled_exactly_the_order_quantity_is_fine(self) -> None:
        assert apply_update(snapshot(S.SUBMITTED), update(S.FILLED, "1")).snapshot.status == S.FILLED

    def test_overfill_is_rejected_even_on_a_terminal_order(self) -> None:
        with pytest.raises(ApplicationError):
            apply_update(snapshot(S.FILLED, filled_qty=D("1")), update(S.FILLED, "2"))

    def test_negative_quantities_are_rejected(self) -> None:
        with pytest.raises(ApplicationError):
            apply_update(snapshot(S.SUBMITTED), update(S.PARTIALLY_FILLED, "-0.1"))

    @pytest.mark.parametrize(("qty", "price"), [("0", "100"), ("0.1", "0"), ("1.5", "100")])
    def test_an_impossible_fill_is_rejected(self, qty: str, price: str) -> None:
        with pytest.raises(ApplicationError) as caught:
            apply_update(snapshot(S.SUBMITTED), update(S.PARTIALLY_FILLED, "0.1", fills=(fill("t1", qty, price),)))
        assert caught.value.code == ErrorCode.VENUE_BAD_PAYLOAD


def test_applying_an_update_leaves_the_input_snapshot_untouched() -> None:
    start = snapshot(S.SUBMITTED)
    apply_update(start, update(S.FILLED, "1", fills=(fill("t1", "1"),)))
    assert start == snapshot(S.SUBMITTED)
