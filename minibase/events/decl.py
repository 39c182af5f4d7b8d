"""The decorators and what they declare: :func:`webhook`, :func:`schedule`, :func:`after_write`."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar

from ..util.names import is_name
from ..util.record import record

__all__ = [
    "ATTR",
    "OPS",
    "EventSpecs",
    "ScheduleSpec",
    "TriggerSpec",
    "WebhookSpec",
    "after_write",
    "schedule",
    "webhook",
]

F = TypeVar("F", bound=Callable[..., Any])
ATTR = "__minibase_event__"
OPS = ("insert", "update", "remove")
Verify = Literal["alipay", "wechatpay"] | None


@record
class WebhookSpec:
    name: str
    fn: Callable[..., Any]
    verify: str | None
    is_async: bool


@record
class ScheduleSpec:
    name: str
    fn: Callable[..., Any]
    cron: str
    is_async: bool


@record
class TriggerSpec:
    """An after-write trigger; ``name`` (the function's) keys its deliveries in the outbox."""

    name: str
    fn: Callable[..., Any]
    collection: str
    ops: tuple[str, ...]
    is_async: bool


def _name(name: str, what: str) -> str:
    if not isinstance(name, str) or not is_name(name):
        raise ValueError(f"{what} name {name!r}: use 1-64 of [A-Za-z0-9_-], starting with a letter")
    return name


def webhook(name: str, *, verify: Verify = None) -> Callable[[F], F]:
    """Serve ``fn(ctx, event)`` at ``POST /webhooks/NAME``.

    ``verify="alipay"``: an Alipay asynchronous notification, checked against
    ``[webhooks.alipay]``; ``verify="wechatpay"``: a WeChat Pay API v3 notification, checked
    and decrypted with ``[webhooks.wechatpay]``; None: any request (check it yourself, e.g.
    with ``event.require_secret``). See docs/events.md.
    """
    _name(name, "webhook")
    if verify not in ("alipay", "wechatpay", None):
        raise ValueError(f"webhook {name!r}: verify must be 'alipay', 'wechatpay' or None")

    def mark(fn: F) -> F:
        setattr(fn, ATTR, WebhookSpec(name, fn, verify, inspect.iscoroutinefunction(fn)))
        return fn

    return mark


def schedule(name: str, *, cron: str) -> Callable[[F], F]:
    """Run ``fn(ctx, event)`` on ``cron`` (5 fields, or 6 with seconds first), in
    ``[functions] timezone``; once per time across all instances."""
    _name(name, "schedule")
    from .cron import parse_cron

    parse_cron(cron)  # a bad expression fails at import, naming it

    def mark(fn: F) -> F:
        setattr(fn, ATTR, ScheduleSpec(name, fn, cron, inspect.iscoroutinefunction(fn)))
        return fn

    return mark


def after_write(collection: str, *, ops: Iterable[str] = OPS) -> Callable[[F], F]:
    """Run ``fn(ctx, change)`` after a write of ``collection`` commits (at least once, in
    order per document); ``change`` has ``op``, ``collection``, ``id``, ``uid``, ``old``, ``new``."""
    _name(collection, "collection")
    ops = tuple(ops)
    if not ops or any(op not in OPS for op in ops):
        raise ValueError(f"after_write({collection!r}): ops must be some of {', '.join(OPS)}")

    def mark(fn: F) -> F:
        name = _name(fn.__name__, "trigger")
        setattr(fn, ATTR, TriggerSpec(name, fn, collection, ops, inspect.iscoroutinefunction(fn)))
        return fn

    return mark


class EventSpecs:
    """Everything a functions module declares besides its ``@function``s."""

    def __init__(self) -> None:
        self.webhooks: dict[str, WebhookSpec] = {}
        self.schedules: dict[str, ScheduleSpec] = {}
        self.triggers: dict[str, TriggerSpec] = {}

    def __bool__(self) -> bool:
        return bool(self.webhooks or self.schedules or self.triggers)

    def add(self, fn: Callable[..., Any]) -> None:
        spec = getattr(fn, ATTR)
        table: dict[str, Any]
        if isinstance(spec, WebhookSpec):
            table, what = self.webhooks, "webhooks"
        elif isinstance(spec, ScheduleSpec):
            table, what = self.schedules, "schedules"
        else:
            table, what = self.triggers, "triggers"
        old = table.get(spec.name)
        if old is not None and old.fn is not fn:
            raise ValueError(f"two {what} are named {spec.name!r}")
        table[spec.name] = spec

    def triggers_of(self, collection: str, op: str) -> list[TriggerSpec]:
        return [t for t in self.triggers.values() if t.collection == collection and op in t.ops]

    @property
    def trigger_collections(self) -> frozenset[str]:
        return frozenset(t.collection for t in self.triggers.values())
