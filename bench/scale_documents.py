"""Scale demonstration: N documents instances share one queue and one PostgreSQL database.

    make scale-demo                                   # N = 1, 2, 3; 3,000 events each
    .venv/bin/python -m bench.scale_documents --instances 1,2,3 --events 3000 --merchants 30

For each N, on a fresh RabbitMQ vhost and a fresh, migrated PostgreSQL database:

1. start N ``python -m services.common.runner documents`` processes and wait until each one
   consumes the event queue;
2. freeze them (SIGSTOP), publish the events with publisher confirms (one ``ContractCreated``
   without trial per contract: the documents service issues, numbers, renders and stores that
   contract's first invoice), thaw them (SIGCONT): the clock runs from the thaw to the last
   invoice issued, so the figure is the consumers' throughput, not the publisher's;
3. check: every event handled once (one inbox row each), every contract invoiced exactly once
   (none twice, none missing), every merchant's numbers 1..n without a gap, every PDF stored,
   nothing dead-lettered;
4. attribute each event to the instance that handled it: each instance connects with its own
   PostgreSQL ``application_name``, which the scratch database records on every inbox row
   (a column default added to this scratch copy only).

Prints, per N: seconds, events/s, speed-up, per-instance efficiency (events/s / (N x the
N=1 figure)), each instance's share of the events, and CPU ms per event (the instances and
their render workers, from /proc). All of it runs on this machine: RabbitMQ and PostgreSQL
share its cores with the instances, which bounds the speed-up (docs/operations.md).

If the documents service consumes no event, it says so and measures its ``health`` RPC
instead, attributed from RabbitMQ's per-channel statistics; it never reports invented figures.
"""
import importlib

# first, before kombu, nameko and psycopg are imported: eventlet's monkey-patching
importlib.import_module("services.common.green")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import datetime as dt  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import quote, urlparse  # noqa: E402

import psycopg  # noqa: E402
import requests  # noqa: E402
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR  # noqa: E402

from services.common import events, migrate, topology  # noqa: E402
from services.common.amqp import CONFIRMED, ConfirmingPublisher, Outgoing, json_body  # noqa: E402
from services.common.entrypoints import EventHandler  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SERVICE = "documents"
PREFERRED_EVENTS = ("ContractCreated", "BillingDue")  # ContractCreated: one invoice per event


