"""One costly request does not freeze the server (issue 18, point 2), end to end.

A real ``minibase serve`` process on loopback with its SQLite database. One user stores
documents of about 1 MB, each a 500,000-element array, then runs the costliest ``count``
the query limits allow (10 ``$contains`` that scan every array to its end) in a loop;
another client's ``/healthz`` answers stay fast meanwhile (p99 under 250 ms), as they do
while the user sends batches of 10 updates of one such document. The query runs out of
its time budget (``limits.query_time``) with 504 DeadlineExceeded, and a query past the
cost bounds is refused 400 before it runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.fakes.server import free_port

CONFIG = """\
[app]
name = "budget"
service = "budget-svc"
default_collection = "blobs"
secret = "query-budget-secret-0123456789-abcdefghij"

[auth.dev]
enabled = true

[collections.blobs]
read = "owner"
write = "owner"

[limits]
query_time = "1s"
"""
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("ALIPAY_", "MINIBASE_"))}
ARRAY = [0] * 500_000  # "[0,0,…]": about 1 MB, within the 1 MiB request limit
WORST = {"$or": [{"arr": {"$contains": v}} for v in range(1, 11)]}  # 10 full scans a document


class Server:
    def __init__(self, tmp_path: Path) -> None:
        config = tmp_path / "minibase.toml"
        config.write_text(CONFIG)
        self.log_path = tmp_path / "server.log"
        self.log = self.log_path.open("wb")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "minibase.cli", "serve", "--config", str(config), "--port", str(port)]
        # One worker: the subject is one process's event loop (more workers would share
        # the two clients out and hide a held loop).
        cmd += ["--data", str(tmp_path / "data"), "--workers", "1"]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=ENV)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert self.proc.poll() is None and time.monotonic() < deadline, self.output()
            time.sleep(0.05)

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        finally:
            self.log.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path)
    try:
        yield s
    finally:
        s.stop()


class User:
    def __init__(self, server: Server, name: str) -> None:
        self.http = httpx.Client(base_url=server.url, timeout=60)
        r = self.http.post("/session", json={"authCode": f"dev:{name}"})
        assert r.status_code == 200, r.text
        self.http.headers["Authorization"] = f"Bearer {r.json()['sessionId']}"

    def db(self, event: dict[str, Any]) -> httpx.Response:
        return self.http.post("/invoke/db", content=orjson.dumps(event))


def _healthz_p99(url: str, n: int = 300) -> tuple[float, float]:
    """p99 and max latency of ``n`` sequential GET /healthz (one keep-alive connection)."""
    times: list[float] = []
    with httpx.Client(base_url=url, timeout=10) as http:
        for _ in range(n):
            t0 = time.perf_counter()
            assert http.get("/healthz").status_code == 200
            times.append(time.perf_counter() - t0)
    times.sort()
    return times[int(n * 0.99) - 1], times[-1]


# The load runs in a process of its own: reading its answers (10 MB for a batch) in this
# process would hold the GIL here and slow the /healthz client, not the server.
_LOOP = """
import sys, httpx
url, auth, body = sys.argv[1], sys.argv[2], sys.argv[3].encode()
with httpx.Client(base_url=url, timeout=60, headers={"Authorization": auth}) as http:
    while True:
        print(http.post("/invoke/db", content=body).status_code, flush=True)
"""


@contextmanager
def _in_a_loop(server: Server, user: User, event: dict[str, Any]) -> Iterator[list[str]]:
    """Sends ``event`` as ``user`` over and over, from another process, until the block
    ends and at least one answer came; yields the answers' status codes (filled at the end)."""
    cmd = [sys.executable, "-c", _LOOP, server.url, user.http.headers["Authorization"]]
    proc = subprocess.Popen([*cmd, orjson.dumps(event).decode()], stdout=subprocess.PIPE, env=ENV)
    answers: list[str] = []
    try:
        time.sleep(0.5)  # the first request is being served
        yield answers
        assert proc.stdout is not None
        answers.append(proc.stdout.readline().decode().strip())  # at least one answered
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
        answers += out.decode().split()


@pytest.fixture
def alice(server: Server) -> Iterator[User]:
    user = User(server, "alice")
    try:
        yield user
    finally:
        user.http.close()


def test_a_costly_query_or_batch_does_not_hold_other_requests(server: Server, alice: User) -> None:
    for i in range(5):
        r = alice.db({"op": "put", "obj": {"id": f"b{i}", "arr": ARRAY, "n": 0}})
        assert r.status_code == 200, r.text

    # The time budget: 504 with the standard error envelope.
    started = time.monotonic()
    r = alice.db({"op": "count", "where": WORST})
    assert r.status_code == 504, r.text
    error = r.json()["error"]
    assert error["code"] == "DeadlineExceeded" and "limits.query_time" in error["message"], error
    assert set(error) >= {"code", "message", "requestId"}
    assert time.monotonic() - started < 5

    # The cost bound: 400 before anything runs.
    eleven = {"$or": [*WORST["$or"], {"arr": {"$contains": 11}}]}
    r = alice.db({"op": "count", "where": eleven})
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidArgument", r.text

    # The bound: 250 ms, unless the machine itself is so busy that an idle server's p99 is
    # over a third of that. A held loop answers in about a second; a 2-core CI machine
    # running four test processes put an unheld one's p99 at 116 ms once (100 ms was the bound).
    idle, _ = _healthz_p99(server.url)
    bound = max(0.25, 3 * idle)

    # Worst query in a loop: /healthz stays fast.
    with _in_a_loop(server, alice, {"op": "count", "where": WORST}) as answers:
        p99, worst = _healthz_p99(server.url)
    assert answers and set(answers) == {"504"}, answers
    assert p99 < bound, (
        f"/healthz p99 {p99 * 1000:.1f} ms (max {worst * 1000:.1f} ms, idle p99 {idle * 1000:.1f} ms) under the costly query"
    )

    # Batches of 10 updates of a 1 MB document in a loop: /healthz stays fast.
    batch = {"op": "batch", "ops": [{"op": "update", "id": "b0", "inc": {"n": 1}} for _ in range(10)]}
    with _in_a_loop(server, alice, batch) as answers:
        p99, worst = _healthz_p99(server.url)
    assert answers and set(answers) == {"200"}, answers
    assert p99 < bound, (
        f"/healthz p99 {p99 * 1000:.1f} ms (max {worst * 1000:.1f} ms, idle p99 {idle * 1000:.1f} ms) under update batches"
    )
    n = alice.db({"op": "get", "id": "b0", "fields": ["n"]}).json()["data"]["n"]
    assert n >= 10 * len(answers) and n % 10 == 0  # (a batch cut short by terminate may land)

    out = server.output()
    assert "Traceback" not in out, out
