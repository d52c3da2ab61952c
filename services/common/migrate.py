"""Alembic, per service: each service keeps its own history in ``services/<name>/migrations``.

``upgrade("signup", url)`` brings one database to head; run it as a one-shot step before the
service's replicas start (``portico migrate signup``), never from the replicas themselves.
"""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parents[2]


def alembic_config(service: str, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "services" / service / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def upgrade(service: str, url: str, revision: str = "head") -> None:
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(service, _driver_url(url)), revision)


def revision(service: str, url: str, message: str) -> None:
    """Autogenerate a new migration from the models (a developer's step, then review it)."""
    command.revision(alembic_config(service, _driver_url(url)), message=message,
                     autogenerate=True)


def _driver_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://"):]
    return url
