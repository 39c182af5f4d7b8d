"""Frozen, slotted record classes that are cheap to define. Leaf module.

``@record`` gives a class what ``@dataclass(frozen=True, slots=True)`` does for the way
minibase uses it (``__init__`` with defaults and ``field(default_factory=…, repr=False)``,
``__repr__``, ``__eq__``, ``__hash__``, immutability, ``__slots__``, ``__match_args__``,
``replace``) at a fraction of the cost: dataclasses ``exec`` five or six functions per
class and build a slotted class twice, about a millisecond per class at import, and a
serverless cold start imports dozens of them (configuration, filters, write ops).

Two flavours, both defined in tens of microseconds:

- ``@record``: generic methods (closures, no generated code). Its ``__init__`` costs a few
  microseconds: for values built once per process or per request at most (configuration).
- ``@record(compiled=True)``: its ``__init__`` generated in one ``exec`` (about 0.1 ms at
  import), as fast as a dataclass's: for small values built per operation on a hot path
  (filter nodes, write ops, keys, callers).

Equality and hashing compare the fields' tuple (``operator.attrgetter``) in both.

Use a plain ``@dataclass`` only where its extras (``dataclasses.fields``, ``asdict``,
mutable instances) are wanted and the module is not imported by a cold start. Records copy
and pickle like dataclasses (``copy.deepcopy``, ``pickle``: rebuilt through ``__init__``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, field
from operator import attrgetter
from typing import TYPE_CHECKING, Any, TypeVar, overload

__all__ = ["field", "record", "record_fields", "record_meta", "record_required", "replace"]

T = TypeVar("T")

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**kwargs: Any) -> Callable[[T], T]:
        return lambda f: f


_set = object.__setattr__


class _Declared:
    """What a record class declares beyond its field names (read once, at decoration)."""

    __slots__ = ("defaults", "factories", "hidden", "meta")

    def __init__(self, cls: type, names: tuple[str, ...]) -> None:
        own = cls.__dict__
        self.defaults: dict[str, Any] = {}
        self.factories: dict[str, Callable[[], Any]] = {}
        self.hidden: set[str] = set()
        self.meta: dict[str, Any] = {}
        for name in names:
            value = own.get(name, MISSING)
            if isinstance(value, Field):
                if value.metadata:
                    self.meta[name] = value.metadata
                if value.default is not MISSING:
                    self.defaults[name] = value.default
                elif value.default_factory is not MISSING:
                    self.factories[name] = value.default_factory
                if not value.repr:
                    self.hidden.add(name)
            elif value is not MISSING:
                self.defaults[name] = value
        seen_default = False
        for name in names:
            if name in self.defaults or name in self.factories:
                seen_default = True
            elif seen_default:
                raise TypeError(
                    f"{cls.__name__}: field '{name}' without a default follows one with a default"
                )


def _methods(cls: type, names: tuple[str, ...], d: _Declared) -> dict[str, Callable[..., Any]]:
    """The generic methods of a record of ``names`` (closures, no generated code)."""
    defaults, factories, hidden = d.defaults, d.factories, d.hidden

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(names):
            raise TypeError(f"{cls.__name__}() takes {len(names)} arguments, {len(args)} given")
        for name, value in zip(names, args, strict=False):
            _set(self, name, value)
        for name in names[len(args) :]:
            if name in kwargs:
                _set(self, name, kwargs.pop(name))
            elif name in defaults:
                _set(self, name, defaults[name])
            elif name in factories:
                _set(self, name, factories[name]())
            else:
                raise TypeError(f"{cls.__name__}() missing argument: '{name}'")
        if kwargs:
            raise TypeError(f"{cls.__name__}() got unexpected arguments: {', '.join(kwargs)}")

    def __repr__(self: Any) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in names if n not in hidden)
        return f"{type(self).__name__}({shown})"

    values = attrgetter(*names) if names else (lambda _: ())  # C-speed, for eq and hash

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return bool(values(self) == values(other))

    def __hash__(self: Any) -> int:
        return hash(values(self))

    def __setattr__(self: Any, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field '{name}': {cls.__name__} is frozen")

    def __delattr__(self: Any, name: str) -> None:
        raise AttributeError(f"cannot delete field '{name}': {cls.__name__} is frozen")

    def __reduce__(self: Any) -> tuple[Any, tuple[Any, ...]]:
        # copy and pickle would set slots one by one, which a frozen record refuses:
        # rebuild through __init__ instead (pickle finds the class by its module path).
        return (type(self), tuple(getattr(self, n) for n in names))

    methods = (__init__, __repr__, __eq__, __hash__, __setattr__, __delattr__, __reduce__)
    for fn in methods:
        fn.__qualname__ = f"{cls.__qualname__}.{fn.__name__}"
    return {fn.__name__: fn for fn in methods}


def _compiled_init(names: tuple[str, ...], d: _Declared) -> Callable[..., None]:
    """An ``__init__`` for ``names`` generated in one ``exec`` (field names are
    identifiers: the class statement declared them)."""
    params, body = [], []
    scope: dict[str, Any] = {"_set": _set, "_MISSING": MISSING}
    for n in names:
        if n in d.defaults:
            scope[f"_d_{n}"] = d.defaults[n]
            params.append(f"{n}=_d_{n}")
            body.append(f"    _set(self, {n!r}, {n})")
        elif n in d.factories:
            scope[f"_f_{n}"] = d.factories[n]
            params.append(f"{n}=_MISSING")
            body.append(f"    _set(self, {n!r}, _f_{n}() if {n} is _MISSING else {n})")
        else:
            params.append(n)
            body.append(f"    _set(self, {n!r}, {n})")
    src = "\n".join([f"def __init__(self, {', '.join(params)}):", *(body or ["    pass"])])
    exec(src, scope)  # noqa: S102 (source built above from the class's own field names)
    init: Callable[..., None] = scope["__init__"]
    return init


@overload
def record(cls: type[T], /) -> type[T]: ...


@overload
def record(*, compiled: bool = False) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(field, Field))
def record(cls: type[T] | None = None, /, *, compiled: bool = False) -> Any:
    """Make ``cls`` a frozen record of its annotated fields (in order); ``compiled=True``
    for a generated ``__init__`` (values built on a hot path)."""
    if cls is None:
        return lambda c: _make(c, compiled)
    return _make(cls, compiled)


def _make(cls: type[T], compiled: bool) -> type[T]:
    own = cls.__dict__
    names = tuple(own.get("__annotations__", {}))
    declared = _Declared(cls, names)
    body = {k: v for k, v in own.items() if k not in names and k not in ("__dict__", "__weakref__")}
    body.update(
        __slots__=names,
        __record_fields__=names,
        # field(metadata=...) per field, and the fields a caller must give: for code that
        # reads a record's declaration (the config's keys, bounds and parsers).
        __record_meta__=declared.meta,
        __record_required__=tuple(
            n for n in names if n not in declared.defaults and n not in declared.factories
        ),
        __record_hidden__=frozenset(declared.hidden),  # field(repr=False): secrets, never shown
        __match_args__=names,
    )
    body.update(_methods(cls, names, declared))
    if compiled:
        body["__init__"] = _compiled_init(names, declared)
        body["__init__"].__qualname__ = f"{cls.__qualname__}.__init__"
    new: type[T] = type(cls.__name__, cls.__bases__, body)
    new.__qualname__ = cls.__qualname__
    return new


def record_fields(cls_or_obj: Any) -> tuple[str, ...]:
    """The field names of a record class or instance, in order."""
    return tuple(cls_or_obj.__record_fields__)


def record_meta(cls_or_obj: Any, name: str) -> Mapping[str, Any]:
    """The ``field(metadata=...)`` of field ``name`` (empty if it has none)."""
    meta: Mapping[str, Any] = cls_or_obj.__record_meta__.get(name, {})
    return meta


def record_required(cls_or_obj: Any) -> tuple[str, ...]:
    """The fields of a record class without a default, in order."""
    return tuple(cls_or_obj.__record_required__)


def replace(obj: T, **changes: Any) -> T:
    """A copy of record ``obj`` with ``changes`` (like ``dataclasses.replace``)."""
    names = record_fields(obj)
    unknown = set(changes) - set(names)
    if unknown:
        raise TypeError(f"{type(obj).__name__} has no field(s): {', '.join(sorted(unknown))}")
    values = {n: changes[n] if n in changes else getattr(obj, n) for n in names}
    return type(obj)(**values)
