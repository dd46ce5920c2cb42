"""The API's fast read paths write exactly what DRF's own fields and serializers write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from rest_framework import serializers

from arbitragex.views import PlainDecimalField, ReadFastSerializerMixin, UTCDateTimeField

MOMENTS = [
    datetime(2024, 8, 8, 10, 0, tzinfo=UTC),
    datetime(2024, 8, 8, 10, 0, 0, 123456, tzinfo=UTC),
    datetime(2024, 8, 8, 23, 30, 1, 5, tzinfo=timezone(timedelta(hours=-5))),  # another offset: shown in UTC
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]


@pytest.mark.parametrize("moment", MOMENTS, ids=str)
def test_a_timestamp_is_written_as_drf_writes_it(moment):
    assert UTCDateTimeField().to_representation(moment) == serializers.DateTimeField().to_representation(moment)


def test_an_explicit_format_and_empty_values_go_through_drf():
    moment = MOMENTS[1]

    assert UTCDateTimeField(format="%Y-%m-%d").to_representation(moment) == "2024-08-08"
    assert UTCDateTimeField().to_representation(None) is None
    assert UTCDateTimeField().to_representation("") is None


class _Row:
    def __init__(self, **values):
        self.__dict__.update(values)

    def shout(self):
        return self.name.upper()


class _Plain(serializers.Serializer):
    name = serializers.CharField()
    amount = PlainDecimalField()
    at = serializers.DateTimeField()
    note = serializers.CharField(allow_null=True)
    secret = serializers.CharField(write_only=True)
    label = serializers.CharField(source="shout")


class _Fast(ReadFastSerializerMixin, _Plain):
    pass


def test_the_fast_serializer_writes_what_drf_writes_row_for_row():
    rows = [
        _Row(name="a", amount=Decimal("0.000000000000000001"), at=MOMENTS[0], note=None, secret="s1"),
        _Row(name="b", amount=Decimal("-12.5"), at=MOMENTS[2], note="n", secret="s2"),
    ]

    fast, plain = _Fast(rows, many=True).data, _Plain(rows, many=True).data

    assert fast == plain
    assert fast[0] == {"name": "a", "amount": "0.000000000000000001", "at": "2024-08-08T10:00:00Z", "note": None,
                       "label": "A"}  # fmt: skip
    assert "secret" not in fast[1]
