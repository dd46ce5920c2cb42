"""The REST API and the admin at 1,000,000 executions and 2,000,000 orders in PostgreSQL.

The rows live in a database of their own (``arbx_bench``; ``arbx_bench_quick`` with 100,000
executions for ``--quick``), created, migrated and filled by this benchmark with ``INSERT ...
SELECT generate_series`` the first time, and reused afterwards: a marker table records what was
seeded (and the moment the seeded history ends, so that a reused database is queried over the same
window). New migrations (an index) are applied to a reused database. Seeding time is reported, and
is not part of any figure. Then the statistics rollup (``trading.rollup``) is refreshed once, as beat
would have done by then, and its time is reported as ``rollup_seconds`` (with ``rollup_days`` examined
and ``rollup_rows`` written), apart from every latency: on a fresh or rebuilt history it rolls every
day up, on a reused one it finds nothing left to do.

The history: executions spread evenly over the year before the seed, 10 symbols, 3 venues, mostly
COMPLETED (90 %) with their actual profit, fees, and two orders each.

Requests go through Django's full stack in this process (``django.test.Client``: middleware, DRF
authentication with a token, throttling, filtering, serialization; the admin with a staff session),
against PostgreSQL with the connection pool, as a web process would run them, one at a time; no
HTTP server, so the figures are the application's. Measured, each after a warm-up:

- ``executions_first``: ``GET /api/v1/executions/`` (50 rows, newest first);
- ``executions_deep``: the same with a cursor half-way down the table (500,000 rows in);
- ``statistics``: ``GET /api/v1/executions/statistics/`` over the last 30 days of the history
  (``statistics_by_day`` with ``group_by=day``): its rolled-up days read from the rollup, the rest
  live (the partial days at its edges, days too recent to be rolled up, executions not final);
- ``admin_changelist``: ``/admin/trading/tradeexecution/`` (50 rows, capped count, filters, date
  hierarchy).

Each with p50/p99 latency, requests per second (sequential) and the SQL queries one request runs.
Baselines, same run: a bare ``SELECT 1`` round trip, and each endpoint's main query run as raw SQL on
the same connection (what the framework adds is the difference).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError

from bench._support import (
    FULL,
    Mode,
    database_create,
    database_exists,
    database_fresh,
    latency_summary,
    migrate,
    use_database,
)

TITLE = "REST API and admin at 1,000,000 executions / 2,000,000 orders (PostgreSQL)"

TARGET_P99_MS = 50.0
SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "LTCUSDT", "LINKUSDT",
           "DOTUSDT"]  # fmt: skip
HISTORY_DAYS = 365
WINDOW_DAYS = 30
API_USERS = 20
SEED_VERSION = 1


def run(mode: Mode = FULL) -> dict[str, Any]:
    executions = mode.pick(1_000_000, 100_000, 2_000)
    requests = mode.pick(1000, 300, 20)
    name = mode.database(mode.pick("arbx_bench", "arbx_bench_quick", "arbx_bench_tiny"))
    seed = _seed(name, executions)
    users = _users()
    figures: dict[str, Any] = {
        "database": name,
        "executions": seed["executions"],
        "orders": seed["orders"],
        "seed_seconds": seed["seconds"],
        "seeded_this_run": seed["seeded_this_run"],
        "requests_per_endpoint": requests,
    }
    end = seed["end"]
    start = end - timedelta(days=WINDOW_DAYS)
    figures["statistics_window_rows"] = _count_in_window(start, end)
    figures.update(_rollup_refresh())
    figures.update(_baselines(requests))
    for label, path, auth in _endpoints(start, end, executions):
        figures.update(_measure(label, path, auth, users, requests))
    for label in ("executions_first", "executions_deep", "statistics"):
        figures[f"meets_{label}_p99"] = figures[f"{label}_p99_ms"] < TARGET_P99_MS
    figures["meets_constant_queries"] = (
        figures["executions_first_queries"] == figures["executions_deep_queries"]
        and figures["statistics_queries"] == figures["statistics_by_day_queries"]
    )
    figures["target_p99_ms"] = TARGET_P99_MS
    return figures


# --- the database ----------------------------------------------------------------------------------


def _seed(name: str, executions: int) -> dict[str, Any]:
    """Create, migrate and fill ``name`` unless its marker says it holds ``executions`` already."""
    if not database_exists(name):
        database_create(name)
    use_database(name)
    try:
        migrate()
    except DatabaseError as exc:
        # Kept from a run of another version whose migrations differ: start it afresh.
        print(f"  the kept database {name} does not migrate ({exc}); recreating it", flush=True)
        database_fresh(name)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_seed (name text PRIMARY KEY, version int, executions bigint, "
            "orders bigint, history_end timestamptz, seconds double precision)"
        )
        cursor.execute("SELECT version, executions, orders, history_end, seconds FROM bench_seed WHERE name = 'api'")
        row = cursor.fetchone()
    if row is not None and row[0] == SEED_VERSION and row[1] == executions:
        return {"executions": row[1], "orders": row[2], "end": row[3], "seconds": round(row[4], 1),
                "seeded_this_run": False}  # fmt: skip
    started = time.perf_counter()
    end = _fill(executions)
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM trading_order")
        orders = cursor.fetchone()[0]
        cursor.execute("DELETE FROM bench_seed WHERE name = 'api'")
        cursor.execute(
            "INSERT INTO bench_seed VALUES ('api', %s, %s, %s, %s, %s)",
            [SEED_VERSION, executions, orders, end, seconds],
        )
    return {"executions": executions, "orders": orders, "end": end, "seconds": round(seconds, 1),
            "seeded_this_run": True}  # fmt: skip


def _fill(executions: int) -> datetime:
    """The history, written by the database itself (INSERT ... SELECT generate_series)."""
    from django.db import connection
    from django.utils import timezone

    from marketdata.models import Venue
    from trading.enums import AccountMode
    from trading.models import ExchangeAccount

    end = timezone.now().replace(microsecond=0)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE trading_fill, trading_order, trading_tradeexecution CASCADE")
    venues = []
    for code in ("bench-x", "bench-y", "bench-z"):
        venue, _ = Venue.objects.get_or_create(code=code, defaults={"name": code, "kind": Venue.Kind.BINANCE})
        venues.append(venue)
    accounts = [
        ExchangeAccount.objects.get_or_create(name=f"{venue.code}-main", defaults={"venue": venue,
                                              "mode": AccountMode.LIVE})[0]
        for venue in venues
    ]  # fmt: skip
    span_s = HISTORY_DAYS * 86_400
    params = {
        "n": executions,
        "end": end,
        "span_s": span_s,
        "symbols": SYMBOLS,
        "venues": [venue.pk for venue in venues],
        "accounts": [account.pk for account in accounts],
    }
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        cursor.execute("SELECT setseed(0.42)")
        # Rows in time order, so that ids (uuid7-like: the time in the first 48 bits) grow with it.
        cursor.execute(
            """
            INSERT INTO trading_tradeexecution (
                id, symbol, base_asset, quote_asset, buy_account_id, sell_account_id, buy_venue_id, sell_venue_id,
                buy_price, sell_price, quantity, expected_profit, actual_profit, fees_quote, profit_diff_fees,
                profit_diff_slippage, profit_diff_latency, residual_qty, status, leg_failure_policy, error_code,
                error_message, reserved_quote, reserved_base, is_manual, detected_at, started_at, submitted_at,
                acknowledged_at, filled_at, completed_at, updated_at)
            SELECT
                (lpad(to_hex((extract(epoch FROM t.started_at) * 1000)::bigint), 12, '0') || '7'
                 || substr(md5(t.i::text), 1, 3) || '8' || substr(md5(t.i::text), 4, 15))::uuid,
                t.symbol, replace(t.symbol, 'USDT', ''), 'USDT',
                (%(accounts)s::bigint[])[t.buy + 1], (%(accounts)s::bigint[])[t.sell + 1],
                (%(venues)s::bigint[])[t.buy + 1], (%(venues)s::bigint[])[t.sell + 1],
                t.price, round(t.price * 1.002, 2), t.qty, round(t.price * t.qty * 0.0005, 8),
                CASE t.status WHEN 'COMPLETED' THEN round(t.price * t.qty * (t.r2 - 0.3) * 0.002, 8)
                              WHEN 'FAILED' THEN 0 WHEN 'UNWOUND' THEN round(-t.price * t.qty * t.r2 * 0.001, 8) END,
                CASE WHEN t.status IN ('COMPLETED', 'UNWOUND') THEN round(t.price * t.qty * 0.002, 8) END,
                NULL, NULL, NULL, 0, t.status, 'unwind', NULL, '', 0, 0, t.i %% 50 = 0,
                t.started_at - interval '3 milliseconds', t.started_at, t.started_at + interval '2 milliseconds',
                t.started_at + interval '4 milliseconds', t.started_at + interval '5 milliseconds',
                CASE WHEN t.status IN ('PENDING', 'EXECUTING') THEN NULL ELSE t.started_at + interval '1 second' END,
                t.started_at + interval '1 second'
            FROM (
                SELECT i, s.started_at, (%(symbols)s::text[])[i %% 10 + 1] AS symbol,
                       (i / 10) %% 3 AS buy, ((i / 10) %% 3 + 1 + (i / 30) %% 2) %% 3 AS sell,
                       round((100 + random() * 60000)::numeric, 2) AS price,
                       round((0.001 + random())::numeric, 5) AS qty,
                       random()::numeric AS r2,
                       CASE WHEN s.started_at > %(end)s - interval '1 minute' THEN 'EXECUTING'
                            WHEN r < 0.90 THEN 'COMPLETED' WHEN r < 0.95 THEN 'FAILED'
                            WHEN r < 0.98 THEN 'UNWOUND' ELSE 'NEEDS_ATTENTION' END AS status
                FROM (SELECT i, random() AS r FROM generate_series(1, %(n)s) AS i) g,
                     LATERAL (SELECT %(end)s - (%(n)s - i) * (%(span_s)s::float8 / %(n)s) * interval '1 second'
                              AS started_at) s
            ) t
            ORDER BY t.started_at
            """,
            params,
        )
        cursor.execute(
            """
            INSERT INTO trading_order (
                execution_id, account_id, venue_id, leg, attempt, client_order_id, exchange_order_id, symbol, side,
                type, time_in_force, price, quantity, filled_qty, cumulative_quote, avg_price, fee_quote, status,
                last_update_ms, error_code, error_message, place_attempts, submitted_at, acknowledged_at, filled_at,
                created_at, updated_at)
            SELECT e.id,
                   CASE l.leg WHEN 'B' THEN e.buy_account_id ELSE e.sell_account_id END,
                   CASE l.leg WHEN 'B' THEN e.buy_venue_id ELSE e.sell_venue_id END,
                   l.leg, 0, replace(e.id::text, '-', '') || '-' || l.leg, '', e.symbol,
                   CASE l.leg WHEN 'B' THEN 'BUY' ELSE 'SELL' END, 'LIMIT', 'IOC',
                   CASE l.leg WHEN 'B' THEN e.buy_price ELSE e.sell_price END, e.quantity,
                   CASE WHEN e.status IN ('COMPLETED', 'UNWOUND') THEN e.quantity ELSE 0 END,
                   CASE WHEN e.status IN ('COMPLETED', 'UNWOUND')
                        THEN e.quantity * CASE l.leg WHEN 'B' THEN e.buy_price ELSE e.sell_price END ELSE 0 END,
                   CASE WHEN e.status IN ('COMPLETED', 'UNWOUND')
                        THEN CASE l.leg WHEN 'B' THEN e.buy_price ELSE e.sell_price END END,
                   coalesce(e.fees_quote / 2, 0),
                   CASE WHEN e.status IN ('PENDING', 'EXECUTING') THEN 'SUBMITTED'
                        WHEN e.status IN ('COMPLETED', 'UNWOUND') THEN 'FILLED' ELSE 'EXPIRED' END,
                   (extract(epoch FROM e.started_at) * 1000)::bigint, NULL, '', 1, e.submitted_at, e.acknowledged_at,
                   e.filled_at, e.started_at, e.updated_at
            FROM trading_tradeexecution e CROSS JOIN (VALUES ('B'), ('S')) AS l(leg)
            ORDER BY e.started_at, l.leg
            """
        )
        cursor.execute("RESET synchronous_commit")
    _vacuum()
    return end


def _vacuum() -> None:
    """VACUUM ANALYZE the tables (statistics for the planner, the visibility map for index-only scans)."""
    import psycopg
    from django.db import connection

    params = {key: value for key, value in connection.get_connection_params().items() if key in
              ("host", "port", "user", "password", "dbname")}  # fmt: skip
    with psycopg.connect(autocommit=True, **params) as conn:
        for table in ("trading_tradeexecution", "trading_order"):
            conn.execute(f"VACUUM ANALYZE {table}")


def _rollup_refresh() -> dict[str, Any]:
    """The statistics rollup as the hourly beat job keeps it: every day ended a day ago rolled up."""
    from trading.rollup import execution_rollups_refresh

    started = time.perf_counter()
    result = execution_rollups_refresh()
    return {
        "rollup_seconds": round(time.perf_counter() - started, 2),
        "rollup_days": result.days,
        "rollup_rows": result.rows,
    }


def _count_in_window(start: datetime, end: datetime) -> int:
    from trading.models import TradeExecution

    return TradeExecution.objects.filter(started_at__gte=start, started_at__lt=end).count()


def _users() -> dict[str, Any]:
    """An admin (session) and API users (tokens) in the benchmark database; the throttle counts per
    user, and one client making all the requests would be throttled at 6,000 a minute."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user_model = get_user_model()
    admin, _ = user_model.objects.get_or_create(username="bench-admin", defaults={"is_staff": True,
                                                                                 "is_superuser": True})  # fmt: skip
    tokens = []
    for number in range(API_USERS):
        user, _ = user_model.objects.get_or_create(username=f"bench-api-{number}")
        tokens.append(Token.objects.get_or_create(user=user)[0].key)
    return {"admin": admin, "tokens": tokens}


