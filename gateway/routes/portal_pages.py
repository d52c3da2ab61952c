"""The hosted customer portal: `/portal?token=…` and its pages."""
from __future__ import annotations


class PortalPages:
    pass
