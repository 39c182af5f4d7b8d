"""The hub: one per server process. It follows the outbox in commit order, matches each change
against the watches of its collection with each watch's filter (the caller's compiled read
rule, ``where`` and ``owner``: what a ``query`` by that caller runs), and checks every open
connection's session every :data:`CHECK_EVERY` seconds (docs/realtime.md)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from ..auth import gateway
from ..data.filters import FALSE, And, Cmp, Filter
from ..data.rules import AuthInfo
from ..data.validate import event as validate_event
from ..errors import (
    GatewayError,
    Internal,
    InvalidArgument,
    MinibaseError,
    PayloadTooLarge,
    RateLimited,
    Unauthenticated,
    Unavailable,
)
from ..store.events import Change, EventStore, Route, prune_outbox
from ..store.tablestore_eval import matches
from ..util.waits import wait_event
from .window import Entry, Key, Stamp, Window, stamp_of

if TYPE_CHECKING:
    from ..auth.sessions import Caller
    from ..core import Minibase
    from ..data.api import DataFunction
    from .connection import Connection

__all__ = ["CHECK_EVERY", "Hub", "Watch"]

log = logging.getLogger("minibase.realtime")

ROUTE = Route("watch", "*", ("insert", "update", "remove"), False)  # unqueued: only the outbox row
BATCH = 500  # changes read from the outbox at once
POLL = 0.1  # seconds between looks at the outbox without a wake-up (other processes' writes)
CHECK_EVERY = 2.0  # seconds between checks of every connection's session
RESUME_WINDOW = 60.0  # a resume token older than this gets a fresh init
KEEP = 60.0  # seconds the outbox keeps delivered changes (events.md)
MAX_BUFFER = 10_000  # changes held for one watch while its result is being read
INIT_BYTES = 64 * 1024 * 1024  # bytes of documents one watch's result may hold
_WATCH_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class Watch:
    """One watch: its filter, its window of the result, and where its changes go."""

    __slots__ = ("buffer", "collection", "conn", "ended", "filter", "owner", "uid", "wid", "window")

    def __init__(
        self, conn: Connection, wid: str, collection: str, where: Filter, window: Window, uid: str | None
    ) -> None:
        self.conn = conn
        self.wid = wid
        self.collection = collection
        self.filter = where
        self.window = window
        self.uid = uid  # the watcher's (None: anonymous)
        self.owner = _owner(where)  # whose documents it can see, when the filter says
        # Changes that arrive while the result is being read (None: applied at once).
        self.buffer: list[tuple[Key, Any, bytes | None, Stamp | None]] | None = []
        self.ended = False

    def apply(self, key: Key, doc: dict[str, Any] | None, raw: bytes | None, gone: Stamp | None) -> bool:
        """Apply one change; whether the window must be read again."""
        try:
            matching = doc is not None and matches(doc, self.filter)
        except TypeError:  # a filter this evaluator does not know: refuse rather than guess
            self.conn.end_watch(self, InvalidArgument("this where cannot be watched"))
            return False
        out, again = self.window.apply(key, doc, raw, matching, gone)
        if out:
            self.conn.send_changes(self.wid, out, False)
        return again


def _owner(f: Filter) -> str | None:
    for part in f.items if isinstance(f, And) else (f,):
        if (
            isinstance(part, Cmp)
            and part.path == ("uid",)
            and part.op == "eq"
            and isinstance(part.value, str)
        ):
            return part.value
    return None


class Hub:
    def __init__(self, core: Minibase, events: EventStore, *, own_events: bool) -> None:
        self.core = core
        self.limits = core.config.limits
        self.events = events
        self._own = own_events  # opened and closed here (no @after_write runner shares it)
        self.pos = (0, 0)
        self.connections: set[Connection] = set()
        self._index: dict[str, dict[str | None, set[Watch]]] = {}
        self._per_user: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._pruning: asyncio.Future[None] | None = None
        self._rereads: set[asyncio.Task[None]] = set()
        self._db: DataFunction | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        if self._own:
            await self.events.open()
        await self.events.set_routes([ROUTE], ROUTE.target)
        self.pos = await self.events.head()
        self.events.on_wake(self._wake.set)
        self._loop = asyncio.get_running_loop()
        self._tasks = [asyncio.ensure_future(self._follow()), asyncio.ensure_future(self._check())]

    async def stop(self) -> None:
        self._end_all()
        pruning = [self._pruning] if self._pruning is not None else []
        for t in [*self._tasks, *self._rereads, *pruning]:
            t.cancel()
        for t in [*self._tasks, *self._rereads, *pruning]:
            with contextlib.suppress(BaseException):
                await t
        self._tasks.clear()
        if self._own:
            await self.events.close()

    def _data(self) -> DataFunction:
        """The ``db`` function's planning (rules compiled for the caller, where, order)."""
        if self._db is None:
            from ..data.api import DataFunction

            self._db = DataFunction(self.core.config, self.core.store)
        return self._db

    def stopping(self) -> None:
        """The server is stopping (a signal handler may call this): end every connection, so
        streams do not hold the graceful stop; clients reconnect elsewhere and resume."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._end_all)

    def _end_all(self) -> None:
        for conn in list(self.connections):
            conn.fail(Unavailable("the server is stopping: reconnect and resume"))

    def token(self) -> str:
        """A resume token: when this server last told the client where things stand."""
        return f"t{int(self.core.clock() * 1000)}"

    # ------------------------------------------------------------ connections

    def connect(self, conn: Connection) -> None:
        if len(self.connections) >= self.limits.max_connections:
            n = self.limits.max_connections
            raise RateLimited(
                f"this server has {n} realtime connections open (limits.max_connections): try again later", 5
            )
        self.connections.add(conn)

    def disconnect(self, conn: Connection) -> None:
        self.connections.discard(conn)
        for w in list(conn.watches.values()):
            self.remove(w)

    async def signed_caller(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        query: Mapping[str, Any] | None,
        body: bytes,
        *,
        require_body_digest: bool,
    ) -> tuple[Caller, float]:
        """A FC-signed request's caller and when its credentials expire."""
        core = self.core
        if core.config.auth.credentials == "sts":
            from ..core import STS_SIGNED_REFUSAL

            raise GatewayError("InvalidSecurityToken", STS_SIGNED_REFUSAL)
        claims = gateway.verify_request(
            core.minter,
            method,
            path,
            headers,
            query,
            body,
            core.clock(),
            require_body_digest=require_body_digest,
        )
        return await core.sessions.by_ref(claims.session_ref), float(claims.expires)

    # ---------------------------------------------------------------- watches

    async def open_watch(self, conn: Connection, msg: dict[str, Any]) -> None:
        """Start the watch ``msg`` asks for (a subscribe message) and send its first frame."""
        wid = watch_id(msg)
        if wid in conn.watches:
            raise InvalidArgument(f"a watch named {wid!r} is already open on this connection")
        validate_event(msg, self.limits)
        caller = conn.caller
        await self.core.limiter.call(caller.uid if caller is not None else None, conn.ip)
        auth = AuthInfo(caller.uid, caller.provider) if caller is not None else None
        name, where, order = self._data().watch_plan(msg, auth)
        limit, explicit = self._limit(msg)
        held = self._resume(msg)
        self._check_count(conn)
        w = Watch(conn, wid, name, where, Window(order, limit), caller.uid if caller is not None else None)
        self._add(w)
        try:
            rows, more = await self._read(w, explicit)
        except BaseException:
            self.remove(w)
            raise
        if held is not None:
            w.window.entries = held
        conn.send_changes(wid, w.window.reset(rows, more, held is None), held is None)
        if self._drain(w):
            self._spawn_reread(w)

    def remove(self, w: Watch) -> None:
        if w.ended:
            return
        w.ended = True
        w.conn.watches.pop(w.wid, None)
        by_owner = self._index.get(w.collection, {})
        watches = by_owner.get(w.owner)
        if watches is not None:
            watches.discard(w)
            if not watches:
                del by_owner[w.owner]
        if not by_owner:
            self._index.pop(w.collection, None)
        if w.uid is not None:
            left = self._per_user.get(w.uid, 1) - 1
            if left > 0:
                self._per_user[w.uid] = left
            else:
                self._per_user.pop(w.uid, None)

    def _add(self, w: Watch) -> None:
        w.conn.watches[w.wid] = w
        self._index.setdefault(w.collection, {}).setdefault(w.owner, set()).add(w)
        if w.uid is not None:
            self._per_user[w.uid] = self._per_user.get(w.uid, 0) + 1

    def _check_count(self, conn: Connection) -> None:
        n = self.limits.max_watches_per_user
        caller = conn.caller
        count = self._per_user.get(caller.uid, 0) if caller is not None else len(conn.watches)
        if count >= n:
            raise RateLimited(
                f"at most {n} watches per user on one server (limits.max_watches_per_user): close one first"
            )

    def _limit(self, msg: Mapping[str, Any]) -> tuple[int, bool]:
        cap = self.limits.max_watch_docs
        n = msg.get("limit")
        if n is None:
            return cap, False
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= cap:
            raise InvalidArgument(
                f"limit must be an integer from 1 to {cap} (limits.max_watch_docs)",
                limit="limits.max_watch_docs",
                max=cap,
                path="limit",
            )
        return n, True

    def _resume(self, msg: Mapping[str, Any]) -> list[Entry] | None:
        """The client's list to continue from, or None for a fresh init."""
        resume = msg.get("resume")
        if resume is None:
            return None
        docs = resume.get("docs") if isinstance(resume, dict) else None
        token = resume.get("token") if isinstance(resume, dict) else None
        if not isinstance(token, str) or not isinstance(docs, list):
            raise InvalidArgument(
                "resume must be {token: the last token received, docs: [[uid, id, _created, _version], …]}"
            )
        if len(docs) > self.limits.max_watch_docs:
            raise InvalidArgument(
                f"resume.docs: at most {self.limits.max_watch_docs} documents (limits.max_watch_docs)"
            )
        held: list[Entry] = []
        seen: set[Key] = set()
        for i, d in enumerate(docs):
            if not (
                isinstance(d, list)
                and len(d) == 4
                and all(isinstance(x, str) for x in d[:3])
                and isinstance(d[3], int)
                and not isinstance(d[3], bool)
            ):
                raise InvalidArgument(f"resume.docs[{i}]: must be [uid, id, _created, _version]")
            key = (d[0], d[1])
            if key in seen:
                raise InvalidArgument(f"resume.docs[{i}]: the document is listed twice")
            seen.add(key)
            held.append(Entry(key, (), (d[2], d[3])))
        at = token[1:]
        now = self.core.clock() * 1000
        if not (
            token.startswith("t")
            and at.isdigit()
            and -RESUME_WINDOW * 1000 <= now - int(at) <= RESUME_WINDOW * 1000
        ):
            return None  # too old (or not ours): a fresh init
        return held

    async def _read(self, w: Watch, explicit: bool = True) -> tuple[list[tuple[dict[str, Any], bytes]], bool]:
        """The watch's result now: (document, body) rows in order, and whether more match."""
        limit = w.window.limit
        if w.filter == FALSE:
            return [], False
        rows = await self.core.store.query(w.collection, w.filter, w.window.order, limit + 1, None)
        if not explicit and len(rows) > limit:
            raise PayloadTooLarge(
                f"the result has more than {limit} documents (limits.max_watch_docs): add a limit or narrow where",
                limit="limits.max_watch_docs",
                max=limit,
            )
        more = len(rows) > limit
        bodies = [body for _, body in rows[:limit]]
        if sum(map(len, bodies)) > INIT_BYTES:
            raise PayloadTooLarge(
                f"the result is larger than {INIT_BYTES >> 20} MiB: add a limit or narrow where"
            )
        return [(orjson.loads(b), b) for b in bodies], more

    def _drain(self, w: Watch) -> bool:
        """Apply the changes buffered while the result was read; whether it must be read
        again (the rest stays buffered)."""
        buffered, w.buffer = w.buffer or [], None
        for i, change in enumerate(buffered):
            if w.ended:
                return False
            if w.apply(*change):
                w.buffer = buffered[i + 1 :]
                return True
        return False

    def _spawn_reread(self, w: Watch) -> None:
        if w.buffer is None:
            w.buffer = []
        task = asyncio.ensure_future(self._reread(w))
        self._rereads.add(task)
        task.add_done_callback(self._rereads.discard)

    async def _reread(self, w: Watch) -> None:
        try:
            while not w.ended:
                rows, more = await self._read(w)
                if w.ended:
                    return
                out = w.window.reset(rows, more, False)
                if out:
                    w.conn.send_changes(w.wid, out, False)
                if not self._drain(w):
                    return
        except MinibaseError as e:
            w.conn.end_watch(w, e)
        except Exception:
            log.exception("reading watch %s again failed", w.wid)
            w.conn.end_watch(w, Internal())

    # -------------------------------------------------------------- following

    async def _follow(self) -> None:
        last_prune = 0.0
        while True:
            self._wake.clear()
            changes: list[Change] = []
            try:
                changes, self.pos = await self.events.follow(self.pos, BATCH)
                self.dispatch(changes)
                now = time.time()
                if now - last_prune > 10 and (self._pruning is None or self._pruning.done()):
                    last_prune = now
                    # Beside this loop: a backlog takes many write jobs, and changes go on.
                    self._pruning = asyncio.ensure_future(self._prune(now - KEEP))
            except asyncio.CancelledError:
                raise
            except MinibaseError as e:  # the database is away: the position is kept, nothing is lost
                log.warning("following the outbox: %s; trying again in 1 s", e.message)
                await asyncio.sleep(1.0)
                continue
            except Exception:
                log.exception("following the outbox failed; trying again in 1 s")
                await asyncio.sleep(1.0)
                continue
            if len(changes) < BATCH:
                await wait_event(self._wake, POLL)  # not wait_for: a cancel must end the follower

    async def _prune(self, before: float) -> None:
        try:
            await prune_outbox(self.events, before)
        except MinibaseError as e:  # the database is away: the next round tries again
            log.warning("pruning the outbox: %s", e.message)
        except Exception:
            log.exception("pruning the outbox failed")

    def dispatch(self, changes: Sequence[Change]) -> None:
        for ch in changes:
            by_owner = self._index.get(ch.collection)
            if not by_owner:
                continue
            targets = [*by_owner.get(ch.uid, ()), *by_owner.get(None, ())]
            if not targets:
                continue
            doc = orjson.loads(ch.new) if ch.new is not None else None
            gone = stamp_of(orjson.loads(ch.old)) if ch.new is None and ch.old is not None else None
            key = (ch.uid, ch.id)
            for w in targets:
                if w.ended:
                    continue
                if w.buffer is not None:
                    if len(w.buffer) >= MAX_BUFFER:
                        w.conn.end_watch(w, Unavailable("the watch fell behind: subscribe again with resume"))
                    else:
                        w.buffer.append((key, doc, ch.new, gone))
                elif w.apply(key, doc, ch.new, gone):
                    self._spawn_reread(w)

    async def _check(self) -> None:
        """End the streams of sessions that ended (logout, revocation, expiry, a disabled
        user) and of credentials that expired without an ``auth`` refreshing them."""
        while True:
            await asyncio.sleep(CHECK_EVERY)
            try:
                await self.check_sessions()
            except Exception:
                log.exception("checking the realtime sessions failed")

    async def check_sessions(self) -> None:
        now = self.core.clock()
        groups: dict[str, list[Connection]] = {}
        for conn in list(self.connections):
            caller = conn.caller
            if caller is None:
                continue
            if conn.expires is not None and now >= conn.expires:
                conn.fail(
                    Unauthenticated(
                        "the credentials have expired: send auth with fresh ones, or reconnect and resume"
                    )
                )
                continue
            groups.setdefault(caller.session_ref, []).append(conn)
        for ref, conns in groups.items():
            try:
                await self.core.sessions.by_ref(ref)
            except Unauthenticated as e:
                for conn in conns:
                    conn.fail(Unauthenticated(e.message))
            except MinibaseError:  # the database is away: look again next round
                continue


def watch_id(msg: Mapping[str, Any]) -> str:
    wid = msg.get("id")
    if not isinstance(wid, str) or not _WATCH_ID.fullmatch(wid):
        raise InvalidArgument("id: a watch needs an id of 1-64 characters [A-Za-z0-9_-]")
    return wid
