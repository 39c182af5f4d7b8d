"""The authorization matrix (issue 7, part 3): op x rule x caller, over real HTTP, on every
backend, with both auth styles (``Authorization: Bearer <sessionId>`` on ``/invoke`` and
FC-signed credentials plus ``sid`` on the FC Invoke API path).

Callers: the owner, another user, no session, and six dead sessions -- idle-expired,
absolutely expired (the server's clock is moved), logged out, revoked by the admin CLI,
disabled by the admin CLI, and disabled in the store without a revoke. The expected answer
of every cell comes from the tables below (the rules' documented semantics written out in
Python), never from the code under test: an allowed read returns exactly the rows the rule
allows, a refused one none; a refused write leaves the database byte-for-byte as it was.
"""

from __future__ import annotations

import asyncio
import textwrap
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from minibase import cli
from minibase.app import create_app
from minibase.auth import fc_signature
from minibase.client import Credentials, signed_headers
from minibase.config import Config
from minibase.core import Minibase
from minibase.data.filters import Cmp
from minibase.store.records import Key
from minibase.store.writes import Insert, Remove
from tests.support.config import SECRET, SERVICE, Clock, base_raw
from tests.support.data import OTS_ENV, backend_environ, database_raw
from tests.support.live import run_uvicorn

MIN = 60.0
IDLE, MAX, TTL = 10 * MIN, 30 * MIN, 60 * MIN

# ------------------------------------------------------------------------ the tables

RULES = {
    "owner": "owner",
    "authenticated": "authenticated",
    "public": "public",
    "none": "none",
    "shared": "doc.uid == auth.uid || doc.shared == true",
    "members": "auth.uid in doc.members",
}


def may(rule: str, doc: dict[str, Any], uid: str | None) -> bool:
    """Whether ``rule`` lets ``uid`` (None: anonymous) touch ``doc``: docs/security.md and the rules'
    documented semantics (an absent ``auth.uid`` makes a comparison unknown, which denies)."""
    if rule == "owner":
        return uid is not None and doc["uid"] == uid
    if rule == "authenticated":
        return uid is not None
    if rule == "public":
        return True
    if rule == "none":
        return False
    if rule == "shared":
        return (uid is not None and doc["uid"] == uid) or doc.get("shared") is True
    if rule == "members":
        return uid is not None and uid in doc.get("members", [])
    raise AssertionError(rule)


def denied_outright(rule: str, uid: str | None) -> str | None:
    """The error when the rule allows this caller no document at all (checked before any
    document is looked at): anonymous callers are told to log in, users are refused."""
    if rule == "none":
        return "Unauthenticated" if uid is None else "PermissionDenied"
    if uid is None and rule in ("owner", "authenticated", "members"):
        return "Unauthenticated"
    return None


LIVE = ("owner", "other", "anon")
DEAD = ("idle", "absolute", "logout", "revoked", "disabled", "disabled_flag")
# Dead sessions are refused before any function runs, whatever the rule or op.
DEAD_CODE = {"bearer": "Unauthenticated", "signed": "InvalidSecurityToken"}
STATUS = {"Unauthenticated": 401, "PermissionDenied": 403, "NotFound": 404, "InvalidSecurityToken": 403}

MODULE = """
from minibase import function

@function("visible")
async def visible(ctx, event):
    page = await ctx.db.query(event["collection"])
    return sorted([d["uid"], d["id"]] for d in page["data"])

@function("relay")
async def relay(ctx, event):
    # A developer function that hands back what a db write answered (as the caller).
    return await ctx.db.call(event["event"])

@function("visiblePublic", public=True)
async def visible_public(ctx, event):
    page = await ctx.db.query(event["collection"])
    return sorted([d["uid"], d["id"]] for d in page["data"])
"""

# ----------------------------------------------------------------------- plumbing


