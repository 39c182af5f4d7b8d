"""Crash safety: a real ``minibase serve`` process is killed with SIGKILL at random moments
while several clients write, then restarted on the same data; every acknowledged write must
be there afterwards, and nothing may be half-applied or corrupt.

Each writer is its own user (dev login) and issues one request at a time, so the test keeps
an exact model of that user's documents: a write answered 200 moves the model to the
write's intended state (and the answer itself must show that state). A write whose answer
was lost to the kill is *uncertain*: once the server is back, the writer reads every
document the write touched and the observed set must be exactly the state before the write
or exactly the state after it, for all those documents together (a batch of inserts and an
update is all-or-nothing); the model then adopts what was observed. At the end, every
user's documents read through the API must equal the model, and the database, read
directly after a last SIGKILL, must hold only documents whose JSON parses and whose system
fields agree with their row.

Knobs (environment; CI uses the defaults, about 5 s per backend):
``MINIBASE_CRASH_SEED`` (random if unset; always printed), ``MINIBASE_CRASH_CYCLES`` (kills
per backend, default 3), ``MINIBASE_CRASH_WRITERS`` (default 4), ``MINIBASE_CRASH_MAX_UP``
(the longest time the server runs before a kill, default 1.2 s).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.fakes.server import free_port

MINIBASE = [sys.executable, "-m", "minibase.cli"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("ALIPAY_", "MINIBASE_"))}
COLLECTION = "docs"
START_TIMEOUT = 30.0
RESYNC_TIMEOUT = 60.0  # a writer gives up reading back an uncertain write after this long

SEED = int(os.environ.get("MINIBASE_CRASH_SEED") or random.SystemRandom().randrange(1 << 32))
CYCLES = int(os.environ.get("MINIBASE_CRASH_CYCLES", "3"))
WRITERS = int(os.environ.get("MINIBASE_CRASH_WRITERS", "4"))
MAX_UP = float(os.environ.get("MINIBASE_CRASH_MAX_UP", "1.2"))
MIN_UP = min(0.2, MAX_UP)

CONFIG = """\
[app]
name = "crash"
service = "crash-svc"
default_collection = "{collection}"
secret = "crash-safety-secret-0123456789-abcdefghij"

[auth.dev]
enabled = true

[database]
url = "{url}"

# Off: the writers call as fast as the server answers (the limits are not under test here).
[rate_limits]
login_per_ip = "off"
login_per_subject = "off"
calls_per_user = "off"
calls_per_ip = "off"

[collections.{collection}]
read = "owner"
write = "owner"
indexes = [["n"]]
"""

SYSTEM = ("id", "uid", "_version", "_created", "_updated")

# A document as the model knows it: (version, user fields), or None when absent.
State = tuple[int, dict[str, Any]] | None


def _ts(value: Any) -> datetime:
    assert isinstance(value, str) and value.endswith("Z"), value
    return datetime.fromisoformat(value[:-1] + "+00:00")


def split(doc: Any, uid: str, doc_id: str) -> tuple[int, dict[str, Any]]:
    """Check a document's system fields and return (version, user fields)."""
    assert isinstance(doc, dict), doc
    assert doc.get("id") == doc_id and doc.get("uid") == uid, doc
    version = doc.get("_version")
    assert isinstance(version, int) and not isinstance(version, bool) and version >= 1, doc
    assert _ts(doc.get("_created")) <= _ts(doc.get("_updated")), doc
    return version, {k: v for k, v in doc.items() if k not in SYSTEM}


@dataclass
class Write:
    """One request and what it does to the model: ``before`` → ``after`` for every id it
    touches (``expect`` checks the answer of an acknowledged one)."""

    kind: str
    event: dict[str, Any]
    before: dict[str, State]
    after: dict[str, State]


@dataclass
class Stats:
    acked: Counter[str] = field(default_factory=Counter)
    uncertain_applied: int = 0
    uncertain_absent: int = 0
    kills: int = 0
    transport_errors: int = 0


class Server:
    """``minibase serve`` as a child process that can be killed and started again."""

    def __init__(self, tmp_path: Path, url: str) -> None:
        self.config = tmp_path / "minibase.toml"
        self.config.write_text(CONFIG.format(collection=COLLECTION, url=url))
        self.data = tmp_path / "data"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    *MINIBASE,
                    "serve",
                    "--config",
                    str(self.config),
                    "--data",
                    str(self.data),
                    "--port",
                    str(self.port),
                    "--log-level",
                    "warning",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=ENV,
            )

    async def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        async with httpx.AsyncClient(base_url=self.base, timeout=2) as http:
            while True:
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                assert self.proc is not None and self.proc.poll() is None, self.output()
                assert time.monotonic() < deadline, "the server did not start:\n" + self.output()
                await asyncio.sleep(0.02)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(10) == -signal.SIGKILL

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:  # pragma: no cover - only when shutdown hangs
                self.proc.kill()
                self.proc.wait(5)

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no server log)"


