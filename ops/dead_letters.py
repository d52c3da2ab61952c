"""Look into and replay the dead-letter queue.

Each dead letter keeps the original body and headers plus ``x-portico-error``,
``x-portico-attempts`` and ``x-portico-queue``; replay publishes it back to that queue with the
attempt counter reset and acks it from the dead-letter queue only after the broker confirmed.
"""
from __future__ import annotations

import kombu

from services.common import topology
from services.common.amqp import CONFIRMED, ConfirmingPublisher, Outgoing
from services.common.entrypoints import ATTEMPTS_HEADER, ERROR_HEADER


def origin_queue(headers: dict) -> str | None:
    """Where a dead letter came from: our header, or the broker's ``x-death`` record (quorum
    queues dead-letter a message themselves when it exceeds the delivery limit)."""
    if headers.get("x-portico-queue"):
        return headers["x-portico-queue"]
    deaths = headers.get("x-death") or []
    return deaths[0].get("queue") if deaths else None


def peek(amqp_uri: str, limit: int = 100) -> list[dict]:
    entries = []
    with kombu.Connection(amqp_uri) as conn:
        queue = topology.dead_letter_queue()(conn.channel())
        messages = []
        for _ in range(limit):
            message = queue.get(no_ack=False)
            if message is None:
                break
            messages.append(message)
            headers = message.headers or {}
            entries.append({"queue": origin_queue(headers),
                            "error": headers.get(ERROR_HEADER),
                            "attempts": headers.get(ATTEMPTS_HEADER),
                            "message_id": message.properties.get("message_id")})
        for message in messages:
            message.requeue()
    return entries


def replay(amqp_uri: str, limit: int = 100) -> int:
    publisher = ConfirmingPublisher(amqp_uri)
    moved = 0
    with kombu.Connection(amqp_uri) as conn:
        queue = topology.dead_letter_queue()(conn.channel())
        for _ in range(limit):
            message = queue.get(no_ack=False)
            if message is None:
                break
            headers = dict(message.headers or {})
            target = origin_queue(headers)
            if not target:
                message.requeue()
                continue
            headers[ATTEMPTS_HEADER] = 0
            body = message.body if isinstance(message.body, bytes) else message.body.encode()
            result = publisher.publish(Outgoing(
                exchange="", routing_key=target, body=body,
                message_id=message.properties.get("message_id") or "", headers=headers,
                content_type=message.content_type or "application/json"), declare=False)
            if result == CONFIRMED:
                message.ack()
                moved += 1
            else:
                message.requeue()
                break
    publisher.close()
    return moved
