"""Run one Portico service: ``python -m services.common.runner signup`` (or ``gateway``).

It loads that service's ``config.yml``, stops with one line when a setting is missing, waits for
the broker with a deadline (``BROKER_WAIT_SECONDS``), declares the broker topology, then runs
the nameko container until SIGTERM/SIGINT, which stops it gracefully (in-flight workers finish,
unacked messages go back to the broker).
"""
from services.common import green  # noqa: F401  (must come first: eventlet monkey-patching)

# isort: split
import importlib
import inspect
import logging
import signal
import sys
import time
from pathlib import Path

import eventlet
import kombu
from nameko.runners import ServiceRunner

from services.common import config as configuration
from services.common import topology
from services.common.telemetry import configure_logging

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("signup", "portal", "tokens", "notifications", "documents")
log = logging.getLogger("portico.runner")


def service_module(name: str) -> str:
    return "gateway.service" if name == "gateway" else f"services.{name}.service"


def config_path(name: str) -> Path:
    return ROOT / ("gateway" if name == "gateway" else f"services/{name}") / "config.yml"


def load_config(name: str) -> dict:
    config = configuration.load(config_path(name))
    module = importlib.import_module(service_module(name))
    required = ["AMQP_URI", *getattr(module, "REQUIRED_SETTINGS", [])]
    return configuration.validate(config, required, getattr(module, "SECRET_SETTINGS", []),
                                  getattr(module, "NUMBER_SETTINGS", {}))


def service_class(name: str):
    module = importlib.import_module(service_module(name))
    for _, obj in inspect.getmembers(module, inspect.isclass):
        if obj.__module__ == module.__name__ and getattr(obj, "name", None):
            return obj
    raise LookupError(f"no nameko service class in {module.__name__}")


def wait_for_broker(amqp_uri: str, deadline_seconds: float) -> None:
    deadline = time.monotonic() + deadline_seconds
    last_error = None
    while time.monotonic() < deadline:
        try:
            with kombu.Connection(amqp_uri, connect_timeout=3) as conn:
                conn.ensure_connection(max_retries=1)
                return
        except Exception as exc:  # any failure: retry until the deadline
            last_error = exc
            eventlet.sleep(0.5)
    raise ConnectionError(f"broker {kombu.Connection(amqp_uri).as_uri()} not reachable "
                          f"within {deadline_seconds:.0f} s ({last_error})")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] not in (*SERVICES, "gateway"):
        print(f"usage: python -m services.common.runner {{{'|'.join((*SERVICES, 'gateway'))}}}",
              file=sys.stderr)
        return 2
    name = argv[0]
    program = f"portico-{name}"
    try:
        config = load_config(name)
    except configuration.ConfigError as exc:
        configuration.fail(program, f"config error: {exc}")
    configure_logging(name, str(config.get("LOG_LEVEL", "INFO")))
    try:
        wait_for_broker(config["AMQP_URI"], float(config.get("BROKER_WAIT_SECONDS", 30)))
        topology.declare_all(config["AMQP_URI"])
    except ConnectionError as exc:
        configuration.fail(program, str(exc), code=1)

    runner = ServiceRunner(config)
    runner.add_service(service_class(name))

    def shutdown(signum, _frame):
        log.info("stopping on signal %s", signum)
        eventlet.spawn_n(runner.stop)

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    runner.start()
    log.info("%s started", name)
    try:
        runner.wait()
    except KeyboardInterrupt:
        runner.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
