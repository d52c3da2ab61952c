"""Documents service: invoices, credit notes and reminders as PDF with e-invoice data."""
from __future__ import annotations

from services.common.clock import Clock
from services.common.database import Database
from services.common.health import HealthRpc
from services.common.telemetry import Correlation

from .models import Base

REQUIRED_SETTINGS = ["DB_URL"]


class DocumentsService(HealthRpc):
    name = "documents"

    db = Database(Base.metadata)
    correlation = Correlation()
    clock = Clock()

