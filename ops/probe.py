"""Container probes: ``python -m ops.probe SERVICE [--live | --migrated]``; exit 0 healthy, 1 not.

    python -m ops.probe documents             ready: the service's ``health`` RPC answers "ok"
                                              (database + broker) within --timeout seconds
    python -m ops.probe documents --live      alive: this container's runner process holds an
                                              ESTABLISHED connection to the AMQP port
    python -m ops.probe documents --migrated  the service's database is at the image's Alembic
                                              head (an init container waits: --wait 600)
    python -m ops.probe gateway [--live]      GET /readyz (or /healthz) on GATEWAY_ADDRESS

Why liveness is not the RPC: every replica of a service consumes the same ``rpc-<service>``
queue, so a health call made from pod A may be answered by pod B. That is the right question
for readiness (can the service do work: broker and database), the wrong one for liveness (is
*this* process stuck). A frozen eventlet hub stops sending AMQP heartbeats, the broker closes
the connection and the socket leaves ESTABLISHED, which ``--live`` sees without a round trip.
It prints one line and never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
# the service folders, as the runner knows them (read here without importing nameko)
SERVICES = tuple(sorted(path.parent.name for path in (ROOT / "services").glob("*/service.py")
                        if path.parent.name != "common"))
RUNNER_MODULE = "services.common.runner"
TCP_ESTABLISHED = "01"


# -- readiness: the health RPC --------------------------------------------------------------------
def patch_eventlet() -> None:
    """Monkey-patch before nameko, kombu or psycopg are imported (as every entry point does)."""
    importlib.import_module("services.common.green")


def check_health(service: str, timeout: float) -> tuple[bool, str]:
    patch_eventlet()
    import eventlet
    from nameko.standalone.rpc import ClusterRpcProxy

    try:
        with eventlet.Timeout(timeout):
            with ClusterRpcProxy({"AMQP_URI": amqp_uri(service)}, timeout=timeout) as rpc:
                reply = getattr(rpc, service).health()
    except eventlet.Timeout:
        return False, f"{service}: no health reply within {timeout:g} s"
    except Exception as exc:  # broker down, remote error: unhealthy either way
        return False, f"{service}: health call failed: {type(exc).__name__}: {exc}"
    if isinstance(reply, dict) and reply.get("status") == "ok":
        return True, f"{service}: ok (outbox_pending={reply.get('outbox_pending')})"
    return False, f"{service}: unhealthy reply {reply!r}"


def service_config(service: str) -> dict:
    # The same file services.common.runner.config_path names; not imported from there because
    # the runner pulls in nameko and eventlet, and --live runs every few seconds in every pod.
    from services.common import config as configuration

    folder = ROOT / ("gateway" if service == "gateway" else f"services/{service}")
    return configuration.load(folder / "config.yml")


def amqp_uri(service: str) -> str:
    return str(service_config(service)["AMQP_URI"])


# -- liveness: this container's broker connection ------------------------------------------------
def amqp_port(amqp_uri: str) -> int:
    parts = urlparse(amqp_uri)
    return parts.port or (5671 if parts.scheme == "amqps" else 5672)


def runner_pids(proc: Path = Path("/proc"), service: str | None = None) -> list[int]:
    """PIDs of ``python -m services.common.runner [service]`` processes visible here."""
    pids = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        if RUNNER_MODULE in args and (service is None or service in args):
            pids.append(int(entry.name))
    return sorted(pids)


def socket_inodes(pid: int, proc: Path = Path("/proc")) -> set[str]:
    inodes = set()
    fd_dir = proc / str(pid) / "fd"
    try:
        fds = list(fd_dir.iterdir())
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def tcp_connections(proc: Path = Path("/proc")) -> list[dict]:
    """Rows of /proc/net/tcp and tcp6: local port, remote port, state, inode."""
    rows = []
    for name in ("tcp", "tcp6"):
        path = proc / "net" / name
        try:
            lines = path.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10:
                continue
            rows.append({"local_port": int(fields[1].rsplit(":", 1)[1], 16),
                         "remote_port": int(fields[2].rsplit(":", 1)[1], 16),
                         "state": fields[3], "inode": fields[9]})
    return rows


def check_live(service: str, proc: Path = Path("/proc")) -> tuple[bool, str]:
    port = amqp_port(amqp_uri(service))
    pids = runner_pids(proc, service)
    if not pids:
        return False, f"{service}: no runner process"
    established = {row["inode"] for row in tcp_connections(proc)
                   if row["remote_port"] == port and row["state"] == TCP_ESTABLISHED}
    for pid in pids:
        if socket_inodes(pid, proc) & established:
            return True, f"{service}: pid {pid} connected to the broker (port {port})"
    return False, f"{service}: pid {pids[0]} holds no established connection to port {port}"


# -- migrations ------------------------------------------------------------------------------------
def migration_state(service: str) -> tuple[set[str], set[str]]:
    """(revisions the database is at, heads this image's migrations end in)."""
    patch_eventlet()
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine

    from services.common import migrate

    url = migrate._driver_url(str(service_config(service)["DB_URL"]))
    heads = set(ScriptDirectory.from_config(migrate.alembic_config(service, url)).get_heads())
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()
    return current, heads


def check_migrated(service: str, wait: float) -> tuple[bool, str]:
    deadline = time.monotonic() + wait
    while True:
        try:
            current, heads = migration_state(service)
            if current == heads:
                return True, f"{service}: database at {', '.join(sorted(heads))}"
            message = (f"{service}: database at {', '.join(sorted(current)) or 'nothing'}, "
                       f"image expects {', '.join(sorted(heads))} (run `portico migrate "
                       f"{service}`)")
        except Exception as exc:  # unreachable database: keep waiting until the deadline
            message = f"{service}: cannot read the migration state: {type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            return False, message
        time.sleep(2)


# -- the gateway ----------------------------------------------------------------------------------
def check_gateway(live: bool, timeout: float) -> tuple[bool, str]:
    import urllib.error
    import urllib.request

    address = str(service_config("gateway")["WEB_SERVER_ADDRESS"])
    host, _, port = address.rpartition(":")
    if host in ("", "0.0.0.0", "::", "[::]"):  # noqa: S104  (a bind-all address: probe loopback)
        host = "127.0.0.1"
    path = "/healthz" if live else "/readyz"
    url = f"http://{host}:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return True, f"gateway: {path} answered {response.status}"
    except urllib.error.HTTPError as exc:
        return False, f"gateway: {path} answered {exc.code}"
    except OSError as exc:
        return False, f"gateway: {url} unreachable: {exc}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.probe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("service", choices=[*SERVICES, "gateway"])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--live", action="store_true", help="liveness instead of readiness")
    mode.add_argument("--migrated", action="store_true", help="database at the Alembic head")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds for one check")
    parser.add_argument("--wait", type=float, default=0.0,
                        help="with --migrated: keep checking this many seconds")
    args = parser.parse_args(argv)
    try:
        if args.service == "gateway":
            if args.migrated:
                parser.error("the gateway has no database")
            ok, message = check_gateway(args.live, args.timeout)
        elif args.migrated:
            ok, message = check_migrated(args.service, args.wait)
        elif args.live:
            ok, message = check_live(args.service)
        else:
            ok, message = check_health(args.service, args.timeout)
    except SystemExit:
        raise
    except Exception as exc:  # a probe answers with one line, never a traceback
        ok, message = False, f"{args.service}: probe failed: {type(exc).__name__}: {exc}"
    print(message, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
