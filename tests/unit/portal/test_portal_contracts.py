"""Contracts over a real (in-memory) database: creation, view, cancellation, withdrawal, the
lifecycle timer's billing and ending, and the balance from the documents' events."""
import datetime as dt

import pytest
from sqlalchemy import select

from services.common.errors import Conflict, NotFound
from services.portal import contracts, ledger
from services.portal.models import Contract

from .orders import document_issued, order_submitted, payment_received

D = dt.date
M = "m_test"


def create(database, **order):
    db = database.unit()
    event = order_submitted(M, **order)
    contracts.create_from_order(db, event)
    db.commit()
    db.close()
    return event.payload["contract_id"]


def load(db, contract_id) -> Contract:
    return contracts.get_contract(db.session, M, contract_id)


def types(database):
    return [e["type"] for e in database.outbox()]


# -- creation and view ---------------------------------------------------------------------------


def test_the_same_order_twice_gives_one_contract(database, db):
    event = order_submitted(M)
    contracts.create_from_order(db, event)
    db.commit()
    contracts.create_from_order(db, event)
    db.commit()

    assert len(db.session.scalars(select(Contract)).all()) == 1
    assert types(database) == ["CustomerCreated", "ContractCreated"]


def test_another_merchants_contract_is_not_found(database, db):
    contract_id = create(database)
    with pytest.raises(NotFound):
        contracts.get_contract(db.session, "m_other", contract_id)
    with pytest.raises(NotFound):
        contracts.get_contract(db.session, M, "ct_missing")


def test_the_view_shows_period_billing_terms_and_state(database, db):
    contract_id = create(database, minimum_term={"value": 12, "unit": "month"})
    view = contracts.contract_view(db.session, load(db, contract_id), D(2026, 3, 10))

    assert view["state"] == "active"
    assert view["current_period"] == {"start": "2026-03-01", "end": "2026-04-01",
                                      "last_day": "2026-03-31"}
    assert view["next_billing_date"] == "2026-04-01"
    assert view["notice_period"] == {"value": 1, "unit": "month"}
    assert view["minimum_term"] == {"value": 12, "unit": "month"}
    assert view["minimum_term_end"] == "2027-01-01"
    assert view["cancellable"] is True
    # cancelled today it would run until the minimum term is served
    assert view["cancellation_preview"] == {"end_date": "2027-01-01", "last_day": "2026-12-31"}
    assert view["components"][0]["quantity"] == 3
    assert view["balance"] == {"amount": "0.00", "currency": "EUR", "invoiced": "0.00",
                               "fees": "0.00", "credited": "0.00", "paid": "0.00"}
    assert view["customer"]["email"] == "ann@example.com"


def test_a_trial_shows_no_period_and_its_last_day(database, db):
    contract_id = create(database, trial_days=14)
    view = contracts.contract_view(db.session, load(db, contract_id), D(2026, 1, 5))
    assert view["state"] == "in_trial"
    assert view["trial_last_day"] == "2026-01-14"
    assert view["current_period"] is None
    assert view["next_billing_date"] == "2026-01-15"
    assert view["cancellation_preview"]["end_date"] == "2026-01-15"


def test_the_latest_contract_id_is_the_newest_of_the_merchant(database, db):
    assert contracts.latest_contract_id(db.session, M) is None
    create(database)
    newest = create(database)
    assert contracts.latest_contract_id(db.session, M) == newest
    assert contracts.latest_contract_id(db.session, "m_other") is None


# -- cancellation --------------------------------------------------------------------------------


def test_cancelling_sets_the_end_by_the_rule_and_announces_it_once(database, db):
    contract_id = create(database)  # monthly from 1 Jan, 1 month notice
    contract = load(db, contract_id)

    contracts.cancel(db, contract, D(2026, 3, 2))
    db.commit()
    contracts.cancel(db, contract, D(2026, 3, 3))  # again: nothing new
    db.commit()

    assert contract.end_date == D(2026, 5, 1)
    assert contract.cancellation_requested_on == D(2026, 3, 2)
    cancelled = [e for e in database.outbox() if e["type"] == "ContractCancelled"]
    assert len(cancelled) == 1
    assert cancelled[0]["payload"] == {
        "contract_id": contract_id, "customer_id": contract.customer_id,
        "requested_on": "2026-03-02", "end_date": "2026-05-01", "last_day": "2026-04-30"}
    view = contracts.contract_view(db.session, contract, D(2026, 3, 3))
    assert view["state"] == "cancellation_requested"
    assert view["cancellable"] is False and view["cancellation_preview"] is None
    assert view["cancellation"] == {"requested_on": "2026-03-02", "end_date": "2026-05-01",
                                    "last_day": "2026-04-30", "withdrawable": True}
    assert view["next_billing_date"] == "2026-04-01"


