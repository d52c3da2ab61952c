"""nameko entrypoints that finish the unit of work before they answer.

nameko calls an entrypoint's ``handle_result`` (which sends the RPC reply or acks the message)
*before* worker teardown. These subclasses commit the worker's ``Database`` unit of work first,
so a reply or an ack never goes out for a transaction that then fails.

``event_handler`` adds what nameko leaves out (it acks a failed worker's message and forgets
it): envelope validation, the inbox (a redelivered event is skipped), bounded retries, and a
dead-letter queue that keeps the message with its error. Nothing is dropped silently.
"""
from __future__ import annotations

import functools
import logging
import sys
import traceback
from functools import partial

import eventlet
from kombu import Consumer as KombuConsumer
from marshmallow import ValidationError
from nameko.events import EventHandler as _NamekoEventHandler
from nameko.exceptions import ContainerBeingKilled
from nameko.extensions import SharedExtension
from nameko.messaging import Consumer, QueueConsumer
from nameko.rpc import Rpc as _NamekoRpc
from nameko.timer import Timer as _NamekoTimer
from nameko.web.handlers import HttpRequestHandler as _NamekoHttp

from . import events, topology
from .amqp import CONFIRMED, BrokerUnavailable, ConfirmingPublisher, Outgoing
from .database import Database
from .errors import PorticoError
from .telemetry import CORRELATION_KEY, current_correlation_id, set_correlation_id

log = logging.getLogger(__name__)

ATTEMPTS_HEADER = "x-portico-attempts"
ERROR_HEADER = "x-portico-error"
RETRY_DELAYS = (0.2, 1.0, 3.0, 5.0)


def finish_unit_of_work(worker_ctx, result, exc_info):
    """Commit every Database unit of this worker; a failed commit becomes the worker's error."""
    if exc_info is not None:
        return result, exc_info
    try:
        for provider in worker_ctx.container.dependencies:
            if isinstance(provider, Database):
                provider.commit_worker(worker_ctx)
    except Exception:
        log.exception("commit failed for %s", worker_ctx)
        return None, sys.exc_info()
    return result, exc_info


class Rpc(_NamekoRpc):
    def __init__(self, expected_exceptions=PorticoError, **kwargs):
        super().__init__(expected_exceptions=expected_exceptions, **kwargs)

    def handle_result(self, message, worker_ctx, result, exc_info):
        result, exc_info = finish_unit_of_work(worker_ctx, result, exc_info)
        return super().handle_result(message, worker_ctx, result, exc_info)


class Timer(_NamekoTimer):
    def handle_result(self, worker_ctx, result, exc_info):
        result, exc_info = finish_unit_of_work(worker_ctx, result, exc_info)
        return super().handle_result(worker_ctx, result, exc_info)


class Http(_NamekoHttp):
    def handle_result(self, event, worker_ctx, result, exc_info):
        result, exc_info = finish_unit_of_work(worker_ctx, result, exc_info)
        return super().handle_result(event, worker_ctx, result, exc_info)


rpc = Rpc.decorator
timer = Timer.decorator
http = Http.decorator


class DeadLetters(SharedExtension):
    """One confirming publisher per container for retries and dead letters."""

    def setup(self):
        self.publisher = ConfirmingPublisher(self.container.config["AMQP_URI"])

    def start(self):
        # never depend on deploy-time declaration for the place failures go
        topology.declare_dead_letters(self.container.config["AMQP_URI"])

    def stop(self):
        self.publisher.close()

    def kill(self):
        self.publisher.close()

    def send(self, message, *, exchange: str, routing_key: str, headers: dict) -> bool:
        outgoing = Outgoing(
            exchange=exchange, routing_key=routing_key, body=_raw_body(message),
            message_id=message.properties.get("message_id") or "",
            headers={**(message.headers or {}), **headers},
            content_type=message.content_type or "application/json",
        )
        try:
            return self.publisher.publish(outgoing, declare=False) == CONFIRMED
        except BrokerUnavailable:
            return False


def _raw_body(message) -> bytes:
    body = message.body
    return body if isinstance(body, bytes) else str(body).encode()


