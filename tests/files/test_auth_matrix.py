"""The authorization matrix for the ``files`` function (issue 7, part 3): op x area rule x
caller, over real HTTP on loopback, on every file backend (local disk; S3 through moto
behind a gateway that checks presigned URLs), with both auth styles on local disk
(``Authorization: Bearer <sessionId>`` on ``/invoke`` and FC-signed credentials plus ``sid``
on the FC Invoke API path) and the Bearer one on S3.

Areas: the caller's own (``users/<uid>/``) and one shared area per interesting pair of
``read``/``write`` presets. Callers: the owner (alice), another user (bob), no session, and
six dead sessions -- idle-expired, absolutely expired (the server's clock is moved), logged
out, revoked by the admin CLI, disabled by the admin CLI, and disabled in the store without
a revoke. The expected answer of every cell comes from the tables below (the presets'
documented semantics written out in Python), never from the code under test. An allowed op
has its real effect (an upload through the signed URL stores exactly those bytes for that
uploader and nothing else; a download returns the stored bytes; a listing returns exactly
the readable keys; a remove removes); a refused one answers its status and stable code and
leaves storage exactly as it was (read straight from the directory or the bucket).
``downloadUrls`` (with and without a thumbnail) answers each path as ``downloadUrl`` does,
and a form upload (``uploadForm`` then the multipart POST) follows the write rule like an
upload URL.

A second test tries to cross the boundaries with path tricks and with signed URLs minted
for one path or user and used for another. A third one uses upload URLs of an ``owner``-write
area after the file they were checked against changed: they are bound to it (in the matrix
too: an allowed upload there cannot be replayed).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import boto3
import httpx
import orjson
import pytest
from botocore.config import Config as BotoConfig

from minibase import cli
from minibase.app import create_app
from minibase.auth import fc_signature
from minibase.client import Credentials, signed_headers
from minibase.config import Config
from minibase.core import Minibase
from minibase.files import LocalFileStore
from tests.fakes.s3server import ACCESS_KEY, REGION, SECRET_KEY, SigV4Gateway
from tests.support.config import SECRET, SERVICE, Clock, base_raw
from tests.support.files import make_bucket
from tests.support.live import run_uvicorn

MIN = 60.0

# ------------------------------------------------------------------------ the tables

OWN = "own"  # the caller's own area, users/<uid>/
# name: (prefix, read, write) -- every preset appears as a read and as a write rule.
AREAS: dict[str, tuple[str, str, str]] = {
    "public": ("public/", "public", "owner"),  # the README's example: anyone reads, owners write
    "team": ("team/", "authenticated", "authenticated"),
    "inbox": ("inbox/", "owner", "owner"),
    "archive": ("archive/", "none", "none"),
    "drop": ("drop/", "none", "public"),  # a write-only drop box, even for anonymous callers
    "notes": ("notes/", "authenticated", "owner"),
}
CT = "text/plain"


def area_refusal(preset: str, uid: str | None) -> str | None:
    """The error when ``preset`` lets this caller touch no file of the area at all:
    ``none`` refuses everyone (logging in would not help); ``authenticated`` and ``owner``
    ask anonymous callers to log in; ``public`` lets anyone in."""
    if preset == "none":
        return "PermissionDenied"
    if preset in ("authenticated", "owner") and uid is None:
        return "Unauthenticated"
    return None


@dataclass(frozen=True)
class Stored:
    body: bytes
    content_type: str
    uploader: str | None


def file_refusal(area: str, preset: str, key: str, stored: Stored | None, uid: str | None) -> str | None:
    """Whether ``uid`` may apply ``preset`` to the file at ``key`` (None: yes), else the error.
    The own area: only its user, whatever exists there. ``owner``: the uploader of an
    existing file; a new file, anyone logged in."""
    if area == OWN:
        if uid is None:
            return "Unauthenticated"
        return None if key.split("/")[1] == uid else "PermissionDenied"
    outright = area_refusal(preset, uid)
    if outright is not None:
        return outright
    if preset == "owner" and stored is not None and stored.uploader != uid:
        return "PermissionDenied"
    return None


def listed(area: str, seed: dict[str, Stored], uid: str | None) -> list[str] | str:
    """The paths a listing of the area shows ``uid``, or the error."""
    if area == OWN:
        if uid is None:
            return "Unauthenticated"
        base = f"users/{uid}/"
        return sorted(k[len(base) :] for k in seed if k.startswith(base))
    prefix, read, _ = AREAS[area]
    outright = area_refusal(read, uid)
    if outright is not None:
        return outright
    return sorted(
        k for k, s in seed.items() if k.startswith(prefix) and (read != "owner" or s.uploader == uid)
    )


LIVE = ("owner", "other", "anon")
DEAD = ("idle", "absolute", "logout", "revoked", "disabled", "disabled_flag")
# How the session reaches the function is the same code whatever stores the files: both
# styles on local disk, the Bearer one on S3 (whose requests are slow enough to count).
STYLES = {"local": ("bearer", "signed"), "s3": ("bearer",)}
# Dead sessions are refused before any function runs, whatever the area or op.
DEAD_CODE = {"bearer": "Unauthenticated", "signed": "InvalidSecurityToken"}
# How the store refuses an upload URL whose file changed since it was signed: minibase's own
# routes answer the error envelope's Conflict, S3 its conditional-write PreconditionFailed.
STALE = {"local": (409, "Conflict"), "s3": (412, "PreconditionFailed")}
STATUS = {
    "InvalidArgument": 400,
    "Unauthenticated": 401,
    "PermissionDenied": 403,
    "NotFound": 404,
    "InvalidSecurityToken": 403,
}

# ------------------------------------------------------------------------ storage


class Storage:
    """The file store as it really is, read and written around minibase: the directory of
    the local backend, or the bucket through the S3 API."""

    def __init__(self, config: Config, s3: Any = None, bucket: str = "") -> None:
        self.root = config.files_root
        self.s3, self.bucket = s3, bucket
        self.local = LocalFileStore(self.root, [SECRET]) if self.root is not None else None

    def raw(self) -> dict[str, Any]:
        """Every stored thing with what changes when it is rewritten: on disk every file
        (bytes, metadata, temp files; the lock file aside), in the bucket every object's
        ETag, size and time."""
        out: dict[str, Any] = {}
        if self.root is not None:
            for dirpath, _, names in os.walk(self.root):
                for name in names:
                    path = Path(dirpath, name)
                    rel = path.relative_to(self.root).as_posix()
                    if rel != ".~mb-lock":
                        st = path.stat()  # every write makes a new inode (temp file + rename)
                        out[rel] = (st.st_ino, st.st_size, st.st_mtime_ns)
            return out
        r = self.s3.list_objects_v2(Bucket=self.bucket, MaxKeys=1000)
        assert not r.get("IsTruncated")
        for o in r.get("Contents") or ():
            out[o["Key"]] = (o["ETag"], o["Size"], o["LastModified"])
        return out

    def get(self, key: str) -> Stored | None:
        """The file at ``key``: its bytes, content type and recorded uploader."""
        if self.local is not None:
            info = asyncio.run(self.local.stat(key))
            if info is None:
                return None
            assert self.root is not None
            return Stored(self.root.joinpath(*key.split("/")).read_bytes(), info.content_type, info.uploader)
        try:
            r = self.s3.get_object(Bucket=self.bucket, Key=key)
        except self.s3.exceptions.NoSuchKey:
            return None
        return Stored(r["Body"].read(), r["ContentType"], r["Metadata"].get("uploader"))

    def keys(self) -> list[str]:
        if self.root is None:
            return sorted(self.raw())
        return sorted(k for k in self.raw() if ".~mb" not in k)

    def put(self, key: str, s: Stored) -> None:
        if self.local is not None:

            async def body() -> AsyncIterator[bytes]:
                yield s.body

            asyncio.run(
                self.local.write(
                    key, body(), size=len(s.body), content_type=s.content_type, uploader=s.uploader
                )
            )
            return
        meta = {"uploader": s.uploader} if s.uploader else {}
        self.s3.put_object(
            Bucket=self.bucket, Key=key, Body=s.body, ContentType=s.content_type, Metadata=meta
        )

    def remove(self, key: str) -> None:
        if self.local is not None:
            asyncio.run(self.local.remove(key))
        else:
            self.s3.delete_object(Bucket=self.bucket, Key=key)

    def restore(self, key: str, seed: dict[str, Stored]) -> dict[str, Any]:
        """Put ``key`` back as ``seed`` has it; the raw state after."""
        if key in seed:
            self.put(key, seed[key])
        else:
            self.remove(key)
        return self.raw()

    def reset(self, seed: dict[str, Stored]) -> None:
        for key in self.keys():
            if key not in seed:
                self.remove(key)
        for key, s in seed.items():
            if self.get(key) != s:
                self.put(key, s)


# ----------------------------------------------------------------------- the server


@dataclass
class Who:
    uid: str | None
    sid: str | None
    creds: Credentials | None


class World:
    def __init__(self, backend: str, config: Config, clock: Clock, http: httpx.Client, storage: Storage):
        self.backend, self.config, self.clock, self.http, self.storage = backend, config, clock, http, storage

    def login(self, name: str) -> Who:
        r = self.http.post("/session", json={"authCode": f"dev:{name}"})
        assert r.status_code == 200, r.text
        body = r.json()
        return Who(body["user"]["uid"], body["sessionId"], Credentials.from_wire(body["sts"]))

    def call(self, who: Who, style: str, event: dict[str, Any]) -> tuple[str | None, Any]:
        """(error code or None, data) of the files function; checks each path's HTTP status."""
        if style == "bearer":
            headers = {"authorization": f"Bearer {who.sid}"} if who.sid else {}
            r = self.http.post("/invoke/files", json=event, headers=headers)
            body = r.json()
            if "error" in body:
                code = body["error"]["code"]
                assert r.status_code == STATUS.get(code, r.status_code), r.text
                return code, None
            assert r.status_code == 200
            return None, body["data"]
        assert who.creds is not None
        path = f"/2016-08-15/services/{SERVICE}/functions/files/invocations"
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
        toml = self.config.data_dir.parent / "admin.toml"
        toml.write_text(
            f'[app]\nname = "todo"\nservice = "{SERVICE}"\nsecret = "{SECRET}"\n'
            '[auth.dev]\nenabled = true\n[database]\nurl = "sqlite:///minibase.db"\n'
        )
        assert cli.main([*args, "--config", str(toml), "--data", str(self.config.data_dir)]) == 0


