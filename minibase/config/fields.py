"""How a config record declares its keys: each field says, in its metadata, how its value
is read (a *kind*: the parser, with its bounds) and how the file spells it; its default is
the field's own default. The allowed keys of a table and its defaults are derived from
these declarations, never written again.

    max_batch: int = field(default=100, metadata=spec(Int(1, 100)))
    dev_enabled: bool = field(default=False, metadata=spec(Flag(), key="dev.enabled"))
    alipay: AlipayConfig | None = field(default=None, metadata=TABLE)   # [auth.alipay]
    data_dir: Path = field(default=Path("data"), metadata=derived("--data / MINIBASE_DATA"))

A kind is any ``(reader, value, key) -> typed value`` callable; ``value`` has its
``env:NAME`` resolved (lists are left to the kind), ``key`` is the full dotted key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..errors import ConfigError
from ..util import names
from ..util.record import record_fields, record_meta, record_required
from .reader import PLACEHOLDER, Reader, check_keys
from .units import Rate, parse_duration, parse_rate, parse_size

__all__ = [
    "TABLE",
    "Bytes",
    "Custom",
    "FilePath",
    "Flag",
    "Int",
    "Kind",
    "Name",
    "RateValue",
    "Seconds",
    "Text",
    "Url",
    "derived",
    "file_keys",
    "iter_kinds",
    "key_path",
    "read_fields",
    "spec",
]

Kind = Callable[[Reader, Any, str], Any]
NAME_RE = names.NAME_RE  # use with fullmatch: `$` would accept a trailing newline
NAME_RULE = "1-64 of [A-Za-z0-9_-], starting with a letter"

# A field that is a sub-table (``[auth.sts]``), read by its section's own code.
TABLE: dict[str, Any] = {"table": True}


def spec(kind: Kind, *, key: str | None = None) -> dict[str, Any]:
    """Metadata of a field read by ``kind``; ``key`` when the file spells it differently
    (``"secret"``) or inside a sub-table (``"dev.enabled"``)."""
    return {"kind": kind, "key": key}


def derived(source: str) -> dict[str, Any]:
    """Metadata of a field that is not a key of the file, and where its value comes from."""
    return {"derived": source}


def key_path(cls: Any, name: str) -> str | None:
    """How the file spells field ``name`` (dotted inside a sub-table); None if it is not a key."""
    meta = record_meta(cls, name)
    if "derived" in meta:
        return None
    spelled: str | None = meta.get("key")
    return spelled or name


def file_keys(cls: Any, under: str = "") -> tuple[str, ...]:
    """The keys a table of record ``cls`` accepts (``under``: of its sub-table of that name),
    plus the record's ``EXTRA_KEYS`` (keys read into other fields)."""
    keys: list[str] = [] if under else list(getattr(cls, "EXTRA_KEYS", ()))
    for name in record_fields(cls):
        path = key_path(cls, name)
        if path is None:
            continue
        head, _, leaf = path.rpartition(".")
        if under and head == under:
            keys.append(leaf)
        elif not under:
            keys.append(path.split(".", 1)[0])
    return tuple(dict.fromkeys(keys))


def iter_kinds(cls: Any) -> Iterator[tuple[str, str, Kind]]:
    """(field, key path, kind) of each field a kind reads."""
    for name in record_fields(cls):
        kind = record_meta(cls, name).get("kind")
        path = key_path(cls, name)
        if kind is not None and path is not None:
            yield name, path, kind


def read_fields(cls: Any, r: Reader, table: dict[str, Any], section: str) -> dict[str, Any]:
    """The values of ``table`` (the file's ``[section]``) for each field of ``cls`` a kind
    reads, by field name; absent keys are left out, so the record's defaults apply.
    Unknown keys are refused first."""
    check_keys(table, section, file_keys(cls))
    out: dict[str, Any] = {}
    checked: set[str] = set()
    for name, path, kind in iter_kinds(cls):
        head, _, leaf = path.rpartition(".")
        full = f"{section}.{path}" if section else path
        source = table
        if head:
            source = r.table(table, f"{section}.{head}")
            if head not in checked:
                check_keys(source, f"{section}.{head}", file_keys(cls, head))
                checked.add(head)
        if leaf not in source:
            continue
        raw = source[leaf]
        if r.placeholders and isinstance(raw, str) and raw.startswith("env:"):
            _read_placeholder(cls, name, kind, r, full, out)
        else:
            out[name] = kind(r, r.value(source, full), full)
    return out


def _read_placeholder(cls: Any, name: str, kind: Kind, r: Reader, key: str, out: dict[str, Any]) -> None:
    """An ``env:`` value checked without its environment: the kind's own placeholder (a
    valid value of the kind, e.g. a PostgreSQL URL for ``database.url``) or the generic
    one. A kind that refuses the generic one leaves the record's default, unless the
    field has none."""
    value = getattr(kind, "placeholder", PLACEHOLDER)
    try:
        out[name] = kind(r, value, key)
    except ConfigError:
        if name in record_required(cls):
            raise


