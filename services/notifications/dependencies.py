"""The notifications service's own dependency providers and its dispatch timer.

- ``NotificationsDatabase``: the shared ``Database`` plus a second relay for the merchant
  events outbox, separate short transactions (``unit.transaction()``) for recording results
  after an HTTP or SMTP call, and a nudge to the dispatch timers once a handler's transaction
  has committed new work (so a webhook leaves within milliseconds, not at the next tick).
- ``DispatchTimer``: a ``timer`` whose interval comes from config and that can be poked.
- ``WebhookDispatcher``: claims due deliveries, sends them from a pool of green threads (a slow
  receiver never holds up the next tick) and records each result in its own transaction.
- ``MailDispatcher``: the same for e-mails: claimed jobs go to a queue that a pool of senders
  works through, each sender over one reused SMTP connection; a tick never waits for a batch.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import time

import eventlet
from eventlet.greenpool import GreenPool
from eventlet.queue import Empty, LightQueue
from nameko.extensions import DependencyProvider

from services.common.clock import Clock
from services.common.database import Database, UnitOfWork, next_sequence
from services.common.entrypoints import Timer

from . import delivery, fan_out, mail_jobs, signing, url_guard, webhook_store, webhooks
from .mailer import Mailer
from .merchant_events import MerchantEventsRelay

log = logging.getLogger(__name__)



def sibling(container, cls):
    """The container's dependency provider of type ``cls`` (the extensions here share the
    database, clock and mailer providers the service declares)."""
    for provider in container.dependencies:
        if isinstance(provider, cls):
            return provider
    raise LookupError(cls)

class Transaction:
    """A short transaction of its own, with ``announce`` for this service's own
    merchant-visible events."""

    def __init__(self, provider: NotificationsDatabase):
        self.provider = provider
        self.session = provider.sessionmaker()
        self.staged = 0
        self.pokes: set[str] = set()

    def announce(self, event, now):
        """``EmailSent``, ``WebhookDeliveryFailed``: no other service listens to them, so they
        go straight to the merchant's AMQP subscribers and webhooks, in this transaction (a
        round trip through the broker back to this service would cost more than the mail)."""
        sequenced = event.with_sequence(next_sequence(self.session, self.provider.metadata,
                                                      event.aggregate_id))
        self.staged += 1
        if fan_out.to_merchant(self.session, sequenced, now):
            self.pokes.add("dispatch_webhooks")
        return sequenced


class NotificationsUnit(UnitOfWork):
    def __init__(self, provider: NotificationsDatabase):
        super().__init__(provider)
        self.pokes: set[str] = set()
        self.endpoints: dict = {}  # merchant → webhook endpoints, read once per transaction

    def poke_after_commit(self, timer_method: str) -> None:
        """Run that dispatch timer as soon as this worker's transaction has committed."""
        self.pokes.add(timer_method)

    def merchant_event_staged(self) -> None:
        self.staged_events += 1  # wakes the relays after commit, like add_event

    @contextlib.contextmanager
    def transaction(self):
        """A new transaction, committed on leaving the block. Never open one while this
        worker's own session holds the connection (commit that first)."""
        tx = Transaction(self._provider)
        try:
            yield tx
            tx.session.commit()
        finally:
            tx.session.close()
        if tx.staged:
            self._provider.events_committed()
        self._provider.poke(tx.pokes)


class NotificationsDatabase(Database):
    def setup(self):
        super().setup()
        self.merchant_relay = None
        if self.relay is not None:
            self.merchant_relay = MerchantEventsRelay(self.engine, self.metadata,
                                                      self.container.config,
                                                      name=self.container.service_name)

    def start(self):
        super().start()
        if self.merchant_relay is not None:
            self.container.spawn_managed_thread(self.merchant_relay.run,
                                                identifier="merchant-events-relay")

    def stop(self):
        super().stop()
        if self.merchant_relay is not None:
            self.merchant_relay.stop()

    def events_committed(self):
        super().events_committed()
        if self.merchant_relay is not None:
            self.merchant_relay.wake()

    def get_dependency(self, worker_ctx):
        unit = NotificationsUnit(self)
        self.units[worker_ctx] = unit
        return unit

    def transaction(self):
        """For code outside a worker (the webhook senders)."""
        return NotificationsUnit(self).transaction()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        # called after the entrypoint committed and acked (nameko's order)
        unit = self.units.get(worker_ctx)
        if unit is not None and exc_info is None:
            self.poke(unit.pokes)

    def poke(self, timer_methods: set[str]) -> None:
        """Run those dispatch timers now (work for them has just committed)."""
        if not timer_methods:
            return
        for entrypoint in self.container.entrypoints:
            if isinstance(entrypoint, DispatchTimer) and entrypoint.method_name in timer_methods:
                entrypoint.poke()


