"""Datetimes come back aware and in UTC on SQLite too."""
import datetime as dt

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select

from services.common.database import UTCDateTime, make_engine

metadata = MetaData()
stamps = Table("stamps", metadata, Column("id", Integer, primary_key=True),
               Column("at", UTCDateTime()))


def test_an_aware_datetime_round_trips_as_utc():
    engine = make_engine("sqlite://")
    metadata.create_all(engine)
    berlin = dt.timezone(dt.timedelta(hours=1))
    with engine.begin() as conn:
        conn.execute(insert(stamps).values(id=1, at=dt.datetime(2027, 1, 1, 10, 0, tzinfo=berlin)))
        back = conn.execute(select(stamps.c.at)).scalar_one()
    assert back == dt.datetime(2027, 1, 1, 9, 0, tzinfo=dt.UTC)
    assert back.tzinfo is not None
    # comparisons in SQL work on the UTC text
    with engine.begin() as conn:
        later = conn.execute(select(stamps.c.id).where(
            stamps.c.at > dt.datetime(2027, 1, 1, 8, 59, tzinfo=dt.UTC))).all()
    assert later == [(1,)]


def test_a_naive_datetime_is_refused():
    engine = make_engine("sqlite://")
    metadata.create_all(engine)
    with pytest.raises(Exception, match="naive datetimes"), engine.begin() as conn:
        conn.execute(insert(stamps).values(id=2, at=dt.datetime(2027, 1, 1)))