# ------------------------------------------------------------------ kinds


class Custom:
    """A kind written as a function, with the placeholder that stands in for an ``env:``
    value when the config is checked without its environment."""

    __slots__ = ("placeholder", "read")

    def __init__(self, read: Kind, placeholder: str) -> None:
        self.read, self.placeholder = read, placeholder

    def __call__(self, r: Reader, v: Any, key: str) -> Any:
        return self.read(r, v, key)


class Text:
    """A non-empty string, optionally one of ``choices``."""

    __slots__ = ("choices", "message")

    def __init__(self, choices: tuple[str, ...] = (), message: str = "") -> None:
        self.choices = choices
        self.message = message or f"expected one of: {', '.join(choices)}"

    def __call__(self, r: Reader, v: Any, key: str) -> str:
        if not isinstance(v, str) or not v:
            raise ConfigError(key, "expected a non-empty string")
        if self.choices and v not in self.choices:
            raise ConfigError(key, self.message)
        return v


class Name:
    """A name: 1-64 of ``[A-Za-z0-9_-]``, starting with a letter."""

    __slots__ = ()

    def __call__(self, r: Reader, v: Any, key: str) -> str:
        name = Text()(r, v, key)
        if not NAME_RE.fullmatch(name):
            raise ConfigError(key, f"expected {NAME_RULE}")
        return name


class Url:
    """An ``http(s)://`` URL, without a trailing slash (an Alipay ``….do`` gateway kept whole)."""

    __slots__ = ()

    def __call__(self, r: Reader, v: Any, key: str) -> str:
        url = Text()(r, v, key)
        if not url.startswith(("https://", "http://")):
            raise ConfigError(key, "expected an http(s) URL")
        return url.rstrip("/") if not url.endswith(".do") else url


class FilePath:
    """A path, relative ones inside the config's folder."""

    __slots__ = ()

    def __call__(self, r: Reader, v: Any, key: str) -> Any:
        return r.path(Text()(r, v, key))


class Flag:
    """``true``/``false`` (and, from ``env:``, ``1``/``0``/``yes``/``no``)."""

    __slots__ = ()

    def __call__(self, r: Reader, v: Any, key: str) -> bool:
        if isinstance(v, str) and v.lower() in ("true", "1", "yes", "false", "0", "no"):
            return v.lower() in ("true", "1", "yes")  # from env:
        if not isinstance(v, bool):
            raise ConfigError(key, "expected true or false")
        return v


class Int:
    """An integer between ``lo`` and ``hi`` (a string of digits from ``env:`` too)."""

    __slots__ = ("hi", "lo")

    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi

    def __call__(self, r: Reader, v: Any, key: str) -> int:
        if isinstance(v, str) and v.isdigit():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int) or not self.lo <= v <= self.hi:
            raise ConfigError(key, f"expected an integer between {self.lo} and {self.hi}")
        return v


class Seconds:
    """A duration in seconds (:func:`.units.parse_duration`), within ``lo``..``hi`` when
    given (``lo`` itself excluded if ``open_lo``)."""

    __slots__ = ("hi", "lo", "message", "open_lo")

    def __init__(
        self, lo: float | None = None, hi: float | None = None, message: str = "", *, open_lo: bool = False
    ) -> None:
        self.lo, self.hi, self.message, self.open_lo = lo, hi, message, open_lo

    def __call__(self, r: Reader, v: Any, key: str) -> float:
        try:
            seconds = parse_duration(v)
        except ValueError as e:
            raise ConfigError(key, str(e)) from None
        low = self.lo is not None and (seconds <= self.lo if self.open_lo else seconds < self.lo)
        if low or (self.hi is not None and seconds > self.hi):
            raise ConfigError(key, self.message)
        return seconds


class Bytes:
    """A size in bytes (:func:`.units.parse_size`) within ``lo``..``hi``."""

    __slots__ = ("hi", "lo", "message")

    def __init__(self, lo: int, hi: int, message: str) -> None:
        self.lo, self.hi, self.message = lo, hi, message

    def __call__(self, r: Reader, v: Any, key: str) -> int:
        try:
            n = parse_size(v)
        except ValueError as e:
            raise ConfigError(key, str(e)) from None
        if not self.lo <= n <= self.hi:
            raise ConfigError(key, self.message)
        return n


class RateValue:
    """A rate (:func:`.units.parse_rate`), or ``"off"``/``false`` for none."""

    __slots__ = ()

    def __call__(self, r: Reader, v: Any, key: str) -> Rate | None:
        if v is False or (isinstance(v, str) and v.strip().lower() in ("off", "false")):
            return None
        if not isinstance(v, str):
            raise ConfigError(key, 'expected a rate like "100/s", "20/min", "5/10s", or "off"')
        try:
            return parse_rate(v)
        except ValueError as e:
            raise ConfigError(key, str(e)) from None
