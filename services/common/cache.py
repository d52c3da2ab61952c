"""A small time-bounded cache for answers another service owns (a merchant's settings, an API
key's merchant), so a hot path need not ask again on every request.

Entries expire ``seconds`` after they were stored; ``seconds <= 0`` turns caching off. The
cache is per process and bounded (cleared when it reaches ``max_entries``), and it never
caches an exception. Whoever changes the value through this process calls ``forget``; other
processes see the change within ``seconds``.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any

from nameko.extensions import DependencyProvider


class TTLCache:
    def __init__(self, seconds: float, max_entries: int = 10_000,
                 monotonic: Callable[[], float] = time.monotonic):
        self.seconds = seconds
        self.max_entries = max_entries
        self._monotonic = monotonic
        self._entries: dict[Hashable, tuple[float, Any]] = {}

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        """The cached value for ``key``, or ``load()``'s (stored for ``seconds``)."""
        if self.seconds <= 0:
            return load()
        now = self._monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        value = load()
        self.put(key, value)
        return value

    def peek(self, key: Hashable) -> Any:
        """The live cached value for ``key``, or ``None``."""
        entry = self._entries.get(key)
        return entry[1] if entry is not None and entry[0] > self._monotonic() else None

    def put(self, key: Hashable, value: Any) -> None:
        if self.seconds <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (self._monotonic() + self.seconds, value)

    def forget(self, key: Hashable) -> None:
        self._entries.pop(key, None)


class Cache(DependencyProvider):
    """A ``TTLCache`` per service container, its lifetime from the config key ``setting``
    (seconds; ``default`` when unset)::

        settings_cache = Cache("SETTINGS_CACHE_SECONDS", default=5)
    """

    def __init__(self, setting: str, default: float):
        self.setting = setting
        self.default = default
        self.cache: TTLCache | None = None

    def setup(self):
        value = self.container.config.get(self.setting, self.default)
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            raise SystemExit(f"{self.setting} must be a number of seconds, not {value!r}") \
                from None
        self.cache = TTLCache(seconds)

    def get_dependency(self, worker_ctx) -> TTLCache:
        return self.cache
