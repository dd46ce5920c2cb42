"""Decimal helpers: strict parsing (no float ever), rounding to venue steps, plain formatting."""

from __future__ import annotations

from decimal import Decimal

import pytest

from arbitragex import money
from arbitragex.money import InvalidAmount, fmt, quantize_down, quantize_up, to_decimal, to_non_negative, to_positive

D = Decimal


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0.00012345", D("0.00012345")), (" 42.5 ", D("42.5")), (7, D(7)), (D("-3.1"), D("-3.1")),
     ("1e-18", D("1e-18")), ("999999999999999999.999999999999999999", D("999999999999999999.999999999999999999"))],
)  # fmt: skip
def test_to_decimal_accepts_text_ints_and_decimals_exactly(raw, expected):
    value = to_decimal(raw)
    assert value == expected and isinstance(value, Decimal)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (0.1, "float is not accepted"),
        (1.0, "float is not accepted"),
        (True, "bool is not accepted"),
        (False, "bool is not accepted"),
        ("NaN", "not finite"),
        ("sNaN", "not finite"),
        (D("NaN"), "not finite"),
        ("inf", "not finite"),
        ("-Infinity", "not finite"),
        ("1000000000000000000", "too large"),  # 10**18 does not fit DECIMAL(36, 18)
        ("-1e18", "too large"),
        (10**30, "too large"),
        ("1e-31", "too small"),  # far below the 18 stored places: would only overflow later divisions
        ("1" * 65, "not a decimal number"),
        ("", "not a decimal number"),
        ("   ", "not a decimal number"),
        ("12,5", "not a decimal number"),
        ("0x10", "not a decimal number"),
        (None, "NoneType is not a decimal number"),
        ([1], "list is not a decimal number"),
    ],
)
def test_to_decimal_refuses_what_cannot_be_an_amount(raw, why):
    with pytest.raises(InvalidAmount, match=why) as exc:
        to_decimal(raw, field="price")
    assert str(exc.value).startswith("price: ")
    assert isinstance(exc.value, ValueError)


def test_to_positive_and_to_non_negative_check_the_sign():
    assert to_positive("0.1") == D("0.1")
    assert to_non_negative("0") == 0
    with pytest.raises(InvalidAmount, match="qty: must be greater than zero"):
        to_positive("0", field="qty")
    with pytest.raises(InvalidAmount, match="fee: must not be negative"):
        to_non_negative("-0.000001", field="fee")


@pytest.mark.parametrize(
    ("value", "step", "down", "up"),
    [
        (D("0.123456789"), D("0.00001"), D("0.12345"), D("0.12346")),
        (D("50123.456"), D("0.01"), D("50123.45"), D("50123.46")),
        (D("50123.45"), D("0.01"), D("50123.45"), D("50123.45")),  # already on a step
        (D("7.3"), D("0.5"), D("7.0"), D("7.5")),
        (D("1234"), D("10"), D("1230"), D("1240")),
        (D("-1.25"), D("0.1"), D("-1.2"), D("-1.3")),  # toward and away from zero
        (D("0.00000999"), D("0.00001"), D("0.00000"), D("0.00001")),
    ],
)
def test_quantize_rounds_to_a_multiple_of_the_step(value, step, down, up):
    rounded_down, rounded_up = quantize_down(value, step), quantize_up(value, step)

    assert (rounded_down, rounded_up) == (down, up)
    assert rounded_down % step == 0 and rounded_up % step == 0


def test_quantize_keeps_the_exponent_of_the_step_for_venue_payloads():
    assert str(quantize_down(D("0.1"), D("0.00100000"))) == "0.100"
    assert str(quantize_up(D("3"), D("0.01"))) == "3.00"


def test_a_zero_step_means_no_filter():
    assert quantize_down(D("1.23456"), D(0)) == D("1.23456")
    assert quantize_up(D("1.23456"), D(0)) == D("1.23456")


def test_to_storage_rounds_half_even_to_eighteen_places():
    assert money.to_storage(D("0.0000000000000000005")) == D("0")
    assert money.to_storage(D("0.0000000000000000015")) == D("0.000000000000000002")
    assert money.to_storage(D(1) / D(3)) == D("0.333333333333333333")


@pytest.mark.parametrize(
    ("value", "text"),
    [(D("1.500000"), "1.5"), (D("100"), "100"), (D("1E+3"), "1000"), (D("0.00000001"), "0.00000001"),
     (D("0E-18"), "0"), (D("-0.0"), "0"), (D("-2.50"), "-2.5"), (None, None)],
)  # fmt: skip
def test_fmt_writes_plain_decimals_without_exponent_or_trailing_zeros(value, text):
    assert fmt(value) == text
