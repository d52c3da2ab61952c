"""The merchant REST API as an OpenAPI 3.1 document, generated with apispec from marshmallow.

``GET /api/v1/openapi.json`` serves it (route in ``gateway/routes/signup_api.py``). Each area
registers its endpoints once, when its route module is imported::

    from gateway import openapi

    openapi.register("/api/v1/invoices/{invoice_id}", "get", "Fetch an invoice",
                     response_schema=InvoiceSchema, tags=["documents"])
    openapi.register("/api/v1/invoices", "get", "List invoices",
                     response_schema=InvoiceSchema(many=True),
                     query={"contract_id": "Only this contract's invoices"})

``register(path, method, summary, request_schema=None, response_schema=None, **options)``:

- ``path``: OpenAPI style (``{name}`` placeholders); path parameters are documented from it.
- ``request_schema`` / ``response_schema``: a marshmallow ``Schema`` class or instance
  (``many=True`` for arrays) or ``None``. The class name is the component's name, so keep
  schema class names unique across areas.
- options: ``status`` (success status, default 200; use 201 for creates, 204 for no body),
  ``description``, ``tags``, ``query`` and ``headers`` (``{name: description}``),
  ``request_content_type`` (default ``application/json``; e.g. ``image/png`` for a raw
  upload, then documented as binary), ``response_content_type`` (e.g. ``application/pdf``),
  ``public=True`` for endpoints without the bearer key.

Every operation documents the error body (``Error``) for 4xx answers. Registering the same
``(path, method)`` again replaces the earlier entry.
"""
from __future__ import annotations

import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields

TITLE = "Portico merchant API"
VERSION = "1.0.0"

_operations: dict[tuple[str, str], dict[str, Any]] = {}
_cached: dict | None = None


class ErrorDetail(Schema):
    code = fields.String(metadata={"example": "invalid_email"})
    message = fields.String()
    params = fields.Dict()


class ErrorBody(Schema):
    code = fields.String(metadata={"example": "invalid_input"})
    message = fields.String()
    fields = fields.Dict(keys=fields.String(), values=fields.List(fields.Nested(ErrorDetail)),
                         metadata={"description": "Per-field problems: field path → list."})


class Error(Schema):
    error = fields.Nested(ErrorBody)


def register(path: str, method: str, summary: str, request_schema=None, response_schema=None,
             *, status: int = 200, description: str | None = None, tags=None,
             query: dict[str, str] | None = None, headers: dict[str, str] | None = None,
             request_content_type: str = "application/json",
             response_content_type: str = "application/json", public: bool = False) -> None:
    """Add (or replace) one operation; see the module docstring."""
    global _cached
    _operations[(path, method.lower())] = {
        "summary": summary, "request_schema": request_schema,
        "response_schema": response_schema, "status": status, "description": description,
        "tags": list(tags or []), "query": dict(query or {}), "headers": dict(headers or {}),
        "request_content_type": request_content_type,
        "response_content_type": response_content_type, "public": public,
    }
    _cached = None


def _operation(path: str, entry: dict) -> dict:
    parameters = [{"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
                  for name in re.findall(r"\{([^}]+)\}", path)]
    parameters += [{"in": "query", "name": name, "required": False, "description": text,
                    "schema": {"type": "string"}} for name, text in entry["query"].items()]
    parameters += [{"in": "header", "name": name, "required": False, "description": text,
                    "schema": {"type": "string"}} for name, text in entry["headers"].items()]
    operation: dict[str, Any] = {"summary": entry["summary"], "responses": {}}
    if entry["description"]:
        operation["description"] = entry["description"]
    if entry["tags"]:
        operation["tags"] = entry["tags"]
    if parameters:
        operation["parameters"] = parameters
    if entry["request_content_type"] != "application/json":
        operation["requestBody"] = {"required": True, "content": {
            entry["request_content_type"]: {"schema": {"type": "string",
                                                       "format": "binary"}}}}
    elif entry["request_schema"] is not None:
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": entry["request_schema"]}}}
    success: dict[str, Any] = {"description": "OK" if entry["status"] < 300 else "Done"}
    if entry["response_schema"] is not None and entry["status"] != 204:
        success["content"] = {entry["response_content_type"]: {
            "schema": entry["response_schema"]}}
    elif entry["response_content_type"] != "application/json":
        success["content"] = {entry["response_content_type"]: {
            "schema": {"type": "string", "format": "binary"}}}
    operation["responses"][str(entry["status"])] = success
    error = {"content": {"application/json": {"schema": "Error"}}}
    operation["responses"]["4XX"] = {"description": "Invalid request, unknown object or "
                                                    "refused; see error.code", **error}
    if entry["public"]:
        operation["security"] = []
    return operation


def spec() -> dict:
    """The whole document (built once per set of registrations)."""
    global _cached
    if _cached is not None:
        return _cached
    document = APISpec(title=TITLE, version=VERSION, openapi_version="3.1.0",
                       plugins=[MarshmallowPlugin()], info={
                           "description": "Merchant REST API of Portico. Authenticate with "
                                          "`Authorization: Bearer <secret key>`. Errors: "
                                          "`{\"error\": {\"code\", \"message\", \"fields\"}}`."},
                       security=[{"bearerAuth": []}])
    document.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    document.components.schema("Error", schema=Error)
    by_path: dict[str, dict] = {}
    for (path, method), entry in sorted(_operations.items()):
        by_path.setdefault(path, {})[method] = _operation(path, entry)
    for path, operations in by_path.items():
        document.path(path=path, operations=operations)
    _cached = document.to_dict()
    return _cached
