"""Cold start of the FC handler against a bare Starlette app (docs/development.md#benchmarks: at most 1.5x bare).

    .venv/bin/python bench/coldstart.py [--runs 30] [--warmup 3] [--json out.json]

One sample = one fresh Python process that imports the handler and answers its first
request, timed from spawn to exit, nothing else running:

- ``bare``: imports ``bench/bare_app.py``'s Starlette app and drives one ``GET /`` through
  it in-process (ASGI, asyncio), as FC's runtime would call a handler;
- ``fc healthz``: imports ``minibase.runtime.fc`` and answers a FC 3.0 HTTP trigger event
  for ``GET /healthz`` (config load, app build, store open: the least a first request costs);
- ``fc login``: the same with a dev login (``POST …/proxy/<service>/session/``): a new
  instance of a running deployment (the database exists), a user upserted, a session row
  written, credentials minted;
- ``fc 1st login``: the same on a fresh data dir every time (SQLite migrations too): the
  first request of a brand-new deployment, once per deployment, so it has no target.

Each process checks its own answer and exits non-zero if it is wrong. Kinds alternate run
by run after unrecorded warm-up runs (page cache and .pyc files warm for all alike); the
ratio is median ÷ bare's median. Temp dirs are removed on exit.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SERVICE = "todo-list-svc"
TARGET = 1.5

CONFIG = f"""\
[app]
name = "coldstart"
service = "{SERVICE}"
default_collection = "todo_list"
secret = "coldstart-benchmark-secret-0123456789abcdef"

[auth.dev]
enabled = true

# Off: the bench logs the same user in hundreds of times a minute.
[rate_limits]
login_per_ip = "off"
login_per_subject = "off"
calls_per_user = "off"
calls_per_ip = "off"

[database]
url = "sqlite:///minibase.db"

[collections.todo_list]
read = "owner"
write = "owner"
"""

BARE = f"""
import asyncio, sys
sys.path.insert(0, {str(BENCH)!r})
from bare_app import app

async def first_request():
    scope = {{"type": "http", "asgi": {{"version": "3.0"}}, "http_version": "1.1", "method": "GET",
             "scheme": "https", "path": "/", "raw_path": b"/", "query_string": b"", "headers": [],
             "client": None, "server": None}}
    out, done = [], False
    async def receive():
        return {{"type": "http.request", "body": b"", "more_body": False}}
    async def send(message):
        out.append(message)
    await app(scope, receive, send)
    return out

msgs = asyncio.run(first_request())
assert msgs[0]["status"] == 200 and b'"data"' in msgs[1]["body"], msgs
"""

FC = """
import json, sys
from minibase.runtime.fc import http_handler

method, path, body = sys.argv[1], sys.argv[2], sys.argv[3]
event = {"version": "v1", "rawPath": path, "body": body, "isBase64Encoded": False,
         "headers": {"content-type": "application/json"}, "queryParameters": {},
         "requestContext": {"http": {"method": method, "path": path, "sourceIp": "1.2.3.4"},
                            "requestId": "cold", "domainName": "x.cn-hangzhou.fcapp.run"}}
resp = http_handler(json.dumps(event).encode(), None)
assert resp["statusCode"] == 200 and sys.argv[4] in resp["body"], resp
"""


def run_once(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    elapsed = (time.perf_counter() - t0) * 1e3
    if done.returncode != 0:
        raise SystemExit(f"coldstart: {' '.join(argv[:3])} failed:\n{done.stderr[-2000:]}")
    return elapsed


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--runs", type=int, default=30, help="timed runs of each kind (default 30)")
    p.add_argument("--warmup", type=int, default=3, help="unrecorded runs of each kind first (default 3)")
    p.add_argument("--json", help="also write the results as JSON to this file")
    args = p.parse_args()
    if args.runs < 1 or args.warmup < 0:
        p.error("--runs must be at least 1 and --warmup at least 0")

    # Both sides start from bytecode, as an installed package (and a deployed code package,
    # which `minibase deploy fc` compiles) does: site-packages was compiled by pip, but an
    # editable checkout is recompiled on every start when PYTHONDONTWRITEBYTECODE is set.
    import compileall

    compileall.compile_dir(str(ROOT / "minibase"), quiet=1)
    compileall.compile_file(str(BENCH / "bare_app.py"), quiet=1)
    work = Path(tempfile.mkdtemp(prefix="minibase-coldstart-"))
    try:
        config = work / "minibase.toml"
        config.write_text(CONFIG)
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(("MINIBASE_", "FC_"))}
        base_env["MINIBASE_CONFIG"] = str(config)
        # A warm data dir for healthz (migrated once, like a deployment's database).
        warm = work / "warm"
        py = sys.executable
        login = [py, "-c", FC, "POST", f"/2016-08-15/proxy/{SERVICE}/session/", '{"authCode": "dev:c"}']
        login.append("sessionId")
        kinds: dict[str, tuple[list[str], str | None]] = {
            "bare": ([py, "-c", BARE], None),
            "fc healthz": ([py, "-c", FC, "GET", "/healthz", "", '"ok"'], "warm"),
            # A new instance of a running deployment: the database is there already.
            "fc login": (login, "warm"),
            # The first request a brand-new deployment ever answers: it also creates the
            # database (migrations). Once per deployment, not per instance: no target.
            "fc 1st login": (login, "fresh"),
        }
        samples: dict[str, list[float]] = {k: [] for k in kinds}
        n = 0

        def once(kind: str) -> float:
            nonlocal n
            argv, data = kinds[kind]
            env = dict(base_env)
            if data == "warm":
                env["MINIBASE_DATA"] = str(warm)
            elif data == "fresh":
                n += 1
                env["MINIBASE_DATA"] = str(work / f"fresh-{n}")
            ms = run_once(argv, env)
            if data == "fresh":
                shutil.rmtree(env["MINIBASE_DATA"], ignore_errors=True)
            return ms

        for _ in range(args.warmup):
            for kind in kinds:
                once(kind)
        order = list(kinds)
        for i in range(args.runs):
            for kind in order if i % 2 == 0 else order[::-1]:
                samples[kind].append(once(kind))
            print(f"  run {i + 1}/{args.runs}", file=sys.stderr, end="\r", flush=True)
        print(file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    bare = statistics.median(samples["bare"])
    print(f"cold start: fresh process, import + first request ({args.runs} runs each, median)")
    print(f"{'kind':<13} {'median ms':>10} {'min ms':>8} {'p90 ms':>8} {'x bare':>7}  target")
    results = {}
    for kind, s in samples.items():
        med = statistics.median(s)
        p90 = sorted(s)[max(0, int(len(s) * 0.9) - 1)]
        ratio = med / bare
        if kind in ("bare", "fc 1st login"):
            mark = ""
        else:
            mark = ("ok" if ratio <= TARGET else "MISSED") + f" (<= {TARGET}x)"
        print(f"{kind:<13} {med:>10.1f} {min(s):>8.1f} {p90:>8.1f} {ratio:>7.2f}  {mark}")
        results[kind] = {"samples_ms": [round(x, 2) for x in s], "median_ms": med, "ratio_to_bare": ratio}
    if args.json:
        Path(args.json).write_text(json.dumps({"target_ratio": TARGET, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
