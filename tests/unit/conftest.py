"""Unit tier: domain rules as plain functions and single workers via ``worker_factory``.

Real here: the code under test, SQLite in memory where a worker needs a database. Replaced:
nothing is mocked but what lies outside the service (RPC proxies, the mailer transport).
No broker, no network, no sleeping.
"""
