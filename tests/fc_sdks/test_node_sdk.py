"""FC's mini-program template flow through FC's official Node.js SDK (``@alicloud/fc2``), as
published (installed by scripts/setup from tests/fc_sdks/package-lock.json).

``flow.cjs`` logs two users in on the session function's HTTP-trigger path with the SDK's own
``post``, then calls ``invokeFunction(service, 'db', event)`` with the template's ``{sid, op}``
events signed with the login's STS-style credentials. The SDK sends Content-MD5 as base64 of
the hex digest, which minibase once refused on every call.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.config import SERVICE
from tests.support.fc_sdks import Server

HERE = Path(__file__).resolve().parent
FLOW = HERE / "flow.cjs"


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.fail("node (>= 18) is needed: apt-get install -y nodejs npm")
    if not (HERE / "node_modules" / "@alicloud" / "fc2" / "package.json").is_file():
        pytest.fail("FC's Node.js SDK is not installed: run scripts/setup (npm ci in tests/fc_sdks)")
    return path


def run_flow(node: str, server: Server) -> dict[str, Any]:
    proc = subprocess.run(
        [node, str(FLOW), server.url, SERVICE], capture_output=True, text=True, timeout=60, cwd=HERE
    )
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


def test_template_flow_through_the_node_sdk(node: str, server: Server) -> None:
    out = run_flow(node, server)
    steps = out["steps"]

    def data(label: str) -> Any:
        step = steps[label]
        assert "thrown" not in step and step["errorType"] is None, (label, step)
        return step["data"]

    assert data("alice put") == {"data": None}
    todo = data("alice get")["data"]
    assert todo["id"] == "buy milk" and todo["completed"] is False and todo["_version"] == 1
    assert data("alice list") == {"data": [todo], "next": None}
    # Bob never sees alice's todos, and his own of the same id is his.
    assert data("bob list") == {"data": [], "next": None}
    assert data("bob get") == {"data": None}
    assert data("bob put") == {"data": None}
    assert data("bob remove") == {"data": None}
    assert data("alice get again") == {"data": todo}
    assert data("alice remove") == {"data": None}
    assert data("alice get removed") == {"data": None}
    assert data("alice list empty") == {"data": [], "next": None}

    # Function errors: 200 + x-fc-error-type, which the SDK hands back as a result; the body
    # has FC's errorMessage/errorType beside minibase's envelope.
    for label, code in (("alice with bob sid", "PermissionDenied"), ("alice bad op", "InvalidArgument")):
        step = steps[label]
        assert step["errorType"] == "HandledInvocationError", (label, step)
        body = step["data"]
        assert body["errorType"] == body["error"]["code"] == code, body
        assert body["errorMessage"] == body["error"]["message"], body
        assert body["error"]["requestId"] == step["requestId"], body

    # A forged signature: refused by the gateway; the SDK throws FC's error code.
    thrown = steps["alice forged"]["thrown"]
    assert thrown["code"] == "SignatureNotMatch" and thrown["name"] == "FCSignatureNotMatchError"
    assert "failed with 403" in thrown["message"]

    # What went over the wire: each call signed with its login's credentials, its Content-MD5
    # base64 of the body's hex digest (not RFC 1864's base64 of the raw digest).
    calls = server.invocations("db")
    assert len(calls) == len(steps)
    for call in calls:
        assert call.headers["authorization"].split(":")[0][3:] in out["keyIds"]
        assert call.headers["x-fc-security-token"]
        digest = hashlib.md5(call.body, usedforsecurity=False)
        assert call.headers["content-md5"] == base64.b64encode(digest.hexdigest().encode()).decode()
        assert call.headers["content-md5"] != base64.b64encode(digest.digest()).decode()
