"""One database engine everywhere: the embedded default is a real PostgreSQL (and Redis), exact to the
18th decimal place, started by an explicit step and never left running behind a command.

The subprocess cases run ``manage.py`` as a user would, with none of this suite's configuration and a
data directory of their own, so they prove the embedded default whatever servers the suite runs on.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import psutil
import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Sum

from arbitragex import embedded
from risk.models import RiskState
from tests.processes import clean_environment, short_data_dir

EXACT = Decimal("12345678901234567.123456789012345678")  # 17 + 18 digits: more than a double keeps

WRITE_AND_READ_BACK = (
    "from decimal import Decimal; from django.db import connection; from risk.models import RiskState; "
    f"state = RiskState.objects.create(account='exact', initial_equity=Decimal('{EXACT}')); "
    "print(connection.vendor, connection.settings_dict['HOST'], RiskState.objects.get(pk=state.pk).initial_equity)"
)


@pytest.mark.django_db
def test_a_money_field_keeps_every_one_of_its_35_digits_through_the_orm():
    state = RiskState.objects.create(account="exact", initial_equity=EXACT, current_equity=EXACT)
    RiskState.objects.create(account="tiny", initial_equity=Decimal("0.000000000000000001"))

    stored = RiskState.objects.get(pk=state.pk)
    total = RiskState.objects.filter(account__in=["exact", "tiny"]).aggregate(total=Sum("initial_equity"))["total"]

    assert connection.vendor == "postgresql"
    assert stored.initial_equity == EXACT and str(stored.initial_equity) == str(EXACT)
    # Sums in the database are exact too, where a float sum would have lost the last places.
    assert total == Decimal("12345678901234567.123456789012345679")


@pytest.fixture
def fresh() -> Iterator[tuple[Path, dict[str, str]]]:
    """A data directory no process has used, and the environment of a user with no settings at all."""
    data_dir = short_data_dir()
    yield data_dir, clean_environment(data_dir)
    embedded.Servers(data_dir, postgres=True, redis=True).release()  # only if a failed test left them up
    shutil.rmtree(data_dir, ignore_errors=True)


def manage(env: dict[str, str], *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def servers_of(data_dir: Path) -> list[psutil.Process]:
    """The postgres and redis-server processes serving ``data_dir``."""
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if process.info["name"] in {"postgres", "redis-server"} and str(data_dir) in cmdline:
            found.append(process)
    return found


@pytest.mark.slow
def test_the_embedded_default_is_postgresql_exact_to_18_places_and_leaves_nothing_running(fresh):
    data_dir, env = fresh

    migrated = manage(env, "migrate", "-v0")
    written = manage(env, "shell", "-c", WRITE_AND_READ_BACK)

    assert migrated.returncode == 0, migrated.stderr
    assert written.returncode == 0, written.stderr
    vendor, host, value = written.stdout.strip().splitlines()[-1].split()
    assert vendor == "postgresql"
    assert Path(host) == embedded.postgres_socket_dir(data_dir)  # the bundled server, on its unix socket
    assert Decimal(value) == EXACT and value == str(EXACT)
    assert not [path for path in data_dir.rglob("*") if "sqlite" in path.name.lower()]
    # Each command started the servers it needed and stopped them when it ended.
    assert servers_of(data_dir) == []
    assert not (embedded.postgres_data_path(data_dir) / "postmaster.pid").exists()


def test_manage_py_check_creates_nothing_and_leaves_no_process_behind(tmp_path):
    data_dir = tmp_path / "data"
    env = clean_environment(data_dir)
    before = {process.pid for process in psutil.process_iter()}

    result = manage(env, "check")

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
    assert not data_dir.exists()
    # A server the command started would serve its data directory (others on this machine do not).
    assert [process for process in servers_of(data_dir) if process.pid not in before] == []


@pytest.mark.slow
def test_a_command_run_beside_another_user_reuses_the_servers_and_leaves_them_up(fresh):
    data_dir, env = fresh
    platform = embedded.Servers(data_dir, postgres=True, redis=True).acquire()  # as `make run` holds them
    try:
        assert sorted(platform.started) == ["postgresql", "redis"]
        pids = sorted(p.pid for p in servers_of(data_dir))

        result = manage(env, "shell", "-c", "from django.db import connection; connection.ensure_connection()")

        assert result.returncode == 0, result.stderr
        assert sorted(p.pid for p in servers_of(data_dir)) == pids  # reused, not restarted, still up
    finally:
        stopped = platform.release()
    assert stopped == ["redis", "postgresql"]
    assert servers_of(data_dir) == []


def test_a_data_directory_left_by_the_sqlite_version_gets_a_clear_message(fresh):
    data_dir, env = fresh
    data_dir.mkdir(exist_ok=True)
    (data_dir / "arbitragex.sqlite3").write_bytes(b"SQLite format 3\x00")

    result = manage(env, "migrate")

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "earlier ArbitrageX that kept its database in SQLite (arbitragex.sqlite3)" in result.stderr
    assert f"Delete those files (or the whole folder {data_dir}" in result.stderr
    assert servers_of(data_dir) == []


def test_a_user_that_died_without_releasing_is_pruned(fresh):
    data_dir, _ = fresh
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (data_dir / "servers.users").parent.mkdir(exist_ok=True)
    (data_dir / "servers.users").write_text(f"[{int(dead.stdout)}]")
    lease = embedded.Servers(data_dir, postgres=False, redis=True).acquire()

    stopped = lease.release()

    assert stopped == ["redis"]  # the dead user no longer keeps the server up
