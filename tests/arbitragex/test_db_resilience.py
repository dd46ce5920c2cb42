"""PostgreSQL restarts are routine: pooled connections are checked before use, and every wait on the
database is bounded (statement, row lock, idle in transaction)."""

from __future__ import annotations

import psycopg
import pytest
from django.db.utils import ConnectionHandler

from arbitragex.settings import database
from tests.processes import the_test_database_url

pytestmark = pytest.mark.django_db(transaction=True)


def _admin(db: dict) -> psycopg.Connection:
    params = {"host": db["HOST"] or "127.0.0.1", "user": db["USER"], "dbname": db["NAME"], "autocommit": True}
    if db.get("PORT"):
        params["port"] = db["PORT"]
    if db.get("PASSWORD"):
        params["password"] = db["PASSWORD"]
    return psycopg.connect(**params)


def test_a_pooled_connection_the_server_ended_is_replaced_before_use():
    """What the production configuration does (``DATABASE_POOL`` on), on the test database."""
    handler = ConnectionHandler({"default": database(the_test_database_url(), pool=True, pool_max=2)})
    pooled = handler["default"]
    try:
        pooled.ensure_connection()
        first = pooled.connection.info.backend_pid
        pooled.close()  # back to the pool, idle
        with _admin(pooled.settings_dict) as admin:  # the server ends it, as a restart ends them all
            admin.execute("SELECT pg_terminate_backend(%s)", [first])

        with pooled.cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)
        assert pooled.connection.info.backend_pid != first
    finally:
        pooled.close()
        pooled.close_pool()


def test_every_wait_on_the_database_is_bounded():
    handler = ConnectionHandler({"default": database(the_test_database_url(), pool=False, pool_max=0)})
    connection = handler["default"]
    try:
        with connection.cursor() as cursor:
            shown = {}
            for name in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"):
                cursor.execute(f"SHOW {name}")
                shown[name] = cursor.fetchone()[0]
    finally:
        connection.close()

    assert shown == {"statement_timeout": "2min", "lock_timeout": "10s", "idle_in_transaction_session_timeout": "30s"}