@pytest.fixture(params=["local", "s3"])
def world(request: pytest.FixtureRequest, make_config: Callable[..., Config]) -> Iterator[World]:
    backend = str(request.param)
    files: dict[str, Any] = {
        "max_size": "64KiB",
        "thumbs": {"sizes": ["64x64"]},
        "areas": {name: {"prefix": p, "read": r, "write": w} for name, (p, r, w) in AREAS.items()},
    }
    environ: dict[str, str] = {}
    s3: Any = None
    bucket = ""
    if backend == "s3":
        endpoint, gateway = request.getfixturevalue("s3_endpoint")
        assert isinstance(gateway, SigV4Gateway)
        gateway.offset = 0.0
        # Public areas' files have stable, unsigned URLs: the bucket policy lets anyone read.
        bucket = make_bucket(endpoint, public=[p for p, r, _ in AREAS.values() if r == "public"])
        files["url"] = f"s3://{bucket}?endpoint={endpoint}&region={REGION}&path_style=true"
        files["access_key_id"] = "env:TEST_S3_ACCESS_KEY"
        files["secret_access_key"] = "env:TEST_S3_SECRET_KEY"
        environ = {"TEST_S3_ACCESS_KEY": ACCESS_KEY, "TEST_S3_SECRET_KEY": SECRET_KEY}
        s3 = boto3.client(  # straight to moto: the gateway checks only presigned URLs
            "s3",
            endpoint_url=gateway.upstream,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=BotoConfig(s3={"addressing_style": "path"}),
        )
    raw = base_raw(
        files=files,
        auth={"session_idle": "10m", "session_max": "30m", "credentials_ttl": "1h"},
    )
    config = make_config(raw, environ)
    clock = Clock()
    core = Minibase.from_config(config, clock=clock)
    try:
        with (
            run_uvicorn(create_app(config, core=core)) as url,
            httpx.Client(base_url=url, timeout=30) as http,
        ):
            yield World(backend, config, clock, http, Storage(config, s3, bucket))
    finally:
        if s3 is not None:
            s3.close()