def test_a_confirmed_end_date_that_no_longer_holds_is_a_conflict(database, db):
    contract = load(db, create(database))
    # the page said 1 April (seen on 1 March); the click arrives on 2 March
    with pytest.raises(Conflict) as conflict:
        contracts.cancel(db, contract, D(2026, 3, 2), expected_end_date=D(2026, 4, 1))
    assert conflict.value.fields["end_date"][0]["params"] == {"end_date": "2026-05-01"}
    db.commit()
    assert load(db, contract.id).end_date is None
    assert "ContractCancelled" not in types(database)


def test_cancelling_during_the_trial_ends_at_the_trial_end(database, db):
    contract = load(db, create(database, trial_days=14))
    contracts.cancel(db, contract, D(2026, 1, 3))
    db.commit()
    assert contract.end_date == D(2026, 1, 15)


def test_withdrawing_a_cancellation_until_it_takes_effect(database, db):
    contract = load(db, create(database))
    contracts.cancel(db, contract, D(2026, 3, 2))
    db.commit()

    contracts.withdraw_cancellation(db, contract, D(2026, 4, 30))  # the last day covered
    db.commit()

    assert contract.end_date is None and contract.cancellation_requested_on is None
    changed = database.outbox()[-1]
    assert changed["type"] == "ContractChanged"
    assert changed["payload"]["changes"] == {"cancellation": "withdrawn",
                                             "withdrawn_on": "2026-04-30", "end_date": None,
                                             "previous_end_date": "2026-05-01"}
    with pytest.raises(Conflict):  # nothing pending any more
        contracts.withdraw_cancellation(db, contract, D(2026, 4, 30))


def test_a_cancellation_that_took_effect_cannot_be_withdrawn_or_repeated(database, db):
    contract = load(db, create(database))
    contracts.cancel(db, contract, D(2026, 3, 2))
    db.commit()
    with pytest.raises(Conflict):
        contracts.withdraw_cancellation(db, contract, D(2026, 5, 1))
    with pytest.raises(Conflict):
        contracts.cancel(db, contract, D(2026, 5, 1))


# -- lifecycle -----------------------------------------------------------------------------------


def billed(database):
    return [(e["payload"]["period_start"], e["payload"]["period_end"])
            for e in database.outbox() if e["type"] == "BillingDue"]


def test_each_period_is_billed_once_on_its_first_day(database, db):
    contract_id = create(database, trial_days=14)  # billing from 15 Jan

    assert contracts.run_lifecycle(db, D(2026, 1, 14)) == 0
    assert billed(database) == []

    contracts.run_lifecycle(db, D(2026, 1, 15))
    contracts.run_lifecycle(db, D(2026, 1, 15))  # the same day again: nothing new
    contracts.run_lifecycle(db, D(2026, 2, 14))
    assert billed(database) == [("2026-01-15", "2026-02-15")]

    contracts.run_lifecycle(db, D(2026, 4, 20))  # missed runs catch up, oldest first
    db.commit()
    assert billed(database) == [("2026-01-15", "2026-02-15"), ("2026-02-15", "2026-03-15"),
                                ("2026-03-15", "2026-04-15"), ("2026-04-15", "2026-05-15")]
    contract = load(db, contract_id)
    assert contract.last_billed_period_start == D(2026, 4, 15)
    assert contract.next_action_on == D(2026, 5, 15)


def test_a_cancelled_contract_bills_to_its_end_then_ends_once(database, db):
    contract_id = create(database)
    contracts.run_lifecycle(db, D(2026, 1, 1))
    contract = load(db, contract_id)
    contracts.cancel(db, contract, D(2026, 1, 20))  # ends 1 March
    db.commit()

    contracts.run_lifecycle(db, D(2026, 2, 28))
    contracts.run_lifecycle(db, D(2026, 3, 1))
    contracts.run_lifecycle(db, D(2026, 6, 1))
    db.commit()

    assert billed(database) == [("2026-01-01", "2026-02-01"), ("2026-02-01", "2026-03-01")]
    ended = [e for e in database.outbox() if e["type"] == "ContractEnded"]
    assert [e["payload"] for e in ended] == [{"contract_id": contract_id,
                                              "ended_on": "2026-03-01"}]
    contract = load(db, contract_id)
    assert contract.ended_on == D(2026, 3, 1) and contract.next_action_on is None
    assert contracts.contract_view(db.session, contract, D(2026, 3, 1))["state"] == "ended"