class Writer:
    """One user writing its own documents, one request at a time."""

    def __init__(self, name: str, base: str, rng: random.Random, stats: Stats) -> None:
        self.name = name
        self.rng = rng
        self.stats = stats
        self.http = httpx.AsyncClient(base_url=base, timeout=10)
        self.uid = ""
        self.docs: dict[str, tuple[int, dict[str, Any]]] = {}
        self.seq = 0

    async def login(self) -> None:
        r = await self.http.post("/session", json={"authCode": f"dev:{self.name}"})
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        self.uid = data["user"]["uid"]
        self.http.headers["authorization"] = f"Bearer {data['sessionId']}"

    async def db(self, event: dict[str, Any]) -> httpx.Response:
        return await self.http.post("/invoke/db", json={"collection": COLLECTION, **event})

    def _new_id(self) -> str:
        self.seq += 1
        return f"{self.name}-{self.seq}"

    def next_write(self) -> Write:
        """A random write whose every effect the model can predict."""
        existing = sorted(self.docs)
        roll = self.rng.random()
        event: dict[str, Any]
        fields: dict[str, Any]
        if not existing or roll < 0.25:
            doc_id = self._new_id()
            fields = {"n": 0, "kind": "insert", "pad": "x" * self.rng.randrange(0, 200)}
            event = {"op": "insert", "obj": {"id": doc_id, **fields}}
            return Write("insert", event, {doc_id: None}, {doc_id: (1, fields)})
        doc_id = self.rng.choice(existing)
        version, fields = self.docs[doc_id]
        if roll < 0.55:
            bumped = {**fields, "n": fields.get("n", 0) + 1}
            event = {"op": "update", "id": doc_id, "inc": {"n": 1}}
            kind = "update"
            if self.rng.random() < 0.5:
                event["ifVersion"] = version
                kind = "update-ifVersion"
            return Write(kind, event, {doc_id: (version, fields)}, {doc_id: (version + 1, bumped)})
        if roll < 0.7:
            new: dict[str, Any] = {"n": self.rng.randrange(1000), "kind": "put", "seq": self.seq}
            event = {"op": "put", "obj": {"id": doc_id, **new}}
            return Write("put", event, {doc_id: (version, fields)}, {doc_id: (version + 1, new)})
        if roll < 0.75:
            return Write(
                "remove", {"op": "remove", "id": doc_id}, {doc_id: (version, fields)}, {doc_id: None}
            )
        # A batch: three inserts tagged with the batch, plus an update of an existing
        # document: all four or none.
        tag = f"batch-{self.name}-{self.seq}"
        ops: list[dict[str, Any]] = []
        before: dict[str, State] = {doc_id: (version, fields)}
        after: dict[str, State] = {doc_id: (version + 1, {**fields, "batch": tag})}
        for _ in range(3):
            new_id = self._new_id()
            new_fields = {"n": 0, "kind": "batch", "batch": tag}
            ops.append({"op": "insert", "obj": {"id": new_id, **new_fields}})
            before[new_id] = None
            after[new_id] = (1, new_fields)
        ops.append({"op": "update", "id": doc_id, "set": {"batch": tag}})
        return Write("batch", {"op": "batch", "ops": ops}, before, after)

    def _adopt(self, states: dict[str, State]) -> None:
        for doc_id, state in states.items():
            if state is None:
                self.docs.pop(doc_id, None)
            else:
                self.docs[doc_id] = state

    def _check_answer(self, w: Write, data: Any) -> None:
        if w.kind in ("insert", "update", "update-ifVersion"):
            (doc_id,) = w.after
            assert split(data, self.uid, doc_id) == w.after[doc_id], (w, data)
        elif w.kind == "batch":
            ids = [op["obj"]["id"] for op in w.event["ops"][:3]] + [w.event["ops"][3]["id"]]
            assert isinstance(data, list) and len(data) == 4, data
            for doc_id, doc in zip(ids, data, strict=True):
                assert split(doc, self.uid, doc_id) == w.after[doc_id], (w, data)
        else:  # put and remove answer null
            assert data is None, data

    async def read(self, doc_id: str) -> State:
        r = await self.db({"op": "get", "id": doc_id})
        assert r.status_code == 200, r.text
        doc = r.json()["data"]
        return None if doc is None else split(doc, self.uid, doc_id)

    async def resync(self, w: Write) -> None:
        """The server lost the answer to ``w``: once it is back, ``w`` is found applied
        whole or not at all."""
        deadline = time.monotonic() + RESYNC_TIMEOUT
        while True:
            try:
                observed = {doc_id: await self.read(doc_id) for doc_id in w.before}
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, f"{self.name}: the server did not come back"
                await asyncio.sleep(0.05)
        assert observed in (w.before, w.after), (
            f"{self.name}: {w.kind} was half-applied, or an acknowledged write was lost: before={w.before} after={w.after}"
            f" observed={observed}"
        )
        if observed == w.after:
            self.stats.uncertain_applied += 1
        else:
            self.stats.uncertain_absent += 1
        self._adopt(observed)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            w = self.next_write()
            try:
                r = await self.db(w.event)
            except httpx.TransportError:
                self.stats.transport_errors += 1
                await self.resync(w)
                continue
            # Never an error: the model is exact, so every write is valid when sent.
            assert r.status_code == 200, (w.event, r.status_code, r.text)
            self._check_answer(w, r.json()["data"])
            self._adopt(w.after)
            self.stats.acked[w.kind] += 1

    async def verify(self) -> None:
        """Every document of this user, read through the API, equals the model."""
        seen: dict[str, State] = {}
        cursor = None
        while True:
            event: dict[str, Any] = {"op": "query", "limit": 1000}
            if cursor:
                event["cursor"] = cursor
            r = await self.db(event)
            assert r.status_code == 200, r.text
            body = r.json()
            for doc in body["data"]:
                seen[doc["id"]] = split(doc, self.uid, doc["id"])
            cursor = body.get("next")
            if not cursor:
                break
        assert seen == self.docs, f"{self.name}: the documents differ from the acknowledged writes"