def make_callers(w: World) -> dict[str, Who]:
    """Log everyone in, moving the server's clock so that two sessions expire."""
    alive = {"op": "list"}
    t0 = w.clock.t
    absolute = w.login("abe")  # created at t0: absolutely expired at t0 + 30m ...
    for minutes, style in ((8, "bearer"), (16, "bearer"), (24, "signed")):
        w.clock.t = t0 + minutes * MIN
        assert w.call(absolute, style, alive)[0] is None  # ... though never idle
        if minutes == 16:
            idle = w.login("ivy")  # created at t0 + 16m, then never used: idle from t0 + 26m
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
        assert w.call(who[name], "signed", alive)[0] is None  # alive until now
    r = w.http.post("/session", json={"op": "logout", "sessionId": who["logout"].sid})
    assert r.status_code == 200
    w.admin("sessions", "revoke", "--uid", str(who["revoked"].uid))
    w.admin("users", "disable", str(who["disabled"].uid))
    core = Minibase.from_config(w.config)  # the store as another process sees it: no revoke, just the flag

    async def disable() -> bool:
        await core.store.open()
        try:
            return await core.store.set_user_disabled(str(who["disabled_flag"].uid), True)
        finally:
            await core.stop()

    assert asyncio.run(disable())
    return who


def seed_files(who: dict[str, Who]) -> dict[str, Stored]:
    alice, bob = str(who["owner"].uid), str(who["other"].uid)
    seed = {
        f"users/{alice}/own/a.txt": Stored(b"alice's own", CT, alice),
        f"users/{bob}/own/b.txt": Stored(b"bob's own", CT, bob),
    }
    for prefix, _, _ in AREAS.values():
        seed[f"{prefix}a.txt"] = Stored(b"by alice in " + prefix.encode(), CT, alice)
        seed[f"{prefix}b.txt"] = Stored(b"by bob in " + prefix.encode(), CT, bob)
        seed[f"{prefix}z.txt"] = Stored(b"by nobody in " + prefix.encode(), CT, None)
    for name in DEAD:  # the dead users have files too: none may reach them
        uid = str(who[name].uid)
        seed[f"users/{uid}/d.txt"] = Stored(b"dead " + name.encode(), CT, uid)
    return seed


def targets(area: str, who: dict[str, Who], uid: str | None) -> list[tuple[str, str | None]]:
    """(the path a client sends, the key it names for ``uid``, None: it names none)."""
    if area == OWN:
        alice, bob = who["owner"].uid, who["other"].uid
        out: list[tuple[str, str | None]] = [
            (f"users/{alice}/own/a.txt", f"users/{alice}/own/a.txt"),
            (f"users/{bob}/own/b.txt", f"users/{bob}/own/b.txt"),
            (f"users/{alice}/own/new.txt", f"users/{alice}/own/new.txt"),
            (f"users/{who['revoked'].uid}/d.txt", f"users/{who['revoked'].uid}/d.txt"),
            # Relative: the caller's own, which anonymous callers do not have.
            ("own/a.txt", None if uid is None else f"users/{uid}/own/a.txt"),
        ]
        return out
    prefix = AREAS[area][0]
    return [(prefix + n, prefix + n) for n in ("a.txt", "b.txt", "z.txt", "new.txt")]


