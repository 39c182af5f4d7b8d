"""Load test: many concurrent clients against one ``minibase serve``, and a database restart
in the middle of it.

    .venv/bin/python bench/load.py                                   # 100 clients, 60 s, SQLite then PostgreSQL
    .venv/bin/python bench/load.py --restart-db-at 20                # plus a PostgreSQL run restarted at 20 s
    .venv/bin/python bench/load.py --clients 10 --duration 3 --backends sqlite --json out.json

Each client is its own user: it logs in (dev provider), creates one document, then sends
requests back to back for ``--duration`` seconds, about 70 % reads (get, query and count of
its own todos, a page of everyone's public posts) and 30 % writes (insert, an ``inc``
update, a public post, a batch of two inserts). Every answer is checked: a 200 must carry
the right data (the caller's own documents, versions never behind what it was told
before), an error must be a clean error envelope. Afterwards every acknowledged write is
read back. The ``--restart-db-at`` run stops PostgreSQL (``pg_ctl stop -m immediate`` by
default, a crash as clients see it) at that second, keeps it down for ``--outage`` seconds,
starts it again, and reports the errors of the outage (they must all be clean 5xx error
envelopes, none a hang past ``--timeout``), how soon after PostgreSQL was back requests
succeeded again, and whether every acknowledged write survived. A run with errors, or the
restart run with an unclean error, a lost write or no recovery, makes the exit status 1.

The load comes from wrk (``bench/wrk/load.lua``, one connection per client) when it is
installed, so the figures measure the server rather than a Python load generator;
``--driver python`` uses the httpx clients instead (bench/README.md lists the differences).

Results go to stdout as markdown (``--markdown PATH`` also writes them to a file,
``--json PATH`` as JSON); progress to stderr. Everything started is stopped, and temp dirs
removed, on exit, failure or Ctrl-C. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/load.py` puts bench/ first, not the repo root
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from tests.support.pg import PgServer, find_pg_bindir  # noqa: E402

HOST = "127.0.0.1"
TODOS = "todo_list"
POSTS = "posts"
START_TIMEOUT = 30.0
RECOVERY_LIMIT = 5.0  # seconds after PostgreSQL is back by which requests must succeed again
VERIFY_TIMEOUT = 120.0

CONFIG = """\
# Written by bench/load.py.
[app]
name = "load"
service = "load-svc"
default_collection = "{todos}"
secret = "load-test-secret-0123456789-abcdefghijklmn"

[auth.dev]
enabled = true

[database]
url = "{url}"

# Every client logs in from 127.0.0.1: per-address login limits would refuse most of them.
# The per-user call limit stays on (its bookkeeping is part of every call), set high enough
# that no client reaches it.
[rate_limits]
login_per_ip = "off"
calls_per_user = "1000/s"

[collections.{todos}]
read = "owner"
write = "owner"
indexes = [["n"]]

