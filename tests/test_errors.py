from __future__ import annotations

import gc
import importlib.util
import re
import time
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from minibase import errors
from minibase.errors import MinibaseError, error_body

# The stable API of docs/http-api.md#errors: code → HTTP status.
CODES = {
    "InvalidArgument": 400,
    "NotIndexed": 400,
    "Unauthenticated": 401,
    "PermissionDenied": 403,
    "NotFound": 404,
    "MethodNotAllowed": 405,
    "Conflict": 409,
    "PayloadTooLarge": 413,
    "ValidationFailed": 422,
    "ContentRejected": 422,
    "RateLimited": 429,
    "ProviderError": 502,
    "Unavailable": 503,
    "Internal": 500,
    "DeadlineExceeded": 504,
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


def test_error_codes_is_the_whole_tree() -> None:
    assert errors.error_codes() == dict(sorted(CODES.items(), key=lambda item: (item[1], item[0])))


def codes_script() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "scripts" / "codes.py"
    spec = importlib.util.spec_from_file_location("codes_script", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_js_sdk_table_is_generated_from_the_tree() -> None:
    """clients/js/src/codes.js is exactly what scripts/codes.py writes from the tree today:
    an error class added or changed without rerunning the script fails here."""
    script = codes_script()
    assert script.TARGET.read_text(encoding="utf-8") == script.render(), (
        "clients/js/src/codes.js drifted from minibase/errors.py: run .venv/bin/python scripts/codes.py"
    )


def test_the_js_table_drifts_when_the_tree_changes() -> None:
    class Teapot(MinibaseError):
        code = "Teapot"
        status = 418

    script = codes_script()
    try:
        assert "Teapot: 418," in script.render()
        assert script.TARGET.read_text(encoding="utf-8") != script.render()
    finally:
        del Teapot  # a class lives in cycles (its __mro__): collect it, or it stays in the tree
        gc.collect()
    assert "Teapot" not in errors.error_codes()


def test_one_code_one_status() -> None:
    class Odd(MinibaseError):
        code = "NotFound"
        status = 410

    try:
        with pytest.raises(TypeError, match="code NotFound has two statuses: 404 and 410"):
            errors.error_codes()
    finally:
        del Odd
        gc.collect()


ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "doc",
    ["docs/http-api.md", "docs/zh-CN/errors.md", "clients/js/README.md", "clients/js/README.zh-CN.md"],
)
def test_the_error_tables_list_every_code(doc: str) -> None:
    text = (ROOT / doc).read_text(encoding="utf-8")
    for code, status in errors.error_codes().items():
        # A table row (`Code` | 504) or running text (`Code` 504; in Chinese also a fullwidth paren).
        assert re.search(rf"`{code}`[\s|(\uff08]+{status}\b", text), f"{doc} lacks {code} {status}"
