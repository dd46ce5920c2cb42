"""Compare the fake's JSON with OKX's: same keys, same JSON types, numbers as strings."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
# The few JSON integers OKX sends; everything else numeric is a string.
INT_KEYS = frozenset({"seqId", "prevSeqId", "checksum", "instIdCode", "curPage"})


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "list"
    return "object"


def assert_same_shape(
    fake: Any,
    reference: Any,
    where: str,
    *,
    absent_ok: Iterable[str] = (),
    extra_ok: Iterable[str] = (),
) -> None:
    """Keys and JSON types of ``fake`` match ``reference`` recursively.

    ``absent_ok``: reference keys the fake may leave out; ``extra_ok``: fake keys this (older)
    reference lacks. A numeric string in the reference must be a numeric string (or "") in the fake.
    """
    absent, extra = set(absent_ok), set(extra_ok)
    if isinstance(reference, dict):
        assert isinstance(fake, dict), f"{where}: expected an object, got {fake!r}"
        missing = set(reference) - set(fake) - absent
        assert not missing, f"{where}: fake lacks {sorted(missing)}"
        unexpected = set(fake) - set(reference) - extra
        assert not unexpected, f"{where}: fake has keys OKX does not send here: {sorted(unexpected)}"
        for key in set(reference) & set(fake):
            assert_same_shape(fake[key], reference[key], f"{where}.{key}", absent_ok=absent, extra_ok=extra)
        return
    if isinstance(reference, list):
        assert isinstance(fake, list), f"{where}: expected a list, got {fake!r}"
        if reference and fake:
            assert_same_shape(fake[0], reference[0], f"{where}[0]", absent_ok=absent, extra_ok=extra)
        return
    assert json_type(fake) == json_type(reference), (
        f"{where}: fake {fake!r} is {json_type(fake)}, OKX sends {reference!r}"
    )
    if isinstance(reference, str) and NUMBER.match(reference):
        assert fake == "" or NUMBER.match(fake), f"{where}: {fake!r} should be a number as a string like {reference!r}"


def assert_numbers_are_strings(payload: Any, where: str = "payload") -> None:
    """No JSON number anywhere except OKX's few integer fields."""
    if isinstance(payload, dict):
        for key, value in payload.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                assert key in INT_KEYS, f"{where}.{key} is the number {value!r}; OKX sends a string"
            assert_numbers_are_strings(value, f"{where}.{key}")
    elif isinstance(payload, list):
        for index, value in enumerate(payload):
            assert not (isinstance(value, int | float) and not isinstance(value, bool)), f"{where}[{index}] is a number"
            assert_numbers_are_strings(value, f"{where}[{index}]")
