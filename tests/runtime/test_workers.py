"""``minibase serve --workers 2`` as a real process, on SQLite and on PostgreSQL: what one
worker writes (sessions, their revocation, rate buckets, documents, realtime watches) holds
on the other; a
killed worker is replaced; SIGTERM lets an in-flight request finish, then everything stops.

Which worker serves a request is pinned, not left to chance: a keep-alive connection stays
with the worker that accepted it, so each worker's connection is opened while the other is
stopped (SIGSTOP), and a public function answering its process id proves where it landed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from tests.fakes.server import free_port

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for the workers")

MINIBASE = [sys.executable, "-m", "minibase.cli"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("ALIPAY_", "MINIBASE_"))}
SESSION = "/2016-08-15/proxy/todo-list-svc/session/"

CONFIG = """\
[app]
name = "todo"
service = "todo-list-svc"
default_collection = "todo_list"
secret = "workers-secret-0123456789-abcdefghijklmn"

[auth.dev]
enabled = true

{database}

[functions]
module = "worker_functions"

[rate_limits]
login_per_ip = "off"
login_per_subject = "off"
calls_per_ip = "off"
calls_per_user = "5/min"

[collections.todo_list]
read = "owner"
write = "owner"
"""

FUNCTIONS = """\
import asyncio
import os
from pathlib import Path

from minibase import function


@function(public=True)
def whoami(ctx, event):
    return os.getpid()


@function(public=True, timeout=10)
async def slow(ctx, event):
    Path(event["started"]).write_text("")  # the test sends SIGTERM once this exists
    await asyncio.sleep(event["seconds"])
    return os.getpid()
