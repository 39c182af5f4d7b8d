"""minibase's data layer at scale: indexed queries and deep cursors on SQLite and PostgreSQL.

    .venv/bin/python bench/data.py --quick                  # 10 k and 100 k documents
    .venv/bin/python bench/data.py                          # 10 k, 100 k and 1 M
    .venv/bin/python bench/data.py --backends sqlite --sizes 1000000 -v --json out.json

For each backend and size it generates two collections of ``size`` documents each, owned by
``--users`` users: ``todo_list`` (owner-only reads) and ``public_posts`` (``read =
"public"``), both with ``indexes = [["status", "n"]]``. It bulk-loads them straight into
the ``documents`` table (bodies built exactly as the stores build them), then opens the
real store through :class:`minibase.core.Minibase`, which creates the declared indexes on
the loaded table (as adding an index to a live deployment would), runs ANALYZE, and times
``core.invoke("db", event, caller)`` in-process (no HTTP):

- ``a``: ``public_posts`` ``where {status: "open"}`` ``orderBy n desc`` ``limit 20``;
- ``b``: the same query continued from a cursor ``--depth`` (90 %) deep in its order;
- ``c``: the caller's own ``todo_list``, same where/order/limit (owner-scoped);
- ``d``: ``count`` of ``public_posts`` with ``status: "open"`` (O(matches); not a target).

Answers are checked against the generated data. Prints p50/p99/mean per backend, size and
query, the growth from the smallest to the largest size, and the target (p99 < 20 ms
at 1 M, growing like log n). ``-v`` adds the query plans. The PostgreSQL cluster (started
with ``tests.support.pg``'s helpers, PostgreSQL's default durability settings, on disk) and every
temp dir are removed on exit, error or Ctrl-C. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/data.py` puts bench/ first, not the repo root
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import orjson  # noqa: E402

from minibase.auth.sessions import Caller  # noqa: E402
from minibase.config import Config, parse_config  # noqa: E402
from minibase.core import Minibase  # noqa: E402
from minibase.data.sql import POSTGRES, SQLITE, compile_count, compile_query  # noqa: E402
from minibase.results import Page  # noqa: E402
from minibase.store.postgres import PostgresStore  # noqa: E402
from minibase.store.records import Key  # noqa: E402
from minibase.store.sqlite import SQLiteStore  # noqa: E402
from minibase.store.writes import make_document  # noqa: E402
from minibase.util.timefmt import rfc3339_ms  # noqa: E402
from tests.support.pg import PgServer, find_pg_bindir  # noqa: E402

SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000, 100_000)
BACKENDS = ("sqlite", "postgres")
TARGET_SIZE = 1_000_000
TARGET_P99_MS = 20.0
MIN_CALLS = 20  # timed calls per cell even past --budget
# Log-like growth: p50 ratio = (size ratio) ** e with e below this: < 3.2x for 100x the data
# (log2(1M) / log2(10k) = 1.5; anything linear in n has e near 1).
LOG_LIKE_EXPONENT = 0.25
NOISE_FLOOR_MS = 0.1  # a p50 that grows by less than this still counts as log-like

PUBLIC = "public_posts"
TODO = "todo_list"
COLUMNS = ("collection", "uid", "id", "version", "created", "updated", "body")
SECRET = "bench-secret-0123456789-abcdefghijklmnop"

# 40 % open, 30 % done, 20 % archived, 10 % draft.
STATUSES = ("open",) * 4 + ("done",) * 3 + ("archived",) * 2 + ("draft",)
TAGS = ("home", "work", "urgent", "later", "errand", "idea", "read")
WORDS = ("buy", "milk", "call", "mom", "fix", "bike", "plan", "trip", "read", "book", "pay", "rent")
B32 = "abcdefghijklmnopqrstuvwxyz234567"
SALT = {PUBLIC: 0x5EED, TODO: 0xD0D0}


class BenchError(Exception):
    """A failure with a message for the user (no traceback)."""


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- the data


def _mix(i: int, salt: int) -> int:
    """A cheap 32-bit hash of ``i`` (murmur3's finalizer): uncorrelated with ``n``."""
    x = (i * 0x9E3779B1 + salt) & 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & 0xFFFFFFFF
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & 0xFFFFFFFF
    return x ^ (x >> 16)


class Dataset:
    """``size`` documents per collection, deterministic, owned round-robin by ``users``.

    Document ``i`` of a collection has id ``p00000042``/``t00000042``, owner ``uids[i %
    users]``, a ``status`` from :data:`STATUSES` by hash, and ``n`` = a permutation of
    ``range(size)`` (unique, so pages have one right answer).
    """

    def __init__(self, size: int, users: int, seed: int = 1) -> None:
        self.size = size
        self.users = max(1, min(users, size))
        rng = random.Random(seed)
        uids: set[str] = set()
        while len(uids) < self.users:
            uids.add("u_" + "".join(rng.choice(B32) for _ in range(20)))
        self.uids = sorted(uids)  # generated in primary-key order: (collection, uid, id)
        self.mult = 7_368_787
        while math.gcd(self.mult, size) != 1:
            self.mult += 2
        self.offset = {PUBLIC: rng.randrange(size), TODO: rng.randrange(size)}
        self.created = rfc3339_ms(time.time())

    def n(self, collection: str, i: int) -> int:
        return (i * self.mult + self.offset[collection]) % self.size

    def status(self, collection: str, i: int) -> str:
        return STATUSES[_mix(i, SALT[collection]) % len(STATUSES)]

    def doc_id(self, collection: str, i: int) -> str:
        return f"{collection[0]}{i:08d}"

    def fields(self, collection: str, i: int) -> dict[str, Any]:
        h = _mix(i, 0xF1E1D)
        status = self.status(collection, i)
        return {
            "title": f"{WORDS[h % 12]} {WORDS[(h >> 4) % 12]} #{i}",
            "status": status,
            "n": self.n(collection, i),
            "done": status == "done",
            "meta": {
                "priority": h % 5,
                "tags": [TAGS[(h >> 8) % 7], TAGS[(h >> 11) % 7]],
                "author": {"name": f"user {i % self.users}", "score": (h % 1000) / 10},
            },
        }

    def rows(self, collection: str) -> Iterator[tuple[str, str, str, int, str, str, str]]:
        """``documents`` rows in primary-key order; bodies exactly as the stores write them."""
        for j, uid in enumerate(self.uids):
            for i in range(j, self.size, self.users):
                key = Key(collection, uid, self.doc_id(collection, i))
                doc = make_document(key, self.fields(collection, i), 1, self.created, self.created)
                yield (collection, uid, key.id, 1, self.created, self.created, orjson.dumps(doc).decode())

    def open_ns(self, collection: str, uid: str | None = None) -> list[int]:
        """``n`` of the open documents (of ``uid`` only, if given), descending."""
        if uid is None:
            idx: Iterator[int] | range = range(self.size)
        else:
            idx = range(self.uids.index(uid), self.size, self.users)
        return sorted(
            (self.n(collection, i) for i in idx if self.status(collection, i) == "open"), reverse=True
        )


# ------------------------------------------------------------------------------ backends


class BenchPg(PgServer):
    """``tests.support.pg``'s throwaway cluster with PostgreSQL's *default* durability settings
    (fsync, full_page_writes and synchronous_commit on, 128 MB shared_buffers), on disk:
    the tests' cluster trades durability for speed and prefers a RAM disk."""

    def __init__(self, bindir: Path, parent: Path | None) -> None:
        super().__init__(bindir)
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = Path(tempfile.mkdtemp(prefix="minibase-bench-pg-", dir=parent))
        self.datadir = self.root / "data"
        self.logfile = self.root / "server.log"
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")

    def init(self) -> None:
        r = self._run(
            self._tool("initdb"),
            "-D",
            str(self.datadir),
            "-U",
            self.user,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        if r.returncode != 0:
            raise BenchError(f"initdb failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.root}'",
            "log_min_messages": "warning",
            "log_destination": "'stderr'",
        }
        with (self.datadir / "postgresql.conf").open("a") as f:
            f.write("\n# bench/data.py: defaults otherwise (durable)\n")
            for k, v in settings.items():
                f.write(f"{k} = {v}\n")


def start_pg(parent: Path | None) -> BenchPg:
    bindir = find_pg_bindir()
    if bindir is None:
        raise BenchError(
            "PostgreSQL server binaries were not found (pg_config --bindir, /usr/lib/postgresql/*/bin);"
            " install them (Debian: apt-get install -y postgresql) or pass --backends sqlite"
        )
    server = BenchPg(bindir, parent)
    server.launch()
    return server


def make_config(url: str, data_dir: Path) -> Config:
    raw: dict[str, Any] = {
        "app": {"name": "bench", "service": "bench-svc", "default_collection": TODO, "secret": SECRET},
        "auth": {"dev": {"enabled": True}},  # parse_config wants a provider; nothing logs in here
        "database": {"url": url},
        "collections": {
            TODO: {"indexes": [["status", "n"]]},  # read/write: owner (the default)
            PUBLIC: {"read": "public", "write": "owner", "indexes": [["status", "n"]]},
        },
    }
    return parse_config(raw, data_dir=data_dir, base_dir=data_dir, environ={})


def _dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


async def load_sqlite(ds: Dataset, path: Path) -> None:
    """Migrations through the real store, then one executemany transaction per collection."""
    store = SQLiteStore(path)
    await store.open()
    await store.close()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        # Bulk-load settings for this connection only; the store reopens the file in WAL
        # mode with synchronous=FULL before anything is measured.
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")
        for collection in (PUBLIC, TODO):
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)", ds.rows(collection))
            conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


async def load_postgres(ds: Dataset, url: str) -> None:
    """Migrations through the real store, then COPY (binary) per collection."""
    store = PostgresStore(url)
    await store.open()
    await store.close()
    conn: asyncpg.Connection = await asyncpg.connect(url)
    try:
        for collection in (PUBLIC, TODO):
            await conn.copy_records_to_table("documents", records=ds.rows(collection), columns=COLUMNS)
    finally:
        await conn.close()


async def analyze(backend: str, url: str, sqlite_path: Path) -> None:
    if backend == "sqlite":
        conn = sqlite3.connect(sqlite_path, isolation_level=None)
        try:
            conn.execute("ANALYZE")
        finally:
            conn.close()
        return
    pg: asyncpg.Connection = await asyncpg.connect(url)
    try:
        # What autovacuum would do shortly after a bulk load: statistics, plus the
        # visibility map (index-only scans) and hint bits (no writes on the first reads).
        await pg.execute("VACUUM (ANALYZE) documents")
    finally:
        await pg.close()


# ------------------------------------------------------------------------------ measuring


@dataclass
class Query:
    name: str
    label: str
    event: dict[str, Any]
    target: bool  # whether the p99/log n target applies


@dataclass
class Timing:
    backend: str
    size: int
    query: str
    label: str
    iterations: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    target: bool
    rows: int  # documents in the page (the count for d)


@dataclass
class Build:
    backend: str
    size: int
    documents: int  # rows in the documents table (both collections)
    generate_load_s: float
    index_s: float
    analyze_s: float
    disk_mb: float


@dataclass
class Plan:
    backend: str
    size: int
    query: str
    sql: str
    params: list[Any]
    lines: list[str]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Run:
    builds: list[Build] = field(default_factory=list)
    timings: list[Timing] = field(default_factory=list)
    plans: list[Plan] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=lambda: {"sqlite": sqlite3.sqlite_version})


