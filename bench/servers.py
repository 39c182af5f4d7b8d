"""uvicorn + httptools against granian (a Rust ASGI server), one worker each, same wrk load.

Measures the bare Starlette app's ``GET /`` and minibase's FC-signed ``db get`` under both
servers: uvicorn with ``minibase serve``'s settings (uvloop, httptools), granian with
``--interface asgi --loop uvloop --http 1 --no-ws``. Rounds alternate the servers; the
table gives min-max over rounds. granian is not a minibase dependency:

    .venv/bin/pip install granian
    .venv/bin/python bench/servers.py --runs 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pocketbase import CONFIG_TOML, _range
from run import (
    BARE_APP,
    DB_PATH,
    HOST,
    BenchError,
    Load,
    Session,
    bare_argv,
    db_event,
    free_port,
    minibase_argv,
    parse_duration,
    parse_wrk,
    run_wrk,
    signed_args,
    spawn,
    stop_all,
    wait_answer,
    workdir,
    wrk_duration,
)

BENCH = Path(__file__).resolve().parent


def granian_argv(factory: str, port: int) -> list[str]:
    exe = Path(sys.executable).with_name("granian")
    if not exe.exists():
        raise BenchError("granian is not installed: pip install granian")
    argv = [str(exe), "--interface", "asgi", "--workers", "1", "--loop", "uvloop", "--http", "1"]
    return [
        *argv,
        "--no-ws",
        "--log-level",
        "warning",
        "--host",
        HOST,
        "--port",
        str(port),
        "--factory",
        factory,
    ]


def start(kind: str, server: str, work: Path, config: Path) -> tuple[int, Session | None]:
    port = free_port()
    log = work / f"{server}-{kind}.log"
    data = work / f"data-{server}"
    env = {**os.environ, "BENCH_CONFIG": str(config), "BENCH_DATA": str(data), "PYTHONPATH": str(BENCH)}
    if server == "uvicorn":
        argv = bare_argv(port) if kind == "bare" else minibase_argv(config, data, port, 1)
    else:
        argv = granian_argv(f"asgi_app:{kind}", port)
    proc = spawn(argv, log=log, env=env)
    path = "/" if kind == "bare" else "/healthz"
    wait_answer(proc, port, "GET", path, None, time.monotonic() + 60, log)
    if kind == "bare":
        return port, None
    session = Session(port)
    session.login()
    session.client.db.batch(
        [{"op": "put", "obj": {"id": "bench", "title": "t", "n": 1}}], collection="todo_list"
    )
    return port, session


def load(kind: str, port: int, session: Session | None) -> Load:
    if session is None:
        return Load(f"http://{HOST}:{port}/", ["method=GET", "expect=data"])
    body = orjson.dumps(db_event("get", session.sid))  # the document "bench" (DOC_ID)
    headers = session.fresh_headers(body)
    if session.check_signed(body, headers, "db get") is None:
        raise BenchError("the bench document is missing")
    return Load(f"http://{HOST}:{port}{DB_PATH}", signed_args(headers, body))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="uvicorn + httptools against granian, one worker each.")
    p.add_argument("--duration", type=parse_duration, default=5.0)
    p.add_argument("--warmup", type=parse_duration, default=1.0)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench: wrk is not on PATH", file=sys.stderr)
        return 2
    assert BARE_APP.exists()
    try:
        with workdir(False) as work:
            config = work / "minibase.toml"
            config.write_text(CONFIG_TOML)
            rps: dict[tuple[str, str], list[float]] = {}
            ratios: dict[str, list[float]] = {}
            for rnd in range(args.runs):
                for server in ("uvicorn", "granian"):
                    got: dict[str, float] = {}
                    for kind in ("bare", "minibase"):
                        port, session = start(kind, server, work, config)
                        target = load(kind, port, session)
                        run_wrk(target, wrk_duration(args.warmup), 1, args.connections, args.warmup + 60)
                        out = parse_wrk(
                            run_wrk(
                                target, wrk_duration(args.duration), 1, args.connections, args.duration + 60
                            )
                        )
                        if out["check_bad"] or out["socket_errors"]:
                            raise BenchError(f"{server} {kind}: errors: {out['first_bad']}")
                        got[kind] = out["rps"]
                        rps.setdefault((server, kind), []).append(out["rps"])
                        print(
                            f"  round {rnd + 1} {server:8} {kind:9} {out['rps']:9,.0f} req/s", file=sys.stderr
                        )
                        if session is not None:
                            session.close()
                        stop_all()
                    ratios.setdefault(server, []).append(got["minibase"] / got["bare"])
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    finally:
        stop_all()
    print(f"\nwrk -t1 -c{args.connections} -d{wrk_duration(args.duration)}, {args.runs} rounds, min-max\n")
    print("| server | bare GET / req/s | minibase db get req/s | db get ÷ bare |")
    print("|---|---|---|---|")
    for server in ("uvicorn", "granian"):
        bare, mb = rps[(server, "bare")], rps[(server, "minibase")]
        print(f"| {server} | {_range(bare)} | {_range(mb)} | {_range(ratios[server], '{:.2f}')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
