"""Stored documents are immutable and checked against their SHA-256; a document's content
survives the trip through JSON unchanged."""
from __future__ import annotations

import hashlib
import json
import os

import pytest

from services.documents import content
from services.documents.document import DocumentError
from services.documents.storage import (
    DigestMismatch,
    ImmutableObjectError,
    LocalStorage,
    ObjectMissing,
    StorageError,
    document_key,
)
from tests.unit.documents.test_rendering import (
    make_credit_note,
    make_document,
    make_reminder,
    png_logo,
)


def test_put_records_the_digest_and_get_checks_it(tmp_path):
    store = LocalStorage(tmp_path)
    key = document_key("m_1", 2027, "doc_1", "pdf")
    stored = store.put(key, b"%PDF-1.7 one")
    assert stored.sha256 == hashlib.sha256(b"%PDF-1.7 one").hexdigest() and stored.size == 12
    assert store.get(key, sha256=stored.sha256) == b"%PDF-1.7 one"
    assert (tmp_path / "m_1" / "2027" / "doc_1.pdf").stat().st_mode & 0o222 == 0  # read-only
    assert [p.name for p in (tmp_path / "m_1" / "2027").iterdir()] == ["doc_1.pdf"]


def test_stored_documents_are_immutable(tmp_path):
    store = LocalStorage(tmp_path)
    key = document_key("m_1", 2027, "doc_1", "pdf")
    first = store.put(key, b"first")
    assert store.put(key, b"first") == first  # a retried render: same bytes, fine
    with pytest.raises(ImmutableObjectError):
        store.put(key, b"second")
    assert store.get(key) == b"first"


def test_tampered_or_missing_files_are_reported(tmp_path):
    store = LocalStorage(tmp_path)
    key = document_key("m_1", 2027, "doc_1", "xml")
    stored = store.put(key, b"<xml/>")
    path = store.path(key)
    os.chmod(path, 0o644)
    path.write_bytes(b"<evil/>")
    with pytest.raises(DigestMismatch):
        store.get(key, sha256=stored.sha256)
    with pytest.raises(ObjectMissing):
        store.get(document_key("m_1", 2027, "doc_2", "xml"))


@pytest.mark.parametrize("key", ["../etc/passwd", "m_1/../../x.pdf", "/abs/x.pdf", "m_1//x",
                                 "m_1/.hidden", ""])
def test_keys_cannot_leave_the_root(tmp_path, key):
    with pytest.raises(StorageError):
        LocalStorage(tmp_path).put(key, b"x")


@pytest.mark.parametrize("factory", [make_document, make_credit_note, make_reminder])
def test_content_round_trips_through_json(factory):
    doc = factory()
    data = json.loads(json.dumps(content.to_content(doc)))
    assert content.from_content(data) == doc


def test_the_logo_is_referenced_by_digest_and_must_match():
    from services.documents.document import Branding
    logo = png_logo()
    doc = make_document(branding=Branding(logo=logo, primary_color="#0F766E"))
    data = content.to_content(doc)
    assert data["branding"]["logo_sha256"] == hashlib.sha256(logo).hexdigest()
    assert "logo" not in json.dumps(data).replace("logo_sha256", "")
    assert content.from_content(data, logo) == doc
    with pytest.raises(ValueError, match="logo"):
        content.from_content(data, b"\x89PNG\r\n\x1a\nother")


def test_tampered_totals_in_content_are_recomputed_not_trusted():
    data = content.to_content(make_document())
    data["lines"][0]["net_amount"] = "1.001"
    with pytest.raises(DocumentError):
        content.from_content(data)
