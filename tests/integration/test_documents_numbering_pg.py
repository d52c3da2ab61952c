"""Document numbers on PostgreSQL: gap-free and duplicate-free with concurrent workers.

Two things run at once here: OS processes allocating numbers in their own transactions (some of
which roll back), and two documents service containers competing for the same BillingDue queue
on one database. Real: PostgreSQL (a scratch database), RabbitMQ, the service.
"""
from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
from collections import Counter

import pytest
from nameko.testing.services import entrypoint_hook
from sqlalchemy import create_engine, select

from services.common.clock import Clock, FrozenClock
from services.common.database import Database
from services.common.migrate import upgrade
from services.documents.models import Document
from services.documents.service import DocumentsService
from tests.support.cluster import ROOT, wait_until
from tests.support.postgres import scratch_database
from tests.support.services import dependency
from tests.unit.documents import factories as f

pytestmark = pytest.mark.postgres

WORKER = textwrap.dedent("""
    import random, sys
    from sqlalchemy.orm import Session
    from services.common.database import make_engine
    from services.documents.issuing import allocate_number
    from services.documents.models import NumberSequence
    url, merchant, count, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    rng = random.Random(seed)
    engine = make_engine(url, pool_size=1)
    kept = []
    for _ in range(count):
        with Session(engine) as session:
            number = allocate_number(session, merchant, "invoice")
            if rng.random() < 0.25:
                session.rollback()  # e.g. the document failed validation: number goes back
                continue
            session.execute(NumberSequence.__table__.insert().values(
                merchant_id=f"{merchant}-{number}", kind="used", last_value=number))
            session.commit()
            kept.append(number)
    print(" ".join(map(str, kept)))
""")


@pytest.fixture
def pg_url(pg_admin_url):
    with scratch_database(pg_admin_url) as url:
        upgrade("documents", url)
        yield url


def test_processes_allocating_at_once_leave_no_gap_and_no_duplicate(pg_url):
    merchant = f.new_merchant_id()
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, pg_url, merchant, "60", str(seed)],
                                cwd=ROOT, stdout=subprocess.PIPE, text=True)
               for seed in range(4)]
    kept = []
    for worker in workers:
        out, _ = worker.communicate(timeout=120)
        assert worker.returncode == 0
        kept += [int(n) for n in out.split()]

    # every committed number once; the rolled-back ones were handed out again
    assert sorted(kept) == list(range(1, len(kept) + 1))
    assert 120 < len(kept) < 240


def test_competing_service_replicas_number_every_invoice_once_without_gaps(
        pg_url, start_service, tmp_path, rabbit_config):
    replicas = []
    for _ in range(2):
        container = start_service(DocumentsService, "documents", DB_URL=pg_url,
                                  RENDER_WORKERS=1, DOCUMENTS_DIR=str(tmp_path / "files"))
        dependency(container, Clock).clock = FrozenClock("2027-01-15T09:00:00+00:00")
        replicas.append(container)
    merchant = f.new_merchant_id()
    with entrypoint_hook(replicas[0], "update_document_settings") as update:
        update(merchant, f.settings())

    start = dt.date(2027, 1, 15)
    created = [f.contract_created(merchant, start=start, trial_end=start, trial_days=0)
               for _ in range(40)]
    # contracts first (no invoice: billed from BillingDue), then each period due twice
    f.publish(rabbit_config["AMQP_URI"], *created)
    due = []
    for event in created:
        contract_id = event.payload["contract_id"]
        due += [f.billing_due(merchant, contract_id, start, dt.date(2027, 2, 15))] * 2
        due.append(f.billing_due(merchant, contract_id, start, dt.date(2027, 2, 15)))
    f.publish(rabbit_config["AMQP_URI"], *due)

    engine = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))

    def issued():
        with engine.connect() as conn:
            found = conn.execute(select(Document.sequence, Document.number, Document.contract_id,
                                        Document.status).where(
                Document.merchant_id == merchant, Document.kind == "invoice")).all()
        return found if len(found) == 40 and all(r.status == "issued" for r in found) else None

    try:
        found = wait_until(issued, timeout=90, what="40 issued invoices")
    finally:
        engine.dispose()
        for container in replicas:  # release their connections before the database is dropped
            container.stop()
            dependency(container, Database).engine.dispose()
    assert sorted(r.sequence for r in found) == list(range(1, 41))
    assert len({r.number for r in found}) == 40
    assert Counter(r.contract_id for r in found).most_common(1)[0][1] == 1
    assert {r.number for r in found} == {f"INV-2027-{n:05}" for n in range(1, 41)}
