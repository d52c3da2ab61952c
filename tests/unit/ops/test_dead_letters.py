"""Where a dead letter goes back to when replayed."""
from ops.dead_letters import origin_queue


def test_our_own_header_names_the_queue():
    assert origin_queue({"x-portico-queue": "evt-a-B--c.d"}) == "evt-a-B--c.d"


def test_a_broker_dead_letter_is_traced_through_x_death():
    headers = {"x-death": [{"queue": "evt-signup-OrderSubmitted--portal.handle_order_submitted",
                            "reason": "delivery_limit", "count": 1}]}
    assert origin_queue(headers) == "evt-signup-OrderSubmitted--portal.handle_order_submitted"


def test_a_message_of_unknown_origin_is_not_replayed_anywhere():
    assert origin_queue({}) is None
