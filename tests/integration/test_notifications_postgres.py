"""The notifications service on PostgreSQL: claiming (FOR UPDATE SKIP LOCKED), webhooks, e-mail
jobs and the merchant outbox work there as on SQLite."""
import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from standardwebhooks.webhooks import Webhook

from services.notifications.service import NotificationsService
from tests.integration.test_notifications_kit import (
    Receiver,
    World,
    contract_created,
    contract_view,
    publish,
    start_neighbours,
)
from tests.support.cluster import wait_until
from tests.support.postgres import scratch_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url(pg_admin_url):
    with scratch_database(pg_admin_url) as url:
        yield url


def test_webhook_and_mail_on_postgres(start_service, rabbit_config, container_factory, pg_url,
                                      tmp_path):
    world = World()
    start_neighbours(container_factory, rabbit_config, world)
    start_service(NotificationsService, "notifications", DB_URL=pg_url,
                  MAIL_DIR=str(tmp_path / "mail"), WEBHOOKS_ALLOW_LOOPBACK="true",
                  WEBHOOKS_POLL_SECONDS=0.05, MAIL_POLL_SECONDS=0.05)
    receiver = Receiver()
    try:
        event = contract_created("m_pg_" + tmp_path.name[-8:])
        world.contracts[(event.merchant_id, event.aggregate_id)] = contract_view(event)
        with ServiceRpcProxy("notifications", rabbit_config, timeout=20) as rpc:
            endpoint = rpc.create_webhook_endpoint(event.merchant_id, {
                "url": receiver.url + "/hook", "event_types": ["ContractCreated"]})
            publish(rabbit_config["AMQP_URI"], event)

            request = wait_until(lambda: receiver.requests and receiver.requests[0],
                                 timeout=10, what="the webhook")
            assert Webhook(endpoint["secret"]).verify(request.body, request.headers)[
                "event_id"] == event.event_id
            mail = wait_until(lambda: [m for m in rpc.list_emails(event.merchant_id)["items"]
                                       if m["status"] == "sent"], timeout=10, what="the mail")
            assert mail[0]["kind"] == "welcome"
            assert len(list((tmp_path / "mail").glob("*.eml"))) == 1
    finally:
        receiver.close()
