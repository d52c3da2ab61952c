"""Merchant AMQP subscriptions: the consumer from docs/notifications.md, run with a merchant's
own RabbitMQ user (made by ``ops/amqp_users.py`` through the management API), gets its own
events and is refused another merchant's.
"""
import json
import os
import re
import signal
import sys
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlparse

import kombu
import pytest
from amqp.exceptions import AccessRefused, NotAllowed

from ops import amqp_users
from services.common.topology import MERCHANT_EVENTS_EXCHANGE
from services.notifications.service import NotificationsService
from tests.integration.test_notifications_kit import contract_ended, new_merchant_id, publish
from tests.support.cluster import wait_until

ROOT = Path(__file__).resolve().parents[2]


def documented_consumer() -> str:
    text = (ROOT / "docs" / "notifications.md").read_text()
    return re.search(r"```python\n(# merchant_consumer\.py.*?)```", text, re.S).group(1)


@pytest.fixture
def management(request):
    parts = urlparse(request.config.getoption("RABBIT_API_URI"))
    return amqp_users.ManagementApi(url=f"{parts.scheme}://{parts.hostname}:{parts.port}",
                                    user=parts.username or "guest",
                                    password=parts.password or "guest")


@pytest.fixture
def merchant_user(management, rabbit_config):
    made = []

    def make(merchant_id):
        settings = amqp_users.create_user(management, merchant_id,
                                          amqp_uri=rabbit_config["AMQP_URI"])
        made.append(merchant_id)
        return settings

    yield make
    for merchant_id in made:
        amqp_users.delete_user(management, merchant_id)


class Consumer:
    """The documented consumer as a process; its stdout lines are the events it printed.

    Its output goes to a file that is polled, and it is started with ``posix_spawn``: no pipe
    at all, because a green read on a pipe (even the one ``Popen`` reads the child's exec
    status from) can collide with a stale hub listener on the same, reused file descriptor."""

    def __init__(self, settings):
        env = {"PORTICO_AMQP_URI": settings["amqp_uri"],
               "PORTICO_MERCHANT_ID": settings["merchant_id"], "PATH": "/usr/bin:/bin"}
        self.out = tempfile.NamedTemporaryFile("w+", suffix=".out", delete=False)
        self.err = tempfile.NamedTemporaryFile("w+", suffix=".err", delete=False)
        self.pid = os.posix_spawn(sys.executable, [sys.executable, "-c", documented_consumer()],
                                  env, file_actions=[
                                      (os.POSIX_SPAWN_DUP2, self.out.fileno(), 1),
                                      (os.POSIX_SPAWN_DUP2, self.err.fileno(), 2)])
        self.exited = False
        wait_until(lambda: self._lines()[:1] == ["listening"] or self._died(), 30,
                   what="the consumer to listen")
        assert self._lines()[:1] == ["listening"], self.stderr()

    def _lines(self) -> list[str]:
        return Path(self.out.name).read_text().splitlines()

    def _died(self) -> bool:
        if not self.exited:
            self.exited = os.waitpid(self.pid, os.WNOHANG)[0] == self.pid
        return self.exited

    def read(self, count: int) -> list[dict]:
        def enough():
            return len(self._lines()) - 1 >= count or self._died()

        wait_until(enough, 30, what=f"{count} events from the consumer")
        events = [json.loads(line) for line in self._lines()[1:] if line.strip()]
        assert len(events) >= count, self.stderr()
        return events

    def stderr(self) -> str:
        return Path(self.err.name).read_text()

    def stop(self):
        if not self._died():
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        for handle in (self.out, self.err):
            handle.close()
            Path(handle.name).unlink(missing_ok=True)


def test_merchant_consumer_gets_only_its_own_events(start_service, rabbit_config,
                                                    merchant_user):
    start_service(NotificationsService, "notifications")
    mine, theirs = new_merchant_id(), new_merchant_id()
    settings = merchant_user(mine)
    merchant_user(theirs)
    assert settings["username"] == f"merchant-{mine}"
    assert settings["binding_key"] == f"{mine}.#"
    consumer = Consumer(settings)
    try:
        mixed = [contract_ended(mine if i % 3 == 0 else theirs) for i in range(12)]
        publish(rabbit_config["AMQP_URI"], *mixed)
        expected = [e.event_id for e in mixed if e.merchant_id == mine]

        got = consumer.read(len(expected))

        assert sorted(g["event_id"] for g in got) == sorted(expected)
        assert {g["type"] for g in got} == {"ContractEnded"}
        # nothing of the other merchant's follows: the next line is our next event
        last = contract_ended(mine)
        publish(rabbit_config["AMQP_URI"], contract_ended(theirs), last)
        assert consumer.read(len(expected) + 1)[-1]["event_id"] == last.event_id
    finally:
        consumer.stop()


def test_merchant_user_is_refused_other_merchants_and_everything_else(
        start_service, rabbit_config, merchant_user):
    start_service(NotificationsService, "notifications")
    mine, theirs = new_merchant_id(), new_merchant_id()
    settings = merchant_user(mine)
    exchange = kombu.Exchange(MERCHANT_EVENTS_EXCHANGE, type="topic", no_declare=True)

    def bind(routing_key, queue_name=f"merchant-{mine}.probe-{uuid.uuid4().hex[:6]}"):
        with kombu.Connection(settings["amqp_uri"]) as connection:
            channel = connection.channel()
            kombu.Queue(queue_name, exchange, routing_key=routing_key,
                        auto_delete=True)(channel).declare()

    bind(f"{mine}.#")  # its own prefix is fine
    bind(f"{mine}.InvoiceIssued")
    for key in (f"{theirs}.#", "#", "*.ContractEnded", f"{theirs}.ContractEnded", mine):
        with pytest.raises(AccessRefused):
            bind(key)
    with pytest.raises(AccessRefused):  # another merchant's queue name
        bind(f"{theirs}.#", queue_name=f"merchant-{theirs}.events")
    with kombu.Connection(settings["amqp_uri"]) as connection:  # and it cannot publish
        producer = connection.Producer(exchange=exchange)
        with pytest.raises((AccessRefused, NotAllowed)):
            producer.publish({"forged": True}, routing_key=f"{mine}.ContractEnded")
            connection.channel().basic_qos(0, 1, False)  # surfaces an async channel error


def test_cli_prints_the_connection_settings(management, rabbit_config, capsys, monkeypatch):
    from ops import cli
    merchant = new_merchant_id()
    monkeypatch.setenv("RABBITMQ_MANAGEMENT_URL", management.url)
    monkeypatch.setattr(cli, "amqp_uri", lambda: rabbit_config["AMQP_URI"])
    try:
        assert cli.main(["amqp-user", "create", "--merchant", merchant,
                         "--amqp-host", "mq.example.com"]) == 0
        printed = json.loads(capsys.readouterr().out)
        assert printed["host"] == "mq.example.com" and printed["exchange"] == \
            MERCHANT_EVENTS_EXCHANGE
        assert printed["amqp_uri"].startswith(f"amqp://merchant-{merchant}:")
        users = management.request("GET", f"/api/users/merchant-{merchant}").json()
        assert users["tags"] in ("", [])
    finally:
        assert cli.main(["amqp-user", "delete", "--merchant", merchant]) == 0
    assert cli.main(["amqp-user", "create", "--merchant", "a.b"]) == 1
