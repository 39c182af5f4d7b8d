"""Names are matched whole: no validated name passes with a trailing line terminator.

``re.match(r"^…$")`` accepts ``"name\\n"`` (``$`` matches before a final newline): that let
``locked\\n`` be a collection outside ``locked``'s rules, ``uid\\n`` a client-written field
and ``dev:alice\\n`` a second user. Each validated name is tried here with every line
terminator, at its real entry point (over HTTP where clients reach it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from minibase.app import create_app
from minibase.config import Config, parse_config
from minibase.core import Minibase
from minibase.errors import ConfigError
from minibase.functions.registry import function
from minibase.runtime.deploy import DeployOptions, read_project, render_yaml
from minibase.util import names
from tests.support.config import base_raw
from tests.support.live import run_uvicorn

# Python's `$` matches only before "\n"; the others are here so no future pattern with
# `\s` or a line-mode flag lets them through either.
TERMINATORS = ["\n", "\r\n", "\r", "\x0b", "\x0c", "\x85", "\u2028", "\u2029", "\x00"]
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("t", TERMINATORS)
def test_shared_patterns_refuse_terminators(t: str) -> None:
    for good, check in [
        ("locked", names.is_name),
        ("uid", names.is_segment),
        ("_version", names.is_segment),
        ("a.b.uid", names.is_field_path),
    ]:
        assert check(good)
        assert not check(good + t)
        assert not check(t + good)
    for pattern, good in [(names.DEV_USER_RE, "alice"), (names.MODULE_RE, "functions.todo")]:
        assert pattern.fullmatch(good)
        assert not pattern.fullmatch(good + t)


def test_no_end_anchored_pattern_in_the_code() -> None:
    """The class: no regex in minibase/ ends with `$` (fullmatch instead), and none is
    applied with .match except as a prefix test."""
    offenders = []
    for path in sorted((ROOT / "minibase").rglob("*.py")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"""\bre\.(compile|match)\(r?f?["'].*\$["']""", line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
            if re.search(r"_RE\.match\(|_NAME\.match\(|_SEGMENT\.match\(", line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == []


# ------------------------------------------------------------------ config time


def _config(tmp_path: Path, **sections: Any) -> Config:
    return parse_config(base_raw(**sections), data_dir=tmp_path / "data", base_dir=tmp_path, environ={})


@pytest.mark.parametrize("t", TERMINATORS)
@pytest.mark.parametrize(
    "sections",
    [
        lambda t: {"collections": {f"locked{t}": {"read": "none"}}},
        lambda t: {"collections": {"posts": {"indexes": [f"uid{t}"]}}},
        lambda t: {"collections": {"posts": {"indexes": [f"title{t}"]}}},
        lambda t: {"files": {"areas": {f"public{t}": {"read": "public"}}}},
        lambda t: {"files": {"areas": {"pub": {"prefix": f"public/{t}"}}}},
        lambda t: {"files": {"content_types": [f"image/png{t}x"]}},
        lambda t: {"app": {"service": f"svc{t}"}},
        lambda t: {"app": {"default_collection": f"todo{t}"}},
        lambda t: {"functions": {"module": f"functions{t}"}},
    ],
)
def test_config_names_refuse_terminators(
    tmp_path: Path, t: str, sections: Callable[[str], dict[str, Any]]
) -> None:
    with pytest.raises(ConfigError):
        _config(tmp_path, **sections(t))


@pytest.mark.parametrize("t", TERMINATORS)
def test_function_names_refuse_terminators(t: str) -> None:
    with pytest.raises(ValueError):
        function(f"clearCompleted{t}")


@pytest.mark.parametrize("t", ["\n", "\r\n"])
def test_deploy_names_refuse_terminators(tmp_path: Path, t: str) -> None:
    with pytest.raises(ConfigError):
        DeployOptions(function_name=f"todo{t}").check()
    with pytest.raises(ConfigError):
        DeployOptions(region=f"cn-hangzhou{t}").check()
    toml = tmp_path / "minibase.toml"
    toml.write_text(
        f'[app]\nname = "todo"\nsecret = "env:MINIBASE_SECRET{t.encode("unicode_escape").decode()}"\n'
    )
    with pytest.raises(ConfigError):
        read_project(toml)
    # A YAML key is written bare only when it is wholly plain.
    assert render_yaml({f"key{t}": 1}).strip() != f"key{t}: 1"


# ------------------------------------------------------------------ over HTTP


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, httpx.Client]]:
    config = _config(tmp_path, collections={"locked": {"read": "none", "write": "none"}})
    with (
        run_uvicorn(create_app(config, core=Minibase.from_config(config))) as url,
        httpx.Client(base_url=url) as http,
    ):
        yield url, http


def _post(http: httpx.Client, path: str, event: dict[str, Any], sid: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {sid}"} if sid else {}
    return http.post(path, json=event, headers=headers)


def _login(http: httpx.Client, who: str) -> dict[str, Any]:
    resp = _post(http, "/session", {"authCode": f"dev:{who}"})
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()["data"]
    return data


@pytest.mark.parametrize("t", TERMINATORS)
def test_http_names_refuse_terminators(server: tuple[str, httpx.Client], t: str) -> None:
    _, http = server
    alice = _login(http, "alice")
    sid = alice["sessionId"]

    # The dev user: "dev:alice\n" is not a second alice (nor a new user).
    resp = _post(http, "/session", {"authCode": f"dev:alice{t}"})
    assert resp.status_code == 401, resp.text
    assert resp.json()["error"]["code"] == "Unauthenticated"

    def refused(event: dict[str, Any]) -> None:
        resp = _post(http, "/invoke/db", event, sid)
        assert resp.status_code == 400, (event, resp.text)
        error = resp.json()["error"]
        assert error["code"] == "InvalidArgument", resp.text
        # Refused for the name, not for a malformed event.
        assert any(w in error["message"] for w in ("collection", "path", "field", "set by the server")), error

    # A collection named like a locked one does not escape its rules.
    refused({"op": "put", "collection": f"locked{t}", "obj": {"id": "x", "a": 1}})
    refused({"op": "list", "collection": f"locked{t}"})
    # Field names the server owns, and any field path, in updates and queries.
    refused({"op": "update", "id": "x", "set": {f"_version{t}": 7}})
    refused({"op": "update", "id": "x", "set": {f"uid{t}": "bob"}})
    refused({"op": "update", "id": "x", "set": {f"title{t}": "y"}})
    refused({"op": "update", "id": "x", "unset": [f"_created{t}"]})
    refused({"op": "query", "where": {f"uid{t}": "bob"}})
    refused({"op": "query", "orderBy": [[f"title{t}", "asc"]]})
    refused({"op": "query", "fields": [f"title{t}"]})

    # Files: path segments and content types.
    for event in [
        {"op": "uploadUrl", "path": f"a{t}.png", "contentType": "image/png", "size": 1},
        {"op": "uploadUrl", "path": "a.png", "contentType": f"image/png{t}", "size": 1},
        {"op": "uploadUrl", "path": "a.png", "contentType": f'image/png; a="{t}"', "size": 1},
        {"op": "stat", "path": f"a.png{t}"},
    ]:
        resp = _post(http, "/invoke/files", event, sid)
        assert resp.status_code == 400, (event, resp.text)
        assert resp.json()["error"]["code"] == "InvalidArgument", resp.text

    # A function name with a terminator is no function at all.
    from urllib.parse import quote

    resp = _post(http, f"/invoke/{quote('db' + t)}", {"op": "list"}, sid)
    assert resp.status_code == 404, resp.text


def test_locked_stays_locked(server: tuple[str, httpx.Client]) -> None:
    """The positive control: `locked` itself is refused by its rules, so the 400s above
    are the name check, not the rule."""
    _, http = server
    sid = _login(http, "alice")["sessionId"]
    resp = _post(http, "/invoke/db", {"op": "put", "collection": "locked", "obj": {"id": "x", "a": 1}}, sid)
    assert resp.status_code == 403, resp.text
    resp = _post(http, "/invoke/db", {"op": "put", "collection": "other", "obj": {"id": "x", "a": 1}}, sid)
    assert resp.status_code == 200, resp.text
    resp = _post(http, "/invoke/db", {"op": "update", "collection": "other", "id": "x", "set": {"b": 2}}, sid)
    assert resp.status_code == 200, resp.text