"""


class Served:
    def __init__(self, tmp_path: Path, database: str) -> None:
        (tmp_path / "minibase.toml").write_text(CONFIG.format(database=database))
        (tmp_path / "worker_functions.py").write_text(FUNCTIONS)
        self.tmp = tmp_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / "serve.log"
        self.log: IO[bytes] = self.log_path.open("wb")
        self.clients: list[httpx.Client] = []
        self.proc = subprocess.Popen(
            [
                *MINIBASE,
                "serve",
                "--config",
                str(tmp_path / "minibase.toml"),
                "--data",
                str(tmp_path / "data"),
                "--port",
                str(self.port),
                "--workers",
                "2",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=ENV,
        )

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def workers(self) -> list[int]:
        pid = self.proc.pid
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        return sorted(int(p) for p in text.split())

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert self.proc.poll() is None, f"serve exited while waiting for {what}:\n{self.output()}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{self.output()}"
            time.sleep(0.05)

    def pinned(self, worker: int) -> httpx.Client:
        """A keep-alive connection served by ``worker``: opened while the others are stopped."""
        others = [p for p in self.workers() if p != worker]
        for p in others:
            os.kill(p, signal.SIGSTOP)
        try:
            client = httpx.Client(base_url=self.url, timeout=10)
            self.clients.append(client)
            assert whoami(client) == worker
        finally:
            for p in others:
                os.kill(p, signal.SIGCONT)
        return client

    def close(self) -> None:
        for c in self.clients:
            c.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


def whoami(client: httpx.Client) -> int:
    r = client.post("/invoke/whoami", json={})
    assert r.status_code == 200, r.text
    pid: int = r.json()["data"]
    return pid


def ready(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


def login(client: httpx.Client, name: str) -> str:
    r = client.post(SESSION, json={"authCode": f"dev:{name}"})
    assert r.status_code == 200, r.text
    sid: str = r.json()["sessionId"]
    return sid


def db(client: httpx.Client, sid: str, event: dict[str, Any]) -> httpx.Response:
    return client.post("/invoke/db", json=event, headers={"authorization": f"Bearer {sid}"})


def code(r: httpx.Response) -> str:
    c: str = r.json()["error"]["code"]
    return c


@pytest.fixture(params=["sqlite", "postgres"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    database = ""
    if request.param == "postgres":
        database = f'[database]\nurl = "{request.getfixturevalue("pg_url")}"'
    s = Served(tmp_path, database)
    try:
        probe = httpx.Client(base_url=s.url, timeout=10)
        s.clients.append(probe)
        s.wait_for("two workers", lambda: len(s.workers()) == 2 and ready(probe))
        yield s
    finally:
        s.close()


def test_workers_share_state_restart_and_drain(served: Served) -> None:
    a_pid, b_pid = served.workers()
    # Each worker has finished its start-up (pinned() stops the other one meanwhile).
    served.wait_for("both workers ready", lambda: len(served.output().split("startup complete")) == 3)
    a, b = served.pinned(a_pid), served.pinned(b_pid)

    # Sessions: a login on A works on B; a write on B reads back on A.
    alice = login(a, "alice")
    r = db(b, alice, {"op": "insert", "obj": {"id": "t1", "title": "milk"}})
    assert r.status_code == 200, r.text
    r = db(a, alice, {"op": "get", "id": "t1"})
    assert r.status_code == 200 and r.json()["data"]["title"] == "milk", r.text
    # Revocation: a logout on B is refused on A at once (no instance trusts a stale copy).
    r = b.post(SESSION, json={"op": "logout", "sessionId": alice})
    assert r.status_code == 200, r.text
    r = db(a, alice, {"op": "get", "id": "t1"})
    assert r.status_code == 401 and code(r) == "Unauthenticated", r.text

    # Rate buckets: 5 calls a minute for one user, counted once across both workers.
    bob = login(b, "bob")
    statuses = [db(w, bob, {"op": "count"}).status_code for w in (a, a, a, b, b)]
    assert statuses == [200] * 5
    for w in (a, b):
        r = db(w, bob, {"op": "count"})
        assert r.status_code == 429 and code(r) == "RateLimited", r.text
    assert [whoami(a), whoami(b)] == [a_pid, b_pid]  # the calls went where they were pinned
    watch_across_workers(served, a_pid, b)

    # A killed worker is replaced; the other one serves meanwhile.
    os.kill(a_pid, signal.SIGKILL)
    assert whoami(b) == b_pid
    found: list[int] = []

    def replaced() -> bool:  # one read of the children per look (two reads could disagree)
        now = set(served.workers())
        found[:] = sorted(now - {b_pid})
        return len(now) == 2 and b_pid in now and a_pid not in now

    served.wait_for("a new worker", replaced)
    (c_pid,) = found
    served.wait_for("the new worker ready", lambda: len(served.output().split("startup complete")) == 4)
    c = served.pinned(c_pid)
    carol = login(c, "carol")
    assert db(b, carol, {"op": "count"}).json() == {"data": 0}
    assert "died (signal 9)" in served.output()

    # SIGTERM: the request in flight on C finishes, then both workers and the supervisor exit.
    started = served.tmp / "started"
    answer: list[httpx.Response] = []
    thread = threading.Thread(
        target=lambda: answer.append(c.post("/invoke/slow", json={"seconds": 3.0, "started": str(started)}))
    )
    thread.start()
    served.wait_for("the slow call to start", started.exists)
    # An open SSE stream must not hold the stop: it ends with "the server is stopping".
    sse_sid = login(b, "sam")
    lines: list[str] = []
    stream_open = threading.Event()

    def read_stream() -> None:
        with (
            httpx.Client(timeout=30) as h,
            h.stream(
                "POST",
                served.url + "/realtime/sse",
                json={"id": "w"},
                headers={"authorization": f"Bearer {sse_sid}"},
            ) as resp,
        ):
            for line in resp.iter_lines():
                lines.append(line)
                stream_open.set()

    reader = threading.Thread(target=read_stream)
    reader.start()
    assert stream_open.wait(10), served.output()
    served.proc.send_signal(signal.SIGTERM)

    def refused() -> bool:
        try:
            httpx.get(served.url + "/healthz", timeout=0.5)
        except httpx.ConnectError:
            return True
        except httpx.TransportError:  # accepted into a backlog nobody reads: not yet refused
            pass
        return False

    served.wait_for("new connections to be refused", refused, timeout=2.5)
    assert thread.is_alive()  # …while the call in flight is still running
    thread.join(15)
    assert answer and answer[0].status_code == 200 and answer[0].json() == {"data": c_pid}, answer
    assert served.proc.wait(15) == 0, served.output()
    reader.join(5)
    assert '"the server is stopping: reconnect and resume"' in [x for x in lines if x][-1], lines
    out = served.output()
    assert out.count("Application shutdown complete.") == 2, out
    assert "Traceback" not in out and "ERROR" not in out, out


def test_a_worker_that_cannot_start_stops_serve(tmp_path: Path) -> None:
    # The database path is a directory: every worker's start-up fails, and serve exits 1
    # instead of restarting them forever.
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "minibase.db").mkdir()
    s = Served(tmp_path, "")
    try:
        assert s.proc.wait(30) == 1, s.output()
        assert "failed to start" in s.output()
    finally:
        s.close()


def watch_across_workers(served: Served, reader: int, writer: httpx.Client) -> None:
    """Realtime across the processes of one server: a watch on ``reader`` sees what the
    other worker writes (on SQLite found by polling the outbox, on PostgreSQL by NOTIFY)."""
    from websockets.sync.client import connect

    sid = login(writer, "wanda")
    others = [p for p in served.workers() if p != reader]
    for p in others:  # the socket is accepted by the reader
        os.kill(p, signal.SIGSTOP)
    try:
        ws = connect(served.url.replace("http://", "ws://") + "/realtime", open_timeout=10)
    finally:
        for p in others:
            os.kill(p, signal.SIGCONT)
    with ws:
        ws.send('{"type": "auth", "sessionId": "' + sid + '"}')
        assert '"authed"' in str(ws.recv(timeout=10))
        ws.send('{"type": "subscribe", "id": "w", "collection": "todo_list", "orderBy": ["n"]}')
        assert '"init":true' in str(ws.recv(timeout=10))
        for n in range(3):
            assert db(writer, sid, {"op": "put", "obj": {"id": f"t{n}", "n": n}}).status_code == 200
            frame = str(ws.recv(timeout=10))
            assert '"dataType":"add"' in frame and f'"id":"t{n}"' in frame, frame


def test_a_logout_on_one_worker_is_refused_at_once_on_a_busy_other(served: Served) -> None:
    """Worker A keeps serving other requests (each reads the session store: on SQLite its
    reads of one loop step share a snapshot, store/sqlite_reader.py) while sessions end on
    B: A's next request after each logout already refuses the session."""
    a_pid, b_pid = served.workers()
    served.wait_for("both workers ready", lambda: len(served.output().split("startup complete")) == 3)
    a, b = served.pinned(a_pid), served.pinned(b_pid)
    busy_sid = login(b, "busy")
    stop = threading.Event()
    served_busy: list[int] = []

    def keep_a_busy() -> None:
        # Its own connections to A, pinned while B is stopped (as pinned() does).
        clients = [served.pinned(a_pid) for _ in range(4)]
        while not stop.is_set():
            for c in clients:  # 429 past the rate limit: the session is read first all the same
                r = c.post("/invoke/whoami", json={}, headers={"authorization": f"Bearer {busy_sid}"})
                served_busy.append(r.status_code)

    load = threading.Thread(target=keep_a_busy)
    load.start()
    try:
        served.wait_for("the load on A", lambda: len(served_busy) > 20)
        for n in range(15):
            sid = login(b, f"u{n}")
            r = db(a, sid, {"op": "count"})
            assert r.status_code == 200, r.text  # known to A (and cached there)
            r = b.post(SESSION, json={"op": "logout", "sessionId": sid})
            assert r.status_code == 200, r.text
            r = db(a, sid, {"op": "count"})
            assert r.status_code == 401 and code(r) == "Unauthenticated", (n, r.text)
    finally:
        stop.set()
        load.join(10)
    assert set(served_busy) <= {200, 429}, set(served_busy)
    assert whoami(a) == a_pid and whoami(b) == b_pid