# ------------------------------------------------------------------------ the matrix


def test_files_authorization_matrix(world: World) -> None:
    w = world
    who = make_callers(w)
    seed = seed_files(who)
    w.storage.reset(seed)
    assert w.storage.keys() == sorted(seed)
    state = w.storage.raw()  # as it is now: seeded; refreshed after each allowed write is undone
    wrong: list[str] = []
    cells = calls = downloads = 0

    def check(cell: str, want: Any, got: Any) -> bool:
        nonlocal cells
        cells += 1
        if want != got:
            wrong.append(f"{cell}: {_difference(want, got)}")
            return False
        return True

    for area in (OWN, *AREAS):
        read, write = ("own", "own") if area == OWN else AREAS[area][1:]
        for caller in (*LIVE, *DEAD):
            person = who[caller]
            uid = person.uid if caller in LIVE else None
            for style in STYLES[w.backend]:
                if style == "signed" and caller == "anon":
                    continue  # no credentials to sign with
                dead = DEAD_CODE[style] if caller in DEAD else None
                cell = f"{w.backend}/{area}/{caller}/{style}"

                def call(event: dict[str, Any], person: Who = person, style: str = style) -> Any:
                    nonlocal calls
                    calls += 1
                    return w.call(person, style, event)

                # ---- list: exactly the readable keys, in the area's own spelling
                want_list = listed(area, seed, uid)
                prefix = None if area == OWN else AREAS[area][0]
                code, data = call({"op": "list"} if prefix is None else {"op": "list", "prefix": prefix})
                got_list: Any = code if code is not None else sorted(f["path"] for f in data)
                check(f"{cell}/list", dead or want_list, got_list)
                for f in data or ():
                    key = f["path"] if area != OWN else f"users/{uid}/{f['path']}"
                    check(f"{cell}/list {key} size", len(seed[key].body), f["size"])

                # A dead session is refused before the function runs, whatever the file: one
                # target per op (the owner's file) is enough there.
                for path, key in targets(area, who, uid)[: 1 if dead else None]:
                    stored = seed.get(key) if key is not None else None
                    if key is None:
                        refusal: str | None = "Unauthenticated"
                        wrefusal: str | None = "Unauthenticated"
                    else:
                        refusal = file_refusal(area, read, key, stored, uid)
                        wrefusal = file_refusal(area, write, key, stored, uid)
                    # Another user's file in an owner-read area reads exactly as no file
                    # (null / NotFound), so reads are no oracle of what others stored.
                    rrefusal, seen = refusal, stored
                    if area != OWN and read == "owner" and refusal == "PermissionDenied":
                        rrefusal, seen = None, None

                    # ---- stat / downloadUrl: the stored file, null, or the refusal
                    code, data = call({"op": "stat", "path": path})
                    if dead or rrefusal:
                        check(f"{cell}/stat {path}", dead or rrefusal, code)
                    elif seen is None:
                        check(f"{cell}/stat {path}", (None, None), (code, data))
                    else:
                        check(
                            f"{cell}/stat {path}",
                            (None, _client_path(area, path, uid), len(stored.body), CT),
                            (
                                code,
                                data and data["path"],
                                data and data["size"],
                                data and data["contentType"],
                            ),
                        )
                    code, data = call({"op": "downloadUrl", "path": path})
                    if dead or rrefusal:
                        check(f"{cell}/downloadUrl {path}", dead or rrefusal, code)
                    elif seen is None:
                        check(f"{cell}/downloadUrl {path}", "NotFound", code)
                    elif check(f"{cell}/downloadUrl {path}", None, code):
                        r = w.http.get(data["url"])
                        check(f"{cell}/download {path}", (200, stored.body), (r.status_code, r.content))
                    # ---- a thumbnail: the original's read rule first (these are text files,
                    # so one who may read it is told there are no thumbnails of text)
                    code, data = call({"op": "downloadUrls", "paths": [path], "thumb": "64x64"})
                    if dead:
                        check(f"{cell}/thumb {path}", dead, code)
                    elif check(f"{cell}/thumb {path}", None, code):
                        got_code = data[0].get("error", {}).get("code")
                        want = rrefusal or ("NotFound" if seen is None else "InvalidArgument")
                        check(f"{cell}/thumb {path}", want, got_code)
                    # ---- downloadUrls: the same answer, per path, inside a batch that holds
                    code, data = call({"op": "downloadUrls", "paths": [path]})
                    if dead:
                        check(f"{cell}/downloadUrls {path}", dead, code)
                    elif check(f"{cell}/downloadUrls {path}", None, code):
                        item = data[0]
                        if rrefusal or seen is None:
                            got_code = item.get("error", {}).get("code")
                            check(f"{cell}/downloadUrls {path}", rrefusal or "NotFound", got_code)
                        else:
                            r = w.http.get(item["url"])
                            got_r = (r.status_code, r.content)
                            check(f"{cell}/downloadUrls get {path}", (200, stored.body), got_r)

                    # ---- writes: the allowed change exactly their file; refused ones nothing
                    new = Stored(f"{caller} wrote {path}".encode(), CT, uid)
                    event = {"op": "uploadUrl", "path": path, "contentType": CT, "size": len(new.body)}
                    code, grant = call(event)
                    if dead or wrefusal:
                        check(f"{cell}/uploadUrl {path}", dead or wrefusal, code)
                    elif check(f"{cell}/uploadUrl {path}", None, code):
                        assert key is not None
                        r = w.http.request(
                            grant["method"], grant["url"], headers=grant["headers"], content=new.body
                        )
                        check(f"{cell}/upload {path}", 200, r.status_code)
                        check(f"{cell}/upload {path} stored", new, w.storage.get(key))
                        check(f"{cell}/upload {path} others", *_others(state, w.storage.raw(), key))
                        if write == "owner":
                            # Bound to what the key held when it was checked: it wrote once.
                            after = w.storage.raw()
                            r = w.http.request(
                                grant["method"], grant["url"], headers=grant["headers"], content=new.body
                            )
                            check(f"{cell}/upload {path} replayed", STALE[w.backend], _refusal(r))
                            check(f"{cell}/upload {path} replayed: storage", after, w.storage.raw())
                        if refusal is None:  # the uploader reads back what they wrote
                            downloads += 1
                            code, data = call({"op": "downloadUrl", "path": path})
                            got = w.http.get(data["url"]).content if code is None else code
                            check(f"{cell}/download new {path}", new.body, got)
                        state = w.storage.restore(key, seed)

                    # ---- uploadForm: the same rule; the POST changes exactly that file
                    event = {"op": "uploadForm", "path": path, "contentType": CT, "size": len(new.body)}
                    code, form = call(event)
                    if dead or wrefusal:
                        check(f"{cell}/uploadForm {path}", dead or wrefusal, code)
                    elif w.backend == "s3" and write == "owner":
                        # A POST policy cannot be bound to the file's state: the PUT only.
                        check(f"{cell}/uploadForm {path}", "InvalidArgument", code)
                    elif check(f"{cell}/uploadForm {path}", None, code):
                        assert key is not None
                        r = w.http.post(
                            form["url"], data=form["formData"], files={form["name"]: ("f", new.body, CT)}
                        )
                        check(f"{cell}/form upload {path}", True, r.status_code in (200, 204))
                        check(f"{cell}/form upload {path} stored", new, w.storage.get(key))
                        check(f"{cell}/form upload {path} others", *_others(state, w.storage.raw(), key))
                        if write == "owner":  # local: bound like an upload URL, it wrote once
                            after = w.storage.raw()
                            r = w.http.post(
                                form["url"], data=form["formData"], files={form["name"]: ("f", new.body, CT)}
                            )
                            check(f"{cell}/form upload {path} replayed", STALE[w.backend], _refusal(r))
                            check(f"{cell}/form upload {path} replayed: storage", after, w.storage.raw())
                        state = w.storage.restore(key, seed)

                    code, data = call({"op": "remove", "path": path})
                    if dead or wrefusal:
                        check(f"{cell}/remove {path}", dead or wrefusal, code)
                    elif check(f"{cell}/remove {path}", (None, None), (code, data)):
                        assert key is not None
                        check(f"{cell}/remove {path} removed", None, w.storage.get(key))
                        check(f"{cell}/remove {path} others", *_others(state, w.storage.raw(), key))
                        state = w.storage.restore(key, seed)
                    if (dead or wrefusal) and not (dead and caller != DEAD[-1]):
                        # Refused writes: checked after each target's pair (each dead one,
                        # after the area's last dead caller: reading the bucket is slow).
                        check(f"{cell}/{path} refused writes: storage", state, w.storage.raw())

    assert not wrong, f"{len(wrong)} of {cells} cells wrong:\n" + "\n".join(wrong[:80])
    assert w.storage.keys() == sorted(seed)
    # Every cell ran: per area, the live caller/style pairs x (list + 7 ops x its targets:
    # 5 in the own area, 4 in each shared one) and the dead ones x (list + 7 ops x 1
    # target), plus a read-back download per allowed upload that may read.
    live, dead = (5, 12) if w.backend == "local" else (3, 6)
    ops = sum(live * (1 + 7 * (5 if a == OWN else 4)) + dead * 8 for a in (OWN, *AREAS))
    assert calls - downloads == ops, (calls, downloads, ops)
    assert cells > calls


