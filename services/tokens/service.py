"""Tokens service: time-limited self-service tokens and portal sessions."""
from __future__ import annotations

from services.common.clock import Clock
from services.common.database import Database
from services.common.health import HealthRpc
from services.common.telemetry import Correlation

from .models import Base

REQUIRED_SETTINGS = ["DB_URL"]


class TokensService(HealthRpc):
    name = "tokens"

    db = Database(Base.metadata)
    correlation = Correlation()
    clock = Clock()