# -- small helpers ---------------------------------------------------------------------------
def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def handlers_of_documents() -> dict[str, str]:
    """{event type: handler method} of the documents service's ``@event_handler``s."""
    from services.documents.service import DocumentsService

    found = {}
    for name in dir(DocumentsService):
        for extension in getattr(getattr(DocumentsService, name), ENTRYPOINT_EXTENSIONS_ATTR,
                                 ()):
            if isinstance(extension, EventHandler):
                found[extension.event_type] = name
    return found


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the render workers), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def pids_named(*names: str) -> list[int]:
    """Processes whose command is one of ``names`` (the broker, the database server)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in names:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def infrastructure_cpu() -> dict[str, float]:
    return {"RabbitMQ": cpu_seconds(pids_named("beam.smp")),
            "PostgreSQL": cpu_seconds(pids_named("postgres"))}


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / ticks


class Management:
    """The RabbitMQ management API: vhosts, queue depths and consumers, channel statistics."""

    def __init__(self, url: str):
        parts = urlparse(url)
        self.base = f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}/api"
        self.auth = (parts.username or "guest", parts.password or "guest")

    def call(self, method: str, path: str, **kwargs):
        response = requests.request(method, f"{self.base}{path}", auth=self.auth, timeout=10,
                                    **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def create_vhost(self, vhost: str, user: str) -> None:
        self.call("PUT", f"/vhosts/{quote(vhost, safe='')}")
        self.call("PUT", f"/permissions/{quote(vhost, safe='')}/{quote(user, safe='')}",
                  json={"configure": ".*", "write": ".*", "read": ".*"})

    def delete_vhost(self, vhost: str) -> None:
        try:
            self.call("DELETE", f"/vhosts/{quote(vhost, safe='')}")
        except requests.RequestException:
            pass

    def queue(self, vhost: str, name: str) -> dict:
        return self.call("GET", f"/queues/{quote(vhost, safe='')}/{quote(name, safe='')}")

    def channels(self, vhost: str) -> list[dict]:
        return self.call("GET", f"/vhosts/{quote(vhost, safe='')}/channels")


# -- one round: N instances -----------------------------------------------------------------------
@dataclasses.dataclass
class Round:
    instances: int
    events: int
    publish_seconds: float
    seconds: float
    per_instance: list[int]
    cpu_ms_per_event: float
    rss_mb: list[float]
    checks: list[str]
    infrastructure_ms_per_event: dict[str, float] = dataclasses.field(default_factory=dict)
    load_average: float = 0.0
    service_cpu_ms_per_event: float = 0.0  # the service processes alone, without renderers

    @property
    def rate(self) -> float:
        return self.events / self.seconds


class Scratch:
    """A RabbitMQ vhost and a PostgreSQL database that exist for one round only."""

    def __init__(self, args):
        self.args = args
        token = secrets.token_hex(4)
        self.vhost = f"portico_scale_{token}"
        self.database = f"portico_scale_{token}"
        amqp = urlparse(args.amqp)
        self.amqp_user = amqp.username or "guest"
        self.amqp_uri = f"{amqp.scheme}://{amqp.netloc}/{self.vhost}"
        pg = urlparse(args.postgres)
        self.db_url = f"{pg.scheme}://{pg.netloc}/{self.database}"
        self.management = Management(args.management)
        self.var = Path(tempfile.mkdtemp(prefix="portico-scale-"))

    def __enter__(self):
        self.management.create_vhost(self.vhost, self.amqp_user)
        with psycopg.connect(self.args.postgres, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')
        migrate.upgrade(SERVICE, self.db_url)
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            # this scratch copy only: which instance (application_name) handled each event
            conn.execute("ALTER TABLE inbox ADD COLUMN handled_by text "
                         "DEFAULT current_setting('application_name')")
        topology.declare_all(self.amqp_uri)
        return self

    def __exit__(self, *exc):
        self.management.delete_vhost(self.vhost)
        try:
            with psycopg.connect(self.args.postgres, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        except psycopg.Error as error:
            print(f"scale-demo: could not drop {self.database}: {error}", file=sys.stderr)
        subprocess.run(["rm", "-rf", str(self.var)], check=False)

    def sql(self, query: str, *params):
        with psycopg.connect(self.db_url) as conn:
            return conn.execute(query, params).fetchall()


def start_instances(scratch: Scratch, n: int, args) -> list[subprocess.Popen]:
    processes = []
    for i in range(1, n + 1):
        env = dict(os.environ, AMQP_URI=scratch.amqp_uri, PORTICO_VAR=str(scratch.var),
                   DOCUMENTS_DB_URL=f"{scratch.db_url}?application_name=instance-{i}",
                   DOCUMENTS_DIR=str(scratch.var / "documents"), LOG_LEVEL="WARNING",
                   PYTHONPATH=str(ROOT))
        env["DOCUMENTS_RENDER_WORKERS"] = str(args.render_workers)
        log = (scratch.var / f"instance-{i}.log").open("wb")
        # cwd: the scratch directory, so files the service keeps relative to it stay there
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "services.common.runner", SERVICE], cwd=scratch.var,
            env=env, stdout=log, stderr=subprocess.STDOUT))
    return processes


def stop_instances(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            try:
                os.kill(process.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def check_alive(scratch: Scratch, processes: list[subprocess.Popen]) -> None:
    for i, process in enumerate(processes, 1):
        if process.poll() is not None:
            tail = (scratch.var / f"instance-{i}.log").read_text(errors="replace")[-3000:]
            hint = (" (a clean stop: SIGTERM or SIGINT from outside the demo)"
                    if process.returncode == 0 else "")
            raise RuntimeError(f"instance {i} exited with {process.returncode}{hint}:\n{tail}")


def wait_consuming(scratch: Scratch, processes, queue: str, timeout: float = 60) -> None:
    def consumers():
        check_alive(scratch, processes)
        try:
            return scratch.management.queue(scratch.vhost, queue).get("consumers", 0) \
                >= len(processes)
        except requests.RequestException:
            return False

    wait_until(consumers, timeout, f"{len(processes)} consumers on {queue}", 0.2)


def contract_created(merchant_id: str, billing_start: dt.date) -> events.Event:
    contract_id = f"ctr_{uuid.uuid4().hex}"
    return events.new_event("ContractCreated", merchant_id=merchant_id, aggregate_id=contract_id,
                            payload={
        "contract_id": contract_id, "customer_id": f"cus_{uuid.uuid4().hex}",
        "order_id": f"ord_{uuid.uuid4().hex}", "plan_variant_id": "pv_scale_demo",
        "plan_name": "Pro monthly", "currency": "EUR", "start_date": billing_start,
        "trial_end": None, "billing_start": billing_start,
        "terms": {"setup_fee": "9.90", "recurring_fee": "29.00", "billing_period_months": 1,
                  "trial_days": 0, "notice_period": {"value": 1, "unit": "month"},
                  "minimum_term": None},
        "components": [], "coupon": None,
        "tax": {"rate": "19", "category": "S", "reverse_charge": False, "country": "DE"},
        "customer": {"email": "scale@example.com", "first_name": "Ada", "last_name": "Lovelace",
                     "street": "Hauptstr.", "house_number": "1", "postal_code": "10115",
                     "city": "Berlin", "country": "DE", "language": "en"},
        "external_id": None, "language": "en"}).with_sequence(1)


def publish(amqp_uri: str, batch: list[events.Event]) -> float:
    """Publish ``batch`` with confirms, 500 per round trip; return the seconds it took."""
    publisher = ConfirmingPublisher(amqp_uri)
    started = time.perf_counter()
    try:
        for i in range(0, len(batch), 500):
            outgoing = [Outgoing(exchange=e.kind.exchange, routing_key=e.type,
                                 body=json_body(e.body()), message_id=e.event_id)
                        for e in batch[i:i + 500]]
            results = publisher.publish_batch(outgoing, declare=False)
            if any(result != CONFIRMED for result in results):
                raise RuntimeError(f"the broker did not confirm every event: {set(results)}")
    finally:
        publisher.close()
    return time.perf_counter() - started


def run_events_round(n: int, args, handler: str) -> Round:
    consumer = f"{SERVICE}.{handler}"
    queue = topology.consumer_queue_name("ContractCreated", SERVICE, handler)
    billing_start = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    merchants = [f"m_scale_{i:03d}" for i in range(args.merchants)]
    batch = [contract_created(merchants[i % len(merchants)], billing_start)
             for i in range(args.events)]
    with Scratch(args) as scratch:
        processes = start_instances(scratch, n, args)
        try:
            wait_consuming(scratch, processes, queue)
            trees = [process_tree(p.pid) for p in processes]
            for process in processes:
                os.kill(process.pid, signal.SIGSTOP)
            publish_seconds = publish(scratch.amqp_uri, batch)
            load_average = os.getloadavg()[0]
            cpu_before = cpu_seconds([pid for tree in trees for pid in tree])
            service_before = cpu_seconds([p.pid for p in processes])
            infrastructure_before = infrastructure_cpu()
            started = time.perf_counter()
            for process in processes:
                os.kill(process.pid, signal.SIGCONT)

            def issued():
                check_alive(scratch, processes)
                return scratch.sql("SELECT count(*) FROM documents WHERE status <> 'rendering'"
                                   )[0][0] >= args.events

            wait_until(issued, args.timeout, f"{args.events} invoices issued")
            seconds = time.perf_counter() - started
            trees = [process_tree(p.pid) for p in processes]
            cpu = cpu_seconds([pid for tree in trees for pid in tree]) - cpu_before
            service_cpu = cpu_seconds([p.pid for p in processes]) - service_before
            infrastructure = {name: (value - infrastructure_before[name]) * 1000 / args.events
                              for name, value in infrastructure_cpu().items()}
            rss = [rss_of_tree(tree) for tree in trees]
            checks = verify(scratch, consumer, batch, merchants)
            shares = dict(scratch.sql("SELECT handled_by, count(*) FROM inbox "
                                      "WHERE consumer = %s GROUP BY handled_by", consumer))
        finally:
            stop_instances(processes)
    per_instance = [shares.get(f"instance-{i}", 0) for i in range(1, n + 1)]
    return Round(n, args.events, publish_seconds, seconds, per_instance,
                 cpu * 1000 / args.events, rss, checks, infrastructure, load_average,
                 service_cpu * 1000 / args.events)


def rss_of_tree(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def verify(scratch: Scratch, consumer: str, batch: list[events.Event], merchants) -> list[str]:
    """Every event handled once; every contract invoiced once; numbers without gaps."""
    problems = []
    ids = [e.event_id for e in batch]
    handled, distinct = scratch.sql(
        "SELECT count(*), count(DISTINCT event_id) FROM inbox WHERE consumer = %s "
        "AND event_id = ANY(%s)", consumer, ids)[0]
    if handled != len(ids) or distinct != len(ids):
        problems.append(f"inbox: {handled} rows, {distinct} distinct, {len(ids)} events pushed")
    contracts = [e.payload["contract_id"] for e in batch]
    per_contract = dict(scratch.sql(
        "SELECT contract_id, count(*) FROM documents WHERE kind = 'invoice' "
        "GROUP BY contract_id"))
    missing = [c for c in contracts if per_contract.get(c, 0) == 0]
    twice = {c: k for c, k in per_contract.items() if k != 1}
    if missing:
        problems.append(f"{len(missing)} contract(s) without an invoice")
    if twice:
        problems.append(f"{len(twice)} contract(s) invoiced more than once")
    for merchant, count, distinct_numbers, low, high in scratch.sql(
            "SELECT merchant_id, count(*), count(DISTINCT number), min(sequence), "
            "max(sequence) FROM documents WHERE kind = 'invoice' GROUP BY merchant_id"):
        if not (count == distinct_numbers == high - low + 1 and low == 1):
            problems.append(f"{merchant}: {count} invoices, numbers {low}..{high}, "
                            f"{distinct_numbers} distinct")
    unfinished = dict(scratch.sql("SELECT status, count(*) FROM documents GROUP BY status"))
    if set(unfinished) - {"issued"}:
        problems.append(f"document states: {unfinished}")
    stored = scratch.sql("SELECT count(*) FROM documents WHERE pdf_sha256 IS NOT NULL")[0][0]
    if stored != len(batch):
        problems.append(f"{stored} PDFs stored for {len(batch)} invoices")
    dead = scratch.management.queue(scratch.vhost, topology.DEAD_LETTER_QUEUE)
    if dead.get("messages", 0):
        problems.append(f"{dead['messages']} message(s) dead-lettered")
    return problems


# -- fallback: the health RPC ----------------------------------------------------------------------
def run_rpc_round(n: int, args) -> Round:
    """No event to consume: spread ``args.events`` health calls over N instances."""
    from nameko.standalone.rpc import ClusterRpcProxy

    with Scratch(args) as scratch:
        processes = start_instances(scratch, n, args)
        try:
            wait_consuming(scratch, processes, f"rpc-{SERVICE}")
            trees = [process_tree(p.pid) for p in processes]
            load_average = os.getloadavg()[0]
            cpu_before = cpu_seconds([pid for tree in trees for pid in tree])
            infrastructure_before = infrastructure_cpu()
            started = time.perf_counter()
            with ClusterRpcProxy({"AMQP_URI": scratch.amqp_uri}, timeout=60) as rpc:
                for i in range(0, args.events, 200):
                    calls = [rpc.documents.health.call_async()
                             for _ in range(min(200, args.events - i))]
                    if any(call.result()["status"] != "ok" for call in calls):
                        raise RuntimeError("a health call failed")
            seconds = time.perf_counter() - started
            cpu = cpu_seconds([pid for tree in trees for pid in tree]) - cpu_before
            infrastructure = {name: (value - infrastructure_before[name]) * 1000 / args.events
                              for name, value in infrastructure_cpu().items()}
            rss = [rss_of_tree(tree) for tree in trees]
            per_instance = rpc_shares(scratch, processes, args.events)
        finally:
            stop_instances(processes)
    return Round(n, args.events, 0.0, seconds, per_instance, cpu * 1000 / args.events, rss,
                 [], infrastructure, load_average)


def rpc_shares(scratch: Scratch, processes, expected: int) -> list[int]:
    """Acks per instance from RabbitMQ's channel statistics (refreshed every few seconds)."""
    ports = {}
    for i, process in enumerate(processes):
        inodes = set()
        for pid in process_tree(process.pid):
            fd_dir = Path(f"/proc/{pid}/fd")
            for fd in fd_dir.iterdir() if fd_dir.exists() else ():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        for name in ("tcp", "tcp6"):
            for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    ports[int(fields[1].rsplit(":", 1)[1], 16)] = i

    def shares():
        counts = [0] * len(processes)
        for channel in scratch.management.channels(scratch.vhost):
            port = channel.get("connection_details", {}).get("peer_port")
            if port in ports:
                counts[ports[port]] += channel.get("message_stats", {}).get("ack", 0)
        return counts if sum(counts) >= expected else None

    return wait_until(shares, 30, "RabbitMQ's channel statistics", 1.0)


