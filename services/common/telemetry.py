"""Correlation ids and JSON logs.

The gateway gives each HTTP request a correlation id (or takes the caller's ``X-Request-Id``);
nameko carries it in ``worker_ctx.data`` through RPC calls, the outbox copies it into the event
message headers, and event handlers get it back, so one id ties a signup to the e-mail it sent.
Log lines are one JSON object each, with the id when there is one.
"""
from __future__ import annotations

import json
import logging
import sys
import threading
import uuid

from nameko.extensions import DependencyProvider

_local = threading.local()  # green-thread local once eventlet has patched threading

CORRELATION_KEY = "correlation_id"


def current_correlation_id() -> str | None:
    return getattr(_local, "correlation_id", None)


def set_correlation_id(value: str | None) -> None:
    _local.correlation_id = value


def new_correlation_id() -> str:
    return uuid.uuid4().hex


class Correlation(DependencyProvider):
    """Puts the worker's correlation id where loggers and the outbox can find it."""

    def get_dependency(self, worker_ctx):
        return worker_ctx.data.get(CORRELATION_KEY)

    def worker_setup(self, worker_ctx):
        cid = worker_ctx.data.get(CORRELATION_KEY) or new_correlation_id()
        worker_ctx.data[CORRELATION_KEY] = cid
        set_correlation_id(cid)

    def worker_teardown(self, worker_ctx):
        set_correlation_id(None)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        cid = current_correlation_id()
        if cid:
            entry["correlation_id"] = cid
        for key in ("event_id", "event_type", "queue", "status", "path", "duration_ms"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("kombu", "amqp", "nameko", "sqlalchemy.engine", "werkzeug", "eventlet.wsgi"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # nameko logs every expected (4xx-like) service error with a traceback at WARNING
    logging.getLogger("nameko.containers").setLevel(max(logging.ERROR, root.level))
