"""CPU time per request of minibase's ASGI app alone: no socket, no HTTP parser.

The app ``minibase serve`` builds is called directly under uvloop with the bench user's
FC-signed request (the one ``bench/run.py`` sends), ``--concurrency`` at a time, in
``--rounds`` batches of ``--requests``; each batch's ``time.process_time()`` per request
is printed, best first. Over HTTP, uvicorn and the kernel add their own cost and a busy
machine moves wrk figures by a third; this measures the part minibase controls.

    .venv/bin/python bench/inproc.py                                # db get, 32 in flight
    .venv/bin/python bench/inproc.py --op list --profile tottime    # and cProfile's top 30
    .venv/bin/python bench/inproc.py --ab ../other-tree --rounds 5  # two trees, alternating

``--ab TREE`` runs this script once per round for this tree and once for ``TREE`` (its
``minibase`` package first on ``PYTHONPATH``), alternating, and prints each run's best
batch. cProfile (``--profile``) inflates Python calls about three times: use it to find
where time goes, and the unprofiled figures to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (
    CONFIG_TOML,
    DB_PATH,
    BenchError,
    Session,
    db_event,
    free_port,
    minibase_argv,
    seed,
    spawn,
    stop,
    wait_answer,
)

OPS = ("get", "list", "insert", "update")


def prepare(work: Path, op: str) -> tuple[Path, bytes, dict[str, str]]:
    """A data dir with the bench user and documents, made through a real server (login
    and writes as clients make them); the config path, the request body and its headers."""
    config = work / "minibase.toml"
    config.write_text(CONFIG_TOML)
    port = free_port()
    proc = spawn(minibase_argv(config, work / "data", port), log=work / "serve.log")
    try:
        wait_answer(proc, port, "GET", "/healthz", None, time.monotonic() + 30, work / "serve.log")
        session = Session(port)
        try:
            session.login()
            seed(session)
            body = orjson.dumps(db_event(op, session.sid))
            headers = session.fresh_headers(body)
        finally:
            session.close()
    finally:
        stop(proc)
    return config, body, headers


async def measure(
    config: Path, data: Path, body: bytes, headers: dict[str, str], args: argparse.Namespace
) -> list[float]:
    from minibase.app import create_app
    from minibase.config import load_config

    app = create_app(load_config(config, data_dir=data))
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw += [(b"host", b"127.0.0.1"), (b"content-length", str(len(body)).encode())]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": DB_PATH,
        "raw_path": DB_PATH.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": raw,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }

    async def one() -> None:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # a disconnect never comes
            raise AssertionError  # pragma: no cover

        status: list[int] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(dict(scope), receive, send)
        if status != [200]:
            raise BenchError(f"the app answered {status} to the bench request")

    async def batch(n: int) -> None:
        c = args.concurrency
        for _ in range(max(1, n // c)):
            await asyncio.gather(*(one() for _ in range(c)))

    lifespan_in: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    lifespan_out: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, lifespan_in.get, lifespan_out.put)
    )
    await lifespan_in.put({"type": "lifespan.startup"})
    started = await lifespan_out.get()
    if started["type"] != "lifespan.startup.complete":
        raise BenchError(f"the app did not start: {started}")
    try:
        await batch(min(args.requests, 500))  # warm-up: caches, statements, first imports
        out = []
        for r in range(args.rounds):
            profile = cProfile.Profile() if args.profile and r == args.rounds - 1 else None
            if profile is not None:
                profile.enable()
            t0 = time.process_time()
            await batch(args.requests)
            out.append(
                (time.process_time() - t0) / (args.requests // args.concurrency * args.concurrency) * 1e6
            )
            if profile is not None:
                profile.disable()
                pstats.Stats(profile, stream=sys.stderr).sort_stats(args.profile).print_stats(30)
        return out
    finally:
        await lifespan_in.put({"type": "lifespan.shutdown"})
        await lifespan_out.get()
        await task


def single(args: argparse.Namespace) -> list[float]:
    import uvloop

    with tempfile.TemporaryDirectory(prefix="minibase-inproc-") as tmp:
        work = Path(tmp)
        config, body, headers = prepare(work, args.op)
        if args.profile:  # the profiled batch is not a measurement: leave it out
            return uvloop.run(measure(config, work / "data", body, headers, args))[:-1]
        return uvloop.run(measure(config, work / "data", body, headers, args))


def ab(args: argparse.Namespace) -> int:
    other = Path(args.ab).resolve()
    if not (other / "minibase" / "__init__.py").is_file():
        raise BenchError(f"{other} holds no minibase package")
    here = Path(__file__).resolve().parent.parent
    argv = [sys.executable, str(Path(__file__).resolve()), "--op", args.op, "--json"]
    argv += ["--requests", str(args.requests), "--concurrency", str(args.concurrency), "--rounds", "3"]
    best: dict[str, list[float]] = {"this": [], "other": []}
    for r in range(args.rounds):
        for name, tree in (("this", here), ("other", other)):
            env = dict(os.environ, PYTHONPATH=str(tree))
            done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise BenchError(f"the {name} tree's run failed:\n{done.stderr[-2000:]}")
            figure = min(json.loads(done.stdout.strip().splitlines()[-1]))
            best[name].append(figure)
            print(f"round {r + 1} {name:5} {figure:7.1f} µs/request", file=sys.stderr, flush=True)
    print(f"\n{args.op}, {args.concurrency} in flight, best batch per run (µs of CPU per request):")
    for name, tree in (("this", here), ("other", other)):
        runs = ", ".join(f"{v:.1f}" for v in best[name])
        print(f"  {name:5} {tree}: {runs} (best {min(best[name]):.1f})")
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--op", choices=OPS, default="get")
    p.add_argument("--requests", type=int, default=6400, help="per batch (default 6400)")
    p.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    p.add_argument("--rounds", type=int, default=5, help="batches, or --ab runs per tree (default 5)")
    p.add_argument("--profile", choices=("tottime", "cumtime"), help="cProfile one more batch")
    p.add_argument("--ab", metavar="TREE", help="alternate with the minibase package of TREE")
    p.add_argument("--json", action="store_true", help="print the batches as one JSON list")
    args = p.parse_args(argv)
    if args.requests < args.concurrency or args.concurrency < 1 or args.rounds < 1:
        p.error("--requests must be at least --concurrency, both and --rounds at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.ab:
            return ab(args)
        if args.profile:
            args.rounds += 1
        figures = single(args)
    except BenchError as e:
        print(f"inproc: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(figures))
    else:
        shown = ", ".join(f"{v:.1f}" for v in sorted(figures))
        print(f"{args.op}, {args.concurrency} in flight: {shown} µs of CPU per request (best first)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
