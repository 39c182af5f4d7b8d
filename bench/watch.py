"""Realtime watches: write-to-watcher latency with 1,000 open watches over 100 users in one
process, and the memory an idle watch holds, on SQLite and PostgreSQL.

    .venv/bin/python bench/watch.py                       # both backends
    .venv/bin/python bench/watch.py --backends sqlite --writes 1000 --json out.json

For each backend it starts a real core with its hub (as ``minibase serve`` does), logs in
``--users`` users and opens ``--watches`` watches over one connection per user (at the core,
without sockets: what is measured is the server's work, from the write's call to the frame
queued on the watcher's connection, which the transport sends next). Two shapes:

- **owned**: each user watches 10 lists of their own ``todo`` collection (the default
  ``owner`` rule), ``orderBy n``, ``limit 20``; each write is by a random user to one of
  their lists. The hub only matches a change against its owner's watches.
- **shared**: every watch is on one ``board`` collection readable by everyone; a write is
  matched against all the watches and fans out to each that it enters (the worst case).

Writes go one at a time, ``--gap`` ms apart, through the ``db`` function (rules, validation
and the commit included). Latency is per write, until the last watcher that should get it has
its frame: p50, p99, max; beside it the write's own call (until its answer), so what the
fan-out adds can be told from the write. **Memory per idle watch** is what tracemalloc sees allocated while
the watches are opened (connections, watch state, windows of 5 documents each), divided by
their number. The machine's load average is printed with the figures.

The PostgreSQL cluster is bench/data.py's (PostgreSQL's default durability, on disk).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.data import start_pg  # noqa: E402
from minibase.config import parse_config  # noqa: E402
from minibase.core import Minibase  # noqa: E402
from minibase.realtime.connection import Connection  # noqa: E402

LISTS = 10  # watches per user in the owned shape


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


class Timed(Connection):
    """A connection that notes when each watch's frames were queued."""

    arrivals: dict[str, float]

    def send_changes(self, wid: str, changes: list[dict[str, Any]], init: bool) -> None:
        self.arrivals[wid] = time.perf_counter()
        super().send_changes(wid, changes, init)
        self._out.clear()  # nobody reads: keep the queue empty, as a reading client does
        self._size = 0


def list_of(shape: str, u: int, k: int, per_user: int) -> int:
    """The list watch ``k`` of user ``u`` follows (shared: 50 lists over all the watches)."""
    return k if shape == "owned" else (u * per_user + k) % 50


async def open_watches(core: Minibase, callers: list[Any], shape: str, per_user: int) -> list[Timed]:
    assert core.realtime is not None
    conns = []
    for u, caller in enumerate(callers):
        conn = Timed(core.realtime, None)
        conn.arrivals = {}
        core.realtime.connect(conn)
        conn.adopt(caller, None)
        for k in range(per_user):
            collection = "todo" if shape == "owned" else "board"
            where = {"list": list_of(shape, u, k, per_user)}
            msg = {"collection": collection, "where": where, "orderBy": ["n"], "limit": 20}
            await core.realtime.open_watch(conn, {"type": "subscribe", "id": f"w{k}", **msg})
        conns.append(conn)
    return conns


