"""CI smoke test of the embedded default, as a new user meets it: ``make run`` in a fresh clone, with none
of CI's environment (no DATABASE_URL, no REDIS_URL).

It checks that the platform starts, that /healthz reports PostgreSQL and Redis, that a paper execution
completes, and that SIGTERM stops every process, both embedded servers included. Standard library only:
it runs before the clone has a virtualenv. Exits non-zero, saying why, on any failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 420  # a fresh virtualenv with the runtime dependencies, then initdb and migrations
HEALTHY_TIMEOUT_S = 90
EXECUTION_TIMEOUT_S = 240
STOP_TIMEOUT_S = 40


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def user_environment(port: int) -> dict[str, str]:
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "TERM", "USER", "LOGNAME", "SHELL", "TMPDIR", "PIP_CACHE_DIR",
            "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "XDG_CACHE_HOME"}  # fmt: skip
    env = {name: value for name, value in os.environ.items() if name in keep}
    env.update(PORT=str(port), PYTHONUNBUFFERED="1")
    return env


class Output:
    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self.process = process
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.text(), re.MULTILINE)
            if match:
                return match
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        fail(f"{pattern!r} not printed within {timeout} s", self)
        raise AssertionError  # unreachable


def fail(why: str, output: Output | None = None) -> None:
    if output is not None:
        sys.stderr.write(output.text()[-6000:] + "\n")
    sys.stderr.write(f"smoke: FAILED: {why}\n")
    raise SystemExit(1)


def http(method: str, url: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def pids_of_clone(clone: Path) -> dict[int, str]:
    """Every process whose command line or working directory is inside the clone (the servers too)."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(proc / "cwd")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and (str(clone) in cmdline or cwd.startswith(str(clone))):
            found[int(proc.name)] = cmdline.strip()[:160]
    return found


def main() -> int:
    started = time.monotonic()
    # Beside this checkout, as any clone would be: ../shared (the recorded market data) is found the same way.
    clone = workdir = Path(tempfile.mkdtemp(prefix=".smoke-", dir=REPO.parent))
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)  # noqa: S603, S607
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    make = subprocess.Popen(
        ["make", "run"],  # noqa: S607 (make from the PATH, as a user runs it)
        cwd=clone, env=user_environment(port), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    output = Output(make)
    try:
        banner = output.wait_for(r"^\s+database\s+(PostgreSQL [\d.]+ .*)$", START_TIMEOUT_S)
        if "(embedded, pgserver)" not in banner[1]:
            fail(f"the banner does not name the embedded PostgreSQL: {banner[1]!r}", output)
        login = output.wait_for(r"^\s+login\s+(\S+) / (\S+)", START_TIMEOUT_S)
        print(f"smoke: started in {time.monotonic() - started:.0f} s: {banner[1]}", flush=True)

        health: dict = {}
        deadline = time.monotonic() + HEALTHY_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                status, health = http("GET", f"{base}/healthz")
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(1)
        else:
            fail(f"/healthz not 200 within {HEALTHY_TIMEOUT_S} s: {health}", output)
        checks = health["checks"]
        if checks["database"].get("vendor") != "postgresql" or not checks["redis"]["ok"]:
            fail(f"/healthz does not report PostgreSQL and Redis: {checks}", output)
        print(f"smoke: /healthz: database {checks['database']['vendor']}, redis ok, workers "
              f"{checks['celery'].get('workers')}", flush=True)  # fmt: skip

        status, body = http("POST", f"{base}/api/v1/auth/token/", {"username": login[1], "password": login[2]})
        if status != 200:
            fail(f"no token for the printed login: {status} {body}", output)
        token = body["token"]
        deadline = time.monotonic() + EXECUTION_TIMEOUT_S
        completed: list = []
        while time.monotonic() < deadline and not completed:
            status, body = http("GET", f"{base}/api/v1/executions/?status=COMPLETED&limit=5", token=token)
            completed = body.get("results", []) if status == 200 else []
            time.sleep(2)
        if not completed:
            fail(f"no paper execution COMPLETED within {EXECUTION_TIMEOUT_S} s", output)
        first = completed[0]
        print(f"smoke: execution {first['id']} COMPLETED, actual profit {first.get('actual_profit')}", flush=True)

        processes = pids_of_clone(clone)
        servers = {pid: cmd for pid, cmd in processes.items() if "postgres" in cmd or "redis-server" in cmd}
        if not servers:
            fail(f"no embedded server process found among {processes}", output)
        run = [pid for pid, cmd in processes.items() if "manage.py run" in cmd]
        if len(run) != 1:
            fail(f"expected one `manage.py run` process, found {run}", output)
        os.kill(run[0], signal.SIGTERM)
        try:
            returncode = make.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            fail(f"make run did not exit within {STOP_TIMEOUT_S} s of SIGTERM", output)
        if returncode != 0:
            fail(f"make run exited with {returncode} after SIGTERM", output)
        time.sleep(1)
        left = pids_of_clone(clone)
        if left:
            fail(f"processes still running after SIGTERM: {left}", output)
        print(f"smoke: SIGTERM stopped all {len(processes)} processes, the {len(servers)} server processes "
              f"included; {time.monotonic() - started:.0f} s in all", flush=True)  # fmt: skip
        return 0
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
        for pid in pids_of_clone(clone):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
