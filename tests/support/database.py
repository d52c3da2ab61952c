"""A service's tables in memory, for unit tests of its use cases."""
from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from services.common.database import UnitOfWork, make_engine


class InMemoryDatabase:
    """What ``UnitOfWork`` needs from the ``Database`` provider, on ``sqlite://``."""

    def __init__(self, metadata):
        self.metadata = metadata
        self.engine = make_engine("sqlite://")
        metadata.create_all(self.engine)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    def events_committed(self):
        pass

    def unit(self) -> UnitOfWork:
        return UnitOfWork(self)

    def outbox(self) -> list[dict]:
        """The staged events' envelopes, in the order they were added."""
        table = self.metadata.tables["outbox"]
        with self.engine.connect() as conn:
            return [json.loads(row.body) for row in conn.execute(select(table.c.body)
                                                                 .order_by(table.c.id))]
