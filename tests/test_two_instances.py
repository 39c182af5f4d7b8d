"""Two real ``minibase serve`` processes sharing one PostgreSQL database, as two FC
instances would: both start (and migrate, and create indexes) at the same time, a login
on one works on the other, data written through one reads back through both, and a
logout on one is refused by the other at once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import asyncpg
import httpx
import orjson
import pytest

from minibase.client import Credentials, signed_headers
from minibase.store.postgres import MIGRATIONS
from minibase.store.postgres_events import MIGRATIONS as EVENT_MIGRATIONS
from tests.fakes.server import free_port

SERVICE = "todo-list-svc"
SECRET = "two-instances-secret-0123456789-abcdefghij"
SESSION = f"/2016-08-15/proxy/{SERVICE}/session/"
INVOKE = f"/2016-08-15/services/{SERVICE}/functions/db/invocations"
MINIBASE = [sys.executable, "-m", "minibase.cli"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("ALIPAY_", "MINIBASE_"))}
START_TIMEOUT = 30.0

CONFIG = """\
[app]
name = "todo"
service = "{service}"
default_collection = "todo_list"
secret = "{secret}"

[auth.dev]
enabled = true

[database]
url = "{url}"

[collections.todo_list]
read = "owner"
write = "owner"
indexes = [["done", "n"], "title"]
"""


@dataclass
class Login:
    """What a client keeps from a login: the sessionId and its invoke credentials."""

    sid: str
    creds: Credentials
    uid: str

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Login:
        return cls(body["sessionId"], Credentials.from_wire(body["sts"]), body["user"]["uid"])


@dataclass
class Instance:
    name: str
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def session(self, event: dict[str, Any]) -> httpx.Response:
        return self.http.post(SESSION, json=event)

    def login(self, name: str) -> Login:
        r = self.session({"authCode": f"dev:{name}"})
        assert r.status_code == 200, r.text
        return Login.from_body(r.json())

    def invoke(self, who: Login, event: dict[str, Any], creds: Credentials | None = None) -> httpx.Response:
        """An FC-signed Invoke API call of ``db``, as the template's client makes it."""
        body = orjson.dumps({"sid": who.sid, **event})
        headers = signed_headers(creds or who.creds, "POST", INVOKE, body)
        return self.http.post(INVOKE, content=body, headers=headers)

    def ok(self, who: Login, event: dict[str, Any]) -> dict[str, Any]:
        """The whole success body (``data``, maybe ``next``) of a db call."""
        r = self.invoke(who, event)
        assert r.status_code == 200 and "x-fc-error-type" not in r.headers, (self.name, event, r.text)
        body: dict[str, Any] = r.json()
        assert "error" not in body, (self.name, event, body)
        return body

    def data(self, who: Login, event: dict[str, Any]) -> Any:
        return self.ok(who, event)["data"]

    def error(self, who: Login, event: dict[str, Any]) -> str:
        """The code of a function error (FC semantics: HTTP 200, HandledInvocationError)."""
        r = self.invoke(who, event)
        assert r.status_code == 200, r.text
        assert r.headers.get("x-fc-error-type") == "HandledInvocationError", r.text
        code: str = r.json()["error"]["code"]
        return code


