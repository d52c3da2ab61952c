"""Helpers for the notifications integration tests (no tests here).

- ``Receiver``: a real threaded HTTP server on loopback that answers from a script and keeps
  every request (path, headers, body), as a merchant's webhook endpoint would.
- ``neighbours``: tiny stand-ins for the other services (``tokens.mint_token``,
  ``portal.get_contract``, ``signup.get_settings``, ``documents.get_pdf``), the only things
  outside the service under test, answering from a ``World`` the test fills.
- event factories and ``publish`` (what the other services' outbox relays would send).
"""
from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import http.server
import json
import threading
import uuid
from decimal import Decimal

from services.common import events
from services.common.amqp import CONFIRMED, ConfirmingPublisher, Outgoing, json_body
from services.common.clock import Clock, FrozenClock
from services.common.entrypoints import rpc
from services.common.errors import NotFound
from tests.support.services import dependency

# -- a webhook receiver ----------------------------------------------------------------------


@dataclasses.dataclass
class Received:
    path: str
    headers: dict
    body: bytes


class Receiver:
    """``Receiver(script)``: ``script(request_number, path) -> (status, headers)``."""

    def __init__(self, script=None):
        self.requests: list[Received] = []
        self.script = script or (lambda n, path: (200, {}))
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # http.server calls it so
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                receiver.requests.append(Received(self.path, dict(self.headers), body))
                status, headers = receiver.script(len(receiver.requests), self.path)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            request_queue_size = 128  # many deliveries at once are normal

        self.server = Server(("127.0.0.1", 0), Handler)
        # a short poll: under eventlet the accept loop otherwise answers in 0.5 s steps
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.01,),
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def on(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# -- the neighbouring services ---------------------------------------------------------------


@dataclasses.dataclass
class World:
    """What the stand-in services know; tests fill it."""

    public_url: str = "http://portico.test"
    contracts: dict = dataclasses.field(default_factory=dict)  # (merchant, id) → contract
    settings: dict = dataclasses.field(default_factory=dict)  # merchant → settings
    pdfs: dict = dataclasses.field(default_factory=dict)  # (merchant, document id) → bytes
    minted: list = dataclasses.field(default_factory=list)  # (merchant, contract, token)


def neighbours(world: World) -> list[type]:
    class Tokens:
        name = "tokens"

        @rpc
        def mint_token(self, merchant_id, contract_id, validity_minutes=None):
            if (merchant_id, contract_id) not in world.contracts:
                raise NotFound("No such contract.")
            token = uuid.uuid4().hex
            world.minted.append((merchant_id, contract_id, token))
            return {"token": token, "url": f"{world.public_url}/portal?token={token}",
                    "expires_at": "2030-01-01T00:00:00+00:00"}

    class Portal:
        name = "portal"

        @rpc
        def get_contract(self, merchant_id, contract_id):
            try:
                return world.contracts[(merchant_id, contract_id)]
            except KeyError:
                raise NotFound("No such contract.") from None

    class Signup:
        name = "signup"

        @rpc
        def get_settings(self, merchant_id):
            found = world.settings.get(merchant_id, {})
            return {"default_language": found.get("default_language", "en"),
                    "token_validity_minutes": 1440,
                    "merchant": {"id": merchant_id, "slug": "acme",
                                 "name": found.get("name", "Acme GmbH"), "country": "DE"}}

    class Documents:
        name = "documents"

        @rpc
        def get_pdf(self, merchant_id, document_id, contract_id=None):
            try:
                content = world.pdfs[(merchant_id, document_id)]
            except KeyError:
                raise NotFound("No such document.") from None
            return {"filename": f"{document_id}.pdf",
                    "content_b64": base64.b64encode(content).decode(),
                    "sha256": hashlib.sha256(content).hexdigest()}

    return [Tokens, Portal, Signup, Documents]


def start_neighbours(container_factory, rabbit_config, world: World) -> None:
    for cls in neighbours(world):
        container_factory(cls, rabbit_config).start()


def freeze(container, at: str | dt.datetime | None = None) -> FrozenClock:
    clock = FrozenClock(at or dt.datetime.now(dt.UTC).replace(microsecond=0))
    dependency(container, Clock).clock = clock
    return clock


# -- events ------------------------------------------------------------------------------------


def new_merchant_id() -> str:
    return f"m_{uuid.uuid4().hex}"


def customer(**overrides) -> dict:
    return {"email": "ann@example.com", "first_name": "Ann", "last_name": "Lee",
            "country": "DE", **overrides}


def contract_created(merchant_id: str, contract_id: str | None = None, *, language="en",
                     **customer_overrides) -> events.Event:
    contract_id = contract_id or f"ct_{uuid.uuid4().hex}"
    terms = {"setup_fee": Decimal("9.90"), "recurring_fee": Decimal("29.00"),
             "billing_period_months": 1, "trial_days": 0,
             "notice_period": {"value": 1, "unit": "month"}, "minimum_term": None}
    return events.new_event("ContractCreated", merchant_id=merchant_id, aggregate_id=contract_id,
                            payload={
        "contract_id": contract_id, "customer_id": f"cu_{uuid.uuid4().hex}",
        "order_id": f"or_{uuid.uuid4().hex}", "plan_variant_id": "pv_1",
        "plan_name": "Pro monthly", "currency": "EUR", "start_date": dt.date(2027, 1, 15),
        "trial_end": None, "billing_start": dt.date(2027, 1, 15), "terms": terms,
        "tax": {"rate": Decimal("19"), "category": "standard", "reverse_charge": False,
                "country": "DE"},
        "customer": customer(**customer_overrides), "language": language})


def contract_view(event: events.Event) -> dict:
    """What ``portal.get_contract`` answers for the contract of a ContractCreated event."""
    payload = event.kind.schema().dump(event.payload)
    return {"id": payload["contract_id"], "merchant_id": event.merchant_id,
            "customer_id": payload["customer_id"], "customer": payload["customer"],
            "plan_name": payload["plan_name"], "currency": payload["currency"],
            "start_date": payload["start_date"], "trial_end": None, "end_date": None,
            "language": payload["language"], "external_id": None}


def invoice_issued(merchant_id: str, contract_id: str, document_id: str | None = None,
                   number: str = "INV-2027-0001") -> events.Event:
    document_id = document_id or f"doc_{uuid.uuid4().hex}"
    return events.new_event("InvoiceIssued", merchant_id=merchant_id, aggregate_id=document_id,
                            payload={
        "document_id": document_id, "number": number, "contract_id": contract_id,
        "customer_id": "cu_1", "issue_date": dt.date(2027, 1, 15),
        "due_date": dt.date(2027, 1, 29), "period_start": dt.date(2027, 1, 15),
        "period_end": dt.date(2027, 2, 14), "currency": "EUR", "net_total": Decimal("24.37"),
        "tax_total": Decimal("4.63"), "gross_total": Decimal("29.00")})


def contract_ended(merchant_id: str, contract_id: str | None = None) -> events.Event:
    contract_id = contract_id or f"ct_{uuid.uuid4().hex}"
    return events.new_event("ContractEnded", merchant_id=merchant_id, aggregate_id=contract_id,
                            payload={"contract_id": contract_id,
                                     "ended_on": dt.date(2027, 6, 30)})


def publish(amqp_uri: str, *events_: events.Event) -> None:
    """Publish as the source service's outbox relay would (confirmed, persistent)."""
    publisher = ConfirmingPublisher(amqp_uri)
    try:
        results = publisher.publish_batch([
            Outgoing(exchange=e.kind.exchange, routing_key=e.type,
                     body=json_body(e.body()), message_id=e.event_id) for e in events_])
    finally:
        publisher.close()
    assert all(r == CONFIRMED for r in results), results


def envelope(received: Received) -> dict:
    return json.loads(received.body)