async def bench_shape(
    core: Minibase, callers: list[Any], shape: str, per_user: int, writes: int, gap: float
) -> dict[str, Any]:
    # Documents first, so each window holds a few (and the memory figure counts them).
    for u, caller in enumerate(callers):
        ops = [
            {"op": "put", "obj": {"id": f"seed{k}", "list": list_of(shape, u, k, per_user), "n": k}}
            for k in range(5)
        ]
        await core.invoke(
            "db", {"op": "batch", "collection": "todo" if shape == "owned" else "board", "ops": ops}, caller
        )
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    conns = await open_watches(core, callers, shape, per_user)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    n_watches = sum(len(c.watches) for c in conns)
    rng = random.Random(14)
    lat: list[float] = []
    wrote: list[float] = []  # the write's own call (rules, commit), for comparison
    for i in range(writes):
        u = rng.randrange(len(callers))
        k = rng.randrange(per_user)
        if shape == "owned":
            targets = [(conns[u], f"w{k}")]
            event = {"op": "put", "collection": "todo", "obj": {"id": f"d{i}", "list": k, "n": -i}}
        else:
            lst = (u * per_user + k) % 50
            targets = [
                (c, f"w{j}")
                for v, c in enumerate(conns)
                for j in range(per_user)
                if list_of(shape, v, j, per_user) == lst
            ]
            event = {"op": "put", "collection": "board", "obj": {"id": f"d{i}", "list": lst, "n": -i}}
        for c, wid in targets:
            c.arrivals.pop(wid, None)
        t0 = time.perf_counter()
        await core.invoke("db", event, callers[u])
        wrote.append((time.perf_counter() - t0) * 1000)
        deadline = t0 + 10
        while any(wid not in c.arrivals for c, wid in targets):
            if time.perf_counter() > deadline:
                raise RuntimeError(f"write {i} did not reach its watchers")
            await asyncio.sleep(0)
        lat.append((max(c.arrivals[wid] for c, wid in targets) - t0) * 1000)
        await asyncio.sleep(gap / 1000)
    assert core.realtime is not None
    for c in conns:
        core.realtime.disconnect(c)
    return {
        "watches": n_watches,
        "latency_ms": {"n": len(lat), "p50": pct(lat, 0.5), "p99": pct(lat, 0.99), "max": max(lat)},
        "write_ms": {"p50": pct(wrote, 0.5), "p99": pct(wrote, 0.99)},
        "bytes_per_idle_watch": grown / n_watches,
    }


async def bench_backend(
    url: str, tmp: Path, users: int, watches: int, writes: int, gap: float
) -> dict[str, Any]:
    raw = {
        "app": {"name": "bench", "service": "bench-svc", "secret": "bench-secret-0123456789-abcdefghijkl"},
        "auth": {"dev": {"enabled": True}},
        "database": {"url": url},
        "collections": {"todo": {}, "board": {"read": "authenticated", "write": "owner"}},
        "rate_limits": {
            k: "off" for k in ("login_per_ip", "login_per_subject", "calls_per_user", "calls_per_ip")
        },
        "limits": {"max_watches_per_user": max(100, watches // users)},
    }
    config = parse_config(raw, data_dir=tmp / "data", base_dir=tmp, environ={})
    core = Minibase.from_config(config, background=True)
    await core.start()
    try:
        callers = []
        for u in range(users):
            result = await core.invoke("session", {"authCode": f"dev:user{u}"}, None)
            callers.append(await core.caller_from_session_id(result.value["sessionId"]))
        per_user = watches // users
        return {
            shape: await bench_shape(core, callers, shape, per_user, writes, gap)
            for shape in ("owned", "shared")
        }
    finally:
        await core.stop()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", default="sqlite,postgres")
    p.add_argument("--users", type=int, default=100)
    p.add_argument("--watches", type=int, default=1000)
    p.add_argument("--writes", type=int, default=500, help="writes, one at a time (latency)")
    p.add_argument("--gap", type=float, default=5.0, help="ms between those writes")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    results: dict[str, Any] = {"load_before": os.getloadavg(), "cpus": os.cpu_count()}
    for backend in args.backends.split(","):
        tmp = Path(tempfile.mkdtemp(prefix="minibase-bench-watch-"))
        pg = None
        try:
            if backend == "postgres":
                pg = start_pg(None)
                url = pg.url_for(pg.create_database())
            else:
                url = "sqlite:///bench.db"
            results[backend] = asyncio.run(
                bench_backend(url, tmp, args.users, args.watches, args.writes, args.gap)
            )
        finally:
            if pg is not None:
                pg.stop()
            shutil.rmtree(tmp, ignore_errors=True)
        for shape, r in results[backend].items():
            lat = r["latency_ms"]
            print(
                f"{backend:9} {shape:7} {r['watches']} watches: write->watchers p50 {lat['p50']:.1f} ms"
                f"  p99 {lat['p99']:.1f} ms  max {lat['max']:.1f} ms (n={lat['n']});"
                f" the write alone p50 {r['write_ms']['p50']:.1f} ms p99 {r['write_ms']['p99']:.1f} ms;"
                f"  {r['bytes_per_idle_watch'] / 1024:.1f} KiB per idle watch"
            )
    results["load_after"] = os.getloadavg()
    print(
        f"load average before {results['load_before']}, after {results['load_after']} on {results['cpus']} CPUs"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
