"""The venue families by kind: the one way marketdata and trading reach a venue adapter.

Adding a family: write its package (``venues/<family>/``, see docs/venues.md) with a ``FAMILY`` record,
and add it to ``FAMILIES`` below.
"""

from __future__ import annotations

from venues import binance, ccxt, simulated
from venues.family import VenueFamily

__all__ = ["FAMILIES", "VenueKindUnknown", "families", "family_get", "family_register"]

FAMILIES: dict[str, VenueFamily] = {family.kind: family for family in (binance.FAMILY, ccxt.FAMILY, simulated.FAMILY)}


class VenueKindUnknown(LookupError):
    """No venue family serves this kind in this build."""


def family_get(kind: str) -> VenueFamily:
    try:
        return FAMILIES[kind]
    except KeyError:
        raise VenueKindUnknown(f"no venue family for kind {kind!r} (known: {', '.join(sorted(FAMILIES))})") from None


def families() -> list[VenueFamily]:
    return [FAMILIES[kind] for kind in sorted(FAMILIES)]


def family_register(family: VenueFamily) -> None:
    """Add (or replace) a family at run time: tests plug in fake ones this way."""
    FAMILIES[family.kind] = family
