"""Publishing with publisher confirms, one message or a batch at a time.

``ConfirmingPublisher.publish_batch`` sends every message of a batch with ``mandatory`` set and
then waits once for the broker's acks (a batch of 200 costs about one round trip, not 200). It
reports per message whether the broker confirmed it, returned it as unroutable, or nacked it; a
message is only "confirmed" after the broker said so. Connection failures raise
``BrokerUnavailable`` and the next call reconnects.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time

import kombu
from amqp import spec

log = logging.getLogger(__name__)

CONFIRMED, RETURNED, NACKED = "confirmed", "returned", "nacked"


class BrokerUnavailable(Exception):
    """The broker could not be reached or dropped the connection; nothing was confirmed."""


@dataclasses.dataclass
class Outgoing:
    exchange: str
    routing_key: str
    body: bytes
    message_id: str
    headers: dict = dataclasses.field(default_factory=dict)
    content_type: str = "application/json"


def json_body(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class ConfirmingPublisher:
    def __init__(self, amqp_uri: str, *, confirm_timeout: float = 15.0,
                 connect_timeout: float = 5.0):
        self.amqp_uri = amqp_uri
        self.confirm_timeout = confirm_timeout
        self.connect_timeout = connect_timeout
        self._conn: kombu.Connection | None = None
        self._channel = None
        self._lock = threading.Lock()  # green lock once eventlet has patched threading
        self._declared: set[str] = set()
        self._acked_up_to = 0
        self._nacked: set[int] = set()
        self._returned: set[str] = set()
        self._next_tag = 0

    # -- connection -------------------------------------------------------------------------
    def _connect(self):
        if self._channel is not None:
            return
        conn = kombu.Connection(self.amqp_uri, heartbeat=0, connect_timeout=self.connect_timeout)
        try:
            conn.ensure_connection(max_retries=1)
            channel = conn.channel()
            channel.confirm_select()
        except Exception as exc:
            conn.release()
            raise BrokerUnavailable(str(exc)) from exc
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        channel.events["basic_return"].add(self._on_return)
        self._conn, self._channel = conn, channel
        self._next_tag = self._acked_up_to = 0
        self._nacked.clear()
        self._returned.clear()
        self._declared.clear()

    def close(self):
        with self._lock:
            self._reset()

    def _reset(self):
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            try:
                conn.release()
            except Exception:  # noqa: S110  the socket is already gone
                pass

    def _on_ack(self, delivery_tag, multiple):
        if multiple:
            self._acked_up_to = max(self._acked_up_to, delivery_tag)
        else:
            # single acks may arrive out of order only after a multiple; track the max
            self._acked_up_to = max(self._acked_up_to, delivery_tag)

    def _on_nack(self, delivery_tag, multiple):
        self._nacked.add(delivery_tag)
        self._acked_up_to = max(self._acked_up_to, delivery_tag)

    def _on_return(self, exc, exchange, routing_key, message):
        message_id = message.properties.get("message_id")
        if message_id:
            self._returned.add(message_id)

    # -- publishing --------------------------------------------------------------------------
    def declare_exchange(self, name: str, type_: str = "topic"):
        with self._lock:
            self._connect()
            self._declare(name, type_)

    def _declare(self, name: str, type_: str = "topic"):
        if name and name not in self._declared:
            self._channel.exchange_declare(name, type_, durable=True, auto_delete=False)
            self._declared.add(name)

    def publish_batch(self, messages: list[Outgoing], *, declare: bool = True,
                      mandatory: bool = True) -> list[str]:
        """Publish and wait for confirms; return CONFIRMED/RETURNED/NACKED per message.
        ``mandatory=False`` for exchanges where no bound queue is normal (the broker then
        drops an unroutable message instead of sending it back)."""
        if not messages:
            return []
        with self._lock:
            try:
                self._connect()
                channel = self._channel
                tags = []
                for msg in messages:
                    if declare:
                        self._declare(msg.exchange)
                    amqp_msg = channel.prepare_message(
                        msg.body, content_type=msg.content_type, content_encoding="utf-8",
                        headers=msg.headers,
                        properties={"delivery_mode": 2, "message_id": msg.message_id},
                    )
                    channel.basic_publish(amqp_msg, exchange=msg.exchange,
                                          routing_key=msg.routing_key, mandatory=mandatory)
                    self._next_tag += 1
                    tags.append(self._next_tag)
                deadline = time.monotonic() + self.confirm_timeout
                while self._acked_up_to < tags[-1]:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError("no publisher confirm in time")
                    channel.wait([spec.Basic.Ack, spec.Basic.Nack, spec.Basic.Return],
                                 timeout=remaining)
            except Exception as exc:
                self._reset()
                raise BrokerUnavailable(str(exc) or type(exc).__name__) from exc
            results = []
            for msg, tag in zip(messages, tags, strict=True):
                if tag in self._nacked:
                    results.append(NACKED)
                elif msg.message_id in self._returned:
                    results.append(RETURNED)
                else:
                    results.append(CONFIRMED)
            self._nacked.difference_update(tags)
            self._returned.difference_update(m.message_id for m in messages)
            return results

    def publish(self, message: Outgoing, **kwargs) -> str:
        return self.publish_batch([message], **kwargs)[0]