def _difference(want: Any, got: Any) -> str:
    """A failed expectation, briefly: for two storage states, only what differs."""
    if isinstance(want, dict) and isinstance(got, dict):
        changed = sorted(k for k in want.keys() | got.keys() if want.get(k) != got.get(k))
        return "storage changed: " + ", ".join(
            f"{k} {'added' if k not in want else 'removed' if k not in got else 'rewritten'}" for k in changed
        )
    return f"expected {want!r}, got {got!r}"


def _refusal(r: httpx.Response) -> tuple[int, str]:
    """(status, error code) of a refused request to the store: minibase's JSON envelope or
    S3's XML error."""
    if r.headers.get("content-type", "").startswith("application/json"):
        return r.status_code, str(r.json()["error"]["code"])
    code = r.text.partition("<Code>")[2].partition("</Code>")[0]
    return r.status_code, code


def _client_path(area: str, path: str, uid: str | None) -> str:
    """How the function spells a stored file's path: relative in the caller's own area."""
    own = f"users/{uid}/"
    return path[len(own) :] if area == OWN and path.startswith(own) else path


def _others(before: dict[str, Any], after: dict[str, Any], key: str) -> tuple[Any, Any]:
    """(before, after) of everything but ``key`` (and, on disk, its metadata)."""

    def mine(k: str) -> bool:
        folder, _, name = key.rpartition("/")
        return k == key or k == f"{folder}/.~mb-meta/{name}.json".lstrip("/")

    return {k: v for k, v in before.items() if not mine(k)}, {k: v for k, v in after.items() if not mine(k)}