def percentile(sorted_ms: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    k = max(0, math.ceil(q / 100 * len(sorted_ms)) - 1)
    return sorted_ms[k]


async def time_calls(
    call: Callable[[], Awaitable[Any]], warmup: int, iterations: int, budget_s: float
) -> list[float]:
    """``iterations`` timed calls after ``warmup`` unrecorded ones. A slow query stops
    early: warm-up after ``budget_s / 10`` s, timing after ``budget_s`` s (with at least
    :data:`MIN_CALLS` samples), so a query that takes a second does not take an hour."""
    stop = time.monotonic() + budget_s / 10
    for i in range(warmup):
        await call()
        if i >= 2 and time.monotonic() > stop:
            break
    gc.collect()
    samples: list[float] = []
    clock = time.perf_counter_ns
    stop = time.monotonic() + budget_s
    for _ in range(iterations):
        t0 = clock()
        await call()
        samples.append((clock() - t0) / 1e6)
        if len(samples) >= MIN_CALLS and time.monotonic() > stop:
            break
    return samples


def page_docs(page: Any) -> tuple[list[dict[str, Any]], str | None]:
    if not isinstance(page, Page):
        raise BenchError(f"expected a page of results, got {type(page).__name__}")
    docs: list[dict[str, Any]] = orjson.loads(orjson.dumps(page.data))
    return docs, page.next


def check_page(what: str, page: Any, matches: list[int], start: int, uid: str | None = None) -> str | None:
    """``page`` must hold the documents ``matches[start:start + 20]`` (their ``n``, in that
    order), all open (and the caller's), with a next cursor exactly when more match."""
    docs, nxt = page_docs(page)
    expected = matches[start : start + 20]
    got = [d.get("n") for d in docs]
    if got != expected:
        raise BenchError(f"{what}: wrong page: n = {got[:5]}… expected {expected[:5]}…")
    for d in docs:
        if d.get("status") != "open":
            raise BenchError(f"{what}: document {d.get('id')} has status {d.get('status')!r}")
        if uid is not None and d.get("uid") != uid:
            raise BenchError(f"{what}: document {d.get('id')} belongs to {d.get('uid')}, not the caller")
    if (nxt is not None) != (len(matches) > start + 20):
        raise BenchError(f"{what}: next cursor is {nxt!r} with {len(matches) - start} matches from here")
    return nxt


def build_queries(depth: float) -> list[Query]:
    where = {"status": "open"}
    order = [["n", "desc"]]
    first = {"op": "query", "collection": PUBLIC, "where": where, "orderBy": order, "limit": 20}
    queries = [
        Query("a", "a public first page", first, True),
        Query("b", f"b public cursor @{depth:.0%}", dict(first), True),  # cursor filled in later
        Query("c", "c owner todo_list page", {**first, "collection": TODO}, True),
        Query(
            "d", "d public count (O(matches))", {"op": "count", "collection": PUBLIC, "where": where}, False
        ),
    ]
    return queries


async def measure(
    backend: str, ds: Dataset, config: Config, sqlite_path: Path, args: argparse.Namespace, run: Run
) -> None:
    core = Minibase.from_config(config)
    t0 = time.perf_counter()
    await core.start()  # migrations are done; this builds the declared indexes on the loaded rows
    index_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    if not args.no_analyze:
        await analyze(backend, config.database.url, sqlite_path)
    analyze_s = time.perf_counter() - t0
    run.builds[-1].index_s = round(index_s, 2)
    run.builds[-1].analyze_s = round(analyze_s, 2)
    try:
        caller_uid = ds.uids[len(ds.uids) // 2]
        caller = Caller(caller_uid, "dev", "s_bench", b"")
        queries = build_queries(args.depth)
        by_name = {q.name: q for q in queries}

        async def invoke(event: dict[str, Any]) -> Any:
            return await core.invoke("db", event, caller)

        # Expected answers from the generated data.
        open_public = ds.open_ns(PUBLIC)
        open_todo = ds.open_ns(TODO, caller_uid)
        if len(open_public) < 100 or not open_todo:
            raise BenchError(f"size {ds.size} is too small for the checks")
        rows = {"a": 20, "b": 20, "c": min(20, len(open_todo)), "d": len(open_public)}
        check_page("a", await invoke(by_name["a"].event), open_public, 0)
        # The deep cursor: a page of `n < K` (K at --depth of the order), then its `next`.
        at = min(int(args.depth * len(open_public)), len(open_public) - 41)
        k = open_public[at]
        seek = {**by_name["a"].event, "where": {"status": "open", "n": {"$lt": k}}}
        cursor = check_page("cursor seek", await invoke(seek), open_public, at + 1)
        by_name["b"].event["cursor"] = cursor
        check_page("b", await invoke(by_name["b"].event), open_public, at + 21)
        check_page("c", await invoke(by_name["c"].event), open_todo, 0, uid=caller_uid)
        count = await invoke(by_name["d"].event)
        if count != len(open_public):
            raise BenchError(f"d: count {count}, expected {len(open_public)}")

        if args.verbose:
            await index_report(backend, config, sqlite_path, run, ds.size)
            for name in ("a", "b", "d"):
                run.plans.append(
                    await explain(backend, core, config, sqlite_path, ds.size, by_name[name], invoke)
                )

        for q in queries:
            log(f"  {backend} {ds.size:,} {q.label}: {args.warmup} warm-up + {args.iterations} calls ...")
            ms = sorted(
                await time_calls(
                    functools.partial(invoke, q.event), args.warmup, args.iterations, args.budget
                )
            )
            if len(ms) < args.iterations:
                log(f"  ... stopped after {len(ms)} calls ({args.budget:g} s budget)")
            run.timings.append(
                Timing(
                    backend,
                    ds.size,
                    q.name,
                    q.label,
                    len(ms),
                    round(percentile(ms, 50), 3),
                    round(percentile(ms, 99), 3),
                    round(sum(ms) / len(ms), 3),
                    round(ms[-1], 3),
                    q.target,
                    rows[q.name],
                )
            )
        if args.verbose and backend == "postgres":
            await plan_cache_report(core, run, ds.size)
    finally:
        await core.stop()


# ------------------------------------------------------------------------------- plans


async def captured_call(core: Minibase, method: str, event: dict[str, Any], invoke: Any) -> tuple[Any, ...]:
    """The arguments the data API passes to ``store.<method>`` (``query`` or ``count``) for
    ``event``, to compile them with :mod:`minibase.data.sql` exactly as the stores do."""
    store: Any = core.store
    calls: list[tuple[Any, ...]] = []
    real = getattr(store, method)

    async def spy(*a: Any) -> Any:
        calls.append(a)
        return await real(*a)

    setattr(store, method, spy)  # an instance attribute shadows the method for one call
    try:
        await invoke(event)
    finally:
        delattr(store, method)
    if len(calls) != 1:
        raise BenchError(f"expected one store.{method} call, saw {len(calls)}")
    return calls[0]


async def explain(
    backend: str,
    core: Minibase,
    config: Config,
    sqlite_path: Path,
    size: int,
    q: Query,
    invoke: Any,
) -> Plan:
    method = "count" if q.event["op"] == "count" else "query"
    call = await captured_call(core, method, q.event, invoke)
    dialect = SQLITE if backend == "sqlite" else POSTGRES
    sql, params = compile_count(dialect, *call) if method == "count" else compile_query(dialect, *call)
    if backend == "sqlite":
        conn = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True, isolation_level=None)
        try:
            rows = conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
            # Work done, as VM instructions (the progress handler ticks every 100): what an
            # EXPLAIN ANALYZE would show as rows visited.
            ticks = [0]

            def tick() -> int:
                ticks[0] += 1
                return 0

            conn.set_progress_handler(tick, 100)
            t0 = time.perf_counter()
            conn.execute(sql, params).fetchall()
            ms = (time.perf_counter() - t0) * 1e3
            conn.set_progress_handler(None, 0)
        finally:
            conn.close()
        lines = [f"{'  ' * _depth(rows, r[0])}{r[3]}" for r in rows]
        lines.append(f"(executed once: ~{ticks[0] * 100:,} VM instructions, {ms:.2f} ms)")
        return Plan(backend, size, q.name, sql, list(params), lines)
    conn_pg: asyncpg.Connection = await asyncpg.connect(config.database.url)
    try:
        await conn_pg.set_type_codec(
            "numeric", schema="pg_catalog", encoder=_pg_numeric, decoder=str, format="text"
        )
        custom = await conn_pg.fetch("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, *params)
        # asyncpg runs every query as a prepared statement; after 5 executions PostgreSQL
        # may switch it to a generic plan (no parameter values): show that one too.
        await conn_pg.execute("SET plan_cache_mode = force_generic_plan")
        await conn_pg.execute("PREPARE bench_q AS " + sql)
        literals = ", ".join(_pg_literal(v) for v in params)
        generic = await conn_pg.fetch(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) EXECUTE bench_q({literals})")
        await conn_pg.execute("DEALLOCATE bench_q")
    finally:
        await conn_pg.close()
    lines = ["custom plan (parameter values known):", *(f"  {r[0]}" for r in custom)]
    lines += ["generic plan (what a prepared statement may switch to):", *(f"  {r[0]}" for r in generic)]
    return Plan(backend, size, q.name, sql, list(params), lines)


def _depth(rows: list[tuple[Any, ...]], node: int) -> int:
    parents = {r[0]: r[1] for r in rows}
    d = 0
    while parents.get(node, 0) != 0:
        node = parents[node]
        d += 1
    return d


def _pg_numeric(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(int(value) if isinstance(value, bool) else value)


def _pg_literal(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


async def plan_cache_report(core: Minibase, run: Run, size: int) -> None:
    """Which plans the measured prepared statements ran with (the store's pooled connection)."""
    pool = getattr(core.store, "_pool", None)
    if pool is None:
        return
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE 'SELECT%FROM documents%'"
        )
    for r in rows:
        text = " ".join(r["statement"].split())
        if "pg_prepared_statements" in text:
            continue
        if text.startswith("SELECT count"):
            kind = "d count"
        elif ") < ($" in text:
            kind = "b cursor"
        elif "uid = $" in text:
            kind = "c owner page"
        elif "END < $" in text:
            kind = "cursor seek (once)"
        else:
            kind = "a page"
        run.notes.append(
            f"postgres {size:,}: the {kind} statement ran {r['generic_plans']} generic and"
            f" {r['custom_plans']} custom plans"
        )


async def index_report(backend: str, config: Config, sqlite_path: Path, run: Run, size: int) -> None:
    """The indexes on ``documents``, and which ones duplicate another's definition."""
    sizes: dict[str, float] = {}
    if backend == "sqlite":
        conn = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
        try:
            defs = conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'documents'"
                " AND sql IS NOT NULL ORDER BY name"
            ).fetchall()
            with contextlib.suppress(sqlite3.Error):  # dbstat is a compile-time option
                for name, _ in defs:
                    row = conn.execute(
                        "SELECT pgsize FROM dbstat WHERE name = ? AND aggregate = 1", (name,)
                    ).fetchone()
                    sizes[name] = row[0] / 1e6
        finally:
            conn.close()
    else:
        pg: asyncpg.Connection = await asyncpg.connect(config.database.url)
        try:
            found = await pg.fetch(
                "SELECT indexname, indexdef, pg_relation_size(quote_ident(indexname)::regclass)"
                " FROM pg_indexes WHERE tablename = 'documents' AND indexname LIKE 'ix\\_%' ORDER BY indexname"
            )
            defs = [(r[0], r[1]) for r in found]
            sizes = {r[0]: r[2] / 1e6 for r in found}
        finally:
            await pg.close()
    seen: dict[str, str] = {}
    for name, sql in defs:
        shape = " ".join(sql.replace(f'"{name}"', "").replace(name, "").split())
        twin = seen.setdefault(shape, name)
        what = f"same definition as {twin}" if twin != name else "distinct"
        cols = ", ".join(
            _column_label(c) for c in _split_top(shape[shape.index("(") + 1 : shape.rindex(")")])
        )
        mb = f", {sizes[name]:,.0f} MB" if name in sizes else ""
        run.notes.append(f"{backend} {size:,}: index {name} ({cols}){mb}: {what}")


_PATH_LIT = re.compile(r"'\$\.([\w.]+)'|'\{([\w,]+)\}'")


def _column_label(col: str) -> str:
    """``rank(status)``, ``num(n)``, ``txt(n)`` for the compiler's sort expressions."""
    m = _PATH_LIT.search(col)
    if m is None:
        return col.strip().split()[0]
    path = (m.group(1) or m.group(2).replace(",", ".")).strip()
    if "ELSE ''" in col:
        return f"txt({path})"
    if "THEN 3" in col:
        return f"rank({path})"
    return f"num({path})"


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses (index columns)."""
    parts: list[str] = []
    depth, cur = 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [*parts, cur]


# -------------------------------------------------------------------------------- driver


async def bench_size(
    backend: str, size: int, pg: BenchPg | None, work: Path, args: argparse.Namespace, run: Run
) -> None:
    ds = Dataset(size, args.users)
    data_dir = work / f"{backend}-{size}"
    data_dir.mkdir()
    sqlite_path = data_dir / "minibase.db"
    dbname = f"bench_{size}"
    url = "sqlite:///minibase.db"
    if pg is not None:
        pg.create_database(dbname)
        url = pg.url_for(dbname)
        if args.pg_plan_cache_mode != "auto":
            # Every connection to this database (the store's pool) starts with it.
            pg.sql(f'ALTER DATABASE "{dbname}" SET plan_cache_mode = {args.pg_plan_cache_mode}')
    try:
        log(f"{backend} {size:,}: generating and loading {2 * size:,} documents ...")
        t0 = time.perf_counter()
        if backend == "sqlite":
            await load_sqlite(ds, sqlite_path)
        else:
            await load_postgres(ds, url)
        load_s = time.perf_counter() - t0
        run.builds.append(Build(backend, size, 2 * size, round(load_s, 2), 0.0, 0.0, 0.0))
        log(
            f"{backend} {size:,}: loaded in {load_s:.1f} s; building indexes (Minibase.start) and analyzing ..."
        )
        config = make_config(url, data_dir)
        await measure(backend, ds, config, sqlite_path, args, run)
        if backend == "sqlite":
            run.builds[-1].disk_mb = round(_dir_mb(data_dir), 1)
        elif pg is not None:
            out = pg.sql(f"SELECT pg_database_size('{dbname}')").strip()
            run.builds[-1].disk_mb = round(int(out) / 1e6, 1)
        b = run.builds[-1]
        log(
            f"{backend} {size:,}: indexes {b.index_s:.1f} s, analyze {b.analyze_s:.1f} s, {b.disk_mb:,.0f} MB"
        )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        if pg is not None and pg.running:
            with contextlib.suppress(RuntimeError):
                pg.drop_database(dbname)


def run_loop(coro: Coroutine[Any, Any, None], loop_kind: str) -> None:
    if loop_kind in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if loop_kind == "uvloop":
                raise BenchError("uvloop is not installed") from None
        else:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(coro)
            return
    asyncio.run(coro)


# -------------------------------------------------------------------------------- report


def growth(run: Run) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    keys = sorted({(t.backend, t.query) for t in run.timings}, key=lambda k: (BACKENDS.index(k[0]), k[1]))
    for backend, query in keys:
        ts = sorted(
            (t for t in run.timings if t.backend == backend and t.query == query), key=lambda t: t.size
        )
        hi = ts[-1]
        # Like with like: a page query's growth is measured from the smallest size whose page
        # is as full as the largest's (c returns fewer documents when users own only a few).
        lo = ts[0] if not hi.target else next(t for t in ts if t.rows == hi.rows)
        row: dict[str, Any] = {
            "backend": backend,
            "query": query,
            "label": lo.label,
            "from_size": lo.size,
            "to_size": hi.size,
            "target": lo.target,
        }
        if lo is not ts[0]:
            row["note"] = f"{ts[0].size:,} left out: its page has {ts[0].rows} documents, not {hi.rows}"
        if hi.size > lo.size:
            r50, r99 = hi.p50_ms / lo.p50_ms, hi.p99_ms / lo.p99_ms
            # ratio = (size ratio) ** exponent: 0 flat, ~0.1 log-like, 1 linear in n.
            exponent = math.log(max(r50, 1e-9)) / math.log(hi.size / lo.size)
            delta = hi.p50_ms - lo.p50_ms
            row.update(
                p50_ratio=round(r50, 2),
                p99_ratio=round(r99, 2),
                p50_exponent=round(exponent, 2),
                p50_delta_ms=round(delta, 3),
                # A few tens of microseconds more is page-cache luck, not a cost growing with
                # n: anything O(n) at these sizes shows up in milliseconds.
                within_noise=exponent >= LOG_LIKE_EXPONENT and delta < NOISE_FLOOR_MS,
                log_like=exponent < LOG_LIKE_EXPONENT or delta < NOISE_FLOOR_MS,
            )
        at = next((t for t in ts if t.size == TARGET_SIZE), None)
        if at is not None:
            row.update(p99_at_target_ms=at.p99_ms, p99_met=at.p99_ms < TARGET_P99_MS)
        out.append(row)
    return out


def _mark(ok: bool | None) -> str:
    return "-" if ok is None else ("ok" if ok else "MISSED")


def print_report(run: Run, rows: list[dict[str, Any]], meta: dict[str, Any], verbose: bool) -> None:
    if verbose and run.plans:
        print("\n## query plans\n")
        for p in run.plans:
            print(f"### {p.backend} {p.size:,} query {p.query}")
            print(f"SQL: {p.sql}")
            print(f"params: {p.params}")
            for line in p.lines:
                print(f"  {line}")
            print()
        for note in run.notes:
            print(note)
    print()
    print(
        f"minibase data layer: {meta['iterations']} timed calls after {meta['warmup']} warm-up per cell,"
        f" in-process core.invoke('db', …); {meta['users']} users; {meta['cpus']} CPUs; {meta['loop']} loop;"
        f" SQLite {meta.get('sqlite', '?')}, PostgreSQL {meta.get('postgres', '-')}"
        + ("" if meta.get("analyze", True) else "; no ANALYZE")
        + (
            f"; plan_cache_mode={meta['pg_plan_cache_mode']}"
            if meta.get("pg_plan_cache_mode", "auto") != "auto"
            else ""
        )
    )
    print()
    print("| backend | documents/collection | load s | index s | analyze s | disk MB |")
    print("|---|---:|---:|---:|---:|---:|")
    for b in run.builds:
        print(
            f"| {b.backend} | {b.size:,} | {b.generate_load_s:.1f} | {b.index_s:.1f} | {b.analyze_s:.1f} |"
            f" {b.disk_mb:,.0f} |"
        )
    print()
    print("| backend | documents | query | rows | calls | p50 ms | p99 ms | mean ms | max ms |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for t in sorted(run.timings, key=lambda t: (BACKENDS.index(t.backend), t.query, t.size)):
        print(
            f"| {t.backend} | {t.size:,} | {t.label} | {t.rows:,} | {t.iterations} | {t.p50_ms:.3f} |"
            f" {t.p99_ms:.3f} | {t.mean_ms:.3f} | {t.max_ms:.2f} |"
        )
    print()
    print(
        f"Growth from the smallest to the largest size: p50 ratio = (size ratio)^e; e ~0 is flat or log n,"
        f" 1 is linear in n; log-like: e < {LOG_LIKE_EXPONENT:g} (p50 ratio < {100**LOG_LIKE_EXPONENT:.1f}x"
        f" for 100x the documents) or p50 up by less than {NOISE_FLOOR_MS:g} ms."
        f" Target: p99 < {TARGET_P99_MS:g} ms at {TARGET_SIZE:,}."
    )
    print()
    print("| backend | query | sizes | p50 x | p99 x | exponent | log-like | p99 @1M ms | p99 target |")
    print("|---|---|---|---:|---:|---:|---|---:|---|")
    for r in rows:
        sizes = f"{r['from_size']:,} → {r['to_size']:,}"
        note = "" if r["target"] else " (not a target)"
        cells = [r["backend"], r["label"], sizes]
        if "p50_ratio" in r:
            cells += [f"{r['p50_ratio']:.2f}", f"{r['p99_ratio']:.2f}", f"{r['p50_exponent']:.2f}"]
            if r["target"]:
                cells.append(
                    _mark(r["log_like"])
                    + (f" (+{r['p50_delta_ms']:.3f} ms: noise)" if r["within_noise"] else "")
                )
            else:
                cells.append(("yes" if r["log_like"] else "no, ~linear") + note)
        else:
            cells += ["-", "-", "-", "-"]
        if "p99_at_target_ms" in r:
            cells += [f"{r['p99_at_target_ms']:.2f}", _mark(r["p99_met"]) if r["target"] else "n/a" + note]
        else:
            cells += ["-", f"n/a (no {TARGET_SIZE:,} run)"]
        print("| " + " | ".join(cells) + " |")
    for r in rows:
        if "note" in r:
            print(f"{r['backend']} {r['label']}: {r['note']}")


# ---------------------------------------------------------------------------------- main


def _on_signal(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument(
        "--sizes",
        type=lambda s: [int(x.replace("_", "")) for x in s.split(",")],
        default=None,
        help="comma-separated document counts per collection (default 10000,100000,1000000)",
    )
    ap.add_argument("--quick", action="store_true", help="sizes 10000,100000 only")
    ap.add_argument(
        "--backends",
        type=lambda s: s.split(","),
        default=list(BACKENDS),
        help="comma-separated: sqlite,postgres (default both)",
    )
    ap.add_argument("--iterations", "-n", type=int, default=300, help="timed calls per query (default 300)")
    ap.add_argument("--warmup", type=int, default=30, help="unrecorded calls before each (default 30)")
    ap.add_argument(
        "--budget",
        type=float,
        default=60.0,
        help=f"seconds of timed calls per query before stopping early (>= {MIN_CALLS} calls; default 60)",
    )
    ap.add_argument("--users", type=int, default=1000, help="document owners (default 1000)")
    ap.add_argument(
        "--depth",
        type=float,
        default=0.9,
        help="where in the ordered matches the cursor of query b points (default 0.9)",
    )
    ap.add_argument(
        "--no-analyze",
        action="store_true",
        help="skip ANALYZE / VACUUM ANALYZE after the load (only what the store does itself)",
    )
    ap.add_argument(
        "--pg-plan-cache-mode",
        choices=("auto", "force_generic_plan", "force_custom_plan"),
        default="auto",
        help="PostgreSQL plan_cache_mode for the store's connections (default: the server's, auto)",
    )
    ap.add_argument(
        "--loop",
        choices=("auto", "uvloop", "asyncio"),
        default="auto",
        help="event loop (auto: uvloop when installed, as `minibase serve`)",
    )
    ap.add_argument("--tmpdir", type=Path, default=None, help="where the databases go (default: system temp)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    ap.add_argument("-v", "--verbose", action="store_true", help="print query plans of a and b")
    args = ap.parse_args(argv)
    if args.sizes is None:
        args.sizes = list(QUICK_SIZES if args.quick else SIZES)
    for b in args.backends:
        if b not in BACKENDS:
            ap.error(f"unknown backend {b!r} (one of: {', '.join(BACKENDS)})")
    if not 0 < args.depth < 1:
        ap.error("--depth must be between 0 and 1")
    if args.iterations < 1 or args.warmup < 0 or any(s < 1000 for s in args.sizes):
        ap.error("--iterations >= 1, --warmup >= 0, sizes >= 1000")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_signal)
    run = Run()
    work = Path(tempfile.mkdtemp(prefix="minibase-bench-data-", dir=args.tmpdir))
    pg: BenchPg | None = None
    loop_name = args.loop
    if loop_name == "auto":
        try:
            import uvloop  # noqa: F401

            loop_name = "uvloop"
        except ImportError:
            loop_name = "asyncio"
    try:
        for backend in args.backends:
            if backend == "postgres":
                log("starting a throwaway PostgreSQL cluster ...")
                pg = start_pg(args.tmpdir)
                run.versions["postgres"] = pg.sql("SHOW server_version").strip()
            try:
                for size in args.sizes:
                    run_loop(bench_size(backend, size, pg, work, args, run), args.loop)
            finally:
                if pg is not None:
                    pg.destroy()
                    pg = None
    except BenchError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    finally:
        if pg is not None:
            pg.destroy()
        shutil.rmtree(work, ignore_errors=True)

    meta = {
        "iterations": args.iterations,
        "warmup": args.warmup,
        "users": args.users,
        "depth": args.depth,
        "analyze": not args.no_analyze,
        "pg_plan_cache_mode": args.pg_plan_cache_mode,
        "loop": loop_name,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        **run.versions,
        "platform": platform.platform(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    rows = growth(run)
    print_report(run, rows, meta, args.verbose)
    if args.json is not None:
        doc = {
            "meta": meta,
            "targets": {
                "size": TARGET_SIZE,
                "p99_ms": TARGET_P99_MS,
                "log_like_exponent": LOG_LIKE_EXPONENT,
                "noise_floor_ms": NOISE_FLOOR_MS,
            },
            "builds": [asdict(b) for b in run.builds],
            "timings": [asdict(t) for t in run.timings],
            "growth": rows,
            "plans": [asdict(p) for p in run.plans],
            "notes": run.notes,
        }
        args.json.write_text(json.dumps(doc, indent=2, default=str) + "\n")
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
