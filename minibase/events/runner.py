"""Running what the functions module declared: webhooks (verified, deduplicated), schedules
(each run once across instances, by a claim in the database) and after-write triggers (the
outbox's pending deliveries, at least once, in order per document, retried with backoff)."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from ..audit import audit
from ..config import Config
from ..errors import ConfigError, Internal, MinibaseError, NotFound, Unauthenticated
from ..results import Raw as Reply
from ..store.events import Change, Delivery, EventStore, Route, change_dict, prune_outbox
from .decl import EventSpecs, ScheduleSpec, WebhookSpec

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

    from ..store.protocols import Store

__all__ = ["Dispatcher", "Events", "Reply", "WebhookEvent", "open_event_store"]

log = logging.getLogger("minibase.events")

TRIGGER = "trigger:"  # the outbox targets of after-write triggers
NOTIFY_LEASE = 60.0  # a claimed notification id is another delivery's after this long


@dataclass
class WebhookEvent:
    """What a webhook handler gets: the request, and the verified payload."""

    name: str
    body: bytes
    headers: Mapping[str, str]  # lower-case names
    query: Mapping[str, str]
    payload: Any  # alipay: the parameters; wechatpay: the decrypted resource; None: parsed JSON/form or None
    id: str | None = None  # the notification's id (notify_id / id)
    notification: Mapping[str, Any] = field(default_factory=dict)  # wechatpay: the envelope

    def require_secret(self, secret: str, header: str = "x-webhook-secret") -> None:
        """Unauthenticated (401) unless ``header`` carries ``secret`` (compared in constant time)."""
        got = self.headers.get(header.lower(), "")
        if not secret or not hmac.compare_digest(got.encode(), secret.encode()):
            raise Unauthenticated(f"the {header} header does not carry the shared secret")


def open_event_store(config: Config, store: Store) -> EventStore:
    """The events' tables beside ``store``: SQLite or PostgreSQL (TableStore has no triggers)."""
    from ..store.sqlite import SQLiteStore

    if isinstance(store, SQLiteStore):
        from ..store.sqlite_events import SQLiteEvents

        return SQLiteEvents(store)
    url = config.database.url
    if url.startswith(("postgresql://", "postgres://")):
        from ..store.postgres_events import PostgresEvents

        return PostgresEvents(url)
    raise ConfigError(
        "functions.module", "@webhook, @schedule and @after_write need a SQLite or PostgreSQL database"
    )


ContextFactory = Callable[[str, str], Any]  # (name, request id) -> Context