# --- the requests -----------------------------------------------------------------------------------


def _deep_cursor(offset: int) -> str:
    """The API's own cursor (see ``trading.api.pagination``) at the row ``offset`` rows down."""
    from trading.models import TradeExecution

    row = TradeExecution.objects.order_by("-started_at", "-id").values_list("started_at", "id")[offset]
    token = json.dumps({"k": [row[0].isoformat(), str(row[1])], "r": 0}, separators=(",", ":"))
    return base64.urlsafe_b64encode(token.encode()).decode()


def _endpoints(start: datetime, end: datetime, executions: int) -> list[tuple[str, str, str]]:
    from urllib.parse import urlencode

    window = urlencode({"start": start.isoformat(), "end": end.isoformat()})
    return [
        ("executions_first", "/api/v1/executions/", "token"),
        ("executions_deep", f"/api/v1/executions/?cursor={_deep_cursor(executions // 2)}", "token"),
        ("statistics", f"/api/v1/executions/statistics/?{window}", "token"),
        ("statistics_by_day", f"/api/v1/executions/statistics/?{window}&group_by=day", "token"),
        ("admin_changelist", "/admin/trading/tradeexecution/", "session"),
    ]


def _measure(label: str, path: str, auth: str, users: dict[str, Any], count: int) -> dict[str, Any]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    tokens = users["tokens"]
    if auth == "session":
        client.force_login(users["admin"])

    def request(number: int) -> Any:
        headers = {"HTTP_AUTHORIZATION": f"Token {tokens[number % len(tokens)]}"} if auth == "token" else {}
        response = client.get(path, **headers)
        if response.status_code != 200:
            raise RuntimeError(f"{label}: GET {path} answered {response.status_code}: {response.content[:300]!r}")
        return response

    for number in range(min(50, count)):
        request(number)
    with CaptureQueriesContext(connection) as capture:
        response = request(0)
    queries = list(capture.captured_queries)  # now: the connection's log does not outlive a reconnect
    body = response.json() if auth == "token" else {}
    latencies = []
    started = time.perf_counter()
    for number in range(count):
        begun = time.perf_counter()
        request(number)
        latencies.append((time.perf_counter() - begun) * 1000)
    elapsed = time.perf_counter() - started
    figures = {
        **latency_summary(latencies, f"{label}_"),
        f"{label}_requests_per_s": round(count / elapsed, 1),
        f"{label}_queries": len(queries),
    }
    if "results" in body:
        figures[f"{label}_rows"] = len(body["results"])
    main_sql = max(queries, key=lambda q: float(q.get("time") or 0))["sql"]
    figures[f"{label}_raw_sql_p50_ms"] = _raw_sql_p50(main_sql, min(count, 200))
    return figures


def _raw_sql_p50(sql: str, count: int) -> float:
    """The request's slowest query alone, as raw SQL on the same connection."""
    from django.db import connection

    def run_once() -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            cursor.fetchall()

    return latency_summary(_times(run_once, count))["p50_ms"]


def _times(fn: Callable[[], Any], count: int) -> list[float]:
    for _ in range(min(20, count)):
        fn()
    result = []
    for _ in range(count):
        begun = time.perf_counter()
        fn()
        result.append((time.perf_counter() - begun) * 1000)
    return result


def _baselines(count: int) -> dict[str, Any]:
    from django.db import connection

    def select_one() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    return latency_summary(_times(select_one, count * 2), "baseline_select_1_")