class DispatchTimer(Timer):
    """``@dispatch_timer("WEBHOOKS_POLL_SECONDS")``: runs every that many seconds (config),
    at start, and whenever poked; never two runs at once."""

    def __init__(self, interval_setting: str, default_interval: float = 1.0, **kwargs):
        super().__init__(interval=default_interval, eager=True, **kwargs)
        self.interval_setting = interval_setting
        self._wakeups = LightQueue(maxsize=1)
        self._stopping = False

    def setup(self):
        self.interval = float(self.container.config.get(self.interval_setting, self.interval))

    def poke(self):
        with contextlib.suppress(eventlet.queue.Full):
            self._wakeups.put_nowait(True)

    def stop(self):
        self._stopping = True
        self.poke()
        if self.gt is not None:
            self.gt.wait()

    def _run(self):
        self.poke()  # eager: pick up whatever a previous process left due
        while not self._stopping:
            with contextlib.suppress(Empty):
                self._wakeups.get(timeout=self.interval)
            if self._stopping:
                break
            self.handle_timer_tick()
            self.worker_complete.wait()
            self.worker_complete.reset()


dispatch_timer = DispatchTimer.decorator


class WebhookDispatcher(DependencyProvider):
    """Workers get ``dispatch_due()``. Config: ``WEBHOOKS_TIMEOUT_SECONDS`` (15),
    ``WEBHOOKS_CONCURRENCY`` (50), ``WEBHOOKS_RETRY_JITTER`` (0.1), ``WEBHOOKS_ALLOW_LOOPBACK``."""

    def setup(self):
        config = self.container.config
        self.timeout = float(config.get("WEBHOOKS_TIMEOUT_SECONDS", 15))
        self.jitter = float(config.get("WEBHOOKS_RETRY_JITTER", webhooks.DEFAULT_JITTER))
        self.allow_loopback = url_guard.loopback_allowed(config)
        self.pool = GreenPool(int(config.get("WEBHOOKS_CONCURRENCY", 50)))
        self.in_flight: set[str] = set()
        self.rng = random.Random()
        self.rounds = 0
        self.sent = 0

    def _provider(self, cls):
        return sibling(self.container, cls)

    @property
    def db(self) -> NotificationsDatabase:
        return self._provider(NotificationsDatabase)

    def now(self):
        return self._provider(Clock).clock.now()

    def stop(self):
        # Let in-flight calls finish briefly; one cut off is sent again after its lease
        # (same webhook-id, so the receiver deduplicates it).
        with contextlib.suppress(eventlet.Timeout), eventlet.Timeout(5):
            self.pool.waitall()
        self.kill()

    def kill(self):
        for thread in list(self.pool.coroutines_running):
            thread.kill()

    def get_dependency(self, worker_ctx):
        return self

    def dispatch_due(self) -> int:
        """Claim what is due (as many as there are free senders) and start sending."""
        free = self.pool.free()
        claims = []
        if free:
            with self.db.transaction() as tx:
                claims = webhook_store.claim_due(tx.session, self.now(), free,
                                                 exclude=set(self.in_flight))
        for claim in claims:
            self.in_flight.add(claim.delivery_id)
            self.pool.spawn_n(self._deliver, claim)
        self.rounds += 1
        return len(claims)

    def _deliver(self, claim: webhook_store.Claim) -> None:
        try:
            # the signature timestamp is the real time of sending: receivers compare it with
            # their own clock (±5 min), so it does not follow the injected business clock
            headers = signing.headers(list(claim.secrets), claim.event_id, int(time.time()),
                                      claim.body)
            result = delivery.post(claim.url, claim.body, headers, timeout=self.timeout,
                                   allow_loopback=self.allow_loopback)
            with self.db.transaction() as tx:
                now = self.now()
                for event in webhook_store.record(tx.session, claim, result, now,
                                                  jitter=self.jitter, rng=self.rng):
                    tx.announce(event, now)
            self.sent += 1
        except Exception:
            log.exception("webhook delivery %s: recording failed; retried after the lease",
                          claim.delivery_id)
        finally:
            self.in_flight.discard(claim.delivery_id)



