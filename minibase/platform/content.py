"""Declarative content checks: ``[collections.X] content_check = ["title", "body"]`` sends
those text fields of every write by a caller (clients, and ``ctx.db`` acting as one) to the
caller's platform check before anything is stored (docs/platform.md#content-checks).

The check is the caller's platform's: WeChat's msgSecCheck v2 (with the caller's openid),
Alipay's text risk detection, Douyin's antidirt. A refused text is ``ContentRejected``
(422) naming the field. A check that cannot answer (the platform down, over quota, or no
check for this caller) is ``Unavailable`` (503), never a silent pass, unless the
collection says ``content_check_on_outage = "allow"``. Dev logins are not checked (they
exist only in development). ``ctx.admin`` writes are the app's own and not checked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..auth.sessions import Caller
from ..config import Config
from ..errors import ContentRejected, MinibaseError, Unavailable

if TYPE_CHECKING:
    from .services import PlatformServices

__all__ = ["check_write"]

log = logging.getLogger("minibase.platform")

_WRITES = ("put", "insert", "update")
_NO_OPENID = ("alipay", "douyin")  # checks an anonymous write can use


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        yield from (v for v in value if isinstance(v, str))


def _under(value: Any, rest: list[str]) -> Any:
    for part in rest:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _values(op: Mapping[str, Any], path: str) -> Iterator[str]:
    """The texts ``op`` writes at ``path`` (put/insert: the object's; update: set and push)."""
    parts = path.split(".")
    if op.get("op") in ("put", "insert"):
        obj = op.get("obj")
        yield from _texts(_under(obj, parts))
        return
    for kind in ("set", "push"):
        spec = op.get(kind)
        if not isinstance(spec, dict):
            continue
        for key, value in spec.items():
            if not isinstance(key, str):
                continue
            keyparts = key.split(".")
            if keyparts == parts[: len(keyparts)]:
                if kind == "push" and isinstance(value, dict) and "$each" in value:
                    value = value["$each"]
                yield from _texts(_under(value, parts[len(keyparts) :]))


def _writes(config: Config, event: Mapping[str, Any]) -> Iterator[tuple[int | None, str, str, str]]:
    """(batch index, collection, field, text) of every checked text the event writes."""
    default: Any = config.app.default_collection
    subs: list[tuple[int | None, Any]] = [(None, event)]
    if event.get("op") == "batch":
        ops = event.get("ops")
        subs = list(enumerate(ops)) if isinstance(ops, list) else []
        default = event.get("collection") if isinstance(event.get("collection"), str) else default
    for index, op in subs:
        if not isinstance(op, Mapping) or op.get("op") not in _WRITES:
            continue
        name = op.get("collection", default)
        if not isinstance(name, str) or name not in config.collections:
            continue
        for path in config.collections[name].content_check:
            for text in _values(op, path):
                if text.strip():
                    yield index, name, path, text


async def check_write(
    config: Config, services: PlatformServices, event: Mapping[str, Any], caller: Caller | None
) -> None:
    """Raise ``ContentRejected`` or ``Unavailable`` unless every checked text of the write
    passes its caller's platform check."""
    if not any(c.content_check for c in config.collections.values()):
        return
    if caller is not None and caller.provider == "dev":
        return
    for index, name, path, text in _writes(config, event):
        col = config.collections[name]
        try:
            ok, _ = await _check(services, caller, text)
        except MinibaseError as e:
            if col.content_check_on_outage == "allow":
                log.warning("content check of %s.%s skipped (%s): %s", name, path, e.code, e.message)
                continue
            raise Unavailable(
                f"the content check of {path} cannot answer now: {e.message}", retry_after=5
            ) from None
        if not ok:
            details: dict[str, Any] = {"field": path}
            if index is not None:
                details["index"] = index
            where = f"ops[{index}]: " if index is not None else ""
            raise ContentRejected(f"{where}{path} was refused by the platform's content check", **details)


async def _check(services: PlatformServices, caller: Caller | None, text: str) -> tuple[bool, str | None]:
    if caller is None:
        client = next((c for c in map(services.client, _NO_OPENID) if c is not None), None)
        openid = ""
    else:
        client = services.client(caller.provider)
        identity = await services.identity(caller)
        openid = identity.openid if identity is not None else ""
    if client is None:
        raise Unavailable("no content check is set up for this caller's platform")
    result: tuple[bool, str | None] = await client.check_text(text, openid)
    return result
