"""A parked message goes back to its queue with ``portico dead-letters replay``."""
import json

import kombu

from ops import dead_letters
from services.common import topology
from services.common.entrypoints import ATTEMPTS_HEADER, ERROR_HEADER


def test_replay_moves_dead_letters_back_to_their_queue(rabbit_config):
    uri = rabbit_config["AMQP_URI"]
    topology.declare_all(uri)
    queue_name = topology.consumer_queue_name("OrderSubmitted", "portal",
                                              "handle_order_submitted")
    with kombu.Connection(uri) as conn:
        conn.Producer().publish(
            json.dumps({"hello": "again"}), exchange=topology.DEAD_LETTER_EXCHANGE,
            routing_key=queue_name, content_type="application/json", retry=True,
            headers={"x-portico-queue": queue_name, ERROR_HEADER: "boom", ATTEMPTS_HEADER: 5})

    listed = dead_letters.peek(uri)
    assert [(e["queue"], e["error"], e["attempts"]) for e in listed] == [(queue_name, "boom", 5)]

    assert dead_letters.replay(uri) == 1

    with kombu.Connection(uri) as conn:
        back = topology.consumer_queue("OrderSubmitted", "portal",
                                       "handle_order_submitted")(conn.channel()).get(no_ack=True)
        left = topology.dead_letter_queue()(conn.channel()).get(no_ack=True)
    assert json.loads(back.body) == {"hello": "again"}
    assert back.headers[ATTEMPTS_HEADER] == 0
    assert left is None