class _WindowedConsumer(KombuConsumer):
    """A kombu consumer that sets its own prefetch window just before it starts consuming
    (RabbitMQ applies ``basic.qos`` to the consumers started after it on the channel)."""

    window: int | None = None

    def consume(self, no_ack=None):
        if self.window:
            self.qos(prefetch_count=self.window)
        return super().consume(no_ack)


class TolerantQueueConsumer(QueueConsumer):
    """nameko's queue consumer, except that an undecodable message is dead-lettered instead of
    killing the consumer thread, and a batching handler gets a wider prefetch window
    (``EVENT_BATCH_SIZE``, default 50) than the others (``max_workers``)."""

    dead_letters = DeadLetters()

    def get_consumers(self, consumer_cls, channel):
        consumers = super().get_consumers(partial(_WindowedConsumer, channel), channel)
        batch_window = int(self.container.config.get("EVENT_BATCH_SIZE", 50))
        for provider, consumer in self._consumers.items():
            consumer.on_decode_error = self._on_decode_error
            consumer.window = batch_window if getattr(provider, "batch", False) \
                else self.prefetch_count
        return consumers

    def _on_decode_error(self, message, exc):
        queue = message.delivery_info.get("routing_key", "?")
        dead_letter(self.dead_letters, self, message, f"undecodable message: {exc}", queue)


def dead_letter(dead_letters, queue_consumer, message, error: str, queue: str, attempts=1):
    headers = {
        ERROR_HEADER: error[:4000],
        ATTEMPTS_HEADER: attempts,
        "x-portico-queue": queue,
        "x-portico-exchange": message.delivery_info.get("exchange", ""),
        "x-portico-routing-key": message.delivery_info.get("routing_key", ""),
    }
    if dead_letters.send(message, exchange=topology.DEAD_LETTER_EXCHANGE, routing_key=queue,
                         headers=headers):
        log.error("dead-lettered a message from %s: %s", queue, error[:500],
                  extra={"queue": queue})
        queue_consumer.ack_message(message)
    else:  # could not park it safely: leave it with the broker for another try
        queue_consumer.requeue_message(message)


