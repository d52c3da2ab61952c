"""Invoices per second end to end: ``BillingDue`` in → invoice numbered, PDF + Factur-X XML
rendered and stored → ``InvoiceIssued`` out; render cost per document; memory over the run.

    .venv/bin/python -m bench documents          # inside the shared harness's cluster
    .venv/bin/python -m bench.documents          # standalone (starts its own cluster)
    .venv/bin/python -m bench.documents --documents 3000   # shorter run

Steps (all services run as processes; the documents service with one render worker per CPU):

1. setup, not timed: a merchant with seller details, ``--contracts`` contracts with a trial
   (``ContractCreated`` issues nothing yet), each to be billed for many monthly periods;
2. the figure: the documents service is frozen (SIGSTOP) while ``--documents`` ``BillingDue``
   events are published with confirms, then thawed; the clock runs from the thaw to the last
   ``InvoiceIssued`` received on a queue bound to ``documents.events`` — so it is the
   service's throughput, not the publisher's. Every invoice is a 3-4 line Factur-X PDF/A-3
   (setup fee on period 1, plan, seats component, 10 % coupon) at 19 % VAT;
3. the in-run ceiling: the same load generator and measurement against an *echo* consumer of
   ``BillingDue`` (a process built from the same ``@event_handler`` + inbox + outbox + relay
   with publisher confirms) that announces ``InvoiceIssued`` at once: no pricing, numbering,
   rendering or storage. ratio = figure / ceiling;
4. render cost: CPU ms per document of the render workers and of the service process (from
   /proc over the run), and the same invoice rendered in this process in a loop;
5. memory: RSS of the service and its render workers every 1,000 documents; flat = the last
   sample within 10 % (and 25 MB) of the one after the first thousand.
"""
from __future__ import annotations

import importlib

importlib.import_module("services.common.green")  # first: eventlet's monkey-patching

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import textwrap  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from decimal import Decimal  # noqa: E402
from pathlib import Path  # noqa: E402

import kombu  # noqa: E402

from bench import harness  # noqa: E402
from services.common import events, topology  # noqa: E402
from services.common.amqp import CONFIRMED, ConfirmingPublisher, Outgoing, json_body  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET = 100.0  # invoices/s (issue 5)
PROCESS_LIMIT_MB = 120  # RSS per process (DESIGN)
SELLER = {"name": "Bench GmbH", "company": "Bench Software GmbH", "street": "Hauptstraße",
          "house_number": "1", "postal_code": "10115", "city": "Berlin", "country": "DE",
          "vat_id": "DE136695976", "email": "billing@bench.example"}

ECHO_SERVICE = textwrap.dedent('''
    """The ceiling: BillingDue in, InvoiceIssued out, through the same messaging machinery."""
    import decimal, uuid
    from sqlalchemy import MetaData
    from services.common import events
    from services.common.database import Database, add_messaging_tables
    from services.common.entrypoints import event_handler

    metadata = MetaData()
    add_messaging_tables(metadata)

    class EchoService:
        name = "bench_echo"
        db = Database(metadata)

        @event_handler("BillingDue")
        def handle_billing_due(self, event):
            p = event.payload
            zero = decimal.Decimal("0.00")
            self.db.add_event(events.new_event(
                "InvoiceIssued", merchant_id=event.merchant_id, aggregate_id=p["contract_id"],
                payload={"document_id": "echo_" + uuid.uuid4().hex, "number": "ECHO",
                         "contract_id": p["contract_id"], "customer_id": "echo",
                         "issue_date": p["period_start"], "currency": "EUR",
                         "net_total": zero, "tax_total": zero, "gross_total": zero}))
''')

ECHO_MAIN = textwrap.dedent('''
    from services.common import green  # noqa
    import sys, eventlet
    from sqlalchemy import create_engine
    from nameko.runners import ServiceRunner
    sys.path.insert(0, sys.argv[3])
    from bench_echo import EchoService, metadata
    engine = create_engine(sys.argv[2]); metadata.create_all(engine); engine.dispose()
    runner = ServiceRunner({"AMQP_URI": sys.argv[1], "DB_URL": sys.argv[2], "max_workers": 10,
                            "OUTBOX_POLL_SECONDS": 0.5})
    runner.add_service(EchoService)
    runner.start()
    print("ready", flush=True)
    runner.wait()
''')


# -- load ----------------------------------------------------------------------------------------


