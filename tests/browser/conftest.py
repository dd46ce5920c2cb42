"""The real platform for a browser: daphne serving ``config.asgi`` in a subprocess, on this
test's database and this suite's Redis, and a headless Chromium driven by Playwright.

pytest-django's ``live_server`` is a WSGI server without WebSockets, so the tests start daphne
instead. The server is another process, so it can only see rows that are committed: the tests use
``transactional_db``, and the subprocess is pointed at the test database, the same Redis (cache and
channel layer) and the same test configuration (``tests.processes``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, connections

from tests.processes import process_environment

CHROMIUM = os.environ.get("ARBX_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERVER_START_TIMEOUT_S = 45
PASSWORD = "a-long-browser-password-1"


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"Chromium is not installed at {CHROMIUM} (run `make browser` as root, or set ARBX_CHROMIUM)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return None


def server_environment() -> dict[str, str]:
    return process_environment(DEBUG="true", SERVE_STATIC="true", LOG_LEVEL="WARNING")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class AsgiServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _wait_until_serving(server: AsgiServer) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"daphne exited with {server.process.returncode}:\n{server.output()}")
        try:
            with urllib.request.urlopen(f"{server.url}/admin/login/", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    pytest.fail(f"daphne did not serve within {SERVER_START_TIMEOUT_S} s:\n{server.output()}")


@pytest.fixture
def asgi_server(transactional_db: Any, tmp_path: Path) -> Iterator[AsgiServer]:
    """daphne on a free port, serving HTTP and WebSockets from the test database."""
    reason = chromium_missing()
    if reason:
        pytest.skip(reason)
    env = server_environment()
    port = free_port()
    log = tmp_path / "daphne.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = AsgiServer(url=f"http://127.0.0.1:{port}", process=process, log=log)
    try:
        _wait_until_serving(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        _wait_for_server_sessions_to_end()


def _wait_for_server_sessions_to_end(timeout_s: float = 10) -> None:
    """PostgreSQL ends a dead client's sessions a moment after the process is gone; the test database
    cannot be flushed or dropped cleanly before that."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            (others,) = cursor.fetchone()
        if not others:
            return
        time.sleep(0.1)


@pytest.fixture
def page(asgi_server: AsgiServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A page of a fresh headless Chromium (never downloaded: the system's, at CHROMIUM)."""
    reason = chromium_missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop marked as running on this thread; the test's own ORM
    # calls are plain synchronous ones, which Django would otherwise refuse next to a running loop.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1440, "height": 1000}, base_url=asgi_server.url)
        context.set_default_timeout(15000)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.js_errors = errors  # type: ignore[attr-defined]
        try:
            yield page
        finally:
            context.close()
            browser.close()
            # The ORM calls made next to Playwright's loop got connections of their own (Django keeps
            # them per async context): close them here, or they outlive the test database.
            connections.close_all()


def log_in(page: Any, path: str, username: str) -> None:
    """Open ``path``, which sends an anonymous user to the admin login, and log in there."""
    page.goto(path)
    page.wait_for_url("**/admin/login/**")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"**{path}")


def screenshot_if_asked(page: Any, name: str) -> None:
    """With ``ARBX_WRITE_SCREENSHOT=1``, rewrite ``docs/<name>`` with the whole page as it is now (after
    the change highlights have faded): the README's pictures come from these tests' data."""
    if os.environ.get("ARBX_WRITE_SCREENSHOT") != "1":
        return
    page.wait_for_timeout(1200)  # the highlights' CSS animation; nothing to wait for but time
    path = Path(settings.BASE_DIR) / "docs" / name
    path.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(path), full_page=True)


def run_in_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``fn`` on another thread: this one has Playwright's event loop, and async_to_sync (the
    channel layer) refuses to run next to a running loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args, **kwargs).result(timeout=15)