[collections.{posts}]
read = "public"
write = "owner"
indexes = [["n"]]
"""

# (operation, weight): 70 % reads, 30 % writes.
MIX: tuple[tuple[str, int], ...] = (
    ("get", 30),
    ("query", 20),
    ("posts", 15),
    ("count", 5),
    ("insert", 12),
    ("update", 10),
    ("post", 5),
    ("batch", 3),
)
WRITES = frozenset({"insert", "update", "post", "batch"})


class LoadError(Exception):
    """A setup failure (no PostgreSQL, a server that does not start)."""


# ------------------------------------------------------------------------- processes


_children: list[subprocess.Popen[bytes]] = []


def stop_process(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(grace)
    if proc in _children:
        _children.remove(proc)


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Minibase:
    """``minibase serve`` in its own process group, logging to ``work/server.log``."""

    def __init__(self, work: Path, url: str, workers: int | None = None) -> None:
        self.config = work / "minibase.toml"
        self.config.write_text(CONFIG.format(todos=TODOS, posts=POSTS, url=url))
        self.log = work / "server.log"
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        argv = [
            sys.executable,
            "-m",
            "minibase.cli",
            "serve",
            "--config",
            str(self.config),
            "--data",
            str(work / "data"),
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            *(["--workers", str(workers)] if workers else []),
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("MINIBASE_")}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=ROOT,
                env=env,
            )
        _children.append(self.proc)

    async def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        async with httpx.AsyncClient(base_url=self.base, timeout=2) as http:
            while True:
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if self.proc.poll() is not None:
                    raise LoadError(f"minibase exited ({self.proc.returncode}):\n{self.tail()}")
                if time.monotonic() > deadline:
                    raise LoadError(f"minibase did not start in {START_TIMEOUT:.0f} s:\n{self.tail()}")
                await asyncio.sleep(0.05)

    def stop(self) -> None:
        stop_process(self.proc)

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process and its children (serve's workers) so far
    (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (OSError, IndexError):
        return None
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total + sum(cpu_seconds(int(c)) or 0.0 for c in children)


def start_pg() -> PgServer:
    """A throwaway PostgreSQL cluster (``tests.support.pg``: RAM disk when roomy, fsync off)."""
    bindir = find_pg_bindir()
    if bindir is None:
        raise LoadError(
            "PostgreSQL server binaries were not found (pg_config --bindir, /usr/lib/postgresql/*/bin);"
            " install them (Debian: apt-get install -y postgresql) or pass --backends sqlite"
        )
    server = PgServer(bindir)
    server.launch()
    return server


# ---------------------------------------------------------------------------- clients


@dataclass
class Failure:
    """One request that did not succeed."""

    start: float  # seconds since the run's t0
    end: float
    op: str
    key: str  # "500 Internal", "transport ReadTimeout", "bad 200", ...
    clean: bool  # a 5xx with a well-formed error envelope
    detail: str


@dataclass
class Recorder:
    t0: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests
    ok_ends: list[float] = field(default_factory=list)  # end times of successes, since t0
    by_op: dict[str, list[float]] = field(default_factory=dict)  # op -> latencies of successes
    failures: list[Failure] = field(default_factory=list)


def _clean_error(r: httpx.Response) -> bool:
    """A 5xx answer carrying the error envelope (docs/http-api.md#envelopes)."""
    if r.status_code < 500:
        return False
    try:
        err = r.json()["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return all(isinstance(err.get(k), str) and err.get(k) for k in ("code", "message", "requestId"))


class BadAnswer(Exception):
    """A 200 whose data is not what the request must return."""


class Client:
    def __init__(
        self, index: int, http: httpx.AsyncClient, rng: random.Random, rec: Recorder, timeout: float
    ) -> None:
        self.name = f"load{index}"
        self.timeout = timeout
        self.http = http
        self.rng = rng
        self.rec = rec
        self.headers: dict[str, str] = {}
        self.uid = ""
        self.seq = 0
        # Acknowledged state: todo id -> the highest version an answer showed.
        self.todos: dict[str, int] = {}
        self.posts: set[str] = set()
        self.ops = [op for op, _ in MIX]
        self.weights = [w for _, w in MIX]

    async def db(self, event: dict[str, Any]) -> httpx.Response:
        return await self.http.post("/invoke/db", json=event, headers=self.headers)

    async def login(self) -> None:
        r = await self.http.post("/session", json={"authCode": f"dev:{self.name}"})
        if r.status_code != 200:
            raise LoadError(f"login of {self.name} failed: {r.status_code} {r.text[:300]}")
        data = r.json()["data"]
        self.uid = data["user"]["uid"]
        self.headers = {"authorization": f"Bearer {data['sessionId']}"}
        r = await self.db(self._insert_event())
        if r.status_code != 200:
            raise LoadError(f"first insert of {self.name} failed: {r.status_code} {r.text[:300]}")
        self._todo(r.json()["data"], expect_version=1)

    def _new_id(self) -> str:
        self.seq += 1
        return f"{self.name}-{self.seq}"

    def _insert_event(self) -> dict[str, Any]:
        return {"op": "insert", "collection": TODOS, "obj": {"id": self._new_id(), "n": 0, "title": "load"}}

    def _todo(self, doc: Any, expect_version: int | None = None, at_least: int = 1) -> None:
        """Check one of this client's todos and remember its version."""
        if not isinstance(doc, dict) or doc.get("uid") != self.uid or not isinstance(doc.get("id"), str):
            raise BadAnswer(f"not one of my todos: {doc!r:.200}")
        version = doc.get("_version")
        if not isinstance(version, int) or version < max(at_least, self.todos.get(doc["id"], 1)):
            raise BadAnswer(f"version went back: {doc!r:.200} (known {self.todos.get(doc['id'])})")
        if expect_version is not None and version != expect_version:
            raise BadAnswer(f"expected version {expect_version}: {doc!r:.200}")
        # Every update adds 1 to n and to the version: a half-applied one would break this.
        if doc.get("n") != version - 1:
            raise BadAnswer(f"n is not version - 1: {doc!r:.200}")
        self.todos[doc["id"]] = version

    def _event(self, op: str) -> dict[str, Any]:
        if op == "get":
            return {"op": "get", "collection": TODOS, "id": self.rng.choice(list(self.todos))}
        if op == "query":
            return {"op": "query", "collection": TODOS, "orderBy": [["n", "desc"]], "limit": 20}
        if op == "posts":
            return {"op": "query", "collection": POSTS, "orderBy": [["n", "desc"]], "limit": 20}
        if op == "count":
            return {"op": "count", "collection": TODOS}
        if op == "insert":
            return self._insert_event()
        if op == "update":
            return {
                "op": "update",
                "collection": TODOS,
                "id": self.rng.choice(list(self.todos)),
                "inc": {"n": 1},
            }
        if op == "post":
            obj = {"id": self._new_id(), "by": self.name, "n": self.rng.randrange(1000), "text": "hello"}
            return {"op": "insert", "collection": POSTS, "obj": obj}
        ops = [{"op": "insert", "obj": {"id": self._new_id(), "n": 0, "title": "batch"}} for _ in range(2)]
        return {"op": "batch", "collection": TODOS, "ops": ops}

    def _check(self, op: str, event: dict[str, Any], data: Any) -> None:
        if op == "get":
            if data is None or data.get("id") != event["id"]:
                raise BadAnswer(f"get {event['id']}: {data!r:.200}")
            self._todo(data)
        elif op == "query":
            if not isinstance(data, list) or len(data) > 20:
                raise BadAnswer(f"query: {data!r:.200}")
            for doc in data:
                self._todo(doc)
            ns = [d["n"] for d in data]
            if ns != sorted(ns, reverse=True):
                raise BadAnswer("query: not in the order asked for")
        elif op == "posts":
            if not isinstance(data, list) or len(data) > 20:
                raise BadAnswer(f"posts: {data!r:.200}")
            for doc in data:
                if not isinstance(doc, dict) or not isinstance(doc.get("uid"), str) or "by" not in doc:
                    raise BadAnswer(f"posts: {doc!r:.200}")
        elif op == "count":
            if not isinstance(data, int) or data < len(self.todos):
                raise BadAnswer(f"count {data!r} < {len(self.todos)} acknowledged todos")
        elif op == "insert":
            self._todo(data, expect_version=1)
        elif op == "update":
            self._todo(data, at_least=self.todos[event["id"]] + 1)
        elif op == "post":
            if (
                not isinstance(data, dict)
                or data.get("id") != event["obj"]["id"]
                or data.get("uid") != self.uid
            ):
                raise BadAnswer(f"post: {data!r:.200}")
            self.posts.add(data["id"])
        else:  # batch
            if not isinstance(data, list) or len(data) != 2:
                raise BadAnswer(f"batch: {data!r:.200}")
            for doc in data:
                self._todo(doc, expect_version=1)

    async def run(self, deadline: float) -> None:
        rec, clock = self.rec, time.perf_counter
        while clock() < deadline:
            op = self.rng.choices(self.ops, self.weights)[0]
            event = self._event(op)
            start = clock()
            try:
                # httpx's timeout bounds each phase (pool, connect, write, read) on its
                # own; a request must also finish as a whole within it.
                r = await asyncio.wait_for(self.db(event), self.timeout)
            except (httpx.TransportError, TimeoutError) as e:
                end = clock()
                key = f"transport {type(e).__name__}" if isinstance(e, httpx.TransportError) else "timeout"
                detail = str(e)[:200] or f"no answer within {self.timeout:g} s"
                rec.failures.append(Failure(start - rec.t0, end - rec.t0, op, key, False, detail))
                await asyncio.sleep(0.05)  # a refused connection fails at once: do not spin
                continue
            end = clock()
            if r.status_code != 200:
                code = ""
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    code = r.json()["error"]["code"]
                rec.failures.append(
                    Failure(
                        start - rec.t0,
                        end - rec.t0,
                        op,
                        f"{r.status_code} {code}".strip(),
                        _clean_error(r),
                        r.text[:200],
                    )
                )
                continue
            try:
                self._check(op, event, r.json()["data"])
            except (BadAnswer, ValueError, KeyError, TypeError) as e:
                rec.failures.append(Failure(start - rec.t0, end - rec.t0, op, "bad 200", False, str(e)[:300]))
                continue
            rec.latencies.append(end - start)
            rec.ok_ends.append(end - rec.t0)
            rec.by_op.setdefault(op, []).append(end - start)

    async def _read_all(self, collection: str, where: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        docs: list[dict[str, Any]] = []
        cursor = None
        while True:
            event: dict[str, Any] = {"op": "query", "collection": collection, "limit": 1000}
            if where:
                event["where"] = where
            if cursor:
                event["cursor"] = cursor
            r = await self.db(event)
            if r.status_code != 200:
                raise LoadError(f"verification read failed: {r.status_code} {r.text[:300]}")
            body = r.json()
            docs += body["data"]
            cursor = body.get("next")
            if not cursor:
                return docs

    async def verify(self) -> tuple[int, list[str]]:
        """Read back every acknowledged write: (writes checked, problems)."""
        problems: list[str] = []
        stored = {d["id"]: d for d in await self._read_all(TODOS)}
        for doc_id, version in self.todos.items():
            doc = stored.get(doc_id)
            if doc is None:
                problems.append(f"{self.name}: todo {doc_id} (acknowledged at version {version}) is gone")
            elif doc.get("_version", 0) < version or doc.get("n") != doc.get("_version", 0) - 1:
                problems.append(f"{self.name}: todo {doc_id} acknowledged at version {version}, stored {doc}")
        for doc in stored.values():
            if doc.get("uid") != self.uid or doc.get("n") != doc.get("_version", 0) - 1:
                problems.append(f"{self.name}: corrupt todo {doc}")
        posts = {d["id"] for d in await self._read_all(POSTS, {"by": self.name})}
        problems += [f"{self.name}: post {p} is gone" for p in sorted(self.posts - posts)]
        return len(self.todos) + len(self.posts), problems


# ------------------------------------------------------------------------------- runs


@dataclass
class Restart:
    mode: str
    stop_at: float  # seconds since t0: pg_ctl stop issued
    down_at: float  # pg_ctl stop returned
    up_at: float  # pg_ctl start returned (accepting connections)
    first_error: float | None = None
    last_error: float | None = None  # end of the last failed request
    first_ok_after_up: float | None = None
    recovery_s: float | None = None  # last failure's end (or the first success) after up_at
    errors_outside_window: int = 0
    errors_started_after_up: int = 0  # requests sent once PostgreSQL was back that still failed


@dataclass
class RunResult:
    name: str
    backend: str
    clients: int
    duration: float
    requests: int
    ok: int
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]
    unclean: int
    by_op: dict[str, tuple[int, float, float]]  # op -> (successes, p50 ms, p99 ms)
    writes_checked: int
    lost: list[str]
    first_errors: list[str]
    unclean_errors: list[str]
    restart: Restart | None = None
    server_cpu: float | None = None  # CPU seconds per wall second of minibase serve
    client_cpu: float | None = None  # the same for this load generator
    ratio: float | None = None  # rps / the same backend's run without restart
    passed: bool = False
    verdict: str = ""


def _pct(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), math.ceil(q * len(sorted_values))))
    return sorted_values[rank - 1]