def _check_row(uid: str, doc_id: str, version: int, created: str, updated: str, body: str) -> Any:
    doc = json.loads(body)
    split(doc, uid, doc_id)
    assert (doc["_version"], doc["_created"], doc["_updated"]) == (version, created, updated), doc
    return doc


def check_sqlite(path: Path, writers: list[Writer]) -> int:
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = conn.execute(
            "SELECT uid, id, version, created, updated, body FROM documents WHERE collection = ?",
            (COLLECTION,),
        ).fetchall()
    finally:
        conn.close()
    return _compare_rows(rows, writers)


async def check_postgres(url: str, writers: list[Writer]) -> int:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT uid, id, version, created, updated, body::text FROM documents WHERE collection = $1",
            COLLECTION,
        )
    finally:
        await conn.close()
    return _compare_rows([tuple(r) for r in rows], writers)


def _compare_rows(rows: list[tuple[Any, ...]], writers: list[Writer]) -> int:
    """The database's rows, read directly, are exactly the model's documents."""
    stored: dict[tuple[str, str], State] = {}
    for uid, doc_id, version, created, updated, body in rows:
        doc = _check_row(uid, doc_id, version, created, updated, body)
        stored[(uid, doc_id)] = split(doc, uid, doc_id)
    expected = {(w.uid, doc_id): state for w in writers for doc_id, state in w.docs.items()}
    assert stored == expected
    return len(stored)


async def crash_loop(server: Server, rng: random.Random) -> tuple[Stats, list[Writer]]:
    stats = Stats()
    server.start()
    await server.wait_healthy()
    writers = [Writer(f"w{i}", server.base, random.Random(rng.random()), stats) for i in range(WRITERS)]
    try:
        for w in writers:
            await w.login()
        stop = asyncio.Event()
        tasks = [asyncio.create_task(w.run(stop)) for w in writers]
        try:
            for _ in range(CYCLES):
                await asyncio.sleep(rng.uniform(MIN_UP, MAX_UP))
                for t in tasks:  # a writer's failed check ends the test at once
                    if t.done():
                        t.result()
                server.kill()
                stats.kills += 1
                # Down for a moment: writers' requests now fail to connect.
                await asyncio.sleep(rng.uniform(0.0, 0.2))
                server.start()
                await server.wait_healthy()
            # Let every writer make progress after the last restart, then stop them.
            before = sum(stats.acked.values())
            deadline = time.monotonic() + RESYNC_TIMEOUT
            while sum(stats.acked.values()) < before + 10 * WRITERS and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for w in writers:
            await w.verify()
    finally:
        for w in writers:
            await w.http.aclose()
    return stats, writers


@pytest.fixture
def db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "sqlite":
        yield "sqlite:///minibase.db"
    else:
        yield request.getfixturevalue("pg_url")


@pytest.mark.slow
@pytest.mark.timeout(90 + CYCLES * (MAX_UP + 15))
@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
def test_acknowledged_writes_survive_sigkill(db_url: str, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    print(f"crash safety: seed {SEED} (MINIBASE_CRASH_SEED), {CYCLES} kills, {WRITERS} writers")
    server = Server(tmp_path, db_url)
    try:
        started = time.monotonic()
        stats, writers = asyncio.run(crash_loop(server, rng))
        elapsed = time.monotonic() - started
        # One last SIGKILL: the database is read directly as the crash left it.
        server.kill()
    finally:
        server.stop()
    log = server.output()
    assert "Traceback" not in log, log

    if db_url.startswith("sqlite"):
        n_docs = check_sqlite(server.data / "minibase.db", writers)
    else:
        n_docs = asyncio.run(check_postgres(db_url, writers))

    acked = sum(stats.acked.values())
    print(
        f"crash safety [{db_url.split(':')[0]}]: {elapsed:.1f} s, {stats.kills} SIGKILLs, {acked} acknowledged"
        f" writes ({dict(stats.acked)}), {stats.transport_errors} lost answers: {stats.uncertain_applied}"
        f" applied whole, {stats.uncertain_absent} not applied; {n_docs} documents verified"
    )
    assert stats.kills == CYCLES
    # The writers did real work, and every kill cut them off (mid-request or while down).
    assert acked >= 20 * CYCLES, stats
    assert stats.transport_errors >= stats.kills, stats
    assert all(stats.acked[k] > 0 for k in ("insert", "update", "put", "batch")), stats
