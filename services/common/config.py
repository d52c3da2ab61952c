"""Configuration: one YAML file per service, ``${ENV:default}`` placeholders, loud validation.

A value written ``${NAME:default}`` takes the environment variable ``NAME`` or else ``default``;
``${NAME}`` without a default must be set. ``validate`` stops the process with one line naming
what is missing, never a traceback.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import yaml

_PLACEHOLDER = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<default>[^{}]*))?\}")
_UNSET = "<unset>"
PLACEHOLDER_SECRETS = {"", "change-me", "CHANGE_ME", "changeme", _UNSET}


class ConfigError(Exception):
    """A setting is missing or unusable; the message names it."""


def expand(text: str, environ=None) -> str:
    environ = os.environ if environ is None else environ

    def substitute(match: re.Match) -> str:
        name, default = match.group("name"), match.group("default")
        if name in environ:
            return environ[name]
        return default if default is not None else _UNSET

    # innermost first, so a default may itself hold a placeholder: ${A:${B:x}/y}
    for _ in range(5):
        expanded = _PLACEHOLDER.sub(substitute, text)
        if expanded == text:
            break
        text = expanded
    return text


def load(path: str | Path, environ=None) -> dict:
    """Read a service's ``config.yml`` with placeholders expanded."""
    text = Path(path).read_text()
    data = yaml.safe_load(expand(text, environ)) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return data


def validate(config: dict, required: list[str], secrets: list[str] = (),
             numbers: dict[str, tuple[type, float]] | None = None) -> dict:
    """Raise ``ConfigError`` naming the first missing, placeholder or non-numeric setting.

    ``numbers`` maps a setting to ``(int or float, smallest allowed value)``; a present value
    is converted in place, so a typo stops the service at start instead of failing requests.
    """
    for key in required:
        value = config.get(key)
        if value is None or str(value) in ("", _UNSET):
            raise ConfigError(f"setting {key} is missing (set it in the environment or config.yml)")
    for key in secrets:
        if str(config.get(key, "")) in PLACEHOLDER_SECRETS:
            raise ConfigError(f"setting {key} still holds a placeholder; set a real secret")
    for key, (kind, low) in (numbers or {}).items():
        value = config.get(key)
        if value is None or str(value) == "":
            continue
        try:
            number = kind(str(value).strip())
        except ValueError:
            number = None
        if number is None or number < low:
            what = "a whole number" if kind is int else "a number"
            raise ConfigError(f"setting {key} must be {what} of at least {low:g}, "
                              f"not {str(value)!r}")
        config[key] = number
    return config


def fail(program: str, message: str, code: int = 2):
    """Stop the process with one clear line on stderr."""
    print(f"{program}: {message}", file=sys.stderr)
    raise SystemExit(code)
