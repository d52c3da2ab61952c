"""Payment methods as the portal keeps them: the type and a masked bearer, never the full number.

SEPA direct debit is the first method: the IBAN is validated with schwifty (checksum, length,
structure, SEPA zone) and only its masked form is stored and announced. Card and other methods
arrive with the payments issue, which will hand over a provider token instead of any number.
"""
from __future__ import annotations

import unicodedata
from collections.abc import Mapping

from schwifty import IBAN
from schwifty.exceptions import SchwiftyException

from services.common import events
from services.common.database import UnitOfWork
from services.common.errors import InvalidInput

from .models import Contract

SEPA_DEBIT = "sepa_debit"
METHODS = (SEPA_DEBIT,)
HOLDER_MAX = 70  # SEPA's limit for the debtor name


def _error(code: str, message: str, **params) -> list[dict]:
    return [{"code": code, "message": message, "params": params}]


def mask_iban(iban: IBAN) -> str:
    """``DE89370400440532013000`` → ``DE89 **** **** **** **30 00``: country, check digits and
    the last four characters, in the usual groups of four."""
    compact = str(iban.compact)
    hidden = compact[:4] + "*" * (len(compact) - 8) + compact[-4:]
    return " ".join(hidden[i:i + 4] for i in range(0, len(hidden), 4))


def validate(data) -> dict:
    """``{"type": "sepa_debit", "iban": "…", "account_holder": "…", "mandate_accepted": true}``
    → the method to store (masked), or ``InvalidInput`` with per-field errors."""
    if not isinstance(data, Mapping):
        raise InvalidInput("the payment method must be an object",
                           {"_form": _error("invalid", "The payment method must be an object.")})
    errors: dict[str, list[dict]] = {}
    kind = data.get("type", SEPA_DEBIT)
    if kind not in METHODS:
        raise InvalidInput("unsupported payment method", {"type": _error(
            "invalid_choice", "Select one of: {choices}.", choices=", ".join(METHODS))})
    raw_iban = data.get("iban")
    iban = None
    if not isinstance(raw_iban, str) or not raw_iban.strip():
        errors["iban"] = _error("required", "This field is required.")
    else:
        try:
            iban = IBAN(raw_iban[:64])
        except SchwiftyException:
            errors["iban"] = _error("invalid_iban", "Enter a valid IBAN.")
        else:
            if not iban.in_sepa_zone:
                errors["iban"] = _error("iban_not_sepa",
                                        "This IBAN is not from a SEPA country.")
    holder = data.get("account_holder")
    if not isinstance(holder, str) or not holder.strip():
        errors["account_holder"] = _error("required", "This field is required.")
    elif any(unicodedata.category(c) in ("Cc", "Cs", "Cf") for c in holder):
        errors["account_holder"] = _error(
            "invalid_characters", "This field contains characters that are not allowed.")
    elif len(holder.strip()) > HOLDER_MAX:
        errors["account_holder"] = _error("too_long", "At most {max} characters.", max=HOLDER_MAX)
    if data.get("mandate_accepted") not in (True, "true", "on", "1", "yes"):
        errors["mandate_accepted"] = _error(
            "mandate_required", "Please authorise the SEPA direct debit mandate.")
    if errors:
        raise InvalidInput("some fields are invalid", errors)
    return {"type": SEPA_DEBIT, "masked": mask_iban(iban), "account_holder": holder.strip()}


def change(db: UnitOfWork, contract: Contract, data) -> dict:
    """Replace the contract's payment method and announce it (masked) as ``ContractChanged``."""
    method = validate(data)
    contract.payment_method = method
    db.add_event(events.new_event(
        "ContractChanged", merchant_id=contract.merchant_id, aggregate_id=contract.id,
        payload={"contract_id": contract.id, "changes": {
            "payment_method": {"type": method["type"], "masked": method["masked"]}}}))
    return method