def test_a_cancellation_during_the_trial_ends_without_any_billing(database, db):
    contract_id = create(database, trial_days=14)
    contracts.cancel(db, load(db, contract_id), D(2026, 1, 10))
    db.commit()
    contracts.run_lifecycle(db, D(2026, 2, 1))
    db.commit()
    assert billed(database) == []
    assert "ContractEnded" in types(database)


def test_withdrawing_resumes_billing_after_the_old_end(database, db):
    contract_id = create(database)
    contract = load(db, contract_id)
    contracts.cancel(db, contract, D(2026, 1, 20))
    contracts.withdraw_cancellation(db, contract, D(2026, 2, 10))
    db.commit()
    contracts.run_lifecycle(db, D(2026, 3, 5))
    db.commit()
    assert [start for start, _ in billed(database)] == ["2026-01-01", "2026-02-01", "2026-03-01"]
    assert "ContractEnded" not in types(database)


def test_a_run_that_lost_the_race_announces_nothing(database, db):
    contract_id = create(database)
    stale = database.unit()
    stale_contract = load(stale, contract_id)  # read before the other replica moves on

    contracts.run_lifecycle(db, D(2026, 1, 1))
    db.commit()
    assert contracts.advance(stale, stale_contract, D(2026, 1, 1)) == 0
    stale.commit()
    stale.close()
    assert billed(database) == [("2026-01-01", "2026-02-01")]


def test_the_timer_works_through_many_contracts_in_batches(database, db):
    ids = [create(database) for _ in range(7)]
    moved = contracts.run_lifecycle(db, D(2026, 1, 1), batch=3)
    assert moved == 7
    assert sorted({e["aggregate_id"] for e in database.outbox() if e["type"] == "BillingDue"}) \
        == sorted(ids)


# -- balance -------------------------------------------------------------------------------------


def test_the_balance_is_invoices_minus_credit_notes_counted_once(database, db):
    contract_id = create(database)
    invoice = document_issued("InvoiceIssued", M, contract_id, "34.51")
    ledger.record_document(db, invoice, ledger.INVOICE)
    ledger.record_document(db, invoice, ledger.INVOICE)  # replayed: once
    ledger.record_document(db, document_issued("InvoiceIssued", M, contract_id, "10.00"),
                           ledger.INVOICE)
    ledger.record_document(db, document_issued("CreditNoteIssued", M, contract_id, "-5.49"),
                           ledger.CREDIT_NOTE)
    # another merchant's or contract's documents do not count
    ledger.record_document(db, document_issued("InvoiceIssued", "m_other", contract_id, "99"),
                           ledger.INVOICE)
    ledger.record_document(db, document_issued("InvoiceIssued", M, "ct_other", "99"),
                           ledger.INVOICE)
    db.commit()

    balance = ledger.balance(db.session, load(db, contract_id))
    assert balance == {"amount": "39.02", "currency": "EUR", "invoiced": "44.51",
                       "fees": "0.00", "credited": "5.49", "paid": "0.00"}


def test_payments_and_reminder_fees_move_the_balance_once(database, db):
    contract_id = create(database)
    ledger.record_document(db, document_issued("InvoiceIssued", M, contract_id, "100.00"),
                           ledger.INVOICE)
    reminder = document_issued("ReminderIssued", M, contract_id, "100.00", fee="5.00")
    ledger.record_document(db, reminder, ledger.FEE)
    ledger.record_document(db, reminder, ledger.FEE)
    paid = payment_received(M, contract_id, "60.00")
    ledger.record_payment(db, paid)
    ledger.record_payment(db, paid)
    db.commit()

    balance = ledger.balance(db.session, load(db, contract_id))
    assert balance == {"amount": "45.00", "currency": "EUR", "invoiced": "100.00",
                       "fees": "5.00", "credited": "0.00", "paid": "60.00"}
