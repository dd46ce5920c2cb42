"""Database errors mapped to the original design's numeric codes (5000-5006)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from django.core.exceptions import ObjectDoesNotExist
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, transaction

from arbitragex.errors import ApplicationError, DatabaseUnavailable, ErrorCode

P = ParamSpec("P")
R = TypeVar("R")


def _is_unique_violation(exc: IntegrityError) -> bool:
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate == "23505"
    return "UNIQUE constraint failed" in str(exc)


@contextmanager
def db_errors(entity: str = "record") -> Iterator[None]:
    """Turn ORM exceptions raised inside the block into ApplicationError with a 5xxx code."""
    try:
        yield
    except ApplicationError:
        raise
    except ObjectDoesNotExist:
        raise ApplicationError(ErrorCode.DB_NOT_FOUND, f"{entity} not found") from None
    except IntegrityError as exc:
        if _is_unique_violation(exc):
            raise ApplicationError(ErrorCode.DB_DUPLICATE, f"{entity} already exists") from exc
        raise ApplicationError(ErrorCode.DB_UPDATE_FAILED, f"{entity} violates a constraint: {exc}") from exc
    except transaction.TransactionManagementError as exc:
        raise ApplicationError(ErrorCode.DB_TRANSACTION_FAILED, str(exc)) from exc
    except (OperationalError, InterfaceError) as exc:
        raise DatabaseUnavailable(f"{entity}: the database is unavailable: {exc}") from exc
    except DatabaseError as exc:
        raise ApplicationError(ErrorCode.DB_ERROR, f"database error: {exc}") from exc


def mapped_db_errors(entity: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    def decorator(fn: Callable[P, R]) -> Callable[P, R]:
        @wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with db_errors(entity):
                return fn(*args, **kwargs)

        return wrapper

    return decorator


def require_updated(count: int, entity: str, ident: Any) -> None:
    """An UPDATE that touched no row is the original design's 'update failed' (5003)."""
    if count == 0:
        raise ApplicationError(ErrorCode.DB_UPDATE_FAILED, f"{entity} {ident} was not updated", {"id": str(ident)})