async def _restart_pg(pg: PgServer, at: float, outage: float, mode: str, rec: Recorder) -> Restart:
    await asyncio.sleep(max(0.0, rec.t0 + at - time.perf_counter()))
    stop_at = time.perf_counter() - rec.t0
    print(f"load: stopping PostgreSQL (-m {mode}) at {stop_at:.1f} s", file=sys.stderr, flush=True)
    await asyncio.to_thread(pg.stop, mode)
    down_at = time.perf_counter() - rec.t0
    await asyncio.sleep(outage)
    await asyncio.to_thread(pg.start)
    up_at = time.perf_counter() - rec.t0
    print(f"load: PostgreSQL is back at {up_at:.1f} s", file=sys.stderr, flush=True)
    return Restart(mode, stop_at, down_at, up_at)


async def run_load(
    name: str,
    backend: str,
    base: str,
    server_pid: int,
    args: argparse.Namespace,
    pg: PgServer | None = None,
    restart_at: float | None = None,
) -> RunResult:
    rec = Recorder()
    # One connection per client, as separate devices have: a pool shared by all of them
    # costs httpx time per request that grows with the number of connections. Idle
    # connections are dropped before uvicorn's 5 s keep-alive timeout closes them, so that a
    # request is never sent on a connection the server is closing at that moment.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=2.0)
    rng = random.Random(f"{args.seed}:{name}")
    async with contextlib.AsyncExitStack() as stack:
        clients = []
        for i in range(args.clients):
            http = await stack.enter_async_context(
                httpx.AsyncClient(base_url=base, timeout=args.timeout, limits=limits)
            )
            clients.append(Client(i, http, random.Random(rng.random()), rec, args.timeout))
        await asyncio.gather(*(c.login() for c in clients))
        print(f"load: {name}: {args.clients} clients logged in; {args.duration:g} s of load", file=sys.stderr)
        cpu0 = (cpu_seconds(server_pid), time.process_time())
        rec.t0 = time.perf_counter()
        deadline = rec.t0 + args.duration
        restarter = None
        if restart_at is not None:
            assert pg is not None
            restarter = asyncio.create_task(_restart_pg(pg, restart_at, args.outage, args.restart_mode, rec))
        wrk: WrkOutcome | None = None
        if args.driver == "wrk":
            wrk = await asyncio.to_thread(run_wrk, clients, base, args, rec)
        else:
            await asyncio.gather(*(c.run(deadline) for c in clients))
        elapsed = time.perf_counter() - rec.t0
        cpu1 = (cpu_seconds(server_pid), time.process_time())
        if wrk is not None:
            cpu0, cpu1 = (cpu0[0], 0.0), (cpu1[0], wrk.cpu)
        restart = await restarter if restarter is not None else None

        # Read back every acknowledged write (after the restart: from the restarted server).
        checked, lost = 0, []
        results = await asyncio.wait_for(asyncio.gather(*(c.verify() for c in clients)), VERIFY_TIMEOUT)
        for n, problems in results:
            checked += n
            lost += problems

    lat = sorted(rec.latencies)
    errors = Counter(f.key for f in rec.failures)
    ok = len(lat) if wrk is None else wrk.ok
    failed = len(rec.failures) if wrk is None else wrk.failed
    if wrk is not None:
        errors = wrk.errors
        elapsed = wrk.seconds
    result = RunResult(
        name=name,
        backend=backend,
        clients=args.clients,
        duration=round(elapsed, 2),
        requests=ok + failed,
        ok=ok,
        rps=round((ok + failed) / elapsed, 1),
        p50_ms=round(_pct(lat, 0.50) * 1000, 2) if wrk is None else wrk.p50_ms,
        p99_ms=round(_pct(lat, 0.99) * 1000, 2) if wrk is None else wrk.p99_ms,
        max_ms=round((lat[-1] if lat else float("nan")) * 1000, 1) if wrk is None else wrk.max_ms,
        errors=dict(errors.most_common()),
        unclean=sum(1 for f in rec.failures if not f.clean),
        by_op={
            op: (len(v), round(_pct(sorted(v), 0.5) * 1000, 2), round(_pct(sorted(v), 0.99) * 1000, 2))
            for op, v in sorted(rec.by_op.items())
        }
        if wrk is None
        else {op: (n, -1.0, -1.0) for op, n in sorted(wrk.sent.items())},
        writes_checked=checked,
        lost=lost,
        first_errors=[f"{f.op} at {f.end:.2f} s: {f.key}: {f.detail}" for f in rec.failures[:5]]
        if wrk is None
        else wrk.first_bad,
        unclean_errors=[
            f"{f.op} at {f.start:.2f}-{f.end:.2f} s: {f.key}: {f.detail}" for f in rec.failures if not f.clean
        ][:10],
        restart=restart,
        server_cpu=None if cpu0[0] is None or cpu1[0] is None else round((cpu1[0] - cpu0[0]) / elapsed, 2),
        client_cpu=round((cpu1[1] - cpu0[1]) / elapsed, 2),
    )
    if restart is not None:
        _judge_restart(result, rec, restart)
    elif result.errors or lost:
        result.verdict = f"{sum(errors.values())} errors, {len(lost)} lost writes (target: 0)"
    else:
        result.passed, result.verdict = True, "no errors, no lost writes"
    return result


