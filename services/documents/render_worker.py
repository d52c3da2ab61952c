"""One render job, and the worker process that runs them: ``python -m
services.documents.render_worker <fd>``.

The worker is plain blocking Python (no eventlet): it loads the fonts once, then reads jobs
from the socket it inherited as ``fd`` and answers each. Frames are a 4-byte big-endian length
and a pickle; only the documents service's own parent process talks to it.

A job is ``{"content": <document content dict>, "logo": bytes | None, "created_at": datetime,
"einvoice": bool}``; the answer is ``{"pdf", "xml", "pdf_sha256", "xml_sha256",
"einvoice_error", "cpu_ms"}`` or ``{"error": "..."}``.

The documents service imports this module for the frame protocol only: fpdf2, fontTools,
lxml and the factur-x package (about 38 MB of the service's memory) are imported where a
document is rendered, i.e. in the worker processes (or with ``RENDER_WORKERS: 0``).
"""
from __future__ import annotations

import hashlib
import pickle
import socket
import struct
import sys
import time
from typing import Any

_HEADER = struct.Struct(">I")


def render_job(job: dict[str, Any]) -> dict[str, Any]:
    """Render one document: a Factur-X PDF (+ its XML) for invoices and credit notes, a plain
    PDF/A for reminders — or for an e-invoice EN 16931 refuses (e.g. the merchant has not set
    a VAT ID yet), with the reason in ``einvoice_error``."""
    from . import content, rendering  # here, not at import: see the module docstring

    started = time.process_time()
    doc = content.from_content(job["content"], job.get("logo"))
    xml = None
    error = None
    if job.get("einvoice", True) and doc.is_einvoice:
        try:
            pdf, xml = rendering.render_facturx(doc, created_at=job.get("created_at"))
        except rendering.EInvoiceError as exc:
            error = str(exc)[:500]
    if xml is None:
        pdf = rendering.render_pdf(doc, created_at=job.get("created_at"))
    return {
        "pdf": pdf, "xml": xml,
        "pdf_sha256": hashlib.sha256(pdf).hexdigest(),
        "xml_sha256": hashlib.sha256(xml).hexdigest() if xml is not None else None,
        "einvoice_error": error,
        "cpu_ms": (time.process_time() - started) * 1000,
    }


def load_fonts() -> None:
    from . import rendering

    rendering.load_fonts()


def send_frame(sock: socket.socket, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(_HEADER.pack(len(data)) + data)


def recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise EOFError("the other end closed the render socket")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def recv_frame(sock: socket.socket) -> Any:
    (size,) = _HEADER.unpack(recv_exact(sock, _HEADER.size))
    return pickle.loads(recv_exact(sock, size))  # noqa: S301  our own parent process


def main(argv: list[str]) -> int:
    sock = socket.socket(fileno=int(argv[0]))
    sock.setblocking(True)  # the parent's eventlet made it non-blocking before it was inherited
    load_fonts()
    send_frame(sock, {"ready": True})
    while True:
        try:
            job = recv_frame(sock)
        except EOFError:
            return 0
        try:
            answer = render_job(job)
        except Exception as exc:  # the job failed, not the worker: answer and carry on
            answer = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
        send_frame(sock, answer)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
