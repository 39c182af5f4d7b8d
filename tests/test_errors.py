from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

import pytest

from minibase import errors
from minibase.errors import MinibaseError, error_body

# The stable API of DESIGN §2: code → HTTP status.
CODES = {
    "InvalidArgument": 400,
    "Unauthenticated": 401,
    "PermissionDenied": 403,
    "NotFound": 404,
    "MethodNotAllowed": 405,
    "Conflict": 409,
    "PayloadTooLarge": 413,
    "ValidationFailed": 422,
    "RateLimited": 429,
    "ProviderError": 502,
    "Internal": 500,
}


@pytest.mark.parametrize(("code", "status"), CODES.items())
def test_each_class_carries_its_code_and_status(code: str, status: int) -> None:
    cls = getattr(errors, code)
    assert issubclass(cls, MinibaseError)
    assert (cls.code, cls.status) == (code, status)


def _server_time(body: dict[str, Any]) -> float:
    """Pops the envelope's serverTime (RFC 3339 UTC with ms) and returns it as a timestamp."""
    text = body["error"].pop("serverTime")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_envelope_shape_is_pinned() -> None:
    before = time.time()
    body = error_body(errors.PermissionDenied("no"), "rid1")
    # The server's clock rides along (for clients that get an error's body but not its Date).
    assert before - 0.001 <= _server_time(body) <= time.time()
    assert body == {"error": {"code": "PermissionDenied", "message": "no", "requestId": "rid1"}}


def test_details_ride_along_but_never_override() -> None:
    body = error_body(errors.RateLimited(retry_after=3), "r")
    _server_time(body)
    assert body == {
        "error": {"code": "RateLimited", "message": "too many requests", "requestId": "r", "retryAfter": 3}
    }
    e = errors.ValidationFailed("bad", code="x", path="/a")
    assert error_body(e, "r")["error"]["code"] == "ValidationFailed"


def test_gateway_errors_are_unauthenticated_elsewhere() -> None:
    e = errors.GatewayError("SignatureNotMatch", "sig")
    assert isinstance(e, errors.Unauthenticated) and e.fc_status == 403
    assert error_body(e, "r")["error"]["code"] == "Unauthenticated"


def test_config_error_names_the_key() -> None:
    assert str(errors.ConfigError("auth.alipay.app_id", "missing")) == "auth.alipay.app_id: missing"
