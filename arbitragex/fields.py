"""Model fields for money and quantities: DECIMAL(36, 18) everywhere (see DESIGN.md, Data rules)."""

from __future__ import annotations

from typing import Any

from django.db import models

from arbitragex.money import DECIMAL_PLACES, MAX_DIGITS


class MoneyField(models.DecimalField):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", MAX_DIGITS)
        kwargs.setdefault("decimal_places", DECIMAL_PLACES)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        return name, path, args, kwargs
