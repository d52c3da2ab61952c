"""A service started without a reachable broker retries until its deadline, then stops with
one clear line (no traceback)."""
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.support.cluster import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_unreachable_broker_stops_the_service_with_one_line(tmp_path):
    env = {**os.environ, "AMQP_URI": f"amqp://guest:guest@127.0.0.1:{free_port()}/",
           "BROKER_WAIT_SECONDS": "2", "PORTAL_DB_URL": f"sqlite:///{tmp_path}/p.sqlite3"}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "services.common.runner", "portal"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert time.monotonic() - started >= 2  # it did retry until the deadline
    last = [line for line in result.stderr.splitlines() if line.strip()][-1]
    assert last.startswith("portico-portal: broker amqp://guest:**@127.0.0.1:")
    assert "not reachable within 2 s" in last
    assert "Traceback" not in result.stderr
