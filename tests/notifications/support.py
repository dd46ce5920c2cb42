"""A local HTTP receiver for Apprise's ``json://`` channel, and helpers that drive the pipeline.

Apprise posts ``{"version", "title", "message", "attachments", "type"}`` to ``http://host:port/path`` for a
``json://host:port/path`` URL. The receiver runs ``http.server`` in a thread, records every request, and
answers with the status it is told to (``fail_with``), or not at all while stopped.
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.contrib.auth import get_user_model

from notifications import services
from notifications.events import Severity
from notifications.models import Channel, Delivery, Event, Rule, Throttle

# A token in the channel URL's path: it must never show up where an operator or a log could read it.
SECRET_TOKEN = "hk-" + secrets.token_hex(16)


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    title: str
    message: str
    type: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Receiver:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.messages: list[Received] = []
        self.requests = 0
        self.fail_with: int | None = None
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hooks/{SECRET_TOKEN}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                payload: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
                with receiver._lock:
                    receiver.requests += 1
                    status = receiver.fail_with
                    if status is None:
                        receiver.messages.append(
                            Received(self.path, payload.get("title", ""), payload.get("message", ""),
                                     payload.get("type", ""))
                        )  # fmt: skip
                self.send_response(status or 200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.messages) >= count:
                return list(self.messages)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} message(s), got {len(self.messages)}: {self.messages}")


def staff_user(username: str = "ops") -> Any:
    return get_user_model().objects.create_user(
        username=username, password="a-long-ops-password-1", is_staff=True, is_superuser=True
    )


def channel_with_rule(
    receiver: Receiver, *, kinds: list[str] | None = None, min_severity: str = Severity.INFO, name: str = "desk"
) -> Channel:
    channel = services.channel_create(name=name, url=receiver.url)
    rule = Rule.objects.create(name=f"{name} rule", kinds=kinds or [], min_severity=min_severity)
    rule.channels.add(channel)
    return channel


def drain(*, now: Any = None, final: bool = False) -> None:
    """What a worker would do with the tasks enqueued after commit: dispatch the new events, then attempt
    each pending delivery once. (In a test transaction nothing commits, so nothing is enqueued.)"""
    for event_id in Event.objects.filter(status=Event.Status.NEW).order_by("pk").values_list("pk", flat=True):
        services.event_dispatch(event_id=event_id, now=now)
    for delivery_id in (
        Delivery.objects.filter(status=Delivery.Status.PENDING).order_by("pk").values_list("pk", flat=True)
    ):
        services.delivery_send(delivery_id=delivery_id, final=final, retry_in_s=0)


def flush(key: str, *, now: Any) -> str:
    throttle = Throttle.objects.get(key=key)
    return services.throttle_flush(key=key, token=throttle.flush_token, now=now)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
