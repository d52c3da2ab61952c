"""deploy/compose.yaml parses, and everything it names exists and starts in the right order.

No Docker engine: the file is read as YAML (with compose's merge keys), and every command it
runs is parsed by the real program (``ops.cli``, ``ops.probe``) with the actions replaced.
"""
from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from ops import cli, probe
from services.common.runner import SERVICES

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


class StrictLoader(yaml.SafeLoader):
    """Docker Compose rejects a key given twice in one mapping; PyYAML keeps the last one."""

    def construct_mapping(self, node, deep=False):
        keys = [key.value for key, _ in node.value
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge"]
        duplicates = {key for key in keys if keys.count(key) > 1}
        if duplicates:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate keys {sorted(duplicates)}", node.start_mark)
        return super().construct_mapping(node, deep=deep)


COMPOSE = yaml.load((DEPLOY / "compose.yaml").read_text(), Loader=StrictLoader)  # noqa: S506
INFRASTRUCTURE = {"rabbitmq", "postgres", "mailpit", "migrate", "declare"}


def service_folders() -> list[str]:
    return sorted(p.parent.name for p in (ROOT / "services").glob("*/service.py")
                  if p.parent.name != "common")


def test_every_service_folder_and_the_gateway_run_as_compose_services():
    assert sorted(SERVICES) == service_folders()
    services = COMPOSE["services"]
    assert set(services) == INFRASTRUCTURE | set(service_folders()) | {"gateway"}
    for name in [*service_folders(), "gateway"]:
        assert services[name]["command"] == ["python", "-m", "services.common.runner", name]


def strings(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)
    elif isinstance(node, str):
        yield node


def test_interpolations_are_well_formed():
    for text in strings(COMPOSE):
        for match in re.finditer(r"\$(\{[^}]*\}|.?)", text):
            assert re.fullmatch(r"\$\{[A-Z_][A-Z0-9_]*(:?[-?][^}]*)?\}|\$\$", match.group(0)), \
                f"{text!r}: compose cannot interpolate {match.group(0)!r}"


def test_dependencies_exist_and_wait_for_health_and_one_shot_steps():
    services = COMPOSE["services"]
    for name, spec in services.items():
        for dependency in spec.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
    for name in service_folders():
        depends = services[name]["depends_on"]
        assert depends["rabbitmq"]["condition"] == "service_healthy"
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["declare"]["condition"] == "service_completed_successfully"
        assert "container_name" not in services[name], "--scale needs generated names"
        assert "ports" not in services[name], "--scale needs no fixed host port"
    gateway = services["gateway"]["depends_on"]
    assert {name: gateway[name]["condition"] for name in service_folders()} == \
        dict.fromkeys(service_folders(), "service_healthy")
    for step in ("migrate", "declare"):
        assert services[step]["restart"] == "no"
    for name in ("rabbitmq", "postgres", *service_folders(), "gateway"):
        assert services[name]["healthcheck"]["test"], name


def test_one_shot_commands_parse_with_the_real_cli(monkeypatch):
    calls = []
    monkeypatch.setattr(cli, "cmd_migrate", lambda args: calls.append(("migrate", args)) or 0)
    monkeypatch.setattr(cli, "cmd_declare", lambda args: calls.append(("declare", args)) or 0)
    for step in ("migrate", "declare"):
        command = COMPOSE["services"][step]["command"]
        assert command[0] == "portico"
        assert cli.main(command[1:]) == 0
    (_, migrate_args), (declare, _) = calls
    assert sorted(migrate_args.services) == service_folders() and declare == "declare"


def test_healthchecks_probe_their_own_service(monkeypatch):
    seen = []
    monkeypatch.setattr(probe, "check_live", lambda s: seen.append(("live", s)) or (True, "ok"))
    monkeypatch.setattr(probe, "check_health", lambda s, t: seen.append(("ready", s)) or
                        (True, "ok"))
    monkeypatch.setattr(probe, "check_gateway", lambda live, t: seen.append(("http", live)) or
                        (True, "ok"))
    for name in [*service_folders(), "gateway"]:
        test = COMPOSE["services"][name]["healthcheck"]["test"]
        commands = ([shlex.split(part) for part in test[1].split("&&")]
                    if test[0] == "CMD-SHELL" else [test[1:]])
        seen.clear()
        for command in commands:
            assert command[:3] == ["python", "-m", "ops.probe"]
            assert probe.main(command[3:]) == 0
        expected = [("http", False)] if name == "gateway" else [("live", name), ("ready", name)]
        assert seen == expected, name


def test_each_service_gets_its_own_database_and_the_settings_it_requires():
    services = COMPOSE["services"]
    postgres = services["postgres"]
    assert sorted(postgres["environment"]["PORTICO_DATABASES"].split()) == service_folders()
    (init,) = [v for v in postgres["volumes"] if "docker-entrypoint-initdb.d" in v]
    assert (DEPLOY / init.split(":")[0]).exists()
    for name in service_folders():
        config = (ROOT / "services" / name / "config.yml").read_text()
        variable = re.search(r"^DB_URL:\s*\$\{(\w+)", config, re.MULTILINE).group(1)
        url = services[name]["environment"][variable]
        assert re.fullmatch(rf"postgresql://{name}:\$\{{[^}}]+\}}@postgres:5432/{name}", url)
    for name in [*service_folders(), "gateway"]:
        folder = ROOT / ("gateway" if name == "gateway" else f"services/{name}")
        required = re.findall(r"\$\{([A-Z_][A-Z0-9_]*)\}", (folder / "config.yml").read_text())
        assert set(required) <= set(services[name]["environment"]), name
    assert services["gateway"]["environment"]["GATEWAY_ADDRESS"].startswith("0.0.0.0:")
    assert services["notifications"]["environment"]["SMTP_HOST"] == "mailpit"


def config_variables(name: str) -> set[str]:
    folder = ROOT / ("gateway" if name == "gateway" else f"services/{name}")
    return set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", (folder / "config.yml").read_text()))


def test_each_process_gets_only_settings_it_reads():
    """No dead or misspelt variables, and no service holds another one's database URL."""
    services = COMPOSE["services"]
    for name in [*service_folders(), "gateway"]:
        given = set(services[name]["environment"]) - {"PORTICO_QUEUE_TYPE"}  # read by topology
        assert given <= config_variables(name), (name, given - config_variables(name))
    migrate_env = set(services["migrate"]["environment"])
    assert {v for v in migrate_env if v.endswith("_DB_URL")} == {
        f"{name.upper()}_DB_URL" for name in service_folders()}


def test_the_image_is_built_from_the_repository_dockerfile():
    for name in [*service_folders(), "gateway", "migrate", "declare"]:
        build = COMPOSE["services"][name]["build"]
        context = (DEPLOY / build["context"]).resolve()
        assert context == ROOT
        assert (context / build["dockerfile"]).is_file()


@pytest.mark.parametrize("script", sorted((DEPLOY / "postgres").glob("*.sh")))
def test_database_init_script_is_valid_shell(script):
    subprocess.run(["sh", "-n", str(script)], check=True)
