"""``python -m bench [name ...]``: start Portico on its own vhost and run the benchmarks.

Each benchmark module in ``bench/`` has ``run(cluster, tmp)``; every figure is printed beside
the in-run ceiling (``bench/harness.py``). Default: all of them.
"""
from services.common import green  # noqa: F401  (first: eventlet monkey-patching)

# isort: split
import importlib
import pkgutil
import subprocess
import sys
import tempfile
from pathlib import Path

from nameko.testing.rabbit import Client

from bench import harness
from tests.support.cluster import Cluster, free_port

AMQP = "amqp://guest:guest@127.0.0.1:5672/"
MANAGEMENT = "http://guest:guest@127.0.0.1:15672"
NOT_BENCHMARKS = {"harness", "smtp_sink", "__main__"}


def available() -> list[str]:
    here = Path(__file__).parent
    return [m.name for m in pkgutil.iter_modules([str(here)]) if m.name not in NOT_BENCHMARKS]


def main(argv: list[str]) -> int:
    names = argv or available()
    unknown = set(names) - set(available())
    if unknown:
        print(f"bench: unknown benchmark(s) {sorted(unknown)}; have {available()}",
              file=sys.stderr)
        return 2
    smtp_port = free_port()
    # a real SMTP server that accepts and drops every mail: e-mails are measured up to SMTP
    sink = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l",
                             f"127.0.0.1:{smtp_port}", "-c", "bench.smtp_sink.PipeliningSink"],
                            cwd=Path(__file__).resolve().parent.parent)
    env = {"LOG_LEVEL": "WARNING", "MAIL_TRANSPORT": "smtp", "SMTP_HOST": "127.0.0.1",
           "SMTP_PORT": str(smtp_port),
           # the per-IP limits would be what is measured: one load generator, one IP
           "SIGNUP_RATE_LIMIT": "1000000/1", "SIGNUP_PREVIEW_RATE_LIMIT": "1000000/1",
           "TOKEN_FAILURE_LIMIT": "1000000"}
    try:
        with tempfile.TemporaryDirectory(prefix="portico-bench-") as tmp:
            with Cluster(Client(MANAGEMENT), AMQP, Path(tmp) / "var", env=env) as cluster:
                for name in names:
                    waited = harness.wait_drained(cluster.rabbit_manager, cluster.vhost)
                    if waited > 8:
                        print(f"(waited {waited:.0f} s for the previous work to drain)")
                    module = importlib.import_module(f"bench.{name}")
                    if hasattr(module, "run"):
                        module.run(cluster, tmp)
    finally:
        sink.terminate()
        sink.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
