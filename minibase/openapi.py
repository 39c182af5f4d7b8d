"""The OpenAPI 3.1 description of the HTTP surface, built from the config (service name,
developer functions), served at ``/openapi.json``. A test keeps it complete: every route
and every op of every built-in function must appear."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .config.providers import PROVIDERS

__all__ = ["DB_OPS", "FILES_OPS", "SESSION_OPS", "build_openapi"]

SESSION_OPS = ("login", "refresh", "logout", "providers")
DB_OPS = ("put", "get", "list", "remove", "insert", "update", "query", "count", "batch")
FILES_OPS = ("uploadUrl", "downloadUrl", "stat", "list", "remove")

_ID = {"type": "string", "minLength": 1, "maxLength": 256}
_COLLECTION = {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_-]{0,63}$"}
_OWNER = {
    "type": "string",
    "minLength": 1,
    "maxLength": 64,
    "description": "another user's uid (rules decide)",
}
_SID = {"type": "string", "description": "the seed's sessionId; must be the caller's session"}
_WHERE = {
    "type": "object",
    "description": "Mongo-style filter: equality, $eq $ne $gt $gte $lt $lte $in $nin $exists $prefix $contains, $and/$or, dotted paths",
}
_ORDER = {
    "type": "array",
    "maxItems": 5,
    "items": {
        "oneOf": [
            {"type": "string"},
            {
                "type": "array",
                "prefixItems": [{"type": "string"}, {"enum": ["asc", "desc"]}],
                "minItems": 1,
                "maxItems": 2,
            },
        ]
    },
}
_PATH = {"type": "string", "minLength": 1, "maxLength": 512}


def _event(op: str, props: dict[str, Any], required: Iterable[str] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"op": {"const": op}, "collection": _COLLECTION, "sid": _SID, **props},
        "required": ["op", *required],
    }


def _doc() -> dict[str, Any]:
    return {"$ref": "#/components/schemas/Document"}


def _schemas() -> dict[str, Any]:
    patch = {k: {"type": "object"} for k in ("set", "inc", "push", "pull")}
    s: dict[str, Any] = {
        "Error": {
            "type": "object",
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {
                        "code": {
                            "enum": [
                                "InvalidArgument",
                                "Unauthenticated",
                                "PermissionDenied",
                                "NotFound",
                                "MethodNotAllowed",
                                "Conflict",
                                "PayloadTooLarge",
                                "ValidationFailed",
                                "RateLimited",
                                "ProviderError",
                                "DeadlineExceeded",
                                "Internal",
                            ]
                        },
                        "message": {"type": "string"},
                        "requestId": {"type": "string"},
                        "serverTime": {"type": "string", "description": "the server's clock (RFC 3339)"},
                        # Set when an input limit refused the call ([limits] in minibase.toml).
                        "limit": {"type": "string", "description": "the limit's config key"},
                        "max": {"type": "integer", "description": "the limit's value"},
                        "path": {"type": "string", "description": "where in the event, e.g. obj.title"},
                        # Other machine-readable extras (errors.py `details`).
                        "index": {"type": "integer", "description": "the failing op of a batch"},
                        "version": {"type": "integer", "description": "the document's current version"},
                        "retryAfter": {"type": "integer", "description": "seconds to wait (RateLimited)"},
                        "maxSize": {"type": "integer", "description": "the largest upload allowed there"},
                    },
                    "required": ["code", "message", "requestId"],
                }
            },
            "required": ["error"],
        },
        "GatewayError": {
            "type": "object",
            "properties": {
                "ErrorCode": {"type": "string"},
                "ErrorMessage": {"type": "string"},
                "RequestId": {"type": "string"},
                "ServerTime": {"type": "string", "description": "the server's clock (RFC 3339)"},
            },
            "required": ["ErrorCode", "ErrorMessage"],
        },
        # A function's error on FC's Invoke API path: FC's fields beside the envelope.
        "HandledError": {
            "allOf": [
                _ref("Error"),
                {
                    "type": "object",
                    "properties": {
                        "errorMessage": {"type": "string", "description": "error.message"},
                        "errorType": {"type": "string", "description": "error.code"},
                    },
                    "required": ["errorMessage", "errorType"],
                },
            ]
        },
        "Document": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "uid": {"type": "string"},
                "_version": {"type": "integer"},
                "_created": {"type": "string"},
                "_updated": {"type": "string"},
            },
            "required": ["id", "uid", "_version", "_created", "_updated"],
        },
        "Credentials": {
            "type": "object",
            "properties": {
                k: {"type": "string"}
                for k in ("AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration")
            },
            "required": ["AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration"],
        },
        "SessionResult": {
            "type": "object",
            "properties": {
                "sessionId": {"type": "string"},
                "sts": {"$ref": "#/components/schemas/Credentials"},
                "user": {
                    "type": "object",
                    "properties": {
                        "uid": {"type": "string"},
                        "provider": {"type": "string"},
                        "isNew": {"type": "boolean"},
                    },
                },
                "expiresAt": {"type": "string"},
                "data": {"type": "object"},
            },
            "required": ["sessionId", "sts", "user", "expiresAt"],
        },
        # session function
        "session.login": {
            "type": "object",
            "properties": {
                "op": {"const": "login"},
                "authCode": {"type": "string", "minLength": 1, "maxLength": 512},
                "provider": {"enum": [p.name for p in PROVIDERS]},
            },
            "required": ["authCode"],
        },
        "session.refresh": {
            "type": "object",
            "properties": {"op": {"const": "refresh"}, "sessionId": {"type": "string"}},
            "required": ["op", "sessionId"],
        },
        "session.logout": {
            "type": "object",
            "properties": {"op": {"const": "logout"}, "sessionId": {"type": "string"}},
            "required": ["op", "sessionId"],
        },
        "session.providers": {
            "type": "object",
            "properties": {"op": {"const": "providers"}},
            "required": ["op"],
        },
        # db function
        "db.put": _event(
            "put", {"obj": {"type": "object", "properties": {"id": _ID}, "required": ["id"]}}, ["obj"]
        ),
        "db.get": _event("get", {"id": _ID, "owner": _OWNER, "fields": {"type": "array"}}, ["id"]),
        "db.list": _event(
            "list",
            {"limit": {"type": "integer", "minimum": 1, "maximum": 1000}, "cursor": {"type": "string"}},
        ),
        "db.remove": _event("remove", {"id": _ID, "owner": _OWNER}, ["id"]),
        "db.insert": _event("insert", {"obj": {"type": "object"}}, ["obj"]),
        "db.update": {
            **_event(
                "update",
                {
                    "id": _ID,
                    "owner": _OWNER,
                    "unset": {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "object"}]},
                    "ifVersion": {"type": "integer", "minimum": 1},
                    **patch,
                },
                ["id"],
            ),
            "anyOf": [{"required": [k]} for k in ("set", "unset", "inc", "push", "pull")],
        },
        "db.query": _event(
            "query",
            {
                "where": _WHERE,
                "orderBy": _ORDER,
                "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
                "cursor": {"type": "string"},
                "fields": {"type": "array", "items": {"type": "string"}},
                "owner": _OWNER,
            },
        ),
        "db.count": _event("count", {"where": _WHERE, "owner": _OWNER}),
        "db.batch": _event(
            "batch",
            {
                "ops": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 100,
                    "items": {
                        "anyOf": [_ref(f"db.{op}") for op in ("put", "get", "insert", "update", "remove")]
                    },
                }
            },
            ["ops"],
        ),
        # files function
        "files.uploadUrl": _event(
            "uploadUrl",
            {
                "path": _PATH,
                "contentType": {
                    "type": "string",
                    "maxLength": 255,
                    "pattern": "^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$",
                    "description": "a media type, e.g. image/jpeg (parameters like ; charset=utf-8 allowed)",
                },
                "size": {"type": "integer", "minimum": 0},
            },
            ["path", "contentType", "size"],
        ),
        "files.downloadUrl": _event("downloadUrl", {"path": _PATH}, ["path"]),
        "files.stat": _event("stat", {"path": _PATH}, ["path"]),
        "files.list": _event(
            "list",
            {
                "prefix": {"type": "string"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
                "cursor": {"type": "string"},
            },
        ),
        "files.remove": _event("remove", {"path": _PATH}, ["path"]),
        "files.Signed": {
            "type": "object",
            "properties": {
                "url": {"type": "string"},
                "method": {"type": "string"},
                "headers": {"type": "object"},
                "expiresAt": {"type": "string"},
            },
            "required": ["url", "expiresAt"],
        },
        "files.Stat": {
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "size": {"type": "integer"},
                "contentType": {"type": "string"},
                "updated": {"type": "string"},
            },
        },
    }
    return s


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def build_openapi(
    service: str, developer_functions: Iterable[str] = (), *, files: bool = True
) -> dict[str, Any]:
    events = {
        "session": [f"session.{op}" for op in SESSION_OPS],
        "db": [f"db.{op}" for op in DB_OPS],
        **({"files": [f"files.{op}" for op in FILES_OPS]} if files else {}),
    }
    # anyOf, not oneOf: events overlap (db.list and files.list share a shape, and every
    # event is also "a developer function's event"), so oneOf would admit none of them.
    any_event = {
        "anyOf": [_ref(n) for names in events.values() for n in names]
        + [{"type": "object", "description": "a developer function's event"}]
    }
    results = {
        "anyOf": [  # a login result carries data too: it matches both
            {
                "type": "object",
                "properties": {"data": {}, "next": {"type": ["string", "null"]}},
                "required": ["data"],
            },
            _ref("SessionResult"),
        ]
    }
    errors = {
        str(code): {"description": desc, **_json(_ref("Error"))}
        for code, desc in (
            (400, "InvalidArgument"),
            (401, "Unauthenticated"),
            (403, "PermissionDenied"),
            (404, "NotFound"),
            (409, "Conflict"),
            (413, "PayloadTooLarge"),
            (422, "ValidationFailed"),
            (429, "RateLimited"),
            (500, "Internal"),
            (502, "ProviderError"),
            (504, "DeadlineExceeded"),
        )
    }
    session_op = {
        "summary": "The session function: login, refresh, logout, providers",
        "requestBody": {"required": True, **_json({"oneOf": [_ref(f"session.{op}") for op in SESSION_OPS]})},
        "responses": {
            "200": {
                "description": "the session and credentials, {data: null} for logout, or the providers",
                **_json(
                    {
                        "anyOf": [
                            _ref("SessionResult"),
                            {
                                "type": "object",
                                "properties": {"data": {"type": "null"}},
                                "required": ["data"],
                            },
                            {
                                "type": "object",
                                "properties": {
                                    "data": {
                                        "type": "object",
                                        "properties": {
                                            "providers": {"type": "array", "items": {"type": "string"}},
                                            "unavailable": {
                                                "type": "object",
                                                "additionalProperties": {"type": "string"},
                                            },
                                        },
                                        "required": ["providers", "unavailable"],
                                    }
                                },
                                "required": ["data"],
                            },
                        ]
                    }
                ),
            },
            **errors,
        },
    }
    fn_param = {
        "name": "function",
        "in": "path",
        "required": True,
        "schema": {"enum": ["session", "db", *(["files"] if files else []), *developer_functions]},
    }
    svc_param = {"name": "service", "in": "path", "required": True, "schema": {"const": service}}
    paths: dict[str, Any] = {
        "/session": {"post": {**session_op, "operationId": "session"}},
        "/2016-08-15/proxy/{service}/session/": {
            "post": {**session_op, "operationId": "sessionProxy", "parameters": [svc_param]}
        },
        "/2016-08-15/proxy/{service}/session": {
            "post": {**session_op, "operationId": "sessionProxyNoSlash", "parameters": [svc_param]}
        },
        "/invoke/{function}": {
            "post": {
                "operationId": "invoke",
                "summary": "Call a function (FC signature or Authorization: Bearer <sessionId>); the status is the error code's",
                "parameters": [fn_param],
                "security": [{"fc": []}, {"bearer": []}, {}],
                "requestBody": {"required": True, **_json(any_event)},
                "responses": {"200": {"description": "the function's result", **_json(results)}, **errors},
            }
        },
        "/2016-08-15/services/{service}/functions/{function}/invocations": {
            "post": {
                "operationId": "fcInvoke",
                "summary": "FC Invoke API: function errors answer 200 with x-fc-error-type; gateway errors FC's way",
                "parameters": [svc_param, fn_param],
                "security": [{"fc": []}],
                "requestBody": {"required": True, **_json(any_event)},
                "responses": {
                    "200": {
                        "description": "the result, or a handled error (x-fc-error-type: HandledInvocationError)",
                        **_json({"anyOf": [results, _ref("HandledError")]}),
                    },
                    **{
                        str(c): {"description": "refused by the gateway", **_json(_ref("GatewayError"))}
                        for c in (400, 401, 403, 404, 413)
                    },
                },
            }
        },
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "responses": {"200": {"description": "alive", **_json({"type": "object"})}},
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "responses": {"200": {"description": "this document", **_json({"type": "object"})}},
            }
        },
    }
    if files:
        key = {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}
        signed = [
            key,
            {"name": "Expires", "in": "query", "required": True, "schema": {"type": "integer"}},
            {"name": "Signature", "in": "query", "required": True, "schema": {"type": "string"}},
        ]
        paths["/files/{key}"] = {
            "put": {
                "operationId": "filePut",
                "summary": "upload through a signed URL (local backend)",
                "parameters": signed,
                "requestBody": {"content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
                "responses": {
                    "200": {"description": "stored"},
                    "400": {
                        "description": "the body's size differs from the signed one",
                        **_json(_ref("Error")),
                    },
                    "403": {"description": "bad or expired signature", **_json(_ref("Error"))},
                    "404": {"description": "not a valid file key", **_json(_ref("Error"))},
                    "409": {"description": "a file or folder is in the way", **_json(_ref("Error"))},
                    "413": {"description": "larger than the URL allows", **_json(_ref("Error"))},
                },
            },
            "get": {
                "operationId": "fileGet",
                "summary": "download through a signed URL (local backend)",
                "parameters": signed,
                "responses": {
                    "200": {"description": "the bytes"},
                    "304": {"description": "not modified (If-None-Match)"},
                    "403": {"description": "bad or expired signature", **_json(_ref("Error"))},
                    "404": {"description": "no such file", **_json(_ref("Error"))},
                },
            },
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "minibase",
            "version": "1",
            "description": "Login, data, files and functions for mini-programs. Events per function and op are in components.schemas (session.*, db.*, files.*).",
        },
        "paths": paths,
        "components": {
            "schemas": _schemas()
            if files
            else {k: v for k, v in _schemas().items() if not k.startswith("files.")},
            "securitySchemes": {
                "fc": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "FC <AccessKeyId>:<base64 HMAC-SHA256 signature>, with Date (or x-fc-date) and x-fc-security-token",
                },
                "bearer": {"type": "http", "scheme": "bearer", "description": "the sessionId"},
            },
        },
    }
