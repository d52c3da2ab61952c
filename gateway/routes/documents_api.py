"""Merchant REST API for invoices, credit notes and document downloads."""
from __future__ import annotations


class DocumentsApi:
    pass