def contract_created(merchant_id: str, contract_id: str, start: dt.date) -> events.Event:
    trial_end = start + dt.timedelta(days=14)
    payload = {
        "contract_id": contract_id, "customer_id": f"cus_{uuid.uuid4().hex}",
        "order_id": f"ord_{uuid.uuid4().hex}", "plan_variant_id": "pv_bench",
        "plan_name": "Pro monthly", "currency": "EUR", "start_date": start,
        "trial_end": trial_end, "billing_start": trial_end,
        "terms": {"setup_fee": Decimal("9.90"), "recurring_fee": Decimal("29.00"),
                  "billing_period_months": 1, "trial_days": 14,
                  "notice_period": {"value": 1, "unit": "month"}, "minimum_term": None},
        "components": [{"component_id": "cmp_seats", "name": "Extra seats",
                        "kind": "quantity", "quantity": 3, "unit_price": Decimal("4.50")}],
        "coupon": {"code": "WELCOME10", "kind": "percent", "value": Decimal("10"),
                   "periods": None},
        "tax": {"rate": Decimal("19"), "category": "S", "reverse_charge": False,
                "country": "DE"},
        "customer": {"email": "ann@example.com", "first_name": "Ann", "last_name": "Lee",
                     "company_name": "Lee Consulting", "street": "Unter den Linden",
                     "house_number": "5", "postal_code": "10117", "city": "Berlin",
                     "country": "DE", "vat_id": None, "language": "de"},
        "language": "de",
    }
    return events.new_event("ContractCreated", merchant_id=merchant_id,
                            aggregate_id=contract_id, payload=payload)


def billing_due(merchant_id: str, contract: events.Event, k: int) -> events.Event:
    from services.common.periods import add_months
    anchor = contract.payload["billing_start"]
    return events.new_event("BillingDue", merchant_id=merchant_id,
                            aggregate_id=contract.aggregate_id, payload={
        "contract_id": contract.aggregate_id, "period_start": add_months(anchor, k, anchor.day),
        "period_end": add_months(anchor, k + 1, anchor.day)})


def publish(amqp_uri: str, all_events: list[events.Event], batch: int = 500) -> None:
    publisher = ConfirmingPublisher(amqp_uri)
    try:
        for i in range(0, len(all_events), batch):
            chunk = all_events[i:i + batch]
            results = publisher.publish_batch([
                Outgoing(exchange=e.kind.exchange, routing_key=e.type, body=json_body(e.body()),
                         message_id=e.event_id) for e in chunk])
            if any(r != CONFIRMED for r in results):
                raise SystemExit(f"bench: the broker did not confirm: {set(results)}")
    finally:
        publisher.close()


class Tap:
    """Counts ``InvoiceIssued`` as it leaves ``documents.events`` (a queue of its own)."""

    def __init__(self, amqp_uri: str):
        self.connection = kombu.Connection(amqp_uri)
        self.count = 0
        self.queue = kombu.Queue(f"bench-tap-{uuid.uuid4().hex[:8]}",
                                 exchange=topology.event_exchange("documents"),
                                 routing_key="InvoiceIssued", auto_delete=True, durable=False)
        self.consumer = kombu.Consumer(self.connection, [self.queue], callbacks=[self._seen],
                                       accept=["json"], prefetch_count=1000)
        self.consumer.consume()

    def _seen(self, _body, message):
        message.ack()
        self.count += 1

    def wait_for(self, total: int, timeout: float, on_progress=None) -> float:
        """Seconds until ``total`` events were seen (raises after ``timeout`` of silence)."""
        started = time.perf_counter()
        last_progress = time.monotonic()
        last_count = self.count
        while self.count < total:
            try:
                self.connection.drain_events(timeout=1)
            except TimeoutError:
                pass
            if self.count != last_count:
                last_count, last_progress = self.count, time.monotonic()
                if on_progress:
                    on_progress(self.count)
            elif time.monotonic() - last_progress > timeout:
                raise SystemExit(f"bench: stuck at {self.count}/{total} InvoiceIssued")
        return time.perf_counter() - started

    def reset(self) -> None:
        self.count = 0

    def close(self) -> None:
        self.connection.release()


# -- measuring -----------------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def pids_named(*names: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in names:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def render_in_process(repeat: int = 200) -> float:
    """Median wall ms of rendering the bench invoice here (one core, no messaging)."""
    from services.documents import content, issuing, render_worker
    from services.documents.billing import ContractTerms, invoice_draft
    from services.documents.issuing import Settings, _line
    from services.documents.rendering import load_fonts

    load_fonts()
    event = contract_created("m_bench", "ct_bench", dt.date(2027, 1, 1))
    terms = ContractTerms.from_payload(event.payload)
    draft = invoice_draft(terms, event.payload["billing_start"])

    class _Contract:
        currency, language = "EUR", "de"
        data = events.ContractCreated().dump(event.payload)

    settings = Settings("m_bench", SELLER, {}, 14, [], {}, True)
    doc = issuing.render_document(settings, _Contract, kind="invoice", number="INV-2027-00001",
                                  issue_date=dt.date(2027, 1, 15),
                                  lines=[_line(line) for line in draft.lines],
                                  due_date=dt.date(2027, 1, 29), period=(draft.start, draft.end))
    job = {"content": content.to_content(doc), "logo": None,
           "created_at": dt.datetime.now(dt.UTC), "einvoice": True}
    render_worker.render_job(job)
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        answer = render_worker.render_job(job)
        timings.append((time.perf_counter() - started) * 1000)
    assert answer["xml"] and answer["einvoice_error"] is None
    return harness.median(timings)


