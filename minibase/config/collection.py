"""``[collections.NAME]``: rules per operation, an optional JSON Schema, declared indexes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..data.rules import Rule, RuleError, parse_rule
from ..errors import ConfigError
from ..util import names
from ..util.record import field, record
from .fields import NAME_RE, NAME_RULE, Text, derived, read_fields, spec
from .reader import Reader

__all__ = ["RULE_PRESETS", "CollectionConfig"]

RULE_PRESETS = ("owner", "authenticated", "public", "none")
_FIELD_RE = names.SEGMENT_RE


def _rule(r: Reader, v: Any, key: str) -> Rule:
    text = Text()(r, v, key)
    try:
        return parse_rule(text)
    except RuleError as e:
        raise ConfigError(key, f"bad rule: {e} (presets: {', '.join(RULE_PRESETS)})") from None


def _schema(r: Reader, v: Any, key: str) -> Mapping[str, Any]:
    if isinstance(v, str):
        import json

        path = r.path(v)
        try:
            v = json.loads(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise ConfigError(key, f"cannot read {path}: {e.strerror}") from None
        except ValueError as e:
            raise ConfigError(key, f"{path} is not valid JSON: {e}") from None
    from ..data.schema import check_schema

    try:
        check_schema(v)
    except ValueError as e:
        raise ConfigError(key, str(e)) from None
    assert isinstance(v, dict)
    return v


def _field_path(f: Any) -> tuple[str, ...] | None:
    parts = tuple(f.split(".")) if isinstance(f, str) else ()
    ok = parts and len(parts) <= 8 and all(_FIELD_RE.fullmatch(p) for p in parts) and parts[0] != "uid"
    return parts if ok else None


def _indexes(r: Reader, v: Any, key: str) -> tuple[tuple[tuple[str, ...], ...], ...]:
    if not isinstance(v, list) or len(v) > 16:
        raise ConfigError(key, "expected a list (at most 16) of field paths or lists of field paths")
    out = []
    for i, item in enumerate(v):
        fields = [item] if isinstance(item, str) else item
        if not isinstance(fields, list) or not 1 <= len(fields) <= 4:
            raise ConfigError(f"{key}[{i}]", "expected a field path or a list of 1-4 field paths")
        paths = []
        for f in fields:
            path = _field_path(f)
            if path is None:
                raise ConfigError(f"{key}[{i}]", f"{f!r} is not a field path (a.b.c of [A-Za-z0-9_])")
            paths.append(path)
        out.append(tuple(paths))
    return tuple(out)


def _search_fields(r: Reader, v: Any, key: str) -> tuple[tuple[str, ...], ...]:
    if not isinstance(v, list) or len(v) > 16:
        raise ConfigError(key, "expected a list (at most 16) of field paths")
    out: list[tuple[str, ...]] = []
    for i, f in enumerate(v):
        path = _field_path(f)
        if path is None or path == ("id",):
            raise ConfigError(
                f"{key}[{i}]", f"{f!r} is not a document field path (a.b.c of [A-Za-z0-9_], not id)"
            )
        if path not in out:
            out.append(path)
    return tuple(out)


def _content_fields(r: Reader, v: Any, key: str) -> tuple[str, ...]:
    if not isinstance(v, list) or len(v) > 16:
        raise ConfigError(key, "expected a list (at most 16) of field paths")
    for i, f in enumerate(v):
        if _field_path(f) is None:
            raise ConfigError(f"{key}[{i}]", f"{f!r} is not a field path (a.b.c of [A-Za-z0-9_])")
    return tuple(v)


def _owner() -> Rule:
    return parse_rule("owner")


_WRITES = ("create", "update", "delete")


@record
class CollectionConfig:
    """Rules per operation (parsed), an optional JSON Schema and declared indexes.

    ``write`` in the file sets ``create``, ``update`` and ``delete`` at once; each of them
    given on its own wins.
    """

    EXTRA_KEYS = ("write",)

    read: Rule = field(default_factory=_owner, metadata=spec(_rule))
    create: Rule = field(default_factory=_owner, metadata=spec(_rule))
    update: Rule = field(default_factory=_owner, metadata=spec(_rule))
    delete: Rule = field(default_factory=_owner, metadata=spec(_rule))
    schema: Mapping[str, Any] | None = field(default=None, metadata=spec(_schema))
    indexes: tuple[tuple[tuple[str, ...], ...], ...] = field(default=(), metadata=spec(_indexes))
    # string fields `$search` may search (a trigram index each: docs/data.md#text-search)
    search: tuple[tuple[str, ...], ...] = field(default=(), metadata=spec(_search_fields))
    # text fields the caller's platform checks on every client write (docs/platform.md#content-checks)
    content_check: tuple[str, ...] = field(default=(), metadata=spec(_content_fields))
    content_check_on_outage: str = field(
        default="refuse", metadata=spec(Text(("refuse", "allow"), "must be 'refuse' or 'allow'"))
    )
    # the JSON file ``schema`` named, if it named one (deploy packages it)
    schema_file: Path | None = field(default=None, metadata=derived("the file collections.NAME.schema names"))

    def rule(self, op: str) -> Rule:
        rule: Rule = getattr(self, op)
        return rule

    @classmethod
    def from_table(cls, r: Reader, name: str, t: dict[str, Any]) -> CollectionConfig:
        key = f"collections.{name}"
        if not NAME_RE.fullmatch(name):
            raise ConfigError(key, f"collection names are {NAME_RULE}")
        values = read_fields(cls, r, t, key)
        if "schema" in values and isinstance(t["schema"], str):
            values["schema_file"] = r.path(r.value(t, f"{key}.schema"))
        if "write" in t:
            text = Text()(r, r.value(t, f"{key}.write"), f"{key}.write")
            missing = [op for op in _WRITES if op not in values]
            write = _rule(r, text, f"{key}.write") if missing else None
            values.update(dict.fromkeys(missing, write))
        return cls(**values)