# ------------------------------------------------------------- crossing the boundaries


def _swap(url: str, *, path: str | None = None, query: dict[str, str] | None = None, drop: str = "") -> str:
    """``url`` with its path replaced (a raw, already-encoded path), query values changed
    and one query parameter dropped."""
    parts = urlsplit(url)
    pairs = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != drop]
    pairs = [(k, (query or {}).get(k, v)) for k, v in pairs]
    return urlunsplit(parts._replace(path=path or parts.path, query=urlencode(pairs)))


def test_path_tricks_and_tampered_urls(world: World) -> None:
    w = world
    alice, bob = w.login("alice"), w.login("bob")
    anon = Who(None, None, None)
    a, b = str(alice.uid), str(bob.uid)
    secret = Stored(b"alice's secret", CT, a)
    seed = {
        f"users/{a}/secret.txt": secret,
        f"users/{a}/zz.txt": Stored(b"alice's other", CT, a),
        "inbox/a.txt": Stored(b"alice's inbox", CT, a),
        "public/p.txt": Stored(b"alice's public", CT, a),
    }
    w.storage.reset(seed)
    state = w.storage.raw()
    wrong: list[str] = []

    def call(who: Who, event: dict[str, Any]) -> tuple[str | None, Any]:
        return w.call(who, "bearer", event)

    def expect(what: str, want: Any, got: Any) -> None:
        if want != got:
            wrong.append(f"{w.backend}/{what}: {_difference(want, got)}")

    def unchanged(what: str) -> None:
        expect(f"{what}: storage", state, w.storage.raw())

    invalid = [
        f"../users/{a}/secret.txt",
        f"users/{b}/../{a}/secret.txt",
        f"users/{b}/%2e%2e/../{a}/secret.txt",
        f"/users/{a}/secret.txt",
        f"users//{a}/secret.txt",
        f"./users/{a}/secret.txt",
        f"users/{a}/secret.txt/.",
        f"users\\{a}\\secret.txt",
        f"..\\users\\{a}\\secret.txt",
        f"users/{a}/secret.txt\x00.png",
        f"users/{a}/secret.txt\n",
        "public/../inbox/a.txt",
        "inbox/./a.txt",
        "inbox//a.txt",
        "inbox/",
        f"users/{b}/",
        "x" * 513,
        f"users/{b}/" + "x" * (513 - len(f"users/{b}/")),
        "é" * 257,  # 514 bytes
        "a/" * 256 + "b",
        f"users/{a}/.~mb-meta/secret.txt.json",
        ".~mb-lock",
        f"users/{b}/.~mb-tmp-0",
    ]
    denied = [f"users/{a}/secret.txt", f"users/{a}/new.txt", f"users/{a}x/secret.txt", f"users/{a[:-1]}/x"]
    # Look-alikes of another user's area or of a shared area: all land in bob's own area.
    own = [
        f"%2e%2e/users/{a}/secret.txt",
        f"..%2F..%2Fusers%2F{a}%2Fsecret.txt",
        f"users%2F{a}%2Fsecret.txt",
        f"\uff55sers/{a}/secret.txt",  # fullwidth u
        f"users\u2215{a}\u2215secret.txt",  # division slash
        f"users\uff0f{a}\uff0fsecret.txt",  # fullwidth solidus
        "\uff49nbox/a.txt",  # fullwidth i
        "INBOX/a.txt",
        "inbox",
        "inbox.txt",
        "publ\u0131c/p.txt",  # dotless i
        "in\u200bbox/a.txt",  # zero-width space
        "i\u0307nbox/a.txt",  # combining dot above
        "x" * 250,
        f"{'x' * 250}/{'y' * 200}",
    ]
    # A name longer than the local disk allows is refused up front there (it used to get an
    # upload URL, then fail with 500s); S3 keys have no such limit.
    long_names = ["x" * 251, f"{'é' * 126}", f"{'x' * 251}/a"]
    malformed = list(invalid)  # refused whoever asks
    (invalid if w.backend == "local" else own).extend(long_names)
    for path in invalid + denied + own:
        want = "InvalidArgument" if path in invalid else "PermissionDenied" if path in denied else None
        for op, extra in (
            ("stat", {}),
            ("downloadUrl", {}),
            ("uploadUrl", {"contentType": CT, "size": 3}),
            ("remove", {}),
        ):
            code, data = call(bob, {"op": op, "path": path, **extra})
            if want is not None:
                expect(f"bob {op} {path!r}", want, code)
            elif op == "stat":
                expect(f"bob {op} {path!r}", (None, None), (code, data))
            elif op == "downloadUrl":
                expect(f"bob {op} {path!r}", "NotFound", code)
            elif op == "uploadUrl" and code is None:
                r = w.http.request(data["method"], data["url"], headers=data["headers"], content=b"bob")
                expect(f"bob upload {path!r}", 200, r.status_code)
                expect(
                    f"bob upload {path!r}: stored", Stored(b"bob", CT, b), w.storage.get(f"users/{b}/{path}")
                )
                expect(
                    f"bob upload {path!r}: nothing else",
                    *_others(state, w.storage.raw(), f"users/{b}/{path}"),
                )
            elif op == "uploadUrl":
                wrong.append(f"{w.backend}/bob uploadUrl {path!r}: refused with {code}")
            else:  # remove: his own file, just made
                expect(f"bob remove {path!r}", None, code)
                expect(f"bob remove {path!r}: removed", state, w.storage.raw())
            if op != "uploadUrl":
                unchanged(f"bob {op} {path!r}")
        # Anonymous callers have no own area to fall back on.
        code, _ = call(anon, {"op": "stat", "path": path})
        expect(f"anon stat {path!r}", "InvalidArgument" if path in malformed else "Unauthenticated", code)

    # ---- listings: prefixes and cursors cannot reach another area
    for prefix, want_list in (
        ("../", "InvalidArgument"),
        (f"users/{b}/../{a}/", "InvalidArgument"),
        ("/", "InvalidArgument"),
        ("users/", "PermissionDenied"),
        (f"users/{a}", "PermissionDenied"),
        (f"users/{a}/", "PermissionDenied"),
        (f"users/{a[:5]}", "PermissionDenied"),
        ("archive/", "PermissionDenied"),
        ("inbox", []),
        ("inbox/", []),  # an owner-read area: only bob's uploads
        ("\uff49nbox/", []),
        ("public/", ["public/p.txt"]),
        ("x" * 513, "InvalidArgument"),
        ("x" * 251 + "/", "InvalidArgument" if w.backend == "local" else []),
        ("x" * 251, []),
    ):
        code, data = call(bob, {"op": "list", "prefix": prefix})
        expect(f"bob list {prefix!r}", want_list, code or sorted(f["path"] for f in data))
    code, page = call(alice, {"op": "list", "limit": 1})
    assert code is None and page == [{**page[0], "path": "secret.txt"}], page
    r = w.http.post(
        "/invoke/files", json={"op": "list", "limit": 1}, headers={"authorization": f"Bearer {alice.sid}"}
    )
    cursor = r.json()["next"]
    assert cursor, r.text
    for who, prefix in ((bob, None), (bob, "inbox/"), (anon, "public/")):
        code, _ = call(who, {"op": "list", "cursor": cursor, **({"prefix": prefix} if prefix else {})})
        expect(f"list with alice's cursor {prefix!r}", "InvalidArgument", code)

    # ---- signed URLs: minted for one path or user, used for another
    local = w.backend == "local"
    code, up = call(bob, {"op": "uploadUrl", "path": "t.txt", "contentType": CT, "size": 14})
    code2, inbox_up = call(bob, {"op": "uploadUrl", "path": "inbox/new.txt", "contentType": CT, "size": 3})
    assert code is None and code2 is None
    w.http.request(up["method"], up["url"], headers=up["headers"], content=b"bob's t.txt...")
    state = w.storage.raw()
    code, down = call(bob, {"op": "downloadUrl", "path": "t.txt"})
    code2, pub = call(anon, {"op": "downloadUrl", "path": "public/p.txt"})
    assert code is None and code2 is None
    own_path = urlsplit(up["url"]).path
    assert own_path.endswith(f"/users/{b}/t.txt"), own_path
    to_secret = own_path.replace(f"users/{b}/t.txt", f"users/{a}/secret.txt")
    expiry = "Expires" if local else "X-Amz-Expires"
    tampered_puts = {
        "path to alice's file": (_swap(up["url"], path=to_secret), up["headers"]),
        "path to a new file of alice's": (
            _swap(up["url"], path=to_secret.replace("secret", "new")),
            up["headers"],
        ),
        "traversal in the path": (
            _swap(up["url"], path=own_path.replace("t.txt", f"%2e%2e/%2e%2e/{a}/secret.txt")),
            up["headers"],
        ),
        "encoded slashes in the path": (
            _swap(up["url"], path=own_path.replace(f"users/{b}/t.txt", f"users%2F{a}%2Fsecret.txt")),
            up["headers"],
        ),
        "longer expiry": (_swap(up["url"], query={expiry: "99999999"}), up["headers"]),
        "no signature": (_swap(up["url"], drop="Signature" if local else "X-Amz-Signature"), up["headers"]),
        "a download URL": (down["url"], up["headers"]),
        "the public download URL": (pub["url"], up["headers"]),
    }
    claim_alice = (
        (_swap(inbox_up["url"], query={"Uploader": a}), inbox_up["headers"])
        if local
        else (inbox_up["url"], {**inbox_up["headers"], "x-amz-meta-uploader": a})
    )
    tampered_puts["uploader claimed to be alice"] = claim_alice
    for what, (url, headers) in tampered_puts.items():
        r = w.http.put(url, headers=headers, content=b"bob's t.txt...")
        expect(f"PUT with {what}", True, r.status_code in (403, 404))
        unchanged(f"PUT with {what}")
    tampered_gets = {
        "path to alice's file": _swap(down["url"], path=to_secret),
        "public URL to the inbox": _swap(
            pub["url"], path=urlsplit(pub["url"]).path.replace("public/p.txt", "inbox/a.txt")
        ),
        "traversal in the path": _swap(down["url"], path=own_path.replace("t.txt", f"%2e%2e/{a}/secret.txt")),
        "encoded slashes in the path": _swap(
            down["url"], path=own_path.replace(f"users/{b}/t.txt", f"users%2F{a}%2Fsecret.txt")
        ),
        "longer expiry": _swap(down["url"], query={expiry: "99999999"}),
        "no signature": _swap(down["url"], drop="Signature" if local else "X-Amz-Signature"),
        "an upload URL": up["url"],
    }
    for what, url in tampered_gets.items():
        r = w.http.get(url)
        expect(f"GET with {what}", True, r.status_code in (403, 404) and b"alice" not in r.content)
    assert w.http.get(down["url"]).content == b"bob's t.txt..."  # the untampered URL works

    assert not wrong, f"{len(wrong)} wrong:\n" + "\n".join(wrong[:80])