class Events:
    def __init__(
        self,
        config: Config,
        specs: EventSpecs,
        store: EventStore,
        context: ContextFactory,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.specs = specs
        self.store = store
        self.context = context
        self.clock = clock
        self.owner = secrets.token_hex(8)  # this instance, in leases
        self._keys: dict[str, Any] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.dispatcher = Dispatcher(self, lease=config.functions.trigger_lease)

    async def open(self) -> None:
        await self.store.open()
        routes = [Route(TRIGGER + t.name, t.collection, t.ops, True) for t in self.specs.triggers.values()]
        await self.store.set_routes(routes, TRIGGER)

    def start_background(self, *, schedules: bool = True, dispatch: bool = True) -> None:
        """``minibase serve``: run the schedules and the dispatcher in this process."""
        if dispatch and self.specs.triggers:
            self._tasks.append(asyncio.ensure_future(self.dispatcher.run_forever()))
        if schedules and self.specs.schedules:
            self._tasks.append(asyncio.ensure_future(self._scheduler()))

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(BaseException):
                await t
        self._tasks.clear()
        await self.store.close()

    async def _call(self, fn: Callable[..., Any], is_async: bool, name: str, rid: str, event: Any) -> Any:
        ctx = self.context(name, rid)
        if is_async:
            return await fn(ctx, event)
        return await asyncio.to_thread(fn, ctx, event)

    # ------------------------------------------------------------------ webhooks

    def has_webhook(self, name: str) -> bool:
        return name in self.specs.webhooks

    async def webhook(
        self, name: str, headers: Mapping[str, str], query: Mapping[str, str], body: bytes, rid: str
    ) -> Reply:
        spec = self.specs.webhooks.get(name)
        if spec is None:
            raise NotFound(f"no webhook named '{name[:64]}'")
        if spec.verify == "alipay":
            return await self._alipay(spec, headers, query, body, rid)
        if spec.verify == "wechatpay":
            return await self._wechatpay(spec, headers, query, body, rid)
        return await self._plain(spec, headers, query, body, rid)

    def _key(self, what: str, load: Callable[[], Any]) -> Any:
        if what not in self._keys:
            self._keys[what] = load()
        return self._keys[what]

    def _alipay_key(self) -> tuple[RSAPublicKey, str]:
        cfg = self.config.webhooks.alipay
        if cfg is None:
            raise ConfigError(
                "webhooks.alipay", 'a verify="alipay" webhook needs [webhooks.alipay] or [auth.alipay]'
            )

        def load() -> RSAPublicKey:
            from ..auth.providers.alipay import load_public_key

            return load_public_key(cfg.alipay_public_key_file.read_bytes())

        return self._key("alipay", load), cfg.app_id

    def _wechat_keys(self) -> dict[str, RSAPublicKey]:
        cfg = self.config.webhooks.wechatpay
        if cfg is None:
            raise ConfigError("webhooks.wechatpay", 'a verify="wechatpay" webhook needs [webhooks.wechatpay]')

        def load() -> dict[str, RSAPublicKey]:
            from .verify import load_platform_key

            return {
                serial: load_platform_key(path.read_bytes()) for serial, path in cfg.platform_keys.items()
            }

        keys: dict[str, RSAPublicKey] = self._key("wechatpay", load)
        return keys

    def check_keys(self) -> None:
        """Load the keys the declared webhooks need now, so a bad file stops the start. A
        platform that is not configured (its env: values unset) only warns: its webhook
        answers as a failure, and the platform retries, until it is."""
        for spec in self.specs.webhooks.values():
            if spec.verify is None:
                continue
            if getattr(self.config.webhooks, spec.verify) is None:
                log.warning(
                    "webhook %s: [webhooks.%s] is not configured: its notifications are refused",
                    spec.name,
                    spec.verify,
                )
                continue
            try:
                if spec.verify == "alipay":
                    self._alipay_key()
                else:
                    self._wechat_keys()
            except (OSError, ValueError) as e:
                raise ConfigError(f"webhooks.{spec.verify}", f"cannot load its key: {e}") from None

    async def _alipay(
        self, spec: WebhookSpec, headers: Mapping[str, str], query: Mapping[str, str], body: bytes, rid: str
    ) -> Reply:
        from .verify import alipay_notification

        fail = Reply(200, b"fail", "text/plain; charset=utf-8")  # Alipay retries on anything but "success"
        try:
            key, app_id = self._alipay_key()
            params = alipay_notification(body, key, app_id)
        except ConfigError as e:
            log.error("webhook %s: %s (request %s)", spec.name, e, rid)
            return fail
        except MinibaseError as e:
            audit("webhook.refused", rid, webhook=spec.name, reason=e.code, detail=e.message)
            return fail
        event = WebhookEvent(spec.name, body, headers, query, params, params["notify_id"])
        ok = await self._once(spec, event, rid)
        return Reply(200, b"success", "text/plain; charset=utf-8") if ok else fail

    async def _wechatpay(
        self, spec: WebhookSpec, headers: Mapping[str, str], query: Mapping[str, str], body: bytes, rid: str
    ) -> Reply:
        from .verify import wechatpay_notification

        cfg = self.config.webhooks.wechatpay

        def fail(status: int, message: str) -> Reply:
            return Reply(status, orjson.dumps({"code": "FAIL", "message": message}))

        if cfg is None:
            log.error("webhook %s: [webhooks.wechatpay] is not configured (request %s)", spec.name, rid)
            return fail(503, "the server is not configured for WeChat Pay notifications")
        keys = self._wechat_keys()
        try:
            notification, resource = wechatpay_notification(
                headers, body, keys, cfg.api_v3_key, self.clock(), cfg.mch_id
            )
        except MinibaseError as e:
            audit("webhook.refused", rid, webhook=spec.name, reason=e.code, detail=e.message)
            return fail(401 if isinstance(e, Unauthenticated) else 400, e.message)
        event = WebhookEvent(spec.name, body, headers, query, resource, notification["id"], notification)
        ok = await self._once(spec, event, rid)
        return Reply(204, b"") if ok else fail(500, "the notification was not handled: retry later")

    async def _once(self, spec: WebhookSpec, event: WebhookEvent, rid: str) -> bool:
        """Run the handler unless this notification id was handled; whether it is handled."""
        assert event.id is not None
        now = self.clock()
        state = await self.store.claim_notification(spec.name, event.id, now, NOTIFY_LEASE)
        if state == "done":
            audit("webhook.duplicate", rid, webhook=spec.name, id=event.id)
            return True
        if state == "busy":  # another delivery of it is running now: the platform retries
            return False
        try:
            await self._call(spec.fn, spec.is_async, spec.name, rid, event)
        except Exception as e:
            log.exception("webhook %s failed on notification %s (request %s)", spec.name, event.id, rid)
            audit("webhook.failure", rid, webhook=spec.name, id=event.id, reason=type(e).__name__)
            with contextlib.suppress(MinibaseError):
                await self.store.finish_notification(spec.name, event.id, False, self.clock())
            return False
        await self.store.finish_notification(spec.name, event.id, True, self.clock())
        audit("webhook.handled", rid, webhook=spec.name, id=event.id)
        return True

    async def _plain(
        self, spec: WebhookSpec, headers: Mapping[str, str], query: Mapping[str, str], body: bytes, rid: str
    ) -> Reply:
        payload: Any = None
        ctype = headers.get("content-type", "")
        if body and "json" in ctype:
            with contextlib.suppress(orjson.JSONDecodeError):
                payload = orjson.loads(body)
        elif body and "x-www-form-urlencoded" in ctype:
            from urllib.parse import parse_qsl

            with contextlib.suppress(UnicodeError):
                payload = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        event = WebhookEvent(spec.name, body, headers, query, payload)
        try:
            result = await self._call(spec.fn, spec.is_async, spec.name, rid, event)
        except MinibaseError:
            raise
        except Exception:
            log.exception("webhook %s failed (request %s)", spec.name, rid)
            raise Internal() from None
        try:
            return Reply(200, orjson.dumps({"data": result}))
        except TypeError:
            log.error("webhook %s returned a value that is not JSON (request %s)", spec.name, rid)
            raise Internal() from None

    # ----------------------------------------------------------------- schedules

    async def run_schedule(self, name: str, slot: float | None = None, rid: str = "") -> bool:
        """Run ``name`` for ``slot`` (None: now, unconditionally) unless another instance
        claimed that slot; whether it ran and succeeded. Failures are logged and audited,
        never raised."""
        spec = self.specs.schedules.get(name)
        if spec is None:
            raise NotFound(f"no schedule named '{name[:64]}'")
        from ..util.ids import new_request_id

        rid = rid or new_request_id()
        if slot is not None and not await self.store.claim_run(name, slot, self.owner, self.clock()):
            return False
        return await self._run_job(spec, slot, rid)

    async def run_now(self, name: str) -> bool:
        """``minibase run NAME``: run the job now, here; whether it succeeded."""
        spec = self.specs.schedules.get(name)
        if spec is None:
            raise NotFound(f"no schedule named '{name[:64]}'")
        from ..util.ids import new_request_id

        return await self._run_job(spec, None, new_request_id())

    async def _run_job(self, spec: ScheduleSpec, slot: float | None, rid: str) -> bool:
        """Run it; whether it succeeded (failures are logged and audited, not raised)."""
        error: str | None = None
        try:
            await self._call(spec.fn, spec.is_async, spec.name, rid, {"schedule": spec.name, "time": slot})
        except Exception as e:
            log.exception("schedule %s failed (request %s)", spec.name, rid)
            error = f"{type(e).__name__}: {e}"[:500]
            audit("schedule.failure", rid, schedule=spec.name, reason=type(e).__name__)
        else:
            audit("schedule.success", rid, schedule=spec.name)
        if slot is not None:
            with contextlib.suppress(MinibaseError):
                await self.store.finish_run(spec.name, slot, error is None, error, self.clock())
        return error is None

    async def _scheduler(self) -> None:
        from .cron import next_after

        tz = self.config.functions.timezone
        due = {s.name: next_after(s.cron, self.clock(), tz) for s in self.specs.schedules.values()}
        while True:
            name = min(due, key=due.__getitem__)
            await asyncio.sleep(max(0.0, due[name] - self.clock()))
            slot = due[name]
            due[name] = next_after(self.specs.schedules[name].cron, max(slot, self.clock()), tz)
            try:
                await self.run_schedule(name, slot)
            except Exception:  # the database is away: this run is lost, the next one comes
                log.exception("schedule %s could not be claimed for %s", name, slot)

    # ------------------------------------------------------------------ triggers

    async def deliver(self, d: Delivery) -> None:
        spec = self.specs.triggers[d.target[len(TRIGGER) :]]
        from ..util.ids import new_request_id

        await self._call(spec.fn, spec.is_async, spec.name, new_request_id(), change_dict(d.change))


class Dispatcher:
    """Delivers the outbox's pending events to the after-write triggers."""

    def __init__(
        self,
        events: Events,
        *,
        batch: int = 64,
        lease: float = 60.0,
        poll: float = 1.0,
        backoff: float = 1.0,
        max_backoff: float = 300.0,
        max_attempts: int = 12,
        keep: float = 60.0,
    ) -> None:
        self.events = events
        self.batch = batch
        self.lease = lease  # a claimed delivery is retried by anyone after this long
        self.poll = poll  # how often to look without a wake-up (other processes' writes)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_attempts = max_attempts
        self.keep = keep  # delivered events stay this long in the outbox (watch's replay window)
        self.targets = [TRIGGER + t for t in events.specs.triggers]
        self._last_prune = 0.0
        self.on_delivered: Callable[[Change], None] | None = None  # benchmarks and tests

    async def run_once(self) -> int:
        """Claim and deliver one batch; how many were claimed."""
        ev = self.events
        store = ev.store
        now = ev.clock()
        claimed = await store.claim_deliveries(self.targets, ev.owner, now, self.lease, self.batch)
        # Each document appears once per target in a batch (its oldest pending event), so the
        # batch may run concurrently.
        outcomes = await asyncio.gather(*(self._deliver(d) for d in claimed))
        done = [(d.target, d.change.seq) for d, ok in zip(claimed, outcomes, strict=True) if ok]
        if done:
            await store.delivered(done)
        if self.on_delivered is not None:
            for d, ok in zip(claimed, outcomes, strict=True):
                if ok:
                    self.on_delivered(d.change)
        if now - self._last_prune > 10:
            self._last_prune = now
            await prune_outbox(store, now - self.keep)
        return len(claimed)

    async def _deliver(self, d: Delivery) -> bool:
        """Run the handler; whether the delivery is done (ran, or given up)."""
        ev = self.events
        try:
            await ev.deliver(d)
        except Exception as e:
            attempts = d.attempts + 1
            log.exception("trigger %s failed on event %d (attempt %d)", d.target, d.change.seq, attempts)
            if attempts >= self.max_attempts:
                audit("trigger.dropped", "", trigger=d.target, seq=d.change.seq, reason=type(e).__name__)
                return True
            audit("trigger.failure", "", trigger=d.target, seq=d.change.seq, reason=type(e).__name__)
            delay = min(self.max_backoff, self.backoff * 2 ** (attempts - 1))
            await ev.store.retry_later(d.target, d.change.seq, ev.owner, attempts, ev.clock() + delay)
            return False
        return True

    async def run_forever(self) -> None:
        while True:
            try:
                n = await self.run_once()
            except Exception:  # the database is away (or worse): never stop delivering for good
                log.exception("the outbox dispatcher failed a round; trying again")
                n = 0
                await asyncio.sleep(self.poll)
            if n == 0:
                await self.events.store.wait_changes(self.poll)

    async def drain(self, timeout: float = 10.0) -> None:
        """Deliver until nothing is due (tests, ``minibase run``)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if await self.run_once() == 0:
                return
