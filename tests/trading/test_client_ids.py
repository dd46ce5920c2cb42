"""Deterministic client order ids, and time-ordered UUIDs."""

from __future__ import annotations

import uuid

import pytest

from trading.client_ids import (
    BINANCE_CLIENT_ID_PATTERN,
    CLIENT_ID_PREFIX,
    MAX_ATTEMPT,
    client_order_id,
    parse_client_order_id,
    uuid7,
    uuid7_unix_ms,
)
from trading.enums import OrderLeg

EXECUTION = uuid.UUID("0190a7b2-3c4d-7e5f-8a6b-7c8d9e0f1a2b")


class TestClientOrderId:
    def test_layout(self) -> None:
        value = client_order_id(EXECUTION, OrderLeg.BUY)
        assert value == "ax-agikpmr4jv7f7ctlpsgz4dy2fm-B"
        assert value.startswith(CLIENT_ID_PREFIX)
        assert len(value) == 31

    def test_the_same_execution_and_leg_always_give_the_same_id(self) -> None:
        assert client_order_id(EXECUTION, "S") == client_order_id(uuid.UUID(str(EXECUTION)), OrderLeg.SELL)

    def test_legs_and_attempts_give_distinct_ids(self) -> None:
        ids = {client_order_id(EXECUTION, leg) for leg in OrderLeg}
        ids |= {client_order_id(EXECUTION, OrderLeg.UNWIND, n) for n in (1, 2)}
        assert len(ids) == len(OrderLeg) + 2

    def test_attempt_zero_has_no_suffix_and_later_attempts_do(self) -> None:
        assert client_order_id(EXECUTION, OrderLeg.RETRY, 0).endswith("-R")
        assert client_order_id(EXECUTION, OrderLeg.RETRY, 12).endswith("-R12")

    @pytest.mark.parametrize("attempt", [0, 1, MAX_ATTEMPT])
    @pytest.mark.parametrize("leg", list(OrderLeg))
    def test_every_id_satisfies_binance(self, leg: OrderLeg, attempt: int) -> None:
        for execution_id in (EXECUTION, uuid.UUID(int=0), uuid.UUID(int=(1 << 128) - 1), uuid7()):
            value = client_order_id(execution_id, leg, attempt)
            assert len(value) <= 36
            assert BINANCE_CLIENT_ID_PATTERN.fullmatch(value)

    @pytest.mark.parametrize("attempt", [-1, MAX_ATTEMPT + 1])
    def test_attempts_outside_the_range_are_refused(self, attempt: int) -> None:
        with pytest.raises(ValueError, match="attempt"):
            client_order_id(EXECUTION, OrderLeg.UNWIND, attempt)

    @pytest.mark.parametrize("leg", ["X", "b", "BUY", ""])
    def test_unknown_legs_are_refused(self, leg: str) -> None:
        with pytest.raises(ValueError, match="leg"):
            client_order_id(EXECUTION, leg)


class TestParse:
    @pytest.mark.parametrize("attempt", [0, 1, 7, 42, MAX_ATTEMPT])
    @pytest.mark.parametrize("leg", list(OrderLeg))
    def test_round_trip(self, leg: OrderLeg, attempt: int) -> None:
        execution_id = uuid7()
        parsed = parse_client_order_id(client_order_id(execution_id, leg, attempt))
        assert parsed == (execution_id, leg, attempt)
        assert parsed is not None
        assert parsed.execution_id == execution_id
        assert parsed.leg is leg

    @pytest.mark.parametrize(
        "value",
        [
            "web_a1b2c3d4e5f6",  # placed on the venue's website
            "and_1234567890abcdef",  # placed from the app
            "x-abcdef",
            "",
            "ax-",
            "ax-agikpmr4jv7f7ctlpsgz4dy2fm",  # no leg
            "ax-agikpmr4jv7f7ctlpsgz4dy2fm-X",  # unknown leg
            "ax-agikpmr4jv7f7ctlpsgz4dy2fm-b",  # lowercase leg
            "ax-agikpmr4jv7f7ctlpsgz4dy2fm-U0",  # attempt zero is written without a suffix
            "ax-agikpmr4jv7f7ctlpsgz4dy2fm-U01",  # leading zero
            "ax-agikpmr4jv7f7ctlpsgz4dy2fm-U123456",  # too long for an attempt
            "ax-AGIKPMR4JV7F7CTLPTGZ4DY2FM-B",  # uppercase base32
            "ax-agikpmr4jv7f7ctlpsgz4dy2f-B",  # 25 characters
            "ax-agikpmr4jv7f7ctlpsgz4dy2fm1-B",  # 27 characters, and 1 is not base32
            "ax-agikpmr4jv7f7ctlpsgz4dy2fn-B",  # non-zero padding bits: an alias, not ours
            "ax-agikpmr4jv7f7ctlpsgz4dy2fm-B\n",
        ],
    )
    def test_ids_that_are_not_ours_parse_to_none(self, value: str) -> None:
        assert parse_client_order_id(value) is None

    def test_the_known_id_parses(self) -> None:
        assert parse_client_order_id("ax-agikpmr4jv7f7ctlpsgz4dy2fm-B") == (EXECUTION, OrderLeg.BUY, 0)


class TestUuid7:
    def test_version_and_variant(self) -> None:
        value = uuid7()
        assert value.version == 7
        assert value.variant == uuid.RFC_4122

    def test_carries_the_millisecond_timestamp(self) -> None:
        assert uuid7_unix_ms(uuid7(unix_ms=1_735_820_400_123)) == 1_735_820_400_123

    def test_sorts_by_time_across_milliseconds(self) -> None:
        earlier = uuid7(unix_ms=1_735_820_400_000)
        later = uuid7(unix_ms=1_735_820_400_001)
        assert earlier < later
        assert str(earlier) < str(later)

    def test_ids_in_the_same_millisecond_do_not_collide(self) -> None:
        ids = {uuid7(unix_ms=1_735_820_400_000) for _ in range(10_000)}
        assert len(ids) == 10_000

    def test_the_clock_is_used_by_default(self) -> None:
        import time

        before = time.time_ns() // 1_000_000
        stamp = uuid7_unix_ms(uuid7())
        after = time.time_ns() // 1_000_000
        assert before <= stamp <= after

    @pytest.mark.parametrize("unix_ms", [-1, 1 << 48])
    def test_timestamps_outside_48_bits_are_refused(self, unix_ms: int) -> None:
        with pytest.raises(ValueError, match="48 bits"):
            uuid7(unix_ms=unix_ms)

    def test_only_version_7_has_a_timestamp(self) -> None:
        with pytest.raises(ValueError, match="version 7"):
            uuid7_unix_ms(uuid.uuid4())
