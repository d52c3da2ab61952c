"""Where rendered documents live: a small interface, local files by default.

``put(key, data)`` stores bytes under a key once and returns their SHA-256; ``get(key,
sha256=…)`` returns them and refuses bytes that no longer match the recorded digest. Stored
objects are immutable: putting the same key again with the same bytes is a no-op (a retried
render), with other bytes an ``ImmutableObjectError``. An S3-compatible store can implement the
same three methods (``put`` with ``If-None-Match: *``).

Keys are ``<merchant>/<yyyy>/<document id>.<ext>``; every part is checked so a key can never
climb out of the root.
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

_KEY_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class StorageError(Exception):
    pass


class ImmutableObjectError(StorageError):
    """Another content was already stored under this key."""


class ObjectMissing(StorageError):
    pass


class DigestMismatch(StorageError):
    """The stored bytes do not match the digest recorded when they were stored."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    sha256: str
    size: int


class Storage(Protocol):
    def put(self, key: str, data: bytes) -> StoredObject: ...

    def get(self, key: str, *, sha256: str | None = None) -> bytes: ...

    def exists(self, key: str) -> bool: ...


def document_key(merchant_id: str, year: int, document_id: str, extension: str) -> str:
    return f"{merchant_id}/{year:04d}/{document_id}.{extension}"


def check_key(key: str) -> list[str]:
    parts = key.split("/")
    if not parts or any(not _KEY_PART.match(part) or part in (".", "..") for part in parts):
        raise StorageError(f"invalid storage key {key!r}")
    return parts


class LocalStorage:
    """Files under ``root`` (default ``var/documents``), written atomically and read-only."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._directories: set[str] = set()  # made (or found) by this process already

    def path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key))

    def put(self, key: str, data: bytes) -> StoredObject:
        digest = hashlib.sha256(data).hexdigest()
        path = os.path.join(self.root, *check_key(key))
        directory, name = os.path.split(path)
        if directory not in self._directories:
            os.makedirs(directory, exist_ok=True)
            if len(self._directories) >= 10_000:
                self._directories.clear()
            self._directories.add(directory)
        temporary = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        try:
            fd = os.open(temporary, flags, 0o444)
        except FileNotFoundError:  # the directory went away since this process made it
            self._directories.discard(directory)
            os.makedirs(directory, exist_ok=True)
            fd = os.open(temporary, flags, 0o444)
        try:
            with open(fd, "wb", closefd=True) as handle:
                os.fchmod(fd, 0o444)  # read-only whatever the umask
                handle.write(data)
            # link() fails if the key exists: never overwrite a stored document
            os.link(temporary, path)
        except FileExistsError:
            with open(path, "rb") as handle:
                existing = hashlib.sha256(handle.read()).hexdigest()
            if existing != digest:
                raise ImmutableObjectError(f"{key} is already stored with other content") \
                    from None
        finally:
            os.unlink(temporary)
        return StoredObject(key=key, sha256=digest, size=len(data))

    def get(self, key: str, *, sha256: str | None = None) -> bytes:
        try:
            data = self.path(key).read_bytes()
        except FileNotFoundError:
            raise ObjectMissing(key) from None
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            raise DigestMismatch(f"{key} does not match its recorded SHA-256")
        return data

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()


def content_key(data: bytes, extension: str) -> str:
    """A content-addressed key (``logos/<sha256>.png``) for shared assets such as logos."""
    return f"logos/{hashlib.sha256(data).hexdigest()}.{extension}"
