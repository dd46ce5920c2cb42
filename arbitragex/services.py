"""Writes of the core app: SystemConfig values and the audit log."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.cache import cache
from django.db import transaction

from arbitragex import config, signals
from arbitragex.errors import ApplicationError
from arbitragex.models import AuditLog, SystemConfig

logger = logging.getLogger(__name__)

_snapshot: ContextVar[dict[str, Any] | None] = ContextVar("config_snapshot", default=None)


def audit_record(
    *,
    action: str,
    target: str = "",
    actor: AbstractBaseUser | AnonymousUser | None = None,
    actor_label: str = "",
    previous: Any = None,
    new: Any = None,
    note: str = "",
) -> AuditLog:
    """Write one audit row. Call it inside the transaction of the change it describes."""
    user: Any = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    label = actor_label or (user.get_username() if user is not None else "system")
    return AuditLog.objects.create(
        actor=user, actor_label=label, action=action, target=target, previous=previous, new=new, note=note
    )


def _parse_or_default(name: str, raw: Any) -> Any:
    spec = config.REGISTRY[name]
    try:
        return spec.parse(raw)
    except ApplicationError:
        # A row edited behind the registry's back must not stop trading decisions: use the default.
        logger.warning("SystemConfig %s holds an invalid value %r; using the default %r", name, raw, spec.default)
        return spec.default


def config_values() -> dict[str, Any]:
    """Every typed config value: stored ones over the registry defaults, cached until a save.

    Inside ``config_snapshot()`` the values read first are served again, without a cache round trip.
    """
    snapshot = _snapshot.get()
    if snapshot is not None:
        if not snapshot:
            snapshot.update(_config_values_read())
        return dict(snapshot)
    return _config_values_read()


@contextmanager
def config_snapshot() -> Iterator[None]:
    """One reading of the config for a unit of work (an opportunity from detection to its orders): read
    once on first use, the same values throughout, and one decision never mixes two configs."""
    token = _snapshot.set({})
    try:
        yield
    finally:
        _snapshot.reset(token)


def _config_values_read() -> dict[str, Any]:
    raw_values = cache.get(config.CACHE_KEY)
    if raw_values is None:
        stored = dict(SystemConfig.objects.values_list("key", "value"))
        raw_values = {name: stored.get(name, key.to_json(key.default)) for name, key in config.REGISTRY.items()}
        cache.set(config.CACHE_KEY, raw_values, timeout=config.CACHE_TTL)
    return {name: _parse_or_default(name, raw) for name, raw in raw_values.items() if name in config.REGISTRY}


def config_get(name: str) -> Any:
    config.get_key(name)
    return config_values()[name]


@transaction.atomic
def config_set(*, key: str, value: object, actor: AbstractBaseUser | AnonymousUser | None = None) -> Any:
    """Validate and store one value; refuses a bad value with INVALID_CONFIG and says what is allowed."""
    spec = config.get_key(key)
    typed = spec.parse(value)
    row = SystemConfig.objects.select_for_update().filter(key=key).first()
    previous = row.value if row is not None else spec.to_json(spec.default)
    if row is None:
        row = SystemConfig(key=key)
    row.value = spec.to_json(typed)
    if actor is not None and getattr(actor, "is_authenticated", False):
        row.updated_by = actor  # type: ignore[assignment]
    row.save()
    audit_record(action="config.set", target=key, actor=actor, previous=previous, new=row.value)
    signals.config_changed.send(sender=SystemConfig, key=key, previous=previous, value=row.value, actor=actor)
    transaction.on_commit(lambda: cache.delete(config.CACHE_KEY))
    return typed


@transaction.atomic
def config_seed_defaults() -> int:
    """Create the rows that do not exist yet with their defaults; never overwrites. Returns how many."""
    existing = set(SystemConfig.objects.values_list("key", flat=True))
    missing = [
        SystemConfig(key=name, value=spec.to_json(spec.default))
        for name, spec in config.REGISTRY.items()
        if name not in existing
    ]
    SystemConfig.objects.bulk_create(missing)
    transaction.on_commit(lambda: cache.delete(config.CACHE_KEY))
    return len(missing)
