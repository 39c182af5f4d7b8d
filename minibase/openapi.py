"""The OpenAPI 3.1 description of the HTTP surface, served at ``/openapi.json``.

Nothing here is declared twice: the paths are :data:`minibase.routes.ROUTES` (one operation
per route and method, path parameters read from the template), the events are the ops the
function modules declare (``auth.login.OPS``, ``data.api.OPS``, ``files.api.OPS``), the
error codes and statuses are the error tree's, and the bounds are the config's ``[limits]``
and the modules' own constants. A test keeps it complete: every route and every op of
every built-in function must appear.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .auth.login import MAX_CODE
from .auth.login import OPS as SESSION_OPS
from .config import LimitsConfig
from .config.providers import PROVIDERS
from .data.api import BATCH_OPS
from .data.api import OPS as DB_OPS
from .data.query import MAX_ORDER_KEYS
from .errors import MethodNotAllowed, RateLimited, Unavailable, error_codes
from .files.api import MAX_BATCH as FILES_MAX_BATCH
from .files.api import MAX_LIMIT as FILES_MAX_LIMIT
from .files.api import OPS as FILES_OPS
from .files.paths import MAX_PATH_BYTES
from .routes import ROUTES, Route

__all__ = ["DB_OPS", "FILES_OPS", "SESSION_OPS", "build_openapi"]

_COLLECTION = {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_-]{0,63}$"}
_OWNER = {
    "type": "string",
    "minLength": 1,
    "maxLength": 64,
    "description": "another user's uid (rules decide)",
}
_SID = {
    "type": "string",
    "description": "the sessionId (FC's mini-program template sends it in the event); must be the caller's session",
}
_WHERE = {
    "type": "object",
    "description": "Mongo-style filter: equality, $eq $ne $gt $gte $lt $lte $in $nin $exists $prefix $contains $search, $and/$or, dotted paths",
}
_PIPELINE = {
    "type": "array",
    "minItems": 1,
    "maxItems": 4,
    "description": "stages, each once and in this order: {$match: where}, {$group: {_id, name: {$count|$sum|$avg|$min|$max}}},"
    " {$sort: {field: 1|-1}}, {$limit: n}; $group is required (docs/data.md#aggregation)",
    "items": {"type": "object", "minProperties": 1, "maxProperties": 1},
}
_ORDER = {
    "type": "array",
    "maxItems": MAX_ORDER_KEYS,
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
_PATH = {"type": "string", "minLength": 1, "maxLength": MAX_PATH_BYTES}


def _event(op: str, props: dict[str, Any], required: Iterable[str] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"op": {"const": op}, "collection": _COLLECTION, "sid": _SID, **props},
        "required": ["op", *required],
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _limit(maximum: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": 1, "maximum": maximum}


# ------------------------------------------------------------------ schemas


def _error_schemas() -> dict[str, Any]:
    details = {
        # Set when an input limit refused the call ([limits] in minibase.toml).
        "limit": {"type": "string", "description": "the limit's config key"},
        "max": {"type": "integer", "description": "the limit's value"},
        "path": {"type": "string", "description": "where in the event, e.g. obj.title"},
        # Other machine-readable extras (errors.py `details`).
        "index": {"type": "integer", "description": "the failing op of a batch"},
        "version": {"type": "integer", "description": "the document's current version"},
        "retryAfter": {
            "type": "integer",
            "description": "seconds to wait (RateLimited, Unavailable), as Retry-After",
        },
        "maxSize": {"type": "integer", "description": "the largest upload allowed there"},
    }
    error = {
        "type": "object",
        "properties": {
            "code": {"enum": list(error_codes())},
            "message": {"type": "string"},
            "requestId": {"type": "string"},
            "serverTime": {"type": "string", "description": "the server's clock (RFC 3339)"},
            **details,
        },
        "required": ["code", "message", "requestId"],
    }
    fc_fields = {  # a function's error on FC's Invoke API path: FC's fields beside the envelope
        "type": "object",
        "properties": {
            "errorMessage": {"type": "string", "description": "error.message"},
            "errorType": {"type": "string", "description": "error.code"},
        },
        "required": ["errorMessage", "errorType"],
    }
    return {
        "Error": {"type": "object", "properties": {"error": error}, "required": ["error"]},
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
        "HandledError": {"allOf": [_ref("Error"), fc_fields]},
    }


def _session_schemas() -> dict[str, Any]:
    credentials = ("AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration")
    user = {"uid": {"type": "string"}, "provider": {"type": "string"}, "isNew": {"type": "boolean"}}
    by_sid: dict[str, Any] = {"type": "object", "properties": {"sessionId": {"type": "string"}}}
    return {
        "Credentials": {
            "type": "object",
            "properties": {k: {"type": "string"} for k in credentials},
            "required": list(credentials),
        },
        "SessionResult": {
            "type": "object",
            "properties": {
                "sessionId": {"type": "string"},
                "sts": _ref("Credentials"),
                "user": {"type": "object", "properties": user},
                "expiresAt": {"type": "string"},
                "data": {"type": "object"},
            },
            "required": ["sessionId", "sts", "user", "expiresAt"],
        },
        "session.login": {
            "type": "object",
            "properties": {
                "op": {"const": "login"},
                "authCode": {"type": "string", "minLength": 1, "maxLength": MAX_CODE},
                "provider": {"enum": [p.name for p in PROVIDERS]},
            },
            "required": ["authCode"],
        },
        **{
            f"session.{op}": {
                **by_sid,
                "properties": {"op": {"const": op}, **by_sid["properties"]},
                "required": ["op", "sessionId"],
            }
            for op in ("refresh", "logout")
        },
        "session.providers": {
            "type": "object",
            "properties": {"op": {"const": "providers"}},
            "required": ["op"],
        },
        # docs/platform.md#phone-numbers: WeChat's code, Alipay's my.getPhoneNumber answer,
        # a dev login's number
        "session.linkPhone": {
            **by_sid,
            "properties": {
                "op": {"const": "linkPhone"},
                **by_sid["properties"],
                "code": {"type": "string"},
                "response": {"type": ["string", "object"]},
                "phone": {"type": "string"},
            },
            "required": ["op", "sessionId"],
        },
    }


def _db_schemas(limits: LimitsConfig) -> dict[str, Any]:
    doc_id = {"type": "string", "minLength": 1, "maxLength": limits.max_id_length}
    page = {"limit": _limit(limits.max_query_limit), "cursor": {"type": "string"}}
    patch = {k: {"type": "object"} for k in ("set", "inc", "push", "pull")}
    unset = {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "object"}]}
    update = {"id": doc_id, "owner": _OWNER, "unset": unset, "ifVersion": {"type": "integer", "minimum": 1}}
    batch = {
        "type": "array",
        "minItems": 1,
        "maxItems": limits.max_batch,
        "items": {"anyOf": [_ref(f"db.{op}") for op in BATCH_OPS]},
    }
    fields = {"type": "array", "items": {"type": "string"}}
    return {
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
        "db.put": _event(
            "put", {"obj": {"type": "object", "properties": {"id": doc_id}, "required": ["id"]}}, ["obj"]
        ),
        "db.get": _event("get", {"id": doc_id, "owner": _OWNER, "fields": {"type": "array"}}, ["id"]),
        "db.list": _event("list", page),
        "db.remove": _event("remove", {"id": doc_id, "owner": _OWNER}, ["id"]),
        "db.insert": _event("insert", {"obj": {"type": "object"}}, ["obj"]),
        "db.update": {
            **_event("update", {**update, **patch}, ["id"]),
            "anyOf": [{"required": [k]} for k in ("set", "unset", "inc", "push", "pull")],
        },
        "db.query": _event(
            "query", {"where": _WHERE, "orderBy": _ORDER, **page, "fields": fields, "owner": _OWNER}
        ),
        "db.count": _event("count", {"where": _WHERE, "owner": _OWNER}),
        "db.aggregate": _event("aggregate", {"pipeline": _PIPELINE, "owner": _OWNER}, ["pipeline"]),
        "db.batch": _event("batch", {"ops": batch}, ["ops"]),
    }


def _files_schemas() -> dict[str, Any]:
    content_type = {
        "type": "string",
        "maxLength": 255,
        "pattern": "^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$",
        "description": "a media type, e.g. image/jpeg (parameters like ; charset=utf-8 allowed)",
    }
    upload = {"path": _PATH, "contentType": content_type, "size": {"type": "integer", "minimum": 0}}
    listing = {"prefix": {"type": "string"}, "limit": _limit(FILES_MAX_LIMIT), "cursor": {"type": "string"}}
    return {
        "files.uploadUrl": _event("uploadUrl", upload, ["path", "contentType", "size"]),
        "files.uploadForm": _event("uploadForm", upload, ["path", "contentType"]),
        "files.downloadUrl": _event("downloadUrl", {"path": _PATH, "thumb": {"type": "string"}}, ["path"]),
        "files.downloadUrls": _event(
            "downloadUrls",
            {
                "paths": {"type": "array", "items": _PATH, "maxItems": FILES_MAX_BATCH},
                "thumb": {"type": "string"},
            },
            ["paths"],
        ),
        "files.stat": _event("stat", {"path": _PATH}, ["path"]),
        "files.list": _event("list", listing),
        "files.remove": _event("remove", {"path": _PATH}, ["path"]),
        "files.Signed": {
            "type": "object",
            "properties": {
                "url": {"type": "string"},
                "method": {"type": "string"},
                "headers": {"type": "object"},
                "expiresAt": {"type": ["string", "null"]},
                "fileId": {"type": "string"},
            },
            "required": ["url", "expiresAt"],
        },
        "files.Stat": {
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "fileId": {"type": "string"},
                "size": {"type": "integer"},
                "contentType": {"type": "string"},
                "updated": {"type": "string"},
            },
        },
    }


# --------------------------------------------------------------- operations


class _Spec:
    """What the operations are built from: the service, the functions and the errors."""

    def __init__(
        self, service: str, functions: list[str], events: list[str], limits: LimitsConfig | None = None
    ) -> None:
        self.service = service
        self.limits = limits or LimitsConfig()
        self.functions = functions
        # anyOf, not oneOf: events overlap (db.list and files.list share a shape, and every
        # event is also "a developer function's event"), so oneOf would admit none of them.
        self.any_event = {
            "anyOf": [_ref(n) for n in events]
            + [{"type": "object", "description": "a developer function's event"}]
        }
        self.results = {
            "anyOf": [  # a login result carries data too: it matches both
                {
                    "type": "object",
                    "properties": {"data": {}, "next": {"type": ["string", "null"]}},
                    "required": ["data"],
                },
                _ref("SessionResult"),
            ]
        }
        # What a function route can answer: every code of the tree but 405 (a method error).
        retry_after = {
            "Retry-After": {
                "description": "seconds to wait before trying again",
                "schema": {"type": "integer"},
            }
        }
        self.errors = {
            str(status): {
                "description": code,
                **_json(_ref("Error")),
                **({"headers": retry_after} if code in (RateLimited.code, Unavailable.code) else {}),
            }
            for code, status in error_codes().items()
            if code != MethodNotAllowed.code
        }

    def param(self, name: str) -> dict[str, Any]:
        schemas: dict[str, dict[str, Any]] = {
            "service": {"const": self.service},
            "function": {"enum": self.functions},
            "key": {"type": "string"},
            # a webhook's name, as @webhook allows it
            "name": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_-]{0,63}$"},
        }
        return {"name": name, "in": "path", "required": True, "schema": schemas[name]}


def _session_op(spec: _Spec) -> dict[str, Any]:
    providers = {
        "type": "object",
        "properties": {
            "providers": {"type": "array", "items": {"type": "string"}},
            "unavailable": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "required": ["providers", "unavailable"],
    }
    answers = [
        _ref("SessionResult"),
        {"type": "object", "properties": {"data": {"type": "null"}}, "required": ["data"]},
        {"type": "object", "properties": {"data": providers}, "required": ["data"]},
    ]
    ok = {"description": "the session and credentials, {data: null} for logout, or the providers"}
    return {
        "summary": "The session function: login, refresh, logout, providers, linkPhone",
        "requestBody": {"required": True, **_json({"oneOf": [_ref(f"session.{op}") for op in SESSION_OPS]})},
        "responses": {"200": {**ok, **_json({"anyOf": answers})}, **spec.errors},
    }


def _invoke_op(spec: _Spec) -> dict[str, Any]:
    return {
        "summary": "Call a function (FC signature or Authorization: Bearer <sessionId>); the status is the error code's",
        "security": [{"fc": []}, {"bearer": []}, {}],
        "requestBody": {"required": True, **_json(spec.any_event)},
        "responses": {"200": {"description": "the function's result", **_json(spec.results)}, **spec.errors},
    }


def _fc_invoke_op(spec: _Spec) -> dict[str, Any]:
    ok = {"description": "the result, or a handled error (x-fc-error-type: HandledInvocationError)"}
    refused = {"description": "refused by the gateway", **_json(_ref("GatewayError"))}
    return {
        "summary": "FC Invoke API: function errors answer 200 with x-fc-error-type; gateway errors FC's way",
        "security": [{"fc": []}],
        "requestBody": {"required": True, **_json(spec.any_event)},
        "responses": {
            "200": {**ok, **_json({"anyOf": [spec.results, _ref("HandledError")]})},
            **{str(c): refused for c in (400, 401, 403, 404, 413)},
        },
    }


def _webhook_op(spec: _Spec) -> dict[str, Any]:
    return {
        "summary": "A @webhook: payment notifications (Alipay, WeChat Pay) or any caller's request (docs/events.md)",
        "requestBody": {"content": {"*/*": {"schema": {}}}},
        "responses": {
            "200": {
                "description": "handled: Alipay's `success`/`fail` (text/plain), or a plain webhook's result",
                "content": {"text/plain": {"schema": {"type": "string"}}, **_json(spec.results)["content"]},
            },
            "204": {"description": "a WeChat Pay notification handled"},
            # a refused WeChat Pay notification answers {"code": "FAIL", "message"} with these
            **spec.errors,
        },
    }


def _files_ops(spec: _Spec) -> dict[str, Any]:
    signed = [
        {"name": "Expires", "in": "query", "required": True, "schema": {"type": "integer"}},
        {"name": "Signature", "in": "query", "required": True, "schema": {"type": "string"}},
    ]

    def error(description: str) -> dict[str, Any]:
        return {"description": description, **_json(_ref("Error"))}

    put = {
        "summary": "upload through a signed URL (local backend)",
        "parameters": signed,
        "requestBody": {"content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
        "responses": {
            "200": {"description": "stored"},
            "400": error("the body's size differs from the signed one"),
            "403": error("bad or expired signature"),
            "404": error("not a valid file key"),
            "409": error("a file or folder is in the way"),
            "413": error("larger than the URL allows"),
        },
    }
    post = {
        "summary": "a form upload through a signed URL (uploadForm, local backend)",
        "parameters": signed,
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                }
            }
        },
        "responses": {
            "200": {"description": "stored: {size}"},
            "400": error("not a form with one file part, or smaller than the URL allows"),
            "403": error("bad or expired signature"),
            "404": error("not a valid file key"),
            "409": error("a file or folder is in the way, or the file changed"),
            "413": error("larger than the URL allows"),
        },
    }
    optional = [{**p, "required": False} for p in signed]
    get = {
        "summary": "download through a signed URL, or a public file's stable URL (local backend)",
        "parameters": optional,
        "responses": {
            "200": {"description": "the bytes"},
            "206": {"description": "the requested range (Range)"},
            "304": {"description": "not modified (If-None-Match, If-Modified-Since)"},
            "416": {"description": "the range starts past the end"},
            "403": error("bad or expired signature"),
            "404": error("no such file"),
        },
    }
    return {"PUT": put, "POST": post, "GET": get}


def _realtime_op(spec: _Spec) -> dict[str, Any]:
    return {
        "summary": "Watch queries over a WebSocket (upgrade; JSON text frames: docs/realtime.md)",
        "responses": {
            "101": {"description": "switched to the WebSocket protocol"},
            **{s: spec.errors[s] for s in ("400", "404", "429")},
        },
    }


def _realtime_sse_op(spec: _Spec) -> dict[str, Any]:
    subscribe = {
        "type": "object",
        "description": "one subscribe message: collection, where, orderBy, limit, owner, resume (docs/realtime.md)",
        "properties": {
            "type": {"const": "subscribe"},
            "id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
            "collection": _COLLECTION,
            "where": _WHERE,
            "orderBy": _ORDER,
            "limit": {"type": "integer", "minimum": 1, "maximum": spec.limits.max_watch_docs},
            "owner": _OWNER,
        },
        "required": ["id"],
    }
    return {
        "summary": "Watch one query as Server-Sent Events (docs/realtime.md)",
        "security": [{"fc": []}, {"bearer": []}, {}],
        "requestBody": {"required": True, **_json(subscribe)},
        "responses": {
            "200": {
                "description": "the frames, one `data:` event each",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            **spec.errors,
        },
    }


def _plain_get(description: str) -> Callable[[_Spec], dict[str, Any]]:
    return lambda spec: {"responses": {"200": {"description": description, **_json({"type": "object"})}}}


# A route's handler -> its operation (or, for a route with several methods, one per method).
_OPERATIONS: dict[str, Callable[[_Spec], dict[str, Any]]] = {
    "session": _session_op,
    "invoke": _invoke_op,
    "fc_invoke": _fc_invoke_op,
    "healthz": _plain_get("alive"),
    "openapi": _plain_get("this document"),
    "files": _files_ops,
    "webhook": _webhook_op,
    "realtime": _realtime_op,
    "realtime_sse": _realtime_sse_op,
}


def _path_item(route: Route, spec: _Spec) -> dict[str, Any]:
    """The route's operations: one per method (HEAD is GET's), its path parameters first."""
    built = _OPERATIONS[route.handler](spec)
    methods = [m for m in route.methods if m != "HEAD"]
    item: dict[str, Any] = {}
    for method in methods:
        op = dict(built[method] if len(methods) > 1 else built)
        op["operationId"] = route.name if len(methods) == 1 else route.name + method.capitalize()
        params = [spec.param(p) for p in route.params] + op.get("parameters", [])
        if params:
            op["parameters"] = params
        item[method.lower()] = op
    return item


def build_openapi(
    service: str,
    developer_functions: Iterable[str] = (),
    *,
    files: bool = True,
    limits: LimitsConfig | None = None,
) -> dict[str, Any]:
    """The document for ``service``; ``limits``: the config's (its bounds are in the events)."""
    builtins = {"session": SESSION_OPS, "db": DB_OPS, **({"files": FILES_OPS} if files else {})}
    events = [f"{fn}.{op}" for fn, ops in builtins.items() for op in ops]
    spec = _Spec(service, [*builtins, *developer_functions], events, limits)
    paths = {r.path: _path_item(r, spec) for r in ROUTES if files or r.handler != "files"}
    from .console.openapi import console_paths, console_security

    paths.update(console_paths())  # the admin console's API (docs/console.md)
    schemas = {
        **_error_schemas(),
        **_session_schemas(),
        **_db_schemas(limits or LimitsConfig()),
        **(_files_schemas() if files else {}),
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
            "schemas": schemas,
            "securitySchemes": {
                "fc": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "FC <AccessKeyId>:<base64 HMAC-SHA256 signature>, with Date (or x-fc-date) and x-fc-security-token",
                },
                "bearer": {"type": "http", "scheme": "bearer", "description": "the sessionId"},
                **console_security(),
            },
        },
    }