# ------------------------------------------------------- upload URLs outliving their check


def test_owner_upload_urls_are_bound_to_the_file_they_were_checked_against(world: World) -> None:
    """The reported hole: in ``public/`` (anyone reads, owners write) a URL minted while a
    path was free, or while its caller owned the file, must not write over someone else's
    file created there since."""
    w = world
    alice, bob = w.login("alice"), w.login("bob")
    a, b = str(alice.uid), str(bob.uid)
    w.storage.reset({})

    def grant(who: Who, path: str, body: bytes) -> dict[str, Any]:
        code, data = w.call(
            who, "bearer", {"op": "uploadUrl", "path": path, "contentType": CT, "size": len(body)}
        )
        assert code is None, code
        return dict(data)

    def put(g: dict[str, Any], body: bytes) -> httpx.Response:
        return w.http.request(g["method"], g["url"], headers=g["headers"], content=body)

    # (1) bob asks while public/logo.txt is free; (2) alice uploads it; (3) bob's old URL.
    stale = grant(bob, "public/logo.txt", b"bob's logo")
    assert put(grant(alice, "public/logo.txt", b"alice's logo"), b"alice's logo").status_code == 200
    state = w.storage.raw()
    r = put(stale, b"bob's logo")
    assert _refusal(r) == STALE[w.backend], r.text
    assert w.storage.raw() == state
    assert w.storage.get("public/logo.txt") == Stored(b"alice's logo", CT, a)
    assert w.call(alice, "bearer", {"op": "remove", "path": "public/logo.txt"}) == (None, None)

    # Recreated after a remove: bob's replacement URL for his own file, his file removed,
    # alice's file in its place (on disk even with the same bytes: versions are per write;
    # S3 versions are ETags, the bytes' MD5, so there the bytes differ).
    assert put(grant(bob, "public/mine.txt", b"bob's v1"), b"bob's v1").status_code == 200
    stale = grant(bob, "public/mine.txt", b"bob's v2")
    assert "If-Match" in stale["headers"] if w.backend == "s3" else "Expect=" in stale["url"]
    assert w.call(bob, "bearer", {"op": "remove", "path": "public/mine.txt"}) == (None, None)
    if w.backend == "s3":  # removed and not recreated: If-Match on no object is NoSuchKey
        assert _refusal(put(stale, b"bob's v2")) == (404, "NoSuchKey")
    else:
        assert _refusal(put(stale, b"bob's v2")) == STALE[w.backend]
    assert w.storage.get("public/mine.txt") is None
    recreated = b"bob's v1" if w.backend == "local" else b"alice's now"
    assert put(grant(alice, "public/mine.txt", recreated), recreated).status_code == 200
    state = w.storage.raw()
    assert _refusal(put(stale, b"bob's v2")) == STALE[w.backend]
    assert w.storage.raw() == state
    assert w.storage.get("public/mine.txt") == Stored(recreated, CT, a)
    code, _ = w.call(bob, "bearer", {"op": "remove", "path": "public/mine.txt"})
    assert code == "PermissionDenied"

    # The owner replacing their own file still works, once per URL; the URLs of the own
    # area stay unconditional.
    g = grant(alice, "public/mine.txt", b"alice's v2")
    assert put(g, b"alice's v2").status_code == 200
    assert w.storage.get("public/mine.txt") == Stored(b"alice's v2", CT, a)
    assert _refusal(put(g, b"alice's v2")) == STALE[w.backend]
    g = grant(bob, "own.txt", b"bob 1")
    assert not {"If-Match", "If-None-Match"} & set(g["headers"]) and "Expect=" not in g["url"]
    assert put(g, b"bob 1").status_code == 200
    assert put(g, b"bob 2").status_code == 200  # a retry after a lost answer, say
    assert w.storage.get(f"users/{b}/own.txt") == Stored(b"bob 2", CT, b)
