"""The console's logic (docs/console.md): admins and their sessions, and what each page
shows or changes. Nothing here knows HTTP: ``http.py`` translates requests into calls.

Every change is audited with the admin's email (``admin``) on the ``minibase.audit``
logger, like the app's own security events; the console stores the trail (``sink``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from ..audit import audit
from ..config import Rate
from ..data import cursor, validate
from ..data.filters import FALSE, TRUE, Cmp, OrderKey, conj
from ..data.patch import SYSTEM_FIELDS
from ..data.query import parse_order_by, parse_where
from ..errors import (
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
)
from ..store.records import Key
from ..store.writes import Insert, Remove, Update
from ..util.timefmt import rfc3339_ms
from .passwords import check_password_strength, hash_password, verify_password
from .store import AdminSessionRecord, ConsoleStore, build_console_store

if TYPE_CHECKING:
    from ..core import Minibase
    from ..util.counters import Counters
    from .sink import AuditSink

__all__ = ["AdminSession", "Console", "IDLE_TIMEOUT", "MAX_SESSION", "check_email"]

IDLE_TIMEOUT = 30 * 60.0  # an admin session unused this long is over
MAX_SESSION = 12 * 3600.0  # and any admin session after this long
# Login attempts, per address and per email: a token bucket of 10 refilling one per 30 s.
LOGIN_RATE = Rate(10, 300.0)
PAGE = 50  # rows in one page of a list
FILES_COUNTED = 10_000
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}")


def check_email(email: object) -> str:
    if not isinstance(email, str) or not _EMAIL.fullmatch(email.strip()):
        raise InvalidArgument("email must be an email address")
    return email.strip().lower()


def _session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AdminSession:
    __slots__ = ("csrf", "email", "id")

    def __init__(self, record: AdminSessionRecord) -> None:
        self.id = record.id
        self.email = record.email
        self.csrf = record.csrf


class Console:
    def __init__(
        self,
        core: Minibase,
        counters: Counters | None = None,
        sink: AuditSink | None = None,
        *,
        store: ConsoleStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.core = core
        self.config = core.config
        self.counters = counters
        self.sink = sink
        self.clock = clock
        self.store = (
            store
            if store is not None
            else build_console_store(core.config.database.url, core.config.sqlite_path)
        )
        self.started = clock()
        self._ready = False

    async def ready(self) -> None:
        """Create the console's tables once (first request of this instance)."""
        if not self._ready:
            await self.store.ensure()
            self._ready = True

    # ------------------------------------------------------------------ admins

    async def create_admin(self, email: str, password: str) -> str:
        email = check_email(email)
        problem = check_password_strength(password)
        if problem:
            raise InvalidArgument(problem)
        await self.ready()
        hashed = await asyncio.to_thread(hash_password, password)
        if not await self.store.add_admin(email, hashed, self.clock()):
            raise InvalidArgument(
                f"an admin {email} exists already (minibase admins password changes a password)"
            )
        audit("admin.created", "", admin=email)
        return email

    async def set_password(self, email: str, password: str) -> None:
        email = check_email(email)
        problem = check_password_strength(password)
        if problem:
            raise InvalidArgument(problem)
        await self.ready()
        hashed = await asyncio.to_thread(hash_password, password)
        if not await self.store.set_admin_password(email, hashed, self.clock()):
            raise NotFound(f"no admin {email}")
        audit("admin.password", "", admin=email)

    async def remove_admin(self, email: str) -> None:
        email = check_email(email)
        await self.ready()
        if not await self.store.remove_admin(email):
            raise NotFound(f"no admin {email}")
        audit("admin.removed", "", admin=email)

    async def admins(self) -> list[dict[str, Any]]:
        await self.ready()
        return [
            {"email": a.email, "created": a.created, "updated": a.updated} for a in await self.store.admins()
        ]

    # ---------------------------------------------------------------- sessions

    async def login(
        self, email: object, password: object, ip: str | None, rid: str
    ) -> tuple[str, AdminSession]:
        """A new admin session: (the cookie's token, the session). Rate-limited per
        address and per email; every attempt is audited."""
        if not isinstance(email, str) or not isinstance(password, str):
            raise InvalidArgument("email and password are required")
        address = email.strip().lower()[:256]
        await self.ready()
        try:
            limiter = self.core.limiter
            if ip:
                await limiter.check(f"console-ip:{ip}", LOGIN_RATE, "console logins from this address")
            await limiter.check(f"console-email:{address}", LOGIN_RATE, "console logins of this admin")
        except RateLimited:
            audit("admin.login.failure", rid, admin=address, reason="RateLimited", ip=ip)
            raise
        admin = await self.store.admin(address)
        ok = await asyncio.to_thread(verify_password, password, admin.password_hash if admin else None)
        if admin is None or not ok:
            audit("admin.login.failure", rid, admin=address, reason="Unauthenticated", ip=ip)
            raise Unauthenticated("wrong email or password")
        now = self.clock()
        token = secrets.token_urlsafe(32)
        record = AdminSessionRecord(_session_id(token), admin.email, secrets.token_urlsafe(24), now, now)
        await self.store.purge_admin_sessions(now - IDLE_TIMEOUT)
        await self.store.add_admin_session(record)
        audit("admin.login.success", rid, admin=admin.email, ip=ip)
        return token, AdminSession(record)

    async def authenticate(self, token: str | None) -> AdminSession:
        """The admin session of the cookie's ``token``; Unauthenticated if there is none,
        it has been idle too long or lived too long."""
        if not token or len(token) > 128:
            raise Unauthenticated("log in to the console")
        await self.ready()
        record = await self.store.admin_session(_session_id(token))
        now = self.clock()
        if record is None:
            raise Unauthenticated("log in to the console")
        if now - record.last_used > IDLE_TIMEOUT or now - record.created > MAX_SESSION:
            await self.store.remove_admin_session(record.id)
            raise Unauthenticated("the console session has expired: log in again")
        if now - record.last_used > 30:  # a write per half minute at most
            await self.store.touch_admin_session(record.id, now)
        return AdminSession(record)

    @staticmethod
    def check_csrf(session: AdminSession, token: str | None) -> None:
        if not token or not hmac.compare_digest(token.encode(), session.csrf.encode()):
            raise PermissionDenied("missing or wrong X-CSRF-Token: reload the console")

    async def logout(self, session: AdminSession, rid: str) -> None:
        await self.store.remove_admin_session(session.id)
        audit("admin.logout", rid, admin=session.email)

    # ---------------------------------------------------------------- overview

    async def overview(self) -> dict[str, Any]:
        counts = await self.store.counts()
        files = await self._count_files()
        traffic = None
        if self.counters is not None:
            traffic = {"hour": self.counters.totals(3600), "day": self.counters.totals(86400)}
        return {
            "app": self.config.app.name,
            **counts,
            "collections": await self.collection_names(),
            "files": files,
            "traffic": traffic,
            "since": self.started,
            "recentAudit": await self.audit({"limit": 10}),
        }

    async def _count_files(self) -> dict[str, Any]:
        """How many files there are (counted by listing: up to FILES_COUNTED, then "more")."""
        n, after = 0, None
        while n < FILES_COUNTED:
            infos, after = await self.core.file_store.list("", start_after=after, limit=1000)
            n += len(infos)
            if after is None:
                return {"count": n, "more": False}
        return {"count": n, "more": True}

    # ------------------------------------------------------------------- users

    async def find_users(self, text: str, provider: str | None) -> list[dict[str, Any]]:
        return await self.store.find_users(text.strip()[:256], (provider or "").strip()[:64] or None, PAGE)

    async def user(self, uid: str) -> dict[str, Any]:
        record = await self.core.store.get_user(uid)
        if record is None:
            raise NotFound(f"no user {uid[:64]}")
        documents: dict[str, Any] = {}
        for name in await self.collection_names():
            rows = await self.core.store.query(name, Cmp(("uid",), "eq", uid), (), 21, None)
            documents[name] = {
                "items": [orjson.loads(body) for _, body in rows[:20]],
                "more": len(rows) > 20,
            }
        files = await self.files(f"users/{uid}/", None)
        return {
            "uid": record.uid,
            "created": record.created,
            "disabled": record.disabled,
            "identities": await self.store.identities(uid),
            "phone": await self.store.phone(uid),
            "sessions": await self.store.sessions(uid, PAGE),
            "documents": documents,
            "files": files,
        }

    async def set_disabled(self, session: AdminSession, uid: str, disabled: bool, rid: str) -> dict[str, Any]:
        if not await self.core.store.set_user_disabled(uid, disabled):
            raise NotFound(f"no user {uid[:64]}")
        revoked = await self.core.store.revoke_user_sessions(uid, self.clock()) if disabled else 0
        audit("admin.user.disable" if disabled else "admin.user.enable", rid, admin=session.email, uid=uid)
        return {"uid": uid, "disabled": disabled, "revokedSessions": revoked}

    async def revoke(self, session: AdminSession, uid: str, rid: str) -> dict[str, Any]:
        if await self.core.store.get_user(uid) is None:
            raise NotFound(f"no user {uid[:64]}")
        n = await self.core.store.revoke_user_sessions(uid, self.clock())
        audit("admin.sessions.revoke", rid, admin=session.email, uid=uid, count=n)
        return {"uid": uid, "revokedSessions": n}

    # ------------------------------------------------------------- collections

    async def collection_names(self) -> list[str]:
        """The declared collections, the default one and any that hold documents."""
        counts = await self.store.counts()
        return sorted({*self.config.collections, self.config.app.default_collection, *counts["documents"]})

    async def collections(self) -> list[dict[str, Any]]:
        out = []
        for name in await self.collection_names():
            col = self.config.collection(name)
            out.append(
                {
                    "name": name,
                    "rules": {op: col.rule(op).text for op in ("read", "create", "update", "delete")},
                    "schema": col.schema,
                    "indexes": [
                        [".".join(p) if isinstance(p, tuple) else p for p in ix] for ix in col.indexes
                    ],
                }
            )
        return out

    def _collection(self, name: str) -> None:
        validate.collection({"collection": name}, "")

    async def query(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        self._collection(name)
        where = conj(TRUE, parse_where(body.get("where")))
        uid = body.get("uid")
        if uid:
            where = conj(where, Cmp(("uid",), "eq", validate.owner(uid, "uid")))
        order: tuple[OrderKey, ...] = parse_order_by(body.get("orderBy"))
        n = validate.limit(body, default=PAGE, maximum=200)
        after = None
        if body.get("cursor") is not None:
            pos = cursor.decode(body["cursor"])
            if not isinstance(pos, list) or len(pos) != 2 or pos[0] != name:
                raise InvalidArgument("cursor does not belong to this collection")
            after = pos[1]
        if where == FALSE:
            return {"items": [], "next": None}
        rows = await self.core.store.query(name, where, order, n + 1, after)
        more = len(rows) > n
        rows = rows[:n]
        return {
            "items": [orjson.loads(body) for _, body in rows],
            "next": cursor.encode([name, rows[-1][0]]) if more and rows else None,
            "total": await self.core.store.count(name, where),
        }

    async def document(self, name: str, uid: str, doc_id: str) -> dict[str, Any]:
        self._collection(name)
        raw = await self.core.store.get_document(Key(name, uid, doc_id))
        if raw is None:
            raise NotFound(f"no document {doc_id[:64]} of {uid[:64]} in {name}")
        doc: dict[str, Any] = orjson.loads(raw)
        return doc

    def _fields(self, name: str, doc_id: str, fields: object) -> dict[str, Any]:
        obj = validate.document(fields, "fields", self.config.limits.max_depth)
        clean = {k: v for k, v in obj.items() if k not in SYSTEM_FIELDS and k != "id"}
        schema = self.config.collection(name).schema
        if schema is not None:
            from ..data.schema import Schema

            Schema(schema).validate(doc_id, clean)
        size = len(orjson.dumps(clean))
        if size > self.config.limits.max_document:
            raise InvalidArgument(f"the document is larger than {self.config.limits.max_document} bytes")
        return clean

    async def save(
        self,
        session: AdminSession,
        name: str,
        uid: str,
        doc_id: str,
        fields: object,
        if_version: object,
        create: bool,
        rid: str,
    ) -> dict[str, Any]:
        """Create (``create``) or replace a document's fields, validated by the collection's schema."""
        self._collection(name)
        uid = validate.owner(uid, "uid")
        doc_id = validate.doc_id(doc_id, "id", self.config.limits.max_id_length)
        clean = self._fields(name, doc_id, fields)
        key = Key(name, uid, doc_id)
        now_iso = rfc3339_ms(self.clock())
        if create:
            [raw] = await self.core.store.write([Insert(key, clean)], now_iso)
            audit("admin.document.create", rid, admin=session.email, uid=uid, collection=name, id=doc_id)
        else:
            if if_version is not None and (
                isinstance(if_version, bool) or not isinstance(if_version, int) or if_version < 1
            ):
                raise InvalidArgument("ifVersion must be a positive integer")
            [raw] = await self.core.store.write(
                [Update(key, lambda old: clean, if_version=if_version)], now_iso
            )
            audit("admin.document.update", rid, admin=session.email, uid=uid, collection=name, id=doc_id)
        doc: dict[str, Any] = orjson.loads(raw)
        return doc

    async def delete(self, session: AdminSession, name: str, uid: str, doc_id: str, rid: str) -> None:
        self._collection(name)
        [gone] = await self.core.store.write([Remove(Key(name, uid, doc_id))], rfc3339_ms(self.clock()))
        if not gone:
            raise NotFound(f"no document {doc_id[:64]} of {uid[:64]} in {name}")
        audit("admin.document.delete", rid, admin=session.email, uid=uid, collection=name, id=doc_id)

    # ------------------------------------------------------------------- files

    def areas(self) -> list[dict[str, Any]]:
        files = self.config.files
        areas = [{"name": "users", "prefix": "users/", "read": "owner", "write": "owner"}]
        for a in files.areas.values():
            areas.append({"name": a.name, "prefix": a.prefix, "read": a.read, "write": a.write})
        return areas

    async def files(self, prefix: str, after: str | None) -> dict[str, Any]:
        if not isinstance(prefix, str) or len(prefix) > 1024 or ".." in prefix.split("/"):
            raise InvalidArgument("prefix must be a key prefix")
        infos, nxt = await self.core.file_store.list(prefix, start_after=after or None, limit=PAGE)
        return {
            "items": [
                {
                    "key": f.key,
                    "size": f.size,
                    "contentType": f.content_type,
                    "updated": f.updated,
                    "uploader": f.uploader,
                }
                for f in infos
            ],
            "next": nxt,
        }

    async def file_url(self, key: str, base_url: str | None) -> dict[str, Any]:
        info = await self.core.file_store.stat(key)
        if info is None:
            raise NotFound("no such file")
        from ..files.api import content_type_allowed

        # Only images show inline (never SVG: it can run script); the rest download.
        inline = content_type_allowed(
            info.content_type, ("image/png", "image/jpeg", "image/gif", "image/webp")
        )
        url = await self.core.file_store.sign_download(
            key, expires=int(self.clock()) + 300, public=False, base_url=base_url, attachment=not inline
        )
        return {"url": url, "inline": inline, "contentType": info.content_type, "size": info.size}

    async def delete_file(self, session: AdminSession, key: str, rid: str) -> None:
        if await self.core.file_store.stat(key) is None:
            raise NotFound("no such file")
        await self.core.file_store.remove(key)
        uid = key.split("/")[1] if key.startswith("users/") else None
        audit("admin.file.delete", rid, admin=session.email, uid=uid, key=key)

    # ------------------------------------------------------------------- audit

    async def audit(self, query: Mapping[str, Any]) -> list[dict[str, Any]]:
        if self.sink is not None:
            await self.sink.flush()

        def number(name: str) -> float | None:
            v = query.get(name)
            if v in (None, ""):
                return None
            try:
                return float(v)
            except (TypeError, ValueError):
                raise InvalidArgument(f"{name} must be a number") from None

        limit = int(number("limit") or PAGE)
        before = number("before")
        rows = await self.store.audit(
            str(query.get("kind") or "") or None,
            str(query.get("uid") or "") or None,
            number("since"),
            number("until"),
            int(before) if before is not None else None,
            max(1, min(limit, 200)),
        )
        # seq: the row's place in the trail (``before`` pages by it); the line's own fields after.
        return [{**orjson.loads(r.data), "seq": r.id, "at": r.at} for r in rows]

    # ---------------------------------------------------------------- settings

    def settings(self) -> dict[str, Any]:
        from .settings import redacted

        return redacted(self.config)