class Direct:
    """The database as the server itself sees it (no rules), on its own connection and
    event loop: seeds documents, snapshots a collection, flips a user's disabled flag."""

    def __init__(self, config: Config) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.core = Minibase.from_config(config)
        self.uids: set[str] = set()  # whose documents snapshot() reads
        self.run(self.core.store.open())

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def close(self) -> None:
        self.run(self.core.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()

    def snapshot(self, collection: str) -> dict[tuple[str, str], dict[str, Any]]:
        """Every document of every user (one owner at a time: every backend serves that)."""
        docs = []
        for uid in sorted(self.uids):
            rows = self.run(self.core.store.query(collection, Cmp(("uid",), "eq", uid), (), 10_000, None))
            docs += [orjson.loads(body) for _, body in rows]
        return {(d["uid"], d["id"]): d for d in docs}

    def reset(self, collection: str, seed: dict[tuple[str, str], dict[str, Any]]) -> None:
        now = "2026-01-01T00:00:00.000Z"
        ops: dict[str, list[Any]] = {}  # one write per owner: TableStore's atomic unit
        for u, i in self.snapshot(collection):
            ops.setdefault(u, []).append(Remove(Key(collection, u, i)))
        for (u, i), fields in seed.items():
            ops.setdefault(u, []).append(Insert(Key(collection, u, i), fields))
        for batch in ops.values():
            self.run(self.core.store.write(batch, now))


@dataclass
class Who:
    uid: str | None
    sid: str | None
    creds: Credentials | None


def user_fields(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ("_version", "_created", "_updated")}


@pytest.fixture
def world(
    make_config: Callable[..., Config],
    backend: str,
    db_url: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[World]:
    (tmp_path / "matrix_fns.py").write_text(textwrap.dedent(MODULE))
    database = database_raw(backend, db_url)
    if backend == "tablestore":  # the admin CLI reads TableStore's credentials from here
        for k, v in OTS_ENV.items():
            monkeypatch.setenv(k, v)
    raw = base_raw(
        collections={f"m_{name}": {"read": text, "write": text} for name, text in RULES.items()},
        database=database,
        auth={"session_idle": "10m", "session_max": "30m", "credentials_ttl": "1h"},
        functions={"module": "matrix_fns"},
        # Authorization is under test here, not throttling.
        rate_limits={
            k: "off" for k in ("login_per_ip", "login_per_subject", "calls_per_user", "calls_per_ip")
        },
    )
    config = make_config(raw, backend_environ(backend))
    clock = Clock()
    core = Minibase.from_config(config, clock=clock)
    direct = Direct(config)
    try:
        with run_uvicorn(create_app(config, core=core)) as url, httpx.Client(base_url=url) as http:
            yield World(config, clock, http, direct, tmp_path, backend)
    finally:
        direct.close()


class World:
    def __init__(
        self,
        config: Config,
        clock: Clock,
        http: httpx.Client,
        direct: Direct,
        tmp_path: Path,
        backend: str,
    ) -> None:
        self.config, self.clock, self.http, self.direct = config, clock, http, direct
        self.tmp_path, self.backend = tmp_path, backend

    def login(self, name: str) -> Who:
        r = self.http.post("/session", json={"authCode": f"dev:{name}"})
        assert r.status_code == 200, r.text
        body = r.json()
        self.direct.uids.add(body["user"]["uid"])
        return Who(body["user"]["uid"], body["sessionId"], Credentials.from_wire(body["sts"]))

    def call(self, who: Who, style: str, function: str, event: dict[str, Any]) -> tuple[str | None, Any]:
        """(error code or None, data); also checks the HTTP status each path answers with."""
        if style == "bearer":
            headers = {"authorization": f"Bearer {who.sid}"} if who.sid else {}
            r = self.http.post(f"/invoke/{function}", json=event, headers=headers)
            body = r.json()
            if "error" in body:
                code = body["error"]["code"]
                assert r.status_code == STATUS.get(code, r.status_code), r.text
                return code, None
            assert r.status_code == 200
            return None, body["data"]
        assert who.creds is not None
        path = f"/2016-08-15/services/{SERVICE}/functions/{function}/invocations"
        payload = orjson.dumps({**event, "sid": who.sid})
        date = fc_signature.format_date(self.clock())  # the server's (moved) clock
        r = self.http.post(
            path, content=payload, headers=signed_headers(who.creds, "POST", path, payload, date=date)
        )
        body = r.json()
        if "ErrorCode" in body:
            assert r.status_code == STATUS[body["ErrorCode"]], r.text
            return body["ErrorCode"], None
        assert r.status_code == 200
        if "error" in body:
            assert r.headers["x-fc-error-type"] == "HandledInvocationError"
            return body["error"]["code"], None
        return None, body["data"]

    def admin(self, *args: str) -> None:
        toml = self.tmp_path / "admin.toml"
        url = self.config.database.url if self.backend != "sqlite" else "sqlite:///minibase.db"
        toml.write_text(
            f'[app]\nname = "todo"\nservice = "{SERVICE}"\nsecret = "{SECRET}"\n'
            f'[auth.dev]\nenabled = true\n[database]\nurl = "{url}"\n'
        )
        assert cli.main([*args, "--config", str(toml), "--data", str(self.config.data_dir)]) == 0


def make_callers(w: World) -> dict[str, Who]:
    """Log everyone in, moving the server's clock so that two sessions expire."""
    t0 = w.clock.t
    absolute = w.login("abe")  # created at t0: absolutely expired at t0 + 30m ...
    w.clock.t = t0 + 8 * MIN
    assert w.call(absolute, "bearer", "db", {"op": "count"})[0] is None  # ... though never idle
    w.clock.t = t0 + 16 * MIN
    idle = w.login("ivy")  # created at t0 + 16m, then never used: idle from t0 + 26m
    assert w.call(absolute, "bearer", "db", {"op": "count"})[0] is None
    w.clock.t = t0 + 24 * MIN
    assert w.call(absolute, "signed", "db", {"op": "count"})[0] is None
    w.clock.t = t0 + 32 * MIN
    who = {
        "owner": w.login("alice"),
        "other": w.login("bob"),
        "anon": Who(None, None, None),
        "idle": idle,
        "absolute": absolute,
        "logout": w.login("lou"),
        "revoked": w.login("rex"),
        "disabled": w.login("dis"),
        "disabled_flag": w.login("flg"),
    }
    for name in ("logout", "revoked", "disabled", "disabled_flag"):
        assert w.call(who[name], "signed", "db", {"op": "count"})[0] is None  # alive until now
    r = w.http.post("/session", json={"op": "logout", "sessionId": who["logout"].sid})
    assert r.status_code == 200
    w.admin("sessions", "revoke", "--uid", str(who["revoked"].uid))
    w.admin("users", "disable", str(who["disabled"].uid))
    assert w.direct.run(w.direct.core.store.set_user_disabled(str(who["disabled_flag"].uid), True))
    return who


def seed_docs(who: dict[str, Who]) -> dict[tuple[str, str], dict[str, Any]]:
    alice, bob = str(who["owner"].uid), str(who["other"].uid)
    docs = {
        (alice, "p"): {"n": 1, "shared": False, "members": []},
        (alice, "s"): {"n": 2, "shared": True, "members": [bob]},
        (bob, "b"): {"n": 3, "shared": False, "members": [alice]},
    }
    for name in DEAD:  # the dead users own documents too: none may reach them
        docs[(str(who[name].uid), "d")] = {"n": 9, "shared": True, "members": [alice, bob]}
    return docs


# ------------------------------------------------------------------------ the test


def test_authorization_matrix(world: World) -> None:
    w = world
    who = make_callers(w)
    seed = seed_docs(who)
    alice, bob = str(who["owner"].uid), str(who["other"].uid)
    stored = {k: {"id": k[1], **v, "uid": k[0]} for k, v in seed.items()}  # as the server stores them
    wrong: list[str] = []
    cells = 0

    for rule in RULES:
        col = f"m_{rule}"
        w.direct.reset(col, seed)
        for caller in (*LIVE, *DEAD):
            person = who[caller]
            uid = person.uid if caller in LIVE else None
            for style in ("bearer", "signed"):
                if style == "signed" and caller == "anon":
                    continue  # no credentials to sign with
                outright = DEAD_CODE[style] if caller in DEAD else denied_outright(rule, uid)

                cell = f"{rule}/{caller}/{style}"

                def check(
                    what: str,
                    want_code: str | None,
                    got: tuple[str | None, Any],
                    want: Any = None,
                    cell: str = cell,
                ) -> None:
                    nonlocal cells
                    cells += 1
                    code, data = got
                    if code != want_code or (code is None and data != want):
                        wrong.append(f"{cell}/{what}: expected {want_code or want!r}, got {code or data!r}")

                def call(
                    event: dict[str, Any],
                    function: str = "db",
                    person: Who = person,
                    style: str = style,
                    col: str = col,
                ) -> tuple[str | None, Any]:
                    return w.call(person, style, function, {"collection": col, **event})

                visible = sorted(k for k, d in stored.items() if may(rule, d, uid))
                # TableStore refuses (never answers partially) a listing across owners.
                across = outright or (
                    "InvalidArgument" if w.backend == "tablestore" and rule != "owner" else None
                )

                # ---- reads: exactly the rows the rule allows, never another
                got = call({"op": "query"})
                ids = None if got[1] is None else sorted((d["uid"], d["id"]) for d in got[1])
                check("query", across, (got[0], ids), visible)
                for d in got[1] or []:  # the rows are the stored documents, not just their ids
                    if user_fields(d) != stored[(d["uid"], d["id"])]:
                        wrong.append(f"{cell}/query: row {d} differs")
                got = call({"op": "query", "where": {"n": {"$gte": 2}}})
                ids = None if got[1] is None else sorted((d["uid"], d["id"]) for d in got[1])
                check("query where", across, (got[0], ids), [k for k in visible if stored[k]["n"] >= 2])
                got = call({"op": "query", "owner": alice})
                ids = None if got[1] is None else sorted((d["uid"], d["id"]) for d in got[1])
                check("query owner", outright, (got[0], ids), [k for k in visible if k[0] == alice])
                check("count", across, call({"op": "count"}), len(visible))
                # aggregate: the groups of exactly the rows the rule allows (as count, query)
                totals = [{"_id": None, "c": len(visible), "s": sum(stored[k]["n"] for k in visible)}]
                group = {"$group": {"_id": None, "c": {"$count": {}}, "s": {"$sum": "$n"}}}
                got = call({"op": "aggregate", "pipeline": [group]})
                check("aggregate", across, got, totals if visible else [])
                by_owner = {"$group": {"_id": "$uid", "c": {"$count": {}}, "hi": {"$max": "$id"}}}
                mine = [k for k in visible if k[0] == alice]
                want_o = [{"_id": alice, "c": len(mine), "hi": max(i for _, i in mine)}] if mine else []
                got = call({"op": "aggregate", "owner": alice, "pipeline": [by_owner]})
                check("aggregate owner", outright, got, want_o)
                got = call({"op": "list"})
                ids = None if got[1] is None else sorted((d["uid"], d["id"]) for d in got[1])
                list_code = outright or ("Unauthenticated" if uid is None else None)
                check("list", list_code, (got[0], ids), [k for k in visible if k[0] == uid])
                for owner, doc_id in ((alice, "p"), (alice, "s"), (bob, "b")):
                    got = call({"op": "get", "id": doc_id, "owner": owner})
                    want = stored[(owner, doc_id)] if (owner, doc_id) in visible else None
                    check(f"get {doc_id}", outright, (got[0], got[1] and user_fields(got[1])), want)
                got = call({"op": "batch", "ops": [{"op": "get", "id": "s", "owner": alice}]})
                want_b = [stored[(alice, "s")] if (alice, "s") in visible else None]
                check(
                    "batch get", outright, (got[0], got[1] and [d and user_fields(d) for d in got[1]]), want_b
                )
                if caller in DEAD:
                    fn_code = DEAD_CODE[style]
                elif uid is None:
                    fn_code = "Unauthenticated"  # not a public function
                else:
                    fn_code = across
                got = call({}, "visible")
                check("function", fn_code, (got[0], got[1] and [tuple(x) for x in got[1]]), visible)
                got = call({}, "visiblePublic")
                pub_code = DEAD_CODE[style] if caller in DEAD else across
                check("public function", pub_code, (got[0], got[1] and [tuple(x) for x in got[1]]), visible)

                # ---- writes: allowed ones change exactly their document; refused ones nothing
                new = {"n": 5, "shared": False, "members": []}
                writes: list[tuple[str, dict[str, Any], tuple[str, str] | None, str | None]] = []
                if uid is not None:
                    mine = {"uid": uid, **new}
                    create_ok = may(rule, mine, uid)
                    writes += [
                        (
                            "insert",
                            {"op": "insert", "obj": {"id": "new", **new}},
                            (uid, "new"),
                            None if create_ok else "PermissionDenied",
                        ),
                        (
                            "put",
                            {"op": "put", "obj": {"id": "new", **new}},
                            (uid, "new"),
                            None if create_ok else "PermissionDenied",
                        ),
                    ]
                else:
                    writes += [
                        ("insert", {"op": "insert", "obj": {"id": "new", **new}}, None, "Unauthenticated"),
                        ("put", {"op": "put", "obj": {"id": "new", **new}}, None, "Unauthenticated"),
                    ]
                for doc_id in ("p", "s"):
                    target = (alice, doc_id)
                    ok = uid is not None and may(rule, stored[target], uid)
                    update_code = None if ok else ("Unauthenticated" if uid is None else "NotFound")
                    upd = {"op": "update", "id": doc_id, "owner": alice, "set": {"n": 100}}
                    writes.append((f"update {doc_id}", upd, target, update_code))
                    batch = {"op": "batch", "ops": [upd]}
                    writes.append((f"batch update {doc_id}", batch, target, update_code))
                    rm = {"op": "remove", "id": doc_id, "owner": alice}
                    writes.append(
                        (
                            f"remove {doc_id}",
                            rm,
                            target,
                            None if ok else ("Unauthenticated" if uid is None else "kept"),
                        )
                    )
                upd_b = {"op": "update", "id": "b", "owner": bob, "set": {"n": 100}}
                ok_b = uid is not None and may(rule, stored[(bob, "b")], uid)
                writes.append(
                    (
                        "update b",
                        upd_b,
                        (bob, "b"),
                        None if ok_b else ("Unauthenticated" if uid is None else "NotFound"),
                    )
                )

                for what, event, target, want_code in writes:
                    if caller in DEAD:
                        want_code = DEAD_CODE[style]
                    elif outright is not None and want_code is not None:
                        want_code = outright
                    before = w.direct.snapshot(col)
                    code, _ = call(event)
                    after = w.direct.snapshot(col)
                    if want_code == "kept":  # remove answers null whether or not it may delete
                        check(what, None, (code, None), None)
                        refused = True
                    else:
                        check(what, want_code, (code, None), None)
                        refused = want_code is not None
                    if refused:
                        if after != before:
                            wrong.append(f"{rule}/{caller}/{style}/{what}: refused, yet the database changed")
                        continue
                    assert target is not None
                    expect = {k: user_fields(v) for k, v in before.items()}
                    if what.startswith(("insert", "put")):
                        expect[target] = {"id": "new", **new, "uid": uid}
                    elif what.startswith("remove"):
                        del expect[target]
                    else:
                        expect[target] = {**expect[target], "n": 100}
                    if {k: user_fields(v) for k, v in after.items()} != expect:
                        wrong.append(
                            f"{rule}/{caller}/{style}/{what}: changed more or less than its document"
                        )
                    w.direct.reset(col, seed)

    assert not wrong, f"{len(wrong)} of {cells} cells wrong:\n" + "\n".join(wrong[:80])
    # Every cell ran: 6 rules x (9 callers bearer + 8 signed) x (13 reads + 9 writes).
    assert cells == len(RULES) * (len(LIVE) + len(DEAD) + len(LIVE) - 1 + len(DEAD)) * 22


# ------------------------------------------- answers carry only what the reader may read
# issue 18: an answer built from a document (update, insert, put, batch, get, query, and a
# function relaying them) passes the read rule for that caller; a write rule that admits a
# caller the read rule refuses must not turn a write into a read. Every pair of rules, every
# op, the owner, another user and no session; each document holds a unique marker string in
# a private field and the raw bytes of every answer are searched for the markers the caller
# may not read (and, so that the check cannot pass by answering nothing, for those it may).


@pytest.fixture
def leak_world(
    make_config: Callable[..., Config],
    backend: str,
    db_url: str | None,
    tmp_path: Path,
) -> Iterator[World]:
    (tmp_path / "matrix_fns.py").write_text(textwrap.dedent(MODULE))
    raw = base_raw(
        collections={
            f"l_{r}_{wr}": {"read": RULES[r], "write": RULES[wr]} for r in RULES for wr in RULES if r != wr
        },
        database=database_raw(backend, db_url),
        functions={"module": "matrix_fns"},
        rate_limits={
            k: "off" for k in ("login_per_ip", "login_per_subject", "calls_per_user", "calls_per_ip")
        },
    )
    config = make_config(raw, backend_environ(backend))
    core = Minibase.from_config(config)
    direct = Direct(config)
    try:
        with run_uvicorn(create_app(config, core=core)) as url, httpx.Client(base_url=url) as http:
            yield World(config, Clock(), http, direct, tmp_path, backend)
    finally:
        direct.close()


def marker(uid: str, doc_id: str) -> str:
    return f"MARK-{uid}-{doc_id}-c41e"


def test_no_answer_carries_what_the_read_rule_hides(leak_world: World) -> None:
    w = leak_world
    callers = {"owner": w.login("alice"), "other": w.login("bob"), "anon": Who(None, None, None)}
    alice, bob = str(callers["owner"].uid), str(callers["other"].uid)
    shapes = {
        (alice, "p"): {"shared": False, "members": []},
        (alice, "s"): {"shared": True, "members": [bob]},
        (alice, "q"): {"shared": False, "members": [bob]},  # bob may change it, not read it
        (bob, "b"): {"shared": False, "members": [alice]},
    }
    seed = {k: {**v, "n": 1, "mark": marker(*k), "secret": {"deep": [marker(*k)]}} for k, v in shapes.items()}
    wrong: list[str] = []
    answers = 0
    shown = 0  # answers that carried a marker the caller may read
    by_mark = [{"$group": {"_id": "$mark", "c": {"$count": {}}, "m": {"$min": "$mark"}}}]

    for read in RULES:
        for write in RULES:
            if read == write:
                continue  # the first matrix: writing there implies reading
            col = f"l_{read}_{write}"
            w.direct.reset(col, seed)
            docs = {k: {"id": k[1], **v, "uid": k[0]} for k, v in seed.items()}
            for name, person in callers.items():
                uid = person.uid
                headers = {"authorization": f"Bearer {person.sid}"} if person.sid else {}

                def send(event: dict[str, Any], function: str, headers: dict[str, str] = headers) -> bytes:
                    if function != "db":
                        event = {"event": {"collection": event.pop("collection"), **event.pop("event")}}
                    r = w.http.post(f"/invoke/{function}", json=event, headers=headers)
                    assert r.status_code < 500, r.text
                    return r.content

                new_id = f"new-{name}"
                if uid is not None:
                    docs[(uid, new_id)] = {"id": new_id, "shared": False, "members": [], "uid": uid}
                readable = {marker(*k) for k, d in docs.items() if may(read, d, uid)}
                hidden = {marker(*k) for k in docs} - readable
                new = {"id": new_id, "shared": False, "members": [], "secret": marker(str(uid), new_id)}
                # (what, event, function, the document it addresses)
                events: list[tuple[str, dict[str, Any], str, tuple[str, str] | None]] = [
                    ("insert", {"op": "insert", "obj": new}, "db", None),
                    ("put", {"op": "put", "obj": {**new, "n": 2}}, "db", None),
                ]
                for key in docs:
                    at = {"collection": col, "id": key[1], "owner": key[0]}
                    noop = {"op": "update", **at, "unset": ["doesNotExist"]}
                    events += [
                        ("get", {"op": "get", **at}, "db", key),
                        ("update", noop, "db", key),
                        ("update-set", {"op": "update", **at, "set": {"n": 7}}, "db", key),
                        ("update-stale", {**noop, "ifVersion": 1000}, "db", key),
                        ("update-bad", {"op": "update", **at, "inc": {"secret": 1}}, "db", key),
                        ("batch", {"op": "batch", "ops": [noop, {"op": "get", **at}]}, "db", key),
                        ("relay", {"event": noop}, "relay", key),
                    ]
                events += [
                    ("query", {"op": "query", "owner": alice}, "db", None),
                    ("query bob", {"op": "query", "owner": bob}, "db", None),
                    ("list", {"op": "list"}, "db", None),
                    ("count", {"op": "count", "owner": alice}, "db", None),
                    ("aggregate", {"op": "aggregate", "owner": alice, "pipeline": by_mark}, "db", None),
                    ("aggregate bob", {"op": "aggregate", "owner": bob, "pipeline": by_mark}, "db", None),
                ]
                events += [("remove", {"op": "remove", "id": i, "owner": o}, "db", (o, i)) for o, i in docs]
                for what, event, function, key in events:
                    cell = f"{read}/{write}/{name}/{what}" + (f" {key[1]}" if key else "")
                    body = send({"collection": col, **event}, function)
                    answers += 1
                    text = body.decode()
                    leaked = sorted(m for m in hidden if m in text)
                    if leaked:
                        wrong.append(f"{cell}: {leaked} in {text[:200]}")
                    shown += any(m in text for m in readable)
                    if key is None:
                        continue
                    may_read = may(read, docs[key], uid)
                    if what == "update-stale" and '"version"' in text and not may_read:
                        wrong.append(f"{cell}: the current version told to a non-reader: {text[:200]}")
                    # An allowed write: the answer carries the document exactly when the caller
                    # may read it (so the check above cannot pass by answering nothing).
                    allowed = what in ("update", "batch", "relay") and '"error"' not in text
                    if allowed and may_read != (marker(*key) in text):
                        wrong.append(f"{cell}: answered {text[:200]}")

    assert not wrong, f"{len(wrong)} of {answers} answers wrong:\n" + "\n".join(wrong[:60])
    assert shown > 100, shown