class MailDispatcher(DependencyProvider):
    """Workers get ``dispatch_due(courier)``: claim what is due and hand it to the senders.

    ``MAIL_CONCURRENCY`` (20) senders take jobs from one queue; ``MAIL_BATCH_SIZE`` (200) bounds
    what is claimed (leased) but not yet started. A tick claims, queues, starts senders for the
    free slots and returns: it never waits for a batch to finish, so a slow mail or a slow
    service holds up only its own sender. While a backlog remains (the last claim was full),
    a sender whose queue runs short pokes ``send_emails`` to claim more."""

    def setup(self):
        config = self.container.config
        self.concurrency = max(1, int(config.get("MAIL_CONCURRENCY", 20)))
        self.batch = max(1, int(config.get("MAIL_BATCH_SIZE", 200)))
        self.run = max(1, int(config.get("MAIL_RUN", 10)))
        self.pool = GreenPool(self.concurrency)
        self.queue: LightQueue = LightQueue()
        self.backlog = False
        self.sent = 0

    def _provider(self, cls):
        return sibling(self.container, cls)

    def get_dependency(self, worker_ctx):
        return self

    def stop(self):
        # Let started mails finish briefly; jobs not started yet give their lease back, so
        # the next process sends them at once (a mail cut off mid-send is sent again after its
        # lease, with the same Message-ID).
        self.backlog = False
        queued = []
        while True:
            try:
                queued.append(self.queue.get_nowait()[0].id)
            except Empty:
                break
        with contextlib.suppress(eventlet.Timeout), eventlet.Timeout(5):
            self.pool.waitall()
        for thread in list(self.pool.coroutines_running):
            thread.kill()
        if queued:
            try:
                with self._provider(NotificationsDatabase).transaction() as tx:
                    mail_jobs.release(tx.session, queued)
            except Exception:
                log.exception("could not release %d queued e-mails; sent after their lease",
                              len(queued))

    def kill(self):
        for thread in list(self.pool.coroutines_running):
            thread.kill()

    def dispatch_due(self, courier: mail_jobs.Courier) -> int:
        """Claim up to the free room in the queue; ``courier`` (without ``send``) carries the
        worker's RPC proxies and settings for these jobs."""
        limit = self.batch - self.queue.qsize()
        if limit <= 0:
            return 0
        db = self._provider(NotificationsDatabase)
        with db.transaction() as tx:
            jobs = mail_jobs.claim_due(tx.session, self._provider(Clock).clock.now(), limit)
            custom = mail_jobs.custom_templates(tx.session, {j.merchant_id for j in jobs})
        self.backlog = len(jobs) == limit
        couriers = {merchant_id: dataclasses.replace(courier, custom_templates=templates)
                    for merchant_id, templates in custom.items()}
        for job in jobs:
            self.queue.put((job, couriers[job.merchant_id]))
        for _ in range(min(self.pool.free(), self.queue.qsize())):
            self.pool.spawn_n(self._sender)
        return len(jobs)

    def _sender(self):
        db = self._provider(NotificationsDatabase)
        mailer = self._provider(Mailer)
        clock = self._provider(Clock).clock
        with mailer.session() as send:
            while True:
                run = self._take_run()
                if not run:
                    return
                if self.backlog and self.queue.qsize() < self.concurrency:
                    self.backlog = False
                    self._poke()
                for jobs in _by_courier(run):
                    mail_jobs.send_all(dataclasses.replace(jobs[0][1], send=send),
                                       [job for job, _ in jobs], db.transaction, clock.now)
                self.sent += len(run)

    def _take_run(self) -> list[tuple[mail_jobs.Job, mail_jobs.Courier]]:
        """Up to ``MAIL_RUN`` queued jobs, sent as one run: their portal links minted in one
        call, their outcomes recorded in one transaction. A short queue is shared fairly
        between the senders instead of going to the first."""
        share = max(1, min(self.run, -(-self.queue.qsize() // self.concurrency)))
        run = []
        while len(run) < share:
            try:
                run.append(self.queue.get_nowait())
            except Empty:
                break
        return run

    def _poke(self):
        for entrypoint in self.container.entrypoints:
            if isinstance(entrypoint, DispatchTimer) and entrypoint.method_name == "send_emails":
                entrypoint.poke()


def _by_courier(run: list[tuple]) -> list[list[tuple]]:
    """The run split where the courier changes (jobs of one claim share theirs)."""
    groups: list[list[tuple]] = []
    for job, courier in run:
        if groups and groups[-1][0][1] is courier:
            groups[-1].append((job, courier))
        else:
            groups.append([(job, courier)])
    return groups
