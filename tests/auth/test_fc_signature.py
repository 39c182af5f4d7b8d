"""FC request signatures against vectors computed by FC's own Python SDK."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from minibase.auth import fc_signature

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "fc_signature.json").read_text()
)


@pytest.mark.parametrize("v", VECTORS, ids=[v["what"][:40] for v in VECTORS])
def test_matches_the_sdk(v: dict[str, Any]) -> None:
    got = fc_signature.authorization(
        v["accessKeyId"], v["accessKeySecret"], v["method"], v["path"], v["headers"], v["query"]
    )
    assert got == v["authorization"]


@pytest.mark.parametrize("v", VECTORS, ids=[v["what"][:40] for v in VECTORS])
@pytest.mark.parametrize(
    "tamper",
    ["method", "path", "date", "content-type", "token", "extra-fc-header", "secret", "query"],
)
def test_any_tampering_changes_the_signature(v: dict[str, Any], tamper: str) -> None:
    method, path, headers, query = v["method"], v["path"], dict(v["headers"]), v["query"]
    secret = v["accessKeySecret"]
    if tamper == "method":
        method = "PUT"
    elif tamper == "path":
        path = path.replace("todo-list-svc", "todo-list-svd")
    elif tamper == "date":
        headers["date"] = headers["date"].replace("12:00:13", "12:00:14")
    elif tamper == "content-type":
        headers["content-type"] = "text/plain"
    elif tamper == "token":
        headers["x-fc-security-token"] = headers.get("x-fc-security-token", "") + "x"
    elif tamper == "extra-fc-header":
        headers["x-fc-invocation-type"] = "Async"
    elif tamper == "secret":
        secret += "x"
    elif tamper == "query":
        query = {**(query or {}), "b": "3"}
    got = fc_signature.authorization(v["accessKeyId"], secret, method, path, headers, query)
    if tamper == "query" and "/proxy/" not in path:
        # FC signs the query on HTTP-trigger (/proxy/) paths only.
        assert got == v["authorization"]
    else:
        assert got != v["authorization"]


def test_header_names_any_case() -> None:
    v = VECTORS[1]
    upper = {k.title(): val for k, val in v["headers"].items()}
    got = fc_signature.authorization(v["accessKeyId"], v["accessKeySecret"], "POST", v["path"], upper, None)
    assert got == v["authorization"]


def test_non_proxy_paths_ignore_the_query() -> None:
    assert fc_signature.canonical_resource("/2016-08-15/services/s/functions/f/invocations", {"a": "1"}) == (
        "/2016-08-15/services/s/functions/f/invocations"
    )


def test_proxy_path_resource_is_unescaped_and_sorted() -> None:
    r = fc_signature.canonical_resource("/2016-08-15/proxy/s/f/a%20b", {"z": "1", "a": ["2", "1"], "k": []})
    assert r == "/2016-08-15/proxy/s/f/a b\na=1\na=2\nk\nz=1"


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("FC STS.abc:c2ln", ("STS.abc", "c2ln")),
        ("FC a:b:c", ("a:b", "c")),
        ("Bearer x", None),
        ("FC nocolon", None),
        ("FC :sig", None),
        ("FC id:", None),
    ],
)
def test_parse_authorization(value: str, parsed: tuple[str, str] | None) -> None:
    assert fc_signature.parse_authorization(value) == parsed


def test_dates() -> None:
    assert fc_signature.parse_date("Wed, 25 Nov 2026 12:00:13 GMT") == 1795608013.0
    assert fc_signature.parse_date("yesterday") is None
    assert fc_signature.parse_date("Wed, 25 Nov 2026 12:00:13") is None  # no zone
    assert fc_signature.parse_date(fc_signature.format_date(1795608013.0)) == 1795608013.0
