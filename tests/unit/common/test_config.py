"""Configuration: placeholders expand, and a missing setting stops the process in one line."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.common import config

ROOT = Path(__file__).resolve().parents[3]


def test_placeholders_take_the_environment_then_the_default():
    text = "a: ${A:one}\nb: ${B:${C:two}/x}\nc: ${D}\n"
    assert config.expand(text, {"A": "env"}) == "a: env\nb: two/x\nc: <unset>\n"
    assert config.expand(text, {"C": "cee", "D": "dee"}) == "a: one\nb: cee/x\nc: dee\n"


def test_validate_names_the_missing_setting():
    with pytest.raises(config.ConfigError, match="SECRET_KEY is missing"):
        config.validate({"AMQP_URI": "amqp://"}, ["AMQP_URI", "SECRET_KEY"])


def test_validate_refuses_placeholder_secrets():
    with pytest.raises(config.ConfigError, match="SECRET_KEY still holds a placeholder"):
        config.validate({"SECRET_KEY": "change-me"}, ["SECRET_KEY"], ["SECRET_KEY"])


def start_refused(service: str, env: dict) -> str:
    """Start ``service`` as ops would; it must stop at once with exit 2 and no traceback →
    its last stderr line."""
    result = subprocess.run([sys.executable, "-m", "services.common.runner", service],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    return [line for line in result.stderr.splitlines() if line.strip()][-1]


def test_a_service_without_its_secret_stops_with_one_line():
    env = {k: v for k, v in os.environ.items() if k != "PORTICO_SECRET_KEY"}
    assert start_refused("gateway", env) == (
        "portico-gateway: config error: setting SECRET_KEY is missing "
        "(set it in the environment or config.yml)")


@pytest.mark.parametrize(("value", "expected"), [("10", 10), (" 3 ", 3), (7, 7)])
def test_numeric_settings_are_converted(value, expected):
    checked = config.validate({"LIMIT": value}, [], numbers={"LIMIT": (int, 1)})
    assert checked["LIMIT"] == expected


@pytest.mark.parametrize("value", ["ten", "0", "-1", "1.5", "1e3x"])
def test_a_numeric_setting_that_is_not_a_number_in_range_is_refused(value):
    with pytest.raises(config.ConfigError,
                       match=f"LIMIT must be a whole number of at least 1, not '{value}'"):
        config.validate({"LIMIT": value}, [], numbers={"LIMIT": (int, 1)})


def test_a_bad_number_stops_the_tokens_service_with_one_line():
    assert start_refused("tokens", {**os.environ, "TOKEN_FAILURE_LIMIT": "lots"}) == (
        "portico-tokens: config error: setting TOKEN_FAILURE_LIMIT must be a whole number "
        "of at least 1, not 'lots'")
