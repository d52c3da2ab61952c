"""The documents service process does not load the renderer: fpdf2, fontTools, lxml, the
factur-x package and Pillow are imported by the render worker processes only (about 38 MB of
the service's memory otherwise)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
RENDERER_ONLY = ("fpdf", "fontTools", "facturx", "lxml.etree", "PIL.Image",
                 "services.documents.rendering")


def test_importing_the_service_leaves_the_renderer_out():
    code = ("from services.common import green  # noqa: F401\n"
            "import sys\n"
            "import services.documents.service  # noqa: F401\n"
            f"print([m for m in {RENDERER_ONLY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "[]"
