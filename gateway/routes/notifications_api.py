"""Merchant REST API for webhook endpoints, deliveries and e-mail templates; dev mail page."""
from __future__ import annotations


class NotificationsApi:
    pass
