"""Starting one real service container for integration tests."""
from __future__ import annotations

from pathlib import Path

from services.common import migrate, topology


class ServiceStarter:
    def __init__(self, rabbit_config: dict, container_factory, tmp_path: Path):
        self.rabbit_config = rabbit_config
        self.container_factory = container_factory
        self.tmp_path = tmp_path

    @property
    def amqp_uri(self) -> str:
        return self.rabbit_config["AMQP_URI"]

    def db_url(self, name: str) -> str:
        return f"sqlite:///{self.tmp_path}/{name}.sqlite3"

    def config(self, name: str, **overrides) -> dict:
        url = overrides.pop("DB_URL", None) or self.db_url(name)
        migrate.upgrade(name, url)
        return {**self.rabbit_config, "DB_URL": url, "OUTBOX_POLL_SECONDS": 0.2,
                "max_workers": 10, **overrides}

    def __call__(self, service_cls, name: str | None = None, *, start=True, **overrides):
        name = name or service_cls.name
        topology.declare_all(self.amqp_uri)
        container = self.container_factory(service_cls, self.config(name, **overrides))
        if start:
            container.start()
        return container


def dependency(container, cls):
    """The container's dependency provider of type ``cls`` (e.g. to swap its clock)."""
    for provider in container.dependencies:
        if isinstance(provider, cls):
            return provider
    raise LookupError(cls)
