"""/openapi.json stays complete: every route and every op of every built-in appears."""

from __future__ import annotations

import re

import httpx
from starlette.routing import Route

from minibase.data.api import OPS as DB_OPS
from minibase.errors import error_codes
from minibase.openapi import DB_OPS as SPEC_DB_OPS
from minibase.openapi import build_openapi
from tests.support.config import Live


def test_spec_covers_routes_and_ops(live: Live) -> None:
    r = httpx.get(live.url + "/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec["openapi"].startswith("3.1")
    paths = spec["paths"]
    app = live.core  # the routes come from the app under test
    from minibase.app import create_app

    starlette = create_app(app.config, core=app).starlette
    for route in starlette.routes:
        assert isinstance(route, Route)
        path = re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", route.path)
        assert path in paths, f"route {path} is not in the spec"
        for method in route.methods or ():
            if method != "HEAD":
                assert method.lower() in paths[path], f"{method} {path} is not in the spec"
    schemas = spec["components"]["schemas"]
    assert set(DB_OPS) == set(SPEC_DB_OPS)
    for op in DB_OPS:
        assert f"db.{op}" in schemas, op
    for op in ("login", "refresh", "logout"):
        assert f"session.{op}" in schemas
    # Every $ref resolves.
    refs = re.findall(r'"\$ref":"#/components/schemas/([^"]+)"', r.text)
    assert refs
    for ref in refs:
        assert ref in schemas, ref


def test_every_error_code_is_in_the_spec_and_outages_carry_retry_after() -> None:
    spec = build_openapi("svc", ["clearCompleted"])
    assert spec["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"][
        "enum"
    ] == list(error_codes())
    checked = 0
    for path in spec["paths"].values():
        for op in path.values():
            responses = op.get("responses", {}) if isinstance(op, dict) else {}
            if "500" in responses:  # every operation that can fail on the server
                assert responses["503"]["description"] == "Unavailable"
                assert "Retry-After" in responses["503"]["headers"]
                assert "Retry-After" in responses["429"]["headers"]
                checked += 1
    assert checked >= 3
