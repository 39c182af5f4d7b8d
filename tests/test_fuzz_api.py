"""Schemathesis against a real server on loopback, from the spec it serves at /openapi.json.

Every operation of the spec is fuzzed anonymously and with a valid session
(``Authorization: Bearer <sessionId>`` from a dev login), with schema-valid (positive) and
schema-violating (negative) data. ``/invoke/{function}`` takes any function's event, so
few random events would reach a given op; it is also fuzzed once per event schema of the
spec (``db.query``, ``files.uploadUrl``, ...) with the spec narrowed to that event, which
sends well-formed events deep into each op.

Every response must be: not a 5xx; conformant to the spec (status code, content type,
headers, body schema); and, when it is an error, exactly the documented envelope with a
stable code whose HTTP status matches (docs/http-api.md#errors).

Bounded and reproducible for CI: a fixed number of examples per test, derandomized (the
same cases every run, so a failure reproduces), no example database. Cases come from
schemathesis's per-operation Hypothesis strategies rather than its pytest plugin:
``from_fixture`` (needed for a server started by a fixture) does not run under the pytest
version here, and explicit parametrization keeps one report line per operation.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from minibase import errors
from minibase.app import create_app
from minibase.config import parse_config
from minibase.core import Minibase
from minibase.openapi import DB_OPS, FILES_OPS, SESSION_OPS, build_openapi
from tests.support.config import SERVICE, base_raw
from tests.support.live import run_uvicorn

# Every code of the errors tree and its status (the stable API of docs/http-api.md#errors).
CODES: dict[str, int] = {
    cls.code: cls.status
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, errors.MinibaseError)
}
INVOKE = "/invoke/{function}"
FC_INVOKE = "/2016-08-15/services/{service}/functions/{function}/invocations"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = 15  # per test; the whole file stays well under a minute
SPEC = build_openapi(SERVICE)
# The machine-readable extras an error may carry beside code/message/requestId: exactly
# those the spec documents, so a new one fails here until it is documented.
DETAILS: dict[str, type] = {
    k: {"string": str, "integer": int}[v["type"]]
    for k, v in SPEC["components"]["schemas"]["Error"]["properties"]["error"]["properties"].items()
    if k not in ("code", "message", "requestId")
}
# The operations the server's spec has (checked against the served one).
# The console's API (/_/api/) is only the admin cookie's: tests/console/test_http.py tries every route.
OPERATIONS = sorted(
    (method.upper(), path)
    for path, item in SPEC["paths"].items()
    for method in item
    if not path.startswith("/_/")
)
EVENTS = [
    *(f"session.{op}" for op in SESSION_OPS),
    *(f"db.{op}" for op in DB_OPS),
    *(f"files.{op}" for op in FILES_OPS),
]
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


class Server:
    def __init__(self, url: str, session_id: str, spec: dict[str, Any]) -> None:
        self.url = url
        self.session_id = session_id
        self.spec = spec
        self.api = schemathesis.openapi.from_dict(spec)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    config = parse_config(base_raw(), data_dir=tmp / "data", base_dir=tmp, environ={})
    with run_uvicorn(create_app(config, core=Minibase.from_config(config))) as url:
        # Log in before fuzzing: the fuzzer's own logins may trip the login rate limit.
        r = httpx.post(url + "/session", json={"authCode": "dev:fuzzer", "provider": "dev"})
        assert r.status_code == 200, r.text
        sid = r.json()["sessionId"]
        # A few documents, so generated ids sometimes hit one.
        for doc_id in ("a", "0", "id"):
            r = httpx.post(
                url + "/invoke/db",
                json={"op": "put", "obj": {"id": doc_id, "n": 1, "tags": ["x"]}},
                headers={"authorization": f"Bearer {sid}"},
            )
            assert r.status_code == 200, r.text
        # from_dict, not from_url: from_url leaves the spec's own route out.
        yield Server(url, sid, httpx.get(url + "/openapi.json").json())


def test_served_spec_is_what_is_fuzzed(server: Server) -> None:
    assert server.spec == SPEC
    served = sorted(
        (r.ok().method.upper(), r.ok().path)
        for r in server.api.get_all_operations()
        if not r.ok().path.startswith("/_/")
    )
    assert served == OPERATIONS
    assert {
        n for n in SPEC["components"]["schemas"] if n.split(".")[-1] in (*SESSION_OPS, *DB_OPS, *FILES_OPS)
    } == set(EVENTS)


def _envelope(response: Any, path: str) -> None:
    """A non-2xx answer (or an FC handled error) is exactly the documented envelope."""
    status = response.status_code
    headers = {k.lower(): v[-1] for k, v in response.headers.items()}  # schemathesis: name -> values
    handled = headers.get("x-fc-error-type") == "HandledInvocationError"
    if status < 400 and not handled:
        return
    body = response.json()
    if path == FC_INVOKE and not handled:  # refused by the gateway, in FC's own shape
        assert set(body) == {"ErrorCode", "ErrorMessage", "RequestId", "ServerTime"}, body
        assert all(isinstance(v, str) and v for v in body.values()), body
        return
    if handled:  # FC's fields beside the envelope, saying the same
        assert isinstance(body, dict) and set(body) == {"error", "errorMessage", "errorType"}, body
        assert (body["errorType"], body["errorMessage"]) == (body["error"]["code"], body["error"]["message"])
    else:
        assert isinstance(body, dict) and set(body) == {"error"}, body
    err = body["error"]
    assert isinstance(err, dict) and {"code", "message", "requestId"} <= set(err), body
    assert set(err) - {"code", "message", "requestId"} <= set(DETAILS), body
    for key, kind in DETAILS.items():
        assert key not in err or type(err[key]) is kind, body
    assert isinstance(err["message"], str) and err["message"], body
    assert "Traceback" not in err["message"], body
    assert err["code"] in CODES, body
    assert err["requestId"] == headers["x-fc-request-id"], body
    assert status == (200 if handled else CODES[err["code"]]), (status, body)


def _fuzz(
    server: Server, operation: Any, path: str, authenticated: bool, mode: GenerationMode, **kw: Any
) -> None:
    headers = {"authorization": f"Bearer {server.session_id}"} if authenticated else None

    @given(case=operation.as_strategy(mode, **kw))
    @SETTINGS
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=server.url, headers=headers, timeout=10)
        case.validate_response(response, checks=CHECKS, headers=headers)
        _envelope(response, path)

    run()


def _operation_cases() -> list[Any]:
    """(operation, caller, data kind); negative data only where there is input to break."""
    out = []
    for method, path in OPERATIONS:
        spec = SPEC["paths"][path][method.lower()]
        kinds = (
            ["positive", "negative"] if spec.get("parameters") or spec.get("requestBody") else ["positive"]
        )
        for who in ("anonymous", "session"):
            out += [
                pytest.param(
                    method, path, who == "session", GenerationMode(kind), id=f"{method} {path}-{who}-{kind}"
                )
                for kind in kinds
            ]
    return out


@pytest.mark.parametrize(("method", "path", "authenticated", "mode"), _operation_cases())
def test_fuzz_operation(
    server: Server, method: str, path: str, authenticated: bool, mode: GenerationMode
) -> None:
    _fuzz(server, server.api[path][method], path, authenticated, mode)


def _event_cases() -> list[Any]:
    """Positive events anonymously and with a session; negative ones with a session (the
    anonymous caller is refused before the event is read past its op)."""
    out = []
    for event in EVENTS:
        out.append(pytest.param(event, False, GenerationMode.POSITIVE, id=f"{event}-anonymous-positive"))
        out.append(pytest.param(event, True, GenerationMode.POSITIVE, id=f"{event}-session-positive"))
        out.append(pytest.param(event, True, GenerationMode.NEGATIVE, id=f"{event}-session-negative"))
    return out


@pytest.mark.parametrize(("event", "authenticated", "mode"), _event_cases())
def test_fuzz_event(server: Server, event: str, authenticated: bool, mode: GenerationMode) -> None:
    """``POST /invoke/<function>`` with the served spec narrowed to one event schema."""
    function = event.split(".")[0]
    spec = copy.deepcopy(server.spec)
    op = spec["paths"][INVOKE]["post"]
    op["requestBody"]["content"]["application/json"]["schema"] = {"$ref": f"#/components/schemas/{event}"}
    op["parameters"] = [{"name": "function", "in": "path", "required": True, "schema": {"const": function}}]
    # The template's `sid`, when sent, must be the caller's own session (not for the session
    # function: there `sid` names the session to refresh or log out).
    if authenticated and function != "session":
        spec["components"]["schemas"][event]["properties"]["sid"] = {"const": server.session_id}
    operation = schemathesis.openapi.from_dict(spec)[INVOKE]["POST"]
    _fuzz(server, operation, INVOKE, authenticated, mode)


@pytest.mark.parametrize(
    "update",
    [
        {"unset": [{}]},  # was a TypeError: 500 Internal
        {"unset": [["n"]]},
        {"inc": {"big": 1}},  # past 64 bits: orjson could not store it, 500 Internal
        {"inc": {"f": 1e308}},  # inf: would have been stored as null
    ],
    ids=["unset-object", "unset-array", "inc-int-overflow", "inc-float-overflow"],
)
def test_found_by_fuzzing(server: Server, update: dict[str, Any]) -> None:
    """Events the fuzzers found answering 500 (or corrupting data), now 400 over HTTP."""
    login = httpx.post(server.url + "/session", json={"authCode": "dev:edge", "provider": "dev"})
    h = {"authorization": f"Bearer {login.json()['sessionId']}"}
    doc = {"id": "edge", "big": 2**63 - 1, "f": 1e308}  # the largest a document may hold
    assert httpx.post(server.url + "/invoke/db", json={"op": "put", "obj": doc}, headers=h).status_code == 200
    before = httpx.post(server.url + "/invoke/db", json={"op": "get", "id": "edge"}, headers=h).json()["data"]
    r = httpx.post(server.url + "/invoke/db", json={"op": "update", "id": "edge", **update}, headers=h)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "InvalidArgument"
    after = httpx.post(server.url + "/invoke/db", json={"op": "get", "id": "edge"}, headers=h).json()["data"]
    assert after == before and (after["big"], after["f"]) == (2**63 - 1, 1e308)
