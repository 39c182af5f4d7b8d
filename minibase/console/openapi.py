"""The console API's part of the OpenAPI document (``/openapi.json``): its routes from
``routes.py``, the admin cookie as their security, the CSRF header on state-changing ones."""

from __future__ import annotations

import re
from typing import Any

from .routes import API, PREFIX

__all__ = ["console_paths", "console_security"]

_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_ERRORS = {
    "400": "bad input (InvalidArgument, ValidationFailed)",
    "401": "no admin session, or it expired (Unauthenticated)",
    "403": "missing or wrong X-CSRF-Token, or a cross-origin request (PermissionDenied)",
    "404": "no such user, document, file or route (NotFound)",
    "409": "ifVersion does not match (Conflict)",
    "429": "too many login attempts (RateLimited)",
    "503": "the database is unavailable (Unavailable)",
}


def console_security() -> dict[str, Any]:
    return {
        "adminCookie": {
            "type": "apiKey",
            "in": "cookie",
            "name": "minibase_admin",
            "description": "the admin session cookie set by POST /_/api/login (HttpOnly, SameSite=Strict)",
        }
    }


def console_paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for route in API:
        params: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
            for name in re.findall(r"\{(\w+)\}", route.path)
        ]
        if route.changes and route.handler != "login":
            params.append(
                {
                    "name": "X-CSRF-Token",
                    "in": "header",
                    "required": True,
                    "description": "the csrf of POST /_/api/login or GET /_/api/me",
                    "schema": {"type": "string"},
                }
            )
        op: dict[str, Any] = {
            "operationId": "console" + "".join(p.capitalize() for p in route.handler.strip("_").split("_")),
            "summary": route.summary,
            "tags": ["console"],
            "responses": {
                "200": {
                    "description": "done",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **{code: {"description": text, **_ERROR} for code, text in _ERRORS.items()},
            },
        }
        if route.handler != "login":
            op["security"] = [{"adminCookie": []}]
        if params:
            op["parameters"] = params
        if route.body:
            op["requestBody"] = {"content": {"application/json": {"schema": {"type": "object"}}}}
        if route.handler == "export":
            op["responses"]["200"] = {"description": "JSON Lines, gzip", "content": {"application/gzip": {}}}
        if route.handler == "import_":
            op["requestBody"] = {
                "content": {"application/gzip": {}, "application/x-ndjson": {}},
                "description": "an export (JSON Lines, gzip or not)",
            }
        paths.setdefault(PREFIX + route.path, {})[route.method.lower()] = op
    return paths
