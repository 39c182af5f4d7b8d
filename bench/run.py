"""minibase throughput and cold-start benchmark against a bare Starlette app (docs/development.md#benchmarks).

    .venv/bin/python bench/run.py [--quick] [--duration 10s] [--cold-runs 5] [--json out.json]

Starts ``minibase serve`` (dev login on, fresh temp data dir) and ``bench/bare_app.py``
under the same uvicorn settings on 127.0.0.1, drives each with ``wrk -t1 -c32`` for the
same time, then times cold starts of both. Prints a table with ratios to the bare app and
the targets in docs/development.md#benchmarks. Everything it starts is stopped, and its temp dir removed, on exit,
failure or Ctrl-C. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from minibase.client import Client, signed_headers

HOST = "127.0.0.1"
SERVICE = "todo-list-svc"
FC_API = "/2016-08-15"
SESSION_PATH = f"{FC_API}/proxy/{SERVICE}/session/"
DB_PATH = f"{FC_API}/services/{SERVICE}/functions/db/invocations"
AUTH_CODE = "dev:bench"
DOC_ID = "bench"
LIST_DOCS = 40  # the bench user's documents with a number n, for the list of 20

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
CHECK_LUA = BENCH_DIR / "wrk" / "check.lua"
BARE_APP = BENCH_DIR / "bare_app.py"

# The targets (docs/development.md#benchmarks)
TARGET_GET_RATIO = 0.7  # db get >= 0.7 x bare (issue 17)
TARGET_COLD_RATIO = 1.5  # cold start <= 1.5 x bare
POCKETBASE_VIEW = 6400.0  # PocketBase authenticated record view, req/s (same machine class)
POCKETBASE_CREATE = 3300.0  # PocketBase creates, req/s

CONFIG_TOML = f"""\
# Written by bench/run.py: the TODO example's settings, dev login only.
[app]
name = "bench"
service = "{SERVICE}"
default_collection = "todo_list"

[auth.dev]
enabled = true

[database]
url = "sqlite:///minibase.db"

# Off: one bench user makes thousands of calls a second (the limits would be what is measured).
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


class BenchError(Exception):
    """A failure with a message for the user (no traceback)."""


# --------------------------------------------------------------------------- processes

_children: list[subprocess.Popen[bytes]] = []


