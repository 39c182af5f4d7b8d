"""One exception tree for everything minibase refuses or fails at.

::

    MinibaseError                  (code, HTTP status)
    ├── InvalidArgument            InvalidArgument   400
    │   └── NotIndexed             NotIndexed        400 ($search on a field without a declared search index)
    ├── Unauthenticated            Unauthenticated   401
    │   └── GatewayError           FC gateway refusal (bad signature, skew, unknown key)
    ├── PermissionDenied           PermissionDenied  403
    ├── NotFound                   NotFound          404
    ├── MethodNotAllowed           MethodNotAllowed  405
    ├── Conflict                   Conflict          409
    ├── PayloadTooLarge            PayloadTooLarge   413
    ├── ValidationFailed           ValidationFailed  422
    ├── RateLimited                RateLimited       429
    ├── ProviderError              ProviderError     502
    ├── Unavailable                Unavailable       503 (database or file store unreachable; Retry-After)
    ├── DeadlineExceeded           DeadlineExceeded  504 (a function or a database statement ran out of time)
    └── Internal                   Internal          500

``ConfigError`` is separate: it is raised at start, never during a request.

Codes are stable API (docs/http-api.md#errors); messages are plain English and never carry secrets.
:func:`error_body` is the one place that renders the error envelope.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "ConfigError",
    "Conflict",
    "ContentRejected",
    "DeadlineExceeded",
    "GatewayError",
    "Internal",
    "InvalidArgument",
    "MethodNotAllowed",
    "MinibaseError",
    "NotFound",
    "NotIndexed",
    "PayloadTooLarge",
    "PermissionDenied",
    "ProviderError",
    "RateLimited",
    "Unauthenticated",
    "Unavailable",
    "ValidationFailed",
    "error_body",
    "error_codes",
    "handled_error_body",
]


# Seconds an Unavailable answer asks clients to wait (``Retry-After``): long enough for a
# restarting database or a reconnecting pool, short enough for an interactive user.
RETRY_AFTER = 2


class MinibaseError(Exception):
    """Base of every error a client can see."""

    code: ClassVar[str] = "Internal"
    status: ClassVar[int] = 500

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or self.default_message
        # Extra, non-secret, machine-readable facts (e.g. ``path`` for ValidationFailed).
        self.details = details
        super().__init__(self.message)

    default_message: ClassVar[str] = "internal error"


class InvalidArgument(MinibaseError):
    code = "InvalidArgument"
    status = 400
    default_message = "invalid argument"


class NotIndexed(InvalidArgument):
    """A query needs an index the collection does not declare (``$search``)."""

    code = "NotIndexed"
    default_message = "the query needs an index this collection does not declare"


class Unauthenticated(MinibaseError):
    code = "Unauthenticated"
    status = 401
    default_message = "authentication required"


class GatewayError(Unauthenticated):
    """Refused before any function ran, in FC's own vocabulary.

    On the FC Invoke API path it renders as FC does
    (``{"ErrorCode": ..., "ErrorMessage": ...}``, usually 403); elsewhere as
    ``Unauthenticated``.
    """

    def __init__(self, fc_code: str, message: str, fc_status: int = 403) -> None:
        super().__init__(message)
        self.fc_code = fc_code
        self.fc_status = fc_status


class PermissionDenied(MinibaseError):
    code = "PermissionDenied"
    status = 403
    default_message = "permission denied"


class NotFound(MinibaseError):
    code = "NotFound"
    status = 404
    default_message = "not found"


class MethodNotAllowed(MinibaseError):
    code = "MethodNotAllowed"
    status = 405
    default_message = "method not allowed"


class Conflict(MinibaseError):
    code = "Conflict"
    status = 409
    default_message = "conflict"


class PayloadTooLarge(MinibaseError):
    code = "PayloadTooLarge"
    status = 413
    default_message = "payload too large"


class ValidationFailed(MinibaseError):
    code = "ValidationFailed"
    status = 422
    default_message = "validation failed"


class ContentRejected(MinibaseError):
    """The platform's content check refused a text field of a write (``field`` names it)."""

    code = "ContentRejected"
    status = 422
    default_message = "the platform's content check refused this content"


class RateLimited(MinibaseError):
    code = "RateLimited"
    status = 429
    default_message = "too many requests"

    def __init__(self, message: str | None = None, retry_after: int = 1) -> None:
        super().__init__(message, retryAfter=retry_after)
        self.retry_after = retry_after


class ProviderError(MinibaseError):
    code = "ProviderError"
    status = 502
    default_message = "the login provider failed"


class Unavailable(MinibaseError):
    """A backend (database, file store) cannot be reached or is out of capacity right now.

    Nothing was done, or for a write the outcome is unknown; the client may try again after
    ``retry_after`` seconds (sent as ``Retry-After``). Raised only where the backend's
    failure says so (refused or lost connections, a full pool, a locked or failing disk),
    never for a refused statement, which stays ``Internal``.
    """

    code = "Unavailable"
    status = 503
    default_message = "the service is unavailable: try again shortly"

    def __init__(self, message: str | None = None, retry_after: int = RETRY_AFTER) -> None:
        super().__init__(message, retryAfter=retry_after)
        self.retry_after = retry_after


class DeadlineExceeded(MinibaseError):
    code = "DeadlineExceeded"
    status = 504
    default_message = "the function did not finish in time"


class Internal(MinibaseError):
    code = "Internal"
    status = 500
    default_message = "internal error"


class ConfigError(Exception):
    """A missing or wrong configuration value; the message names the key."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"{key}: {message}")


def error_codes() -> dict[str, int]:
    """Every stable code of the tree and its HTTP status, by status then code.

    The clients' tables are generated from it (``scripts/codes.py`` writes the JS SDK's
    ``clients/js/src/codes.js``; a test fails when that file drifts from this).
    """
    found: dict[str, int] = {}
    todo: list[type[MinibaseError]] = [MinibaseError]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if found.setdefault(cls.code, cls.status) != cls.status:
            pair = sorted((found[cls.code], cls.status))
            raise TypeError(f"code {cls.code} has two statuses: {pair[0]} and {pair[1]}")
    return dict(sorted(found.items(), key=lambda item: (item[1], item[0])))


def error_body(error: MinibaseError, request_id: str) -> dict[str, Any]:
    """The error envelope (docs/http-api.md#envelopes): ``{"error": {code, message, requestId, serverTime, ...}}``.

    ``serverTime`` repeats the ``Date`` header in the body: some mini-program hosts (Alipay's
    ``my.request`` on some base libraries) hand error answers to the app without headers,
    and a client with a wrong clock needs the server's time to sign its next call.
    """
    from .util.timefmt import now, rfc3339_ms

    body: dict[str, Any] = {
        "code": error.code,
        "message": error.message,
        "requestId": request_id,
        "serverTime": rfc3339_ms(now()),
    }
    for key, value in error.details.items():
        body.setdefault(key, value)
    return {"error": body}


def handled_error_body(error: MinibaseError, request_id: str) -> dict[str, Any]:
    """A function's error as FC answers it (``errorMessage``, ``errorType``), beside the
    envelope, so that clients written for FC and for minibase both read it."""
    return {**error_body(error, request_id), "errorMessage": error.message, "errorType": error.code}