class EventHandler(_NamekoEventHandler):
    """``@event_handler("OrderSubmitted")``: the method receives a loaded ``events.Event``.

    The handler's service must have ``db = Database(...)``: the inbox row is written in the
    same transaction as the handler's effect.
    """

    queue_consumer = TolerantQueueConsumer()
    dead_letters = DeadLetters()

    def __init__(self, event_type: str, *, max_attempts: int = 5, inbox: bool = True,
                 batch: bool = False, **kwargs):
        kind = events.event_type(event_type)
        super().__init__(kind.source, kind.name, reliable_delivery=True, **kwargs)
        self.max_attempts = max_attempts
        self.inbox = inbox
        self.batch = batch
        self._waiting: list[tuple[events.Event, object, dict]] = []

    @property
    def consumer_name(self) -> str:
        return f"{self.container.service_name}.{self.method_name}"

    def setup(self):
        self.queue = topology.consumer_queue(self.event_type, self.container.service_name,
                                             self.method_name)
        Consumer.setup(self)

    def handle_message(self, body, message):
        try:
            event = events.load_envelope(body, self.event_type)
        except ValidationError as exc:
            dead_letter(self.dead_letters, self.queue_consumer, message,
                        f"malformed event: {exc.messages}", self.queue.name)
            return
        context_data = self.unpack_message_headers(message)
        if not self.batch:
            self._spawn_one(event, message, context_data)
            return
        self._waiting.append((event, message, context_data))
        if len(self._waiting) == 1:
            # runs after the deliveries that arrived with this one (green threads start in
            # the order they were spawned), so they share one worker and one transaction
            self.container.spawn_managed_thread(self._spawn_batch,
                                                identifier=f"{self.consumer_name}.batch")

    def _spawn_one(self, event, message, context_data):
        try:
            self.container.spawn_worker(self, (event,), {}, context_data=context_data,
                                        handle_result=partial(self.handle_result, message))
        except ContainerBeingKilled:
            self.queue_consumer.requeue_message(message)

    def _spawn_batch(self):
        waiting, self._waiting = self._waiting, []
        if len(waiting) == 1:
            self._spawn_one(*waiting[0])
            return
        batch = Batch([(event, context.get(CORRELATION_KEY))
                       for event, _, context in waiting])
        try:
            self.container.spawn_worker(
                self, (batch,), {}, context_data=waiting[0][2],
                handle_result=partial(self.handle_batch_result, waiting))
        except ContainerBeingKilled:
            for _, message, _ in waiting:
                self.queue_consumer.requeue_message(message)

    def handle_batch_result(self, waiting, worker_ctx, result=None, exc_info=None):
        """All committed together → ack each. Anything failed → nothing of the batch was
        written; each event runs again on its own, with its own retries and dead letter."""
        result, exc_info = finish_unit_of_work(worker_ctx, result, exc_info)
        if exc_info is None:
            for _, message, _ in waiting:
                self.queue_consumer.ack_message(message)
            log.info("handled %d %s in %s", len(waiting), self.event_type, self.consumer_name)
            return result, exc_info
        log.warning("a batch of %d %s failed in %s (%s); handling each on its own",
                    len(waiting), self.event_type, self.consumer_name, exc_info[1])
        for event, message, context_data in waiting:
            self._spawn_one(event, message, context_data)
        return None, None

    def handle_result(self, message, worker_ctx, result=None, exc_info=None):
        result, exc_info = finish_unit_of_work(worker_ctx, result, exc_info)
        event = worker_ctx.args[0]
        if exc_info is None:
            self.queue_consumer.ack_message(message)
            log.info("handled %s in %s", event.type, self.consumer_name,
                     extra={"event_id": event.event_id, "event_type": event.type})
            return result, exc_info
        attempts = int((message.headers or {}).get(ATTEMPTS_HEADER, 0)) + 1
        error = "".join(traceback.format_exception_only(exc_info[0], exc_info[1])).strip()
        if attempts >= self.max_attempts:
            dead_letter(self.dead_letters, self.queue_consumer, message,
                        f"failed {attempts} times: {error}", self.queue.name, attempts)
        else:
            eventlet.sleep(RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1])
            retried = self.dead_letters.send(
                message, exchange="", routing_key=self.queue.name,
                headers={ATTEMPTS_HEADER: attempts, ERROR_HEADER: error[:4000]})
            if retried:
                self.queue_consumer.ack_message(message)
            else:
                self.queue_consumer.requeue_message(message)
        return result, exc_info


class Batch(list):
    """Events that arrived together for one ``batch=True`` handler: ``(event, correlation_id)``
    pairs handled by one worker in one transaction."""


def event_handler(event_type: str, **kwargs):
    """Decorate ``handle_<event>(self, event)``; redelivered events are skipped (inbox).

    ``batch=True``: events that arrive together (up to ``EVENT_BATCH_SIZE``) are handled by
    one worker, one after the other, in one transaction (their inbox rows claimed in one
    statement) and acked together: a worker and a commit per batch instead of per event. If
    the batch fails, each of its events runs again on its own.
    """
    inbox = kwargs.get("inbox", True)

    def decorator(func):
        def skip(event: events.Event) -> None:
            log.info("skipping redelivered %s %s", event.type, event.event_id,
                     extra={"event_id": event.event_id, "event_type": event.type})

        @functools.wraps(func)
        def with_inbox(self, event: events.Event | Batch):
            consumer = f"{type(self).name}.{func.__name__}"
            if not isinstance(event, Batch):
                if inbox and not self.db.claim(consumer, event.event_id):
                    return skip(event)
                return func(self, event)
            claimed = self.db.claim_many(consumer, [e.event_id for e, _ in event]) if inbox \
                else None
            worker_correlation = current_correlation_id()
            try:
                for one, correlation_id in event:
                    if claimed is not None:
                        if one.event_id not in claimed:  # handled before, or twice in here
                            skip(one)
                            continue
                        claimed.discard(one.event_id)
                    set_correlation_id(correlation_id or worker_correlation)
                    func(self, one)
            finally:
                set_correlation_id(worker_correlation)
            return None

        return EventHandler.decorator(event_type, **kwargs)(with_inbox)

    return decorator
