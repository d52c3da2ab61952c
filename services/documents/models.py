"""Tables this service owns (more arrive with its issue); the messaging tables for now."""
from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from services.common.database import add_messaging_tables


class Base(DeclarativeBase):
    pass


add_messaging_tables(Base.metadata)