WRK_LUA = ROOT / "bench" / "wrk" / "load.lua"


@dataclass
class WrkOutcome:
    ok: int
    failed: int
    seconds: float
    sent: dict[str, int]
    errors: Counter[str]
    first_bad: list[str]
    p50_ms: float
    p99_ms: float
    max_ms: float
    cpu: float  # wrk's CPU seconds


def run_wrk(clients: list[Client], base: str, args: argparse.Namespace, rec: Recorder) -> WrkOutcome:
    """Drive the load with wrk (bench/wrk/load.lua) instead of the Python clients: one
    connection per client, the clients' users round robin, every answer checked in Lua;
    what the answers acknowledged goes back into the clients for the read-back."""
    import resource

    with tempfile.TemporaryDirectory(prefix="minibase-wrk-") as tmp:
        users, out = Path(tmp) / "users.txt", Path(tmp) / "out.txt"
        users.write_text(
            "".join(
                f"{c.headers['authorization'][7:]} {c.uid} {c.name} {next(iter(c.todos))}\n" for c in clients
            )
        )
        argv = ["wrk", f"-t{args.wrk_threads}", f"-c{args.clients}", f"-d{max(1, round(args.duration))}s"]
        argv += ["--timeout", f"{max(1, round(args.timeout))}s", "-s", str(WRK_LUA), base + "/invoke/db"]
        env = {**os.environ, "LOAD_USERS": str(users), "LOAD_OUT": str(out), "LOAD_SEED": str(args.seed)}
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.time() - (time.perf_counter() - rec.t0)  # the run's t0 as a wall-clock time
        proc = subprocess.run(
            argv, capture_output=True, text=True, env=env, check=False, timeout=args.duration + 120
        )
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0 or not out.exists():
            raise LoadError(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        lines = out.read_text().splitlines()
    by_uid = {c.uid: c for c in clients}
    ok = bad = 0
    sent: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    first_bad: list[str] = []
    p50 = p99 = mx = float("nan")
    for line in lines:
        kind, _, rest = line.partition(" ")
        f = rest.split(" ")
        if kind == "S":
            ok, bad = ok + int(f[0]), bad + int(f[1])
        elif kind == "N":
            sent[f[0]] += int(f[1])
        elif kind == "T":
            c = by_uid[f[1]]
            c.todos[f[0]] = max(c.todos.get(f[0], 0), int(f[2]))
        elif kind == "P":
            by_uid[f[1]].posts.add(f[0])
        elif kind == "O":
            rec.ok_ends += [int(f[0]) - t0 + 1.0] * int(f[1])  # 1 s resolution: the second's end
        elif kind == "E":
            at = int(f[0]) - t0
            rec.failures.append(Failure(at, at + 1.0, "?", f[3], f[2] == "1", ""))
            errors[f[3]] += 1
        elif kind == "B":
            first_bad.append(rest)
        elif kind == "L":
            p50, p99, mx = (round(float(x) / 1000, 2) for x in f)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", proc.stdout)
    for name, n in zip(("connect", "read", "write", "timeout"), sock.groups() if sock else (), strict=False):
        for _ in range(int(n)):  # no time known: counted outside any outage window, unclean
            rec.failures.append(Failure(-1.0, -1.0, "?", f"transport {name}", False, "wrk socket error"))
        if int(n):
            errors[f"transport {name}"] += int(n)
            bad += int(n)
    secs = re.search(r"requests in ([\d.]+)(us|ms|s|m),", proc.stdout)
    seconds = args.duration
    if secs:
        seconds = float(secs.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[secs.group(2)]
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    return WrkOutcome(ok, bad, seconds, dict(sent), errors, first_bad, p50, p99, mx, cpu)


def _judge_restart(result: RunResult, rec: Recorder, rs: Restart) -> None:
    fails = rec.failures
    if fails:
        rs.first_error = round(min(f.end for f in fails), 3)
        rs.last_error = round(max(f.end for f in fails), 3)
    # The window in which failures are expected: from the stop until RECOVERY_LIMIT after
    # PostgreSQL is back (a request may start just before the stop and end after it).
    window = (rs.stop_at, rs.up_at + RECOVERY_LIMIT)
    rs.errors_outside_window = sum(1 for f in fails if not window[0] <= f.end <= window[1])
    rs.errors_started_after_up = sum(1 for f in fails if f.start >= rs.up_at)
    after = [t for t in rec.ok_ends if t >= rs.up_at]
    rs.first_ok_after_up = round(min(after) - rs.up_at, 3) if after else None
    last_fail = max((f.end for f in fails), default=rs.up_at)
    rs.recovery_s = round(max(0.0, last_fail - rs.up_at), 3)
    recovered = bool(after) and rs.recovery_s <= RECOVERY_LIMIT and any(t > last_fail for t in after)
    problems = []
    if result.unclean:
        problems.append(f"{result.unclean} unclean errors")
    if rs.errors_outside_window:
        problems.append(f"{rs.errors_outside_window} errors outside the outage")
    if not recovered:
        problems.append("did not recover")
    if result.lost:
        problems.append(f"{len(result.lost)} lost writes")
    result.passed = not problems
    result.verdict = "; ".join(problems) or (
        f"{sum(result.errors.values())} clean errors during the outage; recovered"
        f" {rs.recovery_s:.2f} s after PostgreSQL was back; no lost writes"
    )


# ------------------------------------------------------------------------------ report


def _versions() -> str:
    parts = [f"Python {platform.python_version()}", f"SQLite {sqlite3.sqlite_version}"]
    bindir = find_pg_bindir()
    if bindir is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [str(bindir / "postgres"), "--version"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout.strip()
            parts.append(out.replace("postgres (PostgreSQL) ", "PostgreSQL "))
    return ", ".join(parts)


def _driver(args: argparse.Namespace) -> str:
    if args.driver == "wrk":
        return f"wrk, {args.wrk_threads} thread(s), one connection per client, bench/wrk/load.lua"
    return "httpx, one process"


def markdown(results: list[RunResult], args: argparse.Namespace) -> str:
    mix = ", ".join(f"{op} {w}%" for op, w in MIX)
    lines = [
        "# minibase under load (bench/load.py)",
        "",
        f"{args.clients} clients (one user each, dev login), closed loop, {args.duration:g} s per run,"
        f" client timeout {args.timeout:g} s; mix: {mix}. `minibase serve --workers"
        f" {args.workers or 'default'}`; the load generator ({_driver(args)}) shares the"
        f" {os.cpu_count()} CPUs with it. {_versions()}."
        " PostgreSQL: the tests' throwaway cluster (`tests/support/pg.py`: fsync off; a stop and start"
        " of the server process, not of the machine, loses nothing it acknowledged).",
        "",
        "| run | backend | s | requests | req/s | x baseline | p50 ms | p99 ms | max ms | errors | unclean"
        " | writes checked | lost | CPU server/load | result |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else "-"
        lines.append(
            f"| {r.name} | {r.backend} | {r.duration:.1f} | {r.requests:,} | {r.rps:,.0f} | {ratio}"
            f" | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.max_ms:.1f} | {sum(r.errors.values()):,} | {r.unclean}"
            f" | {r.writes_checked:,} | {len(r.lost)} | {r.server_cpu} / {r.client_cpu}"
            f" | {'PASS' if r.passed else 'FAIL'} |"
        )
    lines.append("")
    lines.append(
        "`x baseline`: req/s ÷ the same backend's run without a restart, in this invocation."
        " `CPU server/load`: CPU seconds per second of `minibase serve` and of this load generator"
        " (PostgreSQL's own processes not counted)."
    )
    for r in results:
        lines.append("")
        lines.append(f"**{r.name}**: {r.verdict}.")
        if any(p50 < 0 for _, p50, _ in r.by_op.values()):  # wrk: requests sent per operation
            lines.append(
                "Sent by operation: " + ", ".join(f"{op} {n:,}" for op, (n, _, _) in r.by_op.items()) + "."
            )
        else:
            lines.append(
                "By operation (successes, p50/p99 ms): "
                + ", ".join(f"{op} {n:,} ({p50:.1f}/{p99:.1f})" for op, (n, p50, p99) in r.by_op.items())
                + "."
            )
        if r.errors:
            lines.append("Errors: " + ", ".join(f"`{k}` x {v:,}" for k, v in r.errors.items()) + ".")
        rs = r.restart
        if rs is not None:
            lines.append(
                f"PostgreSQL stopped (`-m {rs.mode}`) at {rs.stop_at:.2f} s, down at {rs.down_at:.2f} s,"
                f" accepting connections again at {rs.up_at:.2f} s (outage {rs.up_at - rs.stop_at:.2f} s)."
            )
            if rs.first_error is not None:
                lines.append(
                    f"Failed requests ended between {rs.first_error:.2f} s and {rs.last_error:.2f} s;"
                    f" {rs.errors_outside_window} outside the outage window; {rs.errors_started_after_up}"
                    " were sent after PostgreSQL was back."
                )
            first_ok = "-" if rs.first_ok_after_up is None else f"{rs.first_ok_after_up:.3f} s"
            lines.append(
                f"First success after PostgreSQL was back: {first_ok}; last failure after it:"
                f" {rs.recovery_s:.3f} s (limit {RECOVERY_LIMIT:g} s)."
            )
        for e in r.first_errors[:3]:
            lines.append(f"- first errors: {e}")
        for e in r.unclean_errors:
            lines.append(f"- UNCLEAN: {e}")
        for p in r.lost[:5]:
            lines.append(f"- LOST: {p}")
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------------- main


@contextlib.contextmanager
def workdir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="minibase-load-"))
    try:
        yield path
    finally:
        if keep:
            print(f"load: kept {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


async def one_run(
    name: str,
    backend: str,
    work: Path,
    url: str,
    args: argparse.Namespace,
    pg: PgServer | None = None,
    restart_at: float | None = None,
) -> RunResult:
    work.mkdir()
    server = Minibase(work, url, args.workers)
    try:
        await server.wait_healthy()
        result = await run_load(name, backend, server.base, server.proc.pid, args, pg, restart_at)
    finally:
        server.stop()
    # An unhandled exception is logged at ERROR (uvicorn's and minibase's own); asyncpg's
    # pool logs its failed reconnects during an outage as WARNINGs with a traceback.
    errors = [line for line in server.tail(100_000).splitlines() if line.startswith(("ERROR", "CRITICAL"))]
    if errors:
        result.passed = False
        result.verdict += f"; the server logged {len(errors)} errors, first: {errors[0][:200]}"
        print(server.tail(200), file=sys.stderr)
    return result


async def main_async(args: argparse.Namespace, work: Path) -> list[RunResult]:
    results: list[RunResult] = []
    if "sqlite" in args.backends:
        results.append(await one_run("sqlite", "sqlite", work / "sqlite", "sqlite:///minibase.db", args))
        if args.restart_db_at is not None:
            print("load: --restart-db-at applies to PostgreSQL only (SQLite is in-process)", file=sys.stderr)
    if "postgres" in args.backends:
        pg = await asyncio.to_thread(start_pg)
        try:
            base_db = pg.create_database("load_base")
            base = await one_run("postgres", "postgres", work / "pg", pg.url_for(base_db), args)
            results.append(base)
            if args.restart_db_at is not None:
                db = pg.create_database("load_restart")
                r = await one_run(
                    f"postgres, restarted at {args.restart_db_at:g} s",
                    "postgres",
                    work / "pg-restart",
                    pg.url_for(db),
                    args,
                    pg,
                    args.restart_db_at,
                )
                r.ratio = round(r.rps / base.rps, 2) if base.rps else None
                results.append(r)
        finally:
            await asyncio.to_thread(pg.destroy)
    return results


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Concurrent clients against one minibase server (bench/README.md)."
    )
    p.add_argument("--clients", type=int, default=100, help="concurrent clients, one user each (default 100)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load per run (default 60)")
    p.add_argument(
        "--backends",
        default="sqlite,postgres",
        help="comma-separated: sqlite, postgres (default both)",
    )
    p.add_argument(
        "--restart-db-at",
        type=float,
        default=None,
        metavar="SECONDS",
        help="add a PostgreSQL run whose database is restarted this many seconds into the load",
    )
    p.add_argument("--restart-mode", choices=["immediate", "fast"], default="immediate")
    p.add_argument("--outage", type=float, default=2.0, help="seconds PostgreSQL stays down (default 2)")
    p.add_argument("--timeout", type=float, default=10.0, help="client timeout per request (default 10 s)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: random; printed)")
    p.add_argument(
        "--driver",
        choices=["wrk", "python"],
        default="wrk" if shutil.which("wrk") else "python",
        help="load generator: wrk (bench/wrk/load.lua; default when installed) or the Python clients",
    )
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1)")
    p.add_argument("--workers", type=int, default=None, help="minibase serve --workers (default: serve's)")
    p.add_argument("--json", type=Path, help="also write the results as JSON to this path")
    p.add_argument("--markdown", type=Path, help="also write the markdown report to this path")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (server logs, SQLite database)")
    args = p.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not args.backends or set(args.backends) - {"sqlite", "postgres"}:
        p.error("--backends takes sqlite and/or postgres")
    if args.clients < 1 or args.duration <= 0:
        p.error("--clients and --duration must be positive")
    if args.restart_db_at is not None:
        if "postgres" not in args.backends:
            p.error("--restart-db-at restarts PostgreSQL: add postgres to --backends")
        if not 0 < args.restart_db_at < args.duration:
            p.error("--restart-db-at must fall inside --duration")
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 32)
    return args


def _on_signal(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"load: seed {args.seed}", file=sys.stderr)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        import uvloop

        loop_factory: Any = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    try:
        with workdir(args.keep) as work, asyncio.Runner(loop_factory=loop_factory) as runner:
            results = runner.run(main_async(args, work))
    except LoadError as e:
        print(f"load: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("load: interrupted", file=sys.stderr)
        return 130
    finally:
        for proc in list(_children):
            stop_process(proc, grace=3.0)
    report = markdown(results, args)
    print(report)
    if args.markdown:
        args.markdown.write_text(report)
    if args.json:
        payload = {"seed": args.seed, "args": {k: str(v) for k, v in vars(args).items()}}
        payload["runs"] = [asdict(r) for r in results]
        args.json.write_text(json.dumps(payload, indent=2))
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
