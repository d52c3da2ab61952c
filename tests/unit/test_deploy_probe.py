"""ops/probe.py, the containers' health checks: the parts that need no broker.

Real here: /proc of this machine (a loopback socket pair made by the test), a migrated
SQLite database, a loopback HTTP server standing in for the gateway. The health RPC itself
needs a broker and is exercised by the compose healthchecks and the scale demonstration.
"""
from __future__ import annotations

import http.server
import os
import socket
import threading
from pathlib import Path

import pytest

from ops import probe
from services.common import migrate


def test_amqp_port_defaults_by_scheme():
    assert probe.amqp_port("amqp://u:p@rabbit:5673/") == 5673
    assert probe.amqp_port("amqp://u:p@rabbit/") == 5672
    assert probe.amqp_port("amqps://u:p@rabbit/vhost") == 5671


def test_this_process_sockets_are_found_in_proc():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = server.accept()
            with accepted:
                rows = [r for r in probe.tcp_connections()
                        if r["remote_port"] == port and r["state"] == probe.TCP_ESTABLISHED]
                assert rows, "the client side of the loopback pair is ESTABLISHED"
                assert {r["inode"] for r in rows} & probe.socket_inodes(os.getpid())
                assert client.fileno() > 0


def fake_proc(tmp_path: Path, *, state: str, argv: list[str]) -> Path:
    """A /proc with one process holding one TCP socket (inode 4242) to port 5672."""
    proc = tmp_path / "proc"
    (proc / "net").mkdir(parents=True)
    (proc / "net" / "tcp").write_text(
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
        "timeout inode\n"
        f"   0: 0100007F:A1B2 0100007F:1628 {state} 00000000:00000000 00:00000000 00000000  "
        "10001        0 4242 1 0000000000000000 20 4 30 10 -1\n")
    pid = proc / "7"
    (pid / "fd").mkdir(parents=True)
    (pid / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    os.symlink("socket:[4242]", pid / "fd" / "3")
    os.symlink("/dev/null", pid / "fd" / "0")
    return proc


RUNNER = ["python", "-m", "services.common.runner", "documents"]


def test_live_when_the_runner_holds_an_established_broker_connection(tmp_path, monkeypatch):
    monkeypatch.setenv("AMQP_URI", "amqp://guest:guest@rabbit:5672/")
    ok, message = probe.check_live("documents", fake_proc(tmp_path, state="01", argv=RUNNER))
    assert ok, message
    assert "pid 7" in message


def test_not_live_when_the_broker_closed_the_connection(tmp_path, monkeypatch):
    monkeypatch.setenv("AMQP_URI", "amqp://guest:guest@rabbit:5672/")
    # 08 = CLOSE_WAIT: the broker hung up (missed heartbeats) and the process did not notice
    ok, message = probe.check_live("documents", fake_proc(tmp_path, state="08", argv=RUNNER))
    assert not ok and "no established connection" in message


def test_not_live_without_the_runner_or_on_another_port(tmp_path, monkeypatch):
    monkeypatch.setenv("AMQP_URI", "amqp://guest:guest@rabbit:5672/")
    proc = fake_proc(tmp_path, state="01", argv=["python", "-m", "ops.probe", "documents"])
    assert probe.check_live("documents", proc) == (False, "documents: no runner process")
    monkeypatch.setenv("AMQP_URI", "amqp://guest:guest@rabbit:5999/")
    assert not probe.check_live("documents", fake_proc(tmp_path / "b", state="01",
                                                       argv=RUNNER))[0]


def test_migrated_only_at_the_head_of_the_image_migrations(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/documents.sqlite3"
    monkeypatch.setenv("DOCUMENTS_DB_URL", url)
    ok, message = probe.check_migrated("documents", wait=0)
    assert not ok and "portico migrate documents" in message
    migrate.upgrade("documents", url)
    ok, message = probe.check_migrated("documents", wait=0)
    assert ok, message


class _Ops(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def gateway_address(monkeypatch):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ops)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("GATEWAY_ADDRESS", f"0.0.0.0:{server.server_address[1]}")
    yield
    server.shutdown()
    server.server_close()


def test_gateway_probe_reads_the_status_of_healthz_and_readyz(gateway_address):
    assert probe.check_gateway(live=True, timeout=5) == (True, "gateway: /healthz answered 200")
    assert probe.check_gateway(live=False, timeout=5) == (False, "gateway: /readyz answered 503")


def test_main_answers_with_one_line_and_an_exit_code(monkeypatch, capsys):
    monkeypatch.setattr(probe, "check_health", lambda service, timeout: (True, "tokens: ok"))
    assert probe.main(["tokens"]) == 0

    def broken(service, timeout):
        raise RuntimeError("boom")

    monkeypatch.setattr(probe, "check_health", broken)
    assert probe.main(["tokens"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "tokens: probe failed: RuntimeError: boom"
    assert "Traceback" not in err
    with pytest.raises(SystemExit):
        probe.main(["gateway", "--migrated"])  # the gateway has no database: usage error
