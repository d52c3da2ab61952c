"""Eventlet set-up that must happen before anything else is imported.

nameko 2.14 runs on eventlet green threads. Every entry point (the service runner, the root test
conftest, benchmarks) imports this module first so sockets, locks and ``select`` cooperate, and
so psycopg 3 waits for PostgreSQL through the patched ``select`` instead of its C wait loop
(which would freeze the hub, heartbeats included).
"""
import os
import warnings

os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_select")
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()
