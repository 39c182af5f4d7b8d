"""After-write triggers: delivery latency (commit to handler) and outbox throughput, on
SQLite and PostgreSQL.

    .venv/bin/python bench/events.py                      # both backends
    .venv/bin/python bench/events.py --backends sqlite --events 5000 --json out.json

For each backend it opens a real store through :class:`minibase.core.Minibase` with a
functions module declaring one ``@after_write("orders")`` trigger, then:

- **latency**: with the dispatcher running as under ``minibase serve``, writes ``--writes``
  documents one at a time (``--gap`` ms apart) and records, in the handler, the time since
  the event's outbox row was appended (inside the write's transaction, so the commit itself
  is included): p50, p99, max;
- **outbox throughput**: writes ``--events`` documents in batches of 100 with the dispatcher
  stopped, then times draining them (claim, run the handler, delete): events/s delivered;
  and the cost on writes: the same batches into a collection without a trigger (no outbox
  row) against one with.

The PostgreSQL cluster is bench/data.py's (PostgreSQL's default durability, on disk).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.data import start_pg  # noqa: E402
from minibase.config import parse_config  # noqa: E402
from minibase.core import Minibase  # noqa: E402
from minibase.store.records import Key  # noqa: E402
from minibase.store.writes import Insert  # noqa: E402

MODULE = """
import time
from minibase.events import after_write

SEEN = []

@after_write("orders", ops=["insert"])
async def on_order(ctx, change):
    SEEN.append(time.time() - change["at"])
"""


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


async def bench_backend(url: str, tmp: Path, writes: int, gap: float, events: int) -> dict[str, Any]:
    name = f"bench_events_{abs(hash(url)) % 10**8}"
    (tmp / f"{name}.py").write_text(textwrap.dedent(MODULE))
    raw = {
        "app": {"name": "bench", "service": "bench-svc", "secret": "bench-secret-0123456789-abcdefghijkl"},
        "auth": {"dev": {"enabled": True}},
        "database": {"url": url},
        "functions": {"module": name},
    }
    config = parse_config(raw, data_dir=tmp / "data", base_dir=tmp, environ={})
    core = Minibase.from_config(config)
    await core.start()
    module = sys.modules[name]
    seen: list[float] = module.SEEN
    assert core.events is not None
    try:
        # latency: the dispatcher as under `minibase serve`
        core.events.start_background(schedules=False)
        for i in range(writes):
            await core.store.write([Insert(Key("orders", f"u{i % 10}", f"l{i}"), {"n": i})], "t")
            await asyncio.sleep(gap / 1000)
        deadline = time.monotonic() + 30
        while len(seen) < writes and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        lat = [x * 1000 for x in seen]
        for t in core.events._tasks:
            t.cancel()
        await asyncio.gather(*core.events._tasks, return_exceptions=True)
        core.events._tasks.clear()
        seen.clear()

        # write cost: batches of 100 without and with an outbox row per document
        async def load(collection: str, prefix: str) -> float:
            t0 = time.perf_counter()
            for b in range(0, events, 100):
                ops = [
                    Insert(Key(collection, f"u{i % 50}", f"{prefix}{i}"), {"n": i}) for i in range(b, b + 100)
                ]
                await core.store.write(ops, "t")
            return events / (time.perf_counter() - t0)

        plain_rate = await load("plain", "p")
        outbox_rate = await load("orders", "t")
        t0 = time.perf_counter()
        await core.events.dispatcher.drain(timeout=600)
        drained = time.perf_counter() - t0
        assert len(seen) == events, (len(seen), events)
        return {
            "latency_ms": {"n": len(lat), "p50": pct(lat, 0.5), "p99": pct(lat, 0.99), "max": max(lat)},
            "delivered_per_s": events / drained,
            "writes_per_s_plain": plain_rate,
            "writes_per_s_outbox": outbox_rate,
        }
    finally:
        await core.stop()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", default="sqlite,postgres")
    p.add_argument("--writes", type=int, default=500, help="documents written one by one (latency)")
    p.add_argument("--gap", type=float, default=5.0, help="ms between those writes")
    p.add_argument("--events", type=int, default=5000, help="events for the throughput run")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    results: dict[str, Any] = {}
    for backend in args.backends.split(","):
        tmp = Path(tempfile.mkdtemp(prefix="minibase-bench-events-"))
        pg = None
        try:
            if backend == "postgres":
                pg = start_pg(None)
                url = pg.url_for(pg.create_database())
            else:
                url = "sqlite:///bench.db"
            results[backend] = asyncio.run(bench_backend(url, tmp, args.writes, args.gap, args.events))
        finally:
            if pg is not None:
                pg.stop()
            shutil.rmtree(tmp, ignore_errors=True)
        r = results[backend]
        lat = r["latency_ms"]
        print(
            f"{backend:9} latency commit->handler p50 {lat['p50']:.1f} ms  p99 {lat['p99']:.1f} ms"
            f"  max {lat['max']:.1f} ms (n={lat['n']});  delivered {r['delivered_per_s']:.0f} events/s;"
            f"  writes {r['writes_per_s_plain']:.0f}/s plain, {r['writes_per_s_outbox']:.0f}/s with the outbox"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