# -- report --------------------------------------------------------------------------------
def report(rounds: list[Round], mode: str, args) -> None:
    base = rounds[0].rate / rounds[0].instances
    cores = os.cpu_count()
    print(f"\ndocuments scale demonstration: {args.events} {mode} per N, {args.merchants} "
          f"merchants, {args.queue_type} queues, {args.render_workers} render worker(s) per "
          f"instance, {cores} cores shared with RabbitMQ and PostgreSQL")
    print(f"{'N':>2} {'seconds':>8} {'events/s':>9} {'speed-up':>9} {'efficiency':>11} "
          f"{'CPU ms/event':>13} {'broker':>7} {'db':>5} {'load':>5}  "
          "events per instance (share)")
    for r in rounds:
        speedup = r.rate / base
        shares = ", ".join(f"{k} ({k / max(sum(r.per_instance), 1):.0%})"
                           for k in r.per_instance)
        infra = r.infrastructure_ms_per_event
        print(f"{r.instances:>2} {r.seconds:>8.2f} {r.rate:>9.1f} {speedup:>8.2f}x "
              f"{speedup / r.instances:>10.0%} {r.cpu_ms_per_event:>13.1f} "
              f"{infra.get('RabbitMQ', 0):>7.1f} {infra.get('PostgreSQL', 0):>5.1f} "
              f"{r.load_average:>5.1f}  {shares}")
    print("CPU ms/event: the instances with their render workers (the service processes alone: "
          + ", ".join(f"N={r.instances} {r.service_cpu_ms_per_event:.1f}" for r in rounds)
          + "); broker and db: RabbitMQ's "
          "and PostgreSQL's CPU ms per event over the same interval (machine-wide: anything "
          "else using them counts too); load: the 1-minute load average when the round began")
    publishes = [r for r in rounds if r.publish_seconds]
    if publishes:
        ceiling = max(r.events / r.publish_seconds for r in publishes)
        print(f"in-run ceiling: the publisher confirmed up to {ceiling:.0f} events/s "
              f"(the load generator; consumers ran after it had finished)")
    print("resident memory per instance (with its render workers): " + "; ".join(
        f"N={r.instances}: " + ", ".join(f"{m:.0f} MB" for m in r.rss_mb) for r in rounds))
    failed = [(r.instances, p) for r in rounds for p in r.checks]
    for instances, problem in failed:
        print(f"CHECK FAILED (N={instances}): {problem}")
    if not failed and mode != "health RPC calls":
        print("checks: every event handled exactly once, every contract invoiced exactly once "
              "(none missing, none twice), numbers gapless per merchant, every PDF stored, "
              "nothing dead-lettered")
    idle = [(r.instances, i + 1) for r in rounds for i, k in enumerate(r.per_instance) if not k]
    for instances, i in idle:
        print(f"CHECK FAILED (N={instances}): instance {i} handled nothing")
    if failed or idle:
        raise SystemExit(1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_documents",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", default="1,2,3", help="comma-separated N (1,2,3)")
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--merchants", type=int, default=30,
                        help="merchants the contracts belong to (each numbers its own invoices)")
    parser.add_argument("--render-workers", type=int, default=1,
                        help="render processes per instance (DOCUMENTS_RENDER_WORKERS; 1, as "
                             "in deploy/: scale by instances)")
    parser.add_argument("--queue-type", choices=["classic", "quorum"],
                        default=os.environ.get("PORTICO_QUEUE_TYPE", "classic"),
                        help="PORTICO_QUEUE_TYPE for the scratch vhost (quorum: as in a cluster)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per round")
    parser.add_argument("--amqp", default=os.environ.get("PORTICO_BENCH_AMQP_URI",
                                                         "amqp://guest:guest@127.0.0.1:5672/"))
    parser.add_argument("--management", default=os.environ.get(
        "PORTICO_BENCH_RABBIT_API", "http://guest:guest@127.0.0.1:15672"))
    parser.add_argument("--postgres", default=os.environ.get(
        "PORTICO_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args(argv)
    os.environ["PORTICO_QUEUE_TYPE"] = args.queue_type  # declare_all here and in the instances
    counts = [int(n) for n in args.instances.split(",")]
    handlers = handlers_of_documents()
    event_type = next((t for t in PREFERRED_EVENTS if t in handlers), None)
    subscribed = {(m, t) for s, m, t in topology.SUBSCRIPTIONS if s == SERVICE}
    if event_type == "ContractCreated":
        handler = handlers[event_type]
        if (handler, event_type) not in subscribed:
            print(f"note: topology.SUBSCRIPTIONS lacks ({SERVICE!r}, {handler!r}, "
                  f"{event_type!r}); its queue exists only while a consumer runs")
        print(f"workload: {args.events} ContractCreated events (no trial) -> one invoice each, "
              f"handled by {SERVICE}.{handler}", flush=True)
        rounds = []
        for n in counts:
            rounds.append(run_events_round(n, args, handler))
            print(f"  N={n}: {rounds[-1].rate:.1f} events/s", flush=True)
        report(rounds, "ContractCreated events", args)
    else:
        print(f"the {SERVICE} service handles no ContractCreated event yet "
              f"(handlers: {handlers or 'none'}): measuring {args.events} calls of its health "
              "RPC (a database read) instead; no document is issued", flush=True)
        rounds = [run_rpc_round(n, args) for n in counts]
        report(rounds, "health RPC calls", args)
    return 0


def run(cluster, tmp) -> None:
    """``python -m bench scale_documents`` (and ``make bench``): the same demonstration. It
    starts its own instances on scratch vhosts and databases; the bench cluster idles."""
    main([])


if __name__ == "__main__":
    sys.exit(main())
