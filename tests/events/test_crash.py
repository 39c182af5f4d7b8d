"""A trigger survives a server SIGKILL between commit and delivery: a real ``minibase serve``
acknowledges writes whose trigger cannot run yet, is killed with SIGKILL, and after a
restart every written document is delivered, and nothing else (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.fakes.server import free_port
from tests.support.events import write_module

MINIBASE = [sys.executable, "-m", "minibase.cli"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("ALIPAY_", "MINIBASE_"))}

MODULE = """
import json, os
from minibase.events import after_write

LOG = {log!r}

@after_write("orders", ops=["insert"])
def on_order(ctx, change):
    if not os.path.exists(LOG + ".ready"):
        raise RuntimeError("downstream is not there yet")
    with open(LOG, "a") as f:
        f.write(json.dumps({"id": change["id"], "title": change["new"]["title"]}) + "\\n")
"""


def _serve(tmp_path: Path, config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    proc = subprocess.Popen(
        [*MINIBASE, "serve", "--config", str(config), "--port", str(port), "--data", str(tmp_path / "data")],
        stdout=out,
        stderr=subprocess.STDOUT,
        env=ENV,
    )
    out.close()
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


def test_trigger_survives_sigkill_between_commit_and_delivery(tmp_path: Path, backend: str) -> None:
    log = tmp_path / "handled.log"
    module = write_module(tmp_path, MODULE.replace("{log!r}", repr(str(log))))
    config = tmp_path / "minibase.toml"
    config.write_text(
        f"""
[app]
name = "crash"
service = "crash-svc"
secret = "test-secret-0123456789-abcdefghijklmnop"
[auth.dev]
enabled = true
[database]
url = "{backend}"
[functions]
module = "{module}"
# The killed server's claims pass to the restarted one after this (default 60 s).
trigger_lease = "3s"
[rate_limits]
calls_per_user = "off"
calls_per_ip = "off"
login_per_ip = "off"
login_per_subject = "off"
"""
    )
    port = free_port()
    server_log = tmp_path / "server.log"
    proc = _serve(tmp_path, config, port, server_log)
    written: list[str] = []
    try:
        base = f"http://127.0.0.1:{port}"
        sid = httpx.post(f"{base}/session", json={"authCode": "dev:alice"}).json()["sessionId"]
        auth = {"Authorization": f"Bearer {sid}"}
        # One batch, then the kill at once: the events are committed and none delivered
        # (the handler fails until "ready", so they wait for a retry a second or two away).
        ops = [{"op": "insert", "obj": {"id": f"o{i}", "title": f"order {i}"}} for i in range(20)]
        r = httpx.post(
            f"{base}/invoke/db", json={"op": "batch", "collection": "orders", "ops": ops}, headers=auth
        )
        assert r.status_code == 200, r.text
        written.extend(f"o{i}" for i in range(20))
        # A refused write commits nothing, so it has no event.
        r = httpx.post(
            f"{base}/invoke/db",
            json={"op": "insert", "collection": "orders", "obj": {"id": "o0"}},
            headers=auth,
        )
        assert r.status_code == 409
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert not log.exists()  # nothing was delivered before the kill
    (tmp_path / "handled.log.ready").write_text("")
    proc = _serve(tmp_path, config, port, server_log)
    try:
        deadline = time.monotonic() + 60  # the retries back off; a loaded machine is slow
        while time.monotonic() < deadline:
            got = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
            if len(got) >= len(written):
                break
            time.sleep(0.1)
        time.sleep(0.3)  # nothing more arrives
        got = [json.loads(x) for x in log.read_text().splitlines()]
        assert sorted(x["id"] for x in got) == sorted(written), server_log.read_text()
        assert all(x["title"] == f"order {x['id'][1:]}" for x in got)
    finally:
        proc.terminate()
        proc.wait(15)