def queue_depth(cluster, name: str) -> int:
    try:
        return cluster.rabbit_manager.get_queue(cluster.vhost, name).get("messages", 0)
    except Exception:  # not declared yet
        return 0


def purge(cluster, name: str) -> None:
    cluster.rabbit_manager._delete("queues", cluster.vhost, name, "contents")


# -- the run ---------------------------------------------------------------------------------------


DOWNSTREAM = (("notifications", "ContractCreated", "handle_contract_created"),
              ("notifications", "InvoiceIssued", "handle_invoice_issued"),
              ("portal", "InvoiceIssued", "handle_invoice_issued"))


def run(cluster, tmp, *, documents: int = 10_000, contracts: int = 500) -> dict:
    """Pause the services downstream of the documents service (the portal's ledger and the
    notifications' e-mails react to every InvoiceIssued) so the figure is the documents
    pipeline's; drop the bench's events from their queues afterwards and resume them."""
    paused = [cluster.processes[name].pid for name in {d[0] for d in DOWNSTREAM}
              if name in cluster.processes]
    for pid in paused:
        os.kill(pid, signal.SIGSTOP)
    try:
        return _run(cluster, tmp, documents=documents, contracts=contracts)
    finally:
        for service, event_type, method in DOWNSTREAM:
            try:
                purge(cluster, topology.consumer_queue_name(event_type, service, method))
            except Exception as exc:  # report it, and still resume the services
                print(f"bench: could not purge {service} {event_type}: {exc}")
        for pid in paused:
            os.kill(pid, signal.SIGCONT)


