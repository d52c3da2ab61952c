"""``python -m bench [name ...]``: start Portico on its own vhost and run the benchmarks.

Each benchmark module in ``bench/`` has ``run(cluster, tmp)``; every figure is printed beside
the in-run ceiling (``bench/harness.py``). Default: all of them.
"""
import importlib
import pkgutil
import sys
import tempfile
from pathlib import Path

from nameko.testing.rabbit import Client

from services.common import green  # noqa: F401  (first: eventlet monkey-patching)
from tests.support.cluster import Cluster

AMQP = "amqp://guest:guest@127.0.0.1:5672/"
MANAGEMENT = "http://guest:guest@127.0.0.1:15672"
NOT_BENCHMARKS = {"harness", "__main__"}


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
    with tempfile.TemporaryDirectory(prefix="portico-bench-") as tmp:
        with Cluster(Client(MANAGEMENT), AMQP, Path(tmp) / "var",
                     env={"LOG_LEVEL": "WARNING"}) as cluster:
            for name in names:
                module = importlib.import_module(f"bench.{name}")
                if hasattr(module, "run"):
                    module.run(cluster, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
