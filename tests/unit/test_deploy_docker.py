"""deploy/docker/Dockerfile, read statically (no Docker engine here): multi-stage, slim,
non-root, and everything it copies or runs exists in the repository."""
from __future__ import annotations

import fnmatch
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
IGNORE = ROOT / "deploy" / "docker" / "Dockerfile.dockerignore"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def stages() -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list] = {}
    current = None
    for keyword, rest in instructions():
        if keyword == "FROM":
            current = rest.split(" AS ")[-1].strip() if " AS " in rest else rest
            found[current] = []
        elif current is not None:
            found[current].append((keyword, rest))
    return found


def test_multi_stage_with_a_slim_base():
    froms = [rest for keyword, rest in instructions() if keyword == "FROM"]
    assert len(froms) >= 2
    default_base = next(rest for keyword, rest in instructions()
                        if keyword == "ARG" and rest.startswith("PYTHON_IMAGE="))
    assert "slim" in default_base and "3.11" in default_base
    assert list(stages()) == ["build", "run"]


def test_final_stage_runs_as_a_numeric_non_root_user_without_build_tools():
    run = stages()["run"]
    users = [rest for keyword, rest in run if keyword == "USER"]
    assert users and re.fullmatch(r"[1-9]\d*:[1-9]\d*", users[-1])
    commands = " ".join(rest for keyword, rest in run if keyword == "RUN")
    for tool in ("gcc", "build-essential", "pip install", "python3-dev", "git "):
        assert tool not in commands
    assert any(keyword == "COPY" and "--from=build" in rest for keyword, rest in run)
    build_commands = " ".join(rest for keyword, rest in stages()["build"] if keyword == "RUN")
    assert "pip uninstall -y pip setuptools wheel" in build_commands


def test_copied_paths_exist_and_pass_the_ignore_file():
    patterns = [line.strip() for line in IGNORE.read_text().splitlines()
                if line.strip() and not line.startswith("#")]

    def included(path: str) -> bool:
        keep = True
        for pattern in patterns:
            negate = pattern.startswith("!")
            if fnmatch.fnmatch(path, pattern.lstrip("!")) or \
                    fnmatch.fnmatch(path + "/x", pattern.lstrip("!")):
                keep = negate
        return keep

    copies = [rest for keyword, rest in instructions()
              if keyword == "COPY" and "--from" not in rest]
    assert copies
    for rest in copies:
        *sources, _destination = shlex.split(rest)
        for source in sources:
            assert (ROOT / source).exists(), source
            assert included(source.rstrip("/")), f"{source} is excluded by the .dockerignore"
    assert not included(".venv") and not included("var") and not included("tests")


def test_requirements_step_reads_the_dependencies_from_pyproject(tmp_path):
    """Run the Dockerfile's own one-liner on our pyproject.toml."""
    (line,) = [rest for keyword, rest in stages()["build"]
               if keyword == "RUN" and "tomllib" in rest]
    program = re.search(r'python -c "(.+?)" >', line).group(1)
    (tmp_path / "pyproject.toml").write_bytes((ROOT / "pyproject.toml").read_bytes())
    out = subprocess.run([sys.executable, "-c", program.replace('\\"', '"')], cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout.splitlines()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert out == project["dependencies"] and len(out) > 10


def test_the_image_runs_the_runner_and_the_portico_cli():
    run = stages()["run"]
    (cmd,) = [rest for keyword, rest in run if keyword == "CMD"]
    assert cmd.startswith('["python", "-m", "services.common.runner"')
    env = " ".join(rest for keyword, rest in run if keyword == "ENV")
    assert "PYTHONPATH=/app" in env and "GATEWAY_ADDRESS=0.0.0.0:8000" in env
    shim = " ".join(rest for keyword, rest in run if keyword == "RUN")
    assert "python -m ops.cli" in shim and (ROOT / "ops" / "cli.py").exists()
    # the documents service renders with DejaVu from this Debian package's directory
    from services.documents import rendering

    assert "fonts-dejavu-core" in shim
    assert rendering.DEFAULT_FONT_DIR == "/usr/share/fonts/truetype/dejavu"
