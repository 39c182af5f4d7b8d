"""The `minibase` command, run as a real process."""

from __future__ import annotations

import base64
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives import serialization

from minibase.cli import main
from minibase.client import Credentials, signed_headers
from tests.fakes.server import free_port

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "todo" / "minibase.toml"
MINIBASE = [sys.executable, "-m", "minibase.cli"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("ALIPAY_", "MINIBASE_"))}


@dataclass
class Served:
    url: str
    proc: subprocess.Popen[str]
    data: Path


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    port = free_port()
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [*MINIBASE, "serve", "--config", str(EXAMPLE), "--port", str(port), "--data", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=ENV,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        yield Served(url, proc, data)
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()


def test_serve_runs_the_template_flow(served: Served) -> None:
    """The template's client flow against the real command and the example config."""
    session = f"{served.url}/2016-08-15/proxy/todo-list-svc/session/"
    invoke = "/2016-08-15/services/todo-list-svc/functions/db/invocations"

    def call(login: dict[str, object], event: dict[str, object]) -> httpx.Response:
        creds = Credentials.from_wire(login["sts"])  # type: ignore[arg-type]
        body = orjson.dumps({"sid": login["sessionId"], **event})
        return httpx.post(
            served.url + invoke, content=body, headers=signed_headers(creds, "POST", invoke, body)
        )

    alice = httpx.post(session, json={"authCode": "dev:alice"}).json()
    r = call(alice, {"op": "put", "obj": {"id": "buy milk", "completed": False}})
    assert r.json() == {"data": None}
    data = call(alice, {"op": "list"}).json()["data"]
    assert [(d["id"], d["completed"]) for d in data] == [("buy milk", False)]
    bob = httpx.post(session, json={"authCode": "dev:bob"}).json()
    assert call(bob, {"op": "list"}).json()["data"] == []
    # Alipay is declared but not set up here: a clear refusal, not a crash.
    r = httpx.post(session, json={"authCode": "x", "provider": "alipay"})
    assert r.status_code == 400 and "ALIPAY_APP_ID" in r.json()["error"]["message"]

    key = served.data / "secret.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def _readme_walkthrough() -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(r"<!-- walkthrough -->\s*```bash\n(.*?)```", text, re.S)
    assert m, "README.md lost its curl walk-through block"
    return m.group(1)


def test_readme_curl_walkthrough_works_as_printed(served: Served) -> None:
    script = _readme_walkthrough().replace("http://127.0.0.1:8000", served.url)
    out = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert '"id":"buy milk"' in out.stdout and '"completed":false' in out.stdout


def test_serve_warns_about_dev_login(served: Served) -> None:
    served.proc.terminate()
    output = served.proc.communicate(timeout=10)[0]
    assert "WARNING: the 'dev' login provider is enabled" in output
    assert "login provider 'alipay' is configured but not set up" in output


def test_serve_fails_at_start_on_bad_config(tmp_path: Path) -> None:
    cfg = tmp_path / "minibase.toml"
    cfg.write_text('[auth.wechat]\napp_id = "wx"\nsecret = "s3cret"\napi = "ftp://nope"\n')
    out = subprocess.run(
        [*MINIBASE, "serve", "--config", str(cfg)], capture_output=True, text=True, env=ENV, timeout=30
    )
    assert out.returncode == 2
    assert "auth.wechat.api" in out.stderr and "Traceback" not in out.stderr


def test_serve_fails_at_start_on_missing_key_file(tmp_path: Path) -> None:
    cfg = tmp_path / "minibase.toml"
    cfg.write_text(
        '[auth.alipay]\napp_id = "1"\nprivate_key_file = "nope.pem"\nalipay_public_key_file = "nope2.pem"\n'
    )
    out = subprocess.run(
        [*MINIBASE, "serve", "--config", str(cfg)], capture_output=True, text=True, env=ENV, timeout=30
    )
    assert out.returncode == 2 and "auth.alipay.private_key_file" in out.stderr


def test_keys_alipay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "alipay", "--out", str(tmp_path / "k")]) == 0
    one_line = capsys.readouterr().out.strip()
    private = tmp_path / "k" / "app_private_key.pem"
    public = tmp_path / "k" / "app_public_key.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(private.read_bytes(), None)
    assert key.key_size == 2048  # type: ignore[union-attr]
    pub_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert "\n" not in one_line and base64.b64decode(one_line) == pub_der
    assert (
        serialization.load_pem_public_key(public.read_bytes()).public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == pub_der
    )
    # The generated pair works with the Alipay provider's key loaders.
    from minibase.auth.providers.alipay import load_private_key, load_public_key

    load_private_key(private.read_bytes())
    load_public_key(one_line.encode())
    # Never silently overwrite a key.
    assert main(["keys", "alipay", "--out", str(tmp_path / "k")]) == 1
    assert "exists" in capsys.readouterr().err


def test_admin_commands_take_effect_on_the_next_request(served: Served) -> None:
    session = f"{served.url}/2016-08-15/proxy/todo-list-svc/session/"
    login = httpx.post(session, json={"authCode": "dev:mallory"}).json()
    uid, sid = login["user"]["uid"], login["sessionId"]
    h = {"authorization": f"Bearer {sid}"}
    assert httpx.post(served.url + "/invoke/db", json={"op": "list"}, headers=h).status_code == 200
    out = subprocess.run(
        [*MINIBASE, "sessions", "revoke", "--uid", uid, "--config", str(EXAMPLE), "--data", str(served.data)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=30,
    )
    assert out.returncode == 0 and "revoked 1 session" in out.stdout, out.stderr
    assert httpx.post(served.url + "/invoke/db", json={"op": "list"}, headers=h).status_code == 401
    sid2 = httpx.post(session, json={"authCode": "dev:mallory"}).json()["sessionId"]
    out = subprocess.run(
        [*MINIBASE, "users", "disable", uid, "--config", str(EXAMPLE), "--data", str(served.data)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    r = httpx.post(
        served.url + "/invoke/db", json={"op": "list"}, headers={"authorization": f"Bearer {sid2}"}
    )
    assert r.status_code == 401  # its sessions end with it
    refused = httpx.post(session, json={"authCode": "dev:mallory"})
    assert refused.status_code == 401 and "disabled" in refused.json()["error"]["message"]
    out = subprocess.run(
        [*MINIBASE, "users", "enable", uid, "--config", str(EXAMPLE), "--data", str(served.data)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=30,
    )
    assert out.returncode == 0
    assert httpx.post(session, json={"authCode": "dev:mallory"}).status_code == 200
    out = subprocess.run(
        [*MINIBASE, "users", "disable", "u_nobody", "--config", str(EXAMPLE), "--data", str(served.data)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=30,
    )
    assert out.returncode == 1 and "no user" in out.stderr
