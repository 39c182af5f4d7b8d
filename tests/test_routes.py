"""The route table (minibase/routes.py) drives the fast dispatcher, the 405s and OpenAPI."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from minibase.app import create_app
from minibase.config import Config
from minibase.console.routes import API as CONSOLE_API
from minibase.console.routes import PREFIX as CONSOLE_PREFIX
from minibase.core import Minibase
from minibase.openapi import build_openapi
from minibase.routes import ROUTES, Route, Router
from tests.support.config import SERVICE, Live, base_raw
from tests.support.live import run_uvicorn


def _example(route: Route) -> str:
    values = {"service": SERVICE, "function": "db", "key": "k", "name": "payNotify"}
    path = route.path
    for name in route.params:
        path = path.replace("{" + name + "}", values[name])
    return path


def test_router_matches_each_route_with_its_parameters() -> None:
    router = Router(ROUTES)
    for route in ROUTES:
        for method in route.methods:
            hit = router.match(method, _example(route))
            assert hit is not None, (method, route.path)
            assert hit[0] == route
            assert len(hit[1]) == len(route.params)
    fc = router.match("POST", f"/2016-08-15/services/{SERVICE}/functions/addTodo/invocations")
    assert fc is not None and fc[1] == (SERVICE, "addTodo")


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/session"),  # another method
        ("POST", "/session/"),  # another segment count
        ("POST", "/invoke/"),  # a parameter is never empty
        ("POST", "/invoke/db/x"),
        ("POST", "/2016-08-15/services//functions/db/invocations"),
        ("POST", "/2016-08-15/proxy/svc/sessions"),
        ("POST", "/2016-08-15/proxy/svc/session//"),
        ("POST", "/2016-08-16/services/svc/functions/db/invocations"),
    ],
)
def test_router_refuses_what_is_not_a_route(method: str, path: str) -> None:
    assert Router(r for r in ROUTES if r.fast).match(method, path) is None


def test_openapi_paths_are_the_route_table() -> None:
    spec = build_openapi(SERVICE)
    # the app's table, then the console's own (a sub-app under /_/api with its own table)
    console = list(dict.fromkeys(CONSOLE_PREFIX + r.path for r in CONSOLE_API))
    assert list(spec["paths"]) == [r.path for r in ROUTES] + console
    for path in console:
        methods = {r.method.lower() for r in CONSOLE_API if CONSOLE_PREFIX + r.path == path}
        assert set(spec["paths"][path]) == methods, path
    for route in ROUTES:
        methods = {m.lower() for m in route.methods if m != "HEAD"}
        assert set(spec["paths"][route.path]) == methods, route.path
        for op in spec["paths"][route.path].values():
            names = [p["name"] for p in op.get("parameters", []) if p["in"] == "path"]
            assert names == list(route.params), route.path
    no_files = build_openapi(SERVICE, files=False)
    assert "/files/{key}" not in no_files["paths"]


def test_every_function_route_answers_405_to_other_methods(live: Live) -> None:
    for route in (r for r in ROUTES if r.fast):
        for method in ("GET", "PUT", "DELETE"):
            r = httpx.request(method, live.url + _example(route))
            assert r.status_code == 405, (method, route.path, r.text)
            assert r.json()["error"]["code"] == "MethodNotAllowed"
            assert r.headers["x-fc-request-id"] == r.json()["error"]["requestId"]


def test_openapi_bounds_follow_the_limits_config(make_config: Callable[..., Config]) -> None:
    raw = base_raw(limits={"max_batch": 7, "max_query_limit": 50, "max_id_length": 40})
    config = make_config(raw)
    with run_uvicorn(create_app(config, core=Minibase.from_config(config))) as url:
        spec = httpx.get(url + "/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert schemas["db.batch"]["properties"]["ops"]["maxItems"] == 7
    assert schemas["db.query"]["properties"]["limit"]["maximum"] == 50
    assert schemas["db.list"]["properties"]["limit"]["maximum"] == 50
    assert schemas["db.get"]["properties"]["id"]["maxLength"] == 40
    default = build_openapi(SERVICE)["components"]["schemas"]
    assert default["db.batch"]["properties"]["ops"]["maxItems"] == 100


def test_openapi_error_codes_are_the_error_tree() -> None:
    from minibase.errors import error_codes

    spec = build_openapi(SERVICE)
    enum = spec["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
    assert enum == list(error_codes())
    invoke = spec["paths"]["/invoke/{function}"]["post"]["responses"]
    assert {int(s) for s in invoke if s != "200"} == set(error_codes().values()) - {405}


def test_router_remembers_a_bounded_number_of_paths() -> None:
    router = Router(r for r in ROUTES if r.fast)
    for n in range(Router.CACHED + 50):
        hit = router.match("POST", f"/invoke/f{n}")
        assert hit is not None and hit[1] == (f"f{n}",)
    assert len(router._cache) == Router.CACHED
    again = router.match("POST", f"/invoke/f{Router.CACHED + 10}")  # not remembered: matched anew
    assert again is not None and again[1] == (f"f{Router.CACHED + 10}",)
    assert router.match("POST", "/invoke/") is None and len(router._cache) == Router.CACHED