def _run(cluster, tmp, *, documents: int, contracts: int) -> dict:
    amqp = cluster.amqp_uri
    merchant = f"m_bench_{uuid.uuid4().hex[:8]}"
    with cluster.rpc() as rpc:
        rpc.documents.update_document_settings(merchant, {"seller": SELLER})
    service = cluster.processes["documents"]
    periods = -(-documents // contracts)  # ceil
    created = [contract_created(merchant, f"ct_{uuid.uuid4().hex}", dt.date(2026, 1, 1))
               for _ in range(contracts)]
    print(f"documents bench: {documents} invoices = {contracts} contracts x {periods} "
          "monthly periods; setup …", flush=True)
    publish(amqp, created)
    harness_wait(lambda: queue_depth(cluster, topology.consumer_queue_name(
        "ContractCreated", "documents", "handle_contract_created")) == 0, 120, "contracts")
    due = [billing_due(merchant, contract, k) for k in range(periods) for contract in created]
    due = due[:documents]

    tap = Tap(amqp)
    warm = due[:200]
    publish(amqp, warm)
    tap.wait_for(len(warm), 120)
    tap.reset()
    timed = due[200:] if len(due) > 1200 else due
    tree = process_tree(service.pid)
    broker = pids_named("beam.smp")
    os.kill(service.pid, signal.SIGSTOP)
    try:
        publish(amqp, timed)
    finally:
        cpu_before = {pid: cpu_seconds([pid]) for pid in tree}
        broker_before = cpu_seconds(broker)
        load_before = os.getloadavg()[0]
        os.kill(service.pid, signal.SIGCONT)
    memory: list[tuple[int, float]] = []
    processes: list[tuple[int, float, list[float]]] = []  # count, service, each render worker

    def sample(count: int) -> None:
        if not memory or count - memory[-1][0] >= 1000:
            workers = [harness.rss_mb(pid) for pid in process_tree(service.pid)
                       if pid != service.pid]
            own = harness.rss_mb(service.pid)
            memory.append((count, own + sum(workers)))
            processes.append((count, own, workers))

    seconds = tap.wait_for(len(timed), 120, on_progress=sample)
    sample(len(timed) + 1000)
    cpu = {pid: cpu_seconds([pid]) - before for pid, before in cpu_before.items()}
    broker_ms = (cpu_seconds(broker) - broker_before) / len(timed) * 1000
    load_after = os.getloadavg()[0]
    figure = len(timed) / seconds
    tap.close()

    ceiling = measure_ceiling(cluster, merchant, created, len(timed), Path(tmp))
    in_process = render_in_process()
    service_ms = cpu[service.pid] / len(timed) * 1000
    worker_ms = sum(v for pid, v in cpu.items() if pid != service.pid) / len(timed) * 1000

    harness.report("documents: invoices end to end", figure, "invoices/s", ceiling,
                   ceiling_unit="events/s", target=f">= {TARGET:.0f} invoices/s")
    print(f"  {len(timed)} invoices in {seconds:.1f} s; ceiling = echo consumer (inbox + outbox"
          " + confirms, nothing else)")
    print(f"  render cost per document: {worker_ms:.1f} ms CPU in the render workers, "
          f"{service_ms:.1f} ms CPU in the service process, {broker_ms:.1f} ms in RabbitMQ "
          "(which serves everything else running here too); "
          f"rendered alone here: {in_process:.1f} ms (PDF/A-3 + Factur-X XML, XSD-checked)")
    total_ms = worker_ms + service_ms
    print(f"  documents CPU per invoice {total_ms:.1f} ms -> at most {2000 / total_ms:.0f} "
          f"invoices/s on 2 otherwise idle cores before the broker's share; load average "
          f"{load_before:.1f} -> "
          f"{load_after:.1f} during the run (other work on the machine lowers the figure)")
    first, last = memory[1] if len(memory) > 1 else memory[0], memory[-1]
    flat = last[1] <= first[1] * 1.10 or last[1] - first[1] <= 25
    print("  memory (service + render workers, RSS MB): " + ", ".join(
        f"{count}: {mb:.0f}" for count, mb in memory) + f" -> {'flat' if flat else 'GROWING'}")
    print("  per process (RSS MB, service | render workers): " + ", ".join(
        f"{count}: {own:.0f} | {'/'.join(f'{w:.0f}' for w in workers)}"
        for count, own, workers in processes) + f"; design limit {PROCESS_LIMIT_MB} MB each")
    return {"figure": figure, "ceiling": ceiling, "seconds": seconds, "worker_ms": worker_ms,
            "service_ms": service_ms, "broker_ms": broker_ms, "in_process_ms": in_process,
            "memory": memory, "processes": processes, "flat": flat,
            "load": (load_before, load_after)}


def measure_ceiling(cluster, merchant, created, count: int, tmp: Path) -> float:
    """The echo consumer's rate for ``count`` BillingDue, measured like the figure."""
    echo_dir = tmp / "bench-echo"
    echo_dir.mkdir(exist_ok=True)
    (echo_dir / "bench_echo.py").write_text(ECHO_SERVICE)
    db = f"sqlite:///{echo_dir}/echo.sqlite3"
    documents_queue = topology.consumer_queue_name("BillingDue", "documents",
                                                   "handle_billing_due")
    service = cluster.processes["documents"]
    echo = subprocess.Popen([sys.executable, "-c", ECHO_MAIN, cluster.amqp_uri, db,
                             str(echo_dir)], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    tap = Tap(cluster.amqp_uri)
    os.kill(service.pid, signal.SIGSTOP)  # the echo alone consumes BillingDue now
    try:
        if echo.stdout.readline().strip() != "ready":
            raise SystemExit("bench: the echo consumer did not start")
        echo_queue = topology.consumer_queue_name("BillingDue", "bench_echo",
                                                  "handle_billing_due")
        harness_wait(lambda: cluster.rabbit_manager.get_queue(cluster.vhost, echo_queue)
                     .get("consumers", 0) > 0, 30, "the echo consumer")
        load = [billing_due(merchant, created[i % len(created)], 100 + i // len(created))
                for i in range(count)]
        os.kill(echo.pid, signal.SIGSTOP)
        try:
            publish(cluster.amqp_uri, load)
        finally:
            cpu_before = cpu_seconds([echo.pid])
            os.kill(echo.pid, signal.SIGCONT)
        seconds = tap.wait_for(count, 120)
        print(f"  echo consumer: {(cpu_seconds([echo.pid]) - cpu_before) / count * 1000:.1f} ms "
              "CPU per event (nameko + inbox + outbox + relay: the fixed part of the figure)")
    finally:
        tap.close()
        echo.send_signal(signal.SIGTERM)
        try:
            echo.wait(15)
        except subprocess.TimeoutExpired:
            echo.kill()
        purge(cluster, documents_queue)  # the copies meant for the echo's run only
        cluster.rabbit_manager._delete("queues", cluster.vhost,
                                       topology.consumer_queue_name(
                                           "BillingDue", "bench_echo", "handle_billing_due"))
        os.kill(service.pid, signal.SIGCONT)
    return count / seconds


def harness_wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: timed out waiting for {what}")
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--contracts", type=int, default=500)
    args = parser.parse_args(argv)
    from nameko.testing.rabbit import Client

    from bench.__main__ import AMQP, MANAGEMENT
    from tests.support.cluster import Cluster

    with tempfile.TemporaryDirectory(prefix="portico-bench-") as tmp:
        with Cluster(Client(MANAGEMENT), AMQP, Path(tmp) / "var",
                     env={"LOG_LEVEL": "WARNING"}) as cluster:
            run(cluster, tmp, documents=args.documents, contracts=args.contracts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
