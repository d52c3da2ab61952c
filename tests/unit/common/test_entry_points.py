"""Every entry point patches eventlet before importing anything that opens sockets or makes
locks; an import sorter must not move it (hence the ``# isort: split`` fences)."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
ENTRY_POINTS = ["services/common/runner.py", "ops/cli.py", "tests/conftest.py",
                "bench/__main__.py"]


@pytest.mark.parametrize("path", ENTRY_POINTS)
def test_the_first_import_is_the_eventlet_patch(path):
    tree = ast.parse((ROOT / path).read_text())
    first = next(node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom))
    assert isinstance(first, ast.ImportFrom) and first.module == "services.common"
    assert [alias.name for alias in first.names] == ["green"]