def spawn(
    argv: Sequence[str], *, log: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a child in its own process group (so Ctrl-C reaches only us and we stop it)."""
    out: Any = subprocess.DEVNULL
    if log is not None:
        out = log.open("ab")
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
            start_new_session=True,
            env=env,
            cwd=ROOT,
        )
    finally:
        if log is not None:
            out.close()
    _children.append(proc)
    return proc


def stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the child's process group, SIGKILL it after ``grace`` seconds."""
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


def stop_all() -> None:
    for proc in list(reversed(_children)):
        stop(proc, grace=3.0)


def _on_signal(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def python() -> str:
    return sys.executable


def minibase_exe() -> str:
    exe = Path(sys.executable).with_name("minibase")
    if exe.exists():
        return str(exe)
    found = shutil.which("minibase")
    if found is None:
        raise BenchError(
            "the 'minibase' console script is not installed next to this Python (pip install -e .)"
        )
    return found


def minibase_argv(config: Path, data: Path, port: int, workers: int = 1) -> list[str]:
    """One worker unless asked: the ratios compare one minibase process with one bare one."""
    return [
        minibase_exe(),
        "serve",
        "--config",
        str(config),
        "--data",
        str(data),
        "--host",
        HOST,
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--workers",
        str(workers),
    ]


def bare_argv(port: int, http: str = "auto") -> list[str]:
    argv = [python(), str(BARE_APP), "--host", HOST, "--port", str(port), "--log-level", "warning"]
    return [*argv, "--http", http]


# ------------------------------------------------------------------------ raw HTTP probe


def probe(
    port: int, method: str, path: str, body: bytes | None = None, timeout: float = 5.0
) -> tuple[int, bytes]:
    """One request on a new connection (http.client: cheap, no pool); raises OSError if refused."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"content-type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_answer(
    proc: subprocess.Popen[bytes],
    port: int,
    method: str,
    path: str,
    body: bytes | None,
    deadline: float,
    log: Path | None,
) -> tuple[int, bytes]:
    """Poll until the server answers (any status); fail if it exits or the deadline passes."""
    while True:
        if proc.poll() is not None:
            tail = ""
            if log is not None and log.exists():
                tail = "\n" + log.read_text(errors="replace")[-2000:]
            argv = proc.args if isinstance(proc.args, list) else [proc.args]
            name = " ".join(Path(str(a)).name for a in argv[:2])  # "minibase serve", "python bare_app.py"
            raise BenchError(f"{name} exited with {proc.returncode} before answering {path}{tail}")
        try:
            return probe(port, method, path, body, timeout=max(0.5, deadline - time.monotonic()))
        except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
            pass
        except (TimeoutError, OSError) as e:
            if time.monotonic() >= deadline:
                raise BenchError(f"no answer on port {port} {path}: {e}") from None
        if time.monotonic() >= deadline:
            raise BenchError(f"the server on port {port} did not answer {path} in time")
        time.sleep(0.001)


# ----------------------------------------------------------------------------- wrk


@dataclass
class WrkResult:
    scenario: str
    label: str
    round: int
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    check_bad: int
    check_good: int
    first_bad: str | None = None
    ratio_to_bare: float | None = None
    target: str | None = None
    target_met: bool | None = None

    @property
    def errors(self) -> int:
        # Non-2xx answers are also "bad" to the Lua check; count each failed request once.
        return max(self.check_bad, self.non_2xx) + self.socket_errors


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if m is None:
        raise ValueError(f"unparseable wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> dict[str, Any]:
    def need(pattern: str) -> re.Match[str]:
        m = re.search(pattern, out, re.MULTILINE)
        if m is None:
            raise BenchError(f"could not find {pattern!r} in wrk's output:\n{out}")
        return m

    reqs = need(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m),")
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    good = sum(int(g) for g in re.findall(r"^BENCH_CHECK good=(\d+) bad=\d+", out, re.MULTILINE))
    bad = sum(int(b) for b in re.findall(r"^BENCH_CHECK good=\d+ bad=(\d+)", out, re.MULTILINE))
    first = re.search(r"^BENCH_FIRST_BAD (.*)$", out, re.MULTILINE)
    return {
        "requests": int(reqs.group(1)),
        "duration_s": float(reqs.group(2)) * _UNITS[reqs.group(3)] / 1e3,
        "rps": float(need(r"^Requests/sec:\s+([\d.]+)").group(1)),
        "p50_ms": _ms(need(r"^\s+50%\s+(\S+)").group(1)),
        "p99_ms": _ms(need(r"^\s+99%\s+(\S+)").group(1)),
        "socket_errors": sum(int(x) for x in sock.groups()) if sock else 0,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "check_good": good,
        "check_bad": bad,
        "first_bad": first.group(1) if first else None,
    }


@dataclass
class Load:
    """One wrk target: URL plus the check.lua arguments and environment."""

    url: str
    args: list[str] = field(default_factory=list)
    unique_id: str | None = None


def run_wrk(load: Load, duration: str, threads: int, connections: int, timeout_s: float) -> str:
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}",
        "--latency",
        "--timeout",
        "5s",
        "-s",
        str(CHECK_LUA),
        load.url,
        "--",
        *load.args,
    ]
    env = dict(os.environ)
    env.pop("BENCH_UNIQUE_ID", None)
    if load.unique_id:
        env["BENCH_UNIQUE_ID"] = load.unique_id
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
        cwd=ROOT,
    )
    _children.append(proc)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk did not finish within {timeout_s:.0f} s") from None
    finally:
        stop(proc, grace=1.0)  # on timeout or Ctrl-C; just forgets it once it has exited
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise BenchError(f"wrk failed (exit {proc.returncode}):\n{text}")
    return text


def parse_duration(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(s|m)?", text.strip())
    if m is None:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 10s, 1m)")
    return float(m.group(1)) * (60.0 if m.group(2) == "m" else 1.0)


def wrk_duration(seconds: float) -> str:
    return f"{max(1, round(seconds))}s"


# --------------------------------------------------------------------- minibase session


class Session:
    """A logged-in bench user: the Python client plus FC-signed request material."""

    def __init__(self, port: int) -> None:
        self.base = f"http://{HOST}:{port}"
        self.client = Client(self.base, SERVICE)

    def login(self) -> None:
        self.client.login(auth_code=AUTH_CODE)

    def close(self) -> None:
        self.client.close()

    @property
    def sid(self) -> str:
        assert self.client.session_id is not None
        return self.client.session_id

    def fresh_headers(self, body: bytes, content_md5: bool = True) -> dict[str, str]:
        """Signed headers with a Date of now (valid 15 min), credentials renewed if close to expiry;
        ``content_md5=False``: no Content-MD5 (as FC's Python SDK), for bodies that change per request."""
        creds = self.client.credentials
        if creds is None or creds.expiration - time.time() < 300:
            self.client.refresh()
            creds = self.client.credentials
        assert creds is not None
        return signed_headers(creds, "POST", DB_PATH, body, content_md5=content_md5)

    def check_signed(self, body: bytes, headers: dict[str, str], what: str) -> Any:
        """One request with httpx exactly as wrk will send it; BenchError unless it succeeds."""
        resp = httpx.post(self.base + DB_PATH, content=body, headers=headers, timeout=10.0)
        err_type = resp.headers.get("x-fc-error-type")
        try:
            answer = orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            answer = None
        if resp.status_code != 200 or err_type or not isinstance(answer, dict) or "data" not in answer:
            raise BenchError(
                f"sample {what} request failed: HTTP {resp.status_code}"
                f"{' ' + err_type if err_type else ''}: {resp.text[:500]}"
            )
        return answer["data"]


def signed_args(headers: dict[str, str], body: bytes) -> list[str]:
    args = ["method=POST", *(f"header={k}: {v}" for k, v in headers.items()), "body=" + body.decode()]
    return [*args, "expect=data"]


# --------------------------------------------------------------------------- scenarios


@dataclass
class Scenario:
    name: str
    label: str
    server: str  # "bare", "bare_h11" or "minibase"


SCENARIOS = [
    Scenario("bare", "bare GET /", "bare"),
    Scenario("db_get", "db get (FC-signed)", "minibase"),
    Scenario("db_list", "db list of 20 (FC-signed)", "minibase"),
    Scenario("login", "dev login (write)", "minibase"),
    Scenario("db_put", "db put (FC-signed, write)", "minibase"),
    Scenario("db_insert", "db insert (FC-signed, write)", "minibase"),
]
# --h11-baseline: the bare app on uvicorn's pure-Python h11 parser, for reference only
# (the "about 7,000 req/s" once quoted for a bare app matches this, not the httptools parser serve uses).
H11_SCENARIO = Scenario("bare_h11", "bare GET / (h11, reference)", "bare_h11")


def seed(session: Session) -> None:
    """The bench user's documents: ``DOC_ID`` for the get, ``LIST_DOCS`` numbered ones."""
    session.client.db("put", obj={"id": DOC_ID, "title": "benchmark document", "completed": False})
    for n in range(LIST_DOCS):
        session.client.db("put", obj={"id": f"list-{n}", "title": f"todo {n}", "n": n})


def db_event(op: str, sid: str) -> dict[str, Any]:
    """The bench's signed ``db`` event for ``op`` (get, list, insert, update)."""
    if op == "get":
        return {"sid": sid, "op": "get", "id": DOC_ID}
    if op == "list":
        return {"sid": sid, "op": "query", "orderBy": [["n", "desc"]], "limit": 20}
    if op == "insert":
        return {"sid": sid, "op": "insert", "obj": {"title": "benchmark insert", "n": -1}}
    if op == "update":
        return {"sid": sid, "op": "update", "id": "list-0", "inc": {"n": 1}}
    raise AssertionError(op)


def build_load(sc: Scenario, ports: dict[str, int], session: Session, run_tag: str) -> Load:
    if sc.server.startswith("bare"):
        return Load(f"http://{HOST}:{ports[sc.server]}/", ["method=GET", "expect=data"])
    mb = f"http://{HOST}:{ports['minibase']}"
    if sc.name == "login":
        login = orjson.dumps({"authCode": AUTH_CODE}).decode()
        return Load(
            mb + SESSION_PATH,
            ["method=POST", "header=Content-Type: application/json", "body=" + login, "expect=session"],
        )
    if sc.name == "db_get":
        body = orjson.dumps(db_event("get", session.sid))
        headers = session.fresh_headers(body)
        if session.check_signed(body, headers, "db get") is None:
            raise BenchError(f"sample db get returned data null: document {DOC_ID!r} is missing")
        return Load(mb + DB_PATH, signed_args(headers, body))
    if sc.name == "db_list":
        body = orjson.dumps(db_event("list", session.sid))
        headers = session.fresh_headers(body)
        if len(session.check_signed(body, headers, "db list")) != 20:
            raise BenchError("sample db list did not return 20 documents")
        return Load(mb + DB_PATH, signed_args(headers, body))
    if sc.name == "db_insert":
        # No id: the server generates one, so the body (and its signed Content-MD5) is fixed.
        body = orjson.dumps(db_event("insert", session.sid))
        headers = session.fresh_headers(body)
        session.check_signed(body, headers, "db insert")
        return Load(mb + DB_PATH, signed_args(headers, body))
    if sc.name == "db_put":
        obj = {"id": "__ID__", "title": "benchmark write", "completed": False}
        body = orjson.dumps({"sid": session.sid, "op": "put", "obj": obj})
        headers = session.fresh_headers(body, content_md5=False)  # every request's body differs
        sample = body.replace(b"__ID__", f"{run_tag}-sample".encode())
        session.check_signed(sample, headers, "db put")
        return Load(mb + DB_PATH, signed_args(headers, body), unique_id=run_tag)
    raise AssertionError(sc.name)


def bench_throughput(args: argparse.Namespace, ports: dict[str, int], session: Session) -> list[WrkResult]:
    """Every selected scenario once per round; each round's ratios are to that round's bare run."""
    results: list[WrkResult] = []
    duration = wrk_duration(args.duration)
    warmup = wrk_duration(args.warmup) if args.warmup > 0 else None
    bound = args.duration + 60.0
    scenarios = [sc for sc in SCENARIOS if sc.name in args.only]
    if "bare_h11" in ports:
        scenarios.append(H11_SCENARIO)
    for round_no in range(1, args.rounds + 1):
        done: list[WrkResult] = []
        for i, sc in enumerate(scenarios):
            tag = f"{round_no}-{i}-{int(time.time())}"
            if warmup is not None:
                print(f"  {sc.label}: warm-up {warmup} ...", file=sys.stderr, flush=True)
                run_wrk(
                    build_load(sc, ports, session, "w" + tag), warmup, args.threads, args.connections, bound
                )
            print(
                f"  {sc.label}: {duration} (round {round_no}/{args.rounds}) ...", file=sys.stderr, flush=True
            )
            # Re-signed right before the run: the Date stays well inside the 15-minute window.
            out = run_wrk(
                build_load(sc, ports, session, "r" + tag), duration, args.threads, args.connections, bound
            )
            if args.verbose:
                print(out, file=sys.stderr)
            done.append(WrkResult(scenario=sc.name, label=sc.label, round=round_no, **parse_wrk(out)))
        _judge(done)
        results.extend(done)
    return results


def _judge(results: list[WrkResult]) -> None:
    """Ratios to the bare run of the same round, and the targets."""
    bare = next(r for r in results if r.scenario == "bare")
    for r in results:
        r.ratio_to_bare = r.rps / bare.rps if bare.rps else None
        checks: list[tuple[str, bool]] = []
        if r.scenario == "db_get":
            checks = [
                (f">= {TARGET_GET_RATIO:.2f}x bare", (r.ratio_to_bare or 0) >= TARGET_GET_RATIO),
                (f">= {POCKETBASE_VIEW:,.0f} req/s (PocketBase view)", r.rps >= POCKETBASE_VIEW),
            ]
        elif r.scenario in ("db_put", "db_insert"):
            checks = [(f">= {POCKETBASE_CREATE:,.0f} req/s (PocketBase create)", r.rps >= POCKETBASE_CREATE)]
        elif r.scenario == "bare_h11":
            r.target = "reference only (~7,000 quoted for bare)"
        if checks:
            if r.errors:
                checks.append(("no errors", False))
            r.target = "; ".join(f"{text} {_mark(met)}" for text, met in checks)
            r.target_met = all(met for _, met in checks)


# -------------------------------------------------------------------------- cold start


@dataclass
class ColdResult:
    name: str
    samples_ms: list[float]
    median_ms: float = 0.0
    min_ms: float = 0.0
    ratio_to_bare: float | None = None
    target: str | None = None
    target_met: bool | None = None


def cold_once(kind: str, work: Path, config: Path, index: int, timeout_s: float) -> float:
    """Milliseconds from spawn to the first answered real request, the process then stopped."""
    port = free_port()
    log = work / f"cold-{kind}-{index}.log"
    if kind == "minibase":
        data = work / f"cold-data-{index}"  # fresh: migrations and secret creation included
        argv = minibase_argv(config, data, port)
        method, path, body = "POST", SESSION_PATH, orjson.dumps({"authCode": AUTH_CODE})
    else:
        argv = bare_argv(port)
        method, path, body = "GET", "/", None
    t0 = time.perf_counter()
    proc = spawn(argv, log=log)
    try:
        status, answer = wait_answer(proc, port, method, path, body, time.monotonic() + timeout_s, log)
        elapsed = (time.perf_counter() - t0) * 1e3
    finally:
        stop(proc)
    ok_key = b'"sessionId"' if kind == "minibase" else b'"data"'
    if status != 200 or ok_key not in answer:
        raise BenchError(f"cold start of {kind}: first answer was HTTP {status}: {answer[:300]!r}")
    if kind == "minibase":
        shutil.rmtree(data, ignore_errors=True)
    return elapsed


def bench_cold(args: argparse.Namespace, work: Path, config: Path) -> list[ColdResult]:
    samples: dict[str, list[float]] = {"bare": [], "minibase": []}
    kinds = ["bare", "minibase"]
    # One unrecorded round first: page cache and .pyc files warm for both alike.
    for kind in kinds:
        cold_once(kind, work, config, -1, args.cold_timeout)
    for i in range(args.cold_runs):
        order = kinds if i % 2 == 0 else kinds[::-1]  # alternate who goes first
        for kind in order:
            ms = cold_once(kind, work, config, i, args.cold_timeout)
            samples[kind].append(ms)
            print(f"  cold start {i + 1}/{args.cold_runs} {kind}: {ms:.0f} ms", file=sys.stderr, flush=True)
    out = []
    for kind in kinds:
        s = samples[kind]
        out.append(ColdResult(kind, [round(x, 2) for x in s], statistics.median(s), min(s)))
    bare, mb = out
    bare.ratio_to_bare = 1.0
    mb.ratio_to_bare = mb.median_ms / bare.median_ms
    mb.target = f"<= {TARGET_COLD_RATIO}x bare"
    mb.target_met = mb.ratio_to_bare <= TARGET_COLD_RATIO
    return out


# ------------------------------------------------------------------------------ report


def _mark(met: bool | None) -> str:
    return "" if met is None else ("ok" if met else "MISSED")


def print_table(results: list[WrkResult], cold: list[ColdResult], meta: dict[str, Any]) -> None:
    print()
    print(
        f"minibase bench: wrk -t{meta['threads']} -c{meta['connections']} -d{meta['duration']} "
        f"on {meta['cpus']} CPUs shared by wrk and the server; {meta['python']}; "
        f"load average {meta['load_average'][0]} before, {meta['load_average'][1]} after"
    )
    head = f"{'scenario':<29} {'req/s':>9} {'p50':>9} {'p99':>9} {'errors':>7} {'x bare':>7}  target"
    print(head)
    print("-" * (len(head) + 30))
    rounds = meta["rounds"]
    for r in results:
        ratio = f"{r.ratio_to_bare:.2f}" if r.ratio_to_bare is not None else "-"
        target = r.target or ""
        label = f"{r.label} [{r.round}]" if rounds > 1 else r.label
        print(
            f"{label:<29} {r.rps:>9,.0f} {r.p50_ms:>7.2f}ms {r.p99_ms:>7.2f}ms {r.errors:>7} {ratio:>7}  {target}"
        )
    if rounds > 1:
        print(f"x bare over {rounds} rounds (min / median / max):")
        for sc in dict.fromkeys(r.scenario for r in results if r.scenario != "bare"):
            ratios = [r.ratio_to_bare or 0.0 for r in results if r.scenario == sc]
            label = next(r.label for r in results if r.scenario == sc)
            print(f"  {label:<27} {min(ratios):.2f} / {statistics.median(ratios):.2f} / {max(ratios):.2f}")
    for r in results:
        if r.errors:
            detail = f"non-2xx {r.non_2xx}, socket {r.socket_errors}, failed check {r.check_bad}"
            print(f"  ! {r.label}: {detail}; first bad answer: {r.first_bad or '-'}")
    h11 = next((r for r in results if r.scenario == "bare_h11"), None)
    get = next((r for r in results if r.scenario == "db_get"), None)
    if h11 is not None and get is not None and h11.rps:
        print(f"  db get / bare on h11 = {get.rps / h11.rps:.2f}")
    if cold:
        print()
        head = f"{'cold start (spawn -> 1st answer)':<33} {'median':>9} {'min':>9} {'x bare':>7}  target"
        print(head)
        print("-" * (len(head) + 30))
        for c in cold:
            what = "bare (GET /)" if c.name == "bare" else "minibase (dev login, new data dir)"
            ratio = f"{c.ratio_to_bare:.2f}" if c.ratio_to_bare is not None else "-"
            target = f"{c.target} {_mark(c.target_met)}" if c.target else ""
            print(f"{what:<33} {c.median_ms:>7.0f}ms {c.min_ms:>7.0f}ms {ratio:>7}  {target}")
        print(f"({meta['cold_runs']} runs each, alternating, after one unrecorded warm-up round)")
    print()


# -------------------------------------------------------------------------------- main


@contextlib.contextmanager
def workdir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="minibase-bench-"))
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark minibase against a bare Starlette app (docs/development.md#benchmarks)."
    )
    p.add_argument("--quick", action="store_true", help="3 s runs, 1 s warm-up, 3 cold starts each")
    p.add_argument("--duration", type=parse_duration, default=None, help="wrk run per scenario (default 10s)")
    p.add_argument(
        "--warmup", type=parse_duration, default=None, help="unrecorded wrk run first (default 2s)"
    )
    p.add_argument(
        "--only",
        default=",".join(sc.name for sc in SCENARIOS),
        help="comma-separated scenarios to run (bare is always run: the ratios' baseline); "
        f"default all: {','.join(sc.name for sc in SCENARIOS)}",
    )
    p.add_argument("--rounds", type=int, default=1, help="run the scenarios this many times (default 1)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    p.add_argument("--cold-runs", type=int, default=None, help="cold starts of each server (default 5)")
    p.add_argument("--cold-timeout", type=float, default=30.0, help="seconds one cold start may take")
    p.add_argument("--no-cold", action="store_true", help="skip the cold-start measurement")
    p.add_argument(
        "--h11-baseline",
        action="store_true",
        help="add a reference row: the bare app on uvicorn's h11 parser (not used for ratios)",
    )
    p.add_argument("--json", type=Path, help="also write the results as JSON to this path")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (server logs, database)")
    p.add_argument("-v", "--verbose", action="store_true", help="print wrk's full output")
    args = p.parse_args(argv)
    if args.duration is None:
        args.duration = 3.0 if args.quick else 10.0
    if args.warmup is None:
        args.warmup = 1.0 if args.quick else 2.0
    if args.cold_runs is None:
        args.cold_runs = 3 if args.quick else 5
    if args.cold_runs < 1:
        p.error("--cold-runs must be at least 1")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    known = {sc.name for sc in SCENARIOS}
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    if only - known:
        p.error(f"unknown scenario(s) {', '.join(sorted(only - known))} (known: {', '.join(sorted(known))})")
    args.only = only | {"bare"}
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print(
            "bench: wrk is not on PATH. Install it, e.g.\n"
            "  sudo apt-get update && sudo apt-get install -y wrk     (Debian/Ubuntu)\n"
            "  brew install wrk                                        (macOS)\n"
            "then run this again.",
            file=sys.stderr,
        )
        return 2
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    # Both servers must start from bytecode, as an installed package does: site-packages
    # (Starlette, the bare app's whole stack) was compiled by pip, but an editable checkout
    # is compiled on every start when PYTHONDONTWRITEBYTECODE is set (as on these machines).
    import compileall

    compileall.compile_dir(str(ROOT / "minibase"), quiet=1)
    compileall.compile_file(str(ROOT / "bench" / "bare_app.py"), quiet=1)
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
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        stop_all()
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _run(args: argparse.Namespace, work: Path) -> int:
    load_before = os.getloadavg()[0]
    config = work / "minibase.toml"
    config.write_text(CONFIG_TOML)
    names = ["minibase", "bare", *(["bare_h11"] if args.h11_baseline else [])]
    ports: dict[str, int] = {}
    while len(set(ports.values())) < len(names):
        ports = {name: free_port() for name in names}

    print("bench: starting minibase and the bare app ...", file=sys.stderr, flush=True)
    servers: dict[str, subprocess.Popen[bytes]] = {}
    for name in names:
        log = work / f"{name}.log"
        if name == "minibase":
            argv = minibase_argv(config, work / "data", ports[name])
        else:
            argv = bare_argv(ports[name], "h11" if name == "bare_h11" else "auto")
        servers[name] = spawn(argv, log=log)
    deadline = time.monotonic() + 30.0
    for name, proc in servers.items():
        path = "/healthz" if name == "minibase" else "/"
        status, _ = wait_answer(proc, ports[name], "GET", path, None, deadline, work / f"{name}.log")
        if status != 200:
            raise BenchError(f"{name} {path} answered HTTP {status}")

    session = Session(ports["minibase"])
    try:
        try:
            session.login()
            seed(session)
        except Exception as e:
            raise BenchError(f"could not log in / put the bench document with the Python client: {e}") from e
        print(
            f"bench: wrk -t{args.threads} -c{args.connections}, {wrk_duration(args.duration)} per scenario",
            file=sys.stderr,
            flush=True,
        )
        results = bench_throughput(args, ports, session)
    finally:
        session.close()
    for proc in servers.values():
        stop(proc)

    cold: list[ColdResult] = []
    if not args.no_cold:
        print("bench: cold starts ...", file=sys.stderr, flush=True)
        cold = bench_cold(args, work, config)

    meta = {
        "duration": wrk_duration(args.duration),
        "warmup": wrk_duration(args.warmup) if args.warmup > 0 else None,
        "threads": args.threads,
        "connections": args.connections,
        "rounds": args.rounds,
        # The machine's other work moves every figure: 1-minute load average before and after.
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "cold_runs": args.cold_runs,
        "cpus": os.cpu_count(),
        "python": f"Python {platform.python_version()}",
        "platform": platform.platform(),
        "wrk": _wrk_version(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print_table(results, cold, meta)
    if args.json is not None:
        doc = {
            "meta": meta,
            "targets": {
                "db_get_ratio_to_bare": TARGET_GET_RATIO,
                "db_get_rps_pocketbase": POCKETBASE_VIEW,
                "db_put_rps_pocketbase": POCKETBASE_CREATE,
                "cold_start_ratio_to_bare": TARGET_COLD_RATIO,
            },
            "throughput": [{**asdict(r), "errors": r.errors} for r in results],
            "cold_start": [asdict(c) for c in cold],
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"bench: wrote {args.json}", file=sys.stderr)
    return 0


def _wrk_version() -> str:
    try:
        out = subprocess.run(["wrk", "--version"], capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    first = (out.stdout or out.stderr).decode(errors="replace").splitlines()
    return first[0].strip() if first else "?"


if __name__ == "__main__":
    sys.exit(main())