def _start(name: str, tmp_path: Path, config: Path) -> Instance:
    port = free_port()
    log_path = tmp_path / f"{name}.log"
    log = log_path.open("wb")
    try:
        proc = subprocess.Popen(
            [
                *MINIBASE,
                "serve",
                "--config",
                str(config),
                "--port",
                str(port),
                "--data",
                str(tmp_path / f"data-{name}"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=ENV,
        )
    except BaseException:
        log.close()
        raise
    return Instance(name, f"http://127.0.0.1:{port}", proc, log_path, log)


def _wait_healthy(instances: list[Instance]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    waiting = list(instances)
    while waiting:
        for inst in list(waiting):
            try:
                if inst.http.get("/healthz").status_code == 200:
                    waiting.remove(inst)
                    continue
            except httpx.TransportError:
                pass
            assert inst.proc.poll() is None, f"instance {inst.name} exited:\n{inst.output()}"
        assert time.monotonic() < deadline, "instances did not start:\n" + "\n".join(
            f"--- {i.name}\n{i.output()}" for i in waiting
        )
        time.sleep(0.05)


def _stop(inst: Instance) -> None:
    try:
        inst.http.close()
        if inst.proc.poll() is None:
            inst.proc.terminate()
        try:
            inst.proc.wait(15)
        except subprocess.TimeoutExpired:  # pragma: no cover - only when shutdown hangs
            inst.proc.kill()
            inst.proc.wait(5)
    finally:
        inst.log.close()


@pytest.fixture
def pair(tmp_path: Path, pg_url: str) -> Iterator[tuple[Instance, Instance]]:
    """Instances A and B on one fresh database, started at the same moment, so both
    migrate the empty database and create the declared indexes concurrently."""
    config = tmp_path / "minibase.toml"
    config.write_text(CONFIG.format(service=SERVICE, secret=SECRET, url=pg_url))
    instances: list[Instance] = []
    try:
        for name in ("a", "b"):
            instances.append(_start(name, tmp_path, config))
        _wait_healthy(instances)
        a, b = instances
        yield a, b
        for inst in instances:
            inst.proc.terminate()
        for inst in instances:
            # uvicorn shuts down gracefully, then re-raises SIGTERM on itself.
            assert inst.proc.wait(15) in (0, -signal.SIGTERM), inst.output()
            out = inst.output()
            assert "Application shutdown complete." in out, out
            assert "Traceback" not in out and "ERROR" not in out and "WARNING minibase" not in out, out
    finally:
        for inst in instances:
            _stop(inst)


async def _catalog(url: str) -> tuple[list[int], set[str]]:
    conn = await asyncpg.connect(url)
    try:
        versions = [r[0] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")]
        indexes = {
            r[0]
            for r in await conn.fetch(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'documents' AND indexname LIKE 'ix\\_%'"
            )
        }
        return versions, indexes
    finally:
        await conn.close()


def _ids(docs: list[dict[str, Any]]) -> list[str]:
    return [d["id"] for d in docs]


def test_two_instances_share_sessions_and_data(pair: tuple[Instance, Instance], pg_url: str) -> None:
    a, b = pair
    versions, indexes = asyncio.run(_catalog(pg_url))
    # Migrated once, although both instances started on an empty database (the store's
    # tables, then the outbox's that realtime watches follow).
    assert versions == [v for v, _ in MIGRATIONS] + [v for v, _ in EVENT_MIGRATIONS]
    # Owner-only reads: each declared index in its owner-first shape only.
    assert len(indexes) == 2, indexes

    # Log in on A, write through B with A's credentials.
    alice = a.login("alice")
    t1 = b.data(alice, {"op": "insert", "obj": {"id": "t1", "title": "buy milk", "done": False, "n": 1}})
    assert (t1["id"], t1["uid"], t1["_version"]) == ("t1", alice.uid, 1)
    made = b.data(
        alice,
        {
            "op": "batch",
            "ops": [
                {"op": "insert", "obj": {"id": "t2", "title": "walk", "done": False, "n": 3}},
                {"op": "insert", "obj": {"id": "t3", "title": "read", "done": True, "n": 2}},
                {"op": "insert", "obj": {"title": "cook", "done": False, "n": 0}},
                {"op": "put", "obj": {"id": "t4", "title": "sleep", "done": False, "n": 2}},
            ],
        },
    )
    generated = made[2]["id"]
    assert [d["id"] for d in made[:2]] == ["t2", "t3"] and made[3] is None
    assert b.error(alice, {"op": "insert", "obj": {"id": "t1"}}) == "Conflict"

    # Updates through A on what B wrote; versions are shared.
    t1 = a.data(alice, {"op": "update", "id": "t1", "inc": {"n": 4}, "set": {"tag": "x"}, "ifVersion": 1})
    assert (t1["n"], t1["tag"], t1["_version"]) == (5, "x", 2)
    assert b.error(alice, {"op": "update", "id": "t1", "set": {"done": True}, "ifVersion": 1}) == "Conflict"
    assert b.data(alice, {"op": "update", "id": "t3", "unset": ["n"]})["_version"] == 2

    # Reads through both instances agree.
    for inst in (a, b):
        assert inst.data(alice, {"op": "get", "id": "t1"}) == t1
        assert inst.data(alice, {"op": "get", "id": "nope"}) is None
        todo = {"op": "query", "where": {"done": False}, "orderBy": [["n", "desc"]]}
        assert _ids(inst.data(alice, todo)) == ["t1", "t2", "t4", generated]
        q = {"op": "query", "where": {"done": False, "n": {"$gte": 2}}, "orderBy": [["n", "asc"]]}
        assert _ids(inst.data(alice, q)) == ["t4", "t2", "t1"]
        assert inst.data(alice, {"op": "count", "where": {"done": False}}) == 4
        assert inst.data(alice, {"op": "count"}) == 5
        listed = inst.ok(alice, {"op": "list"})
        assert _ids(listed["data"]) == sorted(["t1", "t2", "t3", "t4", generated])
        assert listed.get("next") is None

    # A cursor from one instance continues on the other.
    page = {"op": "query", "where": {"done": False}, "orderBy": [["n", "desc"]], "limit": 2}
    first = a.ok(alice, page)
    assert _ids(first["data"]) == ["t1", "t2"] and first["next"]
    second = b.ok(alice, {**page, "cursor": first["next"]})
    assert _ids(second["data"]) == ["t4", generated] and second.get("next") is None

    # A second user sees none of it through either instance, and may reuse the ids.
    bob = b.login("bob")
    assert bob.uid != alice.uid
    for inst in (a, b):
        assert inst.data(bob, {"op": "get", "id": "t1"}) is None
        assert inst.data(bob, {"op": "list"}) == []
        assert inst.data(bob, {"op": "query", "where": {"done": False}}) == []
        assert inst.data(bob, {"op": "count"}) == 0
        assert inst.error(bob, {"op": "update", "id": "t1", "set": {"done": True}}) == "NotFound"
    mine = a.data(bob, {"op": "insert", "obj": {"id": "t1", "title": "bob's", "done": False, "n": 9}})
    assert mine["uid"] == bob.uid
    assert b.data(bob, {"op": "remove", "id": "t2"}) is None  # not bob's: nothing happens
    for inst in (a, b):
        assert inst.data(alice, {"op": "get", "id": "t1"}) == t1
        assert _ids(
            inst.data(alice, {"op": "query", "where": {"done": False}, "orderBy": [["n", "desc"]]})
        ) == [
            "t1",
            "t2",
            "t4",
            generated,
        ]
        assert _ids(inst.data(bob, {"op": "list"})) == ["t1"]
    # Credentials are bound to their session: bob's, with alice's sid, are refused.
    assert b.invoke(alice, {"op": "list"}, creds=bob.creds).json()["error"]["code"] == "PermissionDenied"

    # Refresh on B: the new credentials work on A.
    r = b.session({"op": "refresh", "sessionId": alice.sid})
    assert r.status_code == 200, r.text
    refreshed = Login.from_body(r.json())
    assert refreshed.sid == alice.sid and refreshed.uid == alice.uid
    assert refreshed.creds.access_key_id != alice.creds.access_key_id
    assert a.data(refreshed, {"op": "get", "id": "t2"})["id"] == "t2"

    # Logout on A: B refuses the session and every credential minted for it, right away.
    r = a.session({"op": "logout", "sessionId": alice.sid})
    assert r.status_code == 200 and r.json() == {"data": None}, r.text
    for inst in (b, a):
        r = inst.session({"op": "refresh", "sessionId": alice.sid})
        assert r.status_code == 401 and r.json()["error"]["code"] == "Unauthenticated", r.text
        for creds in (alice.creds, refreshed.creds):
            r = inst.invoke(alice, {"op": "get", "id": "t1"}, creds=creds)
            assert r.status_code == 403, r.text
            assert r.json()["ErrorCode"] == "InvalidSecurityToken", r.text
        for headers in ({"authorization": f"Bearer {alice.sid}"}, {}):
            r = inst.http.post("/invoke/db", json={"sid": alice.sid, "op": "list"}, headers=headers)
            assert r.status_code == 401 and r.json()["error"]["code"] == "Unauthenticated", r.text
    # Bob's session is untouched.
    assert _ids(b.data(bob, {"op": "list"})) == ["t1"]
    assert _ids(a.data(bob, {"op": "list"})) == ["t1"]


def test_concurrent_logins_and_writes_across_instances(pair: tuple[Instance, Instance]) -> None:
    a, b = pair
    with ThreadPoolExecutor(8) as pool:
        # A first login racing on both instances makes one user, not two.
        logins = list(pool.map(lambda inst: inst.login("carol"), [a, b] * 3))
        assert len({x.uid for x in logins}) == 1
        carol = logins[0]

        # Upserts of one new document, and increments of it, racing on both instances.
        def put(i: int) -> Any:
            return (a, b)[i % 2].data(carol, {"op": "put", "obj": {"id": "c", "n": 0, "by": i}})

        assert list(pool.map(put, range(10))) == [None] * 10

        def inc(i: int) -> Any:
            return (a, b)[i % 2].data(carol, {"op": "update", "id": "c", "inc": {"n": 1}})

        versions = sorted(d["_version"] for d in pool.map(inc, range(40)))
    assert versions == list(range(11, 51))  # 10 puts, then 40 increments, none lost
    for inst in (a, b):
        doc = inst.data(carol, {"op": "get", "id": "c"})
        assert (doc["n"], doc["_version"]) == (40, 50)
