"""Declaring, loading and calling the developer's functions."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import sys
from collections.abc import Callable
from typing import Any, TypeVar, overload

from ..config import FunctionsConfig
from ..errors import ConfigError
from ..util.names import BUILTIN_FUNCTIONS, is_name
from ..util.record import record

__all__ = ["FunctionSpec", "Registry", "function"]

F = TypeVar("F", bound=Callable[..., Any])
RESERVED = BUILTIN_FUNCTIONS
_ATTR = "__minibase_function__"


@record
class FunctionSpec:
    """A registered function: its name, callable and options.

    A developer's ``@function`` is ``fn(ctx, event)``, sync or async, run with a Context
    and a time limit. A built-in (``builtin``) is ``await fn(event, caller, request_id,
    base_url)``, run as is; a ``sessionless`` one (``session``) takes no caller and is
    rate-limited per address instead of per caller.
    """

    name: str
    fn: Callable[..., Any]
    public: bool  # callable without a session
    timeout: float | None  # overrides the config's
    is_async: bool
    builtin: bool = False
    sessionless: bool = False


@overload
def function(name: F, /) -> F: ...
@overload
def function(
    name: str | None = None, /, *, public: bool = False, timeout: float | None = None
) -> Callable[[F], F]: ...
def function(
    name: str | F | None = None, /, *, public: bool = False, timeout: float | None = None
) -> F | Callable[[F], F]:
    """Declare ``fn(ctx, event)`` (sync or async) as a callable function.

    ``@function`` names it after the Python function; ``@function("clearCompleted")`` names
    it explicitly. ``public=True`` lets callers without a session invoke it (``ctx.uid`` is
    then None). ``timeout`` (seconds) overrides ``[functions] timeout``.
    """
    if callable(name):
        return function(None)(name)
    if name is not None:
        _check_name(name)

    def mark(fn: F) -> F:
        fname = name or _check_name(fn.__name__)
        setattr(fn, _ATTR, (fname, public, timeout))
        return fn

    return mark


def _check_name(name: str) -> str:
    if not is_name(name):
        raise ValueError(f"function name {name!r}: use 1-64 of [A-Za-z0-9_-], starting with a letter")
    return name


class Registry:
    """Every function a client can call, by name: the built-ins (``session``, ``db``,
    ``files``: see :mod:`minibase.functions.builtins`) and the developer's ``@function``s,
    which the core looks up here and calls through its one invoke path; and the developer's
    ``@webhook``, ``@schedule`` and ``@after_write`` handlers (``events``)."""

    def __init__(self, specs: dict[str, FunctionSpec] | None = None) -> None:
        self.specs = specs or {}
        from ..events.decl import EventSpecs

        self.events = EventSpecs()  # @webhook, @schedule, @after_write

    def __contains__(self, name: str) -> bool:
        return name in self.specs

    def get(self, name: str) -> FunctionSpec | None:
        return self.specs.get(name)

    def developer(self) -> list[str]:
        """The developer's function names, in the order they were added."""
        return [name for name, spec in self.specs.items() if not spec.builtin]

    def add_builtin(self, spec: FunctionSpec) -> None:
        if not spec.builtin or spec.name not in RESERVED:
            raise ValueError(f"{spec.name!r} is not a built-in function")
        self.specs[spec.name] = spec

    def add(self, fn: Callable[..., Any]) -> FunctionSpec:
        mark = getattr(fn, _ATTR, None)
        if mark is None:
            raise ValueError(f"{fn!r} is not decorated with @function")
        fname, public, timeout = mark
        if fname in RESERVED:
            raise ValueError(f"function name {fname!r} is reserved for a built-in")
        if fname in self.specs and self.specs[fname].fn is not fn:
            raise ValueError(f"two functions are named {fname!r}")
        spec = FunctionSpec(fname, fn, public, timeout, inspect.iscoroutinefunction(fn))
        self.specs[fname] = spec
        return spec

    @classmethod
    def load(cls, config: FunctionsConfig) -> Registry:
        """Import ``[functions] module`` and collect its ``@function``s; ConfigError if it fails."""
        reg = cls()
        if config.module is None:
            return reg
        path = str(config.path) if config.path is not None else None
        if path and path not in sys.path:
            sys.path.insert(0, path)
        try:
            module = importlib.import_module(config.module)
        except Exception as e:  # the developer's import error, shown at start
            raise ConfigError(
                "functions.module", f"cannot import {config.module!r}: {type(e).__name__}: {e}"
            ) from e
        from ..events.decl import ATTR as EVENT_ATTR

        for value in vars(module).values():
            try:
                if callable(value) and hasattr(value, _ATTR):
                    reg.add(value)
                elif callable(value) and hasattr(value, EVENT_ATTR):
                    reg.events.add(value)
            except ValueError as e:
                raise ConfigError("functions.module", str(e)) from None
        if not reg.specs and not reg.events:
            raise ConfigError(
                "functions.module",
                f"{config.module!r} declares no @function (nor @webhook, @schedule, @after_write)",
            )
        return reg


async def run_with_timeout(spec: FunctionSpec, ctx: Any, event: Any, seconds: float) -> Any:
    """Run a sync function on a worker thread, an async one on the loop, within ``seconds``."""
    if spec.is_async:
        return await asyncio.wait_for(spec.fn(ctx, event), seconds)
    task = asyncio.ensure_future(asyncio.to_thread(spec.fn, ctx, event))
    try:
        return await asyncio.wait_for(asyncio.shield(task), seconds)
    except (TimeoutError, asyncio.TimeoutError):  # distinct classes before Python 3.11
        # A thread cannot be killed: it finishes in the background, its result dropped.
        task.add_done_callback(_drop)
        raise


def _drop(task: asyncio.Future[Any]) -> None:
    with contextlib.suppress(BaseException):
        task.result()
